// The collector's reordering as a model check (seeded permutations, drops, duplicates, epochs, bounds) and end to end
// through Collector.handle with stand-in messages: output equals each publisher's order minus its drops, each once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { JsMsg } from '@nats-io/jetstream';
import { Reorderer, type GapInfo, type OrderItem, type ReordererOptions } from '../../src/collect/order';
import { Collector, dirPart, parseOrderState } from '../../src/collect/collector';
import { parseCollectConfig } from '../../src/collect/config';
import { intBelow, prng } from '../helpers/prng';
import { quiet } from '../helpers/nats';

const SEED = Number(process.env.AUDITMUX_FUZZ_SEED ?? 0x0dde);

/** A reorderer whose passed holes are kept in `gaps`; defaults hold everything and wait forever. */
function reorderer<T>(over: Partial<ReordererOptions> = {}): { r: Reorderer<T>; gaps: GapInfo[] } {
  const gaps: GapInfo[] = [];
  const r = new Reorderer<T>({
    waitMs: 1e9,
    maxHeld: 100,
    maxHeldBytes: 1e9,
    maxPublishers: 10,
    onGap: (g) => gaps.push(g),
    ...over,
  });
  return { r, gaps };
}

interface Ev {
  pub: string;
  epoch: string;
  n: number;
  id: string;
}

/**
 * What the stream delivers for one publisher's epoch 1..count: `drops` removed (never stored), each message delayed by
 * up to `maxDelay` positions (a failed publish resent after later ones were stored), some delivered twice later.
 */
function streamOf(
  next: () => number,
  pub: string,
  epoch: string,
  count: number,
  dropRate: number,
  maxDelay: number,
  dupRate: number,
): { arrivals: { pos: number; ev: Ev }[]; kept: Ev[] } {
  const kept: Ev[] = [];
  const arrivals: { pos: number; ev: Ev }[] = [];
  for (let n = 1; n <= count; n++) {
    const ev = { pub, epoch, n, id: `${pub}:${epoch}:${n}` };
    if (next() < dropRate) continue;
    kept.push(ev);
    const pos = n + intBelow(next, maxDelay + 1) + next() / 2;
    arrivals.push({ pos, ev });
    if (next() < dupRate) arrivals.push({ pos: pos + 1 + intBelow(next, maxDelay * 3 + 1), ev });
  }
  return { arrivals, kept };
}

/** Feeds arrivals 1 ms apart, then lets every hold expire; returns what came out, as a collector would dedup it. */
function run(r: Reorderer<Ev>, arrivals: Ev[]): { written: Ev[]; late: Ev[]; dups: number } {
  const written: Ev[] = [];
  const late: Ev[] = [];
  const seen = new Set<string>();
  let dups = 0;
  const take = (items: OrderItem<Ev>[]): void => {
    for (const it of items) {
      if (seen.has(it.value.id)) {
        dups++;
        continue;
      }
      seen.add(it.value.id);
      written.push(it.value);
      if (it.late) late.push(it.value);
    }
  };
  let t = 0;
  for (const ev of arrivals) {
    t += 1;
    take(r.offer(ev.pub, ev, ev.id, 100, ev, t));
    take(r.expire(t));
  }
  take(r.expire(t + 1e9));
  return { written, late, dups };
}

function byPublisher(evs: Ev[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const e of evs) m.set(e.pub, [...(m.get(e.pub) ?? []), e.id]);
  return m;
}

/** Interleaves several arrival lists at random, each keeping its own order. */
function merge(next: () => number, lists: Ev[][]): Ev[] {
  const idx = lists.map(() => 0);
  const out: Ev[] = [];
  for (;;) {
    const open = lists.map((_l, i) => i).filter((i) => (idx[i] as number) < (lists[i] as Ev[]).length);
    if (open.length === 0) return out;
    const i = open[intBelow(next, open.length)] as number;
    out.push((lists[i] as Ev[])[idx[i] as number] as Ev);
    idx[i] = (idx[i] as number) + 1;
  }
}

const sortedArrivals = (a: { pos: number; ev: Ev }[]): Ev[] => a.sort((x, y) => x.pos - y.pos).map((x) => x.ev);

