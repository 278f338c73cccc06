// `node dist/bench/memory.js`: what each `isolation: process` daemon costs in memory under load (RSS, PSS, private).
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { auditctl, KernelGuard } from './kernel';
import { treePids } from './proctree';
import { countEvents } from './logcount';
import { buildLoadgen, KEY, ruleArgs, runLoadgen } from './loadgen-run';
import { auditmuxConf, isGone, liveChildren, parseDaemon, startDaemon, stopDaemon, type DaemonSpec } from './daemons';
import { median } from './report';

const USAGE = `usage: node dist/bench/memory.js [options]   (root; no other audit daemon; no audit rules loaded)
  --daemons N      auxiliary daemons, each in its own process, every bench event routed to all (default 4)
  --rates LIST     events/s, comma separated (default 20000,40000)
  --duration S     seconds of load per rate (default 10)
  --format F       RAW or ENRICHED (default ENRICHED)
  --doc FILE       Markdown report (default docs/benchmarks-memory.md; "-" = none)
  --json FILE      samples (default bench/results/memory.json)`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** KiB from /proc/PID/smaps_rollup: resident, proportional (shared pages split between sharers) and private. */
interface Mem {
  rss: number;
  pss: number;
  /** Private_Clean + Private_Dirty: what the process alone holds, freed when it exits; its real cost to the host. */
  uss: number;
}

function readMem(pid: number): Mem | null {
  let t: string;
  try {
    t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  } catch {
    return null;
  }
  const g = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(t)?.[1] ?? 0);
  return { rss: g('Rss'), pss: g('Pss'), uss: g('Private_Clean') + g('Private_Dirty') };
}

function isAux(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('aux-main');
  } catch {
    return false;
  }
}

interface Row {
  rate: number;
  daemons: number;
  calls: number;
  /** Bench events in the least complete auxiliary log. */
  minEvents: number;
  /** Bench events in the host log (which takes every event too). */
  hostEvents: number;
  host: Mem;
  /** Peak per auxiliary process, each field's peak taken on its own. */
  aux: Mem[];
}

/** The bench's config for `spec` (bench/daemons.ts), with one route giving every bench event to every daemon. */
function conf(dir: string, spec: DaemonSpec): string {
  const base = auditmuxConf(dir, spec);
  const names = Array.from({ length: spec.aux }, (_, i) => `bench-${i}`);
  return `${base.slice(0, base.indexOf('routes:\n'))}routes:\n  - { contid: unset, keys: [${KEY}], daemons: [${names.join(', ')}] }\n`;
}

async function measure(root: string, gen: string, rate: number, n: number, format: string, s: number): Promise<Row> {
  const dir = join(root, `r${rate}`);
  mkdirSync(join(dir, 'log'), { recursive: true });
  const spec = parseDaemon(`auditmux-${format.toLowerCase()}-aux${n}-proc`);
  const d = await startDaemon(spec, { dir, conf: conf(dir, spec) });
  const peaks = new Map<number, Mem>();
  const sample = (): void => {
    for (const pid of treePids(d.pid)) {
      const m = readMem(pid);
      if (!m) continue;
      const p = peaks.get(pid) ?? { rss: 0, pss: 0, uss: 0 };
      peaks.set(pid, { rss: Math.max(p.rss, m.rss), pss: Math.max(p.pss, m.pss), uss: Math.max(p.uss, m.uss) });
    }
  };
  let calls: number;
  let auxPids: number[];
  try {
    const deadline = Date.now() + 30000;
    while (treePids(d.pid).filter(isAux).length < n) {
      if (Date.now() > deadline) throw new Error(`${n} auxiliary processes did not start:\n${d.output()}`);
      await sleep(50);
    }
    await auditctl('-b', '8192', '--backlog_wait_time', '0', '-r', '0', '-e', '1');
    await auditctl(...ruleArgs('getppid', gen));
    const timer = setInterval(sample, 100);
    try {
      calls = (await runLoadgen(gen, 'getppid', rate, s, dir)).calls;
      // The daemons drain what is queued; memory is still sampled while they do.
      await sleep(3000);
      sample();
    } finally {
      clearInterval(timer);
      const args = ruleArgs('getppid', gen);
      args[0] = '-d';
      await auditctl(...args).catch(() => undefined);
    }
    auxPids = [...peaks.keys()].filter(isAux);
  } finally {
    // Stopping drains the host's queues into the daemons, so the logs are counted after it.
    await stopDaemon(d, 120000);
  }
  const counts = await Promise.all(
    Array.from({ length: n }, (_, i) => countEvents(join(dir, 'log', `bench-${i}.log`), KEY)),
  );
  return {
    rate,
    daemons: n,
    calls,
    minEvents: Math.min(...counts.map((c) => c.events)),
    hostEvents: (await countEvents(join(dir, 'log', 'audit.log'), KEY)).events,
    host: peaks.get(d.pid) ?? { rss: 0, pss: 0, uss: 0 },
    aux: auxPids.map((p) => peaks.get(p)!),
  };
}

