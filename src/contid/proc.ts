// Reads what the contid tracker needs from /proc (ppid, start time, threads, children, cgroup); swappable in tests.
import { readFileSync, readdirSync } from 'node:fs';

export interface ProcStat {
  ppid: number;
  /** Start time in clock ticks since boot: with the pid, identifies a process across pid reuse. */
  starttime: number;
  threads: number;
}

export interface ProcReader {
  stat(pid: number): ProcStat | null;
  /** Pids of the process's children (all threads). */
  children(pid: number): number[];
  /** The cgroup v2 path (or the first v1 path) of the process, or null. */
  cgroup(pid: number): string | null;
  /** The whole /proc/PID/cgroup text (every v1 and v2 line), bounded; container discovery classifies it. */
  cgroupText?(pid: number): string | null;
}

/** /proc/PID/stat: the comm field may hold spaces and parentheses, so fields are counted after the last ')'. */
export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const f = text.slice(close + 2).split(' ');
  // after comm: state(0) ppid(1) ... num_threads(17) ... starttime(19)
  const ppid = Number(f[1]);
  const threads = Number(f[17]);
  const starttime = Number(f[19]);
  if (!Number.isInteger(ppid) || !Number.isInteger(threads) || !Number.isFinite(starttime)) return null;
  return { ppid, threads, starttime };
}

export const realProc: ProcReader = {
  stat(pid) {
    try {
      return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'latin1'));
    } catch {
      return null;
    }
  },
  children(pid) {
    const out: number[] = [];
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const t = readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').trim();
        if (t) for (const c of t.split(' ')) out.push(Number(c));
      }
    } catch {
      /* gone */
    }
    return out;
  },
  cgroupText(pid) {
    try {
      const t = readFileSync(`/proc/${pid}/cgroup`, 'latin1');
      // A path is at most PATH_MAX per line: anything far longer is not the kernel's file.
      return t.length > 65536 ? t.slice(0, 65536) : t;
    } catch {
      return null;
    }
  },
  cgroup(pid) {
    try {
      const lines = readFileSync(`/proc/${pid}/cgroup`, 'latin1').split('\n');
      const v2 = lines.find((l) => l.startsWith('0::'));
      const line = v2 ?? lines.find((l) => l.length > 0);
      return line ? line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1) : null;
    } catch {
      return null;
    }
  },
};
