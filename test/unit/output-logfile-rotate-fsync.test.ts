// A background fsync of a log that was rotated away meanwhile: its error is not the new file's (no suspend).
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LogFile } from '../../src/output/log/file';

test('an async fsync that failed after the file was rotated away (same fd number reused) reports nothing', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'am-logfsync-'));
  fs.chmodSync(dir, 0o700);
  const reports: string[] = [];
  const f = new LogFile(path.join(dir, 'audit.log'), undefined, {
    log: () => undefined,
    report: (op, e) => reports.push(`${op}: ${String((e as Error).message)}`),
  });
  // The pool ran the fsync between the old file's close and the new one's open: EBADF, delivered afterwards.
  const fsync = mock.method(fs, 'fsync', (_fd: number, cb: (e: Error | null) => void) =>
    setImmediate(() => cb(Object.assign(new Error('EBADF: bad file descriptor, fsync'), { code: 'EBADF' }))),
  );
  try {
    f.open();
    const fdOf = (): number => (f as unknown as { fd: number }).fd;
    const before = fdOf();
    f.sync('incremental_async');
    f.seal();
    f.open();
    assert.equal(fdOf(), before, 'the new file has the old fd number (the case that made the error look current)');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.equal(fsync.mock.callCount(), 1);
    assert.deepEqual(reports, [], 'no error reported for the new file');
    // The same error for the file still open is reported.
    f.sync('incremental_async');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.equal(reports.length, 1);
    assert.match(reports[0]!, /^fsync: EBADF/);
  } finally {
    fsync.mock.restore();
    f.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
