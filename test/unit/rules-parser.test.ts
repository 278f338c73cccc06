// Unit tests of the auditctl-language parser, word splitting, encoder layout and formatter quirks.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RuleError } from '../../src/errors';
import { AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, Field, FilterList, Op } from '../../src/kernel/constants';
import {
  decodeRule,
  encodeRule,
  formatRule,
  formatRules,
  parseLine,
  parseRules,
  type Rule,
  type RuleCommand,
} from '../../src/rules';
import { splitWords } from '../../src/rules/words';
import { strtol, strtoul, u32 } from '../../src/rules/cnum';

function rule(line: string): Rule {
  const c = parseLine(line);
  assert.equal(c.length, 1);
  const cmd = c[0]!;
  assert.ok(cmd.kind === 'add' || cmd.kind === 'delete', cmd.kind);
  return cmd.rule;
}
const roundTrip = (line: string): string => formatRule(decodeRule(encodeRule(rule(line))));
function reason(line: string): string {
  try {
    parseLine(line);
  } catch (e) {
    assert.ok(e instanceof RuleError);
    return e.reason;
  }
  assert.fail(`no error for ${line}`);
}

describe('rules: word splitting', () => {
  const pos = { file: 'x', line: 1 };
  it('splits on blanks and drops comments at a word start', () => {
    assert.deepEqual(splitWords('  -a  always,exit\t-k a#b # note', pos), ['-a', 'always,exit', '-k', 'a#b']);
    assert.deepEqual(splitWords('# only a comment', pos), []);
    assert.deepEqual(splitWords('', pos), []);
  });
  it('handles quotes and backslashes like a shell', () => {
    assert.deepEqual(splitWords(`-k "a b" -F 'path=/x y' c\\ d "q\\"x"`, pos), [
      '-k',
      'a b',
      '-F',
      'path=/x y',
      'c d',
      'q"x',
    ]);
    assert.deepEqual(splitWords(`-k ''`, pos), ['-k', '']);
  });
  it('reports unterminated quotes as RuleError', () => {
    assert.throws(() => splitWords(`-k "abc`, pos), RuleError);
    assert.throws(() => splitWords(`-k 'abc`, pos), RuleError);
  });
});

describe('rules: C number parsing', () => {
  it('follows strtoul/strtol with base 0', () => {
    assert.equal(strtoul('0x1F').value, 31n);
    assert.equal(strtoul('010').value, 8n);
    assert.equal(strtoul('12abc').value, 12n);
    assert.equal(strtoul('0x').value, 0n);
    assert.equal(u32(strtoul('-1').value), 0xffffffff);
    assert.equal(strtoul('99999999999999999999999').erange, true);
    assert.equal(strtol('-9223372036854775809').value, -(1n << 63n));
    assert.equal(u32(strtoul('4294967296').value), 0);
  });
});

