// `auditmux search` and `auditmux report`: ausearch-style argument parsing, input resolution, output buffering, exit
// codes.
import { Buffer } from 'node:buffer';
import { closeSync, constants, ftruncateSync, statSync, writeSync } from 'node:fs';
import { openNoFollow } from '../safefs';
import { AuditmuxError, ExitCode, IoError, UsageError } from '../errors';
import { compileCriteria, type CriteriaSpec } from './criteria';
import { Interpreter, jsonEvent, rawEvent, textEvent, type OutputFormat } from './format';
import { ESCAPE_MODES, jsonLine, type EscapeMode } from './escape';
import { inputFromPath, inputsForDaemon, type LogInput } from './inputs';
import { DEFAULT_REPORT_LIMITS, htmlReport, jsonReport, ReportBuilder, textReport } from './report';
import { scanEvents, type SearchEvent } from './scan';
import {
  checkQuery,
  containersFromLogs,
  contidsMatching,
  FUTURE_SLACK_MS,
  hostLogInputs,
  type ContainerNames,
  type ContainerQuery,
} from './containers';
import { formatChain } from '../contid/chain';

export interface SearchIo {
  out(s: string): void;
  err(s: string): void;
  /** Bytes as they are (`--raw`: lines exactly as stored); without it, `out` of their latin1 text. */
  outBytes?(b: Buffer): void;
}

interface Parsed {
  spec: CriteriaSpec;
  /** Container criteria by name, resolved to contids from the host log's birth and update records. */
  query: ContainerQuery;
  /** `--names-from`: host logs kept elsewhere, read for names instead of the configured one. */
  namesFrom: string[];
  groupBy?: GroupBy;
  inputs: string[];
  daemons: string[];
  config?: string;
  format?: string;
  output?: string;
  top?: number;
  escape?: EscapeMode;
  help: boolean;
}

/** What a report row is: a contid chain, or a container's name, image or Kubernetes namespace (birth, update). */
const GROUP_BY = ['contid', 'name', 'image', 'namespace'] as const;
type GroupBy = (typeof GROUP_BY)[number];

/**
 * The row of a container (the first contid of a chain) when grouped by metadata: a container without a name keeps
 * its contid (it is still one container); one without an image or namespace (not from Kubernetes, or found by its
 * cgroup only) goes to a row that says so, which no image reference or namespace (a DNS label) can be spelled as.
 */
export function groupKeyOf(
  groupBy: GroupBy | undefined,
  names: ReadonlyMap<bigint, ContainerNames> | null,
): ((chain: readonly bigint[]) => string) | undefined {
  if (groupBy === undefined || groupBy === 'contid' || !names) return undefined;
  if (groupBy === 'name') return (c) => names.get(c[0]!)?.name ?? formatChain(c);
  const missing = groupBy === 'image' ? '(no image)' : '(no namespace)';
  return (c) => names.get(c[0]!)?.[groupBy] ?? missing;
}

type Kind = 'value' | 'time' | 'flag';
interface OptDef {
  names: string[];
  kind: Kind;
  apply(p: Parsed, v: string | string[]): void;
}

const setSpec =
  (k: keyof CriteriaSpec) =>
  (p: Parsed, v: string | string[]): void => {
    if (p.spec[k] !== undefined) throw new UsageError(`${k} given twice`);
    (p.spec as Record<string, unknown>)[k] = v;
  };

const setQuery =
  (k: keyof ContainerQuery) =>
  (p: Parsed, v: string | string[]): void => {
    if (p.query[k] !== undefined) throw new UsageError(`container ${k} given twice`);
    p.query[k] = v as string;
  };

