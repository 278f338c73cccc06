// The container registry across daemon restarts: a bounded JSON state file, written atomically without following
// links, read size-bounded and validated field by field; anything wrong means "start empty", never a crash.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AuditmuxError, ExitCode } from '../errors';
import { AUDIT_CID_UNSET } from '../kernel/constants';
import { createExclusive, lstatOrNull, readBounded } from '../safefs';
import type { ContainerMeta } from './metadata';
import type { ContainerInfo, ContainerSource } from './registry';

/** The state file's name, in the daemon's runtime directory (the control socket's): gone at reboot with the pids. */
export const CONTAINER_STATE_FILE = 'containers.state';
/** Live containers written at most (the registry's own default cap is far above what a host runs). */
export const MAX_PERSISTED = 4096;
/** Largest state file read: MAX_PERSISTED containers with their metadata and labels fit well below. */
export const MAX_STATE_BYTES = 8 * 1024 * 1024;
const STR_MAX = 4096;
const LABELS_MAX = 256;
const VERSION = 1;

export class ContainerStateError extends AuditmuxError {
  constructor(message: string) {
    super('E_CONTAINER_STATE', message, ExitCode.FAILURE);
  }
}

/** What a restarted host takes back of a container (counters go on from where they were). */
export type PersistedContainer = Pick<
  ContainerInfo,
  | 'contid'
  | 'runtime'
  | 'id'
  | 'meta'
  | 'source'
  | 'pid'
  | 'pidStart'
  | 'firstSeen'
  | 'lastSeen'
  | 'routed'
  | 'dropped'
  | 'hostOnly'
>;

/** This boot's id: a state file from another boot describes pids and containers that no longer exist. */
export function currentBootId(file = '/proc/sys/kernel/random/boot_id'): string {
  try {
    return readBounded(file, { limit: 64, what: 'boot id' }).data.toString('latin1').trim();
  } catch {
    return 'unknown';
  }
}

export function encodeState(boot: string, containers: Iterable<ContainerInfo>): string {
  const out: unknown[] = [];
  for (const c of containers) {
    if (out.length >= MAX_PERSISTED) break;
    out.push({
      contid: c.contid.toString(),
      runtime: c.runtime,
      id: c.id,
      meta: c.meta,
      source: c.source,
      pid: c.pid,
      pidStart: c.pidStart,
      firstSeen: c.firstSeen,
      lastSeen: c.lastSeen,
      routed: c.routed,
      dropped: c.dropped,
      hostOnly: c.hostOnly,
    });
  }
  return JSON.stringify({ version: VERSION, boot, containers: out });
}

/** Writes the state: a new temporary (O_EXCL|O_NOFOLLOW, 0600), fsynced, then renamed over the old file. */
export function writeState(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  const { fd } = createExclusive(tmp, { mode: 0o600, what: 'container state temporary', replaceStale: true });
  try {
    try {
      const b = Buffer.from(text, 'utf8');
      for (let off = 0; off < b.length;) off += fs.writeSync(fd, b, off, b.length - off);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

type Obj = Record<string, unknown>;

function str(o: Obj, k: string, at: string, optional = false): string | undefined {
  const v = o[k];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || v.length > STR_MAX) throw new ContainerStateError(`${at}.${k} must be a short string`);
  return v;
}

function int(o: Obj, k: string, at: string, nullable = false): number | null {
  const v = o[k];
  if (v === null && nullable) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new ContainerStateError(`${at}.${k} must be a non-negative integer`);
  return v;
}

function meta(v: unknown, at: string): ContainerMeta {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ContainerStateError(`${at}.meta must be an object`);
  const o = v as Obj;
  const m: ContainerMeta = {};
  for (const k of [
    'name',
    'image',
    'podName',
    'podNamespace',
    'podUid',
    'containerName',
    'containerdNamespace',
  ] as const) {
    const s = str(o, k, `${at}.meta`, true);
    if (s !== undefined) m[k] = s;
  }
  if (o.labels !== undefined) {
    const l = o.labels;
    if (!l || typeof l !== 'object' || Array.isArray(l)) throw new ContainerStateError(`${at}.meta.labels: an object`);
    const entries = Object.entries(l as Obj);
    if (entries.length > LABELS_MAX) throw new ContainerStateError(`${at}.meta.labels: over ${LABELS_MAX} labels`);
    const labels: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [k, x] of entries) {
      if (k.length > STR_MAX || typeof x !== 'string' || x.length > STR_MAX)
        throw new ContainerStateError(`${at}.meta.labels: short string keys and values only`);
      labels[k] = x;
    }
    m.labels = labels;
  }
  return m;
}

/** Parses and checks a state file's text; throws ContainerStateError naming the first bad field. */
export function parseState(text: string, boot: string): PersistedContainer[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ContainerStateError(`not JSON (${(e as Error).message})`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new ContainerStateError('not an object');
  const d = doc as Obj;
  if (d.version !== VERSION) throw new ContainerStateError(`version ${String(d.version)}, expected ${VERSION}`);
  if (d.boot !== boot) throw new ContainerStateError('written during another boot (its pids are gone)');
  if (!Array.isArray(d.containers) || d.containers.length > MAX_PERSISTED)
    throw new ContainerStateError(`containers must be a list of at most ${MAX_PERSISTED}`);
  const seen = new Set<bigint>();
  return d.containers.map((v: unknown, i: number): PersistedContainer => {
    const at = `containers[${i}]`;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ContainerStateError(`${at} must be an object`);
    const o = v as Obj;
    const idText = str(o, 'contid', at)!;
    // A contid is a u64 in decimal, never -1 (unset) nor 0.
    if (!/^[1-9][0-9]{0,19}$/.test(idText) || BigInt(idText) >= AUDIT_CID_UNSET)
      throw new ContainerStateError(`${at}.contid ${JSON.stringify(idText.slice(0, 40))} is not a contid`);
    const contid = BigInt(idText);
    if (seen.has(contid)) throw new ContainerStateError(`${at}.contid ${idText} appears twice`);
    seen.add(contid);
    const source = str(o, 'source', at);
    if (source !== 'hook' && source !== 'cgroup') throw new ContainerStateError(`${at}.source must be hook or cgroup`);
    return {
      contid,
      runtime: str(o, 'runtime', at)!,
      id: str(o, 'id', at)!,
      meta: meta(o.meta, at),
      source: source as ContainerSource,
      pid: int(o, 'pid', at, true),
      pidStart: int(o, 'pidStart', at, true),
      firstSeen: int(o, 'firstSeen', at)!,
      lastSeen: int(o, 'lastSeen', at)!,
      routed: int(o, 'routed', at)!,
      dropped: int(o, 'dropped', at)!,
      hostOnly: int(o, 'hostOnly', at)!,
    };
  });
}

/** Reads the state file: [] when there is none; throws (IoError, ContainerStateError) when it cannot be used. */
export function readState(file: string, boot: string): PersistedContainer[] {
  if (!lstatOrNull(file)) return [];
  // Regular files only, never through a symlink, never more than MAX_STATE_BYTES read.
  const r = readBounded(file, { limit: MAX_STATE_BYTES, noFollow: true, what: 'container state' });
  return parseState(r.data.toString('utf8'), boot);
}
