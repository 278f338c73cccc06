// Framing between the host daemon and an auxiliary daemon's process: length-prefixed binary frames over a pipe.
//
// host → aux: CONFIG (JSON), EVENT (seq, id, records), ROTATE, RESUME, STOP, CONTAINER (a routed container's
// metadata), FORGET (a container the aux daemon no longer needs)
// aux → host: READY, ACK (cumulative seq: everything up to it is in the aux daemon's log), ERROR (JSON), STATS (JSON)
import { Buffer } from 'node:buffer';
import type { EventRecord } from '../records/event';
import { bufferView, copyBytes, putU16le, putU32le, u16le, u32le } from '../bytes';
import { AuditmuxError, ExitCode } from '../errors';
import { AUDIT_CID_UNSET } from '../kernel/constants';
import { MAX_CONTAINER_JSON, parseContainerJson, type ContainerEntry } from '../output/container-fields';

export const Frame = {
  CONFIG: 1,
  EVENT: 2,
  ROTATE: 3,
  RESUME: 4,
  STOP: 5,
  CONTAINER: 6,
  FORGET: 7,
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

/**
 * EVENT body := f64 seq | u16 nrec | (u16 type | u32 len | bytes)*. The whole frame is made in one buffer, header
 * included: an event routed to a process daemon costs one allocation and one copy of its records.
 */
export function encodeEvent(seq: number, records: readonly EventRecord[]): Buffer {
  let size = 5 + 8 + 2;
  for (const r of records) size += 6 + r.payload.length;
  const f = Buffer.allocUnsafe(size);
  putU32le(f, 0, size - 4);
  f[4] = Frame.EVENT;
  f.writeDoubleLE(seq, 5);
  putU16le(f, 13, records.length);
  let off = 15;
  for (const r of records) {
    const n = r.payload.length;
    putU16le(f, off, r.type);
    putU32le(f, off + 2, n);
    copyBytes(f, r.payload, off + 6);
    off += 6 + n;
  }
  return f;
}

/** Where an EVENT body's records start: after `f64 seq | u16 nrec`. */
export const EVENT_RECORDS_AT = 10;

/**
 * Checks an EVENT body (the errors decodeEvent throws, before any record is used) and returns its record count; the
 * records then lie from EVENT_RECORDS_AT on, each `u16 type | u32 len | bytes`.
 */
export function checkEvent(body: Buffer): number {
  if (body.length < EVENT_RECORDS_AT) throw new Error('EVENT frame too short');
  // Once per event in a process daemon (writeFrame): reads without Buffer methods (src/bytes.ts), bounds checked here.
  const n = u16le(body, 8);
  let off = EVENT_RECORDS_AT;
  for (let i = 0; i < n; i++) {
    if (off + 6 > body.length) throw new Error('EVENT frame truncated');
    const len = u32le(body, off + 2);
    if (off + 6 + len > body.length) throw new Error('EVENT record truncated');
    off += 6 + len;
  }
  return n;
}

export function decodeEvent(body: Buffer): { seq: number; records: EventRecord[] } {
  const n = checkEvent(body);
  const records: EventRecord[] = [];
  let off = EVENT_RECORDS_AT;
  for (let i = 0; i < n; i++) {
    const len = u32le(body, off + 2);
    records.push({ type: u16le(body, off), payload: bufferView(body, off + 6, len) });
    off += 6 + len;
  }
  return { seq: body.readDoubleLE(0), records };
}

export function encodeAck(seq: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeDoubleLE(seq, 0);
  return encodeFrame(Frame.ACK, b);
}

/**
 * The largest frame an aux process sends the host (READY, ACK, ERROR, STATS: all small). The host reads them with
 * this limit, not MAX_FRAME: the process may be a tenant's, and a frame is held in memory until it is whole.
 */
export const MAX_AUX_FRAME = 64 * 1024;

/**
 * Splits a byte stream into frames; a frame longer than `maxFrame` is a protocol error, after which nothing more is
 * read (the caller stops the sender). The chunks of an incomplete frame are kept as they came and joined once the
 * frame is whole: joining at every chunk would copy a frame's bytes once per chunk, quadratic in its size, and a peer
 * trickling a large frame in small pieces could keep the host's event loop busy with copies.
 */
export class FrameReader {
  private parts: Buffer[] = [];
  private size = 0;
  private failed = false;

  constructor(
    private readonly onFrame: (kind: number, body: Buffer) => void,
    private readonly maxFrame = MAX_FRAME,
  ) {}

  push(chunk: Buffer): void {
    if (this.failed) return;
    this.parts.push(chunk);
    this.size += chunk.length;
    if (this.size < 4) return;
    // A frame's first piece shorter than its 4-byte length: the pieces are joined once, here, so the length is read
    // from one buffer from now on. Joining 4 bytes at every later piece walked the whole list each time: a frame
    // trickled a byte at a time cost quadratic CPU (64 KiB, 108 s of the host's event loop).
    if (this.parts[0]!.length < 4) this.parts = [Buffer.concat(this.parts, this.size)];
    const first = this.parts[0]!;
    const len = u32le(first, 0);
    if (len < 1 || len > this.maxFrame) return this.fail(`bad frame length ${len}`);
    if (this.size - 4 < len) return;
    const buf = this.parts.length === 1 ? first : Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    let off = 0;
    try {
      while (buf.length - off >= 4) {
        // Per frame, a process daemon's every event: reads and a view without Buffer methods (src/bytes.ts).
        const n = u32le(buf, off);
        if (n < 1 || n > this.maxFrame) return this.fail(`bad frame length ${n}`);
        if (buf.length - off - 4 < n) break;
        const kind = buf[off + 4]!;
        const body = bufferView(buf, off + 5, n - 1);
        off += 4 + n;
        this.onFrame(kind, body);
      }
    } catch (e) {
      // A frame its handler refused: the frames after it are not read either (none is read twice).
      this.failed = true;
      throw e;
    }
    if (off < buf.length) {
      const rest = Buffer.from(buf.subarray(off));
      this.parts = [rest];
      this.size = rest.length;
    }
  }

  private fail(message: string): never {
    this.failed = true;
    this.parts = [];
    this.size = 0;
    throw new Error(message);
  }
}

/** A frame the aux process cannot use: it reports the reason to the host and goes on with the next frame. */
export class AuxFrameError extends AuditmuxError {
  constructor(message: string) {
    super('E_AUX_FRAME', message, ExitCode.FAILURE);
  }
}

/** The largest contid, 2^64-1 (AUDIT_CID_UNSET is (u64)-1): 20 digits. */
const CONTID_MAX = AUDIT_CID_UNSET;
/** Strict UTF-8: a container's JSON text is never repaired into something else. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A contid as the frames carry it: decimal without leading zeros, at most 2^64-1. */
function contidText(body: Buffer, end: number, what: string): string {
  if (end < 1 || end > 20) throw new AuxFrameError(`${what} frame: contid of ${end} bytes (1-20 digits)`);
  for (let i = 0; i < end; i++) {
    const c = body[i]!;
    if (c < 0x30 || c > 0x39) throw new AuxFrameError(`${what} frame: contid has a byte 0x${c.toString(16)}`);
  }
  if (end > 1 && body[0] === 0x30) throw new AuxFrameError(`${what} frame: contid has a leading zero`);
  const t = body.toString('latin1', 0, end);
  if (BigInt(t) > CONTID_MAX) throw new AuxFrameError(`${what} frame: contid ${t} is above 2^64-1`);
  return t;
}

/** CONTAINER body := contid (decimal) | 0x20 | the container's JSON text (UTF-8, container-fields.ts's form) */
export function encodeContainer(contid: string, json: string): Buffer {
  return encodeFrame(Frame.CONTAINER, Buffer.from(`${contid} ${json}`, 'utf8'));
}

/** FORGET body := contid (decimal) */
export function encodeForget(contid: string): Buffer {
  return encodeFrame(Frame.FORGET, Buffer.from(contid, 'latin1'));
}

/**
 * A CONTAINER body, checked as input from outside: a bounded size, a valid contid, strict UTF-8 and a container object
 * that parseContainerJson accepts (known fields, string values, the caps of container-fields.ts). Throws AuxFrameError.
 */
export function decodeContainer(body: Buffer): { contid: string; entry: ContainerEntry } {
  if (body.length > 21 + MAX_CONTAINER_JSON)
    throw new AuxFrameError(`CONTAINER frame of ${body.length} bytes exceeds ${21 + MAX_CONTAINER_JSON}`);
  const sp = body.indexOf(0x20);
  if (sp < 0 || sp > 20) throw new AuxFrameError('CONTAINER frame: no contid before the container');
  const contid = contidText(body, sp, 'CONTAINER');
  let text: string;
  try {
    text = UTF8.decode(body.subarray(sp + 1));
  } catch {
    throw new AuxFrameError(`CONTAINER frame for contid ${contid}: not UTF-8`);
  }
  const entry = parseContainerJson(text);
  if (!entry) throw new AuxFrameError(`CONTAINER frame for contid ${contid}: not a container object`);
  return { contid, entry };
}

/** A FORGET body: the contid alone. Throws AuxFrameError. */
export function decodeForget(body: Buffer): string {
  return contidText(body, body.length, 'FORGET');
}

/** The event id `SEC.MSEC:SERIAL` of a record payload, or '' when the header is malformed. */
export function eventIdOf(payload: Buffer): string {
  const open = payload.indexOf(40); // '('
  const close = payload.indexOf(41, open + 1); // ')'
  if (open < 0 || close < 0 || close - open > 40) return '';
  return payload.toString('latin1', open + 1, close);
}
