// Container names for search and report: contid -> name, image, namespace from the CONTAINER_OP birth records of logs.
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
const BIRTH = Buffer.from('op=container-birth', 'latin1');
const TYPE = Buffer.from('type=CONTAINER_OP ', 'latin1');

/** A value as auditmux writes untrusted strings: `"text"`, hex, or `?` (unknown). */
export function decodeUntrusted(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '?' || raw === '') return undefined;
  if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) return raw.slice(1, -1);
  if (/^(?:[0-9A-F]{2})+$/i.test(raw)) return Buffer.from(raw, 'hex').toString('utf8');
  return raw;
}

/** One birth record's body [from, end) of `b` into `into` (the first record of a contid wins). */
function addBirth(b: Buffer, from: number, end: number, into: Map<bigint, ContainerNames>): void {
  const c = firstField(b, from, end, 'contid');
  if (!c || !/^[0-9]{1,20}$/.test(c) || into.size >= MAX_CONTAINERS) return;
  const id = BigInt(c);
  if (into.has(id)) return;
  const n: ContainerNames = {};
  const set = (k: keyof ContainerNames, field: string): void => {
    const v = decodeUntrusted(firstField(b, from, end, field));
    if (v !== undefined) n[k] = v;
  };
  set('name', 'name');
  set('image', 'image');
  set('namespace', 'namespace');
  set('pod', 'pod');
  set('runtime', 'runtime');
  into.set(id, n);
}

/** Reads the birth records of `inputs` (files only: standard input cannot be read twice). */
export async function containersFromLogs(inputs: readonly LogInput[]): Promise<Map<bigint, ContainerNames>> {
  const out = new Map<bigint, ContainerNames>();
  const h = newHeader();
  for (const input of inputs) {
    if (input.path === '-') throw new UsageError('container names need log files, not standard input');
    try {
      await readLines(input, {
        line(buf, start, end) {
          if (buf.indexOf(TYPE, start) !== start) return;
          const at = buf.indexOf(BIRTH, start);
          if (at < 0 || at >= end) return;
          const line = buf.subarray(start, end);
          if (parseHeader(line, 0, line.length, h)) return;
          addBirth(line, h.bodyStart, h.bodyEnd, out);
        },
        overlong() {
          /* not a birth record */
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

/** The contids whose birth record matches every glob given. */
export function contidsMatching(dir: ReadonlyMap<bigint, ContainerNames>, q: ContainerQuery): bigint[] {
  const out: bigint[] = [];
  const ok = (g: string | undefined, v: string | undefined): boolean =>
    g === undefined || (v !== undefined && globMatch(g, v));
  for (const [id, n] of dir)
    if (ok(q.name, n.name) && ok(q.image, n.image) && ok(q.namespace, n.namespace)) out.push(id);
  return out;
}
