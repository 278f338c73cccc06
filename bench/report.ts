// Turns benchmark samples into medians, same-run ratios and the Markdown page docs/benchmarks.md.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Sample {
  daemon: string;
  mode: string;
  /** Target calls per second; 0 = flat out. */
  rate: number;
  rep: number;
  calls: number;
  genSeconds: number;
  genRate: number;
  events: number;
  missing: number;
  lost: number;
  cpuSeconds: number;
  cpuPer100k: number;
  peakRssKiB: number;
  drainSeconds: number;
  drainTimedOut: boolean;
  logBytes: number;
  duplicates: number;
  foreignSyscalls: number;
  /** CPU seconds of the generator itself and of kauditd over the measurement window. */
  genCpu: number;
  kauditdCpu: number;
  /** CPU seconds in the window of processes outside the harness's tree (kauditd excluded): noise. */
  otherCpu: number;
  windowSeconds: number;
  /** Measurements thrown away because another process changed the audit state while they ran. */
  retries: number;
  /** CPU seconds of the daemon's tree during the warm-up that came before the window (not in cpuSeconds). */
  warmupCpuSeconds?: number;
  /** Bench events in the auxiliary daemons' logs (auditmux with routes only). */
  auxEvents?: number;
  /** CPU seconds (user, system) per thread name of the daemon's tree over the window (user+sys = cpuSeconds). */
  threads?: Record<string, { user: number; sys: number }>;
  error?: string;
}

export interface Machine {
  date: string;
  nproc: number;
  kernel: string;
  cpu: string;
  memory: string;
  node: string;
  auditd: string;
  commit: string;
}

export interface RunInfo {
  machine: Machine;
  argv: string[];
  mode: string;
  rates: number[];
  reps: number;
  duration: number;
  /** Seconds of the same load before each measurement, not counted (absent in runs made before it existed). */
  warmup?: number;
  daemons: string[];
  samples: Sample[];
  /** Set when the run stopped early (signal, error). */
  incomplete?: string;
}

interface Stat {
  med: number;
  min: number;
  max: number;
}

function stat(xs: number[]): Stat | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return { med: median(s), min: s[0]!, max: s[s.length - 1]! };
}

/** The median of the samples (the mean of the two middle ones for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function fmt(x: number, digits: number): string {
  if (!Number.isFinite(x)) return '-';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Median with its range, or just the value when all reps agree (or there is one). */
function cell(s: Stat | null, digits: number, scale = 1): string {
  if (!s) return '-';
  const m = fmt(s.med / scale, digits);
  if (fmt(s.min / scale, digits) === fmt(s.max / scale, digits)) return m;
  return `${m} (${fmt(s.min / scale, digits)}–${fmt(s.max / scale, digits)})`;
}

/** Errors carry a daemon's output; a table cell needs one line without pipes. */
const oneLine = (e: string): string =>
  e
    .replace(/\s*\n\s*/g, ' / ')
    .replace(/\|/g, '\\|')
    .slice(0, 300);

export const rateLabel = (r: number): string => (r === 0 ? 'flat out' : `${fmt(r / 1000, 0)}k/s`);

interface Group {
  daemon: string;
  rate: number;
  ok: Sample[];
  failed: Sample[];
}

function groups(info: RunInfo): Group[] {
  const out: Group[] = [];
  for (const rate of info.rates) {
    for (const daemon of info.daemons) {
      const all = info.samples.filter((s) => s.rate === rate && s.daemon === daemon);
      if (all.length) out.push({ daemon, rate, ok: all.filter((s) => !s.error), failed: all.filter((s) => s.error) });
    }
  }
  return out;
}

