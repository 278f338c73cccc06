// Finds containers from /proc: a process's cgroup names its container; a scan at start and on a timer finds the rest.
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readProcText, realProc, type ProcStat } from '../contid/proc';
import { classifyProcCgroup, type CgroupMatch } from '../contid/cgroup-patterns';
import { containerContid, containerKey } from '../contid/derive';
import { conmonName, conmonStoreDir, type ContainerMeta } from './metadata';
import { RegistryFullError, type ContainerInfo, type ContainerRegistry } from './registry';
import { RuntimeMetaReader, type RuntimeMetaCounters, type RuntimeMetaOptions } from './runtime-meta';

/** What discovery reads from the system; a test double replaces it. */
export interface ContainerProc {
  pids(): number[];
  stat(pid: number): ProcStat | null;
  /** Raw /proc/PID/cgroup text, bounded. */
  cgroupText(pid: number): string | null;
  /** argv of the process, bounded. */
  cmdline(pid: number): string[] | null;
  /** The pid namespace of the process (`pid:[4026531836]`). */
  pidNs(pid: number): string | null;
  /** Does runc's own (root-owned) state directory hold this container? Confirms a plain `/<id>` cgroup. */
  runcState(id: string): boolean;
  /** Does containerd's runc state for `namespace` hold this container? Confirms a `/<namespace>/<id>` cgroup. */
  containerdState?(namespace: string, id: string): boolean;
  /** docker's own record of container `id` (config.v2.json): name, image, labels. */
  dockerMeta?(id: string): ContainerMeta | null;
  /** podman's store (containers.json, images.json): name and image; `storeDir` is where its conmon says it lives. */
  podmanMeta?(id: string, storeDir: string | null): ContainerMeta | null;
  /** What the metadata reader did: files read and refused (linked, foreign-owned, too big, malformed), for status. */
  readonly metaCounters?: Readonly<RuntimeMetaCounters>;
}

/** Where the runtimes keep their state and metadata; the defaults are their own defaults. */
export interface ContainerProcOptions extends RuntimeMetaOptions {
  /** runc roots: runc's default /run/runc, plus podman's and others'. */
  runcRoots?: readonly string[];
  /** containerd's runc shim roots (its `<root>/<namespace>/<id>/state.json`). */
  containerdRoots?: readonly string[];
}

const CMDLINE_MAX = 64 * 1024;
/** Within this many scans (30 s at the host's 2 s), each known pid outside containers is read again (see scan()). */
export const FULL_SCAN_EVERY = 15;

/** runc's (root-owned, 0700) state directory `<root>/<id>` with its state.json: a non-root user's never counts. */
function rootState(root: string, id: string): boolean {
  if (id === '.' || id === '..' || id.includes('/')) return false;
  try {
    const d = lstatSync(join(root, id));
    const f = lstatSync(join(root, id, 'state.json'));
    return d.isDirectory() && d.uid === 0 && f.isFile() && f.uid === 0;
  } catch {
    return false;
  }
}

/**
 * Reads /proc; runc state from `runcRoots`, containerd's from `containerdRoots`, docker's and podman's metadata from
 * their roots (see RuntimeMetaReader). A list of runc roots alone is taken as `runcRoots`.
 */
export function realContainerProc(o: readonly string[] | ContainerProcOptions = {}): ContainerProc {
  const opts: ContainerProcOptions = Array.isArray(o) ? { runcRoots: o } : (o as ContainerProcOptions);
  const runcRoots = opts.runcRoots ?? ['/run/runc'];
  const containerdRoots = opts.containerdRoots ?? ['/run/containerd/runc'];
  const meta = new RuntimeMetaReader(opts);
  return {
    pids() {
      const out: number[] = [];
      try {
        for (const n of readdirSync('/proc')) if (/^[0-9]{1,7}$/.test(n)) out.push(Number(n));
      } catch {
        /* no /proc */
      }
      return out;
    },
    stat: realProc.stat,
    cgroupText: realProc.cgroupText,
    cmdline(pid) {
      const t = readProcText(`/proc/${pid}/cmdline`, CMDLINE_MAX);
      return t === null ? null : t.split('\0').slice(0, -1);
    },
    pidNs(pid) {
      try {
        return readlinkSync(`/proc/${pid}/ns/pid`);
      } catch {
        return null;
      }
    },
    runcState(id) {
      return runcRoots.some((root) => rootState(root, id));
    },
    containerdState(namespace, id) {
      if (namespace === '.' || namespace === '..' || namespace.includes('/')) return false;
      return containerdRoots.some((root) => rootState(join(root, namespace), id));
    },
    dockerMeta: (id) => meta.docker(id),
    podmanMeta: (id, storeDir) => meta.podman(id, storeDir),
    metaCounters: meta.counters,
  };
}

