// Benchmark: `auditmux search -k KEY --raw` against Debian's `ausearch -if LOG -k KEY --raw` on a generated large log;
// prints a markdown table.
import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeLog } from '../test/fixtures/search/gen';

const USAGE = `usage: node dist/bench/search.js [--events N] [--key KEY] [--rate R] [--pause P] [--dense D] [--partial P]
                                  [--log-format enriched|raw] [--skip-ausearch] [--keep]
  --events N       events in the generated log (default 1000000: ~2 million records, ~625 MB ENRICHED)
  --key KEY        the searched key (default ambench, the load's key)
  --rate R         events per second of audit time, one unbroken stream (default 40000, loadgen flat out)
  --pause P        probability per event that the load pauses for 3 s (default 0). Any pause lets ausearch flush the
                   events it keeps building for its 2 s end-of-event timeout: 0.001 makes it ~70x faster
  --dense D        fraction of events that are the load's SYSCALL + PROCTITLE (default 1, as in the baseline; the rest:
                   file opens with CONTAINER_ID records, logins, rule changes, other keys)
  --partial P      fraction of load events that lost their SYSCALL or PROCTITLE to kernel overload (default 0.01)
  --log-format F   enriched (auditd's default, as in the baseline) or raw (default enriched); --enriched is accepted
  --skip-ausearch  time auditmux only
  --doc FILE       also write the table to FILE (default docs/benchmarks-search.md; "-" = none)
  --keep           keep the log and outputs (printed path)`;

interface Run {
  tool: string;
  seconds: number;
  peakRssKiB: number;
  events: number;
  lines: number;
  /**
   * Order-independent digest of the output lines: ausearch prints events in completion order, auditmux in log order.
   */
  digest: string;
}