test('model: seeded permutations with drops and duplicates come out in publisher order minus drops, each once', () => {
  const next = prng(SEED);
  for (let round = 0; round < 200; round++) {
    const pubs = 1 + intBelow(next, 4);
    const maxDelay = intBelow(next, 40);
    const lists: Ev[][] = [];
    const kept: Ev[] = [];
    for (let p = 0; p < pubs; p++) {
      const s = streamOf(
        next,
        `h${p} host out`,
        '1700000000000',
        1 + intBelow(next, 300),
        next() * 0.1,
        maxDelay,
        0.05,
      );
      lists.push(sortedArrivals(s.arrivals));
      kept.push(...s.kept);
    }
    const arrivals = merge(next, lists);
    const gaps: GapInfo[] = [];
    // Arrivals are 1 ms apart: an event delayed by maxDelay positions arrives within that many ms of any later one.
    const r = new Reorderer<Ev>({
      waitMs: arrivals.length + 10,
      maxHeld: 100000,
      maxHeldBytes: 1e12,
      maxPublishers: 100,
      onGap: (g) => gaps.push(g),
    });
    const out = run(r, arrivals);
    const want = byPublisher(kept);
    assert.deepEqual(byPublisher(out.written), want, `round ${round} (seed ${SEED})`);
    assert.equal(out.late.length, 0, `round ${round}: nothing written late`);
    assert.equal(r.held, 0);
    // Every passed hole is a real drop: numbers in from..to were never stored. Holes at a publisher's start are not
    // counted as gaps.
    const keptIds = new Set(kept.map((e) => e.id));
    for (const g of gaps)
      for (let n = g.from; n <= g.to; n++) assert.ok(!keptIds.has(`${g.publisher}:${g.epoch}:${n}`), JSON.stringify(g));
    assert.equal(r.gaps, gaps.filter((g) => g.reason !== 'start').length);
  }
});

test('model: a new epoch after the old one is complete; stragglers of the old epoch are late, written once', () => {
  const next = prng(SEED + 1);
  for (let round = 0; round < 100; round++) {
    const a = streamOf(next, 'n d o', '100', 1 + intBelow(next, 100), 0.05, 10, 0.1);
    const b = streamOf(next, 'n d o', '200', 1 + intBelow(next, 100), 0.05, 10, 0);
    // The publisher's spool was empty before epoch 200 began: every epoch-100 event is in the stream before it.
    const arrivals = [...sortedArrivals(a.arrivals), ...sortedArrivals(b.arrivals)];
    // A redelivery of an old one after the switch.
    const old = a.kept[intBelow(next, a.kept.length)] as Ev;
    arrivals.splice(arrivals.length - intBelow(next, 5), 0, old);
    const r = new Reorderer<Ev>({ waitMs: 1e6, maxHeld: 1e5, maxHeldBytes: 1e12, maxPublishers: 10 });
    const out = run(r, arrivals);
    assert.deepEqual(
      out.written.map((e) => e.id),
      [...a.kept, ...b.kept].map((e) => e.id),
      `round ${round}`,
    );
  }
});

test('hole never filled: passed after reorder_wait, counted, the late event is written once after the others', () => {
  const { r, gaps } = reorderer<string>({ waitMs: 1000 });
  const tag = (n: number) => ({ epoch: '7', n });
  assert.deepEqual(r.offer('p', tag(1), 'a1', 10, 'a1', 0), [{ value: 'a1', late: false }]);
  assert.deepEqual(r.offer('p', tag(3), 'a3', 10, 'a3', 10), []);
  assert.deepEqual(r.offer('p', tag(4), 'a4', 10, 'a4', 20), []);
  assert.equal(r.held, 2);
  assert.equal(r.due(1009), false);
  assert.deepEqual(r.expire(1009), []);
  assert.equal(r.due(1010), true);
  assert.deepEqual(r.expire(1010), [
    { value: 'a3', late: false },
    { value: 'a4', late: false },
  ]);
  assert.deepEqual(gaps, [{ publisher: 'p', epoch: '7', from: 2, to: 2, reason: 'wait' }]);
  assert.equal(r.gaps, 1);
  assert.deepEqual(r.offer('p', tag(2), 'a2', 10, 'a2', 2000), [{ value: 'a2', late: true }]);
  assert.deepEqual(r.offer('p', tag(5), 'a5', 10, 'a5', 2001), [{ value: 'a5', late: false }]);
});

