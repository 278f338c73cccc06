// The logs' background fsync thread (incremental_async): its own duplicate of each log, results read by the writer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
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
    assert.equal(native().syncRequest(a), 0, 'a request answers with the syncs completed before it');
    assert.deepEqual(await taken(a, 1), [1, 0]);
    // The thread is asleep again between requests: each one must wake it and be answered with the count so far.
    for (let n = 2; n <= 4; n++) {
      assert.equal(native().syncRequest(a), n - 1);
      assert.deepEqual(await taken(a, n), [n, 0]);
    }
    const b = native().syncOpen(dev);
    assert.notEqual(b, a);
    // Two requests back to back: the second finds the thread woken (or busy) and is served all the same.
    native().syncRequest(a);
    native().syncRequest(b);
    assert.deepEqual(await taken(a, 5), [5, 0]);
    assert.deepEqual(await taken(b, 1), [0, 22]);
    assert.deepEqual(native().syncTake(b), [0, 0], 'an errno is read once');
    // A failure waiting to be read is the request's answer instead of the count (the thread then fails again).
    native().syncRequest(b);
    let answer = 0;
    for (let i = 0; i < 500 && answer === 0; i++) {
      await sleep(10);
      answer = native().syncRequest(b);
    }
    assert.equal(answer, -22);
    // That request asked for one more sync, which fails too: the close waits for it or runs it, and says so.
    assert.deepEqual(native().syncClose(b), [0, 22]);
    assert.throws(() => native().syncTake(b), /no such open slot/);
    assert.throws(() => native().syncClose(b), /no such open slot/);
    assert.throws(() => native().syncRequest(b), /no such open slot/);
    assert.deepEqual(native().syncClose(a), [5, 0]);
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

