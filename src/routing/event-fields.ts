// The few record fields routing needs (pid, ppid, syscall, exit, key, contid), read from payload bytes without a full
// parse.
import { bodyStartOf, fieldEnd, fieldIntIn, findField } from '../records/record';

/** AUDIT_KEY_SEPARATOR: several keys of one rule are joined with \x01, and the record then hex-encodes them. */
const KEY_SEP = '\x01';

/**
 * The raw text of field `name` in a record payload (`audit(...): a=1 name=value ...`), or undefined. Quoted values
 * come back with their quotes. Matching starts after the header, at a field boundary, so `ppid=` never matches `pid=`.
 */
export function fieldText(payload: Buffer, name: string, from = bodyStartOf(payload)): string | undefined {
  const vs = findField(payload, from, name);
  return vs < 0 ? undefined : payload.toString('latin1', vs, fieldEnd(payload, vs));
}

/** A decimal field as a number (read from the bytes, no string), or undefined when absent or not an integer. */
export function fieldInt(payload: Buffer, name: string, from = bodyStartOf(payload)): number | undefined {
  const n = fieldIntIn(payload, from, name);
  return Number.isNaN(n) ? undefined : n;
}

/** Decodes a key field: `"a"`, `(null)`, or hex when several keys are joined with \x01. */
export function decodeKeys(raw: string | undefined): string[] {
  if (raw === undefined || raw === '(null)') return [];
  if (raw.startsWith('"')) return [raw.slice(1, raw.endsWith('"') ? -1 : undefined)];
  if (/^[0-9A-Fa-f]+$/.test(raw) && raw.length % 2 === 0)
    return Buffer.from(raw, 'hex')
      .toString('latin1')
      .split(KEY_SEP)
      .filter((k) => k.length > 0);
  return [raw];
}

/** Encodes keys as the kernel prints them: one key quoted, several hex-encoded with \x01 between, none as (null). */
export function encodeKeys(keys: readonly string[]): string {
  if (keys.length === 0) return '(null)';
  if (keys.length === 1 && !/[\s"\x00-\x1f\x7f-\xff]/.test(keys[0]!)) return `"${keys[0]}"`;
  return Buffer.from(keys.join(KEY_SEP), 'latin1').toString('hex').toUpperCase();
}

/** A copy of the payload with field `name`'s value replaced (the field must exist; otherwise the payload itself). */
export function replaceField(payload: Buffer, name: string, value: string): Buffer {
  const vs = findField(payload, bodyStartOf(payload), name);
  if (vs < 0) return payload;
  const ve = fieldEnd(payload, vs);
  const out = Buffer.allocUnsafe(vs + Buffer.byteLength(value, 'latin1') + payload.length - ve);
  payload.copy(out, 0, 0, vs);
  const at = vs + out.write(value, vs, 'latin1');
  payload.copy(out, at, ve);
  return out;
}

/** Appends ` name=value` to a record payload (before any trailing NULs). */
export function appendField(payload: Buffer, text: string): Buffer {
  let end = payload.length;
  while (end > 0 && payload[end - 1] === 0) end--;
  return Buffer.concat([payload.subarray(0, end), Buffer.from(' ' + text, 'latin1')]);
}

/** The `audit(SEC.MSEC:SERIAL)` stamp of a payload, for building records of the same event. */
export function stampOf(payload: Buffer): string | undefined {
  const close = payload.indexOf(')', 0, 'latin1');
  if (payload.toString('latin1', 0, 6) !== 'audit(' || close < 0) return undefined;
  return payload.toString('latin1', 0, close + 1);
}
