// The host's table of known containers: contid, runtime, ID, names, first/last seen, events routed and dropped.
import type { ContainerDirectory, ContainerFacts } from '../contid/meta-selector';
import { RETIRE_GRACE_MS, withinGrace } from '../contid/tracker';
import type { ContainerMeta } from './metadata';

export type ContainerSource = 'hook' | 'cgroup';

export interface ContainerInfo {
  contid: bigint;
  runtime: string;
  id: string;
  meta: ContainerMeta;
  /** `hook` once the OCI hook registered it (before user code ran), else `cgroup` (found by its cgroup). */
  source: ContainerSource;
  /** Host pid of its init when known (the hook's state, or the first process the scan found). */
  pid: number | null;
  /** /proc start time of `pid`, so a reused pid is not taken for the container's init. */
  pidStart: number | null;
  firstSeen: number;
  lastSeen: number;
  retired: number | null;
  retireReason: string | null;
  routed: number;
  dropped: number;
  hostOnly: number;
  /** The batch number it was last counted in, so a batch lists each container once. */
  seenInBatch: number;
}

export interface RegisterInput {
  runtime: string;
  id: string;
  contid: bigint;
  source: ContainerSource;
  pid?: number | null;
  pidStart?: number | null;
  meta?: ContainerMeta;
}

export interface RegistryOptions {
  onBirth?: (c: ContainerInfo) => void;
  onRetire?: (c: ContainerInfo) => void;
  /**
   * A retired container's grace is over (RETIRE_GRACE_MS after its retirement, or sooner when more than `maxRetired`
   * are in theirs): what routing kept of it for its late events may go. `live`: the same contid is live again (a
   * restart of the same container), whose own processes must keep theirs.
   */
  onRetireEnd?: (c: ContainerInfo, live: boolean) => void;
  /**
   * A live container's metadata became known or changed after its birth record (a hook after the cgroup scan found
   * it): `changed` names the ContainerMeta fields (and `runtime`) that did, so an update record can be written.
   */
  onUpdate?: (c: ContainerInfo, changed: readonly string[]) => void;
  /** Live containers beyond this are refused (a flood of fake cgroups must not grow memory without bound). */
  maxLive?: number;
  /** Retired containers kept for `auditmux containers`; the oldest go first. */
  maxRetired?: number;
  now?: () => number;
}

export class RegistryFullError extends Error {}

function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return a === b;
  const x = a as Record<string, string>;
  const y = b as Record<string, string>;
  const kx = Object.keys(x);
  return kx.length === Object.keys(y).length && kx.every((k) => Object.hasOwn(y, k) && x[k] === y[k]);
}

/**
 * Completes `cur` with what `next` knows: a field still missing is filled from any sighting; one already known is
 * replaced only when `authoritative` (the hook's first registration of a container the scan found: the runtime's own
 * state at create, where the scan could only guess a name from the runtime's files or the pod from the cgroup path).
 * Returns the fields that became known or changed.
 */
function mergeMeta(cur: ContainerMeta, next: ContainerMeta, authoritative: boolean): string[] {
  const meta = cur as Record<string, unknown>;
  const changed: string[] = [];
  for (const [k, v] of Object.entries(next)) {
    if (!v || (typeof v === 'object' && Object.keys(v).length === 0)) continue;
    const known = meta[k] !== undefined && meta[k] !== '';
    if (known && (!authoritative || sameValue(meta[k], v))) continue;
    meta[k] = typeof v === 'object' ? { ...(v as Record<string, string>) } : v;
    changed.push(k);
  }
  return changed;
}

/**
 * Live containers whose event counters `status` and the metrics carry, one series each: containers come and go, and a
 * Prometheus series per container must not grow without bound. The oldest live ones are kept (stable series); the
 * rest are counted as overflow. Retired containers' series disappear with them (their totals are in the retire record).
 */
export const MAX_CONTAINER_SERIES = 1000;

/** One container's counters as status carries them (keyed by contid). */
export interface ContainerEventCounters {
  name: string;
  runtime: string;
  routed: number;
  dropped: number;
  hostOnly: number;
}

export class ContainerRegistry implements ContainerDirectory {
  private readonly live = new Map<bigint, ContainerInfo>();
  private readonly retired: ContainerInfo[] = [];
  /**
   * Retired containers in their grace (RETIRE_GRACE_MS), in order of retirement: route selectors and process daemons
   * still see their metadata (`facts`), so their late events route and read as before. At most `maxRetired`.
   */
  private readonly retiring = new Map<bigint, ContainerInfo>();
  private readonly seenInBatch: ContainerInfo[] = [];
  private batch = 0;
  /** Changes with every registration and retirement: routers recompute their per-container answers then. */
  version = 0;
  private readonly now: () => number;
  readonly counters = { births: 0, retirements: 0, updates: 0, hookRegistrations: 0, discovered: 0, refusedFull: 0 };

