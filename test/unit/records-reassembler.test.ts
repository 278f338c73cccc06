// reassembler: auparse completion rules, timeouts, overflow, gaps, and a fuzz run checking every record comes out once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reassembler, isSingleRecordType, type AuditEvent } from '../../src/records/reassembler';
import { parseRecord } from '../../src/records/record';
import type { EventRecord } from '../../src/records/event';
import { intBelow, prng } from '../helpers/prng';

const rec = (serial: number, body = 'a=b', ts = '100.001'): Buffer => Buffer.from(`audit(${ts}:${serial}): ${body}`);

function collect(opts = {}): { r: Reassembler; out: AuditEvent[] } {
  const out: AuditEvent[] = [];
  return { r: new Reassembler((e) => out.push(e), opts), out };
}

test('SYSCALL..PROCTITLE..EOE is one event; EOE not kept', () => {
  const { r, out } = collect();
  r.push(1300, rec(1));
  r.push(1307, rec(1));
  r.push(1302, rec(1));
  assert.equal(out.length, 0);
  r.push(1327, rec(1));
  assert.equal(out.length, 1);
  assert.deepEqual(
    out[0]!.records.map((x) => x.type),
    [1300, 1307, 1302, 1327],
  );
  assert.equal(out[0]!.reason, 'last');
  r.push(1320, rec(1, ''));
  assert.equal(out.length, 1);
  assert.equal(r.counters.eoe, 1);
  assert.equal(r.counters.records, 5);
  assert.equal(r.counters.recordsEmitted, 4);
});

test('EOE completes an event without PROCTITLE (dropped under overload)', () => {
  const { r, out } = collect();
  r.push(1300, rec(7));
  r.push(1320, rec(7, ''));
  assert.equal(out.length, 1);
  assert.equal(out[0]!.reason, 'eoe');
  assert.equal(out[0]!.records.length, 1);
});

test('interleaved events are kept apart', () => {
  const { r, out } = collect();
  r.push(1300, rec(1));
  r.push(1300, rec(2));
  r.push(1307, rec(1));
  r.push(1327, rec(2));
  r.push(1327, rec(1));
  assert.deepEqual(
    out.map((e) => [e.serial, e.records.length]),
    [
      [2, 2],
      [1, 3],
    ],
  );
});

test('single-record types', () => {
  for (const t of [1005, 1100, 1200, 1299, 1700, 2000, 2100, 1406, 1419])
    assert.equal(isSingleRecordType(t), true, String(t));
  for (const t of [1300, 1305, 1327, 1400, 1405, 1420, 1699]) assert.equal(isSingleRecordType(t), false, String(t));
  const { r, out } = collect();
  r.push(1300, rec(3));
  r.push(1006, rec(3)); // LOGIN in syscall context: its own event per auparse
  r.push(2000, rec(9));
  assert.deepEqual(
    out.map((e) => [e.serial, e.reason]),
    [
      [3, 'single'],
      [9, 'single'],
    ],
  );
  assert.equal(r.inFlightCount, 1);
});

test('timeout via tick, no timers: an event expires at the first tick after a tick past its deadline', () => {
  let now = 1000;
  const { r, out } = collect({ timeoutMs: 2000, clock: () => now });
  r.tick();
  r.push(1300, rec(1));
  now = 2500;
  r.tick();
  assert.equal(out.length, 0);
  r.endBatch();
  r.push(1300, rec(2));
  now = 3000;
  r.tick();
  assert.equal(out.length, 0, 'the deadline passed at 3000: not yet known that nothing came by then');
  now = 3250;
  r.tick();
  assert.deepEqual(
    out.map((e) => e.serial),
    [1],
  );
  assert.equal(out[0]!.reason, 'timeout');
  now = 5000;
  r.tick();
  now = 5250;
  r.tick();
  assert.equal(r.counters.timeouts, 2);
});

test('the clock starts at construction: an event begun before the first tick is not timed out by it', () => {
  let now = 5_000;
  const { r, out } = collect({ clock: () => now });
  r.push(1300, rec(7));
  now += 250;
  r.tick();
  r.push(1302, rec(7));
  r.push(1320, rec(7));
  assert.deepEqual(
    out.map((e) => [e.serial, e.reason, e.records.map((x) => x.type)]),
    [[7, 'eoe', [1300, 1302]]],
  );
});

