// The daemon's scheduling priority: auditd's priority_boost, for every thread of the process.
import { getPriority, setPriority } from 'node:os';
import { readdirSync } from 'node:fs';

export interface PriorityResult {
  /** The nice value asked for (-boost). */
  target: number;
  /** Threads moved to it (0 when they already ran at or above it). */
  raised: number;
  /** Why a thread could not be moved (the first error), or null. */
  error: string | null;
}

/**
 * Runs every thread of this process at nice -boost, unless it already runs at that or higher (as under the unit's
 * Nice=, whose sandbox refuses setpriority: no call is made then). On Linux a nice value belongs to a thread, and
 * libuv's and V8's threads exist before the config is read, so each task in /proc/self/task is set; threads made
 * later inherit the value of the one that makes them. Lowering nice needs CAP_SYS_NICE: without it the error is
 * returned, not thrown: a daemon at normal priority still audits.
 */
export function raisePriority(boost: number): PriorityResult {
  const target = -boost;
  const res: PriorityResult = { target, raised: 0, error: null };
  if (boost <= 0) return res;
  let tids: number[];
  try {
    tids = readdirSync('/proc/self/task')
      .map(Number)
      .filter((n) => Number.isInteger(n) && n > 0);
  } catch (e) {
    res.error = `/proc/self/task: ${(e as Error).message}`;
    return res;
  }
  for (const tid of tids) {
    try {
      if (getPriority(tid) <= target) continue;
      setPriority(tid, target);
      res.raised++;
    } catch (e) {
      // A thread that ended meanwhile (ESRCH) is not an error. Node's SystemError keeps the errno name in info.code.
      if ((e as { info?: { code?: string } }).info?.code === 'ESRCH') continue;
      res.error ??= (e as Error).message;
    }
  }
  return res;
}
