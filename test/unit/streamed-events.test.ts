// Events passed through record by record (StreamedEvent) against the same events made whole first: the same logs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packBatch, startBatchHost } from '../helpers/batch-host';
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

/** Runs `recs` through a host started on `whole`'s config, in batches cut at `cuts`; returns its logs' texts. */
async function run(recs: Rec[], cuts: number[], whole: boolean): Promise<{ logs: string[]; passed: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'am-streamed-'));
  try {
    writeFileSync(join(dir, 'auditmux.yaml'), yaml(dir, whole));
    // An auditd plugin in string format: whatever arrives on stdin is appended to a file.
    writeFileSync(join(dir, 'plugin.sh'), '#!/bin/sh\nexec cat >> "$1"\n', { mode: 0o755 });
    const { daemon, feed } = await startBatchHost(join(dir, 'auditmux.yaml'));
    let passed = 0;
    try {
      let at = 0;
      for (const cut of [...cuts, recs.length]) {
        const b = packBatch(recs.slice(at, cut).map(([type, p]) => ({ type, payload: Buffer.from(p, 'latin1') })));
        at = cut;
        if (b.count) feed(b.buf, b.lengths, b.count);
      }
      passed = (daemon.status() as { reassembly: { passed: number } }).reassembly.passed;
    } finally {
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
    return { logs, passed };
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
});
