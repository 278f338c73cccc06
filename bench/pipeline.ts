// Micro-benchmark of the host's record path in-process (emulated kernel, no socket): CPU ns per event, by config.
// Usage: node dist/bench/pipeline.js [--aux 0,4,20] [--events N] [--per-batch N] [--reps N] [--flush none]
//        [--format RAW|ENRICHED] [--tagged] [--miss]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { packBatch, startBatchHost } from '../test/helpers/batch-host';

// Why in-process: the kernel bench (bench/run.ts) measures the whole daemon beside kauditd and the generator, where
// a change of 10% in JavaScript hides in the run-to-run spread; this one times only what the record path does with a
// batch (reassembly, routing, formatting, the logs' write()), on the same records, so a change shows in one run.

const FIX = join(__dirname, '..', '..', 'test', 'fixtures', 'records', 'kernel-ENRICHED.jsonl');
const EOE = 1320;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : def;
}

/** The bench load's event (getppid: SYSCALL + PROCTITLE, then EOE) of process `pid`, as payloads with `n`'s serial. */
function eventPayloads(pid: number): (n: number) => { type: number; payload: Buffer }[] {
  const all = readFileSync(FIX, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { type: number; payload: string })
    .map((j) => ({ type: j.type, payload: Buffer.from(j.payload, 'base64').toString('latin1') }));
  const recs = all.filter((r) => r.type !== EOE && r.payload.slice(0, 40).includes(':180): '));
  if (recs.length < 2) throw new Error(`${FIX}: the getppid event (serial 180) is not there`);
  return (n) => {
    const stamp = `audit(${1795885435 + Math.floor(n / 1000)}.${String(n % 1000).padStart(3, '0')}:${1000 + n})`;
    const out = recs.map((r) => ({
      type: r.type,
      payload: Buffer.from(
        r.payload
          .replace(/^audit\(\d+\.\d+:\d+\)/, stamp)
          .replace(/ pid=\d+/, ` pid=${pid}`)
          .replace(/ key=\S+/, ' key="ambench"'),
        'latin1',
      ),
    }));
    out.push({ type: EOE, payload: Buffer.from(`${stamp}: `, 'latin1') });
    return out;
  };
}

/** `batches` receive batches of `perBatch` events each, packed as the addon hands them over. */
function buildBatches(
  batches: number,
  perBatch: number,
  pid: number,
): { buf: Buffer; lengths: Uint32Array; count: number }[] {
  const ev = eventPayloads(pid);
  const out = [];
  let n = 0;
  for (let b = 0; b < batches; b++) {
    const recs = [];
    for (let e = 0; e < perBatch; e++, n++) recs.push(...ev(n));
    out.push(packBatch(recs));
  }
  return out;
}

function yaml(dir: string, aux: number, flush: string, format: string): string {
  const log = (f: string): string =>
    `{ file: ${join(dir, f)}, format: ${format}, flush: ${flush}, max_log_file: 100000 }`;
  const lines = ['version: 1', 'host:', '  rules: ~', `  log: ${log('audit.log')}`, '  diagnostics: { level: warn }'];
  if (aux > 0) {
    // As bench/daemons.ts: routes that miss first, the last one takes every bench event.
    lines.push('daemons:');
    for (let i = 0; i < aux; i++) lines.push(`  - { name: b${i}, log: ${log(`b${i}.log`)}, isolation: inline }`);
    lines.push('routes:');
    for (let i = 0; i < aux - 1; i++)
      lines.push(`  - { contid: "${(i + 1) * 100}-${(i + 1) * 100 + 99}", daemons: [b${i}] }`);
    // --miss: the last route misses too (the host in event mode, every event its own).
    const key = process.argv.includes('--miss') ? 'nomatch' : 'ambench';
    lines.push(`  - { contid: unset, keys: [${key}], daemons: [b${aux - 1}] }`);
  }
  return lines.join('\n') + '\n';
}

/**
 * `tagged`: the events are a real process's (a `sleep`) given contid 150 as an orchestrator would, so the tracker is
 * not quiet and routing adds a CONTAINER_ID record (a container host); else this process's, untagged (no container).
 */
async function measure(
  aux: number,
  flush: string,
  format: string,
  events: number,
  perBatch: number,
  tagged: boolean,
): Promise<string> {
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'am-pipe-'));
  writeFileSync(join(dir, 'auditmux.yaml'), yaml(dir, aux, flush, format));
  const { daemon, feed } = await startBatchHost(join(dir, 'auditmux.yaml'));
  const child = tagged ? spawn('sleep', ['600'], { stdio: 'ignore' }) : null;
  try {
    let pid = process.pid;
    if (child) {
      pid = child.pid!;
      daemon.contid.set(pid, '150', false, { pid: process.pid, uid: 0, gid: 0 });
    }
    const batches = buildBatches(Math.ceil(events / perBatch), perBatch, pid);
    const run = (k: number): void => {
      for (let i = 0; i < k; i++) {
        const b = batches[i % batches.length]!;
        feed(b.buf, b.lengths, b.count);
      }
    };
    run(Math.min(batches.length, 200)); // warm-up: let the JIT settle
    let gcs = 0;
    let gcMs = 0;
    const obs = new PerformanceObserver((l) => {
      for (const e of l.getEntries()) {
        gcs++;
        gcMs += e.duration;
      }
    });
    obs.observe({ entryTypes: ['gc'] });
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    run(batches.length);
    const wall = Number(process.hrtime.bigint() - t0) / 1e6;
    const c = process.cpuUsage(c0);
    // GC entries are delivered on a later turn of the loop.
    await new Promise((r) => setTimeout(r, 50));
    obs.disconnect();
    const n = batches.length * perBatch;
    const nsPerEvent = (us: number): string => ((us * 1000) / n).toFixed(0).padStart(6);
    return `${tagged ? 'tagged ' : ''}${format} aux ${String(aux).padStart(2)} flush ${flush.padEnd(4)} ${n} events: wall ${((wall * 1e6) / n).toFixed(0).padStart(5)} ns/ev, cpu user ${nsPerEvent(c.user)} sys ${nsPerEvent(c.system)} ns/ev, gc ${gcs} (${gcMs.toFixed(0)} ms)`;
  } finally {
    child?.kill();
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const events = Number(arg('--events', '400000'));
  const perBatch = Number(arg('--per-batch', '100'));
  const reps = Number(arg('--reps', '3'));
  const auxes = arg('--aux', '0,4,20').split(',').map(Number);
  const flush = arg('--flush', 'none');
  const format = arg('--format', 'RAW');
  const tagged = process.argv.includes('--tagged');
  console.log(`node ${process.version}; ${perBatch} events (${perBatch * 3} records) per batch`);
  for (let r = 0; r < reps; r++)
    for (const a of auxes) console.log(await measure(a, flush, format, events, perBatch, tagged));
}

void main();