test('a publisher first seen past N=1 waits for its start; a start never seen is passed without counting a gap', () => {
  const { r, gaps } = reorderer<string>({ waitMs: 1000 });
  // The stream's first messages of p: 3, 1, 2 (a window published while the stream's leader was elected).
  assert.deepEqual(r.offer('p', { epoch: '5', n: 3 }, 'p3', 1, 'p3', 0), []);
  assert.deepEqual(r.offer('p', { epoch: '5', n: 1 }, 'p1', 1, 'p1', 1), [{ value: 'p1', late: false }]);
  assert.deepEqual(r.offer('p', { epoch: '5', n: 2 }, 'p2', 1, 'p2', 2), [
    { value: 'p2', late: false },
    { value: 'p3', late: false },
  ]);
  // q's first events were consumed before this collector existed: it starts at its first event after reorder_wait.
  assert.deepEqual(r.offer('q', { epoch: '5', n: 40 }, 'q40', 1, 'q40', 10), []);
  assert.deepEqual(r.expire(1010), [{ value: 'q40', late: false }]);
  assert.deepEqual(gaps, [{ publisher: 'q', epoch: '5', from: 1, to: 39, reason: 'start' }]);
  assert.equal(r.gaps, 0);
  assert.deepEqual(r.offer('q', { epoch: '5', n: 41 }, 'q41', 1, 'q41', 1011), [{ value: 'q41', late: false }]);
});

test('hold bounds: the publisher holding longest gives way when the count or the bytes are reached', () => {
  const { r, gaps } = reorderer<string>({ maxHeld: 3, maxHeldBytes: 1000 });
  r.offer('a', { epoch: '1', n: 1 }, 'a1', 1, 'a1', 0);
  r.offer('b', { epoch: '1', n: 1 }, 'b1', 1, 'b1', 0);
  assert.deepEqual(r.offer('a', { epoch: '1', n: 3 }, 'a3', 1, 'a3', 1), []);
  assert.deepEqual(r.offer('b', { epoch: '1', n: 5 }, 'b5', 1, 'b5', 2), []);
  assert.deepEqual(r.offer('b', { epoch: '1', n: 6 }, 'b6', 1, 'b6', 3), []);
  // A fourth held event: a's hole (held since t=1) is passed, not b's.
  assert.deepEqual(r.offer('b', { epoch: '1', n: 7 }, 'b7', 1, 'b7', 4), [{ value: 'a3', late: false }]);
  assert.deepEqual(
    gaps.map((g) => [g.publisher, g.from, g.to, g.reason]),
    [['a', 2, 2, 'bound']],
  );
  assert.equal(r.held, 3);
  // Bytes: one large event takes b's hold over 1000 bytes: its first hole (8) is passed, 998 bytes stay held.
  const out = r.offer('b', { epoch: '1', n: 9 }, 'b9', 998, 'b9', 5);
  assert.deepEqual(
    out.map((o) => o.value),
    ['b5', 'b6', 'b7'],
  );
  assert.equal(r.held, 1);
  assert.equal(r.heldBytes, 998);
});

test('a held event delivered again replaces the held delivery; one with another id and a held number is late', () => {
  const r = new Reorderer<string>({ waitMs: 1e9, maxHeld: 10, maxHeldBytes: 1e9, maxPublishers: 10 });
  r.offer('p', { epoch: '1', n: 1 }, 'x1', 1, 'd1', 0);
  assert.deepEqual(r.offer('p', { epoch: '1', n: 3 }, 'x3', 1, 'first', 1), []);
  assert.deepEqual(r.offer('p', { epoch: '1', n: 3 }, 'x3', 1, 'again', 2), []);
  assert.deepEqual(r.offer('p', { epoch: '1', n: 3 }, 'other', 1, 'other', 3), [{ value: 'other', late: true }]);
  assert.deepEqual(r.offer('p', { epoch: '1', n: 2 }, 'x2', 1, 'd2', 4), [
    { value: 'd2', late: false },
    { value: 'again', late: false },
  ]);
});

