// Container names for search and report: contid -> name, image, namespace from the CONTAINER_OP birth and update
// records of the host log, the newest value of each field winning.
import { Buffer } from 'node:buffer';
import { lstatSync } from 'node:fs';
import { resolve } from 'node:path';
import { IoError, UsageError } from '../errors';
import { checkMetaGlob } from '../contid/container-selector';
import { globMatch } from '../contid/cgroup-glob';
import { readLines, rotationSeries, type LogInput } from './inputs';
import { firstField, newHeader, parseHeader } from './logline';

export interface ContainerNames {
  name?: string;
  image?: string;
  namespace?: string;
  pod?: string;
  runtime?: string;
}

/** What the command line asks of a container: globs on its name, image and Kubernetes namespace. */
export interface ContainerQuery {
  name?: string;
  image?: string;
  namespace?: string;
}

/**
 * A record dated later than the search's clock by more than this is ignored: a far-future time would otherwise win
 * over every real record for good. The slack covers the host's clock stepping back a little after it wrote.
 */
export const FUTURE_SLACK_MS = 5 * 60_000;

/** Containers remembered per scan; past this the rest are not named (a log is not allowed to grow memory freely). */
export const MAX_CONTAINERS = 1 << 16;
const OP = Buffer.from('op=container-', 'latin1');
const TYPE = Buffer.from('type=CONTAINER_OP ', 'latin1');
const FIELDS: ReadonlyArray<[keyof ContainerNames, string]> = [
  ['name', 'name'],
  ['image', 'image'],
  ['namespace', 'namespace'],
  ['pod', 'pod'],
  ['runtime', 'runtime'],
];

/** A value as auditmux writes untrusted strings: `"text"`, hex, or `?` (unknown). */
export function decodeUntrusted(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '?' || raw === '') return undefined;
  if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) return raw.slice(1, -1);
  if (/^(?:[0-9A-F]{2})+$/i.test(raw)) return Buffer.from(raw, 'hex').toString('utf8');
  return raw;
}

/** The time of the record that set each field of a contid, so that the newest wins whatever order files are read in. */
type Stamps = Map<bigint, Partial<Record<keyof ContainerNames, number>>>;

/**
 * One birth or update record's body [from, end) of `b`, written at `t` (ms), into `into`: every field it knows
 * replaces an older one (a name that arrived with the hook after the cgroup scan's birth record, a restart's new
 * birth); `?` (unknown) replaces nothing.
 */
function addRecord(b: Buffer, from: number, end: number, t: number, into: Map<bigint, ContainerNames>, at: Stamps) {
  const c = firstField(b, from, end, 'contid');
  if (!c || !/^[0-9]{1,20}$/.test(c)) return;
  const id = BigInt(c);
  let n = into.get(id);
  if (!n) {
    if (into.size >= MAX_CONTAINERS) return;
    into.set(id, (n = {}));
    at.set(id, {});
  }
  const stamps = at.get(id)!;
  for (const [k, field] of FIELDS) {
    const v = decodeUntrusted(firstField(b, from, end, field));
    if (v === undefined || (stamps[k] ?? -1) > t) continue;
    n[k] = v;
    stamps[k] = t;
  }
}

export interface NamesOptions {
  /** The clock records are compared with (ms since the epoch); default now. */
  now?: number;
  /** Filled with the count of records ignored for a time past now + FUTURE_SLACK_MS. */
  stats?: { future: number };
}

/**
 * Reads the birth and update records of `inputs` (files only: standard input cannot be read twice). The caller gives
 * the host log and its rotations only, where auditmux writes these records: a tenant whose daemon runs as its own
 * user can write any line into its own log, a record renaming another tenant's container included.
 */
export async function containersFromLogs(
  inputs: readonly LogInput[],
  opts: NamesOptions = {},
): Promise<Map<bigint, ContainerNames>> {
  const out = new Map<bigint, ContainerNames>();
  const stamps: Stamps = new Map();
  const h = newHeader();
  const latest = (opts.now ?? Date.now()) + FUTURE_SLACK_MS;
  for (const input of inputs) {
    if (input.path === '-') throw new UsageError('container names need log files, not standard input');
    try {
      await readLines(input, {
        line(buf, start, end) {
          // Bounded to the line: a search of the whole read chunk for every line was quadratic per chunk.
          if (end - start < TYPE.length || buf.compare(TYPE, 0, TYPE.length, start, start + TYPE.length) !== 0) return;
          const line = buf.subarray(start, end);
          if (line.indexOf(OP) < 0) return;
          if (parseHeader(line, 0, line.length, h)) return;
          // Only the op field decides (a hostile name containing "op=container-birth" is encoded, never bare).
          const op = firstField(line, h.bodyStart, h.bodyEnd, 'op');
          if (op !== 'container-birth' && op !== 'container-update') return;
          const t = h.sec * 1000 + h.ms;
          if (t > latest) {
            if (opts.stats) opts.stats.future++;
            return;
          }
          addRecord(line, h.bodyStart, h.bodyEnd, t, out, stamps);
        },
        overlong() {
          /* not a birth or update record */
        },
      });
    } catch {
      // An unreadable file is reported by the scan itself; here it only names fewer containers.
    }
  }
  return out;
}

/**
 * `--names-from FILE`: a host log kept elsewhere (a copy, another machine's) and its rotations beside it (FILE.1,
 * FILE.2.gz ...). FILE is read as the operator names it; the rotations, found by listing, as search reads listed files.
 */
export function hostLogInputs(file: string): LogInput[] {
  if (file === '-') throw new UsageError('--names-from: container names need a log file, not standard input');
  const path = resolve(file);
  let isDir: boolean;
  try {
    isDir = lstatSync(path).isDirectory();
  } catch (e) {
    throw new IoError(`--names-from ${file}: cannot read the log (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (isDir)
    throw new UsageError(
      `--names-from ${file}: give the host log file (its rotations beside it are read too), not a directory, which can hold other daemons' logs`,
    );
  return [...rotationSeries(path).filter((i) => i.path !== path), { path, gzip: path.endsWith('.gz'), series: path }];
}

export function checkQuery(q: ContainerQuery): void {
  for (const [k, g] of Object.entries(q) as Array<[string, string | undefined]>) {
    if (g === undefined) continue;
    const bad = checkMetaGlob(g);
    if (bad)
      throw new UsageError(`--${k === 'namespace' ? 'k8s-namespace' : k === 'name' ? 'container-name' : k}: ${bad}`);
  }
}

/** The contids whose newest metadata (birth and update records) matches every glob given. */
export function contidsMatching(dir: ReadonlyMap<bigint, ContainerNames>, q: ContainerQuery): bigint[] {
  const out: bigint[] = [];
  const ok = (g: string | undefined, v: string | undefined): boolean =>
    g === undefined || (v !== undefined && globMatch(g, v));
  for (const [id, n] of dir)
    if (ok(q.name, n.name) && ok(q.image, n.image) && ok(q.namespace, n.namespace)) out.push(id);
  return out;
}
