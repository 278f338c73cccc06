// One kernel record: header parse of `audit(SEC.MSEC:SERIAL): body`; its fields are read with ./fields.ts.
import { Buffer } from 'node:buffer';
import type { EventRecord } from './event';
import { bufferView, indexOfByte } from '../bytes';

/**
 * A record as the reassembler and the writer see it; `payload` holds its bytes (trailing NULs dropped). It is an
 * EventRecord as it stands, so an event's records go to routing, queues and logs without a copy per record.
 */
export interface AuditRecord extends EventRecord {
  type: number;
  sec: number;
  msec: number;
  serial: number;
  /** Payload bytes up to (not including) the first NUL: what auditd prints with `%.*s`. */
  payload: Buffer;
  /** Index in `payload` of the first body byte (after `): `); payload.length when the body is empty. */
  bodyStart: number;
  /** The header did not parse; sec/msec/serial are 0 and the record is kept as an event of its own. */
  malformed: boolean;
}

const C_NUL = 0x00;
const C_SPACE = 0x20;
const C_RPAREN = 0x29;
const C_DOT = 0x2e;
const C_0 = 0x30;
const C_9 = 0x39;
const C_COLON = 0x3a;

/** End of the meaningful payload: the kernel may NUL-terminate or NUL-pad, and auditd stops at the first NUL. */
export function payloadEnd(buf: Buffer, start: number, end: number): number {
  const nul = indexOfByte(buf, C_NUL, start);
  return nul >= 0 && nul < end ? nul : end;
}

/**
 * Parses the header of buf[start, end). With `copy` the record owns a copy of the bytes (needed when the receive
 * buffer is reused); without it `payload` is a view and the caller keeps the memory alive. Never throws.
 */
export function parseRecord(type: number, buf: Buffer, start = 0, end = buf.length, copy = false): AuditRecord {
  if (start < 0) start = 0;
  if (start > buf.length) start = buf.length;
  if (end > buf.length) end = buf.length;
  if (end < start) end = start;
  const stop = payloadEnd(buf, start, end);
  // Buffer.from(arrayBuffer, offset, length) makes the view without subarray's extra checks: about a quarter less.
  const view = bufferView(buf, start, stop - start);
  const payload = copy ? Buffer.from(view) : view;
  const rec: AuditRecord = { type, payload, sec: 0, msec: 0, serial: 0, bodyStart: 0, malformed: true };
  parseHeaderInto(rec);
  return rec;
}

/** Fills sec/msec/serial/bodyStart/malformed from rec.payload; one pass over at most ~40 bytes. */
export function parseHeaderInto(rec: AuditRecord): void {
  parseHeaderAt(rec, rec.payload, 0, rec.payload.length);
}

/**
 * parseHeaderInto for the bytes b[start, n) (n: the payload's end, its first NUL excluded), without a view of them:
 * `bodyStart` counts from `start`. The reassembler reads EOE records this way (their stamp is all it needs).
 */
export function parseHeaderAt(
  rec: Pick<AuditRecord, 'sec' | 'msec' | 'serial' | 'bodyStart' | 'malformed'>,
  b: Buffer,
  start: number,
  n: number,
): void {
  // Parsed into locals and stored once: the callers' records come in two shapes (AuditRecord, the EOE stamp), so
  // each store is a polymorphic one; a malformed header stores the zeros instead.
  let i = start + 6;
  let sec = 0;
  let msec = 0;
  let serial = 0;
  let ok = false;
  if (n - start >= 12 && hasAuditPrefix(b, start)) {
    let digits = 0;
    while (i < n && b[i]! >= C_0 && b[i]! <= C_9 && digits < 16) {
      sec = sec * 10 + (b[i]! - C_0);
      i++;
      digits++;
    }
    if (digits !== 0 && i < n && b[i] === C_DOT) {
      i++;
      digits = 0;
      while (i < n && b[i]! >= C_0 && b[i]! <= C_9 && digits < 9) {
        msec = msec * 10 + (b[i]! - C_0);
        i++;
        digits++;
      }
      if (digits !== 0 && i < n && b[i] === C_COLON) {
        i++;
        digits = 0;
        while (i < n && b[i]! >= C_0 && b[i]! <= C_9 && digits < 16) {
          serial = serial * 10 + (b[i]! - C_0);
          i++;
          digits++;
        }
        if (digits !== 0 && i + 1 < n && b[i] === C_RPAREN && b[i + 1] === C_COLON) {
          i += 2;
          if (i < n && b[i] === C_SPACE) i++;
          ok = true;
        }
      }
    }
  }
  rec.malformed = !ok;
  rec.sec = ok ? sec : 0;
  rec.msec = ok ? msec : 0;
  rec.serial = ok ? serial : 0;
  rec.bodyStart = ok ? i - start : 0;
}

/** Whether b[at..] starts with `audit(`: byte by byte against constants (no table load per byte). */
export function hasAuditPrefix(b: Buffer, at: number): boolean {
  return (
    b.length - at >= 6 &&
    b[at] === 0x61 &&
    b[at + 1] === 0x75 &&
    b[at + 2] === 0x64 &&
    b[at + 3] === 0x69 &&
    b[at + 4] === 0x74 &&
    b[at + 5] === 0x28
  );
}

/** Where the fields of a payload start (after `audit(...): `), or 0 when the header is malformed. */
export function bodyStartOf(b: Buffer): number {
  // The header is at most ~40 bytes: a short loop beats a native indexOf call.
  const n = Math.min(b.length, 64);
  for (let i = 0; i + 2 < n; i++) if (b[i] === 0x29 && b[i + 1] === 0x3a && b[i + 2] === C_SPACE) return i + 3;
  return 0;
}

/** Body bytes of a record (a view). */
export function recordBody(rec: AuditRecord): Buffer {
  return rec.payload.subarray(rec.bodyStart);
}

/** `audit(SEC.MSEC:SERIAL)` identity of a record as text, e.g. for logs and tests. */
export function stampText(rec: AuditRecord): string {
  return `${rec.sec}.${String(rec.msec).padStart(3, '0')}:${rec.serial}`;
}

export function hexDigit(c: number): number {
  if (c >= C_0 && c <= C_9) return c - C_0;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}