  constructor(private readonly opts: RegistryOptions = {}) {
    this.now = opts.now ?? Date.now;
  }

  get liveCount(): number {
    return this.live.size;
  }

  get(contid: bigint): ContainerInfo | undefined {
    return this.live.get(contid);
  }

  liveContainers(): IterableIterator<ContainerInfo> {
    return this.live.values();
  }

  /** The contids of live containers (route test looks `--name` up among them). */
  liveContainerIds(): IterableIterator<bigint> {
    return this.live.keys();
  }

  /**
   * Adds a container, or completes one already known (a hook after the scan found it, or the reverse): the first
   * sighting writes the birth record; later ones only fill in what was missing. Throws RegistryFullError when full.
   */
  register(r: RegisterInput): { info: ContainerInfo; isNew: boolean } {
    if (r.source === 'hook') this.counters.hookRegistrations++;
    this.version++;
    const t = this.now();
    const cur = this.live.get(r.contid);
    if (cur) {
      cur.lastSeen = t;
      // Only the first hook may replace what the scan guessed; after it, any sighting (a retried hook) fills gaps only.
      const authoritative = r.source === 'hook' && cur.source !== 'hook';
      // The hook can lose the race with the first event read from the container's cgroup: it still registered it.
      if (r.source === 'hook') cur.source = 'hook';
      if (r.source === 'hook' && r.pid) {
        cur.pid = r.pid;
        cur.pidStart = r.pidStart ?? null;
      }
      const changed = mergeMeta(cur.meta, r.meta ?? {}, authoritative);
      if (cur.runtime === 'oci' && r.runtime !== 'oci') {
        cur.runtime = r.runtime;
        changed.push('runtime');
      }
      if (changed.length) {
        this.counters.updates++;
        this.opts.onUpdate?.(cur, changed);
      }
      return { info: cur, isNew: false };
    }
    if (this.live.size >= (this.opts.maxLive ?? 65536)) {
      this.counters.refusedFull++;
      throw new RegistryFullError(`container registry full (${this.live.size} live containers)`);
    }
    const info: ContainerInfo = {
      contid: r.contid,
      runtime: r.runtime,
      id: r.id,
      meta: { ...(r.meta ?? {}) },
      source: r.source,
      pid: r.pid ?? null,
      pidStart: r.pidStart ?? null,
      firstSeen: t,
      lastSeen: t,
      retired: null,
      retireReason: null,
      routed: 0,
      dropped: 0,
      hostOnly: 0,
      seenInBatch: -1,
    };
    this.live.set(r.contid, info);
    this.counters.births++;
    if (r.source === 'cgroup') this.counters.discovered++;
    this.opts.onBirth?.(info);
    return { info, isNew: true };
  }

  /**
   * Takes back a container from before a daemon restart: live again with its metadata and counters, without a new
   * birth record (its birth is in the log already). Skipped when the contid is live already or the registry is full.
   */
  restore(c: Omit<ContainerInfo, 'retired' | 'retireReason' | 'seenInBatch'>): boolean {
    if (this.live.has(c.contid) || this.live.size >= (this.opts.maxLive ?? 65536)) return false;
    this.live.set(c.contid, { ...c, meta: { ...c.meta }, retired: null, retireReason: null, seenInBatch: -1 });
    this.version++;
    return true;
  }

  /**
   * Moves a live container to the retired list and writes its retirement; false when it was not live. Its metadata
   * stays visible to routing for the grace (see `retiring`); `expire` ends that.
   */
  retire(contid: bigint, reason: string): ContainerInfo | null {
    const c = this.live.get(contid);
    if (!c) return null;
    this.version++;
    this.live.delete(contid);
    c.retired = this.now();
    c.retireReason = reason;
    this.retired.push(c);
    const max = this.opts.maxRetired ?? 1024;
    if (this.retired.length > max) this.retired.splice(0, this.retired.length - max);
    // Retired again within the grace of its previous life (restarted, then stopped): one grace from now covers both,
    // and the walk in `expire` keeps the order of retirement.
    this.retiring.delete(contid);
    this.retiring.set(contid, c);
    this.counters.retirements++;
    this.opts.onRetire?.(c);
    // A flood of retirements ends the oldest graces early rather than holding more than `maxRetired`.
    while (this.retiring.size > max) {
      const [id, old] = this.retiring.entries().next().value as [bigint, ContainerInfo];
      this.endGrace(id, old);
    }
    return c;
  }

  /** Retired containers in their grace (for status). */
  get retiringCount(): number {
    return this.retiring.size;
  }

  /** Is `contid` a live container's, or a retired one's in its grace? (the tracker's `owns`: see ContainerLookup) */
  known(contid: bigint): boolean {
    return this.live.has(contid) || this.retiring.has(contid);
  }

