// What outputs show of an event's container (name, image, runtime, pod, namespace, labels): looked up once per contid
// in the host's container registry (or a process daemon's copy of its routed part), cached per output, bounded.
import { Buffer } from 'node:buffer';
import type { ContainerDirectory } from '../contid/meta-selector';
import { META_FIELDS, type MetaField } from '../contid/container-selector';

export type { MetaField as ContainerField } from '../contid/container-selector';
export type { ContainerDirectory } from '../contid/meta-selector';

/** The fields outputs show: the selectors' list, as a constant (a value re-export: module-exports-fast.test.ts). */
export const CONTAINER_FIELDS = META_FIELDS;

/**
 * The known fields of one container; a field the registry does not know is absent, and so are `labels` when it holds
 * none (or none within the caps below).
 */
export type ContainerFields = Partial<Record<MetaField, string>> & { labels?: Readonly<Record<string, string>> };

/** One looked-up container: its fields and their JSON text (what a spool entry carries). */
export interface ContainerEntry {
  readonly fields: Readonly<ContainerFields>;
  readonly json: string;
}

/** A value longer than this (UTF-16 units) is cut: no registry field is near it, and a spool entry stays bounded. */
export const MAX_CONTAINER_FIELD = 1024;
/**
 * Labels shown per container: OCI annotations and CRI-O/kubelet labels can be many and large (CRI-O puts whole JSON
 * documents in annotations), so at most this many, in key order, each key at most MAX_LABEL_KEY and each value at most
 * MAX_LABEL_VALUE UTF-16 units; a label past a cap is left out whole (a cut value would be a different label).
 */
export const MAX_LABELS = 64;
/** A Kubernetes label key is at most 253 (prefix) + 1 + 63 (name) characters. */
export const MAX_LABEL_KEY = 320;
export const MAX_LABEL_VALUE = 1024;
/**
 * The UTF-8 bytes of one container's JSON text (spool entries and the IPC frame to a process daemon carry it), labels
 * included: labels that would pass it are left out; fields whose escaped form alone would pass it are cut to
 * FIELD_FALLBACK (5 fields of 256 units at 6 bytes each, `\u00XX`, stay under it).
 */
export const MAX_CONTAINER_JSON = 8192;
const FIELD_FALLBACK = 256;
/** Contids cached per output; the cache starts over when full (containers come and go). */
export const CONTAINER_CACHE_MAX = 1024;

/** A contid as records write it: decimal, or a nesting chain `ID,^PARENT,...` whose first id is the container's. */
const CONTID_TEXT_RE = /^([0-9]{1,20})(?:,|$)/;

const utf8Bytes = (v: string): number => Buffer.byteLength(v, 'utf8');

function fieldsOf(facts: Partial<Record<MetaField, unknown>>, max: number): ContainerFields {
  const fields: ContainerFields = {};
  for (const f of META_FIELDS) {
    const v = facts[f];
    if (typeof v === 'string' && v.length > 0) fields[f] = v.length > max ? v.slice(0, max) : v;
  }
  return fields;
}

/**
 * The labels that fit `budget` bytes of JSON text, in key order (the same labels give the same object, whatever order
 * the registry learnt them in), in an object without a prototype (a label called `__proto__` is a label).
 */
function labelsOf(labels: unknown, budget: number): Record<string, string> | null {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) return null;
  const out = Object.create(null) as Record<string, string>;
  let n = 0;
  // `"labels":{}` and the comma before it.
  let used = 12;
  for (const k of Object.keys(labels).sort()) {
    if (n >= MAX_LABELS) break;
    const v = (labels as Record<string, unknown>)[k];
    if (k.length === 0 || k.length > MAX_LABEL_KEY || typeof v !== 'string' || v.length > MAX_LABEL_VALUE) continue;
    const cost = utf8Bytes(JSON.stringify(k)) + utf8Bytes(JSON.stringify(v)) + 2;
    if (used + cost > budget) continue;
    used += cost;
    out[k] = v;
    n++;
  }
  return n > 0 ? out : null;
}

/** A container's fields and labels within the caps above, and its JSON text; null when nothing is known. */
export function containerEntry(
  facts: Partial<Record<MetaField | 'labels', unknown>> | undefined,
): ContainerEntry | null {
  if (!facts) return null;
  let fields = fieldsOf(facts, MAX_CONTAINER_FIELD);
  let json = JSON.stringify(fields);
  if (utf8Bytes(json) > MAX_CONTAINER_JSON) {
    fields = fieldsOf(facts, FIELD_FALLBACK);
    json = JSON.stringify(fields);
  }
  const labels = labelsOf(facts.labels, MAX_CONTAINER_JSON - utf8Bytes(json));
  if (labels) {
    fields.labels = Object.freeze(labels);
    json = JSON.stringify(fields);
  }
  return json === '{}' ? null : { fields: Object.freeze(fields), json };
}

/**
 * Per-output cache of contid -> container: one registry lookup (and one BigInt) per contid while the registry does
 * not change; every registration, completion or retirement changes its `version` and the cache starts over. Unknown
 * contids are cached too (as null), so events of containers the registry does not know cost one Map lookup.
 */
export class ContainerCache {
  private readonly cache = new Map<string, ContainerEntry | null>();
  private version = -1;

  constructor(
    private readonly directory: ContainerDirectory | undefined,
    private readonly max = CONTAINER_CACHE_MAX,
  ) {}

  get enabled(): boolean {
    return this.directory !== undefined;
  }

  /** The container of an event's contid (as its lines carry it), or null when none or unknown. */
  lookup(contid: string | null): ContainerEntry | null {
    const d = this.directory;
    if (!d || contid === null) return null;
    if (d.version !== this.version) {
      this.cache.clear();
      this.version = d.version;
    }
    const hit = this.cache.get(contid);
    if (hit !== undefined) return hit;
    const m = CONTID_TEXT_RE.exec(contid);
    let e: ContainerEntry | null = null;
    try {
      if (m) e = containerEntry(d.facts(BigInt(m[1] as string)));
    } catch {
      e = null;
    }
    if (this.cache.size >= this.max) this.cache.clear();
    this.cache.set(contid, e);
    return e;
  }
}

/**
 * The container JSON a spool entry (or an IPC frame) carries, read back strictly: an object of known fields with string
 * values and labels of string values, each within the caps above; anything else is no container (an entry written by
 * an older version has none).
 */
export function parseContainerJson(text: string): ContainerEntry | null {
  if (text.length === 0 || text.length > MAX_CONTAINER_JSON) return null;
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return null;
  return containerEntry(o as Partial<Record<MetaField | 'labels', unknown>>);
}
