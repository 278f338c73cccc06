// StreamedEvent on its own: a collecting daemon gone by the event's end, and an event let go half-made (reset).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { StreamedEvent, type RecordStream } from '../../src/daemon/streamed-event';
import { intBelow, prng } from '../helpers/prng';
import type { EventRecord } from '../../src/records/event';

const payload = (serial: number, body: string): Buffer => Buffer.from(`audit(1.000:${serial}): ${body}`, 'latin1');
/** A SYSCALL record as the reassembler hands it over: its payload and where its body starts. */
const first = (p: Buffer): EventRecord & { bodyStart: number } => ({
  type: 1300,
  payload: p,
  bodyStart: p.indexOf('): ') + 3,
});

function harness(taken: boolean | undefined): {
  ev: StreamedEvent;
  host: string[][];
  queued: Array<[string, string[]]>;
  noDaemon: () => number;
} {
  const host: string[][] = [];
  const queued: Array<[string, string[]]> = [];
  let orphans = 0;
  const text = (rs: readonly EventRecord[]): string[] => rs.map((r) => `${r.type} ${r.payload.toString('latin1')}`);
  const ev = new StreamedEvent({
    toHost: (rs) => host.push(text(rs)),
    enqueue: (name, rs) => {
      queued.push([name, text(rs)]);
      return taken;
    },
    noteEvent: () => undefined,
    noDaemon: () => orphans++,
  });
  return { ev, host, queued, noDaemon: () => orphans };
}

test('a collecting daemon gone by the end: the host gets the event whole, counted as no daemon', () => {
  const { ev, host, queued, noDaemon } = harness(undefined);
  const sc = payload(5, 'syscall=2 key="kc"');
  ev.begin(first(sc), null);
  ev.collect('c', [{ type: 1300, payload: sc }]);
  const batch = Buffer.concat([payload(5, 'item=0 name="/x"'), payload(5, 'proctitle=6C73')]);
  const cut = payload(5, 'item=0 name="/x"').length;
  ev.record(1302, batch, 0, cut);
  ev.record(1327, batch, cut, batch.length);
  ev.end('last');
  assert.equal(queued.length, 1, 'offered to c');
  assert.equal(noDaemon(), 1);
  assert.equal(host.length, 1);
  assert.deepEqual(
    host[0]!.map((l) => l.split(' ')[0]),
    ['1300', '1302', '1327', '1320'],
    'whole, with the EOE made for plugins',
  );
});

test('a host that had the event already: a gone daemon adds nothing to it', () => {
  const { ev, host, noDaemon } = harness(undefined);
  const sc = payload(6, 'syscall=2 key="kc"');
  ev.begin(first(sc), null);
  ev.collect(null, [{ type: 1300, payload: sc }]);
  ev.collect('c', [{ type: 1300, payload: sc }]);
  ev.end('eoe');
  assert.equal(host.length, 1, 'the host collected it once');
  assert.equal(noDaemon(), 0);
});

test('an event let go half-made (reset) leaves nothing to the next one', () => {
  const { ev, queued } = harness(true);
  const one = payload(7, 'syscall=2 key="kc"');
  ev.begin(first(one), null);
  ev.collect('c', [{ type: 1300, payload: one }]);
  ev.record(1302, payload(7, 'item=0'), 0, payload(7, 'item=0').length);
  ev.reset();
  const next = payload(8, 'syscall=2 key="kx"');
  ev.begin(first(next), null);
  ev.collect('d', [{ type: 1300, payload: next }]);
  ev.end('eoe');
  assert.deepEqual(queued, [['d', [`1300 ${next.toString('latin1')}`]]], "only the second event's own records");
});

