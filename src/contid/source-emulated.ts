// The emulated patched kernel's contid source (a test double: it moves under test/ with the emulated kernel).
import type { EmulatedKernel } from '../kernel/emulated-kernel';
import { KernelError } from '../errors';
import { parseChains, type Chain } from './chain';
import { ContidError, ERRNO_TO_CONTID } from './errors';
import type { ContidSource } from './source';

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
