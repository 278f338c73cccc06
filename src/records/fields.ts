// The one set of record field readers: single fields read from payload bytes (`audit(...): a=1 b="x"`) without a full
// parse, as routing, the writer and the tests need them, and the key field's codec.
import { Buffer } from 'node:buffer';
import { needsEncoding, textNeedsEncoding } from './encode';
import { bodyStartOf, hasAuditPrefix, hexDigit } from './record';
import { indexOfByte, indexOfBytes } from '../bytes';

const C_SPACE = 0x20;
const C_DQUOTE = 0x22;
const C_SQUOTE = 0x27;
const C_0 = 0x30;
const C_9 = 0x39;
const C_EQ = 0x3d;

/** AUDIT_KEY_SEPARATOR: several keys of one rule are joined with \x01, and the record then hex-encodes them. */
const KEY_SEP = '\x01';

const keyCache = new Map<string, Buffer>();
function spacedKey(key: string): Buffer {
  let k = keyCache.get(key);
  if (k === undefined) {
    k = Buffer.from(` ${key}=`, 'latin1');
    keyCache.set(key, k);
  }
  return k;
}

/**
 * Start index of the value of the first `key=` in b[from..] that begins a field (at `from` or after a space), or -1,
 * so `ppid=` never matches `pid=`. Uses Buffer.indexOf (memmem) so the cost is one native scan, not a key=value split.
 */
export function findField(b: Buffer, from: number, key: string): number {
  const k = spacedKey(key);
  const klen = k.length - 1;
  // The first field has no leading space.
  let match = from + klen <= b.length;
  for (let j = 0; match && j < klen; j++) if (b[from + j] !== k[j + 1]) match = false;
  if (match) return from + klen;
  const at = indexOfBytes(b, k, from);
  return at < 0 ? -1 : at + k.length;
}

/** End (exclusive) of a value that starts at `vs`: quoted values end after the closing quote, bare ones at a space. */
export function fieldEnd(b: Buffer, vs: number): number {
  const n = b.length;
  const q = b[vs];
  if (q === C_DQUOTE || q === C_SQUOTE) {
    const close = indexOfByte(b, q, vs + 1);
    return close < 0 ? n : close + 1;
  }
  const sp = indexOfByte(b, C_SPACE, vs);
  return sp < 0 ? n : sp;
}

/**
 * The raw text of field `name` (quoted values with their quotes), or undefined. `from` is where the fields start:
 * after the `audit(...): ` header by default.
 */
export function fieldText(payload: Buffer, name: string, from = bodyStartOf(payload)): string | undefined {
  const vs = findField(payload, from, name);
  return vs < 0 ? undefined : payload.toString('latin1', vs, fieldEnd(payload, vs));
}

/** The text of field `name` with its surrounding quotes removed, or undefined. */
export function fieldValue(payload: Buffer, name: string, from = bodyStartOf(payload)): string | undefined {
  const vs = findField(payload, from, name);
  if (vs < 0) return undefined;
  let ve = fieldEnd(payload, vs);
  let s = vs;
  const q = payload[vs];
  if ((q === C_DQUOTE || q === C_SQUOTE) && ve - vs >= 2 && payload[ve - 1] === q) {
    s++;
    ve--;
  }
  return payload.toString('latin1', s, ve);
}

/** A decimal field (optionally negative) as a number, read from the bytes; undefined when absent or not an integer. */
export function fieldInt(payload: Buffer, name: string, from = bodyStartOf(payload)): number | undefined {
  const vs = findField(payload, from, name);
  return vs < 0 ? undefined : intAt(payload, vs);
}

/** The decimal value (optionally negative) that starts at `vs`, up to a space or the end; undefined otherwise. */
export function intAt(b: Buffer, vs: number): number | undefined {
  let i = vs;
  let neg = false;
  if (b[i] === 0x2d) {
    neg = true;
    i++;
  }
  let v = 0;
  let digits = 0;
  while (i < b.length && b[i]! >= C_0 && b[i]! <= C_9) {
    v = v * 10 + (b[i]! - C_0);
    i++;
    digits++;
  }
  if (digits === 0 || (i < b.length && b[i] !== C_SPACE)) return undefined;
  return neg ? -v : v;
}

