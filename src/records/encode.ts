// Encoders for untrusted text in audit records: the kernel's quoted-or-hex form and the octal escape of interpreted
// values.
import { Buffer } from 'node:buffer';

const C_DQUOTE = 0x22;
const C_BACKSLASH = 0x5c;

/**
 * Whether a value needs hex encoding: the kernel's audit_string_contains_control() and libaudit's
 * audit_value_needs_encoding() both flag a double quote, a space or control byte (< 0x21) and any byte above 0x7e.
 */
export function needsEncoding(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c === C_DQUOTE || c < 0x21 || c > 0x7e) return true;
  }
  return false;
}

/** needsEncoding() of a string whose chars are its bytes (latin1), checked with no buffer made. */
export function textNeedsEncoding(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === C_DQUOTE || c < 0x21 || c > 0x7e) return true;
  }
  return false;
}

/**
 * A value as the kernel's audit_log_untrustedstring() writes it: `"text"` when every byte is printable ASCII other
 * than a double quote and a space, uppercase hex of its bytes otherwise. Strings are taken as UTF-8 (a JS string
 * written as latin1 would lose the high byte of U+010A and turn it into a newline). The result is always printable
 * ASCII without spaces, so it can never end a record, start a field or reach the ENRICHED separator.
 */
export function encodeUntrusted(value: string | Uint8Array): string {
  const b =
    typeof value === 'string'
      ? Buffer.from(value, 'utf8')
      : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (b.length === 0) return '""';
  return needsEncoding(b) ? b.toString('hex').toUpperCase() : `"${b.toString('latin1')}"`;
}

const utf8Len = (cp: number): number => (cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);

/**
 * `s` cut so that its UTF-8 form, `...` included, is at most `max` bytes, at a code point boundary: never half a
 * multi-byte sequence or a surrogate pair. (A lone surrogate counts 3 bytes, as Buffer.from writes it: U+FFFD.)
 */
export function cutUtf8(s: string, max: number): string {
  // Four UTF-8 bytes at most per UTF-16 unit pair, three per unit: short strings need no walk.
  if (s.length * 3 <= max) return s;
  const budget = max - 3;
  let bytes = 0;
  let end = -1;
  let i = 0;
  for (const ch of s) {
    const n = utf8Len(ch.codePointAt(0)!);
    if (end < 0 && bytes + n > budget) end = i;
    bytes += n;
    if (bytes > max) return `${s.slice(0, end)}...`;
    i += ch.length;
  }
  return s;
}

/** `NAME=` followed by encodeUntrusted(value): audit_encode_nv_string(). */
export function encodeUntrustedNv(name: string, value: string | Uint8Array): string {
  return `${name}=${encodeUntrusted(value)}`;
}

/** Inverse of encodeUntrusted for values it produced: the bytes a quoted or hex value stands for, or null. */
export function decodeUntrusted(text: string): Buffer | null {
  if (text.length >= 2 && text.charCodeAt(0) === C_DQUOTE && text.charCodeAt(text.length - 1) === C_DQUOTE) {
    return Buffer.from(text.slice(1, -1), 'latin1');
  }
  if (text.length % 2 !== 0 || !/^[0-9A-F]*$/.test(text)) return null;
  return Buffer.from(text, 'hex');
}

/**
 * A byte of an interpreted value that is written as `\ooo`: controls (0x1d, the ENRICHED separator, and \n, \r
 * included), DEL, everything above 0x7e, and the backslash itself so that the escape cannot be forged.
 */
function escapedByte(c: number): boolean {
  return c < 0x20 || c > 0x7e || c === C_BACKSLASH;
}

/** The length of escapeInterp() of the bytes b[start..end) taken as latin1, with no string made. */
export function escapedLength(b: Uint8Array, start: number, end: number): number {
  let n = end - start;
  for (let i = start; i < end; i++) if (escapedByte(b[i]!)) n += 3;
  return n;
}

/** `\\ooo` of one byte: how auparse prints an escaped byte, and the one escape of auditmux's interpreted text. */
export function octalByte(c: number): string {
  return '\\' + ((c >> 6) & 3) + ((c >> 3) & 7) + (c & 7);
}

/**
 * The octal escape auditmux applies to every interpreted (ENRICHED) value before it is written: the form of
 * auparse's tty escape (`\012` for a newline), extended to DEL, bytes above 0x7e and the backslash. Input is a
 * latin1 string (one char per byte), as the formatter holds decoded sockaddr paths; the result is printable ASCII.
 * Values without such bytes come back unchanged (the same string), so ordinary records stay byte-identical to auditd's.
 */
export function escapeInterp(s: string): string {
  let i = 0;
  const n = s.length;
  while (i < n && !escapedByte(s.charCodeAt(i))) i++;
  if (i === n) return s;
  let out = s.slice(0, i);
  for (; i < n; i++) {
    const c = s.charCodeAt(i) & 0xff;
    if (escapedByte(c)) out += octalByte(c);
    else out += s[i];
  }
  return out;
}

/** Inverse of escapeInterp: `\ooo` back to its byte; anything else as it is. Returns a latin1 string. */
export function unescapeInterp(s: string): string {
  if (s.indexOf('\\') < 0) return s;
  return s.replace(/\\([0-3][0-7][0-7])/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** A `name=value` token auditmux itself composes (numbers, words, paths of its own): no quotes, spaces or '='. */
const PLAIN_TOKEN = /^[a-z][a-z0-9_-]*=[\x21\x23-\x3c\x3e-\x7e]+$/;
/** `name="..."` with a JSON-quoted value: how some callers wrap an error message. */
const JSON_TOKEN = /^([a-z][a-z0-9_-]*)=("(?:[^"\\]|\\.)*")$/;

/**
 * The detail part of a record auditmux writes about itself, made safe to splice into a record body: kept when it is
 * only plain `name=value` tokens, a single `name="json string"` re-encoded with encodeUntrusted, and anything else
 * (free text such as an error message carrying a tenant's file name) written whole as `fallback=` encoded.
 */
export function encodeDetail(detail: string, fallback = 'reason'): string {
  if (detail === '') return '';
  const tokens = detail.split(' ');
  if (tokens.every((t) => PLAIN_TOKEN.test(t))) return detail;
  const m = JSON_TOKEN.exec(detail);
  if (m) {
    try {
      const v: unknown = JSON.parse(m[2]!);
      if (typeof v === 'string') return encodeUntrustedNv(m[1]!, v);
    } catch {
      // not JSON after all: encoded whole below
    }
  }
  return encodeUntrustedNv(fallback, detail);
}
