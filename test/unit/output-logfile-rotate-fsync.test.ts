// The logs' background fsync thread (incremental_async): its own duplicate of each log, results read by the writer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LogFile, nativeSyncer, type Syncer } from '../../src/output/log/file';
import { native } from '../../src/kernel/native';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'am-logfsync-'));
  fs.chmodSync(dir, 0o700);
  return dir;
}

/** Waits (a bounded time) until the thread has completed `n` syncs of `slot`, and returns what take said last. */
async function taken(slot: number, n: number): Promise<[number, number]> {
  let last: [number, number] = [0, 0];
  for (let i = 0; i < 500; i++) {
    last = native().syncTake(slot);
    if (last[0] >= n || last[1] !== 0) return last;
    await sleep(10);
  }
  return last;
}

test('the native thread syncs a file, counts it, and reports a failing fsync by its errno once', async () => {
  const dir = tmpDir();
  const fd = fs.openSync(path.join(dir, 'f'), 'a');
  // fsync of a character device fails with EINVAL: a real failure of the thread's call, not a staged one.
  const dev = fs.openSync('/dev/null', 'a');
  try {
    const a = native().syncOpen(fd);
    native().syncRequest(a);
    assert.deepEqual(await taken(a, 1), [1, 0]);
    const b = native().syncOpen(dev);
    assert.notEqual(b, a);
    native().syncRequest(b);
    assert.deepEqual(await taken(b, 1), [0, 22]);
    assert.deepEqual(native().syncTake(b), [0, 0], 'an errno is read once');
    native().syncClose(b);
    assert.throws(() => native().syncTake(b), /no such open slot/);
    assert.throws(() => native().syncRequest(b), /no such open slot/);
    native().syncClose(a);
    assert.throws(
      () => native().syncOpen(1_000_000),
      (e: NodeJS.ErrnoException) => e.code === 'EBADF' && e.errno === 9 && e.syscall === 'fcntl',
    );
  } finally {
    fs.closeSync(fd);
    fs.closeSync(dev);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the thread keeps the file it was given: closing and reusing the fd number does not redirect its sync', async () => {
  const dir = tmpDir();
  const first = path.join(dir, 'first');
  const fd = fs.openSync(first, 'a');
  const slot = native().syncOpen(fd);
  fs.closeSync(fd);
  // The number goes to a character device, whose fsync would fail: the thread still syncs its duplicate of `first`.
  const dev = fs.openSync('/dev/null', 'a');
  try {
    assert.equal(dev, fd, 'the device got the log\u2019s old fd number');
    native().syncRequest(slot);
    assert.deepEqual(await taken(slot, 1), [1, 0]);
  } finally {
    native().syncClose(slot);
    fs.closeSync(dev);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A syncer whose answers the test stages, recording what the log asked of it. */
class StagedSyncer implements Syncer {
  calls: string[] = [];
  done = 0;
  errno = 0;
  private next = 7;
  open(fd: number): number {
    assert.ok(fd >= 0);
    this.calls.push(`open ${this.next}`);
    return this.next++;
  }
  request(id: number): void {
    this.calls.push(`request ${id}`);
  }
  take(id: number): [number, number] {
    this.calls.push(`take ${id}`);
    const e = this.errno;
    this.errno = 0;
    return [this.done, e];
  }
  close(id: number): void {
    this.calls.push(`close ${id}`);
  }
}

test('a log counts the thread\u2019s syncs, reports its errors as fsync errors, and gives its slot back when sealed', () => {
  const dir = tmpDir();
  const reports: string[] = [];
  const syncer = new StagedSyncer();
  const f = new LogFile(
    path.join(dir, 'audit.log'),
    undefined,
    { log: () => undefined, report: (op, e) => reports.push(`${op}: ${(e as NodeJS.ErrnoException).code}`) },
    syncer,
  );
  try {
    f.open();
    f.sync('incremental_async');
    assert.deepEqual(syncer.calls, ['open 7', 'request 7'], 'a slot at the first request');
    syncer.done = 2;
    syncer.errno = 5;
    f.sync('incremental_async');
    assert.deepEqual(syncer.calls.slice(2), ['take 7', 'request 7'], 'results read at each request');
    assert.deepEqual(reports, ['fsync: EIO']);
    assert.equal(f.counters.fsyncs, 2);
    assert.equal(f.counters.syncRequests, 2);
    f.seal();
    assert.deepEqual(syncer.calls.slice(-2), ['take 7', 'close 7'], 'results read, then the slot closed');
    f.open();
    syncer.done = 0;
    f.sync('incremental_async');
    assert.deepEqual(syncer.calls.slice(-2), ['open 8', 'request 8'], 'the new file has a slot of its own');
    const asked = syncer.calls.length;
    f.sync('none');
    f.sync('data');
    assert.equal(syncer.calls.length, asked, 'other flush modes do not use the thread');
  } finally {
    f.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(syncer.calls.slice(-2), ['take 8', 'close 8']);
  assert.equal(f.counters.fsyncs, 2 + 1 + 1, "the thread\u2019s 2, the fdatasync of 'data' and the close\u2019s own");
});

test('the default syncer is the native thread', () => {
  assert.equal(typeof nativeSyncer.open, 'function');
  const dir = tmpDir();
  const f = new LogFile(path.join(dir, 'audit.log'), undefined, { log: () => undefined, report: () => undefined });
  try {
    f.open();
    f.sync('incremental_async');
    assert.equal(f.counters.syncRequests, 1);
  } finally {
    f.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
