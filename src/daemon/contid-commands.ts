// Container IDs in the host: the source chosen at start, the control requests (set, get, the OCI hook's containers),
// container discovery and the mainline kernel's fork/exit tracking while processes carry contids.
import { UsageError } from '../errors';
import { AUDIT_CID_UNSET, MsgType } from '../kernel/constants';
import { formatChain } from '../contid/chain';
import { ContidTracker } from '../contid/tracker';
import type { ContidSource } from '../contid/source';
import { ProcContidSource, kernelHasContid } from '../contid/source-kernel';
import { TrackerContidSource } from '../contid/source-tracker';
import type { AuditStatus } from '../kernel/wire';
import type { Diag } from './diagnostics';
import { Containers } from '../containers/service';
import { CONTAINER_STATE_FILE } from '../containers/persist';
import { dirname, join } from 'node:path';
import type { CgroupMapEntry } from '../config';
import type { PeerCred } from './control';

/** Where container IDs come from, chosen once the kernel's status is known: a `kernel` source means the patch set. */
export type ContidSourceFactory = (status: AuditStatus, tracker: ContidTracker) => ContidSource;

export const defaultContidSource: ContidSourceFactory = (status, tracker) =>
  kernelHasContid(status.featureBitmap) ? new ProcContidSource() : new TrackerContidSource(tracker);

export interface ContidCommandsOptions {
  diag: Diag;
  cgroupMap: CgroupMapEntry[];
  /** Container discovery runs (this machine's kernel, not an injected transport, whose pids are not this machine's). */
  discover: boolean;
  record: (type: number, body: string) => void;
  /** Loads or drops the mainline kernel's fork/exit tracking rules; false when nothing changed. */
  setTracking: (on: boolean) => Promise<boolean>;
  /** The tracking rules are loaded. */
  tracking: () => boolean;
  /** Processes carry contids now: events must be routed. */
  changed: () => void;
  /** The daemon's control socket; the container registry is kept beside it across restarts (null: not kept). */
  controlSocket?: string | null;
}

export class ContidCommands {
  /** Chosen at start, once the kernel is known. */
  source: ContidSource | null = null;

  readonly tracker: ContidTracker;
  /** Container registry and cgroup discovery. */
  readonly containers: Containers;

  constructor(private readonly o: ContidCommandsOptions) {
    this.tracker = new ContidTracker({ cgroupMap: o.cgroupMap });
    this.containers = new Containers({ tracker: this.tracker, record: (b) => o.record(MsgType.CONTAINER_OP, b) });
    if (o.discover) this.tracker.setContainers(this.containers.discovery);
  }

  /** Chooses the source once the kernel's status is known. */
  begin(status: AuditStatus, factory: ContidSourceFactory = defaultContidSource): ContidSource {
    this.source = factory(status, this.tracker);
    return this.source;
  }

  /** The registry's state file: in the control socket's directory, the daemon's own runtime directory. */
  private get stateFile(): string | null {
    return this.o.controlSocket ? join(dirname(this.o.controlSocket), CONTAINER_STATE_FILE) : null;
  }

  private readonly warnState = (msg: string): void => this.o.diag.warn({}, msg);

  /**
   * Containers the previous run knew (their names and images), then those already running (started before auditmux,
   * or while it was down), found before routing starts.
   */
  discoverRunning(): void {
    const file = this.stateFile;
    if (file) {
      const n = this.containers.restore(file, this.warnState);
      if (n) this.o.diag.info({ containers: n, file }, 'container registry restored');
    }
    if (this.o.discover) this.containers.discovery.scan();
    this.collectHookFailures();
  }

  /** Failures OCI hooks left beside the control socket while the daemon was down or slow: counted and logged. */
  private collectHookFailures(): void {
    if (this.o.controlSocket) this.containers.collectHookFailures(dirname(this.o.controlSocket), this.warnState);
  }

  /** Writes the registry's state (at stop; housekeeping writes it every 2 s when it changed). */
  saveState(): void {
    const file = this.stateFile;
    if (file) this.containers.save(file, this.warnState);
  }

