// Container IDs on mainline kernels: auditmux's own pid → contid table, with the patch set's rules for setting one.
import { AUDIT_CID_UNSET } from '../kernel/constants';
import { contidForCgroup, type CgroupGlobEntry } from './cgroup-glob';
import { formatChain, type Chain } from './chain';
import { ContidError } from './errors';
import { primaryCgroupPath, realProc, type ProcReader, type ProcStat } from './proc';

interface Entry {
  chain: Chain;
  /** /proc start time when known: a different start time under the same pid is pid reuse. */
  starttime: number | null;
  /** How the id reached this pid. */
  source: 'set' | 'fork' | 'ppid' | 'proc' | 'cgroup' | 'container';
  /** The parent it was inherited from: a different ppid in a later record means reparenting or pid reuse. */
  ppid?: number;
  /**
   * When the process was found gone: by a sweep of /proc, or at its container's retirement (retireContid). Its last
   * records may still be on their way; a process under this pid later is another one (see sweep, checkRetired).
   */
  goneSince?: number;
}

/**
 * How long a sweep keeps the entry of a process that is gone from /proc. Records reach the daemon behind real time (the
 * kernel's backlog, the socket, reassembly's 2 s timeout): a process that exited a moment ago may still have events to
 * route, and dropping its entry at once sent them to the host untagged (seen under load: a tree's last 28 events).
 * Its exit_group record removes the entry in order anyway; the sweep is the backstop for exits never seen.
 */
export const SWEEP_GRACE_MS = 10_000;

/**
 * How long a retired container's processes keep their contid, and route selectors its metadata, after its retirement
 * (the poststop hook, or the scan finding its processes gone). The same lag as the sweep's: the container's last events
 * reach the daemon after it is retired, and dropping its entries at once sent them to the host log untagged, past the
 * tenant's name routes and without the container's fields in a process daemon. The retirement record and `auditmux
 * containers` stay immediate; the host's 2 s housekeeping ends the grace (ContainerRegistry.expire).
 */
export const RETIRE_GRACE_MS = SWEEP_GRACE_MS;

/**
 * Is `now` within `ms` after `since`? A wall clock stepped back before `since` ends the grace (late events then go to
 * the host log, as without one) rather than holding every entry and container until the clock catches up.
 */
export function withinGrace(now: number, since: number, ms: number): boolean {
  return now >= since && now - since < ms;
}

export interface TrackerCounters {
  tagged: number;
  inheritedFork: number;
  inheritedPpid: number;
  inheritedProc: number;
  cgroupMapped: number;
  containerMapped: number;
  exits: number;
  reuseDetected: number;
  procLookups: number;
  /** Processes gone with their parent before their records were read, answered by the container scan. */
  fromScan: number;
  /** Fork records whose `exit=` was not, in /proc, a child of the record's process (another pid namespace's number). */
  forkUnverified: number;
}

/** Container discovery as the tracker sees it (src/containers implements it; routing does not import it). */
export interface ContainerLookup {
  /** False while no container is known: lookups can then be skipped. */
  readonly active: boolean;
  /**
   * The contid of the container `pid` is in, from its /proc/PID/cgroup text; null outside every container. `start`:
   * the start time of the process the text was read for, read before it (a pid reused since is not registered as
   * the container's).
   */
  contidFor(pid: number, cgroupText: string, start: number): bigint | null;
  /**
   * Is this contid a known container's, live or retired within RETIRE_GRACE_MS (so its processes are found again by
   * cgroup, and an entry whose parent changed is not trusted as it is)?
   */
  owns(contid: bigint): boolean;
  /**
   * The known container (live or in its grace) the last container scan found `pid` in, under the parent `ppid`, if it
   * did: the answer for a process gone from /proc before its records were read.
   */
  lastSeenIn(pid: number, ppid: number): bigint | null;
}

export interface TrackerOptions {
  proc?: ProcReader;
  containers?: ContainerLookup;
  cgroupMap?: readonly CgroupGlobEntry[];
  /** How long a "not in any container" answer for a pid is trusted before /proc is asked again. */
  negativeTtlMs?: number;
  now?: () => number;
}