test('publishers past the bound are forgotten least recently seen first, their held events passed', () => {
  const { r, gaps } = reorderer<string>({ maxPublishers: 2 });
  r.offer('a', { epoch: '1', n: 1 }, 'a1', 1, 'a1', 0);
  r.offer('a', { epoch: '1', n: 3 }, 'a3', 1, 'a3', 0);
  r.offer('b', { epoch: '1', n: 1 }, 'b1', 1, 'b1', 0);
  const out = r.offer('c', { epoch: '1', n: 1 }, 'c1', 1, 'c1', 0);
  assert.deepEqual(
    out.map((o) => o.value),
    ['a3', 'c1'],
  );
  assert.equal(r.publishers, 2);
  assert.equal(gaps[0]?.reason, 'evicted');
});

test('held events are reported stale for in-progress acks once per interval', () => {
  const r = new Reorderer<string>({ waitMs: 1e9, maxHeld: 10, maxHeldBytes: 1e9, maxPublishers: 10 });
  r.offer('p', { epoch: '1', n: 1 }, 'a', 1, 'a', 0);
  r.offer('p', { epoch: '1', n: 5 }, 'e', 1, 'e', 0);
  assert.deepEqual(r.stale(9, 10), []);
  assert.deepEqual(r.stale(10, 10), ['e']);
  assert.deepEqual(r.stale(15, 10), []);
  assert.deepEqual(r.stale(20, 10), ['e']);
});

test('order state file: strict reading, damaged entries dropped and counted', () => {
  assert.deepEqual(parseOrderState('{"v":1,"publishers":{"n d o":["12",5,"11"]}}'), {
    publishers: { 'n d o': ['12', 5, '11'] },
    bad: 0,
  });
  const r = parseOrderState(
    '{"v":1,"publishers":{"n/x d o":["1",1],"n d o":["1",0],"a b c":["x",2],"a b d":[1,2],"ok ok ok":["3",4]}}',
  );
  assert.deepEqual(r, { publishers: { 'ok ok ok': ['3', 4] }, bad: 4 });
  assert.equal(parseOrderState('not json').bad, 1);
  assert.equal(parseOrderState('{"v":2,"publishers":{}}').bad, 1);
  assert.equal(parseOrderState('[]').bad, 1);
});

// ---- Collector.handle end to end with stand-in messages (no server): the log is in order; restarts keep it ----

interface FakeMsg {
  acked: boolean;
  naked: boolean;
  termed: boolean;
  working: number;
}

function event(i: number): string {
  return `type=SYSCALL msg=audit(1700000000.${String(i % 1000).padStart(3, '0')}:${5000 + i}): syscall=257 key="k"`;
}

function msg(i: number, seqHeader: string | null, st: FakeMsg[], node = 'h1', seq = i + 1): JsMsg {
  const s: FakeMsg = { acked: false, naked: false, termed: false, working: 0 };
  st.push(s);
  const h = new Map<string, string>([
    ['Nats-Msg-Id', `${node}:noboot:1700000000.${String(i % 1000).padStart(3, '0')}:${5000 + i}`],
    ['Auditmux-Daemon', 'host'],
  ]);
  if (seqHeader !== null) h.set('Auditmux-Seq', seqHeader);
  return {
    headers: { get: (k: string) => h.get(k) ?? '' },
    data: Buffer.from(`node=${node} ${event(i)}\n`, 'latin1'),
    info: { redelivered: false, pending: 0 },
    subject: `audit.${node}.host.none`,
    seq,
    ack: () => (s.acked = true),
    nak: () => (s.naked = true),
    term: () => (s.termed = true),
    working: () => s.working++,
  } as unknown as JsMsg;
}

function withCollector(yaml: string, fn: (mk: () => Collector, dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'auditmux-order-'));
  const mk = (): Collector =>
    new Collector(
      parseCollectConfig(`servers: [nats://127.0.0.1:1]\ndir: ${dir}\n${yaml}`, path.join(dir, 'c.yaml')),
      quiet,
    );
  return fn(mk, dir).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
}

const logOf = (dir: string, node = 'h1'): string[] =>
  fs
    .readFileSync(path.join(dir, node, 'audit.log'), 'latin1')
    .split('\n')
    .filter((l) => l)
    .map((l) => (/:(\d+)\)/.exec(l) as RegExpExecArray)[1] as string);