  /**
   * Ends the graces that are over at `now`: from the housekeeping tick (every 2 s), so a grace lasts RETIRE_GRACE_MS
   * to 2 s more, with no timer per container. Returns how many ended.
   */
  expire(now = this.now()): number {
    let n = 0;
    for (const [id, c] of this.retiring) {
      // In order of retirement: the first one still in its grace ends the walk.
      if (withinGrace(now, c.retired!, RETIRE_GRACE_MS)) break;
      this.endGrace(id, c);
      n++;
    }
    return n;
  }

  private endGrace(contid: bigint, c: ContainerInfo): void {
    this.retiring.delete(contid);
    const live = this.live.has(contid);
    // Its metadata leaves `facts` (a container live again shows its new life's, unchanged by this).
    if (!live) this.version++;
    this.opts.onRetireEnd?.(c, live);
  }

  /**
   * Counts one event of a container: delivered to `routed` daemons, `dropped` by full queues, or kept by the host only.
   * No clock read per event: the containers seen in a batch get its end time (`endBatch`).
   */
  noteEvent(contid: bigint, routed: number, dropped: number): void {
    // A retired container's late events (its grace) count too: `auditmux containers` shows them in its row (its
    // retirement record was written with the totals at the time).
    const c = this.live.get(contid) ?? this.retiring.get(contid);
    if (!c) return;
    if (c.seenInBatch !== this.batch) {
      c.seenInBatch = this.batch;
      this.seenInBatch.push(c);
    }
    if (routed === 0 && dropped === 0) c.hostOnly++;
    c.routed += routed;
    c.dropped += dropped;
  }

  /** The end of a batch of events at time `now` (one clock read per batch): its containers were last seen then. */
  endBatch(now: number): void {
    for (const c of this.seenInBatch) c.lastSeen = now;
    this.seenInBatch.length = 0;
    this.batch++;
  }

  /** Per-container event counters of the oldest `max` live containers, and how many live ones did not fit. */
  eventCounters(max = MAX_CONTAINER_SERIES): { series: Record<string, ContainerEventCounters>; overflow: number } {
    const series: Record<string, ContainerEventCounters> = {};
    let n = 0;
    let overflow = 0;
    const add = (c: ContainerInfo): void => {
      if (n++ >= max) {
        overflow++;
        return;
      }
      series[c.contid.toString()] = {
        name: c.meta.name ?? '',
        runtime: c.runtime,
        routed: c.routed,
        dropped: c.dropped,
        hostOnly: c.hostOnly,
      };
    };
    // Map order is insertion order: the oldest registrations first, so a container keeps its series while it lives.
    for (const c of this.live.values()) add(c);
    // A retired container keeps its series through its grace, after the live ones: its late events still count
    // (noteEvent), and a scrape in the grace sees them before the series ends. One live again is counted as live.
    for (const c of this.retiring.values()) if (!this.live.has(c.contid)) add(c);
    return { series, overflow };
  }

  /**
   * What route selectors (and outputs, and process daemons) see of a live container, or of a retired one in its grace:
   * its late events route by name as its earlier ones did.
   */
  facts(contid: bigint): ContainerFacts | undefined {
    const c = this.live.get(contid) ?? this.retiring.get(contid);
    if (!c) return undefined;
    const m = c.meta;
    return {
      name: m.name,
      image: m.image,
      runtime: c.runtime,
      pod: m.podName,
      namespace: m.podNamespace,
      labels: m.labels,
    };
  }

  /** Rows for `auditmux containers`: live first, then retired, newest last. */
  list(): Array<Record<string, unknown>> {
    return [...this.live.values(), ...this.retired].map((c) => ({
      contid: c.contid.toString(),
      runtime: c.runtime,
      id: c.id,
      name: c.meta.name ?? null,
      image: c.meta.image ?? null,
      ...(c.meta.podName !== undefined ? { pod: c.meta.podName } : {}),
      ...(c.meta.podNamespace !== undefined ? { namespace: c.meta.podNamespace } : {}),
      ...(c.meta.podUid !== undefined ? { podUid: c.meta.podUid } : {}),
      ...(c.meta.containerName !== undefined ? { containerName: c.meta.containerName } : {}),
      ...(c.meta.containerdNamespace !== undefined ? { containerdNamespace: c.meta.containerdNamespace } : {}),
      ...(c.meta.labels !== undefined ? { labels: { ...c.meta.labels } } : {}),
      source: c.source,
      pid: c.pid,
      state: c.retired === null ? 'live' : 'retired',
      firstSeen: new Date(c.firstSeen).toISOString(),
      lastSeen: new Date(c.lastSeen).toISOString(),
      retired: c.retired === null ? null : new Date(c.retired).toISOString(),
      retireReason: c.retireReason,
      routed: c.routed,
      dropped: c.dropped,
      hostOnly: c.hostOnly,
    }));
  }
}