export class ContidTracker {
  private readonly byPid = new Map<number, Entry>();
  /** pids known to be outside every container, with the time of that answer. */
  private readonly untagged = new Map<number, { at: number; ppid: number }>();
  /** pids whose entries belong to a container in its retirement grace (checkRetired; at most one per entry). */
  private readonly retiredPids = new Set<number>();
  private readonly proc: ProcReader;
  private cgroupMap: readonly CgroupGlobEntry[];
  private containers: ContainerLookup | null;
  private readonly negativeTtlMs: number;
  private readonly now: () => number;
  readonly counters: TrackerCounters = {
    tagged: 0,
    inheritedFork: 0,
    inheritedPpid: 0,
    inheritedProc: 0,
    cgroupMapped: 0,
    containerMapped: 0,
    exits: 0,
    reuseDetected: 0,
    procLookups: 0,
    fromScan: 0,
    forkUnverified: 0,
  };

  constructor(opts: TrackerOptions = {}) {
    this.proc = opts.proc ?? realProc;
    this.cgroupMap = opts.cgroupMap ?? [];
    this.containers = opts.containers ?? null;
    this.negativeTtlMs = opts.negativeTtlMs ?? 2000;
    this.now = opts.now ?? Date.now;
  }

  setCgroupMap(map: readonly CgroupGlobEntry[]): void {
    this.cgroupMap = map;
    this.untagged.clear();
  }

  setContainers(c: ContainerLookup | null): void {
    this.containers = c;
    this.untagged.clear();
  }

  /** True when no process has an id, no cgroup mapping exists and no container is known: lookups can be skipped. */
  get idle(): boolean {
    return this.byPid.size === 0 && this.cgroupMap.length === 0 && !this.containers?.active;
  }

  /**
   * Idle, and no negative answer cached either: then onFork, noteExec, lookup and onExit change nothing and answer
   * nothing, so a caller may skip reading the fields it would pass them (a host with no container known and nothing
   * tracked reads no SYSCALL field for contids at all).
   */
  get quiet(): boolean {
    return this.untagged.size === 0 && this.idle;
  }

  get size(): number {
    return this.byPid.size;
  }

  /**
   * Sets the contid of `pid`, with the checks of the patch set's audit_set_contid(): never unset (EINVAL), only on a
   * single-threaded process without children (EBUSY), never on the setter itself (EXDEV), once per process unless
   * nesting (EEXIST), and an id in use by another process tree cannot be reused (ENOTUNIQ).
   */
  set(
    pid: number,
    id: bigint,
    opts: { setterPid: number; nested?: boolean; join?: boolean },
  ): { old: Chain | null; chain: Chain } {
    if (id === AUDIT_CID_UNSET) throw new ContidError('EINVAL', 'a contid cannot be unset');
    if (id < 0n || id > AUDIT_CID_UNSET) throw new ContidError('EINVAL', `contid ${id} is outside 0..2^64-2`);
    if (pid === opts.setterPid) throw new ContidError('EXDEV', 'a process cannot set its own contid');
    const st = this.proc.stat(pid);
    if (!st) throw new ContidError('ESRCH', `no process ${pid}`);
    if (st.threads > 1) throw new ContidError('EBUSY', `process ${pid} has ${st.threads} threads`);
    if (this.proc.children(pid).length > 0) throw new ContidError('EBUSY', `process ${pid} already has children`);
    const old = this.lookup(pid, st.ppid);
    // Joining a running container (runc exec, podman exec): the caller checked that the process is in it.
    if (opts.join && old && old[0] === id) return { old, chain: old };
    if (old && !opts.nested)
      throw new ContidError(
        'EEXIST',
        `process ${pid} already has contid ${formatChain(old)} (use nesting to add a level)`,
      );
    if (old && old.includes(id))
      throw new ContidError('EINVAL', `contid ${id} is already in the chain ${formatChain(old)}`);
    for (const [other, e] of this.byPid) {
      if (
        !opts.join &&
        other !== pid &&
        e.chain[0] === id &&
        e.source === 'set' &&
        this.proc.stat(other)?.starttime === e.starttime
      ) {
        throw new ContidError('ENOTUNIQ', `contid ${id} already belongs to process ${other}`);
      }
    }
    const chain: Chain = old ? [id, ...old] : [id];
    this.byPid.set(pid, { chain, starttime: st.starttime, source: 'set' });
    this.untagged.delete(pid);
    this.counters.tagged++;
    return { old, chain };
  }

  /**
   * A container's init, registered by the OCI hook before it runs user code: no patch-set checks (runc's init is
   * multi-threaded and the id is the container's own), but the start time guards against pid reuse.
   */
  adopt(pid: number, id: bigint, starttime: number): void {
    this.byPid.set(pid, { chain: [id], starttime, source: 'container' });
    this.untagged.delete(pid);
    this.counters.tagged++;
  }

