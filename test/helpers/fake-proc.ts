// An in-memory /proc and runtime state for discovery and tracker tests: pids with a parent, a start time, a cgroup
// text, an argv and a pid namespace; runc's and containerd's state as sets; reads counted.
import type { ProcStat, ProcReader } from '../../src/contid/proc';
import type { ContainerProc } from '../../src/containers/discovery';

export interface FakeProcess extends ProcStat {
  /** The whole /proc/PID/cgroup text. */
  cg: string;
  argv: string[];
  ns: string;
}

export class FakeSystem implements ProcReader, ContainerProc {
  readonly procs = new Map<number, FakeProcess>();
  /** Containers in runc's state (/run/runc/<id>). */
  readonly runc = new Set<string>();
  /** Containers in containerd's runc state, as `<namespace>/<id>`. */
  readonly containerd = new Set<string>();
  statReads = 0;
  cgroupReads = 0;

  /** A process; its start time is pid * 10, its cgroup text as given (see `v2`). */
  put(pid: number, p: { ppid?: number; cg: string; argv?: string[]; ns?: string }): void {
    this.procs.set(pid, {
      ppid: p.ppid ?? 1,
      starttime: pid * 10,
      threads: 1,
      cg: p.cg,
      argv: p.argv ?? ['x'],
      ns: p.ns ?? 'pid:[1]',
    });
  }
  pids(): number[] {
    return [...this.procs.keys()];
  }
  stat(pid: number): ProcStat | null {
    this.statReads++;
    return this.procs.get(pid) ?? null;
  }
  children(pid: number): number[] {
    return [...this.procs].filter(([, s]) => s.ppid === pid).map(([p]) => p);
  }
  cgroupText(pid: number): string | null {
    this.cgroupReads++;
    return this.procs.get(pid)?.cg ?? null;
  }
  cmdline(pid: number): string[] | null {
    return this.procs.get(pid)?.argv ?? null;
  }
  pidNs(pid: number): string | null {
    return this.procs.get(pid)?.ns ?? null;
  }
  runcState(id: string): boolean {
    return this.runc.has(id);
  }
  containerdState(namespace: string, id: string): boolean {
    return this.containerd.has(`${namespace}/${id}`);
  }
}

/** A cgroup v2 line for `path`, as /proc/PID/cgroup shows it on a unified hierarchy. */
export const v2 = (path: string): string => `0::${path}\n`;