export interface DiscoveryCounters {
  scans: number;
  classified: number;
  retiredGone: number;
  /** Processes found in a container by its pid namespace (its cgroup matched no pattern). */
  nsJoined: number;
}

/** A process seen by the scan: its start time (pid reuse), its parent then, and its container, if any. */
interface Seen {
  start: number;
  ppid: number;
  contid: bigint | null;
}

export class ContainerDiscovery {
  private readonly seen = new Map<number, Seen>();
  /** Pids per container as of the last scan. */
  private readonly members = new Map<bigint, Set<number>>();
  /** When a hooked container was first seen without processes: its poststop hook gets a grace period to retire it. */
  private readonly emptySince = new Map<bigint, number>();
  /** Containers whose runtime metadata (docker's, podman's files) was looked up once: a hooked one gets it late. */
  private readonly enriched = new Set<bigint>();
  /** Pid namespaces of live containers whose cgroup no pattern knows, by registry version (see byPidNs). */
  private readonly nsOf = new Map<bigint, string | null>();
  private nsIndex = new Map<string, bigint | null>();
  private nsVersion = -1;
  /** How long a container registered by the hook may be empty before the scan retires it itself. */
  graceMs = 10000;
  readonly counters: DiscoveryCounters = { scans: 0, classified: 0, retiredGone: 0, nsJoined: 0 };

  constructor(
    readonly registry: ContainerRegistry,
    readonly proc: ContainerProc,
    private readonly onMember?: (pid: number) => void,
  ) {}

  /**
   * The container the last scan classified `pid` in (ContainerLookup.lastSeenIn), if it is still known and the scan
   * saw it under the record's parent `ppid`: a gone pid stays in `seen` until the next scan, which covers the records'
   * usual lag behind /proc, and another process under a reused pid (a host command of a live shell) has another
   * parent.
   */
  lastSeenIn(pid: number, ppid: number): bigint | null {
    const s = this.seen.get(pid);
    if (!s || s.contid === null || s.ppid !== ppid) return null;
    return this.owns(s.contid) ? s.contid : null;
  }

  /**
   * A live container's contid, or a retired one's in its grace: the tracker then finds a process whose recorded parent
   * changed again by its cgroup rather than trusting the entry (a retired container's pids are anyone's to reuse).
   */
  owns(contid: bigint): boolean {
    return this.registry.known(contid);
  }

  /** True while any container is known: the tracker must then look processes up. */
  get active(): boolean {
    return this.registry.liveCount > 0;
  }

  classify(pid: number, cgroupText?: string | null, confirm?: (m: CgroupMatch) => boolean): CgroupMatch | null {
    const t = cgroupText ?? this.proc.cgroupText(pid);
    if (!t) return null;
    return classifyProcCgroup(t, (m) => {
      // The hook's own state (its ID, and for containerd its bundle's namespace) confirms a free-form reading of its
      // own container: runc writes its state directory (containerd's runc state too) only after the hooks ran.
      if (m.verify === 'runc-state') return this.proc.runcState(m.id) || (confirm?.(m) ?? false);
      if (m.verify !== 'containerd-state') return false;
      return (this.proc.containerdState?.(m.namespace!, m.id) ?? false) || (confirm?.(m) ?? false);
    });
  }

  /**
   * The contid of the container `pid` is in, by its cgroup (registering the container on first sight), else by its
   * pid namespace (a container whose cgroup no pattern knows: `runc exec` into it). Null for a process outside every
   * recognised container. `start` is the /proc start time of the process the cgroup text was read for, read before
   * it (a caller passing `cgroupText` passes it too); without one, it is read here before the cgroup.
   */
  contidFor(pid: number, cgroupText?: string | null, start?: number | null): bigint | null {
    const s = start !== undefined ? start : (this.proc.stat(pid)?.starttime ?? null);
    const m = this.classify(pid, cgroupText);
    return m ? this.contidOf(pid, m, s) : this.byPidNs(pid);
  }