test('a stalled loop: the tick that comes first expires nothing whose deadline passed during the stall', () => {
  let now = 0;
  const { r, out } = collect({ timeoutMs: 2000, copy: false, clock: () => now });
  r.push(1300, rec(7));
  r.endBatch();
  now = 250;
  r.tick();
  // The loop stalls 5 s (a slow disk, a long GC); the PATH and EOE of event 7 wait in the socket meanwhile. After a
  // stall the timers run before the socket is polled: the tick comes first.
  now = 5_250;
  r.tick();
  assert.equal(out.length, 0, 'not expired: its last records may be unread');
  r.push(1302, rec(7));
  r.push(1320, rec(7));
  r.endBatch();
  assert.deepEqual(
    out.map((e) => [e.serial, e.reason, e.records.length]),
    [[7, 'eoe', 2]],
  );
  // An event that really ends without its EOE still times out: at the tick after one past its deadline.
  r.push(1300, rec(8));
  r.endBatch();
  now = 7_300;
  r.tick();
  assert.equal(out.length, 1);
  now = 7_550;
  r.tick();
  assert.deepEqual(
    out.map((e) => [e.serial, e.reason]),
    [
      [7, 'eoe'],
      [8, 'timeout'],
    ],
  );
});

test('maxInFlight flushes the oldest', () => {
  const { r, out } = collect({ maxInFlight: 2 });
  r.push(1300, rec(1));
  r.push(1300, rec(2));
  r.push(1300, rec(3));
  assert.deepEqual(
    out.map((e) => [e.serial, e.reason]),
    [[1, 'overflow']],
  );
  assert.equal(r.counters.overflows, 1);
  r.flush();
  assert.equal(out.length, 3);
  assert.equal(r.inFlightCount, 0);
});

test('same serial with another timestamp is a new event', () => {
  const { r, out } = collect();
  r.push(1300, rec(5, 'a=1', '100.001'));
  r.push(1300, rec(5, 'a=2', '200.001'));
  assert.equal(out.length, 1);
  assert.equal(out[0]!.reason, 'replaced');
});

test('serial gaps, late arrivals and wraparound', () => {
  const { r } = collect();
  r.push(1005, rec(10));
  r.push(1005, rec(11));
  r.push(1005, rec(14));
  assert.equal(r.counters.serialGaps, 2);
  r.push(1005, rec(12));
  assert.equal(r.counters.serialGaps, 1);
  const w = collect();
  w.r.push(1005, rec(4294967294));
  w.r.push(1005, rec(4294967295));
  w.r.push(1005, rec(1));
  assert.equal(w.r.counters.serialGaps, 1); // 0 is skipped by the kernel counter only in practice; counted here
  const d = collect();
  d.r.push(1005, rec(100));
  d.r.push(1200, rec(5000)); // daemon serials are not the kernel's
  d.r.push(1005, rec(101));
  assert.equal(d.r.counters.serialGaps, 0);
});

test('malformed records are counted and kept raw', () => {
  const { r, out } = collect();
  r.push(1300, Buffer.from('garbage'));
  assert.equal(r.counters.malformed, 1);
  assert.equal(out[0]!.reason, 'malformed');
  assert.equal(out[0]!.records[0]!.payload.toString(), 'garbage');
});