test('collector: a permuted stream is written in publisher order, each event once, acks only after the write', () =>
  withCollector('reorder_wait: 5\n', async (mk, dir) => {
    const c = mk();
    const next = prng(SEED + 7);
    const order = Array.from({ length: 60 }, (_, i) => i);
    // Each event moved back by up to 8 places (the window's failed publishes), the first kept first.
    const pos = order.map((i) => (i === 0 ? -1 : i + intBelow(next, 9) + next() / 2));
    const arrival = [...order].sort((a, b) => (pos[a] as number) - (pos[b] as number));
    assert.notDeepEqual(arrival, order, 'the seed must produce a real permutation');
    const st: FakeMsg[] = [];
    const msgs = arrival.map((i) => msg(i, `out:1700000000000.${i + 1}`, st));
    for (let k = 0; k < msgs.length; k += 7) await c.handle(msgs.slice(k, k + 7));
    assert.deepEqual(
      logOf(dir),
      order.map((i) => String(5000 + i)),
    );
    assert.ok(st.every((s) => s.acked && !s.naked && !s.termed));
    assert.equal(c.counters.written, 60);
    assert.equal(c.counters.gaps, 0);
    assert.equal(c.counters.late, 0);
    await c.stop();
  }));

test('collector: positions survive a restart (state file); a bad header is counted and its event written', () =>
  withCollector('reorder_wait: 5\n', async (mk, dir) => {
    const st: FakeMsg[] = [];
    let c = mk();
    await c.handle([0, 1, 2].map((i) => msg(i, `out:9.${i + 1}`, st)));
    await c.handle([msg(4, 'out:9.5', st)]);
    assert.equal(c.counters.held, 1);
    assert.equal(st[3]?.acked, false, 'a held event is not acknowledged');
    // Restart: the held event was never acknowledged, so the server delivers it again, before event 3 (k failed).
    await c.stop();
    c = mk();
    (c as unknown as { loadOrder(): void }).loadOrder();
    await c.handle([msg(4, 'out:9.5', st)]);
    assert.equal(c.counters.held, 1, 'the restarted collector knows event 4 comes after the missing 3');
    await c.handle([msg(3, 'out:9.4', st), msg(5, 'out:9/6', st), msg(6, `out:9.${'9'.repeat(40)}`, st)]);
    assert.deepEqual(logOf(dir), ['5000', '5001', '5002', '5003', '5004', '5005', '5006']);
    assert.equal(c.counters.seqErrors, 2);
    assert.equal(c.counters.rejected, 0);
    await c.stop();
  }));

test('collector: messages without the header (older publishers) are written as they come', () =>
  withCollector('', async (mk, dir) => {
    const c = mk();
    const st: FakeMsg[] = [];
    await c.handle([2, 0, 1].map((i) => msg(i, null, st)));
    assert.deepEqual(logOf(dir), ['5002', '5000', '5001']);
    assert.equal(c.counters.held, 0);
    await c.stop();
  }));

test('collector config: reorder_wait and reorder_max, ordering off by default with claims', () => {
  const p = (y: string) => parseCollectConfig(`servers: [nats://127.0.0.1:1]\n${y}`, '/x/c.yaml');
  assert.equal(p('').reorderWaitMs, 20000);
  assert.equal(p('reorder_wait: 0\n').reorderWaitMs, 0);
  assert.equal(p('claims: {}\n').reorderWaitMs, 0);
  assert.equal(p('claims: {}\nreorder_wait: 3\n').reorderWaitMs, 3000);
  assert.equal(p('').reorderMax, 4096);
  assert.throws(() => p('reorder_wait: -1\n'), /reorder_wait/);
  assert.throws(() => p('reorder_max: 0\n'), /reorder_max/);
});

