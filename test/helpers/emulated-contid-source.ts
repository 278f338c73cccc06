// The emulated kernel's contid source, and the host options that put a HostDaemon on an emulated kernel (test doubles).
import type { EmulatedKernel } from './emulated-kernel';
import { TrackerContidSource } from '../../src/contid/source-tracker';
import type { HostDaemonOptions } from '../../src/daemon/host';
import { KernelError } from '../../src/errors';
import { parseChains, type Chain } from '../../src/contid/chain';
import { ContidError, ERRNO_TO_CONTID } from '../../src/contid/errors';
import type { ContidSource } from '../../src/contid/source';

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

/** The transport and contid source of a host daemon on `kernel`: the patch set's source when it emulates one. */
export function emulatedHostOptions(kernel: EmulatedKernel): Pick<HostDaemonOptions, 'socket' | 'contidSource'> {
  return {
    socket: kernel.socket(),
    contidSource: (_status, tracker) =>
      kernel.contid ? new EmulatedContidSource(kernel) : new TrackerContidSource(tracker),
  };
}
