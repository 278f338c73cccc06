// Record type names for route narrowing (`types: [SYSCALL, EXECVE]`): vocab/msgtypes' one lookup, as `route test -m`.
import { recordTypeNames, recordTypeNumber } from '../vocab/msgtypes';

/** Every known name → number, for "did you mean" hints. */
export const RECORD_TYPES: Readonly<Record<string, number>> = Object.freeze(
  Object.fromEntries(recordTypeNames().map((name) => [name, recordTypeNumber(name)!] as const)),
);
