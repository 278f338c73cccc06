// The fsync thread's wake-up held (syncHold): logs asked to sync meanwhile wait, and are synced once it is let go, in
// one round; a bad argument is a TypeError. The addon itself, in this process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../../src/kernel/native';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('requests made while held are synced once the hold ends, not before', async () => {
  const a = native();
  const dir = mkdtempSync(join(tmpdir(), 'amhold-'));
  const fds = ['host.log', 'aux.log'].map((f) => openSync(join(dir, f), 'a', 0o600));
  try {
    for (const fd of fds) writeSync(fd, 'type=SYSCALL msg=audit(1.000:1): a=1\n');
    const slots = fds.map((fd) => a.syncOpen(fd));
    // A first round, so that the thread is started and waiting (one that finds a request when it looks syncs it,
    // held or not: only wake-ups are held).
    for (const s of slots) a.syncRequest(s);
    for (let i = 0; i < 200 && slots.some((s) => a.syncTake(s)[0] < 1); i++) await sleep(25);
    await sleep(100);
    a.syncHold(true);
    try {
      for (const s of slots) assert.equal(a.syncRequest(s), 1);
      // Nothing wakes the thread while held: the fsyncs of a few bytes would be done well within this.
      await sleep(300);
      for (const s of slots) assert.deepEqual(a.syncTake(s), [1, 0], 'synced while held');
    } finally {
      a.syncHold(false);
    }
    for (let i = 0; i < 200 && slots.some((s) => a.syncTake(s)[0] < 2); i++) await sleep(25);
    for (const s of slots) assert.equal(a.syncTake(s)[0], 2, 'synced once let go');
    for (const s of slots) assert.deepEqual(a.syncClose(s), [2, 0]);
  } finally {
    a.syncHold(false);
    for (const fd of fds) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a hold with no request does not wake the thread, and syncHold takes a boolean only', () => {
  const a = native();
  a.syncHold(true);
  a.syncHold(false);
  for (const bad of [undefined, 1, 'true', null])
    assert.throws(
      () => (a.syncHold as (v: unknown) => void)(bad),
      (e: Error) => e instanceof TypeError && /syncHold\(on\)/.test(e.message),
    );
});
