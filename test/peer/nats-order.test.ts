// Per-host order through a real nats-server with a publish window: the stream really stores k+1.. before k (k refused
// while later ones were stored), and the collector still writes the host's events in spool order, each once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { DiscardPolicy, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { MsgType } from '../../src/kernel/constants';
import type { NatsOutput } from '../../src/output/nats/output';
import {
  fileLines,
  natsOutput,
  streamMessages,
  syscallEvent,
  until,
  withFleet,
  withServer,
  type Rec,
} from '../helpers/nats';

const BIG = 100;

/** Event i; event BIG carries nine 6000-byte PATH records (about 55 KB, one spool entry, one message). */
function event(i: number): Rec[] {
  const recs = syscallEvent(i);
  if (i !== BIG) return recs;
  const st = /^(audit\([^)]*\))/.exec(recs[0]!.payload.toString('latin1'))![1]!;
  const paths: Rec[] = [];
  for (let k = 1; k <= 9; k++)
    paths.push({
      type: MsgType.PATH,
      payload: Buffer.from(`${st}: item=${k} name="/${String(k).repeat(6000)}" inode=${k} nametype=NORMAL`),
    });
  return [...recs.slice(0, -1), ...paths, recs[recs.length - 1]!];
}

const idOf = (i: number): RegExp =>
  new RegExp(`:1700000000\\.${String(i % 1000).padStart(3, '0')}:${1000 + i}:d[A-Za-z0-9_~-]+$`);

test('a publish refused while later ones of its window are stored: the stream is out of order, the log is not', () =>
  withFleet({ prefix: 'auditmux-order-' }, async (f) => {
    const nc = await connect({ servers: f.urls });
    f.defer(() => nc.close());
    const jsm = await jetstreamManager(nc);
    // Full stream, discard new: a message larger than the room left is refused, smaller later ones still fit.
    await jsm.streams.add({
      name: 'AUDIT',
      subjects: ['audit.>'],
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.New,
      max_bytes: 64 * 1024 * 1024,
      duplicate_window: 120 * 1e9,
    });
    const h = f.host('hosta', { maxInFlight: 256, ackTimeoutMs: 2000, networkRetryMs: 200 }, event);
    h.emit(0, BIG);
    await h.drained();
    const used = (await jsm.streams.info('AUDIT')).state.bytes;
    await jsm.streams.update('AUDIT', { max_bytes: used + 40000 });
    // BIG and the 30 after it go out in one window (all appended before any answer comes back).
    h.emit(BIG, BIG + 31);
    await until(
      async () => (await jsm.streams.info('AUDIT')).state.messages === BIG + 30,
      () => JSON.stringify(h.out.stats()),
    );
    await until(
      () => (h.out.stats().publishErrors as number) > 0,
      () => JSON.stringify(h.out.stats()),
    );
    const before = await streamMessages(f.srv.url, 'AUDIT');
    assert.ok(!before.some((m) => idOf(BIG).test(m.id)), 'the big event was refused');
    assert.ok(
      before.some((m) => idOf(BIG + 1).test(m.id)),
      'an event after it was stored first',
    );
    assert.ok(before.every((m) => m.data.length > 0 && m.subject.startsWith('audit.hosta.')));
    const c = f.collector('fleet', 'consumer: ordered\nack_wait: 5\nbatch: 50\n');
    await c.start();
    // Everything but the big one reached the collector: the 30 after it wait, unacknowledged.
    await until(
      () => c.counters.written === BIG && c.counters.held === 30,
      () => JSON.stringify(c.status()),
    );
    await jsm.streams.update('AUDIT', { max_bytes: 64 * 1024 * 1024 });
    await h.drained();
    await until(
      () => c.counters.written === BIG + 31,
      () => JSON.stringify(c.status()),
    );
    const stream = await streamMessages(f.srv.url, 'AUDIT');
    const seqOf = (i: number): number => stream.find((m) => idOf(i).test(m.id))!.seq;
    assert.ok(seqOf(BIG) > seqOf(BIG + 30), 'the stream holds the big event after the ones published after it');
    assert.equal(stream.length, BIG + 31, 'each event stored once');
    assert.deepEqual(fileLines(path.join(f.dir, 'fleet', 'hosta', 'audit.log')), fileLines(h.log));
    assert.equal(c.counters.gaps, 0);
    assert.equal(c.counters.late, 0);
    assert.equal(c.counters.held, 0);
    assert.equal(c.counters.duplicates, 0);
    assert.equal(c.counters.seqErrors, 0);
  }));

test('the output numbers its spool entries: restarts with a pending spool continue the epoch, an empty spool starts one', () =>
  withServer('auditmux-orderpub-', async (srv, dir) => {
    const sp = path.join(dir, 'spool');
    const feed = (o: NatsOutput, from: number, to: number): void => {
      for (let i = from; i < to; i++) for (const r of syscallEvent(i)) o.writeRecord(r.type, r.payload);
      o.flush();
    };
    const stats = (o: NatsOutput) => (): string => JSON.stringify(o.stats());
    let o = natsOutput([srv.url], sp, 'p1', { maxInFlight: 32, ackTimeoutMs: 1000 });
    try {
      feed(o, 0, 20);
      await until(() => o.stats().delivered === 20, stats(o));
      // Closed with 30 events still spooled (the server hung): they keep their numbers, and the next ones follow.
      await srv.pause();
      feed(o, 20, 50);
      await o.close();
      srv.resume();
      o = natsOutput([srv.url], sp, 'p1', { maxInFlight: 32, ackTimeoutMs: 1000 });
      feed(o, 50, 60);
      await until(() => o.stats().pending === 0 && o.stats().delivered === 40, stats(o));
      // Restarted with an empty spool: a new epoch from 1.
      await o.close();
      o = natsOutput([srv.url], sp, 'p1', { maxInFlight: 32, ackTimeoutMs: 1000 });
      feed(o, 60, 65);
      await until(() => o.stats().delivered === 5, stats(o));
    } finally {
      await o.close();
    }
    const ms = await streamMessages(srv.url, 'AUDIT');
    assert.equal(ms.length, 65);
    const tags = ms.map((m) => /^n0:(\d+)\.(\d+)$/.exec(m.order));
    assert.ok(
      tags.every((t) => t !== null),
      JSON.stringify(ms.map((m) => m.order)),
    );
    const epochs = [...new Set(tags.map((t) => t![1]))];
    assert.equal(epochs.length, 2, `one epoch per empty-spool start: ${epochs.join(' ')}`);
    for (const [i, t] of tags.entries()) {
      assert.equal(t![1], i < 60 ? epochs[0] : epochs[1], `event ${i}`);
      assert.equal(Number(t![2]), i < 60 ? i + 1 : i - 59, `event ${i}`);
    }
  }));
