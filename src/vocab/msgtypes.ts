// Record type names and numbers, the one lookup for the writer, search, rules, the config and the control socket:
// libaudit's table (generated into ./tables.ts) plus the names auditmux adds on top (CONTAINER_ID, CONTAINER_OP).
import { AUDITMUX_CONTAINER_ID, CONTID_CONTAINER_ID, MsgType } from '../kernel/constants';
import { MSGTYPE_TABLE } from './tables';

/** Largest type number the dense lookup array covers; user-space message types end at 2999. */
const DENSE_MAX = 3000;
const byNumber: (string | undefined)[] = new Array<string | undefined>(DENSE_MAX).fill(undefined);
const byName = new Map<string, number>();
for (const [n, name] of MSGTYPE_TABLE) {
  byNumber[n] = name;
  byName.set(name, n);
}

/** Name of the contid patch set's auxiliary record (1336 on patched kernels, URINGOP on mainline). */
export const CONTAINER_ID_NAME = 'CONTAINER_ID';
/** Name of the records auditmux writes about container operations (the patch set's AUDIT_CONTAINER_OP). */
export const CONTAINER_OP_NAME = 'CONTAINER_OP';

/** Name for a type as auditd writes it: the table name or `UNKNOWN[n]`. */
export function msgTypeName(n: number): string {
  const s = n >= 0 && n < DENSE_MAX ? byNumber[n] : undefined;
  return s ?? `UNKNOWN[${n}]`;
}

/** Number for a name (case-sensitive, as libaudit's table); `UNKNOWN[n]` is accepted too. */
export function msgTypeByName(s: string): number | undefined {
  const n = byName.get(s);
  if (n !== undefined) return n;
  if (s.startsWith('UNKNOWN[') && s.endsWith(']')) {
    const v = Number(s.slice(8, -1));
    if (Number.isInteger(v) && v >= 0) return v;
  }
  if (s === CONTAINER_ID_NAME) return CONTID_CONTAINER_ID;
  if (s === CONTAINER_OP_NAME) return MsgType.CONTAINER_OP;
  return undefined;
}

/** Largest record type number: the netlink header's type is a u16. */
const MAX_TYPE = 0xffff;

/**
 * A record type as a person types it (config `types:`, `auditmux route test -m`): a number 1..65535, a name in any
 * case (libaudit's, CONTAINER_ID, CONTAINER_OP) or `UNKNOWN[n]` as auditd prints unnamed types; undefined otherwise.
 */
export function recordTypeNumber(text: string): number | undefined {
  const t = text.toUpperCase();
  const m = /^(?:([0-9]{1,5})|UNKNOWN\[([0-9]{1,5})\])$/.exec(t);
  if (m) {
    const n = Number(m[1] ?? m[2]);
    return n >= 1 && n <= MAX_TYPE ? n : undefined;
  }
  return msgTypeByName(t);
}

/** Every name recordTypeNumber() knows, for "did you mean" hints. */
export function recordTypeNames(): string[] {
  return [...MSGTYPE_TABLE.map(([, name]) => name), CONTAINER_ID_NAME, CONTAINER_OP_NAME];
}

/** True when libaudit knows the number (so it would not write `UNKNOWN[n]`). */
export function isKnownMsgType(n: number): boolean {
  return n >= 0 && n < DENSE_MAX && byNumber[n] !== undefined;
}

/**
 * The name the log writer should use: on a contid-patched kernel 1336 carries CONTAINER_ID records, which mainline
 * libaudit would call URINGOP; the caller decides which kernel it is talking to.
 */
export function writerTypeName(n: number, contidKernel: boolean): string {
  if (n === AUDITMUX_CONTAINER_ID || (contidKernel && n === CONTID_CONTAINER_ID)) return CONTAINER_ID_NAME;
  if (n === MsgType.CONTAINER_OP) return CONTAINER_OP_NAME;
  return msgTypeName(n);
}

/** Every (number, name) pair of libaudit's table, ascending. */
export function allMsgTypes(): ReadonlyArray<readonly [number, string]> {
  return MSGTYPE_TABLE;
}