  /**
   * The live container, registered with its init pid, whose cgroup no pattern knows and whose pid namespace `pid`
   * shares: a process `runc exec` (or any runtime's exec) put into it. Only a process the host's root placed can be in
   * a container's pid namespace without descending from its init (setns needs CAP_SYS_ADMIN over it); a process inside
   * that makes a nested pid namespace (`unshare -p`) is found through its ancestry, not here. The init is checked at
   * each answer (same start time, same namespace), so a namespace inode reused after the container died never counts.
   */
  private byPidNs(pid: number): bigint | null {
    if (this.registry.liveCount === 0) return null;
    if (this.nsVersion !== this.registry.version) this.indexPidNs();
    if (this.nsIndex.size === 0) return null;
    const ns = this.proc.pidNs(pid);
    const contid = ns === null ? undefined : this.nsIndex.get(ns);
    if (contid === undefined || contid === null) return null;
    const c = this.registry.get(contid);
    if (!c?.pid) return null;
    const st = this.proc.stat(c.pid);
    if (!st || (c.pidStart !== null && st.starttime !== c.pidStart) || this.proc.pidNs(c.pid) !== ns) return null;
    this.counters.nsJoined++;
    return contid;
  }

  /**
   * The pid namespace of each live container's init whose cgroup no pattern knows (read once per container; an init
   * in a known cgroup, or sharing the host's namespace, gets null). Two containers in one namespace (a pod sharing
   * it) make that namespace nobody's: which one a joiner belongs to cannot be told.
   */
  private indexPidNs(): void {
    this.nsVersion = this.registry.version;
    for (const id of this.nsOf.keys()) if (!this.registry.get(id)) this.nsOf.delete(id);
    let host: string | null | undefined;
    for (const c of this.registry.liveContainers()) {
      if (this.nsOf.has(c.contid) || !c.pid) continue;
      const st = this.proc.stat(c.pid);
      let ns: string | null = null;
      // Only the process the entry saw (its start time too): a pid without one may be anyone's by now.
      if (st && c.pidStart !== null && st.starttime === c.pidStart && this.classify(c.pid) === null) {
        host ??= this.proc.pidNs(1);
        ns = this.proc.pidNs(c.pid);
        if (ns === host) ns = null;
      }
      this.nsOf.set(c.contid, ns);
    }
    const index = new Map<string, bigint | null>();
    for (const [contid, ns] of this.nsOf) if (ns !== null) index.set(ns, index.has(ns) ? null : contid);
    this.nsIndex = index;
  }

  /**
   * What the runtime itself knows of a container: docker's config.v2.json, podman's store (found through its conmon,
   * which also names it), a CRI runtime's monitor; runc, nspawn and LXC IDs are the names their users chose.
   */
  runtimeMeta(pid: number, m: { runtime: string; id: string; namespace?: string | undefined }): ContainerMeta {
    const meta: ContainerMeta = {};
    if (m.runtime === 'containerd' && m.namespace !== undefined) meta.containerdNamespace = m.namespace;
    switch (m.runtime) {
      case 'runc':
      case 'nspawn':
      case 'lxc':
        meta.name = m.id;
        break;
      case 'docker':
        Object.assign(meta, this.proc.dockerMeta?.(m.id) ?? {});
        break;
      case 'podman': {
        const argv = this.monitorArgv(pid);
        const name = argv && conmonName(argv, m.id);
        if (name) meta.name = name;
        const store = this.proc.podmanMeta?.(m.id, argv ? conmonStoreDir(argv, m.id) : null);
        if (store?.image) meta.image = store.image;
        if (!meta.name && store?.name) meta.name = store.name;
        break;
      }
      default: {
        const argv = this.monitorArgv(pid);
        const name = argv && conmonName(argv, m.id);
        if (name) meta.name = name;
        // ctr and other containerd clients name containers freely; nerdctl's 64-hex IDs are no names.
        else if (m.runtime === 'containerd' && !/^[0-9a-f]{64}$/.test(m.id)) meta.name = m.id;
      }
    }
    return meta;
  }