const pick = (g: Group, f: (s: Sample) => number): Stat | null => stat(g.ok.map(f));
/** Calls whose event is not in the auxiliary daemons' logs (with one route taking every bench event). */
const auxMissing = (s: Sample): number => (s.auxEvents === undefined ? 0 : Math.max(0, s.calls - s.auxEvents));
/** The aux logs' missing events after the host log's, for daemons with auxiliary daemons. */
const auxMissingCell = (g: Group): string =>
  g.ok.some((s) => s.auxEvents !== undefined) ? `<br>aux ${cell(pick(g, auxMissing), 0)}` : '';
/** Logged events per second of generator time: under overload this is the daemon's throughput. */
const loggedRate = (s: Sample): number => s.events / s.genSeconds;

/** The auditd run a given auditmux variant is compared with: the same log format. */
function baselineOf(daemon: string): string | null {
  const m = /^auditmux-(raw|enriched)/.exec(daemon);
  return m ? `auditd-${m[1]}` : null;
}

export function renderMarkdown(info: RunInfo): string {
  const m = info.machine;
  const gs = groups(info);
  const out: string[] = [];
  out.push('# Benchmarks', '');
  out.push(
    'Generated by `npm run bench` (bench/run.ts); do not edit by hand. Benchmarks are not tests: numbers vary from run',
  );
  out.push(
    'to run, so auditmux is compared with auditd only within one run, daemons taking turns at every rate and repetition.',
    '',
  );
  out.push('## Machine', '');
  out.push(
    `- date: ${m.date}`,
    `- nproc: ${m.nproc}`,
    `- CPU: ${m.cpu}`,
    `- memory: ${m.memory}`,
    `- kernel: ${m.kernel}`,
    `- node: ${m.node}`,
    `- auditd: ${m.auditd}`,
    `- auditmux commit: ${m.commit}`,
  );
  out.push(`- command: \`${info.argv.join(' ')}\``, '');
  if (info.incomplete) out.push(`**Incomplete run:** ${info.incomplete}`, '');

  out.push('## Method', '');
  out.push(
    `A load generator (bench/loadgen.c, \`cc -O2 -static\`) makes \`${info.mode === 'open' ? 'openat' : 'getppid'}\` calls at each`,
  );
  out.push(
    `target rate for ${info.duration} s (paced in 1 ms batches against CLOCK_MONOTONIC; "flat out" = as fast as it can).`,
  );
  out.push(
    'One rule matches them: `-F exe=<generator> -k ambench`. `backlog_limit` 8192 and `backlog_wait_time` 0, so a daemon',
  );
  out.push(
    'that falls behind shows as kernel `lost` records instead of slowing the generator. Each measurement starts a fresh',
  );
  out.push(`daemon on a private config and log; ${info.reps} repetitions; cells are median (min–max).`);
  if (info.warmup)
    out.push(
      `Before each measurement the daemon gets the same load for ${info.warmup} s, not counted: its events are left out (the`,
      'logs are counted from their size once it drained) and so is its CPU (in the JSON as `warmupCpuSeconds`). The',
      "window then shows a daemon in the state it runs in for days, auditmux's JavaScript compiled by the JIT; the",
      'first seconds after a start are measured by the start-up bench (docs/benchmarks-startup.md).',
    );
  out.push('"Flat out" is not the same load for every daemon: a record the kernel drops for a full backlog costs the');
  out.push(
    'generator far less than one it queues and delivers, so the faster a daemon drains the queue, the fewer calls per',
  );
  out.push(
    'second the generator manages. Compare flat-out rows by events logged per second, not by calls or missing.',
    '',
  );
  out.push(
    '- **events**: distinct serials of `SYSCALL` records with `key="ambench"` in the log; **missing** = calls − events;',
    '  for `-auxN` daemons, `aux` under it = calls − events in the auxiliary logs (one route takes every bench event).',
  );
  out.push('- **lost**: change of the kernel `lost` counter; it counts records (each event is several), not events.');
  out.push(
    "- **CPU s/100k**: utime+stime (children included) of the daemon's process tree, from /proc/PID/stat, from the",
  );
  out.push(
    `  generator's start until the log stopped growing, per 100k events logged. Startup${info.warmup ? ' and the warm-up are' : ' is'} not included.`,
  );
  out.push('- **RSS**: VmHWM summed over the process tree, sampled before stopping the daemon.');
  out.push(
    "- **drain**: time from the generator's exit until the log stopped growing (20 ms polling, 0.5 s of quiet).",
  );
  out.push(
    "- **kauditd CPU**: the kernel thread that delivers records to the daemon; not counted in the daemon's CPU.",
  );
  out.push(
    '- **other load**: CPU used in the window by every process outside the harness, its daemon and generator (and',
  );
  out.push(
    '  kauditd), as % of one CPU. Above `--max-other` (default 20%) a measurement is repeated, up to 3 times, and the',
  );
  out.push(
    '  quietest try kept; a high value left in the table means the machine never became quiet and the row is suspect.',
  );
  out.push(
    '- auditd runs as shipped by Debian except: plugins off, no log rotation or disk-space actions (`priority_boost = 4`,',
  );
  out.push(
    '  i.e. nice −4, is its default and kept). auditmux: the same log settings, host daemon only unless `-auxN`',
  );
  out.push(
    '  (N auxiliary daemons written by the host process, `isolation: inline`) or `-auxN-proc` (each in its own process).',
    '  All run at nice −4: auditd and auditmux by their default `priority_boost` of 4, the C reader started so.',
    '',
  );

  out.push('## Results', '');
  out.push(
    '| rate | daemon | generator calls/s | events logged | missing | kernel lost (records) | CPU s/100k events | kauditd CPU s/100k | peak RSS MiB | drain s | other load, % of a CPU |',
  );
  out.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const g of gs) {
    const err = g.failed.length ? ` **${g.failed.length} failed**` : '';
    if (!g.ok.length) {
      out.push(`| ${rateLabel(g.rate)} | ${g.daemon} | failed: ${oneLine(g.failed[0]!.error!)} | | | | | | | | |`);
      continue;
    }
    const events =
      g.rate === 0
        ? `${cell(
            pick(g, (s) => s.events),
            0,
          )}<br>${cell(pick(g, loggedRate), 0)}/s`
        : cell(
            pick(g, (s) => s.events),
            0,
          );
    out.push(
      `| ${rateLabel(g.rate)} | ${g.daemon}${err} | ${cell(
        pick(g, (s) => s.genRate),
        0,
      )} | ${events} | ` +
        `${cell(
          pick(g, (s) => s.missing),
          0,
        )}${auxMissingCell(g)} | ${cell(
          pick(g, (s) => s.lost),
          0,
        )} | ${cell(
          pick(g, (s) => s.cpuPer100k),
          2,
        )} | ` +
        `${cell(
          pick(g, (s) => (s.kauditdCpu * 1e5) / Math.max(1, s.events)),
          2,
        )} | ` +
        `${cell(
          pick(g, (s) => s.peakRssKiB),
          1,
          1024,
        )} | ${cell(
          pick(g, (s) => s.drainSeconds),
          2,
        )} | ` +
        `${cell(
          pick(g, (s) => (100 * s.otherCpu) / s.windowSeconds),
          0,
        )} |`,
    );
  }
  out.push('');

  const pairs = info.daemons.filter((d) => baselineOf(d) && info.daemons.includes(baselineOf(d)!));
  out.push('## auditmux / auditd, same run', '');
  if (!pairs.length) {
    out.push('No auditmux daemon was run alongside the auditd with the same log format in this run.', '');
  } else {
    out.push('Ratios of medians; below 1 is better for CPU and RSS, above 1 is better for events logged.', '');
    out.push('| rate | comparison | events logged | missing (auditmux / auditd) | CPU per event | peak RSS |');
    out.push('|---|---|---|---|---|---|');
    for (const rate of info.rates) {
      for (const d of pairs) {
        const a = gs.find((g) => g.rate === rate && g.daemon === d);
        const b = gs.find((g) => g.rate === rate && g.daemon === baselineOf(d));
        if (!a?.ok.length || !b?.ok.length) continue;
        const ratio = (f: (s: Sample) => number, digits = 2): string => {
          const x = pick(a, f)!.med;
          const y = pick(b, f)!.med;
          return y === 0 ? (x === 0 ? '=' : '∞') : fmt(x / y, digits);
        };
        const miss = `${fmt(pick(a, (s) => s.missing)!.med, 0)} / ${fmt(pick(b, (s) => s.missing)!.med, 0)}`;
        out.push(
          `| ${rateLabel(rate)} | ${d} / ${baselineOf(d)} | ${ratio((s) => s.events)} | ${miss} | ` +
            `${ratio((s) => s.cpuPer100k)} | ${ratio((s) => s.peakRssKiB)} |`,
        );
      }
    }
    out.push('');
  }

  // The floor: a batched C reader (bench/creader.c) does the least any daemon must (receive, write RAW lines), so
  // CPU per event against it says how far auditmux is from the machine's limit, whatever auditd costs.
  const vsC = info.daemons.filter((d) => d.startsWith('auditmux-'));
  if (info.daemons.includes('creader') && vsC.length) {
    out.push('## auditmux / batched C reader, same run', '');
    out.push(
      'Ratios of medians against bench/creader.c (recvmmsg of 256, 2 ms pause after a short batch, RAW lines to a file).',
      '',
    );
    out.push('| rate | daemon | events logged | CPU per event | peak RSS |');
    out.push('|---|---|---|---|---|');
    for (const rate of info.rates) {
      const b = gs.find((g) => g.rate === rate && g.daemon === 'creader');
      if (!b?.ok.length) continue;
      for (const d of vsC) {
        const a = gs.find((g) => g.rate === rate && g.daemon === d);
        if (!a?.ok.length) continue;
        const ratio = (f: (s: Sample) => number): string => {
          const y = pick(b, f)!.med;
          return y === 0 ? '∞' : fmt(pick(a, f)!.med / y, 2);
        };
        out.push(
          `| ${rateLabel(rate)} | ${d} | ${ratio(rate === 0 ? loggedRate : (s) => s.events)} | ${ratio((s) => s.cpuPer100k)} | ${ratio((s) => s.peakRssKiB)} |`,
        );
      }
    }
    out.push('');
  }

  /**
   * A section of one row per rate and (daemon, base) pair: the ratios of their medians of CPU per event and of peak
   * RSS. Nothing when no pair was run.
   */
  const ratioSection = (title: string, intro: string[], pairs: readonly (readonly [string, string])[]): string[] => {
    if (!pairs.length) return [];
    const rows = [
      `## ${title}`,
      '',
      ...intro,
      '',
      '| rate | comparison | CPU per event | peak RSS |',
      '|---|---|---|---|',
    ];
    for (const rate of info.rates) {
      for (const [d, base] of pairs) {
        const a = gs.find((g) => g.rate === rate && g.daemon === d);
        const b = gs.find((g) => g.rate === rate && g.daemon === base);
        if (!a?.ok.length || !b?.ok.length) continue;
        const ratio = (f: (s: Sample) => number): string => {
          const y = pick(b, f)!.med;
          return y === 0 ? '∞' : fmt(pick(a, f)!.med / y, 2);
        };
        rows.push(
          `| ${rateLabel(rate)} | ${d} / ${base} | ${ratio((s) => s.cpuPer100k)} | ${ratio((s) => s.peakRssKiB)} |`,
        );
      }
    }
    rows.push('');
    return rows;
  };

  // What a daemon that takes every event adds: -auxN against the host alone, beside what a second log costs the C
  // reader (creader[-sync]-2logs against creader[-sync]), the least a second file of the same lines can cost.
  const extra: [string, string][] = [];
  for (const d of info.daemons) {
    const a = /^(auditmux-(?:raw|enriched))-aux\d+(-nosync)?$/.exec(d);
    const c = /^(creader(?:-sync)?)-2logs$/.exec(d);
    const base = a ? a[1]! + (a[2] ?? '') : c ? c[1]! : null;
    if (base && info.daemons.includes(base)) extra.push([d, base]);
  }
  out.push(
    ...ratioSection(
      'Extra logs: a daemon taking every event against the same daemon alone, same run',
      [
        'Ratios of medians of CPU per event. `creader[-sync]-2logs` writes every batch to a second file too (and syncs',
        'it on the same thread): the floor for what a second log of the same lines costs.',
      ],
      extra,
    ),
  );

  // What attribution costs: a -tagged daemon (every event a container's) against the same daemon untagged.
  const tagged = info.daemons
    .map((d) => [d, /^(.*)-tagged$/.exec(d)?.[1]] as const)
    .filter((p): p is readonly [string, string] => p[1] !== undefined && info.daemons.includes(p[1]));
  out.push(
    ...ratioSection(
      "Container attribution: every event a container's, against the same daemon untagged, same run",
      [
        '`-tagged`: the generator is given a container ID (`auditmux contid set`) before its first call, so the tracker',
        'follows it, every event gets its CONTAINER_ID record, and the route to the auxiliary daemon names that ID.',
      ],
      tagged,
    ),
  );

  const summary = info.daemons.map((d) => {
    const mine = gs.filter((g) => g.daemon === d && g.rate > 0 && g.ok.length);
    // Loss-free in every log: an auxiliary daemon that dropped from its queue missed events too.
    const lossFree = mine.filter((g) => g.ok.every((s) => s.missing === 0 && auxMissing(s) === 0)).map((g) => g.rate);
    const flat = gs.find((g) => g.daemon === d && g.rate === 0);
    const flatRate = flat?.ok.length ? fmt(pick(flat, loggedRate)!.med, 0) : '-';
    return `| ${d} | ${lossFree.length ? `${rateLabel(Math.max(...lossFree))}` : 'none of the rates run'} | ${flatRate} |`;
  });
  out.push('## Summary', '');
  out.push(
    '| daemon | highest target rate with no missing event in any log in any repetition | flat-out logged events/s (median) |',
  );
  out.push('|---|---|---|', ...summary, '');
  const failures = info.samples.filter((s) => s.error);
  if (failures.length) {
    out.push('## Failed measurements', '');
    for (const f of failures) out.push(`- ${f.daemon} ${rateLabel(f.rate)} rep ${f.rep}: ${oneLine(f.error!)}`);
    out.push('');
  }
  // Profile findings are written by people, not measured by this run: kept in bench/findings.md and copied in.
  const findings = join(__dirname, '..', '..', 'bench', 'findings.md');
  if (existsSync(findings)) out.push(readFileSync(findings, 'utf8').trimEnd(), '');
  out.push('## Running it', '');
  out.push('```sh');
  out.push('npx tsc -p tsconfig.json && sudo npm run bench            # full run, rewrites this file');
  out.push('node dist/bench/run.js --rates 20000,40000,max --reps 1 --duration 3 --daemons auditd-raw,auditmux-raw');
  out.push('node dist/bench/run.js --mode open                       # openat: SYSCALL, CWD, PATH, PROCTITLE records');
  out.push(
    'node dist/bench/run.js --cpu-prof --daemons auditmux-enriched --rates max   # .cpuprofile files for auditmux',
  );
  out.push(
    'node dist/bench/run.js --daemons creader,auditmux-raw,auditmux-raw-nosync --rates 10000,40000 --max-other 100000',
  );
  out.push('```', '');
  out.push('Raw samples of the last run: bench/results/latest.json (not committed).', '');
  return out.join('\n');
}
