// auditd's remote-logging wire format (lib/private.h): the 16-byte little-endian "managed" header and a stream parser.
import { Buffer } from 'node:buffer';
import { escapeInterp } from '../../records/encode';

/** AUDIT_RMW_HEADER_SIZE */
export const HEADER_SIZE = 16;
/** AUDIT_RMW_MAGIC; chosen by auditd to contain no 0x0a so a server can tell managed frames from ascii lines. */
export const MAGIC = 0xff0000fe;
export const HEADER_VERSION = 0;
/** MAX_AUDIT_MESSAGE_LENGTH: auditd's per-client buffer holds header + payload in this many bytes. */
export const MAX_FRAME = 8970;
/** The largest payload a real auditd server can take in one frame. */
export const MAX_PAYLOAD = MAX_FRAME - HEADER_SIZE;

export const RMW = {
  MESSAGE: 0x00000000,
  HEARTBEAT: 0x00000001,
  ACK: 0x40000000,
  ENDING: 0x40000001,
  DISKLOW: 0x50000001,
  DISKFULL: 0x60000001,
  DISKERROR: 0x60000002,
  REPLY_MASK: 0x40000000,
  FATAL_MASK: 0x20000000,
  WARN_MASK: 0x10000000,
  DETAIL_MASK: 0x000fffff,
} as const;

export interface FrameHeader {
  headerVersion: number;
  messageVersion: number;
  type: number;
  length: number;
  seq: number;
}

export function packHeader(type: number, length: number, seq: number, messageVersion = 0): Buffer {
  const h = Buffer.allocUnsafe(HEADER_SIZE);
  writeHeader(h, 0, type, length, seq, messageVersion);
  return h;
}

export function writeHeader(
  dst: Buffer,
  pos: number,
  type: number,
  length: number,
  seq: number,
  messageVersion = 0,
): void {
  if (length < 0 || length > 0xffff) throw new RangeError(`frame length ${length} does not fit u16`);
  dst.writeUInt32LE(MAGIC, pos);
  dst[pos + 4] = HEADER_VERSION;
  dst[pos + 5] = messageVersion & 0xff;
  dst.writeUInt32LE(type >>> 0, pos + 6);
  dst.writeUInt16LE(length, pos + 10);
  dst.writeUInt32LE(seq >>> 0, pos + 12);
}

/** A frame with its payload (empty for acks without text). */
export function frame(type: number, seq: number, payload: Buffer | string = ''): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  const out = Buffer.allocUnsafe(HEADER_SIZE + p.length);
  writeHeader(out, 0, type, p.length, seq);
  p.copy(out, HEADER_SIZE);
  return out;
}

export function isMagic(b: Buffer, pos = 0): boolean {
  return b.length - pos >= 4 && b.readUInt32LE(pos) === MAGIC;
}

export function unpackHeader(b: Buffer, pos = 0): FrameHeader {
  return {
    headerVersion: b[pos + 4] as number,
    messageVersion: b[pos + 5] as number,
    type: b.readUInt32LE(pos + 6),
    length: b.readUInt16LE(pos + 10),
    seq: b.readUInt32LE(pos + 12),
  };
}

export type ParsedItem =
  | { kind: 'frame'; header: FrameHeader; payload: Buffer }
  /** A newline-terminated record of the ascii format (no acks); the newline is removed. */
  | { kind: 'line'; payload: Buffer }
  | { kind: 'error'; reason: string };

/**
 * Incremental parser for one TCP stream. Like auditd's listener it decides per message whether a managed frame (magic)
 * or an ascii line starts at the current position, and it refuses anything longer than auditd's buffer instead of
 * growing without bound. After an error the stream cannot be resynchronised, so the caller must close it.
 *
 * Chunks are kept as they came and joined once the item they complete is whole (or to read a header), so a frame
 * trickled a byte at a time is copied a bounded number of times, not once per byte (joining at every chunk cost
 * quadratic CPU: 425 ms for one 64 KiB reply sent a byte at a time).
 */
