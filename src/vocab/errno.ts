// Errno names by number and number by name, as libaudit prints and parses them (generated into ../errno-table.ts,
// the one errno table: src/errors.ts names kernel errors from it as well).
import { ERRNO_TABLE } from '../errno-table';
import { NameTable } from './name-table';

/** Case-insensitive by name, as auditctl's -F exit=; a number gives its first (primary) name, not an alias. */
export const ERRNOS = new NameTable(ERRNO_TABLE);

/** `EACCES` for 13; undefined for a number libaudit has no name for. */
export function errnoName(n: number): string | undefined {
  return ERRNOS.name(n);
}
