// CPU time and peak memory of a daemon's whole process tree, read from /proc, so helper processes count against it.
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clkTck: number | undefined;
function ticksPerSecond(): number {
  clkTck ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return clkTck;
}

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm may contain spaces and parentheses; the fields after the last ')' are unambiguous.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (i: number): number => Number(f[i]);
  return { pid, ppid: n(1), ticks: n(11) + n(12) + n(13) + n(14) };
}

/** Every live process whose ancestry reaches root, root included. */
export function treePids(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const st = readStat(pid);
    if (!st) continue;
    const list = children.get(st.ppid);
    if (list) list.push(pid);
    else children.set(st.ppid, [pid]);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop()!;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/**
 * CPU seconds of the tree. Differences of two samples are right even when a child exits in between: its time moves
 * into the parent's cutime/cstime once reaped, and the earlier sample still holds what it had used before.
 */
export function treeCpuSeconds(root: number): number {
  let ticks = 0;
  for (const pid of treePids(root)) ticks += readStat(pid)?.ticks ?? 0;
  return ticks / ticksPerSecond();
}

/** Sum of VmHWM over the tree, in KiB: the peak each process reached, which is what a host has to provision. */
export function treePeakRssKiB(root: number): number {
  let kib = 0;
  for (const pid of treePids(root)) {
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kib += Number(m[1]);
    } catch {
      // The process exited between listing and reading: nothing left to count.
    }
  }
  return kib;
}

/**
 * CPU seconds of every process outside `root`'s tree (and not kauditd, measured on its own): what else ran on the
 * host. Summed per process rather than taken from /proc/stat, whose tick sampling disagrees with per-process times
 * by tens of percent over a few seconds.
 */
export function otherCpuSeconds(root: number): number {
  const exclude = new Set(treePids(root));
  kauditd ??= findKauditd();
  if (kauditd !== null) exclude.add(kauditd);
  let ticks = 0;
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || exclude.has(pid)) continue;
    ticks += readStat(pid)?.ticks ?? 0;
  }
  return ticks / ticksPerSecond();
}

/** CPU seconds of kauditd, the kernel thread that sends records to the daemon: part of the cost a daemon causes. */
export function kauditdCpuSeconds(): number {
  kauditd ??= findKauditd();
  if (kauditd === null) return NaN;
  return (readStat(kauditd)?.ticks ?? NaN) / ticksPerSecond();
}

let kauditd: number | null | undefined;
function findKauditd(): number | null {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/comm`, 'utf8').trim() === 'kauditd') return Number(name);
    } catch {
      // gone
    }
  }
  return null;
}

/** user and system CPU seconds per thread name (the main thread, libuv's pool, V8's workers...) over the tree. */
export type ThreadCpu = Record<string, { user: number; sys: number }>;

export function threadCpuSeconds(root: number): ThreadCpu {
  const out: ThreadCpu = {};
  const hz = ticksPerSecond();
  for (const pid of treePids(root)) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      let text: string;
      try {
        text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      } catch {
        continue;
      }
      // Names like "V8 DefaultWorke" or "libuv-worker": one bucket per name; the main thread by its pid.
      const name = tid === String(pid) ? 'main' : text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      const t = (out[name] ??= { user: 0, sys: 0 });
      t.user += Number(f[11]) / hz;
      t.sys += Number(f[12]) / hz;
    }
  }
  return out;
}

/** after - before, per thread name (threads that exited in between are not counted). */
export function threadCpuDelta(before: ThreadCpu, after: ThreadCpu): ThreadCpu {
  const out: ThreadCpu = {};
  for (const [k, a] of Object.entries(after)) {
    const b = before[k] ?? { user: 0, sys: 0 };
    out[k] = { user: a.user - b.user, sys: a.sys - b.sys };
  }
  return out;
}