/** Shared by search and report: inputs and criteria. Short forms are ausearch's multi-letter ones (-pp, -ui, -ts). */
const COMMON: OptDef[] = [
  { names: ['-if', '--input'], kind: 'value', apply: (p, v) => p.inputs.push(v as string) },
  { names: ['--daemon'], kind: 'value', apply: (p, v) => p.daemons.push(v as string) },
  { names: ['-c', '--config'], kind: 'value', apply: (p, v) => (p.config = v as string) },
  { names: ['--contid'], kind: 'value', apply: setSpec('contid') },
  { names: ['--container-name'], kind: 'value', apply: setQuery('name') },
  { names: ['--image'], kind: 'value', apply: setQuery('image') },
  { names: ['--k8s-namespace'], kind: 'value', apply: setQuery('namespace') },
  { names: ['--names-from'], kind: 'value', apply: (p, v) => p.namesFrom.push(v as string) },
  { names: ['-k', '--key'], kind: 'value', apply: setSpec('key') },
  { names: ['-m', '--message'], kind: 'value', apply: setSpec('message') },
  { names: ['-p', '--pid'], kind: 'value', apply: setSpec('pid') },
  { names: ['-pp', '--ppid'], kind: 'value', apply: setSpec('ppid') },
  { names: ['-ui', '--uid'], kind: 'value', apply: setSpec('uid') },
  { names: ['-ua', '--uid-all'], kind: 'value', apply: setSpec('uidAll') },
  { names: ['-ul', '--loginuid', '--auid'], kind: 'value', apply: setSpec('auid') },
  { names: ['-x', '--executable'], kind: 'value', apply: setSpec('exe') },
  { names: ['-sc', '--syscall'], kind: 'value', apply: setSpec('syscall') },
  { names: ['-sv', '--success'], kind: 'value', apply: setSpec('success') },
  { names: ['-ts', '--start'], kind: 'time', apply: setSpec('start') },
  { names: ['-te', '--end'], kind: 'time', apply: setSpec('end') },
  { names: ['-a', '--event'], kind: 'value', apply: setSpec('event') },
  { names: ['-w', '--word'], kind: 'flag', apply: (p) => (p.spec.word = true) },
  { names: ['-h', '--help'], kind: 'flag', apply: (p) => (p.help = true) },
];

const SEARCH_OPTS: OptDef[] = [
  ...COMMON,
  { names: ['-r', '--raw'], kind: 'flag', apply: (p) => setFormat(p, 'raw') },
  { names: ['-i', '--interpret'], kind: 'flag', apply: (p) => setFormat(p, 'text') },
  { names: ['--format'], kind: 'value', apply: (p, v) => setFormat(p, v as string) },
  {
    names: ['--escape'],
    kind: 'value',
    apply: (p, v) => {
      if (!(ESCAPE_MODES as readonly string[]).includes(v as string))
        throw new UsageError(`--escape: expected raw, tty, shell or shell_quote, got "${v}"`);
      p.escape = v as EscapeMode;
    },
  },
];

const REPORT_OPTS: OptDef[] = [
  ...COMMON,
  { names: ['--format'], kind: 'value', apply: (p, v) => setFormat(p, v as string) },
  { names: ['--html'], kind: 'flag', apply: (p) => setFormat(p, 'html') },
  { names: ['-o', '--output'], kind: 'value', apply: (p, v) => (p.output = v as string) },
  {
    names: ['--group-by'],
    kind: 'value',
    apply: (p, v) => {
      if (!(GROUP_BY as readonly string[]).includes(v as string))
        throw new UsageError(`--group-by: expected contid, name, image or namespace, got "${v}"`);
      p.groupBy = v as GroupBy;
    },
  },
  {
    names: ['--top'],
    kind: 'value',
    apply: (p, v) => {
      if (!/^[1-9][0-9]{0,3}$/.test(v as string))
        throw new UsageError(`--top: expected a number from 1 to 9999, got "${v}"`);
      p.top = Number(v);
    },
  },
];

function setFormat(p: Parsed, f: string): void {
  if (p.format !== undefined && p.format !== f)
    throw new UsageError(`conflicting output formats: ${p.format} and ${f}`);
  p.format = f;
}

/**
 * A second -ts/-te argument is taken only when it is a time, so `-ts today -k x` and `-ts 01/02/2025 10:00` both work.
 */