export class FrameParser {
  /** The unparsed bytes: buf[pos..], then the chunks in `more`. */
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private more: Buffer[] = [];
  private moreLen = 0;
  /** An ascii record is waiting for its newline: buf[pos..] and the first `searched` chunks of `more` hold none. */
  private bufSearched = false;
  private searched = 0;
  private failed = false;

  constructor(private readonly maxFrame = MAX_FRAME) {}

  /** Buffered bytes not yet returned. */
  get pending(): number {
    return this.buf.length - this.pos + this.moreLen;
  }

  /** Everything complete in the stream so far, after `chunk`. */
  push(chunk: Buffer): ParsedItem[] {
    this.feed(chunk);
    return this.take(Infinity);
  }

  /**
   * Appends bytes without parsing them. With take(n) a reader can parse only as many items as it is willing to handle
   * now (a rate limit) and read the socket again only once take() has nothing left: then at most one frame plus one
   * chunk is ever held, and no list of items piles up.
   */
  feed(chunk: Buffer): void {
    if (this.failed || chunk.length === 0) return;
    if (this.pending === 0) {
      this.buf = chunk;
      this.pos = 0;
      this.bufSearched = false;
      return;
    }
    this.more.push(chunk);
    this.moreLen += chunk.length;
  }

  /** At most `max` items from the buffered bytes; an error item is the last one this parser ever returns. */
  take(max: number): ParsedItem[] {
    const out: ParsedItem[] = [];
    while (!this.failed && out.length < max) {
      let left = this.buf.length - this.pos;
      // Too few bytes to tell a frame from a line, or to read a header: join what came (fewer than 16 bytes and the
      // chunks after them, each chunk copied here at most once).
      if (left < HEADER_SIZE && this.moreLen > 0) left = this.join();
      if (left === 0) break;
      const pos = this.pos;
      if (left >= 4 && isMagic(this.buf, pos)) {
        if (left < HEADER_SIZE) break;
        const header = unpackHeader(this.buf, pos);
        const total = HEADER_SIZE + header.length;
        if (total > this.maxFrame) {
          out.push(this.fail(`frame of ${total} bytes exceeds ${this.maxFrame}`));
          break;
        }
        if (left < total) {
          if (left + this.moreLen < total) break;
          this.join();
        }
        out.push({
          kind: 'frame',
          header,
          payload: Buffer.from(this.buf.subarray(this.pos + HEADER_SIZE, this.pos + total)),
        });
        this.consume(total);
        continue;
      }
      // Fewer than 4 bytes (and nothing after them) could still become a magic number; a newline would settle it,
      // but none of the magic's bytes is one.
      if (left < 4 && isMagicPrefix(this.buf, pos)) break;
      let nl = this.bufSearched ? -1 : this.buf.indexOf(0x0a, pos);
      if (nl < 0) {
        this.bufSearched = true;
        while (this.searched < this.more.length && !(this.more[this.searched] as Buffer).includes(0x0a))
          this.searched++;
        if (this.searched === this.more.length) {
          if (left + this.moreLen >= this.maxFrame)
            out.push(this.fail(`ascii record longer than ${this.maxFrame} bytes without a newline`));
          break;
        }
        this.join();
        nl = this.buf.indexOf(0x0a, this.pos);
      }
      if (nl - this.pos + 1 > this.maxFrame) {
        out.push(this.fail(`ascii record longer than ${this.maxFrame} bytes`));
        break;
      }
      out.push({ kind: 'line', payload: Buffer.from(this.buf.subarray(this.pos, nl)) });
      this.consume(nl + 1 - this.pos);
    }
    if (this.failed || this.pending === 0) {
      this.buf = Buffer.alloc(0);
      this.pos = 0;
      this.more = [];
      this.moreLen = 0;
    }
    return out;
  }

