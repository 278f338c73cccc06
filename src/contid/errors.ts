// The refusal of a contid write, with the errno the patch set's /proc interface would have returned.
import { AuditmuxError, ExitCode } from '../errors';

/** A refused `contid set`, with the errno the patch set's /proc write would have returned. */
export class ContidError extends AuditmuxError {
  constructor(
    readonly errnoName: 'EINVAL' | 'EPERM' | 'EBUSY' | 'EXDEV' | 'EEXIST' | 'ENOTUNIQ' | 'ESRCH',
    message: string,
  ) {
    super(`E_CONTID_${errnoName}`, message, errnoName === 'EPERM' ? ExitCode.PERMISSION : ExitCode.FAILURE);
  }
}

/** errno names of a failed /proc or emulated write, as ContidError kinds (a vanished process reads as ESRCH). */
export const ERRNO_TO_CONTID: Record<string, ContidError['errnoName']> = {
  EINVAL: 'EINVAL',
  EPERM: 'EPERM',
  EBUSY: 'EBUSY',
  EXDEV: 'EXDEV',
  EEXIST: 'EEXIST',
  ENOTUNIQ: 'ENOTUNIQ',
  ESRCH: 'ESRCH',
  ENOENT: 'ESRCH',
};
