// Record type names for route narrowing (`types: [SYSCALL, EXECVE]`), from the records module's libaudit table.
import { allMsgTypes } from '../records/msgtypes';

/** Every known name → number, for "did you mean" hints. */
export const RECORD_TYPES: Readonly<Record<string, number>> = Object.freeze(
  Object.fromEntries([
    ...allMsgTypes().map(([n, name]) => [name, n] as const),
    ['CONTAINER_OP', 1020],
    ['CONTAINER_ID', 1336],
  ]),
);

/** `SYSCALL` → 1300; `UNKNOWN[1999]` (how auditd prints unnamed types) → 1999; anything else → undefined. */
export function recordTypeNumber(name: string): number | undefined {
  if (Object.prototype.hasOwnProperty.call(RECORD_TYPES, name)) return RECORD_TYPES[name];
  const m = /^UNKNOWN\[([0-9]{1,5})\]$/.exec(name);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n >= 1 && n <= 0xffff ? n : undefined;
}
