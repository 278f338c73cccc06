// The container registry across daemon restarts: a bounded JSON state file, written atomically without following
// links, read size-bounded and validated field by field. The writer keeps to the reader's limits (trimming, and
// saying what), and the reader skips an entry it cannot use: one container's metadata never costs the others theirs.
import { Buffer } from 'node:buffer';
import { AuditmuxError, ExitCode } from '../errors';
import { AUDIT_CID_UNSET } from '../kernel/constants';
import { bootStateDocument, lstatOrNull, readBounded, replaceFile } from '../safefs';
import type { ContainerMeta } from './metadata';
import { RUNTIME_KEY_RE } from './oci-state';
import type { ContainerInfo, ContainerSource } from './registry';

/** The state file's name, in the daemon's runtime directory (the control socket's): gone at reboot with the pids. */
export const CONTAINER_STATE_FILE = 'containers.state';
/** Live containers written at most (the registry's own default cap is far above what a host runs). */
export const MAX_PERSISTED = 4096;
/** Largest state file read. */
export const MAX_STATE_BYTES = 8 * 1024 * 1024;
/**
 * The most bytes the writer fills, below the read limit so that what it writes is always read back. The metadata of
 * MAX_PERSISTED containers does not fit in MAX_STATE_BYTES: one CRI-O pod's labels (its annotations, its labels on
 * top) take over 100 KiB, so some 73 such pods made a file the reader refused whole. encodeState trims to this.
 */
export const STATE_WRITE_BUDGET = MAX_STATE_BYTES - 256 * 1024;
const STR_MAX = 4096;
/**
 * A runtime's name (docker, cri-o, containerd, oci, ...: the daemon's own words, see cgroup-patterns.ts and
 * service.ts). CONTAINER_OP records carry it bare (`runtime=cri-o`), so a planted `x res=success op=forged` must never
 * come back from the file.
 */
export const RUNTIME_NAME_RE = /^[a-z0-9-]{1,20}$/;
/** Labels of one container read (and so written) at most. */
export const LABELS_MAX = 256;
const VERSION = 1;

type Obj = Record<string, unknown>;
const META_FIELDS = [
  'name',
  'image',
  'podName',
  'podNamespace',
  'podUid',
  'containerName',
  'containerdNamespace',
] as const;

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

/** What encodeState left out to keep to the reader's limits; all zero when the registry was written in full. */
export interface StateTrim {
  /** Containers whose labels were cut to LABELS_MAX (the runtimes' own keys kept) or lost ones too long to read. */
  labelsCut: number;
  /** Containers whose name, image or pod field was left out: longer than the reader takes. */
  fieldsCut: number;
  /** Containers whose labels were all left out to stay within the byte budget (largest entries first). */
  labelsDropped: number;
  /** Containers whose other metadata was left out as well for the budget (largest entries first). */
  metaDropped: number;
  /** Containers not written: past MAX_PERSISTED, still over the budget, or that the reader would skip. */
  entriesDropped: number;
}

export interface EncodedState {
  text: string;
  trim: StateTrim;
}

/** What a trim left out, for a warning; null when nothing was. */
export function describeTrim(t: StateTrim): string | null {
  const parts: string[] = [];
  if (t.labelsCut) parts.push(`${t.labelsCut} container(s) with labels cut to ${LABELS_MAX}`);
  if (t.fieldsCut) parts.push(`${t.fieldsCut} with metadata fields over ${STR_MAX} characters left out`);
  if (t.labelsDropped) parts.push(`${t.labelsDropped} without labels (file size)`);
  if (t.metaDropped) parts.push(`${t.metaDropped} without any metadata (file size)`);
  if (t.entriesDropped) parts.push(`${t.entriesDropped} not written`);
  return parts.length ? parts.join(', ') : null;
}

const jsonBytes = (v: unknown): number => Buffer.byteLength(JSON.stringify(v), 'utf8');

