// Events passed through record by record (StreamedEvent) against the same events made whole first: the same logs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packBatch, startBatchHost } from '../helpers/batch-host';
import { LineFormatter } from '../../src/output/format';
import { LogWriter } from '../../src/output/logfile';
import { DaemonRegistry } from '../../src/daemon/daemon-registry';
import { intBelow, prng } from '../helpers/prng';

type Rec = [type: number, payload: string];

/** The logs, and what the host's and b's auditd plugins got (EOE included: plugins get it, logs do not). */
const LOGS = ['audit.log', 'a.log', 'b.log', 'c.log', 'host.plugin', 'b.plugin'];

/**
 * The host keeps everything; `a` gets key ka, `b` key kb and, going on, `c` (a JSON log: whole events only) kb too.
 * `whole`: one more route selects record types, which makes every event whole before it is routed.
 */
function yaml(dir: string, whole: boolean): string {
  const log = (f: string, format = 'RAW'): string => `{ file: ${join(dir, f)}, format: ${format}, flush: none }`;
  const plugin = (name: string): string =>
    `[{ type: plugin, name: p-${name}, path: ${join(dir, 'plugin.sh')}, args: [${join(dir, `${name}.plugin`)}], format: string, log_format: RAW, spool: { dir: ${join(dir, 'spool', name)} } }]`;
  return [
    'version: 1',
    'host:',
    '  rules: ~',
    `  log: ${log('audit.log')}`,
    '  keep: all',
    `  outputs: ${plugin('host')}`,
    '  diagnostics: { level: warn }',
    'daemons:',
    `  - { name: a, log: ${log('a.log', 'ENRICHED')}, isolation: inline }`,
    `  - { name: b, log: ${log('b.log')}, outputs: ${plugin('b')}, isolation: inline }`,
    `  - { name: c, log: ${log('c.log', 'JSON')}, isolation: inline }`,
    `  - { name: z, log: ${log('z.log')}, isolation: inline }`,
    'routes:',
    ...(whole ? ['  - { contid: 999999, types: [1400], daemons: [z], continue: true }'] : []),
    '  - { contid: unset, keys: [ka], daemons: [a] }',
    '  - { contid: unset, keys: [kb], daemons: [b], continue: true }',
    '  - { contid: unset, keys: [kb], daemons: [c] }',
  ].join('\n');
}

/**
 * Events as the kernel sends them, from a fixed seed: syscall events (an AVC before the SYSCALL at times, CWD, PATH
 * records, PROCTITLE or not, EOE), user messages, a serial used again under another stamp; `interleave`: records of
 * two events mixed, an EOE lost, records past an event's end.
 */
function kernelRecords(seed: number, events: number, interleave: boolean): Rec[] {
  const next = prng(seed);
  const out: Rec[] = [];
  let open: Rec[] = [];
  for (let n = 1; n <= events; n++) {
    const serial = interleave && intBelow(next, 40) === 0 ? n - 1 : n; // the serial again, another stamp
    const h = `audit(1700000000.${String(n % 1000).padStart(3, '0')}:${serial}): `;
    const recs: Rec[] = [];
    const kind = intBelow(next, 10);
    if (kind === 0)
      recs.push([1112, `${h}pid=${100 + n} uid=0 auid=1000 ses=3 msg='op=login acct="u${n}" res=success'`]);
    else {
      const key = ['"ka"', '"kb"', '(null)', '"other"'][intBelow(next, 4)]!;
      if (intBelow(next, 8) === 0) recs.push([1400, `${h}apparmor="DENIED" operation="open" pid=${n}`]);
      recs.push([
        1300,
        `${h}arch=c000003e syscall=${[39, 2, 59][intBelow(next, 3)]} success=yes exit=${n} a0=1 a1=2 a2=3 a3=4 items=2 ppid=1 pid=${200 + n} auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=3 comm="x${n}" exe="/usr/bin/x" subj=unconfined key=${key}`,
      ]);
      if (intBelow(next, 2) === 0) recs.push([1307, `${h}cwd="/home/u${n}"`]);
      for (let p = intBelow(next, 4); p > 0; p--)
        recs.push([1302, `${h}item=${p} name="/etc/f${n}" inode=${n * 7 + p} dev=08:01 mode=0100644 ouid=0 ogid=0`]);
      // An event that ends at neither EOE nor PROCTITLE waits for its timeout (2 s): none here, or every event after
      // it would be made whole until then (only one event passes through at a time).
      const lostEoe = interleave && intBelow(next, 30) === 0;
      if (lostEoe || intBelow(next, 4) !== 0)
        recs.push([1327, `${h}proctitle=${Buffer.from(`x ${n}`).toString('hex')}`]);
      if (!lostEoe) recs.push([1320, h]);
      if (interleave && intBelow(next, 30) === 0) recs.push([1302, `${h}item=9 name="/late${n}"`]);
    }
    if (!interleave) {
      out.push(...recs);
      continue;
    }
    // Records of the event held back, some of them, to come among the next event's.
    const mix: Rec[] = [];
    while (open.length || recs.length) {
      const from = open.length && (!recs.length || intBelow(next, 2) === 0) ? open : recs;
      mix.push(from.shift()!);
      if (from === recs && intBelow(next, 5) === 0) break;
    }
    out.push(...mix, ...open);
    open = recs;
  }
  out.push(...open);
  return out;
}

