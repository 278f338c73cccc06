// Framing between the host daemon and an auxiliary daemon's process: length-prefixed binary frames over a pipe.
//
// host → aux: CONFIG (JSON), EVENT (seq, id, records), ROTATE, RESUME, STOP
// aux → host: READY, ACK (cumulative seq: everything up to it is in the aux daemon's log), ERROR (JSON), STATS (JSON)
import type { EventRecord } from '../records/event';

export const Frame = {
  CONFIG: 1,
  EVENT: 2,
  ROTATE: 3,
  RESUME: 4,
  STOP: 5,
  READY: 10,
  ACK: 11,
  ERROR: 12,
  STATS: 13,
} as const;

/** Upper bound on one frame: an event of many long records, well under memory limits. */
export const MAX_FRAME = 16 * 1024 * 1024;

export type { EventRecord } from '../records/event';

/** frame := u32 length of (kind + body) | u8 kind | body */
export function encodeFrame(kind: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.allocUnsafe(5 + body.length);
  b.writeUInt32LE(1 + body.length, 0);
  b.writeUInt8(kind, 4);
  body.copy(b, 5);
  return b;
}

export function encodeJsonFrame(kind: number, v: unknown): Buffer {
  return encodeFrame(kind, Buffer.from(JSON.stringify(v), 'utf8'));
}

/** EVENT body := f64 seq | u16 nrec | (u16 type | u32 len | bytes)* */
export function encodeEvent(seq: number, records: readonly EventRecord[]): Buffer {
  let size = 8 + 2;
  for (const r of records) size += 6 + r.payload.length;
  const body = Buffer.allocUnsafe(size);
  body.writeDoubleLE(seq, 0);
  body.writeUInt16LE(records.length, 8);
  let off = 10;
  for (const r of records) {
    body.writeUInt16LE(r.type, off);
    body.writeUInt32LE(r.payload.length, off + 2);
    r.payload.copy(body, off + 6);
    off += 6 + r.payload.length;
  }
  return encodeFrame(Frame.EVENT, body);
}

export function decodeEvent(body: Buffer): { seq: number; records: EventRecord[] } {
  if (body.length < 10) throw new Error('EVENT frame too short');
  const seq = body.readDoubleLE(0);
  const n = body.readUInt16LE(8);
  const records: EventRecord[] = [];
  let off = 10;
  for (let i = 0; i < n; i++) {
    if (off + 6 > body.length) throw new Error('EVENT frame truncated');
    const type = body.readUInt16LE(off);
    const len = body.readUInt32LE(off + 2);
    if (off + 6 + len > body.length) throw new Error('EVENT record truncated');
    records.push({ type, payload: body.subarray(off + 6, off + 6 + len) });
    off += 6 + len;
  }
  return { seq, records };
}

export function encodeAck(seq: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeDoubleLE(seq, 0);
  return encodeFrame(Frame.ACK, b);
}

/** Splits a byte stream into frames; a frame longer than MAX_FRAME is a protocol error. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (kind: number, body: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let off = 0;
    while (this.buf.length - off >= 4) {
      const len = this.buf.readUInt32LE(off);
      if (len < 1 || len > MAX_FRAME) throw new Error(`bad frame length ${len}`);
      if (this.buf.length - off - 4 < len) break;
      const kind = this.buf.readUInt8(off + 4);
      const body = this.buf.subarray(off + 5, off + 4 + len);
      off += 4 + len;
      this.onFrame(kind, body);
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(off));
  }
}

/** The event id `SEC.MSEC:SERIAL` of a record payload, or '' when the header is malformed. */
export function eventIdOf(payload: Buffer): string {
  const open = payload.indexOf(40); // '('
  const close = payload.indexOf(41, open + 1); // ')'
  if (open < 0 || close < 0 || close - open > 40) return '';
  return payload.toString('latin1', open + 1, close);
}