/**
 * Labels the reader takes: short strings, at most LABELS_MAX. Which ones past the cap is deterministic (the same
 * registry writes the same file) and keeps the runtimes' and kubelet's keys (io.kubernetes.*, see RUNTIME_KEY_RE),
 * which a pod's own annotations could otherwise push out, then the rest by key.
 */
function boundedLabels(labels: Record<string, string>): { labels: Record<string, string>; cut: boolean } {
  const all = Object.entries(labels);
  let ok = all.filter(([k, v]) => k.length <= STR_MAX && typeof v === 'string' && v.length <= STR_MAX);
  let cut = ok.length !== all.length;
  if (ok.length > LABELS_MAX) {
    const rank = (k: string): number => (RUNTIME_KEY_RE.test(k) ? 0 : 1);
    const keep = new Set(
      ok
        .map(([k]) => k)
        .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
        .slice(0, LABELS_MAX),
    );
    ok = ok.filter(([k]) => keep.has(k));
    cut = true;
  }
  // Null prototype, as metadata.ts builds them: a label called __proto__ is a label.
  const out = Object.create(null) as Record<string, string>;
  for (const [k, v] of ok) out[k] = v;
  return { labels: out, cut };
}

/**
 * The state file's text, within the reader's limits and `budget` bytes: a file the reader refused whole would leave
 * every container's namespace and labels unknown after a restart (the cgroup scan cannot recover them). Over the
 * budget, the largest containers lose their labels first, then their other metadata, then their entry.
 */
export function encodeState(
  boot: string,
  containers: Iterable<ContainerInfo>,
  budget = STATE_WRITE_BUDGET,
): EncodedState {
  const trim: StateTrim = { labelsCut: 0, fieldsCut: 0, labelsDropped: 0, metaDropped: 0, entriesDropped: 0 };
  const out: Array<{ o: Obj; size: number; dropped: boolean }> = [];
  for (const c of containers) {
    if (out.length >= MAX_PERSISTED) {
      trim.entriesDropped++;
      continue;
    }
    const meta: Obj = {};
    let fieldCut = false;
    for (const k of META_FIELDS) {
      const v = c.meta[k];
      if (v === undefined) continue;
      if (typeof v === 'string' && v.length <= STR_MAX) meta[k] = v;
      else fieldCut = true;
    }
    if (fieldCut) trim.fieldsCut++;
    if (c.meta.labels !== undefined) {
      const l = boundedLabels(c.meta.labels);
      meta.labels = l.labels;
      if (l.cut) trim.labelsCut++;
    }
    const o: Obj = {
      contid: c.contid.toString(),
      runtime: c.runtime,
      id: c.id,
      meta,
      source: c.source,
      pid: c.pid,
      pidStart: c.pidStart,
      firstSeen: c.firstSeen,
      lastSeen: c.lastSeen,
      routed: c.routed,
      dropped: c.dropped,
      hostOnly: c.hostOnly,
    };
    try {
      // The reader's own checks: an entry it would skip is not written, and is counted.
      parseEntry(o, 'entry');
    } catch (e) {
      if (!(e instanceof ContainerStateError)) throw e;
      trim.entriesDropped++;
      continue;
    }
    out.push({ o, size: jsonBytes(o), dropped: false });
  }
  // Each entry's bytes and its comma (one too many: a budget, not an exact size).
  let total = jsonBytes({ version: VERSION, boot, containers: [] }) + out.reduce((n, e) => n + e.size + 1, 0);
  const largestFirst = (): typeof out => [...out].sort((a, b) => b.size - a.size);
  const shed = (cut: (m: Obj) => boolean, count: 'labelsDropped' | 'metaDropped'): void => {
    for (const e of largestFirst()) {
      if (total <= budget) return;
      if (!cut(e.o.meta as Obj)) continue;
      total -= e.size;
      e.size = jsonBytes(e.o);
      total += e.size;
      trim[count]++;
    }
  };
  // Labels first: route selectors lose them, but the pod's namespace and name, which templates and routes select
  // tenants by, stay.
  if (total > budget) shed((m) => m.labels !== undefined && delete m.labels, 'labelsDropped');
  if (total > budget)
    shed((m) => {
      const had = Object.keys(m).length > 0;
      for (const k of Object.keys(m)) delete m[k];
      return had;
    }, 'metaDropped');
  if (total > budget)
    for (const e of largestFirst()) {
      if (total <= budget) break;
      e.dropped = true;
      total -= e.size + 1;
      trim.entriesDropped++;
    }
  const text = JSON.stringify({ version: VERSION, boot, containers: out.filter((e) => !e.dropped).map((e) => e.o) });
  return { text, trim };
}