  /**
   * The contid of a classified process's container, registered on first sight. `start`: the start time of the process
   * the classification was made on (read before its cgroup).
   */
  private contidOf(pid: number, m: CgroupMatch, start: number | null): bigint {
    this.counters.classified++;
    const contid = containerContid(containerKey(m.runtime, m.id, m.namespace));
    const known = this.registry.get(contid);
    if (known) {
      if (!this.enriched.has(contid)) this.enrich(pid, m, known);
    } else {
      const meta = this.runtimeMeta(pid, m);
      if (m.podUid) meta.podUid = m.podUid;
      // The metadata read can take milliseconds (a large config.v2.json, podman's stores): the classified process may
      // have exited meanwhile and another taken its pid. Registered as the container's init, that one's pid
      // namespace would become the container's (byPidNs) and a restart would adopt it; so the pid is kept only when it
      // still holds the classified process. A container without one is retired by its members' exits alone.
      const same = start !== null && this.proc.stat(pid)?.starttime === start;
      try {
        this.registry.register({
          runtime: m.runtime,
          id: m.id,
          contid,
          source: 'cgroup',
          pid: same ? pid : null,
          pidStart: same ? start : null,
          meta,
        });
        this.enriched.add(contid);
      } catch (e) {
        // Full: the process still gets its container's contid (derived, not stored); only the listing lacks it.
        if (!(e instanceof RegistryFullError)) throw e;
      }
    }
    return contid;
  }

  /**
   * A container the hook registered (or a restart restored) seen by its cgroup for the first time: what the runtime's
   * files say fills in what the hook's annotations lacked (podman's image, docker's name), once per container.
   */
  private enrich(pid: number, m: CgroupMatch, c: ContainerInfo): void {
    this.enriched.add(c.contid);
    const meta = this.runtimeMeta(pid, m);
    const cur = c.meta as Record<string, unknown>;
    if (!Object.entries(meta).some(([k, v]) => v !== undefined && cur[k] === undefined)) return;
    // As a cgroup sighting: it keeps its source and adds no hook registration to the counters.
    this.registry.register({ runtime: m.runtime, id: m.id, contid: c.contid, source: 'cgroup', meta });
  }

  /**
   * The name the runtime's monitor process knows (podman's conmon: `-c <id> -n <name>`). Only a monitor outside every
   * container counts: a container's own process can call itself conmon, but cannot leave its cgroup.
   */
  runtimeName(pid: number, id: string): string | undefined {
    const argv = this.monitorArgv(pid);
    return argv ? conmonName(argv, id) : undefined;
  }

  /** The argv of the nearest conmon among `pid`'s ancestors that is outside every container (see runtimeName). */
  private monitorArgv(pid: number): string[] | undefined {
    let cur = pid;
    for (let depth = 0; depth < 8 && cur > 1; depth++) {
      const argv = this.proc.cmdline(cur);
      if (argv && argv.length > 0 && basename(argv[0]!) === 'conmon' && this.classify(cur) === null) return argv;
      const st = this.proc.stat(cur);
      if (!st) return undefined;
      cur = st.ppid;
    }
    return undefined;
  }

  /**
   * Is `pid` in the container `contid`? Its cgroup says so, or (a container whose cgroup no pattern knows) it shares
   * the pid namespace of the container's registered init, which is not the host's.
   */
  sameContainer(pid: number, contid: bigint): boolean {
    const c = this.registry.get(contid);
    if (!c) return false;
    const m = this.classify(pid);
    if (m) return containerContid(containerKey(m.runtime, m.id, m.namespace)) === contid;
    if (!c.pid) return false;
    const st = this.proc.stat(c.pid);
    if (!st || (c.pidStart !== null && st.starttime !== c.pidStart)) return false;
    const ns = this.proc.pidNs(pid);
    return ns !== null && ns === this.proc.pidNs(c.pid) && ns !== this.proc.pidNs(1);
  }