  /**
   * A container's entries (not an id `contid set` gave, nor the operator's cgroup map, nor a nested chain): a retired
   * container's processes, whose pids anyone may reuse.
   */
  private static ofContainer(e: Entry, id: bigint): boolean {
    return (
      e.chain[0] === id &&
      e.chain.length === 1 &&
      (e.source === 'container' || e.source === 'proc' || e.source === 'ppid' || e.source === 'fork')
    );
  }

  /**
   * A container retired at `at` (its poststop hook, or the scan found its processes gone): the entries of its processes
   * that are gone stay for the retirement grace, so its late events still get its contid, marked gone since `at`
   * unless a sweep found them gone earlier. One under which /proc shows a process now (another process under a reused
   * pid, or one its container left behind) goes at once, as every entry used to; checkRetired does the same at each
   * tick until endRetirements ends the grace. One pass over the entries and a /proc read for each of this container's,
   * per retirement.
   */
  retireContid(id: bigint, at: number): void {
    for (const [pid, e] of this.byPid) {
      if (!ContidTracker.ofContainer(e, id)) continue;
      if (this.proc.stat(pid)) {
        this.byPid.delete(pid);
        this.retiredPids.delete(pid);
        continue;
      }
      e.goneSince ??= at;
      this.retiredPids.add(pid);
    }
  }

  /**
   * The retirement graces of `ended` (contid -> whether it is live again, and when it was retired) are over. Not live
   * again: its processes' entries go (their pids may be reused by anyone). Live again (contids come from container IDs:
   * `podman restart` makes the same one): only the entries of its previous life go, those gone since the retirement or
   * before; the new processes' stay. One pass over the entries for all of them (a node drained of a thousand
   * containers ends their graces in one tick).
   */
  endRetirements(ended: ReadonlyMap<bigint, { live: boolean; retiredAt: number }>): void {
    if (ended.size === 0) return;
    for (const [pid, e] of this.byPid) {
      const g = e.chain.length === 1 ? ended.get(e.chain[0]!) : undefined;
      if (
        g !== undefined &&
        ContidTracker.ofContainer(e, e.chain[0]!) &&
        (!g.live || (e.goneSince !== undefined && e.goneSince <= g.retiredAt))
      ) {
        this.byPid.delete(pid);
        this.retiredPids.delete(pid);
      }
    }
  }

  /**
   * Every housekeeping tick (2 s), sweep or not (the sweep runs only while the tracking rule is loaded): the processes
   * of containers in their retirement grace are gone, so one under such a pid now is another process and loses the
   * entry (as the sweep's rule for a pid gone and there again). A /proc read per such entry per tick, none per event.
   */
  checkRetired(): number {
    let dropped = 0;
    for (const pid of this.retiredPids) {
      const e = this.byPid.get(pid);
      if (e?.goneSince === undefined) this.retiredPids.delete(pid);
      else if (this.proc.stat(pid)) {
        this.dropReused(pid);
        dropped++;
      }
    }
    return dropped;
  }

  /** The chain of `pid` if auditmux knows it directly (no inheritance lookup). */
  get(pid: number): Chain | null {
    return this.byPid.get(pid)?.chain ?? null;
  }

  /** A fork/clone seen in a SYSCALL record (parent `pid`, `exit` = child pid) or a child's first event. */
  onFork(parentPid: number, childPid: number): void {
    const p = this.byPid.get(parentPid);
    if (!p || childPid <= 0 || this.reused(parentPid, p)) return;
    const prev = this.byPid.get(childPid);
    if (prev && prev.source === 'set') return;
    // `exit=` is the child's pid as the caller's pid namespace numbers it, while the record's pid= and ppid= are the
    // host's: a container with its own pid namespace forks children whose numbers are host processes' (sshd's, say),
    // which took the container's contid and gave it to their children. A process /proc shows under that number with
    // another parent is not this child. One /proc does not show (gone already, or a number the host has not given)
    // gets an entry without a start time, which the sweep and the scan bound as before.
    const st = this.proc.stat(childPid);
    if (st && st.ppid !== parentPid) {
      this.counters.forkUnverified++;
      return;
    }
    const e = this.inherited(p, parentPid, 'fork', childPid);
    if (st) e.starttime = st.starttime;
    this.byPid.set(childPid, e);
    this.untagged.delete(childPid);
    this.counters.inheritedFork++;
  }

