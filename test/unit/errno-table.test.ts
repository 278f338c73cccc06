// One errno vocabulary: src/errors.ts (kernel replies, log failures) and src/vocab/errno.ts (rules, search) name
// errnos from the same generated table, which is what this machine's libaudit and errno headers give.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { errnoName as errorsErrnoName } from '../../src/errors';
import { errnoName as vocabErrnoName, ERRNOS } from '../../src/vocab/errno';
import { ERRNO_TABLE } from '../../src/errno-table';
import { HEADERS } from '../../scripts/c-defines';

const LIBAUDIT = '/usr/lib/x86_64-linux-gnu/libaudit.so.1';
const haveCc = ((): boolean => {
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const canGenerate =
  haveCc &&
  existsSync(LIBAUDIT) &&
  existsSync(HEADERS.audit) &&
  existsSync(HEADERS.elfEm) &&
  HEADERS.errno.every((p) => existsSync(p));

describe('errno vocabulary', () => {
  it('errors.ts and vocab/errno.ts give the same name for every number (E<n> where libaudit has none)', () => {
    let named = 0;
    for (let n = 0; n < 1024; n++) {
      const v = vocabErrnoName(n);
      assert.equal(errorsErrnoName(n), v ?? `E${n}`, String(n));
      if (v !== undefined) {
        named++;
        assert.equal(ERRNOS.num(v), n, v);
      }
    }
    assert.ok(named > 100, `only ${named} errnos named`);
  });

  it('the names the kernel paths relied on before the table was shared are unchanged', () => {
    // The hand-written table errors.ts carried until the errno vocabulary became one.
    const before: Record<number, string> = {
      1: 'EPERM',
      2: 'ENOENT',
      3: 'ESRCH',
      4: 'EINTR',
      5: 'EIO',
      9: 'EBADF',
      11: 'EAGAIN',
      12: 'ENOMEM',
      13: 'EACCES',
      14: 'EFAULT',
      16: 'EBUSY',
      17: 'EEXIST',
      18: 'EXDEV',
      19: 'ENODEV',
      20: 'ENOTDIR',
      22: 'EINVAL',
      28: 'ENOSPC',
      31: 'EMLINK',
      34: 'ERANGE',
      36: 'ENAMETOOLONG',
      61: 'ENODATA',
      63: 'ENOSR',
      71: 'EPROTO',
      75: 'EOVERFLOW',
      76: 'ENOTUNIQ',
      92: 'ENOPROTOOPT',
      93: 'EPROTONOSUPPORT',
      95: 'EOPNOTSUPP',
      97: 'EAFNOSUPPORT',
      105: 'ENOBUFS',
      110: 'ETIMEDOUT',
      111: 'ECONNREFUSED',
    };
    for (const [n, name] of Object.entries(before)) assert.equal(errorsErrnoName(Number(n)), name, n);
    assert.equal(errorsErrnoName(-1), 'E-1');
  });

  it('primary names come before aliases in the table (the first name of a number is the one printed)', () => {
    const seen = new Set<number>();
    let aliases = false;
    for (const [n] of ERRNO_TABLE) {
      if (seen.has(n)) aliases = true;
      else assert.equal(aliases, false, `primary name of ${n} after an alias`);
      seen.add(n);
    }
    assert.equal(ERRNOS.num('EWOULDBLOCK'), 11);
    assert.equal(errorsErrnoName(11), 'EAGAIN');
  });

  it(
    "the generated files are what this machine's libaudit and headers give (gen-vocab-tables --check)",
    { skip: !canGenerate && 'needs cc, libaudit.so.1 and the linux headers' },
    () => {
      const script = join(__dirname, '..', '..', 'scripts', 'gen-vocab-tables.js');
      const out = execFileSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
      assert.match(out, /^checked .*: \d+ types, \d+ machines, \d+ errnos$/m);
    },
  );
});