describe('rules: parser', () => {
  it('reads list and action in either order, -A sets prepend', () => {
    assert.equal(rule('-a exit,always -S open').flags, FilterList.exit);
    assert.equal(rule('-a always,exit -S open').action, 2);
    assert.equal(rule('-A never,task').flags, FilterList.task | 0x10);
    assert.equal(rule('-d always,exit -F arch=b64 -S open').flags, FilterList.exit);
    assert.equal(parseLine('-d always,exit -S open')[0]!.kind, 'delete');
  });
  it('gives auditctl messages for bad lists and actions', () => {
    assert.equal(reason('-a always,entry'), 'Append rule - bad keyword always,entry');
    assert.equal(reason('-A always,foo'), 'Add rule - bad keyword always,foo');
    assert.equal(reason('-d never,'), 'Delete rule - bad keyword never,');
    assert.equal(reason('-a always,exit -d always,exit'), 'Multiple rule insert/delete operations are not allowed');
  });
  it('drops "exit,possible" lines silently, as auditctl does', () => {
    assert.deepEqual(parseLine('-a exit,possible -S open'), []);
  });
  it('accepts the io_uring list', () => {
    assert.equal(rule('-a always,io_uring -F pid=1').flags, FilterList.io_uring);
  });
  it('resolves syscalls against the arch given before them', () => {
    const r64 = rule('-a always,exit -F arch=b64 -S open');
    assert.equal(r64.mask[0], 1 << 2);
    const r32 = rule('-a always,exit -F arch=b32 -S open');
    assert.equal(r32.mask[0], 1 << 5);
    assert.equal(r32.fields[0]!.value, AUDIT_ARCH_I386);
    assert.equal(rule('-a always,exit -F arch=x86_64 -S 1,3 -S 33').mask[1], 2);
    assert.equal(
      rule('-a always,exit -S all').mask.every((w) => w === 0xffffffff),
      true,
    );
    assert.equal(rule('-a always,exit -F arch=i386 -S 0').fields[0]!.value, AUDIT_ARCH_I386);
    assert.equal(rule('-a always,exit -F arch=0xc000003e -S read').fields[0]!.value, AUDIT_ARCH_X86_64);
    assert.equal(reason('-a always,exit -S open -F arch=b32'), 'arch must be before -S');
    assert.equal(reason('-a always,exit -S fooo'), 'Syscall name unknown: fooo');
    assert.equal(reason('-a always,exit -F arch=b32 -S openat2x'), 'Syscall name unknown: openat2x');
  });
  it('fills every syscall bit for rules without -S except on the task list', () => {
    assert.ok(rule('-a always,exit -F pid=1').mask.every((w) => w === 0xffffffff));
    assert.ok(rule('-a never,exclude -F msgtype=CWD').mask.every((w) => w === 0xffffffff));
    assert.ok(rule('-a always,task -F uid=0').mask.every((w) => w === 0));
  });
  it('handles uid/gid names, unset and negative values', () => {
    const r = rule('-a always,exit -F uid=root -F gid=root -F auid=unset -F euid=-1 -F suid=0x10');
    assert.deepEqual(
      r.fields.map((f) => f.value),
      [0, 0, 0xffffffff, 0xffffffff, 16],
    );
    assert.equal(reason('-a always,exit -F uid=nobody_xyz_q'), 'Unknown user: nobody_xyz_q');
  });
  it('maps errno names, success, perm, filetype, msgtype, fstype', () => {
    assert.equal(rule('-a always,exit -F exit=-EACCES').fields[0]!.value, u32(-13n));
    assert.equal(rule('-a always,exit -F exit=EPERM').fields[0]!.value, 1);
    assert.equal(rule('-a always,exit -F success=1').fields[0]!.value, 1);
    assert.equal(rule('-a always,exit -F perm=rwxa').fields[0]!.value, 15);
    assert.equal(rule('-a always,exit -F filetype=character').fields[0]!.value, 0o020000);
    assert.equal(rule('-a never,exclude -F msgtype=USER_LOGIN').fields[0]!.value, 1112);
    assert.equal(rule('-a never,filesystem -F fstype=tracefs').fields[0]!.value, 0x74726163);
  });
  it('keeps operators', () => {
    const r = rule('-a always,exit -F a0=1 -F a1!=1 -F a2<1 -F a3>1 -F pid<=1 -F ppid>=1 -F pers&1 -F pers&=1');
    assert.deepEqual(
      r.fields.map((f) => f.op),
      [
        Op.EQUAL,
        Op.NOT_EQUAL,
        Op.LESS_THAN,
        Op.GREATER_THAN,
        Op.LESS_THAN_OR_EQUAL,
        Op.GREATER_THAN_OR_EQUAL,
        Op.BIT_MASK,
        Op.BIT_TEST,
      ],
    );
  });
  it('builds -C comparisons with the kernel numbers', () => {
    const r = rule('-a always,exit -C uid!=obj_uid -C auid=euid -C obj_gid=sgid');
    assert.deepEqual(
      r.fields.map((f) => [f.field, f.op, f.value]),
      [
        [Field.field_compare, Op.NOT_EQUAL, 1],
        [Field.field_compare, Op.EQUAL, 16],
        [Field.field_compare, Op.EQUAL, 7],
      ],
    );
  });
  it('joins repeated keys with \\x01 and puts the key field last', () => {
    const r = rule('-a always,exit -S open -k a -F pid=1 -k b');
    const last = r.fields[r.fields.length - 1]!;
    assert.equal(last.field, Field.key);
    assert.equal(last.str, 'a\x01b');
    assert.deepEqual(r.keys, ['a', 'b']);
    assert.equal(
      reason(`-a always,exit -S open -k ${'x'.repeat(200)} -k ${'y'.repeat(56)}`),
      'key option exceeds size limit',
    );
    assert.equal(rule(`-a always,exit -S open -k ${'x'.repeat(200)} -k ${'y'.repeat(55)}`).fields.at(-1)!.value, 256);
  });
  it('turns -w into an exit rule with path, perm and key', () => {
    const r = rule('-w /etc/passwd -p wa -k identity');
    assert.equal(r.flags, FilterList.exit);
    assert.deepEqual(
      r.fields.map((f) => f.field),
      [Field.watch, Field.perm, Field.key],
    );
    assert.equal(r.fields[1]!.value, 2 | 8);
    assert.ok(r.mask.every((w) => w === 0xffffffff));
    assert.equal(rule('-w /etc/').fields[0]!.field, Field.dir);
    assert.equal(rule('-w /etc/').fields[0]!.str, '/etc');
    assert.equal(rule('-w /nonexistent/x/').fields[0]!.field, Field.watch);
    assert.equal(parseLine('-W /etc/passwd -p wa')[0]!.kind, 'delete');
  });
  it('parses the contid field as 8 host-order bytes', () => {
    const r = rule('-a always,exit -F contid=0x0102030405060708');
    assert.equal(r.fields[0]!.value, 8);
    const b = encodeRule(r);
    assert.equal(b.readUInt32LE(1036), 8);
    assert.equal(b.readBigUInt64LE(1040), 0x0102030405060708n);
    assert.equal(decodeRule(b).fields[0]!.u64, 0x0102030405060708n);
    assert.equal(roundTrip('-a always,exit -F contid=unset'), '-a always,exit -S all -F contid=unset');
    assert.equal(reason('-a always,task -F contid=1'), 'contid must be used with exclude, user, or exit filter');
  });
  it('parses control commands', () => {
    const kinds = (l: string) =>
      parseLine(l).map((c) => [c.kind, 'value' in c ? c.value : 'key' in c ? c.key : undefined]);
    assert.deepEqual(kinds('-b 8192'), [['backlogLimit', 8192]]);
    assert.deepEqual(kinds('-f 2'), [['failure', 2]]);
    assert.deepEqual(kinds('-r 0x10'), [['rateLimit', 16]]);
    assert.deepEqual(kinds('--backlog_wait_time 60000'), [['backlogWaitTime', 60000]]);
    assert.deepEqual(kinds('--backlog_wait_time=5'), [['backlogWaitTime', 5]]);
    assert.deepEqual(kinds('-e 1'), [['enabled', 1]]);
    assert.deepEqual(kinds('-D'), [['deleteAll', undefined]]);
    assert.deepEqual(kinds('-D -k mykey'), [['deleteAll', 'mykey']]);
    assert.deepEqual(kinds('--reset-lost'), [['resetLost', undefined]]);
    assert.deepEqual(kinds('--loginuid-immutable'), [['loginuidImmutable', undefined]]);
    assert.deepEqual(kinds('-b 10 -f 1'), [
      ['backlogLimit', 10],
      ['failure', 1],
    ]);
    assert.deepEqual(kinds('-l'), []);
  });
  it('accepts attached option arguments', () => {
    assert.equal(
      roundTrip('-aalways,exit -Farch=b64 -Sopen -Fpid=1 -kk'),
      '-a always,exit -F arch=b64 -S open -F pid=1 -F key=k',
    );
  });
});