/** Runs argv under /usr/bin/time -v with stdout to a file; returns wall time and peak RSS as time(1) measured them. */
function timed(argv: string[], outFile: string): Promise<{ seconds: number; peakRssKiB: number; code: number }> {
  return new Promise((res, rej) => {
    const cmd = `exec /usr/bin/time -v "$@" > '${outFile}'`;
    const p = spawn('/bin/sh', ['-c', cmd, 'sh', ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', rej);
    p.on('close', (code) => {
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(err);
      const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(err);
      if (!rss || !wall)
        return rej(new Error(`no /usr/bin/time -v output for ${argv.join(' ')}:\n${err.slice(-2000)}`));
      const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
      res({ seconds, peakRssKiB: Number(rss[1]), code: code ?? -1 });
    });
  });
}

/** Streams an output file: distinct event stamps, line count, and a sum of per-line FNV-1a hashes. */
async function digestOutput(path: string): Promise<{ events: number; lines: number; digest: string }> {
  const stamps = new Set<string>();
  let lines = 0;
  let sum = 0n;
  let carry = '';
  const take = (line: string): void => {
    if (!line) return;
    lines++;
    let h = 0x811c9dc5;
    for (let i = 0; i < line.length; i++) h = Math.imul(h ^ line.charCodeAt(i), 0x01000193) >>> 0;
    sum = (sum + BigInt(h)) & 0xffffffffffffn;
    const m = /msg=audit\(([0-9.:]+)\)/.exec(line);
    if (m) stamps.add(m[1]!);
  };
  for await (const chunk of createReadStream(path, { encoding: 'latin1', highWaterMark: 1 << 20 })) {
    const parts = (carry + (chunk as string)).split('\n');
    carry = parts.pop()!;
    for (const p of parts) take(p);
  }
  take(carry);
  return { events: stamps.size, lines, digest: sum.toString(16) };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '1000000' },
      key: { type: 'string', default: 'ambench' },
      rate: { type: 'string', default: '40000' },
      pause: { type: 'string', default: '0' },
      dense: { type: 'string', default: '1' },
      partial: { type: 'string', default: '0.01' },
      'log-format': { type: 'string', default: 'enriched' },
      enriched: { type: 'boolean', default: false },
      'skip-ausearch': { type: 'boolean', default: false },
      doc: { type: 'string', default: 'docs/benchmarks-search.md' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const events = Number(values.events);
  const rate = Number(values.rate);
  const fraction = (v: string | undefined): number =>
    v !== undefined && v !== '' && Number(v) >= 0 && Number(v) <= 1 ? Number(v) : NaN;
  const [pause, dense, partial] = [fraction(values.pause), fraction(values.dense), fraction(values.partial)];
  const format = values.enriched ? 'enriched' : values['log-format'];
  if (
    !Number.isInteger(events) ||
    events < 1 ||
    !(rate > 0) ||
    [pause, dense, partial].some(Number.isNaN) ||
    (format !== 'enriched' && format !== 'raw')
  ) {
    console.error(USAGE);
    return 2;
  }
  const enriched = format === 'enriched';
  const dir = mkdtempSync(join(tmpdir(), 'amsearch-bench-'));
  const log = join(dir, 'audit.log');
  const key = values.key!;
  try {
    const t0 = Date.now();
    const bytes = await writeLog(log, events, { seed: 42, rate, pause, dense, partial, enriched, interleave: 0.01 });
    const records = await countLines(log);
    console.error(
      `generated ${events} events, ${records} records, ${(bytes / 1e6).toFixed(0)} MB in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${log}`,
    );

    const runs: Run[] = [];
    const searchJs = resolve(__dirname, '..', 'src', 'search', 'index.js');
    const runner =
      `require(${JSON.stringify(searchJs)}).runSearch(process.argv.slice(2), { out: (s) => process.stdout.write(s), ` +
      `err: (s) => process.stderr.write(s.endsWith('\\n') ? s : s + '\\n') }).then((c) => { process.exitCode = c; })`;
    // A script file, not node -e: node would take the search's -if for one of its own options.
    const runnerJs = join(dir, 'run-search.js');
    writeFileSync(runnerJs, runner);
    const tools: Array<[string, string[]]> = [
      ['auditmux search', [process.execPath, runnerJs, '-if', log, '-k', key, '--raw']],
    ];
    if (!values['skip-ausearch']) tools.push(['ausearch 3.0.9', ['ausearch', '-if', log, '-k', key, '--raw']]);
    for (const [tool, argv] of tools) {
      const out = join(dir, tool.split(' ')[0] + '.out');
      console.error(`running ${tool} ...`);
      const t = await timed(argv, out);
      if (t.code !== 0 && t.code !== 1) throw new Error(`${tool} exited ${t.code}`);
      const d = await digestOutput(out);
      runs.push({ tool, seconds: t.seconds, peakRssKiB: t.peakRssKiB, ...d });
      if (!values.keep) rmSync(out, { force: true });
    }
    const base = runs.find((r) => r.tool.startsWith('ausearch'));
    const table: string[] = [];
    const print = (line: string): void => {
      console.log(line);
      table.push(line);
    };
    print(
      `\n### search -k ${key}: ${events} events, ${records} records, ${(bytes / 1e6).toFixed(0)} MB ${format.toUpperCase()}\n`,
    );
    print(
      `Generated (test/fixtures/search/gen.ts, seed 42): ${rate} events/s of audit time, pause ${pause}, dense ${dense}, partial ${partial}, interleave 0.01.\n`,
    );
    print(
      '| tool | wall s | peak RSS MiB | events found | output lines | speed-up vs ausearch | same output as ausearch |',
    );
    print('|---|---|---|---|---|---|---|');
    for (const r of runs) {
      const speed = base ? (base.seconds / r.seconds).toFixed(1) + 'x' : '-';
      const same = base
        ? r.events === base.events && r.lines === base.lines && r.digest === base.digest
          ? 'yes'
          : 'NO'
        : '-';
      print(
        `| ${r.tool} | ${r.seconds.toFixed(2)} | ${(r.peakRssKiB / 1024).toFixed(0)} | ${r.events} | ${r.lines} | ${speed} | ${same} |`,
      );
    }
    if (values.doc !== '-') {
      const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
      writeFileSync(
        resolve(values.doc!),
        [
          '# Search benchmark: `auditmux search -k KEY --raw` vs `ausearch -if LOG -k KEY --raw`',
          '',
          `Written by \`node dist/bench/search.js ${process.argv.slice(2).join(' ')}\` on ${new Date().toISOString()}, ${cpu}, ${cpus().length} CPUs.`,
          'Wall time and peak RSS from `/usr/bin/time -v`; "same output" compares an order-independent digest of the lines.',
          ...table,
          '',
        ].join('\n'),
      );
    }
    return base && runs[0]!.digest !== base.digest ? 1 : 0;
  } finally {
    if (values.keep) console.error(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

async function countLines(path: string): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const b = chunk as Buffer;
    for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) n++;
  }
  return n;
}

main().then(
  (c) => {
    process.exitCode = c;
  },
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 1;
  },
);