  /**
   * Looks at every process once (a pid and start time already seen is skipped): new containers are registered,
   * containers whose processes are all gone are retired. Returns what changed, and every pid /proc listed.
   */
  scan(): { born: bigint[]; retired: bigint[]; alive: ReadonlySet<number> } {
    this.counters.scans++;
    // A known pid outside every container is read again once every FULL_SCAN_EVERY scans: reading every process's
    // stat every scan costs a /proc read (20-36 µs) per process every 2 s: 9% of a CPU at 5000 processes. What it
    // would catch sooner, a host pid reused by a container's process within one interval, needs pid_max to wrap; the
    // tracker attributes such a process's events by its own /proc read meanwhile. Each scan reads one slice of them
    // (pid % FULL_SCAN_EVERY): all of them in one scan held the event loop for that long at once, 0.2 s every 30 s
    // at 10,000 processes and seconds at 100,000, while the kernel's records waited. Container members are read every
    // scan (their exit retires a container; their start time and parent, exact, keep a reused pid out of it).
    const slice = this.counters.scans % FULL_SCAN_EVERY;
    // A scan after which every pid has been read (the first reads every pid, all new) and, from then on, every
    // FULL_SCAN_EVERY-th: one that retires containers no process was ever seen in (below).
    const full = slice === 1;
    const born: bigint[] = [];
    const now = new Set<number>();
    for (const pid of this.proc.pids()) {
      now.add(pid);
      if (pid % FULL_SCAN_EVERY !== slice && this.seen.get(pid)?.contid === null) continue;
      const st = this.proc.stat(pid);
      if (!st) continue;
      const prev = this.seen.get(pid);
      if (prev && prev.start === st.starttime) continue;
      if (prev?.contid != null) this.members.get(prev.contid)?.delete(pid);
      const text = this.proc.cgroupText(pid);
      // The start time and parent above and the cgroup just read must be one process's: a pid that changed hands
      // between the reads paired a host shell's child (its parent, which lastSeenIn matches records by) with a
      // container process's cgroup. Left for the next scan, which reads it afresh.
      if (this.proc.stat(pid)?.starttime !== st.starttime) {
        this.seen.delete(pid);
        continue;
      }
      const m = text === null ? null : this.classify(pid, text);
      let contid: bigint | null = null;
      if (m) {
        const before = this.registry.counters.births;
        contid = this.contidOf(pid, m, st.starttime);
        if (this.registry.counters.births !== before) born.push(contid);
        let set = this.members.get(contid);
        if (!set) this.members.set(contid, (set = new Set()));
        set.add(pid);
        // It may have been seen outside before it joined (`runc exec`): the tracker asks again at its next event.
        this.onMember?.(pid);
      }
      // A pid already held is updated even at the cap: a stale container answer must not outlive its process.
      if (this.seen.has(pid) || this.seen.size < 1 << 20)
        this.seen.set(pid, { start: st.starttime, ppid: st.ppid, contid });
    }
    for (const [pid, s] of this.seen) {
      if (now.has(pid)) continue;
      this.seen.delete(pid);
      if (s.contid !== null) this.members.get(s.contid)?.delete(pid);
    }
    // Pid sets of containers retired elsewhere (poststop) go once empty, so the map holds only what is alive.
    for (const [c, set] of this.members) if (set.size === 0 && !this.registry.get(c)) this.members.delete(c);
    const retired: bigint[] = [];
    const t = Date.now();
    for (const id of this.emptySince.keys()) if (!this.registry.get(id)) this.emptySince.delete(id);
    for (const id of this.enriched) if (!this.registry.get(id)) this.enriched.delete(id);
    for (const c of [...this.registry.liveContainers()]) {
      const set = this.members.get(c.contid);
      if (set && set.size > 0) {
        this.emptySince.delete(c.contid);
        continue;
      }
      // Gone: the scan saw its processes before and sees none now, or its registered init no longer exists.
      const initGone =
        c.pid !== null &&
        (() => {
          const st = this.proc.stat(c.pid!);
          return !st || (c.pidStart !== null && st.starttime !== c.pidStart);
        })();
      // Known by neither a pid nor a process any scan found: a container restored from before a restart whose
      // processes are gone (or were never seen) has nothing that could ever retire it, so the first full scan does.
      const unseen = !set && c.pid === null && (full || this.emptySince.has(c.contid));
      if ((set && set.size === 0) || initGone || unseen) {
        if (c.source === 'hook') {
          const since = this.emptySince.get(c.contid) ?? t;
          this.emptySince.set(c.contid, since);
          if (t - since < this.graceMs) continue;
          this.emptySince.delete(c.contid);
        }
        this.members.delete(c.contid);
        if (this.registry.retire(c.contid, 'gone')) {
          this.counters.retiredGone++;
          retired.push(c.contid);
        }
      }
    }
    return { born, retired, alive: now };
  }
}