/**
 * A bug in formatting (any code of the record path that throws): the first `times` attempts at each record whose
 * payload `hit` picks throw; the next one at the same record goes through.
 */
function injectFaults(hit: (payload: string) => boolean, times: number): { faults: number; restore(): void } {
  const proto = LineFormatter.prototype;
  const real = proto.formatRangeInto;
  const failed = new Map<string, number>();
  const state = {
    faults: 0,
    restore: () => {
      proto.formatRangeInto = real;
    },
  };
  proto.formatRangeInto = function (this: LineFormatter, type, src, start, end, dst, pos) {
    const p = src.toString('latin1', start, end);
    if (hit(p) && (failed.get(p) ?? 0) < times) {
      failed.set(p, (failed.get(p) ?? 0) + 1);
      state.faults++;
      throw new Error('injected fault');
    }
    return real.call(this, type, src, start, end, dst, pos);
  };
  return state;
}

/**
 * Runs `recs` through a host started on `whole`'s config, in batches cut at `cuts`, each batch written into the same
 * buffer as the addon refills its own; returns its logs' texts. `fault`: records whose formatting fails once.
 */
async function run(
  recs: Rec[],
  cuts: number[],
  whole: boolean,
  fault?: { hit: (payload: string) => boolean; times: number },
): Promise<{
  logs: string[];
  passed: number;
  faults: number;
  thrown: number;
  internalErrors: number;
  routed: number;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'am-streamed-'));
  try {
    writeFileSync(join(dir, 'auditmux.yaml'), yaml(dir, whole));
    // An auditd plugin in string format: whatever arrives on stdin is appended to a file.
    writeFileSync(join(dir, 'plugin.sh'), '#!/bin/sh\nexec cat >> "$1"\n', { mode: 0o755 });
    const { daemon, feed } = await startBatchHost(join(dir, 'auditmux.yaml'));
    const batch = Buffer.alloc(1 << 20);
    const faults = fault ? injectFaults(fault.hit, fault.times) : null;
    let passed = 0;
    let thrown = 0;
    let internalErrors = 0;
    let routed = 0;
    try {
      let at = 0;
      for (const cut of [...cuts, recs.length]) {
        const b = packBatch(recs.slice(at, cut).map(([type, p]) => ({ type, payload: Buffer.from(p, 'latin1') })));
        at = cut;
        b.buf.copy(batch, 0);
        try {
          if (b.count) feed(batch, b.lengths, b.count);
        } catch {
          thrown++; // what the daemon's internal-error handler would count
        }
      }
      const st = daemon.status() as {
        reassembly: { passed: number };
        daemon: { internalErrors: number };
        routing: { events: number };
      };
      passed = st.reassembly.passed;
      internalErrors = st.daemon.internalErrors;
      routed = st.routing.events;
    } finally {
      faults?.restore();
      await daemon.stop();
    }
    // auditmux's own records (start, end) carry their time and pid: not the events'.
    const own = /type=DAEMON_|"type":"DAEMON_/;
    const logs = LOGS.map((f) =>
      readFileSync(join(dir, f), 'latin1')
        .split('\n')
        .filter((l) => l !== '' && !own.test(l))
        .join('\n'),
    );
    return { logs, passed, faults: faults?.faults ?? 0, thrown, internalErrors, routed };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A log's lines by event (`audit(...)` stamp, or the JSON event's): each event's lines in order. */