/** Writes the state: a new temporary (O_EXCL|O_NOFOLLOW, 0600), fsynced, then renamed over the old file. */
export function writeState(file: string, text: string): void {
  replaceFile(file, text, { what: 'container state', sync: true });
}

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
  for (const k of META_FIELDS) {
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

/** One entry of the file, checked field by field; throws ContainerStateError naming the first bad field. */
function parseEntry(v: unknown, at: string): PersistedContainer {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ContainerStateError(`${at} must be an object`);
  const o = v as Obj;
  const idText = str(o, 'contid', at)!;
  // A contid is a u64 in decimal, never -1 (unset) nor 0.
  if (!/^[1-9][0-9]{0,19}$/.test(idText) || BigInt(idText) >= AUDIT_CID_UNSET)
    throw new ContainerStateError(`${at}.contid ${JSON.stringify(idText.slice(0, 40))} is not a contid`);
  const source = str(o, 'source', at);
  if (source !== 'hook' && source !== 'cgroup') throw new ContainerStateError(`${at}.source must be hook or cgroup`);
  const runtime = str(o, 'runtime', at)!;
  if (!RUNTIME_NAME_RE.test(runtime))
    throw new ContainerStateError(`${at}.runtime ${JSON.stringify(runtime.slice(0, 40))} is not a runtime name`);
  return {
    contid: BigInt(idText),
    runtime,
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
}

export interface ParsedState {
  containers: PersistedContainer[];
  /** Entries left out, each with its index and the first bad field: the others are taken back all the same. */
  skipped: Array<{ index: number; reason: string }>;
}

/**
 * Parses and checks a state file's text. Throws ContainerStateError when the file as a whole cannot be used (not
 * JSON, another version or boot, too many entries); a bad entry is skipped and named in `skipped`.
 */
export function parseState(text: string, boot: string): ParsedState {
  // Its pids are gone after a reboot: a file from another boot is refused whole.
  const d = bootStateDocument(text, VERSION, boot, (reason) => new ContainerStateError(reason)) as Obj;
  if (!Array.isArray(d.containers) || d.containers.length > MAX_PERSISTED)
    throw new ContainerStateError(`containers must be a list of at most ${MAX_PERSISTED}`);
  const seen = new Set<bigint>();
  const out: ParsedState = { containers: [], skipped: [] };
  (d.containers as unknown[]).forEach((v, i) => {
    const at = `containers[${i}]`;
    try {
      const c = parseEntry(v, at);
      if (seen.has(c.contid)) throw new ContainerStateError(`${at}.contid ${c.contid} appears twice`);
      seen.add(c.contid);
      out.containers.push(c);
    } catch (e) {
      if (!(e instanceof ContainerStateError)) throw e;
      out.skipped.push({ index: i, reason: e.message });
    }
  });
  return out;
}

/**
 * Reads the state file: nothing when there is none; throws (IoError, ContainerStateError) when the file as a whole
 * cannot be used.
 */
export function readState(file: string, boot: string): ParsedState {
  if (!lstatOrNull(file)) return { containers: [], skipped: [] };
  // Regular files only, never through a symlink, never more than MAX_STATE_BYTES read.
  const r = readBounded(file, { limit: MAX_STATE_BYTES, noFollow: true, what: 'container state' });
  return parseState(r.data.toString('utf8'), boot);
}
