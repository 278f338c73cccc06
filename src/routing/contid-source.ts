// Where container IDs come from: the kernel's contid patch set (/proc/PID/audit_containerid) or auditmux's tracker.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { AUDIT_CID_UNSET, FeatureBit } from '../kernel/constants';
import type { EmulatedKernel } from '../kernel/emulated-kernel';
import { KernelError } from '../errors';
import { ContidError, ContidTracker, parseChains, type Chain } from './contid-tracker';

export interface ContidSource {
  readonly kind: 'kernel' | 'tracker';
  set(
    pid: number,
    id: bigint,
    opts: { setterPid: number; nested?: boolean; join?: boolean },
  ): { old: Chain | null; chain: Chain };
  get(pid: number): Chain | null;
}

/** A kernel with the patch set: detected by its feature bit or by /proc/self/audit_containerid. */
export function kernelHasContid(featureBitmap: number, procRoot = '/proc'): boolean {
  return (featureBitmap & FeatureBit.CONTAINERID) !== 0 || existsSync(`${procRoot}/self/audit_containerid`);
}

const ERRNO_TO_CONTID: Record<string, ContidError['errnoName']> = {
  EINVAL: 'EINVAL',
  EPERM: 'EPERM',
  EBUSY: 'EBUSY',
  EXDEV: 'EXDEV',
  EEXIST: 'EEXIST',
  ENOTUNIQ: 'ENOTUNIQ',
  ESRCH: 'ESRCH',
  ENOENT: 'ESRCH',
};

/** The patch set's /proc interface: write a decimal u64 in one write; read back `%llu`. */
export class ProcContidSource implements ContidSource {
  readonly kind = 'kernel' as const;
  constructor(private readonly procRoot = '/proc') {}

  set(pid: number, id: bigint): { old: Chain | null; chain: Chain } {
    const old = this.get(pid);
    try {
      writeFileSync(`${this.procRoot}/${pid}/audit_containerid`, id.toString(10));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EINVAL';
      throw new ContidError(ERRNO_TO_CONTID[code] ?? 'EINVAL', `writing /proc/${pid}/audit_containerid: ${code}`);
    }
    return { old, chain: [id] };
  }

  get(pid: number): Chain | null {
    try {
      const v = BigInt(readFileSync(`${this.procRoot}/${pid}/audit_containerid`, 'latin1').trim());
      return v === AUDIT_CID_UNSET ? null : [v];
    } catch {
      return null;
    }
  }
}

/** The emulated patched kernel (tests): the same checks, run by the emulation. */
export class EmulatedContidSource implements ContidSource {
  readonly kind = 'kernel' as const;
  constructor(private readonly kernel: EmulatedKernel) {}

  set(pid: number, id: bigint, opts: { setterPid: number }): { old: Chain | null; chain: Chain } {
    const old = this.get(pid);
    try {
      this.kernel.setContid(opts.setterPid, pid, id);
    } catch (e) {
      if (e instanceof KernelError)
        throw new ContidError(ERRNO_TO_CONTID[e.code] ?? 'EINVAL', `audit_containerid of ${pid}: ${e.code}`);
      throw e;
    }
    return { old, chain: this.get(pid) ?? [id] };
  }

  get(pid: number): Chain | null {
    const t = this.kernel.contidText(pid);
    return t ? (parseChains(t)?.[0] ?? null) : null;
  }
}

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