test('fuzz: random interleaving, drops and garbage; every record out exactly once, counters add up', () => {
  let seed = 4242;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const seen = new Map<string, number>();
  const out: AuditEvent[] = [];
  let now = 0;
  const r = new Reassembler((e) => out.push(e), { maxInFlight: 64, timeoutMs: 50, clock: () => now });
  const live: { serial: number; left: number[] }[] = [];
  let next = 1;
  let pushed = 0;
  const shapes = [
    [1300, 1327, 1320],
    [1300, 1307, 1302, 1302, 1327, 1320],
    [1300, 1306, 1327, 1320],
    [1305],
    [1100],
    [1400, 1300, 1327, 1320],
  ];
  for (let step = 0; step < 30000; step++) {
    if (live.length < 20 && rnd() < 0.5)
      live.push({ serial: next++, left: [...shapes[Math.floor(rnd() * shapes.length)]!] });
    if (live.length === 0) continue;
    const k = Math.floor(rnd() * live.length);
    const ev = live[k]!;
    const type = ev.left.shift()!;
    if (ev.left.length === 0) live.splice(k, 1);
    if (rnd() < 0.05) continue; // the kernel dropped this record
    let b: Buffer;
    let garbage = false;
    if (rnd() < 0.01) {
      // no NULs: the parser cuts there, which would hide the record's identity from this bookkeeping
      b = Buffer.allocUnsafe(1 + Math.floor(rnd() * 40));
      for (let j = 0; j < b.length; j++) b[j] = 1 + Math.floor(rnd() * 255);
      b = Buffer.concat([b, Buffer.from(`#${pushed}`)]);
      garbage = true;
    } else b = rec(ev.serial, `n=${pushed}`);
    pushed++;
    if (type !== 1320 || garbage) seen.set(b.toString('latin1'), (seen.get(b.toString('latin1')) ?? 0) + 1);
    r.push(type, b);
    if (rnd() < 0.01) {
      now += 20;
      r.tick();
    }
  }
  r.flush();
  const c = r.counters;
  assert.equal(c.records, pushed);
  assert.equal(c.records, c.recordsEmitted + c.eoe);
  assert.equal(c.events, out.length);
  let emitted = 0;
  for (const e of out) {
    assert.ok(e.records.length > 0);
    for (const x of e.records) {
      emitted++;
      assert.ok(x.type !== 1320 || x.malformed);
      const key = x.payload.toString('latin1');
      const left = seen.get(key);
      assert.ok(left !== undefined && left > 0, `unexpected record ${key}`);
      seen.set(key, left - 1);
    }
  }
  assert.equal(emitted, c.recordsEmitted);
  for (const [k, v] of seen) assert.equal(v, 0, k);
});

test('copy: false — endBatch copies in-flight records out of the reused batch buffer, completed ones are untouched', () => {
  const { r, out } = collect({ copy: false });
  const a = rec(7, 'x=1');
  const b = rec(8, 'y=2');
  const batch = Buffer.concat([a, b]);
  r.push(1300, batch, 0, a.length);
  r.push(1327, batch, 0, a.length); // ends event 7 in this batch: may stay a view
  r.push(1300, batch, a.length, batch.length); // event 8 waits for its PROCTITLE
  r.endBatch();
  batch.fill(0x41); // the receive buffer is reused for the next batch
  r.push(1327, rec(8, 'proctitle=41'));
  assert.equal(out.length, 2);
  assert.equal(out[1]!.records[0]!.payload.toString(), 'audit(100.001:8): y=2', 'the held record kept its bytes');
  assert.match(
    out[0]!.records[0]!.payload.toString(),
    /^A+$/,
    'an event done within its batch was never copied (a view)',
  );
});

/**
 * The completion rules as the reassembler had them before its newest-event fast path: one insertion-ordered Map of
 * every waiting event. The fast path must emit the same events, in the same order, for the same reasons.
 */
class MapModel {
  readonly out: { serial: number; types: number[]; reason: string }[] = [];
  private readonly m = new Map<number, { sec: string; types: number[]; born: number }>();
  private now = 0;
  /** The latest batch start or tick (see Reassembler.seenMs). */
  private seen = 0;
  private inBatch = false;
  constructor(
    private readonly max: number,
    private readonly clock: () => number,
  ) {}
  endBatch(): void {
    this.inBatch = false;
  }
  push(type: number, serial: number, ts: string): void {
    if (!this.inBatch) {
      this.inBatch = true;
      this.now = this.clock();
      this.seen = Math.max(this.seen, this.now);
    }
    if (type === 1320) {
      const p = this.m.get(serial);
      if (p && p.sec === ts) {
        this.m.delete(serial);
        this.out.push({ serial, types: p.types, reason: 'eoe' });
      }
      return;
    }
    if (isSingleRecordType(type)) {
      this.out.push({ serial, types: [type], reason: 'single' });
      return;
    }
    let p = this.m.get(serial);
    if (p && p.sec !== ts) {
      this.m.delete(serial);
      this.out.push({ serial, types: p.types, reason: 'replaced' });
      p = undefined;
    }
    if (type === 1327) {
      if (p) {
        this.m.delete(serial);
        this.out.push({ serial, types: [...p.types, type], reason: 'last' });
      } else this.out.push({ serial, types: [type], reason: 'last' });
      return;
    }
    if (p) {
      p.types.push(type);
      return;
    }
    this.m.set(serial, { sec: ts, types: [type], born: this.now });
    if (this.m.size > this.max) {
      const [k, v] = this.m.entries().next().value as [number, { types: number[] }];
      this.m.delete(k);
      this.out.push({ serial: k, types: v.types, reason: 'overflow' });
    }
  }
  tick(timeout: number): void {
    const limit = this.seen - timeout;
    this.now = this.clock();
    this.seen = Math.max(this.seen, this.now);
    for (const [k, v] of this.m) {
      if (v.born > limit) break;
      this.m.delete(k);
      this.out.push({ serial: k, types: v.types, reason: 'timeout' });
    }
  }
  flush(): void {
    for (const [k, v] of this.m) this.out.push({ serial: k, types: v.types, reason: 'flush' });
    this.m.clear();
  }
}

