// The contid source of kernels with the patch set: /proc/PID/audit_containerid, detected by the feature bit.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { AUDIT_CID_UNSET, FeatureBit } from '../kernel/constants';
import type { Chain } from './chain';
import { ContidError, ERRNO_TO_CONTID } from './errors';
import type { ContidSource } from './source';

/** A kernel with the patch set: detected by its feature bit or by /proc/self/audit_containerid. */
export function kernelHasContid(featureBitmap: number, procRoot = '/proc'): boolean {
  return (featureBitmap & FeatureBit.CONTAINERID) !== 0 || existsSync(`${procRoot}/self/audit_containerid`);
}

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