describe('rules: files, positions, -i and -c', () => {
  it('carries file:line on commands and errors', () => {
    const cmds = parseRules('# c\n\n-b 10\n   \n-w /etc/passwd -k x\n', 'a.rules');
    assert.deepEqual(
      cmds.map((c) => [c.kind, c.pos.line, c.pos.file]),
      [
        ['backlogLimit', 3, 'a.rules'],
        ['add', 5, 'a.rules'],
      ],
    );
    assert.throws(
      () => parseRules('-b 1\n-a bogus\n', 'b.rules'),
      (e: unknown) => {
        assert.ok(e instanceof RuleError);
        assert.deepEqual(e.pos, { file: 'b.rules', line: 2 });
        assert.equal(e.message, 'b.rules:2: Append rule - bad keyword bogus');
        return true;
      },
    );
  });
  it('keeps going after -c, carrying -i/-c across files read as one stream', () => {
    const ctx = { ignore: false };
    const first = parseRules('-c\n', 'a', ctx);
    assert.deepEqual(
      first.map((c) => [c.kind, c.kind === 'ignoreErrors' && c.continueMode]),
      [['ignoreErrors', true]],
    );
    const second = parseRules('-a bogus,x\n-b 5\n', 'b', ctx);
    assert.deepEqual(
      second.map((c) => c.kind),
      ['invalid', 'backlogLimit'],
    );
  });
});