test('property: the newest-event fast path emits what one ordered Map of waiting events emits (fixed seeds)', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const next = prng(seed);
    const max = 1 + intBelow(next, 6);
    const timeout = 50;
    let now = 0;
    const clock = (): number => now;
    const { r, out } = collect({ maxInFlight: max, timeoutMs: timeout, copy: seed % 2 === 0, clock });
    const model = new MapModel(max, clock);
    // Mostly whole syscall events one after another, with interleavings, EOEs, stray and reused serials.
    const types = [1300, 1300, 1307, 1302, 1302, 1327, 1327, 1320, 1320, 1105, 1306, 1318];
    for (let i = 0; i < 3000; i++) {
      const serial = 1 + intBelow(next, 8);
      const ts = intBelow(next, 10) === 0 ? '100.002' : '100.001';
      const type = types[intBelow(next, types.length)]!;
      r.push(type, rec(serial, 'a=b', ts));
      model.push(type, serial, ts);
      if (intBelow(next, 50) === 0) {
        now += intBelow(next, 40);
        r.tick();
        model.tick(timeout);
      }
      if (intBelow(next, 100) === 0) {
        r.endBatch();
        model.endBatch();
      }
      assert.equal(r.inFlightCount, (model as unknown as { m: Map<number, unknown> }).m.size, `seed ${seed} at ${i}`);
    }
    r.flush();
    model.flush();
    const got = out.map((e) => ({ serial: e.serial, types: e.records.map((x) => x.type), reason: e.reason }));
    assert.deepEqual(got, model.out, `seed ${seed}`);
  }
});

test('property: records read in place from a batch (EOE stamps without a record object) give what parsed records give (fixed seeds)', () => {
  for (let seed = 1; seed <= 30; seed++) {
    const next = prng(seed);
    const a = collect({ maxInFlight: 4 });
    const b = collect({ maxInFlight: 4 });
    const types = [1300, 1307, 1302, 1327, 1320, 1320, 1320, 1105];
    for (let i = 0; i < 2000; i++) {
      const serial = 1 + intBelow(next, 6);
      const type = types[intBelow(next, types.length)]!;
      const k = intBelow(next, 12);
      // Well-formed, another timestamp, a broken header, NUL padding: what a batch can hold.
      const body =
        k === 0
          ? Buffer.from(`audit(100.0x1:${serial}): `)
          : k === 1
            ? Buffer.from(`audit(100.002:${serial}): \0\0\0`)
            : k === 2
              ? Buffer.from(`audit(100.001:${serial})`)
              : rec(serial, type === 1320 ? '' : 'a=b');
      // The record sits inside a larger batch buffer, between other bytes.
      const pre = intBelow(next, 5);
      const batch = Buffer.concat([Buffer.alloc(pre, 0x41), body, Buffer.alloc(intBelow(next, 5), 0x42)]);
      a.r.push(type, batch, pre, pre + body.length);
      b.r.pushRecord(parseRecord(type, Buffer.from(body), 0, body.length, true));
    }
    a.r.flush();
    b.r.flush();
    const view = (o: AuditEvent[]): unknown =>
      o.map((e) => ({
        e: [e.sec, e.msec, e.serial, e.reason],
        r: e.records.map((x) => [x.type, x.payload.toString()]),
      }));
    assert.deepEqual(view(a.out), view(b.out), `seed ${seed}`);
    assert.deepEqual(a.r.counters, b.r.counters, `seed ${seed}`);
  }
});