test('order state file fuzz (fixed seed): never throws, keeps only entries made of tokens and digits', () => {
  const next = prng(SEED + 11);
  const pieces = [
    '{',
    '}',
    '[',
    ']',
    '"',
    ':',
    ',',
    '"v":1',
    '"publishers":',
    '"n d o"',
    '"1"',
    '2',
    '-1',
    '1e99',
    'null',
    '"a/b c d"',
    '" x y"',
    '"\\u0000"',
    '"9007199254740993"',
    '9007199254740993',
    'true',
    ' ',
    '\n',
    '"é"',
  ];
  let kept = 0;
  for (let i = 0; i < 20000; i++) {
    let t = next() < 0.5 ? '{"v":1,"publishers":{' : '';
    for (let k = intBelow(next, 20); k > 0; k--) t += pieces[intBelow(next, pieces.length)];
    if (next() < 0.5) t += '}}';
    const r = parseOrderState(t);
    assert.ok(r.bad >= 0);
    for (const [k, v] of Object.entries(r.publishers)) {
      kept++;
      assert.match(k, /^[A-Za-z0-9_~-]+ [A-Za-z0-9_~-]+ [A-Za-z0-9_~-]+$/);
      assert.match(v[0], /^[0-9]{1,16}$/);
      assert.ok(Number.isSafeInteger(v[1]) && v[1] >= 1);
    }
  }
  const good = parseOrderState('{"v":1,"publishers":{"n d o":["1",2]}}');
  assert.equal(Object.keys(good.publishers).length + kept >= 1, true);
});

test('collector: an event whose log write fails is not acknowledged, and written once when it comes again', () =>
  withCollector('reorder_wait: 5\n', async (mk, dir) => {
    const c = mk();
    const st: FakeMsg[] = [];
    await c.handle([msg(0, null, st)]);
    assert.equal(st[0]?.acked, true);
    // The node's log file, swapped for /dev/full under the writer: its next write fails with ENOSPC, as on a full disk.
    const log = (c as unknown as { logs: Map<string, { writer: unknown }> }).logs.values().next().value!;
    const file = (log.writer as { file: { fd: number } }).file;
    const fd = file.fd;
    const full = fs.openSync('/dev/full', 'w');
    file.fd = full;
    try {
      await c.handle([msg(1, null, st)]);
    } finally {
      file.fd = fd;
      fs.closeSync(full);
    }
    assert.deepEqual([st[1]?.acked, st[1]?.naked], [false, true], 'a failed write: nak, never ack');
    await c.handle([msg(1, null, st)]);
    assert.equal(st[2]?.acked, true, 'the redelivery is written and acknowledged');
    assert.deepEqual(logOf(dir), ['5000', '5001']);
    await c.stop();
  }));