test('logs asked for together are synced in one round, each counted on its own; a failing one fails alone', async () => {
  const dir = tmpDir();
  const fds = [0, 1, 2, 3].map((i) => fs.openSync(path.join(dir, `log${i}`), 'a'));
  // In the middle of the round: the logs after it must still be synced and counted.
  const dev = fs.openSync('/dev/null', 'a');
  const slots = [...fds.slice(0, 2), dev, ...fds.slice(2)].map((fd) => native().syncOpen(fd));
  const bad = slots[2]!;
  try {
    for (let n = 1; n <= 5; n++) {
      for (const fd of fds) fs.writeSync(fd, `line ${n}\n`);
      // Back to back: the thread finds several (often all) wanted when it wakes, and takes them as one round.
      for (const s of slots) native().syncRequest(s);
      // Logs opened while the round runs grow the thread's table under it (a crash here fails the whole file).
      const extra = Array.from({ length: 8 }, () => native().syncOpen(fds[0]!));
      for (const s of extra) native().syncRequest(s);
      for (const s of slots) {
        if (s === bad) assert.deepEqual(await taken(s, 1), [0, 22], `round ${n}: the device's own error`);
        else assert.deepEqual(await taken(s, n), [n, 0], `round ${n}, slot ${s}`);
      }
      for (const s of extra) assert.deepEqual(native().syncClose(s), [1, 0]);
    }
    for (const s of slots) assert.deepEqual(native().syncClose(s), s === bad ? [0, 0] : [5, 0]);
  } finally {
    for (const fd of [...fds, dev]) fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('more logs than a round takes are served in turn: one asked for all along is synced within two rounds', () => {
  const dir = tmpDir();
  const fd = fs.openSync(path.join(dir, 'f'), 'a');
  // 100 logs, more than the 64 a round takes.
  const slots = Array.from({ length: 100 }, () => native().syncOpen(fd));
  const last = slots[slots.length - 1]!;
  try {
    for (const s of slots) native().syncRequest(s);
    // The others ask again at every turn, faster than a round of 64 fsyncs runs: a round that let in only one of the
    // logs the last one left out would keep `last` waiting for about 36 rounds.
    const deadline = Date.now() + 10_000;
    while (native().syncTake(last)[0] === 0 && Date.now() < deadline)
      for (const s of slots) if (s !== last) native().syncRequest(s);
    assert.equal(native().syncTake(last)[0], 1, 'the last log was synced');
    let others = 0;
    for (const s of slots) if (s !== last) others += native().syncTake(s)[0];
    // Two rounds reach every log; a round or two more may run before the loop sees it.
    assert.ok(others <= 4 * 64, `${others} syncs of the other logs before the last one's first`);
  } finally {
    for (const s of slots) native().syncClose(s);
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a slot id or a descriptor that is not a whole number in range is refused, and no slot is touched', () => {
  const dir = tmpDir();
  const fd = fs.openSync(path.join(dir, 'f'), 'a');
  const a = native().syncOpen(fd);
  try {
    assert.equal(a, 0, 'the first slot: the values below would all have named it once cut to an integer');
    for (const id of [NaN, 0.5, -0.5, 2 ** 32, -1, Infinity, -Infinity, 1e300]) {
      assert.throws(() => native().syncTake(id), RangeError, `syncTake(${id})`);
      assert.throws(() => native().syncRequest(id), RangeError, `syncRequest(${id})`);
      assert.throws(() => native().syncClose(id), RangeError, `syncClose(${id})`);
    }
    for (const bad of ['0', null, undefined, {}]) {
      // @ts-expect-error: not a number, as a caller in plain JavaScript could pass
      assert.throws(() => native().syncTake(bad), RangeError, `syncTake(${String(bad)})`);
      // @ts-expect-error: not a number
      assert.throws(() => native().syncOpen(bad), TypeError, `syncOpen(${String(bad)})`);
    }
    for (const v of [NaN, 0.5, -1, 2 ** 31, Infinity])
      assert.throws(() => native().syncOpen(v), RangeError, `syncOpen(${v}) must not dup another descriptor`);
    assert.deepEqual(native().syncTake(a), [0, 0], 'slot 0 is still open and untouched');
  } finally {
    assert.deepEqual(native().syncClose(a), [0, 0]);
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a worker that loaded the addon first and ends leaves the thread to the process, and its own logs closed', () => {
  const dir = tmpDir();
  // A fresh process, so the worker is the one that starts the thread.
  const script = path.join(dir, 'envs.js');
  const nativePath = path.join(__dirname, '..', '..', 'src', 'kernel', 'native.js');
  fs.writeFileSync(
    script,
    `
const { Worker } = require('node:worker_threads');
const fs = require('node:fs');
const { native } = require(${JSON.stringify(nativePath)});
const file = ${JSON.stringify(path.join(dir, 'log'))};
const w = new Worker(\`
  const { parentPort } = require('node:worker_threads');
  const { native } = require(${JSON.stringify(nativePath)});
  const fd = require('node:fs').openSync(${JSON.stringify(path.join(dir, 'worker-log'))}, 'a');
  parentPort.postMessage(native().syncOpen(fd));
  parentPort.once('message', () => parentPort.close());
\`, { eval: true });
w.once('message', (workerSlot) => {
  const mine = native().syncOpen(fs.openSync(file, 'a'));
  w.once('exit', () => {
    native().syncRequest(mine);
    const deadline = Date.now() + 5000;
    while (native().syncTake(mine)[0] === 0 && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    let workerSlotOpen = true;
    try { native().syncTake(workerSlot); } catch { workerSlotOpen = false; }
    console.log(JSON.stringify({ synced: native().syncTake(mine)[0], workerSlotOpen }));
  });
  w.postMessage('bye');
});
`,
  );
  try {
    const out = execFileSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 });
    assert.deepEqual(JSON.parse(out.trim()), { synced: 1, workerSlotOpen: false });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('closing a slot finishes what was asked and returns its result: a sync, or the error only that sync saw', () => {
  const dir = tmpDir();
  const fd = fs.openSync(path.join(dir, 'f'), 'a');
  const dev = fs.openSync('/dev/null', 'a');
  try {
    // Asked and closed at once: whether the thread started it or not, the close returns only after it ran.
    for (let i = 0; i < 50; i++) {
      const a = native().syncOpen(fd);
      assert.ok(a >= 0);
      native().syncRequest(a);
      assert.deepEqual(native().syncClose(a), [1, 0], `round ${i}`);
      const b = native().syncOpen(dev);
      native().syncRequest(b);
      assert.deepEqual(native().syncClose(b), [0, 22], `round ${i}: the failure is handed back, not dropped`);
    }
    // Nothing asked: nothing run.
    const c = native().syncOpen(fd);
    assert.deepEqual(native().syncClose(c), [0, 0]);
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
  request(id: number): number {
    this.calls.push(`request ${id}`);
    const e = this.errno;
    this.errno = 0;
    return e ? -e : this.done;
  }
  take(id: number): [number, number] {
    this.calls.push(`take ${id}`);
    const e = this.errno;
    this.errno = 0;
    return [this.done, e];
  }
  /** The errno the slot's close hands back with its count (a failure of the last sync). */
  closingErrno = 0;
  close(id: number): [number, number] {
    this.calls.push(`close ${id}`);
    const e = this.closingErrno;
    this.closingErrno = 0;
    return [this.done, e];
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
    assert.deepEqual(syncer.calls, ['open 7', 'request 7'], 'a slot at the first request, its results read with it');
    syncer.done = 1;
    f.sync('incremental_async');
    assert.equal(f.counters.fsyncs, 1, 'counted from the request’s answer');
    syncer.done = 2;
    syncer.errno = 5;
    f.sync('incremental_async');
    assert.deepEqual(syncer.calls.slice(2), ['request 7', 'request 7', 'take 7'], 'a failure: the count read apart');
    assert.deepEqual(reports, ['fsync: EIO']);
    assert.equal(f.counters.fsyncs, 2);
    assert.equal(f.counters.syncRequests, 3);
    f.seal();
    assert.deepEqual(syncer.calls.slice(-1), ['close 7'], 'the slot closed (its results come with the close)');
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
  assert.deepEqual(syncer.calls.slice(-1), ['close 8']);
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

/** A log file on a staged syncer, with what the reporter was told (and what the syncer had been asked by then). */
function stagedLog(syncer: StagedSyncer): { f: LogFile; dir: string; reports: string[]; warnings: string[] } {
  const dir = tmpDir();
  const reports: string[] = [];
  const warnings: string[] = [];
  const f = new LogFile(
    path.join(dir, 'audit.log'),
    undefined,
    {
      log: (_level, msg) => warnings.push(msg),
      report: (op, e) => reports.push(`${op}: ${(e as NodeJS.ErrnoException).code} after ${syncer.calls.at(-1)}`),
    },
    syncer,
  );
  return { f, dir, reports, warnings };
}

test('a sync error is reported after the request it came with, and a status read only counts', () => {
  const syncer = new StagedSyncer();
  const { f, dir, reports } = stagedLog(syncer);
  try {
    f.open();
    f.sync('incremental_async');
    syncer.done = 1;
    syncer.errno = 28;
    // A status read (the writer's counters) takes the results: counted, the error kept for the next report point.
    f.takeSyncs();
    assert.equal(f.counters.fsyncs, 1);
    assert.deepEqual(reports, []);
    f.sync('incremental_async');
    // A disk_full_action that rotates from inside the report finds this request made and this file's state complete.
    assert.deepEqual(reports, ['fsync: ENOSPC after request 7']);
  } finally {
    f.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a rotated-away file\u2019s last sync error is told after the rotation, once; a closed one\u2019s at its close', async () => {
  const syncer = new StagedSyncer();
  const { f, dir, reports } = stagedLog(syncer);
  try {
    f.open();
    f.sync('incremental_async');
    syncer.closingErrno = 5;
    f.seal();
    assert.deepEqual(reports, [], 'not inside the rotation');
    f.open();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(reports, ['fsync: EIO after close 7']);
    f.sync('incremental_async');
    syncer.closingErrno = 5;
    f.close();
    assert.deepEqual(reports, ['fsync: EIO after close 7', 'fsync: EIO after close 8']);
    await new Promise((r) => setImmediate(r));
    assert.equal(reports.length, 2, 'each error once');
  } finally {
    f.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('without the thread (the addon missing), incremental_async syncs in line and warns once', () => {
  const syncer = new StagedSyncer();
  syncer.open = () => {
    throw Object.assign(new Error('pthread_create: Resource temporarily unavailable'), { code: 'EAGAIN' });
  };
  const { f, dir, reports, warnings } = stagedLog(syncer);
  try {
    f.open();
    f.sync('incremental_async');
    f.sync('incremental_async');
    assert.equal(f.counters.fsyncs, 2, 'each request synced at once');
    assert.deepEqual(reports, [], 'not a disk error');
    assert.deepEqual(warnings, ['no background fsync thread (EAGAIN): incremental_async syncs in line']);
  } finally {
    f.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