  /**
   * The chain of a user-space message's sender (AUDIT_USER_*, pam's logins, sudo's commands): its record has no
   * ppid=, so /proc gives it, and an entry of another process that had the pid before is dropped. Before, a host
   * `sudo` that took a container process's pid within a scan's interval had its USER_CMD routed to that tenant.
   */
  lookupUser(pid: number): Chain | null {
    const st = this.proc.stat(pid);
    const e = this.byPid.get(pid);
    if (e && st && e.source !== 'set' && e.starttime !== null && e.starttime !== st.starttime) this.dropReused(pid);
    return this.lookup(pid, st?.ppid ?? 0);
  }

  /**
   * Whether the entry `p` of an event's parent `ppid` is still that process's, read from /proc: without the tracking
   * rule no exit removes an entry, so a pid a container's process left can be a host process's (sshd's session child)
   * before the next scan, and its children took the container's contid. A parent gone from /proc is trusted (the
   * record says it forked this child); a live one must have the entry's start time, or its recorded parent.
   */
  private parentStill(ppid: number, p: Entry): boolean {
    if (p.source === 'set') return true;
    const st = this.proc.stat(ppid);
    if (!st) return true;
    const stale =
      p.starttime !== null
        ? p.starttime !== st.starttime
        : p.ppid !== undefined && p.ppid !== st.ppid && (this.containers?.owns(p.chain[0]!) ?? false);
    if (!stale) return true;
    this.dropReused(ppid);
    return false;
  }

  /**
   * The entry a child inherits from its parent's entry `p`. A late record of a retired container's process (its grace)
   * makes a child that is that container's and gone too: it is marked so, and goes with the container's entries.
   */
  private inherited(p: Entry, ppid: number, source: 'fork' | 'ppid', pid: number): Entry {
    if (this.retiredPids.size === 0 || p.goneSince === undefined || !this.retiredPids.has(ppid))
      return { chain: p.chain, starttime: null, source, ppid };
    this.retiredPids.add(pid);
    return { chain: p.chain, starttime: null, source, ppid, goneSince: p.goneSince };
  }

  /**
   * An entry found gone (a sweep, its container's retirement) whose pid /proc shows again belongs to another process:
   * it goes, so neither that process nor its children take the gone one's contid before the next tick notices. One
   * /proc read per late record of a gone process (it fails while the pid is free), none for a live one.
   */
  private reused(pid: number, e: Entry): boolean {
    if (e.goneSince === undefined || !this.proc.stat(pid)) return false;
    this.dropReused(pid);
    return true;
  }

  /** exit_group seen: the pid may be reused, so its id goes. */
  onExit(pid: number): void {
    if (this.byPid.delete(pid)) this.counters.exits++;
    this.untagged.delete(pid);
  }

  /**
   * The chain for an event of `pid` whose parent is `ppid` (both from its SYSCALL record): a direct entry, else the
   * parent's (children inherit), else /proc ancestry, else the containers' cgroups, else the cgroup map. Negative
   * answers are cached briefly per (pid, ppid); a process the container scan later finds in a container (a join:
   * `runc exec`) loses its negative entry then (`noteContainerMember`), so no event has to bypass the cache.
   */
  lookup(pid: number, ppid: number): Chain | null {
    const e = this.byPid.get(pid);
    if (e && !this.reused(pid, e)) {
      // Without the fork/exit tracking rule no exit removes an inherited entry, and pids are reused (pid_max is often
      // 32768): a container's entry whose recorded parent changed is found again by cgroup, never trusted as it is.
      if (e.ppid === undefined || ppid <= 0 || e.ppid === ppid || !this.containers?.owns(e.chain[0]!)) return e.chain;
      this.byPid.delete(pid);
      this.counters.reuseDetected++;
    }
    if (this.idle) return null;
    const p = ppid > 0 ? this.byPid.get(ppid) : undefined;
    if (p && !this.reused(ppid, p) && this.parentStill(ppid, p)) {
      this.byPid.set(pid, this.inherited(p, ppid, 'ppid', pid));
      this.counters.inheritedPpid++;
      return p.chain;
    }
    const now = this.now();
    const seen = this.untagged.get(pid);
    // A negative answer for another parent is another process under a reused pid.
    if (seen !== undefined && seen.ppid === ppid && now - seen.at < this.negativeTtlMs) return null;
    const found = this.fromProcEvent(pid, ppid, now);
    if (found) return found;
    if (this.untagged.size > 65536) this.untagged.clear();
    this.untagged.set(pid, { at: now, ppid });
    return null;
  }