/** A hex field (arch=c000003e) as a number; undefined when absent or malformed. */
export function fieldHex(payload: Buffer, name: string, from = bodyStartOf(payload)): number | undefined {
  const vs = findField(payload, from, name);
  return vs < 0 ? undefined : hexAt(payload, vs);
}

/** The hex value that starts at `vs`, up to a space or the end; undefined when empty or not hex. */
export function hexAt(b: Buffer, vs: number): number | undefined {
  let v = 0;
  let i = vs;
  for (; i < b.length && b[i] !== C_SPACE; i++) {
    const d = hexDigit(b[i]!);
    if (d < 0) return undefined;
    v = v * 16 + d;
  }
  return i === vs ? undefined : v;
}

/** Walks `key=value` fields of a body without allocating; calls fn(keyStart, keyEnd, valueStart, valueEnd). */
export function forEachField(
  b: Buffer,
  from: number,
  fn: (ks: number, ke: number, vs: number, ve: number) => void,
): void {
  const n = b.length;
  let i = from;
  while (i < n) {
    while (i < n && b[i] === C_SPACE) i++;
    if (i >= n) break;
    const ks = i;
    while (i < n && b[i] !== C_EQ && b[i] !== C_SPACE) i++;
    if (i >= n || b[i] !== C_EQ) continue; // a bare word: skip it
    const ke = i;
    const vs = i + 1;
    const ve = vs < n ? fieldEnd(b, vs) : n;
    fn(ks, ke, vs, ve);
    i = ve;
  }
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

/**
 * Encodes keys as the kernel prints them (audit_log_untrustedstring(), as auditd's audit_encode_nv_string()): one key
 * quoted when every byte is printable ASCII other than `"` and a space; otherwise, and always for several keys (joined
 * with \x01), the uppercase hex of the bytes; none as (null). Keys are byte strings, one char per byte: what
 * decodeKeys() returns and the rule union keeps (a rules file's UTF-8 bytes). A string holding a char above U+00FF is
 * not one: it is taken as text and its UTF-8 bytes are encoded. Never latin1 of such a char, which keeps its low byte
 * only: U+0122 became a `"` and U+0120 a space, and a tenant's key ended the key field and wrote fields of its own.
 */
export function encodeKeys(keys: readonly string[]): string {
  if (keys.length === 0) return '(null)';
  if (keys.length === 1 && !textNeedsEncoding(keys[0]!)) return `"${keys[0]}"`;
  const joined = keys.join(KEY_SEP);
  const bytes = Buffer.from(joined, isByteString(joined) ? 'latin1' : 'utf8');
  return needsEncoding(bytes) ? bytes.toString('hex').toUpperCase() : `"${joined}"`;
}

/** Whether every char of s is a byte (at most U+00FF). */
function isByteString(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

/**
 * A key as records carry it: its UTF-8 bytes, one char per byte (the form decodeKeys() returns). Rules files are
 * UTF-8 text; the kernel keeps and prints the bytes. ASCII keys come back as they are.
 */
export function keyBytes(key: string): string {
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) > 0x7f) return Buffer.from(key, 'utf8').toString('latin1');
  return key;
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

/** A new buffer holding head[0, headEnd) then tail: one allocation, every byte of it written here. */
export function joinBytes(head: Buffer, headEnd: number, tail: Buffer): Buffer {
  const out = Buffer.allocUnsafe(headEnd + tail.length);
  head.copy(out, 0, 0, headEnd);
  tail.copy(out, headEnd);
  return out;
}

/** Appends `suffix` (e.g. ` name=value`, made once by the caller) to a payload, before any trailing NULs. */
export function appendBytes(payload: Buffer, suffix: Buffer): Buffer {
  let end = payload.length;
  while (end > 0 && payload[end - 1] === 0) end--;
  return joinBytes(payload, end, suffix);
}

/** Where the `audit(SEC.MSEC:SERIAL)` stamp of a payload ends (just past its `)`), or -1 when it has none. */
export function stampEnd(payload: Buffer): number {
  if (payload.length < 7 || !hasAuditPrefix(payload, 0)) return -1;
  const close = indexOfByte(payload, 0x29, 6);
  return close < 0 ? -1 : close + 1;
}