test('pass-through: a SYSCALL event goes record by record; timeout, flush, another stamp and the batch end reach it', () => {
  let now = 0;
  const seen: string[] = [];
  const out: AuditEvent[] = [];
  let asked = 0;
  const r = new Reassembler((e) => out.push(e), {
    copy: false,
    clock: () => now,
    timeoutMs: 2000,
    passThrough: () => {
      asked++;
      return {
        record: (type, b, s, e) => seen.push(`${type}:${b.toString('latin1', s, e).slice(0, 14)}`),
        end: (why) => seen.push(`end ${why}`),
        endBatch: () => seen.push('batch'),
      };
    },
  });
  r.push(1300, rec(1));
  r.push(1302, rec(1)); // PATH
  r.push(1320, rec(1, '')); // EOE: passed on, then the end
  assert.deepEqual(seen, ['1302:audit(100.001:', '1320:audit(100.001:', 'end eoe']);
  seen.length = 0;
  r.push(1300, rec(2));
  r.push(1300, rec(10)); // another event while 2 passes: made whole, not asked about
  r.push(1112, rec(2, 'user')); // a user message of the same stamp never joins
  r.endBatch();
  r.push(1302, rec(2, 'p', '100.002')); // the serial under another stamp ends it
  assert.deepEqual(seen, ['batch', 'end replaced']);
  r.push(1320, rec(10, ''));
  r.push(1320, rec(2, '', '100.002'));
  assert.deepEqual(
    out.map((e) => `${e.serial} ${e.reason} ${e.records.map((x) => x.type).join(',')}`),
    ['2 single 1112', '10 eoe 1300', '2 eoe 1302'],
  );
  seen.length = 0;
  r.push(1300, rec(3));
  r.endBatch();
  now = 2500;
  r.tick();
  assert.deepEqual(seen, ['batch'], 'not due: a batch may still hold its records');
  r.tick();
  assert.deepEqual(seen, ['batch', 'end timeout']);
  r.push(1300, rec(5));
  r.flush();
  assert.equal(seen.at(-1), 'end flush');
  assert.equal(r.counters.passed, 4);
  assert.equal(r.counters.timeouts, 1);
  assert.equal(asked, 4);
  assert.equal(r.inFlightCount, 0);
  assert.equal(r.counters.events, 7);
  // Ended at PROCTITLE ('last'): the kernel's EOE next is counted and ends nothing; an EOE of another event that
  // comes there instead still ends that one.
  seen.length = 0;
  out.length = 0;
  const before = { ...r.counters };
  r.push(1300, rec(6));
  r.push(1327, rec(6, 'proctitle=6C73'));
  r.push(1320, rec(6, ''));
  assert.deepEqual(seen, ['1327:audit(100.001:', 'end last']);
  assert.equal(r.counters.eoe - before.eoe, 1);
  assert.equal(r.counters.records - before.records, 3);
  r.push(1307, rec(8, 'cwd="/"')); // another event, made whole
  r.push(1300, rec(7));
  r.push(1327, rec(7, 'proctitle=6C73'));
  r.push(1320, rec(8, ''));
  r.push(1320, rec(7, ''));
  assert.deepEqual(
    out.map((e) => `${e.serial} ${e.reason} ${e.records.map((x) => x.type).join(',')}`),
    ['8 eoe 1307'],
  );
  assert.equal(r.counters.eoe - before.eoe, 3);
  assert.equal(r.inFlightCount, 0);
});

test('pass-through counts toward maxInFlight: the oldest event in flight goes first, passing through or not', () => {
  for (const max of [1, 2, 3]) {
    const ended: string[] = [];
    const out: AuditEvent[] = [];
    // Event mode as the reference: the same records with no pass-through.
    const ref: AuditEvent[] = [];
    const r = new Reassembler((e) => out.push(e), {
      maxInFlight: max,
      passThrough: (first) =>
        first.serial === 1
          ? { record: () => undefined, end: (why) => ended.push(`1 ${why}`), endBatch: () => undefined }
          : null,
    });
    const plain = new Reassembler((e) => ref.push(e), { maxInFlight: max });
    for (const s of [1, 2, 3, 4]) {
      r.push(1300, rec(s));
      plain.push(1300, rec(s));
    }
    const evicted = ref.filter((e) => e.reason === 'overflow').map((e) => e.serial);
    const got = [...(ended.length ? [1] : []), ...out.filter((e) => e.reason === 'overflow').map((e) => e.serial)];
    assert.deepEqual(got.sort(), evicted.sort(), `maxInFlight ${max}: the same events overflow`);
    assert.equal(r.counters.overflows, plain.counters.overflows, `maxInFlight ${max}: counted alike`);
    if (evicted.includes(1)) assert.deepEqual(ended, ['1 overflow']);
    assert.equal(r.inFlightCount, plain.inFlightCount);
  }
});