  /** Per-container counters: an event of `chain` reached `routed` daemons, `dropped` refused it. */
  noteEvent(chain: readonly bigint[], routed: number, dropped: number): void {
    if (this.containers.registry.liveCount) this.containers.registry.noteEvent(chain[0]!, routed, dropped);
  }

  private startTracking(): void {
    void this.o.setTracking(true).then(
      (changed) => changed && this.o.changed(),
      (e: Error) => this.o.diag.error({ err: e.message }, 'could not load the contid tracking rules'),
    );
  }

  /**
   * Every 2 s: containers born or gone since, retired ones whose grace is over leaving routing, and the tracking rules
   * dropped once no tracked process is left.
   */
  async housekeep(): Promise<void> {
    let alive: ReadonlySet<number> | null = null;
    if (this.o.discover) {
      const scan = this.containers.discovery.scan();
      if (scan.born.length || scan.retired.length) this.o.changed();
      alive = scan.alive;
    }
    if (this.containers.tick()) this.o.changed();
    this.collectHookFailures();
    this.saveState();
    if (this.source?.kind !== 'kernel' && this.o.tracking()) {
      this.tracker.sweep();
      if (this.tracker.size === 0 && (await this.o.setTracking(false))) this.o.changed();
    } else if (alive && this.tracker.size > 0) this.tracker.sweepGone(alive);
  }

  list(): unknown {
    return this.containers.list();
  }

  status(): Record<string, unknown> {
    const { tracker, containers: c } = this;
    return {
      tracker: { ...tracker.counters, tracked: tracker.size },
      containers: {
        live: c.registry.liveCount,
        // Retired, and still routing their late events (RETIRE_GRACE_MS).
        retiring: c.registry.retiringCount,
        ...c.registry.counters,
        ...c.discovery.counters,
        ...c.counters,
        // docker's and podman's own files read for names and images, and those refused (see docs/security.md).
        metaFilesRead: c.discovery.proc.metaCounters?.reads ?? 0,
        metaFilesRefused: c.discovery.proc.metaCounters?.refused ?? 0,
      },
      containerEvents: c.registry.eventCounters(),
    };
  }

  set(pid: number, idText: string, nested: boolean, peer: PeerCred): unknown {
    const id = parseContidValueStrict(idText);
    const src = this.source!;
    let res: { old: readonly bigint[] | null; chain: readonly bigint[] };
    // A process that joined a known container (runc exec, podman exec) may carry that container's contid too.
    const join = this.o.discover && this.containers.discovery.sameContainer(pid, id);
    const op = (old: readonly bigint[] | null, ok: 0 | 1): void =>
      this.o.record(
        MsgType.CONTAINER_OP,
        `op=set opid=${pid} contid=${id} old-contid=${formatChain(old ?? [AUDIT_CID_UNSET])} pid=${peer.pid} uid=${peer.uid} res=${ok}`,
      );
    try {
      res = src.set(pid, id, { setterPid: peer.pid, nested, join });
    } catch (e) {
      op(src.get(pid), 0);
      throw e;
    }
    if (src.kind === 'tracker') {
      op(res.old, 1);
      this.startTracking();
      this.o.changed();
    }
    return { pid, contid: formatChain(res.chain), old: res.old ? formatChain(res.old) : null, source: src.kind };
  }

  get(pid: number | undefined): unknown {
    if (pid === undefined) return this.tracker.entries();
    const c = this.source!.get(pid);
    return { pid, contid: c ? formatChain(c) : 'unset', source: this.source!.kind };
  }

  hook(state: unknown, bundleAnnotations: unknown): unknown {
    const r = this.containers.fromHook({ state, bundleAnnotations });
    // An init whose cgroup no pattern knows is followed through its forks (the kernel's fork/exit tracking rule).
    if (r.cgroupKnown === false && this.source?.kind !== 'kernel') this.startTracking();
    this.o.changed();
    return r;
  }
}

function parseContidValueStrict(text: string): bigint {
  const t = text.trim();
  if (!/^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/.test(t))
    throw new UsageError(`"${text}" is not a contid (decimal or 0x hex u64)`);
  const v = BigInt(t);
  // AUDIT_CID_UNSET is (u64)-1, the largest u64.
  if (v > AUDIT_CID_UNSET) throw new UsageError(`contid ${text} is above 2^64-1`);
  return v;
}
