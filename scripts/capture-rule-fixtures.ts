// Captures golden fixtures from the real auditctl: each line of test/fixtures/rules/*.rules loaded, listed, deleted.
//
// Run as root on a machine with auditctl and strace: `node dist/scripts/capture-rule-fixtures.js`.
// For every rule line it records the bytes auditctl sends (AUDIT_ADD_RULE, via strace), the bytes the kernel
// lists back (AUDIT_LIST_RULES), and the `auditctl -l` text; then deletes exactly that rule again (never -D, which
// would take other people's rules with it). errors.rules lines are expected to fail: their stderr is recorded.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLine } from '../src/rules/parser';
import { splitWords } from '../src/rules/words';

/**
 * Lines the capture may hand to the real auditctl: ones our parser turns into exactly one add (they get deleted
 * again), or error lines. `auditctl -R file` (two words) loads a whole file and -D deletes everybody's rules, so
 * those never run, whatever our parser thinks of them; nor does anything that would change kernel settings.
 */
function safeToRun(words: string[], expectError: boolean): boolean {
  if (words[0] === '-R' && words.length === 2) return false;
  if (words[0] === '-D' && (words.length === 1 || (words.length === 3 && words[1] === '-k'))) return false;
  let cmds;
  try {
    cmds = parseLine(words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' '));
  } catch {
    return expectError;
  }
  return cmds.length === 1 && cmds[0]!.kind === 'add';
}

const DIR = join(__dirname, '..', '..', 'test', 'fixtures', 'rules');
const RULE_DATA = 1040;

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

const TRACE = join(mkdtempSync(join(tmpdir(), 'am-rule-capture-')), 'trace');

function run(cmd: string, args: string[]): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs auditctl under strace; the trace goes to a file so auditctl's own stderr stays apart. */
function traced(trace: string, args: string[]): Run & { trace: string } {
  const r = run('strace', ['-f', '-e', `trace=${trace}`, '-xx', '-s', '1000000', '-o', TRACE, 'auditctl', ...args]);
  return { ...r, trace: readFileSync(TRACE, 'utf8') };
}

/** The netlink payloads of the given audit message type strace printed for sendto/recvfrom, trimmed to the rule. */
function payloads(straceText: string, typeName: string): Buffer[] {
  const out: Buffer[] = [];
  for (const line of straceText.split('\n')) {
    if (!line.includes(`nlmsg_type=${typeName}`) || line.includes('MSG_PEEK')) continue;
    const m = /\}, "((?:\\x[0-9a-f]{2})*)"/.exec(line);
    if (!m) continue;
    const b = Buffer.from(m[1]!.replace(/\\x/g, ''), 'hex');
    if (b.length < RULE_DATA) continue;
    out.push(b.subarray(0, RULE_DATA + b.readUInt32LE(1036)));
  }
  return out;
}

function listing(): { text: string[]; bytes: Buffer[] } {
  const r = traced('recvfrom', ['-l']);
  if (r.status !== 0) throw new Error(`auditctl -l failed: ${r.stderr}`);
  const text = r.stdout.split('\n').filter((l) => l !== '' && l !== 'No rules');
  return { text, bytes: payloads(r.trace, 'AUDIT_LIST_RULES') };
}

/** The auditctl arguments that delete what `words` added. */
function deleteArgs(words: string[]): string[] {
  return words.map((w, i) => (i === 0 && (w === '-a' || w === '-A') ? '-d' : i === 0 && w === '-w' ? '-W' : w));
}

function main(): void {
  if (process.getuid?.() !== 0) throw new Error('capture-rule-fixtures needs root');
  const version = run('auditctl', ['-v']).stdout.trim();
  const uname = execFileSync('uname', ['-srm'], { encoding: 'utf8' }).trim();
  const files = readdirSync(DIR)
    .filter((f) => f.endsWith('.rules'))
    .sort();
  for (const f of files) {
    const lines = readFileSync(join(DIR, f), 'utf8').split('\n');
    const cases: unknown[] = [];
    const expectErrors = f === 'errors.rules';
    for (let i = 0; i < lines.length; i++) {
      const words = splitWords(lines[i]!, { file: f, line: i + 1 });
      if (words.length === 0) continue;
      if (!safeToRun(words, expectErrors))
        throw new Error(`${f}:${i + 1}: refusing to run this line with the real auditctl: ${lines[i]}`);
      const before = listing();
      // auditctl -l names syscalls with the arch of the rule listed before, so a 32-bit neighbour would change the
      // text.
      const odd = before.text.find((t) => /arch(=|!=)(b32|0x)/.test(t));
      if (odd) throw new Error(`a rule with a non-host arch is loaded (${odd}): capture needs it gone`);
      const add = traced('sendto', words);
      const auditctlStderr = add.stderr.trim();
      const sent = payloads(add.trace, 'AUDIT_ADD_RULE');
      const after = listing();
      const newText = after.text.filter((t) => !before.text.includes(t));
      const newBytes = after.bytes.filter((b) => !before.bytes.some((x) => x.equals(b)));
      if (newBytes.length > 0 || (add.status === 0 && sent.length > 0)) {
        const d = run('auditctl', deleteArgs(words));
        if (d.status !== 0) throw new Error(`${f}:${i + 1}: could not delete the rule again: ${d.stderr}`);
      }
      if (expectErrors) {
        cases.push({
          line: i + 1,
          rule: lines[i],
          status: add.status,
          stderr: auditctlStderr,
          loaded: newBytes.length > 0,
        });
        continue;
      }
      if (add.status !== 0 || sent.length !== 1 || newBytes.length !== 1 || newText.length !== 1) {
        throw new Error(
          `${f}:${i + 1}: auditctl did not load exactly one rule (status ${add.status}, sent ${sent.length}, listed ${newBytes.length}): ${auditctlStderr}`,
        );
      }
      cases.push({
        line: i + 1,
        rule: lines[i],
        list: newText[0],
        sent: sent[0]!.toString('hex'),
        kernel: newBytes[0]!.toString('hex'),
        warning: auditctlStderr || undefined,
      });
    }
    const out = { generatedBy: 'scripts/capture-rule-fixtures.ts', auditctl: version, uname, source: f, cases };
    writeFileSync(join(DIR, f.replace(/\.rules$/, '.golden.json')), JSON.stringify(out, null, 2) + '\n');
    console.log(`${f}: ${cases.length} case(s)`);
  }
}

try {
  main();
} finally {
  rmSync(join(TRACE, '..'), { recursive: true, force: true });
}
