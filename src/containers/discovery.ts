// Finds containers from /proc: a process's cgroup names its container; a scan at start and on a timer finds the rest.
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readProcText, realProc, type ProcStat } from '../contid/proc';
import { classifyProcCgroup, type CgroupMatch } from '../contid/cgroup-patterns';
import { containerContid, containerKey } from '../contid/derive';
import { conmonName, type ContainerMeta } from './metadata';
import { RegistryFullError, type ContainerRegistry } from './registry';

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
}

const CMDLINE_MAX = 64 * 1024;
/** Every this many scans (30 s at the host's 2 s), known pids outside containers are read again (see scan()). */
export const FULL_SCAN_EVERY = 15;

/** Reads /proc; runc state from `runcRoots` (runc's default /run/runc, plus podman's and others' roots). */
export function realContainerProc(runcRoots: readonly string[] = ['/run/runc']): ContainerProc {
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
      if (id === '.' || id === '..' || id.includes('/')) return false;
      for (const root of runcRoots) {
        try {
          // runc's root is 0700 root-owned; a state.json a non-root user placed elsewhere never counts.
          const d = lstatSync(join(root, id));
          const f = lstatSync(join(root, id, 'state.json'));
          if (d.isDirectory() && d.uid === 0 && f.isFile() && f.uid === 0) return true;
        } catch {
          /* not this root */
        }
      }
      return false;
    },
  };
}

export interface DiscoveryCounters {
  scans: number;
  classified: number;
  retiredGone: number;
}

/** A process seen by the scan: its start time (pid reuse) and its container, if any. */
interface Seen {
  start: number;
  contid: bigint | null;
}

export class ContainerDiscovery {
  private readonly seen = new Map<number, Seen>();
  /** Pids per container as of the last scan. */
  private readonly members = new Map<bigint, Set<number>>();
  /** When a hooked container was first seen without processes: its poststop hook gets a grace period to retire it. */
  private readonly emptySince = new Map<bigint, number>();
  /** How long a container registered by the hook may be empty before the scan retires it itself. */
  graceMs = 10000;
  readonly counters: DiscoveryCounters = { scans: 0, classified: 0, retiredGone: 0 };

  constructor(
    readonly registry: ContainerRegistry,
    readonly proc: ContainerProc,
    private readonly onMember?: (pid: number) => void,
  ) {}

  owns(contid: bigint): boolean {
    return this.registry.get(contid) !== undefined;
  }

  /** True while any container is known: the tracker must then look processes up. */
  get active(): boolean {
    return this.registry.liveCount > 0;
  }

  classify(pid: number, cgroupText?: string | null, confirm?: (m: CgroupMatch) => boolean): CgroupMatch | null {
    const t = cgroupText ?? this.proc.cgroupText(pid);
    if (!t) return null;
    return classifyProcCgroup(
      t,
      (m) => m.verify === 'runc-state' && (this.proc.runcState(m.id) || (confirm?.(m) ?? false)),
    );
  }

  /**
   * The contid of the container `pid` is in, by its cgroup, registering the container on first sight. Null for a
   * process outside every recognised container.
   */
  contidFor(pid: number, cgroupText?: string | null): bigint | null {
    const m = this.classify(pid, cgroupText);
    return m ? this.contidOf(pid, m) : null;
  }

  /** The contid of a classified process's container, registered on first sight. */
  private contidOf(pid: number, m: CgroupMatch): bigint {
    this.counters.classified++;
    const contid = containerContid(containerKey(m.runtime, m.id));
    if (!this.registry.get(contid)) {
      const meta: ContainerMeta = {};
      if (m.podUid) meta.podUid = m.podUid;
      // runc, nspawn and LXC IDs are the names their users chose; podman's name is its monitor's.
      const name =
        m.runtime === 'runc' || m.runtime === 'nspawn' || m.runtime === 'lxc' ? m.id : this.runtimeName(pid, m.id);
      if (name) meta.name = name;
      const st = this.proc.stat(pid);
      try {
        this.registry.register({
          runtime: m.runtime,
          id: m.id,
          contid,
          source: 'cgroup',
          pid,
          pidStart: st?.starttime ?? null,
          meta,
        });
      } catch (e) {
        // Full: the process still gets its container's contid (derived, not stored); only the listing lacks it.
        if (!(e instanceof RegistryFullError)) throw e;
      }
    }
    return contid;
  }

  /**
   * The name the runtime's monitor process knows (podman's conmon: `-c <id> -n <name>`). Only a monitor outside every
   * container counts: a container's own process can call itself conmon, but cannot leave its cgroup.
   */
  runtimeName(pid: number, id: string): string | undefined {
    let cur = pid;
    for (let depth = 0; depth < 8 && cur > 1; depth++) {
      const argv = this.proc.cmdline(cur);
      if (argv && argv.length > 0 && basename(argv[0]!) === 'conmon' && this.classify(cur) === null)
        return conmonName(argv, id);
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
    if (m) return containerContid(containerKey(m.runtime, m.id)) === contid;
    if (!c.pid) return false;
    const st = this.proc.stat(c.pid);
    if (!st || (c.pidStart !== null && st.starttime !== c.pidStart)) return false;
    const ns = this.proc.pidNs(pid);
    return ns !== null && ns === this.proc.pidNs(c.pid) && ns !== this.proc.pidNs(1);
  }

  /**
   * Looks at every process once (a pid and start time already seen is skipped): new containers are registered,
   * containers whose processes are all gone are retired. Returns what changed.
   */
  scan(): { born: bigint[]; retired: bigint[] } {
    this.counters.scans++;
    // A known pid outside every container is read again only every FULL_SCAN_EVERY scans: reading every process's
    // stat every scan costs a /proc read (about 36 µs) per process every 2 s: 9% of a CPU at 5000 processes. What it
    // would catch sooner, a host pid reused by a container's process within one interval, needs pid_max to wrap; the
    // tracker attributes such a process's events by its own /proc read meanwhile. Container members are read every
    // scan (their exit retires a container).
    const full = this.counters.scans % FULL_SCAN_EVERY === 1;
    const born: bigint[] = [];
    const now = new Set<number>();
    for (const pid of this.proc.pids()) {
      now.add(pid);
      if (!full && this.seen.get(pid)?.contid === null) continue;
      const st = this.proc.stat(pid);
      if (!st) continue;
      const prev = this.seen.get(pid);
      if (prev && prev.start === st.starttime) continue;
      if (prev?.contid != null) this.members.get(prev.contid)?.delete(pid);
      const m = this.classify(pid);
      let contid: bigint | null = null;
      if (m) {
        const before = this.registry.counters.births;
        contid = this.contidOf(pid, m);
        if (this.registry.counters.births !== before) born.push(contid);
        let set = this.members.get(contid);
        if (!set) this.members.set(contid, (set = new Set()));
        set.add(pid);
        // It may have been seen outside before it joined (`runc exec`): the tracker asks again at its next event.
        this.onMember?.(pid);
      }
      if (this.seen.size < 1 << 20) this.seen.set(pid, { start: st.starttime, contid });
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
      if ((set && set.size === 0) || initGone) {
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
    return { born, retired };
  }
}
