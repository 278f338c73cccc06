// Collector.handle with stand-in messages: what it refuses (and how a refusal leaves the rest of the batch), which
// node and daemon an event is written as, and what a message's id deduplicates against.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
// The module object itself (writable), where `fs` above is a view of getters: a read counter is put in it.
import nodeFs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { JsMsg } from '@nats-io/jetstream';
import { CLOCK_SLACK_MS, Collector } from '../../src/collect/collector';
import { parseCollectConfig } from '../../src/collect/config';
import { nodeText } from '../../src/output/format';
import { subjectToken } from '../../src/output/nats/subject';
import { quiet } from '../helpers/nats';

interface Fake {
  acked: boolean;
  naked: boolean;
  termed: boolean;
}

interface MsgOpts {
  /** node= of the lines as written (escaped), or null for lines without one. */
  lineNode?: string | null;
  /** The node token of the id and the subject. */
  token?: string;
  daemon?: string;
  /** Nats-Msg-Id; default NODE:noboot:TIME:SERIAL. */
  id?: string;
  subject?: string;
  redelivered?: boolean;
  /** When the stream stored it (ms since 1970); default now. */
  storedMs?: number;
  /** Replaces the headers getter or the info getter with one that throws, as nats.js does on malformed input. */
  throwIn?: 'headers' | 'info';
}

function stamp(i: number): string {
  return `1700000000.${String(i % 1000).padStart(3, '0')}:${5000 + i}`;
}

function fakeMsg(i: number, st: Fake[], o: MsgOpts = {}): JsMsg {
  const s: Fake = { acked: false, naked: false, termed: false };
  st.push(s);
  const token = o.token ?? 'h1';
  const lineNode = o.lineNode === undefined ? token : o.lineNode;
  const h = new Map<string, string>([
    ['Nats-Msg-Id', o.id ?? `${token}:noboot:${stamp(i)}`],
    ['Auditmux-Daemon', o.daemon ?? 'host'],
  ]);
  const prefix = lineNode === null ? '' : `node=${lineNode} `;
  const m = {
    data: Buffer.from(`${prefix}type=SYSCALL msg=audit(${stamp(i)}): syscall=257 key="k"\n`, 'latin1'),
    subject: o.subject ?? `audit.${token}.${o.daemon ?? 'host'}.none`,
    ack: () => (s.acked = true),
    nak: () => (s.naked = true),
    term: () => (s.termed = true),
    working: () => undefined,
  };
  const bad = (): never => {
    throw new Error(
      o.throwIn === 'headers' ? "'header' ' ' is not a valid character in a header name" : 'not a js msg',
    );
  };
  Object.defineProperty(m, 'headers', {
    get: o.throwIn === 'headers' ? bad : () => ({ get: (k: string) => h.get(k) }),
  });
  Object.defineProperty(m, 'info', {
    get:
      o.throwIn === 'info'
        ? bad
        : () => ({ redelivered: o.redelivered ?? false, pending: 0, timestampNanos: (o.storedMs ?? Date.now()) * 1e6 }),
  });
  Object.defineProperty(m, 'seq', { get: o.throwIn === 'info' ? bad : () => i + 1 });
  return m as unknown as JsMsg;
}

async function withCollector(yaml: string, fn: (c: Collector, dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'auditmux-check-'));
  const c = new Collector(
    parseCollectConfig(`servers: [nats://127.0.0.1:1]\nreorder_wait: 0\ndir: ${dir}\n${yaml}`, `${dir}/c.yaml`),
    quiet,
  );
  try {
    await fn(c, dir);
  } finally {
    await c.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The serials written to DIR/PARTS.../audit.log. */
function serials(dir: string, ...parts: string[]): string[] {
  const file = path.join(dir, ...parts, 'audit.log');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'latin1')
    .split('\n')
    .filter((l) => l)
    .map((l) => (/:(\d+)\)/.exec(l) as RegExpExecArray)[1] as string);
}

test('a message whose headers or delivery info cannot be read is refused; the rest of the batch is written', () =>
  withCollector('', async (c, dir) => {
    const st: Fake[] = [];
    await c.handle([
      fakeMsg(0, st),
      fakeMsg(1, st, { throwIn: 'headers' }),
      fakeMsg(2, st),
      fakeMsg(3, st, { throwIn: 'info' }),
      fakeMsg(4, st),
    ]);
    assert.deepEqual(
      st.map((s) => (s.acked ? 'ack' : s.termed ? 'term' : s.naked ? 'nak' : '-')),
      ['ack', 'term', 'ack', 'term', 'ack'],
    );
    assert.equal(c.counters.rejected, 2);
    assert.deepEqual(serials(dir, 'h1'), ['5000', '5002', '5004']);
  }));