  /**
   * One walk of /proc for an event's process. When it is still there under the record's parent, its own ancestry and
   * cgroup answer. When it is gone (a short-lived child, often exited before its events are read) or the pid now
   * belongs to another parent (reuse, or reparenting after a double fork), the record's parent says where it ran.
   */
  private fromProcEvent(pid: number, ppid: number, now: number): Chain | null {
    const st = this.proc.stat(pid);
    if (st && (ppid <= 0 || st.ppid === ppid)) return this.fromProc(pid, st);
    if (this.containers?.active && ppid > 1) {
      const ps = this.untagged.get(ppid);
      if (ps === undefined || now - ps.at >= this.negativeTtlMs) {
        const pst = this.proc.stat(ppid);
        const viaParent = pst ? this.fromProc(ppid, pst) : null;
        if (viaParent) {
          this.byPid.set(pid, { chain: viaParent, starttime: null, source: 'ppid', ppid });
          this.counters.inheritedPpid++;
          return viaParent;
        }
        if (pst) this.untagged.set(ppid, { at: now, ppid: pst.ppid });
      }
    }
    // Reparented (its old parent gone or elsewhere): the process itself still says which container it is in.
    if (st) return this.fromProc(pid, st);
    return this.fromScan(pid, ppid, now);
  }

  /**
   * The process is gone from /proc before its records were read (short-lived, under a backlog), and neither it nor
   * its parent gave an answer: the container scan may have seen it in a container, under the same parent (a pid
   * reused by another process, a host shell's command, has another parent). Only the process's own pid: a parent's
   * scan entry would answer for anything a reuser of the parent's pid forked. The entry is marked gone at once, so a
   * process found under the pid later is another one (reused) and the bound applies. No /proc read: map lookups only.
   */
  private fromScan(pid: number, ppid: number, now: number): Chain | null {
    const c = this.containers;
    if (!c?.active || ppid <= 0) return null;
    const id = c.lastSeenIn(pid, ppid);
    if (id === null) return null;
    const chain: Chain = [id];
    this.byPid.set(pid, { chain, starttime: null, source: 'proc', ppid, goneSince: now });
    this.counters.fromScan++;
    return chain;
  }

  /** A process container discovery found in a container: a cached "in none" answer for it is stale (it joined). */
  noteContainerMember(pid: number): void {
    this.untagged.delete(pid);
  }

  /**
   * An audited, successful execve of `pid`: a cached "in none" answer may be stale. `runc exec` (and podman, docker,
   * kubectl exec through it) makes a `runc init` that joins the container's cgroup and then execs the user's command;
   * without this, its children's events went to the host until the next scan (up to 2 s). A map delete here, and one
   * /proc read at the next lookup of the process or its children: a tagged process keeps its contid across exec.
   */
  noteExec(pid: number): void {
    this.untagged.delete(pid);
  }