test('collector: the server ending the consumer (a rejection while the loop waits) is counted and retried, not a crash', () =>
  withCollector('', async (mk) => {
    const c = mk();
    const internals = c as unknown as {
      consumer: unknown;
      running: boolean;
      run(): Promise<void>;
      stopConsume: (() => void) | null;
    };
    let calls = 0;
    const st: FakeMsg[] = [];
    internals.consumer = {
      consume: () => {
        calls++;
        const first = calls === 1;
        let stopped = false;
        return Promise.resolve({
          stop: () => void (stopped = true),
          async *[Symbol.asyncIterator]() {
            // The first consumer hands over a message and is ended by the server while the loop waits a macrotask
            // before its batch; the next one idles.
            if (first) {
              yield msg(0, null, st);
              throw new Error('consumer deleted');
            }
            while (!stopped) await new Promise((r) => setTimeout(r, 10));
          },
        });
      },
    };
    internals.running = true;
    const loop = internals.run();
    for (let i = 0; c.counters.errors === 0 || calls < 2; i++) {
      if (i > 300) throw new Error(`no retry: ${calls} consume calls, ${c.counters.errors} errors`);
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.match((c as unknown as { lastError: string }).lastError, /consumer deleted/);
    assert.equal(st[0]?.acked, true, 'the message it handed over was written');
    internals.running = false;
    internals.stopConsume?.();
    await loop;
  }));

test('collector: a message whose subject names another node than its lines and id is refused (node_token)', () =>
  withCollector('', async (mk, dir) => {
    const c = mk();
    const st: FakeMsg[] = [];
    // Published by a host allowed only under audit.h2.>, claiming to be h1 in its lines and id.
    const forged = msg(0, null, st, 'h1');
    (forged as { subject: string }).subject = 'audit.h2.host.none';
    await c.handle([forged, msg(1, null, st, 'h2')]);
    assert.deepEqual(
      st.map((s) => [s.termed, s.acked]),
      [
        [true, false],
        [false, true],
      ],
    );
    assert.equal(c.counters.rejected, 1);
    assert.ok(!fs.existsSync(path.join(dir, 'h1')), "nothing in h1's directory");
    assert.deepEqual(logOf(dir, 'h2'), ['5001']);
    await c.stop();
  })
    .then(() =>
      withCollector('', async (_mk, dir) => {
        // Outputs whose subject template puts {node} third (made before node_token): refused, with the setting named.
        const warned: string[] = [];
        const c = new Collector(parseCollectConfig(`servers: [nats://127.0.0.1:1]\ndir: ${dir}\n`, `${dir}/c.yaml`), {
          ...quiet,
          warn: (o: unknown, m?: string) => void warned.push(`${m} ${JSON.stringify(o)}`),
        });
        const st: FakeMsg[] = [];
        const m = msg(0, null, st, 'h1');
        (m as { subject: string }).subject = 'audit.host.h1.none';
        await c.handle([m]);
        assert.equal(c.counters.rejected, 1);
        assert.match(warned.join('\n'), /token 3 names it: .*set node_token: 3/);
        await c.stop();
      }),
    )
    .then(() =>
      withCollector('node_token: 0\n', async (mk, dir) => {
        // A subject template without {node}: not checked, as before.
        const c = mk();
        const st: FakeMsg[] = [];
        const m = msg(0, null, st, 'h1');
        (m as { subject: string }).subject = 'audit.everyone';
        await c.handle([m]);
        assert.equal(st[0]?.acked, true);
        assert.deepEqual(logOf(dir, 'h1'), ['5000']);
        await c.stop();
      }),
    ));

test('collector: node directory names past 200 bytes are cut and hashed, so two long tokens never share one', () => {
  const a = 'n'.repeat(250);
  const b = `${'n'.repeat(200)}x`;
  assert.equal(dirPart('h1'), 'h1');
  assert.equal(dirPart('x'.repeat(200)), 'x'.repeat(200));
  for (const t of [a, b]) {
    assert.ok(dirPart(t).length <= 201);
    assert.match(dirPart(t), /^n{167}~~[0-9a-f]{32}$/);
  }
  assert.notEqual(dirPart(a), dirPart(b));
});

test('reorderer: one node has at most maxPerNode publishers; the events of one more are handed on unordered', () => {
  const { r } = reorderer<string>({ maxPerNode: 2, maxPublishers: 100 });
  const out = (key: string, n: number): string[] =>
    r.offer(key, { epoch: 'e', n }, `${key}:${n}`, 10, `${key}#${n}`, 0).map((o) => o.value);
  // Two publishers of h1 are ordered: n=2 waits for n=1.
  assert.deepEqual(out('h1 d a', 2), []);
  assert.deepEqual(out('h1 d b', 1), ['h1 d b#1']);
  // A third of h1 (a daemon or output header the host made up) is not tracked: n=2 goes as it comes.
  assert.deepEqual(out('h1 x y', 2), ['h1 x y#2']);
  assert.equal(r.unordered, 1);
  assert.equal(r.publishers, 2);
  // Another node is not limited by h1's publishers.
  assert.deepEqual(out('h2 d a', 2), []);
  assert.equal(r.publishers, 3);
  // A restored state file keeps the same bound.
  const { r: r2 } = reorderer<string>({ maxPerNode: 2, maxPublishers: 100 });
  r2.restore({ 'h1 d a': ['e', 5], 'h1 d b': ['e', 5], 'h1 d c': ['e', 5], 'h2 d a': ['e', 1] });
  assert.equal(r2.publishers, 3);
});

test('collector: node logs past the open-log bound are closed after the batch and opened again when written to', () =>
  withCollector('', async (mk, dir) => {
    const c = mk();
    (c as unknown as { maxOpenLogs: number }).maxOpenLogs = 2;
    const st: FakeMsg[] = [];
    await c.handle([msg(0, null, st, 'h1'), msg(1, null, st, 'h2'), msg(2, null, st, 'h3')]);
    assert.equal(c.counters.nodes, 2, 'the least recently written closed');
    await c.handle([msg(3, null, st, 'h1')]);
    assert.equal(c.counters.nodes, 2);
    assert.ok(st.every((s) => s.acked));
    assert.deepEqual(logOf(dir, 'h1'), ['5000', '5003'], 'reopened and appended, nothing lost');
    assert.deepEqual([logOf(dir, 'h2'), logOf(dir, 'h3')], [['5001'], ['5002']]);
    await c.stop();
  }));