const mib = (kib: number): string => (kib / 1024).toFixed(1);

function render(rows: Row[], format: string, when: string): string {
  const out = [
    '# Memory of `isolation: process` daemons',
    '',
    `Written by \`node dist/bench/memory.js\` (${when}). Each auxiliary daemon runs in its own Node.js process and`,
    `every bench event (getppid, ${format}) is routed to all of them, so each writes the whole load to its own log.`,
    'Peaks are sampled every 100 ms from /proc/PID/smaps_rollup during the load and the drain after it.',
    '',
    '- **RSS** counts every resident page, including the node binary and libraries, which are mapped once and shared',
    '  by all the processes: adding RSS over daemons counts those pages once per daemon.',
    '- **PSS** splits each shared page between the processes that map it.',
    '- **Private** (USS: Private_Clean + Private_Dirty) is what the process alone holds: the memory one more daemon',
    '  adds to the host, and what its exit gives back.',
    '- Events missing from an auxiliary log were refused by its queue in the host (depth 10,000, `drop_newest`, counted',
    '  as dropped): five ENRICHED logs of the whole load are more than this machine formats. The queues held full are',
    "  what raises the host's own memory.",
    '',
    '| rate | daemons | generator calls | events in the host log | events in the least complete aux log | aux peak RSS MiB (median / max) | aux peak PSS MiB (median / max) | aux peak private MiB (median / max) | host peak RSS / private MiB |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const col = (f: keyof Mem): string =>
      `${mib(median(r.aux.map((m) => m[f])))} / ${mib(Math.max(...r.aux.map((m) => m[f])))}`;
    out.push(
      `| ${r.rate / 1000}k/s | ${r.daemons} | ${r.calls} | ${r.hostEvents} | ${r.minEvents} | ${col('rss')} | ${col('pss')} | ${col('uss')} | ${mib(r.host.rss)} / ${mib(r.host.uss)} |`,
    );
  }
  return out.join('\n') + '\n';
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      daemons: { type: 'string', default: '4' },
      rates: { type: 'string', default: '20000,40000' },
      duration: { type: 'string', default: '10' },
      format: { type: 'string', default: 'ENRICHED' },
      doc: { type: 'string', default: 'docs/benchmarks-memory.md' },
      json: { type: 'string', default: 'bench/results/memory.json' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const n = Number(values.daemons);
  const rates = values.rates.split(',').map(Number);
  const duration = Number(values.duration);
  const format = values.format.toUpperCase();
  if (!Number.isInteger(n) || n < 1 || rates.some((r) => !Number.isInteger(r) || r < 1) || !(duration > 0))
    throw new Error(`bad arguments\n${USAGE}`);
  if (format !== 'RAW' && format !== 'ENRICHED') throw new Error(`--format: RAW or ENRICHED\n${USAGE}`);
  const guard = KernelGuard.take();
  const root = mkdtempSync(join(tmpdir(), 'ambench-mem-'));
  const rows: Row[] = [];
  try {
    const gen = buildLoadgen(root);
    for (const rate of rates) {
      const row = await measure(root, gen, rate, n, format, duration);
      process.stderr.write(`bench: memory ${JSON.stringify(row)}\n`);
      rows.push(row);
    }
  } finally {
    for (const c of liveChildren) if (!isGone(c.pid!)) c.kill('SIGKILL');
    for (const p of guard.restoreSync()) process.stderr.write(`bench: restore: ${p}\n`);
    rmSync(root, { recursive: true, force: true });
  }
  const json = resolve(values.json);
  mkdirSync(resolve(json, '..'), { recursive: true });
  writeFileSync(json, JSON.stringify(rows, null, 2) + '\n');
  if (values.doc !== '-') {
    const when = new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
    if (existsSync(resolve(values.doc, '..'))) writeFileSync(values.doc, render(rows, format, when));
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