function byEvent(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const l of text.split('\n')) {
    const id = /audit\((\d+\.\d+:\d+)\)/.exec(l)?.[1] ?? /"serial":(\d+)/.exec(l)?.[1] ?? l;
    const a = m.get(id) ?? [];
    a.push(l);
    m.set(id, a);
  }
  return m;
}

function cutsFor(seed: number, n: number): number[] {
  const next = prng(seed);
  const cuts: number[] = [];
  for (let at = 0; at < n;) {
    at += 1 + intBelow(next, 40);
    if (at < n) cuts.push(at);
  }
  return cuts;
}

/** A SYSCALL record of process 200 (records of the same length whatever the serial's digits, comm and key). */
const sc = (n: number, comm: string, key: string): string =>
  `audit(1700000000.001:${n}): arch=c000003e syscall=2 success=yes exit=3 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=200 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=3 comm="${comm}" exe="/usr/bin/x" key="${key}"`;
const path = (n: number, name: string): string =>
  `audit(1700000000.001:${n}): item=0 name="${name}" inode=1 dev=08:01 mode=0100644`;
/** An event the host alone keeps (key kx), and one for `b` (kb) whose PATH lies where its PATH does in a batch. */
const HOST_EVENT: Rec[] = [
  [1300, sc(11, 'aaaa', 'kx')],
  [1302, path(11, '/secret/AAAA')],
  [1327, 'audit(1700000000.001:11): proctitle=6C73'],
];
const B_EVENT: Rec[] = [
  [1300, sc(12, 'bbbb', 'kb')],
  [1302, path(12, '/public/BBBB')],
  [1320, 'audit(1700000000.001:12): '],
];

