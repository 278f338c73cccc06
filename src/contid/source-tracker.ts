// The contid source of mainline kernels: auditmux's own tracker.
import type { Chain } from './chain';
import type { ContidTracker } from './tracker';
import type { ContidSource } from './source';

/** Mainline kernels: auditmux's own table. */
export class TrackerContidSource implements ContidSource {
  readonly kind = 'tracker' as const;
  constructor(readonly tracker: ContidTracker) {}

  set(
    pid: number,
    id: bigint,
    opts: { setterPid: number; nested?: boolean; join?: boolean },
  ): { old: Chain | null; chain: Chain } {
    return this.tracker.set(pid, id, opts);
  }

  get(pid: number): Chain | null {
    const st = this.tracker.get(pid);
    return st ?? this.tracker.lookup(pid, 0);
  }
}