describe('rules: -i and -c in files', () => {
  it('records errors after -i as invalid commands', () => {
    const cmds: RuleCommand[] = parseRules('-i\n-a bogus\n-w /etc/passwd\n', 'f');
    assert.deepEqual(
      cmds.map((c) => c.kind),
      ['ignoreErrors', 'invalid', 'add'],
    );
    const inv = cmds[1]!;
    assert.ok(inv.kind === 'invalid' && inv.error.pos?.line === 2);
  });
  it('refuses anything else on the -i line', () => {
    assert.throws(() => parseLine('-i -b 5'), /parameter passed without an option given/);
  });
});

describe('rules: formatter quirks', () => {
  it('prints watches, syscall rules, exclude rules like auditctl -l', () => {
    assert.equal(roundTrip('-w /etc/passwd -p wa -k identity'), '-w /etc/passwd -p wa -k identity');
    assert.equal(roundTrip('-w /etc/passwd'), '-w /etc/passwd -p rwxa');
    assert.equal(
      roundTrip('-a exit,always -F arch=b64 -S adjtimex,settimeofday -k time-change'),
      '-a always,exit -F arch=b64 -S adjtimex,settimeofday -F key=time-change',
    );
    assert.equal(roundTrip('-a always,exclude -F msgtype=CWD'), '-a always,exclude -F msgtype=CWD');
    assert.equal(
      roundTrip('-a always,exit -F arch=b64 -S open -F exit=-EACCES -F auid>=1000 -F auid!=unset -k access'),
      '-a always,exit -F arch=b64 -S open -F exit=-EACCES -F auid>=1000 -F auid!=-1 -F key=access',
    );
    assert.equal(roundTrip('-A always,exit -F path=/etc/shadow -F perm=r'), '-w /etc/shadow -p r');
    assert.equal(
      roundTrip('-a always,exit -F arch=b64 -S 2047 -F pid=1'),
      '-a always,exit -F arch=b64 -S 2047 -F pid=1',
    );
  });
  it('names syscalls with the arch of the previous rule in a listing, as auditctl does', () => {
    const lines = formatRules([rule('-a always,exit -F arch=b32 -S open'), rule('-a always,exit -S open')]);
    assert.deepEqual(lines, ['-a always,exit -F arch=b32 -S open', '-a always,exit -S fork']);
    assert.deepEqual(formatRules([]), ['No rules']);
  });
  it('prints unknown fields and operators the way printf does', () => {
    const r = rule('-a always,exit -F pid=1');
    r.fields[0] = { field: 99, op: 0, value: 7 };
    assert.equal(formatRule(r), '-a always,exit -S all f99(null)7');
  });
});

describe('rules: decoder', () => {
  it('refuses malformed buffers with RuleError', () => {
    assert.throws(() => decodeRule(Buffer.alloc(10)), RuleError);
    const b = encodeRule(rule('-w /etc/passwd -k abc'));
    assert.throws(() => decodeRule(b.subarray(0, b.length - 1)), RuleError);
    const c = Buffer.from(b);
    c.writeUInt32LE(65, 8);
    assert.throws(() => decodeRule(c), RuleError);
  });
});
