// Reads what the contid tracker and container discovery need from /proc (stat, children, cgroup, cmdline), bounded.
import { Buffer } from 'node:buffer';
import { closeSync, constants, openSync, readSync, readdirSync } from 'node:fs';
import { PROC_CGROUP_MAX } from './cgroup-patterns';

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
  /** The whole /proc/PID/cgroup text (every v1 and v2 line), at most PROC_CGROUP_MAX bytes; null when gone. */
  cgroupText(pid: number): string | null;
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

/**
 * The cgroup path `cgroup_map` globs are matched on: the v2 line (`0::/path`), else the first v1 line's path. Taken
 * from the same text container discovery classifies, so one read of /proc/PID/cgroup serves both.
 */
export function primaryCgroupPath(text: string): string | null {
  let first: string | null = null;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const a = text.indexOf(':', start);
    const b = a < 0 || a >= end ? -1 : text.indexOf(':', a + 1);
    if (b >= 0 && b < end) {
      const path = text.slice(b + 1, end);
      if (a === start + 1 && text[start] === '0' && b === a + 1) return path;
      if (first === null) first = path;
    }
    start = end + 1;
  }
  return first;
}

/** One buffer for every /proc read: the daemon is single-threaded and each read is copied out as a string. */
let scratch = Buffer.allocUnsafe(4096);

/**
 * Reads a /proc text file, at most `limit` bytes (procfs reports size 0, so the size is known only by reading). A
 * file longer than the limit is cut at its last whole line: never more memory than the limit, never a hang on a FIFO
 * (O_NONBLOCK) or a symlink's target (O_NOFOLLOW; /proc/PID/* files are not links). Null when the process is gone.
 */
export function readProcText(path: string, limit: number): string | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW | constants.O_NOCTTY);
  } catch {
    return null;
  }
  try {
    if (scratch.length < limit) scratch = Buffer.allocUnsafe(limit);
    let total = 0;
    while (total < limit) {
      const n = readSync(fd, scratch, total, limit - total, null);
      if (n === 0) break;
      total += n;
    }
    if (total === limit) {
      const nl = scratch.lastIndexOf(0x0a, total - 1);
      if (nl >= 0) total = nl + 1;
    }
    return scratch.toString('latin1', 0, total);
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

const STAT_MAX = 4096;

export const realProc: ProcReader = {
  stat(pid) {
    const t = readProcText(`/proc/${pid}/stat`, STAT_MAX);
    return t === null ? null : parseProcStat(t);
  },
  children(pid) {
    const out: number[] = [];
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        if (!/^[0-9]{1,7}$/.test(tid)) continue;
        const t = readProcText(`/proc/${pid}/task/${tid}/children`, 1 << 18);
        if (t) for (const c of t.trim().split(' ')) if (c) out.push(Number(c));
      }
    } catch {
      /* gone */
    }
    return out;
  },
  cgroupText(pid) {
    return readProcText(`/proc/${pid}/cgroup`, PROC_CGROUP_MAX);
  },
};
