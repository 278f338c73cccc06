// Property tests: generated valid rule lines round-trip through encode/decode/format/parse; garbage only gives
// RuleError.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RuleError } from '../../src/errors';
import { decodeRule, encodeRule, formatRule, parseLine, parseRules, type Rule } from '../../src/rules';
import { prng } from '../helpers/prng';
import { budget } from '../helpers/fuzz';
import { MAX_RULE_LINE_BYTES } from '../../src/rules/parser';

const SEED = Number(process.env.RULES_FUZZ_SEED ?? 20240607);

class Gen {
  constructor(readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  maybe(p = 0.5): boolean {
    return this.r() < p;
  }
  word(min = 1, max = 12): string {
    const chars = 'abcdefghijklmnopqrstuvwxyz0123456789_-';
    let s = '';
    const n = min + this.int(max - min + 1);
    for (let i = 0; i < n; i++) s += this.pick([...chars]);
    return s;
  }
  num(): string {
    const v = this.int(1 << 20);
    return this.pick([String(v), '0x' + v.toString(16), String(this.int(100))]);
  }
}

const CMP_OPS = ['=', '!=', '<', '>', '<=', '>='];
const EQ_OPS = ['=', '!='];
const X64 = [
  'open',
  'openat',
  'read',
  'write',
  'execve',
  'chmod',
  'fchmod',
  'unlink',
  'rename',
  'kill',
  'mount',
  'adjtimex',
  'settimeofday',
];
const I386 = ['open', 'chown32', 'socketcall', 'execve', 'unlink', 'ipc', 'stime'];
const MSGTYPES = ['CWD', 'PATH', 'USER_LOGIN', 'SYSCALL', 'EXECVE', 'USER_CMD', '1999', 'CONFIG_CHANGE'];
const ERRNOS = ['-EACCES', '-EPERM', '-ENOENT', '5', '-99999', '0'];

/** One valid auditctl rule line, narrowed the way a real file would be. */
function validLine(g: Gen): string {
  const kind = g.int(10);
  const keys = () => {
    let s = '';
    for (let i = g.int(3); i > 0; i--) s += ` -k ${g.word()}`;
    return s;
  };
  if (kind === 0) {
    const path = g.pick(['/etc/passwd', '/etc/shadow', '/nonexistent/am/fuzz', '/etc', '/var/log/']);
    const perm = g.maybe() ? ` -p ${g.pick(['r', 'w', 'x', 'a', 'wa', 'rwxa', 'rw'])}` : '';
    return `-w ${path}${perm}${keys()}`;
  }
  const al = g.pick(['always', 'never']);
  if (kind === 1) return `-a ${al},exclude -F msgtype${g.pick(EQ_OPS)}${g.pick(MSGTYPES)}`;
  if (kind === 2) return `-a ${al},user -F msgtype=${g.pick(MSGTYPES)} -F uid${g.pick(CMP_OPS)}${g.int(70000)}`;
  if (kind === 3) return `-a ${al},task -F uid=${g.int(5000)} -F gid!=${g.int(5000)}`;
  if (kind === 4)
    return `-a ${al},filesystem -F fstype${g.pick(EQ_OPS)}${g.pick(['debugfs', 'tracefs', String(g.int(1000) + 1)])}${keys()}`;
  // exit rules
  let s = g.maybe() ? `-a ${al},exit` : `-a exit,${al}`;
  const arch = g.pick(['b64', 'b32', '']);
  if (arch) s += ` -F arch=${arch}`;
  const n = g.int(4);
  for (let i = 0; i < n; i++) {
    const pool = arch === 'b32' ? I386 : X64;
    const list: string[] = [];
    for (let j = 1 + g.int(3); j > 0; j--) list.push(g.maybe(0.8) ? g.pick(pool) : String(g.int(400)));
    s += ` -S ${list.join(',')}`;
  }
  if (n === 0 && g.maybe(0.2)) s += ' -S all';
  const fields = 1 + g.int(6);
  for (let i = 0; i < fields; i++) {
    switch (g.int(16)) {
      case 0:
        s += ` -F auid${g.pick(CMP_OPS)}${g.pick(['1000', 'unset', '-1', '0', '4294967295'])}`;
        break;
      case 1:
        s += ` -F uid${g.pick(CMP_OPS)}${g.pick(['0', 'root', String(g.int(1 << 30))])}`;
        break;
      case 2:
        s += ` -F gid${g.pick(CMP_OPS)}${g.pick(['0', 'root', String(g.int(1 << 30))])}`;
        break;
      case 3:
        s += ` -F exit${g.pick(CMP_OPS)}${g.pick(ERRNOS)}`;
        break;
      case 4:
        s += ` -F success=${g.int(2)}`;
        break;
      case 5:
        s += ` -F a${g.int(4)}${g.pick([...CMP_OPS, '&', '&='])}${g.num()}`;
        break;
      case 6:
        s += ` -F perm=${g.pick(['r', 'w', 'wa', 'rwxa', 'x'])}`;
        break;
      case 7:
        s += ` -F exe=/usr/bin/${g.word()}`;
        break; // exe!= lists as exe= (auditctl quirk, see golden fields.rules)
      case 8:
        s += ` -F path=/etc/${g.word()}`;
        break;
      case 9:
        s += ` -F dir=${g.pick(['/var/log', '/etc', '/usr/lib'])}`;
        break; // listed as -w when a watch, which stats it again
      case 10:
        s += ` -F pid${g.pick(CMP_OPS)}${g.int(1 << 22)}`;
        break;
      case 11:
        s += ` -F sessionid${g.pick(CMP_OPS)}${g.pick(['unset', '-1', String(g.int(1000))])}`;
        break;
      case 12:
        s += ` -C ${g.pick(['uid!=obj_uid', 'auid=euid', 'gid=egid', 'fsuid!=suid', 'obj_gid=sgid'])}`;
        break;
      case 13:
        s += ` -F inode${g.pick(EQ_OPS)}${g.int(2 ** 32)}`;
        break;
      case 14:
        s += ` -F subj_type=${g.word()}_t -F obj_user=${g.word()}_u`;
        break;
      default:
        s += ` -F devmajor=${g.int(300)} -F saddr_fam=${g.int(46)} -F pers=${g.int(1 << 16)}`;
    }
  }
  // auditctl refuses a key unless a syscall, watch field, perm or exe came first.
  return / -S | -F (exe|perm|path|dir)=/.test(s) ? s + keys() : s;
}

function bytes(r: Rule): string {
  return encodeRule(r).toString('hex');
}

function single(line: string): Rule {
  const c = parseLine(line);
  assert.equal(c.length, 1, line);
  const cmd = c[0]!;
  assert.ok(cmd.kind === 'add', `${line} -> ${cmd.kind}`);
  return cmd.rule;
}

describe('rules: property tests', () => {
  it('generated valid lines parse, round-trip through bytes, and their auditctl -l text parses back to the same bytes', () => {
    const g = new Gen(prng(SEED));
    const N = budget(4000);
    let unreadable = 0;
    for (let i = 0; i < N; i++) {
      const line = validLine(g);
      let r: Rule;
      try {
        r = single(line);
      } catch (e) {
        assert.fail(`seed ${SEED} #${i}: valid line refused: ${line}: ${(e as Error).message}`);
      }
      const b = encodeRule(r);
      const d = decodeRule(b);
      assert.equal(encodeRule(d).toString('hex'), b.toString('hex'), `decode/encode ${line}`);
      const text = formatRule(d);
      // A "watch" whose perm or key field precedes its path prints as " -p r-w /x": auditctl's text is not
      // re-readable then, and there is nothing to compare.
      if (!/^-[aw] /.test(text)) {
        unreadable++;
        continue;
      }
      // -A prepend is not part of the listing; the kernel never echoes it either.
      let again: Rule;
      try {
        again = single(text);
      } catch (e) {
        assert.fail(`seed ${SEED} #${i}: ${line}\n  listed as ${text}\n  ${(e as Error).message}`);
      }
      // A listed watch has lost its action (auditctl prints "never" watches as -w too).
      const expected = { ...d, flags: d.flags & ~0x10, action: text.startsWith('-w ') ? 2 : d.action };
      assert.equal(bytes(again), bytes(expected), `seed ${SEED} #${i}: ${line}\n  listed as ${text}`);
      assert.equal(formatRule(again), text);
    }
    assert.ok(unreadable < N / 20, `${unreadable} unreadable listings`);
  });

  it('random garbage lines give RuleError or commands, never another exception', () => {
    const g = new Gen(prng(SEED ^ 0x5bd1e995));
    const atoms = [
      '-a',
      '-A',
      '-d',
      '-S',
      '-F',
      '-C',
      '-k',
      '-w',
      '-W',
      '-p',
      '-D',
      '-b',
      '-f',
      '-r',
      '-e',
      '-i',
      '-c',
      '-l',
      '-s',
      '-R',
      '-m',
      '-q',
      '-t',
      '-h',
      '--backlog_wait_time',
      '--reset-lost',
      '--loginuid-immutable',
      '--bogus',
      'always,exit',
      'exit,never',
      'never,exclude',
      'always,user',
      'always,task',
      'never,filesystem',
      'always,io_uring',
      'always',
      'exit',
      ',',
      'arch=b64',
      'arch=b32',
      'arch=x',
      'open',
      'all',
      'open,close',
      '9999',
      '-1',
      'uid=root',
      'auid>=1000',
      'auid!=unset',
      'key=k',
      'path=/etc',
      'dir=/',
      'perm=rwxa',
      'msgtype=CWD',
      'exit=-EACCES',
      'fstype=debugfs',
      'contid=5',
      'a0&=3',
      '=',
      '!=',
      '<=',
      '&',
      'uid!=obj_uid',
      '/etc/passwd',
      'wa',
      '"',
      "'",
      '\\',
      '#',
      'x'.repeat(300),
      '\u00e9',
      '\x01',
      '\0',
      '-',
      '--',
      '0',
      '1',
      '2',
      '0x',
      'unset',
      'exe=/usr/bin/x',
    ];
    const N = budget(6000);
    for (let i = 0; i < N; i++) {
      const parts: string[] = [];
      for (let j = g.int(9); j >= 0; j--) {
        if (g.maybe(0.8)) parts.push(g.pick(atoms));
        else {
          let junk = '';
          for (let k = g.int(12); k >= 0; k--) junk += String.fromCharCode(g.int(128));
          parts.push(junk);
        }
      }
      const text = parts.join(g.pick([' ', '', '  ', '\t']));
      try {
        const cmds = parseRules(text, 'fuzz');
        for (const c of cmds) {
          if (c.kind === 'add' || c.kind === 'delete') {
            const d = decodeRule(encodeRule(c.rule));
            formatRule(d);
          }
        }
      } catch (e) {
        if (!(e instanceof RuleError))
          assert.fail(`seed ${SEED} #${i}: ${JSON.stringify(text)} threw ${(e as Error)?.stack ?? String(e)}`);
        assert.equal(e.pos?.file, 'fuzz');
      }
    }
  });

  it('random bytes given to the decoder give RuleError or a rule the formatter prints', () => {
    const g = new Gen(prng(SEED + 7));
    for (let i = 0; i < budget(3000); i++) {
      const len = g.pick([0, 100, 1039, 1040, 1041, 1100, 1500]);
      const b = Buffer.alloc(len);
      for (let j = 0; j < len; j++) b[j] = g.maybe(0.9) ? 0 : g.int(256);
      if (len >= 1040 && g.maybe()) {
        b.writeUInt32LE(g.int(66), 8);
        b.writeUInt32LE(g.int(len - 1040 + 2), 1036);
      }
      try {
        formatRule(decodeRule(b));
      } catch (e) {
        if (!(e instanceof RuleError)) assert.fail(`#${i}: ${(e as Error).stack}`);
      }
    }
  });

  it(`lines around auditctl's ${MAX_RULE_LINE_BYTES}-byte limit: refused at their line when longer, never a crash`, () => {
    const g = new Gen(prng(SEED + 11));
    const fillers = ['a', ' ', '\u00e9', '\u20ac', '\ud83d\ude00', '-F', 'key=', '#'];
    for (let i = 0; i < budget(300); i++) {
      const head = g.pick(['-a always,exit -S open -k ', '-w /etc/passwd -p wa -k ', '# ', '-D ', '']);
      let line = head;
      const target = MAX_RULE_LINE_BYTES - 8 + g.int(17);
      while (Buffer.byteLength(line) < target) line += g.pick(fillers);
      const before = g.int(3);
      const text = '-D\n'.repeat(before) + line + '\n-D\n';
      const tooLong = Buffer.byteLength(line) > MAX_RULE_LINE_BYTES;
      try {
        parseRules(text, 'fuzz');
        assert.ok(!tooLong, `#${i}: a ${Buffer.byteLength(line)}-byte line was accepted`);
      } catch (e) {
        if (!(e instanceof RuleError)) assert.fail(`#${i}: threw ${(e as Error)?.stack ?? String(e)}`);
        assert.equal(e.code === 'E_RULE_TOO_LONG', tooLong, `#${i}: ${e.message}`);
        if (tooLong) assert.deepEqual(e.pos, { file: 'fuzz', line: before + 1 });
      }
    }
  });
});