  /** buf[pos..] and every chunk after it as one buffer (no copy when it is a single chunk); returns its length. */
  private join(): number {
    const left = this.buf.length - this.pos;
    if (left === 0 && this.more.length === 1) this.buf = this.more[0] as Buffer;
    else this.buf = Buffer.concat([this.buf.subarray(this.pos), ...this.more], left + this.moreLen);
    this.pos = 0;
    this.more = [];
    this.moreLen = 0;
    this.bufSearched = false;
    this.searched = 0;
    return this.buf.length;
  }

  private consume(n: number): void {
    this.pos += n;
    this.bufSearched = false;
  }

  private fail(reason: string): ParsedItem {
    this.failed = true;
    return { kind: 'error', reason };
  }
}

/** Whether the 1-3 bytes at pos are the start of the little-endian magic (fe 00 00 ff). */
function isMagicPrefix(b: Buffer, pos: number): boolean {
  const m = [0xfe, 0x00, 0x00, 0xff];
  for (let i = pos; i < b.length && i - pos < 4; i++) if (b[i] !== m[i - pos]) return false;
  return true;
}

/** What a client does with a reply (see replyKind). */
export type ReplyKind = 'ack' | 'warning' | 'cannot-log' | 'ending' | 'invalid';

const REPLY_BITS = RMW.REPLY_MASK | RMW.FATAL_MASK | RMW.WARN_MASK | RMW.DETAIL_MASK;

/**
 * How a client takes a reply type (lib/private.h; audisp-remote's relay_sock_managed): ACK, and a reply with the
 * warning bit (DISKLOW among them), say the record was logged; a reply with the fatal bit (DISKFULL, DISKERROR)
 * that it was not; ENDING that the server is going away. Anything else is not a reply of auditd's listener (a
 * MESSAGE or HEARTBEAT echoed back, a reply bit with an undefined detail, bits the protocol does not have): an
 * echo server or a confused peer would otherwise pass for one that logs everything.
 */
export function replyKind(type: number): ReplyKind {
  if ((type & RMW.REPLY_MASK) === 0 || (type & ~REPLY_BITS) !== 0) return 'invalid';
  if (type === RMW.ACK) return 'ack';
  if (type === RMW.ENDING) return 'ending';
  if ((type & RMW.FATAL_MASK) !== 0) return 'cannot-log';
  if ((type & RMW.WARN_MASK) !== 0) return 'warning';
  return 'invalid';
}

/** Bytes of a reply's text kept for diagnostics and lastError. */
export const MAX_REPLY_TEXT = 512;

/**
 * A reply's text as diagnostics and lastError keep it: at most MAX_REPLY_TEXT bytes, control bytes, DEL, bytes above
 * 0x7e and the backslash written `\ooo` (the server chose every byte of it).
 */
export function replyText(payload: Buffer): string {
  const s = escapeInterp(payload.toString('latin1', 0, Math.min(payload.length, MAX_REPLY_TEXT)));
  return payload.length > MAX_REPLY_TEXT ? `${s}... (${payload.length} bytes)` : s;
}

/** Reply text is at most what auditd's client reads; a longer reply means the stream is out of sync. */
export function describeReply(type: number): string {
  switch (type) {
    case RMW.MESSAGE:
      return 'message';
    case RMW.HEARTBEAT:
      return 'heartbeat';
    case RMW.ACK:
      return 'ack';
    case RMW.ENDING:
      return 'ending';
    case RMW.DISKLOW:
      return 'disk-low';
    case RMW.DISKFULL:
      return 'disk-full';
    case RMW.DISKERROR:
      return 'disk-error';
    default:
      if (type & RMW.FATAL_MASK) return `error-0x${type.toString(16)}`;
      if (type & RMW.WARN_MASK) return `warning-0x${type.toString(16)}`;
      return `type-0x${type.toString(16)}`;
  }
}