test('per_daemon: the host and a tenant publishing one event each reach their own log (ids with and without :d)', () =>
  withCollector('per_daemon: true\n', async (c, dir) => {
    const st: Fake[] = [];
    // Ids as outputs make them now (the daemon in the id), then as older outputs made them (the same id from both,
    // told apart by the header only): the recent ids must not take the tenant's copy for the host's.
    await c.handle([
      fakeMsg(0, st, { id: `h1:noboot:${stamp(0)}:dhost` }),
      fakeMsg(0, st, { id: `h1:noboot:${stamp(0)}:dtenant-a`, daemon: 'tenant-a' }),
    ]);
    await c.handle([fakeMsg(1, st), fakeMsg(1, st, { daemon: 'tenant-a' })]);
    // A redelivery of either is still a duplicate, whichever id form it came with.
    await c.handle([fakeMsg(1, st, { id: `h1:noboot:${stamp(1)}:dtenant-a`, daemon: 'tenant-a' }), fakeMsg(0, st)]);
    assert.ok(
      st.every((s) => s.acked),
      JSON.stringify(st),
    );
    assert.equal(c.counters.rejected, 0);
    assert.equal(c.counters.duplicates, 2);
    assert.deepEqual(serials(dir, 'h1', 'host'), ['5000', '5001']);
    assert.deepEqual(serials(dir, 'h1', 'tenant-a'), ['5000', '5001']);
  }));

test('one node log (no per_daemon): the same event from the host and a tenant is written once', () =>
  withCollector('', async (c, dir) => {
    const st: Fake[] = [];
    await c.handle([
      fakeMsg(0, st, { id: `h1:noboot:${stamp(0)}:dhost` }),
      fakeMsg(0, st, { id: `h1:noboot:${stamp(0)}:dtenant-a`, daemon: 'tenant-a' }),
      fakeMsg(1, st, { daemon: 'tenant-a' }),
    ]);
    assert.deepEqual(serials(dir, 'h1'), ['5000', '5001']);
    assert.equal(c.counters.duplicates, 1);
  }));

test("an id naming another daemon than the message's Auditmux-Daemon header is refused", () =>
  withCollector('per_daemon: true\n', async (c, dir) => {
    const st: Fake[] = [];
    await c.handle([fakeMsg(0, st, { id: `h1:noboot:${stamp(0)}:dhost`, daemon: 'tenant-a' })]);
    assert.deepEqual([st[0]?.termed, c.counters.rejected], [true, 1]);
    assert.deepEqual(fs.readdirSync(dir), []);
  }));

test('node names with a space, a backslash or non-ASCII bytes are written (lines escape them, ids and subjects too)', () =>
  withCollector('', async (c, dir) => {
    const st: Fake[] = [];
    const names = ['web server', 'caf\u00e9', 'a\\b', '\u6771\u4eac'];
    // As the host writes them: node= with nodeText's octal escapes, the id's and the subject's token from the name's
    // UTF-8 bytes. Before, the lines' escaped text was tokenised as it stood and never matched: every event refused.
    await c.handle(names.map((n, i) => fakeMsg(i, st, { lineNode: nodeText(n), token: subjectToken(n) })));
    assert.deepEqual(
      st.map((s) => s.acked),
      names.map(() => true),
    );
    assert.equal(c.counters.rejected, 0);
    for (const [i, n] of names.entries()) {
      assert.deepEqual(serials(dir, subjectToken(n)), [String(5000 + i)], n);
      const line = fs.readFileSync(path.join(dir, subjectToken(n), 'audit.log'), 'latin1');
      assert.ok(line.startsWith(`node=${nodeText(n)} type=SYSCALL`), line);
    }
    // Still compared: lines naming another node than the id and the subject are refused.
    const forged = [
      fakeMsg(10, st, { lineNode: nodeText('web serve'), token: subjectToken('web server') }),
      fakeMsg(11, st, { lineNode: 'caf\\303\\250', token: subjectToken('caf\u00e9') }),
      fakeMsg(12, st, { lineNode: 'web server', token: subjectToken('web server') }),
    ];
    await c.handle(forged);
    assert.equal(c.counters.rejected, 3);
    assert.deepEqual(serials(dir, subjectToken('web server')), ['5000']);
  }));

test('node_token: 0 (not checked): the directory is still the name, not the escape of its escaped text', () =>
  withCollector('node_token: 0\n', async (c, dir) => {
    const st: Fake[] = [];
    await c.handle([fakeMsg(0, st, { lineNode: nodeText('web server'), token: 'web~20server', subject: 'audit.x' })]);
    assert.deepEqual(fs.readdirSync(dir), ['web~20server']);
  }));