const TIME_ARG = /^[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?$/;

function parseArgs(argv: string[], defs: OptDef[]): Parsed {
  const p: Parsed = { spec: {}, query: {}, namesFrom: [], inputs: [], daemons: [], help: false };
  const byName = new Map<string, OptDef>();
  for (const d of defs) for (const n of d.names) byName.set(n, d);
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i]!;
    let inline: string | undefined;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    if (eq > 0) {
      inline = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const d = byName.get(a);
    if (!d) {
      if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
      throw new UsageError(`unexpected argument "${a}" (options take their values after them, e.g. -k KEY)`);
    }
    if (d.kind === 'flag') {
      if (inline !== undefined) throw new UsageError(`${a} takes no value`);
      d.apply(p, '');
      continue;
    }
    const next = (): string => {
      if (inline !== undefined) {
        const v = inline;
        inline = undefined;
        return v;
      }
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (d.kind === 'value') d.apply(p, next());
    else {
      const vals = [next()];
      const peek = argv[i + 1];
      if (peek !== undefined && TIME_ARG.test(peek) && !TIME_ARG.test(vals[0]!)) vals.push(argv[++i]!);
      d.apply(p, vals);
    }
  }
  return p;
}

const SEARCH_HELP = `usage: auditmux search [inputs] [criteria] [output]
inputs (default: the host daemon's configured log and its rotated files):
  -if, --input PATH        a log file (.gz read as gzip), a directory of rotated logs, or - for stdin; repeatable
  --daemon NAME            the configured log of 'host' or an auxiliary daemon; repeatable
  -c, --config FILE        configuration file for --daemon (default /etc/auditmux/auditmux.yaml)
criteria (all must match; each may be met by any record of the event; whole events are printed):
  --contid LIST            N, 0xN, LO-HI, unset, N^* (N and everything nested in it), comma separated
  --container-name GLOB    containers by name, --image GLOB by image, --k8s-namespace GLOB by Kubernetes
                           namespace: named by the CONTAINER_OP birth and update records of the host log and
                           its rotations only (the configured one, whatever the inputs; never an auxiliary
                           daemon's log, which its tenant may write), the newest value winning
  --names-from FILE        take names from this host log and its rotations instead (a copy, another machine's)
  -k, --key KEY            rule key (a part of it, as ausearch; whole with -w)
  -m, --message TYPES      record types, comma separated, names in any case (SYSCALL, container_id, 1336, ALL)
  -p, --pid PID            -pp, --ppid PPID          -ui, --uid UID (number or name)
  -ua, --uid-all UID       uid, euid or auid (as ausearch -ua)
  -ul, --loginuid, --auid AUID
  -x, --executable PATH    part of the executable's path (whole with -w)
  -w, --word               key and executable must match whole
  -sc, --syscall NAME|NR   -sv, --success yes|no
  -ts, --start [DATE] [TIME] | WORD     -te, --end [DATE] [TIME] | WORD
                           DATE MM/DD/YYYY or YYYY-MM-DD, TIME HH:MM[:SS], @EPOCH, or now, recent, boot, today,
                           yesterday, this-week, week-ago, this-month, this-year
  -a, --event LIST         event serials and ranges: 100,200-300
output:
  -r, --raw                the matching events' lines exactly as in the log
  -i, --interpret          interpreted text (the default): names for ids, syscalls, arch; decoded strings
  --escape MODE            how -i text escapes values (as ausearch --escape): tty (default: control characters as
                           \\ooo), shell, shell_quote (tty plus a backslash before shell characters), raw (nothing)
  --format raw|text|json   json: one object per event per line
exit: 0 found, 1 nothing found, 2 bad arguments, 3 bad config, 8 a log could not be read (completely): a corrupt
      .gz among the rotated logs is reported on stderr and skipped, the other logs are still searched and printed`;

const REPORT_HELP = `usage: auditmux report [inputs] [criteria] [--format text|html|json] [-o FILE] [--top N]
       [--group-by contid|name|image|namespace]
Per container: events, top keys, top executables, failed syscalls, first and last seen. --group-by name: one row
per container name (from the host log's birth and update records, as for search --container-name, or
--names-from's; a container restarted under a new contid stays one row);
image: one row per image, namespace: one row per Kubernetes namespace (as --image and --k8s-namespace select;
containers without one share a "(no image)" or "(no namespace)" row).
Inputs and criteria as for auditmux search; --html is --format html (one self-contained page with SVG plots).
A log that cannot be read completely (a corrupt .gz) is reported on stderr and skipped; the report covers the rest
and the exit code is 8. Memory is bounded whatever the logs hold: 256 containers (later ones under "(other)"), top
tables of max(128, 2 x --top) entries per container (Space-Saving: counts become upper bounds past it, and the
report says so), time series of at most 1024 bins (wider bins for long spans).`;

/**
 * Where container names come from: the host log and its rotations, where auditmux writes birth and update records,
 * never the inputs themselves. An auxiliary daemon with a `user:` can write anything into its own log, a record that
 * renames another tenant's container included, so a search over several daemons' logs must not take names from them.
 */
function nameSources(p: Parsed): LogInput[] {
  if (p.namesFrom.length) return p.namesFrom.flatMap((f) => hostLogInputs(f));
  try {
    return inputsForDaemon('host', p.config);
  } catch (e) {
    if (!(e instanceof IoError)) throw e;
    throw new IoError(
      `container names come only from the host log's birth and update records (an auxiliary daemon's log may be written by its tenant), and ${e.message}; name the host log with --names-from FILE`,
      'E_NO_HOST_LOG',
    );
  }
}

/** Whether any file of `a` is one of `b` (by device and inode: the same file under another name counts). */
function overlaps(a: readonly LogInput[], b: readonly LogInput[]): boolean {
  const id = (i: LogInput): string | null => {
    try {
      const st = statSync(i.path);
      return `${st.dev}:${st.ino}`;
    } catch {
      return null;
    }
  };
  const ids = new Set(b.map(id));
  return a.some((i) => {
    const x = id(i);
    return x !== null && ids.has(x);
  });
}

/** Container names for the criteria and the report, from the host log (see nameSources). */
async function containerNames(
  p: Parsed,
  inputs: readonly LogInput[],
  io: SearchIo,
): Promise<Map<bigint, ContainerNames> | null> {
  const wanted = Object.values(p.query).some((v) => v !== undefined);
  if (!wanted && (p.groupBy === undefined || p.groupBy === 'contid')) {
    if (p.namesFrom.length)
      throw new UsageError(
        '--names-from needs --container-name, --image, --k8s-namespace or --group-by name|image|namespace',
      );
    return null;
  }
  checkQuery(p.query);
  const sources = nameSources(p);
  // Logs from elsewhere searched with this host's names would name the wrong containers: say where names came from.
  if (p.inputs.length && !p.namesFrom.length && !overlaps(inputs, sources))
    io.err(
      `auditmux: warning: container names are taken from the host log ${sources.at(-1)!.path}, which is not among the inputs (--names-from FILE for another host log)`,
    );
  const stats = { future: 0 };
  const names = await containersFromLogs(sources, { stats });
  if (stats.future)
    io.err(
      `auditmux: warning: ${stats.future} container record(s) dated more than ${FUTURE_SLACK_MS / 60_000} minutes in the future ignored`,
    );
  if (wanted) p.spec.containerIds = contidsMatching(names, p.query);
  return names;
}

function resolveInputs(p: Parsed): LogInput[] {
  const out: LogInput[] = [];
  for (const i of p.inputs) out.push(...inputFromPath(i));
  for (const d of p.daemons) out.push(...inputsForDaemon(d, p.config));
  if (out.length === 0) out.push(...inputsForDaemon('host', p.config));
  return out;
}

/** Batches output: one io.out call per ~64 KiB instead of one per event. */
class Batcher {
  private parts: string[] = [];
  private size = 0;
  /** `latin1`: the parts are bytes read as latin1 (raw lines) and go out as those bytes, not as UTF-8 of them. */
  constructor(
    private readonly io: SearchIo,
    private readonly latin1 = false,
  ) {}
  push(s: string): void {
    this.parts.push(s);
    this.size += s.length;
    if (this.size >= 65536) this.flush();
  }
  flush(): void {
    if (this.size === 0) return;
    const s = this.parts.join('');
    // A stored byte 0x9B written as the UTF-8 of U+009B is C1 CSI to some terminals, and every other byte past 0x7F
    // came out as two: raw lines are their own bytes.
    if (this.latin1 && this.io.outBytes) this.io.outBytes(Buffer.from(s, 'latin1'));
    else this.io.out(s);
    this.parts = [];
    this.size = 0;
  }
}

/** Some files could not be read to their end: what was found in the rest is out, the exit code says it is partial. */
function incomplete(unreadable: string[], io: SearchIo): number {
  io.err(
    `auditmux: ${unreadable.length} log file(s) could not be read completely (see the warnings above); results come from the rest`,
  );
  return ExitCode.IO;
}

function fail(e: unknown, io: SearchIo): number {
  if (e instanceof AuditmuxError) {
    io.err(`auditmux: ${e.message}`);
    return e.exitCode;
  }
  throw e;
}

export async function runSearch(argv: string[], io: SearchIo): Promise<number> {
  try {
    const p = parseArgs(argv, SEARCH_OPTS);
    if (p.help) {
      io.out(SEARCH_HELP + '\n');
      return ExitCode.OK;
    }
    const format = (p.format ?? 'text') as OutputFormat;
    if (!['raw', 'text', 'json'].includes(format))
      throw new UsageError(`--format: expected raw, text or json, got "${format}"`);
    const inputs = resolveInputs(p);
    await containerNames(p, inputs, io);
    const criteria = compileCriteria(p.spec);
    const out = new Batcher(io, format === 'raw');
    const interp = new Interpreter();
    const render: (ev: SearchEvent) => string =
      format === 'raw'
        ? rawEvent
        : format === 'json'
          ? (ev) => jsonLine(jsonEvent(ev)) + '\n'
          : (ev) => textEvent(ev, interp, p.escape ?? 'tty');
    let stats;
    try {
      stats = await scanEvents(
        inputs,
        criteria,
        (ev) => out.push(render(ev)),
        (w) => io.err(`auditmux: warning: ${w}`),
      );
    } finally {
      out.flush();
    }
    if (stats.malformed > 0) io.err(`auditmux: ${stats.malformed} malformed line(s) skipped`);
    if (stats.matched === 0) io.err('<no matches>');
    if (stats.unreadable.length > 0) return incomplete(stats.unreadable, io);
    return stats.matched === 0 ? ExitCode.FAILURE : ExitCode.OK;
  } catch (e) {
    return fail(e, io);
  }
}

/**
 * `report -o FILE`, usually run as root, often into /tmp: never through a planted symlink or hard link (O_NOFOLLOW,
 * one link, truncated only after the check), never a FIFO, and never into a file another user owns, who could read it.
 */
function writeReportFile(path: string, text: string): void {
  const { fd, stat } = openNoFollow(path, constants.O_WRONLY | constants.O_CREAT, { mode: 0o600, what: 'report file' });
  try {
    const me = process.geteuid?.() ?? stat.uid;
    if (stat.uid !== me)
      throw new IoError(
        `report file ${path} is owned by uid ${stat.uid}, not by us (uid ${me}): it could be read by its owner (refused)`,
        'E_UNSAFE_FILE',
      );
    ftruncateSync(fd, 0);
    const b = Buffer.from(text);
    for (let off = 0; off < b.length;) off += writeSync(fd, b, off);
  } catch (e) {
    if (e instanceof IoError) throw e;
    throw new IoError(`${path}: cannot write the report (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  } finally {
    closeSync(fd);
  }
}

export async function runReport(argv: string[], io: SearchIo): Promise<number> {
  try {
    const p = parseArgs(argv, REPORT_OPTS);
    if (p.help) {
      io.out(REPORT_HELP + '\n');
      return ExitCode.OK;
    }
    const format = p.format ?? 'text';
    if (!['text', 'html', 'json'].includes(format))
      throw new UsageError(`--format: expected text, html or json, got "${format}"`);
    const inputs = resolveInputs(p);
    const names = await containerNames(p, inputs, io);
    const criteria = compileCriteria(p.spec);
    const top = p.top ?? 5;
    // Memory is capped (ReportLimits); the tables keep room for twice the entries shown.
    const r = new ReportBuilder(
      { table: Math.max(DEFAULT_REPORT_LIMITS.table, 2 * top) },
      groupKeyOf(p.groupBy, names),
      p.groupBy === 'image' || p.groupBy === 'namespace' ? p.groupBy : 'container',
    );
    const stats = await scanEvents(
      inputs,
      criteria,
      (ev) => r.add(ev),
      (w) => io.err(`auditmux: warning: ${w}`),
    );
    if (stats.malformed > 0) io.err(`auditmux: ${stats.malformed} malformed line(s) skipped`);
    const text =
      format === 'html'
        ? htmlReport(r, top)
        : format === 'json'
          ? jsonLine(jsonReport(r, top)) + '\n'
          : textReport(r, top);
    if (p.output !== undefined) {
      writeReportFile(p.output, text);
    } else io.out(text);
    if (stats.unreadable.length > 0) return incomplete(stats.unreadable, io);
    return ExitCode.OK;
  } catch (e) {
    return fail(e, io);
  }
}