test('property (seeds 1-500): streams whose writer fails at any record get the event whole once; the others every record', () => {
  for (let seed = 1; seed <= 500; seed++) {
    const next = prng(seed);
    const got = new Map<string, string[]>();
    const ev = new StreamedEvent({
      toHost: (rs) =>
        got.set(
          'host',
          rs.map((r) => r.payload.toString('latin1')),
        ),
      enqueue: (name, rs) => {
        assert.ok(!got.has(name), `seed ${seed}: ${name} enqueued once`);
        got.set(
          name,
          rs.map((r) => r.payload.toString('latin1')),
        );
        return true;
      },
      noteEvent: () => undefined,
      noDaemon: () => undefined,
    });
    const names = ['s1', 's2'];
    const written = new Map(names.map((n) => [n, [] as string[]]));
    const failAt = new Map(names.map((n) => [n, intBelow(next, 12)]));
    const takesEoe = intBelow(next, 2) === 0;
    const stream = (name: string): RecordStream => {
      let n = 0;
      return {
        takesEoe,
        beginStream: () => undefined,
        cancelStream: () => assert.fail('not taken back'),
        streamRecord: (_t, b, s, e) => {
          if (n++ === failAt.get(name)) return false;
          written.get(name)!.push(b.toString('latin1', s, e));
          return true;
        },
      };
    };
    // Records in one buffer refilled at every batch end, as the addon's; the SYSCALL too (the EOE made after the
    // PROCTITLE is read from it while its batch lasts, copied out when the event outlives it).
    const batch = Buffer.alloc(4096);
    const text = payload(7, 'syscall=39');
    text.copy(batch, 0);
    const sc = batch.subarray(0, text.length);
    let at = text.length;
    const head = [{ type: 1300, payload: sc }];
    ev.begin(first(sc), null);
    const collector = intBelow(next, 2) === 0;
    if (collector) ev.collect('c', head);
    for (const n of names) ev.stream(n, stream(n), head);
    const all = [text.toString('latin1')];
    const count = intBelow(next, 10);
    for (let i = 0; i < count; i++) {
      if (intBelow(next, 3) === 0) {
        ev.endBatch();
        batch.fill(0x7a);
        at = 0;
      }
      const p = payload(7, `rec${i}`);
      p.copy(batch, at);
      ev.record(1302, batch, at, at + p.length);
      all.push(p.toString('latin1'));
      at += p.length;
    }
    const last = intBelow(next, 2) === 0;
    const eoe = payload(7, '').subarray(0, 'audit(1.000:7): '.length);
    if (!last) {
      eoe.copy(batch, at);
      ev.record(1320, batch, at, at + eoe.length);
    }
    // A stream whose writer failed before the end collects the event: the EOE after PROCTITLE is made then too.
    const failedBefore = names.some((n) => failAt.get(n)! <= count);
    const made = last && (takesEoe || collector || failedBefore);
    ev.end(last ? 'last' : 'eoe');
    if (!last || made) all.push(eoe.toString('latin1'));
    for (const n of names) {
      const failed = failAt.get(n)! < all.length;
      if (failed) assert.deepEqual(got.get(n), all, `seed ${seed}: ${n} failed at ${failAt.get(n)}: the event whole`);
      else {
        assert.equal(got.has(n), false, `seed ${seed}: ${n} not enqueued`);
        assert.deepEqual(written.get(n), all, `seed ${seed}: ${n} every record`);
      }
    }
    if (collector) assert.deepEqual(got.get('c'), all, `seed ${seed}: the collector`);
  }
});

test('an event let go before its records (its head failed somewhere): the streams that began it take their count back', () => {
  const { ev } = harness(true);
  let begun = 0;
  const s: RecordStream = {
    takesEoe: false,
    beginStream: () => begun++,
    cancelStream: () => begun--,
    streamRecord: () => true,
  };
  const sc = payload(9, 'syscall=2');
  ev.begin(first(sc), null);
  ev.stream('s', s, [{ type: 1300, payload: sc }]);
  assert.equal(begun, 1);
  ev.abandon();
  assert.equal(begun, 0, 'the event comes again whole and is counted then');
});