test('property (seeds 1-40): events passing through give event mode’s events and counters, crafted headers included', () => {
  const types = [1300, 1300, 1302, 1302, 1307, 1327, 1320, 1320, 1320, 1112, 1400, 1316, 1701];
  for (let seed = 1; seed <= 40; seed++) {
    const next = prng(seed);
    let now = 0;
    const view = (e: { sec: number; msec: number; serial: number; reason: string; records: EventRecord[] }): string =>
      `${e.sec}.${e.msec}:${e.serial} ${e.reason} ` +
      e.records.map((r) => `${r.type}|${r.payload.toString('latin1')}`).join(' ; ');
    const passed: string[] = [];
    const made: string[] = [];
    let cur: { sec: number; msec: number; serial: number; reason: string; records: EventRecord[] } | null = null;
    const maxInFlight = [1, 3, 1000][seed % 3]!;
    const a = new Reassembler((e) => passed.push(view(e)), {
      copy: false,
      maxInFlight,
      clock: () => now,
      passThrough: (first) => {
        if (intBelow(next, 4) === 0) return null;
        cur = { ...first, reason: '', records: [{ type: first.type, payload: Buffer.from(first.payload) }] };
        return {
          // The kernel's EOE ends the event; event mode does not keep it.
          record: (t, b, s, e) => {
            if (t !== 1320) cur!.records.push({ type: t, payload: Buffer.from(b.subarray(s, e)) });
          },
          end: (why) => {
            cur!.reason = why;
            passed.push(view(cur!));
            cur = null;
          },
          endBatch: () => undefined,
        };
      },
    });
    const b = new Reassembler((e) => made.push(view(e)), { copy: false, maxInFlight, clock: () => now });
    const batch = Buffer.alloc(1 << 16);
    let at = 0;
    for (let i = 0; i < 3000; i++) {
      const serial = 1 + intBelow(next, 5);
      const type = types[intBelow(next, types.length)]!;
      const ms = ['001', '001', '001', '002', '01', '1'][intBelow(next, 6)]!;
      const h = `audit(100.${ms}:${serial}):`;
      const body =
        [
          h, // an EOE's, no space
          `${h} `,
          h.slice(0, intBelow(next, h.length)), // shorter than a stamp
          `${h} a=b\0\0`, // NUL padding
          `${h.slice(0, 8)}\0${h.slice(9)} x=1`, // a NUL in the header
          `audit(100.${ms}:${serial}0): a=b`, // a serial the stamp is a prefix of
          `audit(100.${ms}:${serial})x a=b`,
          `${h} msg='audit(100.001:${serial}): fake'`, // a header in the body
        ][intBelow(next, 14)] ?? `${h} a=${intBelow(next, 9)}`;
      const p = Buffer.from(body, 'latin1');
      if (at + p.length + 8 > batch.length || intBelow(next, 25) === 0) {
        a.endBatch();
        b.endBatch();
        at = 0;
        batch.fill(0x41); // the buffer refilled: records of the batch before are gone
      }
      at += intBelow(next, 3);
      p.copy(batch, at);
      a.push(type, batch, at, at + p.length);
      b.push(type, batch, at, at + p.length);
      at += p.length;
      if (intBelow(next, 60) === 0) {
        now += intBelow(next, 1500);
        a.tick();
        b.tick();
      }
    }
    a.flush();
    b.flush();
    assert.deepEqual([...passed].sort(), [...made].sort(), `seed ${seed}: the same events`);
    const { passed: n, ...ca } = a.counters;
    const { passed: zero, ...cb } = b.counters;
    assert.deepEqual(ca, cb, `seed ${seed}: the same counters`);
    assert.equal(zero, 0);
    if (seed === 1) assert.ok(n > 50, `events passed through (${n})`);
  }
});