describe('events passed through record by record (StreamedEvent)', () => {
  it('property (seed 0x57e4): events one after another, cut into random batches: every log byte for byte as made whole', async () => {
    const recs = kernelRecords(0x57e4, 400, false);
    const cuts = cutsFor(0x57e5, recs.length);
    const streamed = await run(recs, cuts, false);
    const whole = await run(recs, cuts, true);
    assert.equal(whole.passed, 0, 'a route selecting record types makes every event whole');
    assert.ok(streamed.passed > 250, `most events passed through (${streamed.passed})`);
    LOGS.forEach((f, i) => {
      assert.ok(whole.logs[i]!.length > 1000, `${f} has events`);
      assert.equal(streamed.logs[i], whole.logs[i], f);
    });
  });

  it('property (seed 0x57e6): events mixed, EOEs lost, records late, serials again: every event has the same lines', async () => {
    const recs = kernelRecords(0x57e6, 400, true);
    const cuts = cutsFor(0x57e7, recs.length);
    const streamed = await run(recs, cuts, false);
    const whole = await run(recs, cuts, true);
    assert.ok(streamed.passed > 100, `events passed through (${streamed.passed})`);
    LOGS.forEach((f, i) => {
      const s = byEvent(streamed.logs[i]!);
      const w = byEvent(whole.logs[i]!);
      assert.ok(w.size > 50, `${f} has events`);
      assert.deepEqual([...s.keys()].sort(), [...w.keys()].sort(), `${f}: the same events`);
      for (const [id, lines] of w) assert.deepEqual(s.get(id), lines, `${f}: event ${id}`);
    });
  });

  it('a record that fails mid-batch: the next batch, refilled in the same buffer, copies no line of the one before', async () => {
    // Batch 1: an event the host alone keeps, then the SYSCALL of an event for `b` that fails to format for `b` and
    // for the host, its first two writers. Batch 2: an event for `b` whose PATH lies where the first event's did, as
    // long, of the same type.
    const batch1: Rec[] = [...HOST_EVENT, [1300, sc(13, 'BOOM', 'kb')]];
    const out = await run([...batch1, ...B_EVENT], [batch1.length], false, {
      hit: (p) => p.includes('BOOM'),
      times: 2,
    });
    assert.equal(out.faults, 2);
    assert.equal(out.thrown, 0);
    const b = out.logs[LOGS.indexOf('b.log')]!;
    assert.match(b, /audit\(1700000000\.001:12\): item=0 name="\/public\/BBBB"/);
    assert.doesNotMatch(b, /secret/, "b.log has no line of the host's event");
    assert.doesNotMatch(b, /:11\)/);
    assert.equal(b.match(/BBBB/g)?.length, 1, "b has event 12's PATH once, in event 12");
    const host = out.logs[LOGS.indexOf('audit.log')]!;
    assert.equal(host.match(/secret/g)?.length, 1, 'the host has its own event once');
    assert.match(host, /comm="BOOM"/, 'the SYSCALL that failed reached the host log when its event was made whole');
    assert.match(b, /comm="BOOM"/, 'and b');
  });

  it('an event whose head fails to be written is made whole instead, and routed and counted once', async () => {
    // The host's event's SYSCALL fails to format the first time, as its head is written to the host log at the
    // pass-through's start: the event is let go there and made whole, where it is routed again.
    const mine: Rec[] = [[1300, sc(11, 'BOOM', 'kx')], ...HOST_EVENT.slice(1)];
    const out = await run([...mine, ...B_EVENT], [], false, { hit: (p) => p.includes('BOOM'), times: 1 });
    assert.equal(out.faults, 1);
    assert.equal(out.internalErrors, 1);
    assert.equal(out.passed, 1, "b's event passed through, the host's was made whole");
    assert.equal(out.routed, 2, 'two events routed, each counted once');
    const host = out.logs[LOGS.indexOf('audit.log')]!;
    assert.equal(host.match(/comm="BOOM"/g)?.length, 1, 'the host log has the SYSCALL once');
    assert.equal(host.match(/secret/g)?.length, 1);
  });

  it('an event passing through whose end at its timeout throws: counted, let go, and the daemon reads on', async () => {
    // b's event never ends (no PROCTITLE, no EOE): its timeout ends it at a tick, where handing it whole to c (a JSON
    // log collects it) throws once. That threw out of the tick's timer before (an uncaught exception).
    const dir = mkdtempSync(join(tmpdir(), 'am-streamed-'));
    const proto = DaemonRegistry.prototype;
    const enqueue = proto.enqueue;
    let fail = true;
    proto.enqueue = function (this: DaemonRegistry, name, records) {
      if (fail && name === 'c') {
        fail = false;
        throw new Error('injected fault');
      }
      return enqueue.call(this, name, records);
    };
    try {
      writeFileSync(join(dir, 'auditmux.yaml'), yaml(dir, false));
      writeFileSync(join(dir, 'plugin.sh'), '#!/bin/sh\nexec cat >> "$1"\n', { mode: 0o755 });
      const { daemon, feed } = await startBatchHost(join(dir, 'auditmux.yaml'));
      const feedRecs = (recs: Rec[]): void => {
        const b = packBatch(recs.map(([type, p]) => ({ type, payload: Buffer.from(p, 'latin1') })));
        feed(b.buf, b.lengths, b.count);
      };
      try {
        feedRecs(B_EVENT.slice(0, 2));
        // The reassembler's timeout is 2 s; ticks come every 250 ms.
        await new Promise((r) => setTimeout(r, 2800));
        assert.equal(fail, false, 'the fault was injected');
        feedRecs([
          [1300, sc(13, 'cccc', 'kb')],
          [1320, 'audit(1700000000.001:13): '],
        ]);
        const st = daemon.status() as { daemon: { internalErrors: number }; reassembly: { passed: number } };
        assert.equal(st.daemon.internalErrors, 1);
        assert.equal(st.reassembly.passed, 2);
      } finally {
        await daemon.stop();
      }
      const b = readFileSync(join(dir, 'b.log'), 'latin1');
      assert.match(b, /:12\): item=0 name="\/public\/BBBB"/, 'b streamed the event that timed out');
      assert.match(b, /comm="cccc"/, 'and the next one');
      assert.match(readFileSync(join(dir, 'c.log'), 'latin1'), /cccc/, 'c had the next event whole');
    } finally {
      proto.enqueue = enqueue;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a batch end that fails at the host log: the next batch, refilled in the same buffer, copies no line of the one before', async () => {
    // Batch 1: an event the host alone keeps; its end fails before the host log writes its buffer out (the lines stay
    // where a copy would find them). Batch 2: an event for `b` whose PATH lies where the first event's did.
    const batch1 = HOST_EVENT;
    const proto = LogWriter.prototype;
    const flush = proto.flush;
    let fail = true;
    proto.flush = function (this: LogWriter): boolean {
      // Only the host log's flush at the end of batch 1 (the lines it holds are batch 1's).
      const held = Buffer.from(this.lineArrayBuffer, this.lineByteOffset, this.bufferedBytes).toString('latin1');
      if (fail && held.includes('/secret/')) {
        fail = false;
        throw new Error('injected fault');
      }
      return flush.call(this);
    };
    let out;
    try {
      out = await run([...batch1, ...B_EVENT], [batch1.length], false);
    } finally {
      proto.flush = flush;
    }
    assert.equal(fail, false, 'the fault was injected');
    assert.equal(out.thrown, 1, 'the batch end threw, after the lines of its batch were let go');
    const b = out.logs[LOGS.indexOf('b.log')]!;
    assert.match(b, /audit\(1700000000\.001:12\): item=0 name="\/public\/BBBB"/);
    assert.doesNotMatch(b, /secret/, "b.log has no line of the host's event");
    const host = out.logs[LOGS.indexOf('audit.log')]!;
    assert.equal(host.match(/secret/g)?.length, 1);
    assert.equal(host.match(/BBBB/g)?.length, 1);
  });

  it('property (seed 0x57e8): formatting that fails once on some records: no line of another record or event, the host log whole', async () => {
    const recs = kernelRecords(0x57e8, 400, false);
    const cuts = cutsFor(0x57e9, recs.length);
    // About one record in 25: a SYSCALL that begins an event, a record passed on, a record of an event made whole.
    const hit = (p: string): boolean => {
      let h = 0;
      for (let i = 0; i < p.length; i++) h = Math.imul(h ^ p.charCodeAt(i), 0x01000193);
      return (h >>> 0) % 25 === 0;
    };
    const clean = await run(recs, cuts, false);
    const faulty = await run(recs, cuts, false, { hit, times: 1 });
    assert.ok(faulty.faults >= 20, `faults injected (${faulty.faults})`);
    assert.ok(faulty.internalErrors > 0, 'counted as internal errors');
    assert.equal(faulty.thrown, 0, 'every fault was handled within the record path: each batch ended');
    const lines = (text: string): Set<string> => new Set(text.split('\n').filter((l) => l !== ''));
    // A JSON event (c.log) is checked by its records: one that failed part-way may be split in two.
    const jsonRecords = (text: string): Set<string> =>
      new Set(
        [...lines(text)].flatMap((l) => (JSON.parse(l) as { records: { line: string }[] }).records.map((r) => r.line)),
      );
    LOGS.forEach((f, i) => {
      const want = f === 'c.log' ? jsonRecords(clean.logs[i]!) : lines(clean.logs[i]!);
      const got = f === 'c.log' ? jsonRecords(faulty.logs[i]!) : lines(faulty.logs[i]!);
      assert.ok(want.size > 50, `${f} has records`);
      // A record another log formatted, copied after the batch it lay in was refilled, would be a line no run of
      // these records writes; so would a record of another event.
      for (const l of got) assert.ok(want.has(l), `${f}: a line of no record routed here: ${l.slice(0, 120)}`);
      // The host's trail loses nothing (a record may be there twice: written, then written again when its event was
      // made whole); a daemon's may miss the rest of an event ended by the failure.
      if (f === 'audit.log') for (const l of want) assert.ok(got.has(l), `${f}: lost ${l.slice(0, 120)}`);
    });
  });
});