  private fromProc(pid: number, st0: ProcStat): Chain | null {
    this.counters.procLookups++;
    let cur = pid;
    let st: ProcStat | null = st0;
    const path: Array<{ pid: number; starttime: number; ppid: number }> = [];
    for (let depth = 0; depth < 64 && cur > 1 && st; depth++) {
      const e = this.byPid.get(cur);
      // An entry found gone before (a sweep, its container's retirement) is another process's now that /proc has one.
      if (e && e.goneSince === undefined && (e.starttime === null || e.starttime === st.starttime)) {
        for (const p of path)
          this.byPid.set(p.pid, { chain: e.chain, starttime: p.starttime, source: 'proc', ppid: p.ppid });
        this.counters.inheritedProc += path.length;
        return e.chain;
      }
      if (e) {
        this.byPid.delete(cur);
        this.counters.reuseDetected++;
      }
      path.push({ pid: cur, starttime: st.starttime, ppid: st.ppid });
      cur = st.ppid;
      st = cur > 1 ? this.proc.stat(cur) : null;
    }
    const useMap = this.cgroupMap.length > 0;
    if (!useMap && !this.containers) return null;
    // One read of /proc/PID/cgroup: the runtimes' layouts on every line first, then the operator's static map on its
    // main path.
    let text = this.proc.cgroupText(pid);
    // The pid may have changed hands between its stat and this read: a cgroup read of another process names its
    // container, not this one's (the discovery scan checks the same way).
    if (text !== null && this.proc.stat(pid)?.starttime !== st0.starttime) return null;
    // A live process whose cgroup cannot be read: kernels that refuse a path of PATH_MAX or more (ENAMETOOLONG) do so
    // for a process a container moved deep into its delegated cgroup tree. Its nearest ancestor with a readable
    // cgroup says where it was forked (the walk above found none tracked). A host process's ancestors are the host's.
    for (let i = 1; text === null && i < path.length; i++) {
      const a = path[i]!;
      text = this.proc.cgroupText(a.pid);
      // The ancestor's pid may have been reused since the walk: its text counts only if it is still that process.
      if (text !== null && this.proc.stat(a.pid)?.starttime !== a.starttime) return null;
    }
    if (text === null) return null;
    // A process discovery finds in a container is that container's (its outermost match, at a place only root
    // makes): a map entry for a name below it, which the container itself may have made in its delegated subtree
    // (`docker-<another id>.scope`), must not give it another tenant's contid. The map answers for the rest.
    const cid = this.containers ? this.containers.contidFor(pid, text, st0.starttime) : null;
    if (cid !== null) {
      this.byPid.set(pid, { chain: [cid], starttime: st0.starttime, source: 'container', ppid: st0.ppid });
      this.counters.containerMapped++;
      return [cid];
    }
    const cg = useMap ? primaryCgroupPath(text) : null;
    const id = cg ? contidForCgroup(this.cgroupMap, cg) : undefined;
    if (id === undefined) return null;
    this.byPid.set(pid, { chain: [id], starttime: st0.starttime, source: 'cgroup' });
    this.counters.cgroupMapped++;
    return [id];
  }

  /**
   * Drops entries whose process has been gone for SWEEP_GRACE_MS (found gone by an earlier sweep), or whose pid now
   * belongs to another process.
   */
  sweep(): number {
    let dropped = 0;
    const now = this.now();
    for (const [pid, e] of this.byPid) {
      const st = this.proc.stat(pid);
      const gone = this.settle(pid, e, st !== null, now);
      if (gone !== null) dropped += gone ? 1 : 0;
      else if (e.starttime === null) e.starttime = st!.starttime;
      else if (e.starttime !== st!.starttime) {
        this.dropReused(pid);
        dropped++;
      }
    }
    return dropped;
  }

  /**
   * The rule the sweep and the scan's bound share for one entry, given whether its pid is `present` now: gone, it is
   * marked so and goes once gone for SWEEP_GRACE_MS; found gone before and present again, it is another process's
   * (whatever its start time) and goes. True: dropped; false: kept as gone; null: present, and not found gone before.
   */
  private settle(pid: number, e: Entry, present: boolean, now: number): boolean | null {
    if (!present) {
      e.goneSince ??= now;
      if (withinGrace(now, e.goneSince, SWEEP_GRACE_MS)) return false;
      this.byPid.delete(pid);
      this.retiredPids.delete(pid);
      return true;
    }
    if (e.goneSince === undefined) return null;
    this.dropReused(pid);
    return true;
  }

  /** Another process has the pid now: the entry goes, counted. */
  private dropReused(pid: number): void {
    this.byPid.delete(pid);
    this.retiredPids.delete(pid);
    this.counters.reuseDetected++;
  }

  /**
   * The sweep's bound without its /proc reads, for when the sweep does not run (it runs only with the tracking rule,
   * whose exit_group records remove entries in order): an entry of a pid missing from `alive` (every pid the
   * container scan just listed) is gone, and goes SWEEP_GRACE_MS later; one found gone and listed again is another
   * process's. Without it, a long-lived container's short-lived processes (each got an entry at its first event) held
   * an entry each until the container retired: 20,000 of them for 20,000 processes. One Set lookup per entry.
   */
  sweepGone(alive: ReadonlySet<number>): number {
    let dropped = 0;
    const now = this.now();
    for (const [pid, e] of this.byPid) if (this.settle(pid, e, alive.has(pid), now)) dropped++;
    return dropped;
  }

  /** Every tracked pid with its chain and how it got it (for `auditmux contid get` and status). */
  entries(): Array<{ pid: number; contid: string; source: string }> {
    return [...this.byPid].map(([pid, e]) => ({ pid, contid: formatChain(e.chain), source: e.source }));
  }
}