test("a message stored after its log's opening does not read the tail; a redelivery does, and is not written twice", () =>
  withCollector('ack_wait: 60\n', async (c, dir) => {
    // A 4 MiB log left by an earlier run, ending with event 1 (written, then killed before the ack).
    fs.mkdirSync(path.join(dir, 'h1'));
    fs.mkdirSync(path.join(dir, 'h2'));
    const filler = Array.from(
      { length: 20000 },
      (_, i) => `node=h1 type=SYSCALL msg=audit(1600000000.000:${i}): syscall=257 key="${'x'.repeat(160)}"`,
    );
    const written1 = `node=h1 type=SYSCALL msg=audit(${stamp(1)}): syscall=257 key="k"`;
    fs.writeFileSync(path.join(dir, 'h1', 'audit.log'), [...filler, written1].join('\n') + '\n', 'latin1');
    fs.writeFileSync(path.join(dir, 'h2', 'audit.log'), filler.join('\n').replace(/h1/g, 'h2') + '\n', 'latin1');
    assert.ok(fs.statSync(path.join(dir, 'h1', 'audit.log')).size > 3.5 * 1024 * 1024);
    // Bytes read from files while the collector handles a batch (the log writer's open and the torn-tail check read
    // at most 64 KiB; the tail, when read, 4 MiB).
    const real = nodeFs.readSync;
    let read = 0;
    (nodeFs as { readSync: unknown }).readSync = (...a: Parameters<typeof fs.readSync>): number => {
      const n = real(...a);
      read += n;
      return n;
    };
    const st: Fake[] = [];
    const internals = c as unknown as {
      tailHashes: number;
      maxTailHashes: number;
      logs: Map<string, { tail: unknown }>;
    };
    // First deliveries the stream stored after the logs were opened (by more than the clocks may differ): what every
    // message is once a collector has run a while, and what a log closed (open-log bound) and opened again gets.
    const later = Date.now() + 2 * CLOCK_SLACK_MS;
    try {
      await c.handle([fakeMsg(0, st, { storedMs: later }), fakeMsg(0, st, { token: 'h2', storedMs: later })]);
      assert.ok(read < 256 * 1024, `a first delivery read ${read} bytes`);
      assert.equal(internals.tailHashes, 0, 'no tail held');
      // Event 1 comes again (its first delivery was to the run that wrote it): recognised in the tail.
      await c.handle([fakeMsg(1, st, { redelivered: true }), fakeMsg(2, st, { storedMs: later })]);
      assert.ok(read > 3 * 1024 * 1024, 'the redelivery read the tail');
      // The last 4 MiB's lines, 8 bytes each.
      assert.ok(internals.tailHashes > 15000 && internals.tailHashes < 20001, String(internals.tailHashes));
    } finally {
      (nodeFs as { readSync: unknown }).readSync = real;
    }
    assert.ok(st.every((s) => s.acked));
    assert.equal(c.counters.duplicates, 1);
    const log = fs.readFileSync(path.join(dir, 'h1', 'audit.log'), 'latin1').split('\n');
    assert.equal(log.filter((l) => l === written1).length, 1, 'event 1 not written twice');
    assert.deepEqual(serials(dir, 'h1').slice(-2), ['5000', '5002']);
    // The tails held are bounded: h2's, read with a budget of one tail, makes h1's go.
    internals.maxTailHashes = 25000;
    await c.handle([fakeMsg(3, st, { token: 'h2', redelivered: true })]);
    assert.ok(internals.tailHashes > 15000 && internals.tailHashes <= 25000, String(internals.tailHashes));
    assert.deepEqual([internals.logs.get('h1')?.tail, internals.logs.get('h2')?.tail === null], [null, false]);
  }));

test('the tail is the log as found at opening, followed through a rotation (rename) before the redelivery', () =>
  withCollector('ack_wait: 60\n', async (c, dir) => {
    fs.mkdirSync(path.join(dir, 'h1'));
    const written1 = `node=h1 type=SYSCALL msg=audit(${stamp(1)}): syscall=257 key="k"`;
    fs.writeFileSync(path.join(dir, 'h1', 'audit.log'), written1 + '\n', 'latin1');
    const st: Fake[] = [];
    await c.handle([fakeMsg(0, st, { storedMs: Date.now() + 2 * CLOCK_SLACK_MS })]);
    // As the writer rotates: the file it found is audit.log.1 now.
    fs.renameSync(path.join(dir, 'h1', 'audit.log'), path.join(dir, 'h1', 'audit.log.1'));
    await c.handle([fakeMsg(1, st, { redelivered: true })]);
    assert.equal(c.counters.duplicates, 1);
    assert.ok(st.every((s) => s.acked));
  }));

test('a first delivery stored before the opening (a server that lost its consumer state) is compared too', () =>
  withCollector('ack_wait: 60\n', async (c, dir) => {
    fs.mkdirSync(path.join(dir, 'h1'));
    const written1 = `node=h1 type=SYSCALL msg=audit(${stamp(1)}): syscall=257 key="k"`;
    fs.writeFileSync(path.join(dir, 'h1', 'audit.log'), written1 + '\n', 'latin1');
    const st: Fake[] = [];
    await c.handle([fakeMsg(1, st, { storedMs: Date.now() - 5000 }), fakeMsg(2, st, { storedMs: Date.now() - 5000 })]);
    assert.equal(c.counters.duplicates, 1);
    assert.deepEqual(serials(dir, 'h1'), ['5001', '5002']);
  }));
