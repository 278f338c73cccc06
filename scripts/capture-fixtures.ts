// `npm run fixtures`: regenerates everything the tests compare against from this machine's real kernel and tools:
// the vocabulary tables (libaudit, ausyscall, headers), the auditctl rule fixtures and the auditd record fixtures.
//
// Usage (root, no audit daemon registered, strace and Debian's auditd installed):
//   npm run fixtures                 # all three
//   npm run fixtures -- rules        # some of: tables rules records
// The kernel steps touch the real audit subsystem: run them where nobody else uses it (or under the machine's lock).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const DIST_SCRIPTS = __dirname;

const STEPS: Record<string, { kernel: boolean; argv: string[] }[]> = {
  tables: [
    { kernel: false, argv: [process.execPath, join(DIST_SCRIPTS, 'gen-vocab-tables.js')] },
    { kernel: false, argv: [process.execPath, join(DIST_SCRIPTS, 'gen-syscall-tables.js')] },
  ],
  rules: [{ kernel: true, argv: [process.execPath, join(DIST_SCRIPTS, 'capture-rule-fixtures.js')] }],
  records: [{ kernel: true, argv: ['bash', join(ROOT, 'test', 'fixtures', 'records', 'capture.sh')] }],
};

function main(): number {
  const asked = process.argv.slice(2);
  const names = asked.length ? asked : Object.keys(STEPS);
  for (const n of names) {
    if (!(n in STEPS)) {
      console.error(`capture-fixtures: unknown part "${n}" (one of: ${Object.keys(STEPS).join(' ')})`);
      return 2;
    }
  }
  for (const n of names) {
    for (const step of STEPS[n]!) {
      if (step.kernel && process.geteuid?.() !== 0) {
        console.error(`capture-fixtures: ${n} talks to the kernel's audit subsystem and needs root`);
        return 1;
      }
      console.log(`capture-fixtures: ${n}: ${step.argv.slice(1).join(' ')}`);
      const r = spawnSync(step.argv[0]!, step.argv.slice(1), { cwd: ROOT, stdio: 'inherit' });
      if (r.status !== 0) {
        console.error(`capture-fixtures: ${n} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})`);
        return 1;
      }
    }
  }
  return 0;
}

process.exitCode = main();
