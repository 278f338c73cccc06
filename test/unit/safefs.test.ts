// readBounded: FIFOs, devices and symlinks refused without hanging or reading, the size limit exact.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IoError } from '../../src/errors';
import { readBounded } from '../../src/safefs';
import { isolated, mkfifoSync } from '../helpers/isolated';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'amsafefs-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function refused(fn: () => unknown, code: string, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof IoError && e.code === code && re.test(e.message), `expected ${code}`);
}

describe('safefs: readBounded', () => {
  it('refuses a FIFO at once instead of waiting for a writer (child process, killed if it hangs)', () => {
    withDir((dir) => {
      const fifo = mkfifoSync(join(dir, 'pipe'));
      const r = isolated(
        `out(require(SRC + '/safefs').readBounded(${JSON.stringify(fifo)}, { limit: 1024, what: 'rules' }).data.length);`,
      );
      assert.equal(r.killed, false, 'readBounded hung on a FIFO');
      assert.deepEqual(r.value, {
        threw: 'IoError',
        code: 'E_NOT_REGULAR',
        message: `rules ${fifo} is not a regular file (refused)`,
      });
    });
  });

  it('refuses /dev/zero before reading a byte', () => {
    refused(() => readBounded('/dev/zero', { limit: 1 << 20 }), 'E_NOT_REGULAR', /\/dev\/zero is not a regular file/);
  });

  it('refuses a directory', () => {
    withDir((dir) => refused(() => readBounded(dir, { limit: 10 }), 'E_NOT_REGULAR', /not a regular file/));
  });

  it('accepts a file of exactly the limit, refuses one byte more', () => {
    withDir((dir) => {
      const p = join(dir, 'f');
      writeFileSync(p, Buffer.alloc(4096, 0x61));
      const r = readBounded(p, { limit: 4096 });
      assert.equal(r.data.length, 4096);
      assert.ok(r.stat.isFile());
      writeFileSync(p, Buffer.alloc(4097, 0x61));
      refused(
        () => readBounded(p, { limit: 4096, what: 'config file' }),
        'E_TOO_LARGE',
        /config file .* is 4097 bytes, over the 4096-byte limit/,
      );
      writeFileSync(p, '');
      assert.equal(readBounded(p, { limit: 0 }).data.length, 0);
    });
  });

  it('refuses a symlink with noFollow, follows it without', () => {
    withDir((dir) => {
      const target = join(dir, 'target');
      writeFileSync(target, 'hello');
      const link = join(dir, 'link');
      symlinkSync(target, link);
      refused(
        () => readBounded(link, { limit: 100, noFollow: true, what: 'config file' }),
        'E_SYMLINK',
        /config file .*link is a symlink \(refused\)/,
      );
      assert.equal(readBounded(link, { limit: 100 }).data.toString(), 'hello');
      // A symlink to a FIFO is refused as not regular, still without blocking.
      const fifo = mkfifoSync(join(dir, 'pipe'));
      symlinkSync(fifo, join(dir, 'pipelink'));
      refused(() => readBounded(join(dir, 'pipelink'), { limit: 100 }), 'E_NOT_REGULAR', /not a regular file/);
    });
  });

  it('a missing file is a typed error naming the errno', () => {
    refused(() => readBounded('/nonexistent/auditmux/x', { limit: 1 }), 'E_IO', /\(ENOENT\)/);
  });
});
