// Container names for search and report: contid -> name, image, namespace from the CONTAINER_OP birth and update
// records of logs, the newest value of each field winning.
import { UsageError } from '../errors';
import { checkMetaGlob } from '../contid/meta-selector';
import { globMatch } from '../contid/cgroup-glob';
import { readLines, type LogInput } from './inputs';
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

/** Reads the birth and update records of `inputs` (files only: standard input cannot be read twice). */
export async function containersFromLogs(inputs: readonly LogInput[]): Promise<Map<bigint, ContainerNames>> {
  const out = new Map<bigint, ContainerNames>();
  const stamps: Stamps = new Map();
  const h = newHeader();
  for (const input of inputs) {
    if (input.path === '-') throw new UsageError('container names need log files, not standard input');
    try {
      await readLines(input, {
        line(buf, start, end) {
          if (buf.indexOf(TYPE, start) !== start) return;
          const at = buf.indexOf(OP, start);
          if (at < 0 || at >= end) return;
          const line = buf.subarray(start, end);
          if (parseHeader(line, 0, line.length, h)) return;
          // Only the op field decides (a hostile name containing "op=container-birth" is encoded, never bare).
          const op = firstField(line, h.bodyStart, h.bodyEnd, 'op');
          if (op !== 'container-birth' && op !== 'container-update') return;
          addRecord(line, h.bodyStart, h.bodyEnd, h.sec * 1000 + h.ms, out, stamps);
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
