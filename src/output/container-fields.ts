// What outputs show of an event's container (name, image, runtime, pod, namespace): looked up once per contid in the
// host's container registry, cached per output, bounded.
import type { ContainerDirectory } from '../contid/meta-selector';
import { META_FIELDS, type MetaField } from '../contid/container-selector';

export { META_FIELDS as CONTAINER_FIELDS, type MetaField as ContainerField } from '../contid/container-selector';
export type { ContainerDirectory } from '../contid/meta-selector';

/** The known fields of one container; a field the registry does not know is absent. */
export type ContainerFields = Partial<Record<MetaField, string>>;

/** One looked-up container: its fields and their JSON text (what a spool entry carries). */
export interface ContainerEntry {
  readonly fields: Readonly<ContainerFields>;
  readonly json: string;
}

/** A value longer than this is cut: no registry field is near it, and a spool entry stays bounded. */
export const MAX_CONTAINER_FIELD = 1024;
/** Contids cached per output; the cache starts over when full (containers come and go). */
export const CONTAINER_CACHE_MAX = 1024;

/** A contid as records write it: decimal, or a nesting chain `ID,^PARENT,...` whose first id is the container's. */
const CONTID_TEXT_RE = /^([0-9]{1,20})(?:,|$)/;

function entryOf(facts: Partial<Record<MetaField, unknown>> | undefined): ContainerEntry | null {
  if (!facts) return null;
  const fields: ContainerFields = {};
  let any = false;
  for (const f of META_FIELDS) {
    const v = facts[f];
    if (typeof v === 'string' && v.length > 0) {
      fields[f] = v.length > MAX_CONTAINER_FIELD ? v.slice(0, MAX_CONTAINER_FIELD) : v;
      any = true;
    }
  }
  return any ? { fields: Object.freeze(fields), json: JSON.stringify(fields) } : null;
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
      if (m) e = entryOf(d.facts(BigInt(m[1] as string)));
    } catch {
      e = null;
    }
    if (this.cache.size >= this.max) this.cache.clear();
    this.cache.set(contid, e);
    return e;
  }
}

/**
 * The container JSON a spool entry carries, read back strictly: an object of known fields with string values, each
 * bounded; anything else is no container (an entry written by an older version has none).
 */
export function parseContainerJson(text: string): ContainerEntry | null {
  if (text.length === 0 || text.length > 8 * MAX_CONTAINER_FIELD) return null;
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return null;
  return entryOf(o as Partial<Record<MetaField, unknown>>);
}
