// The lines the logs of this process made last: another log of the same line style copies one instead of formatting.
import type { Buffer } from 'node:buffer';
import { copyBytes } from '../bytes';
import type { LineStyle } from './format';

/**
 * A log whose buffer holds lines another may copy: `emptied` counts the times the buffer was written out and reused
 * (a line is only where it was made while the count is unchanged).
 */
export interface LineHolder {
  /**
   * Where the log's line buffer lies: its ArrayBuffer and offset, read once (copies alternate between logs' buffers
   * and a batch's, so a view made through bytesView read the `buffer` and `byteOffset` accessors at every copy).
   */
  readonly lineArrayBuffer: ArrayBuffer;
  readonly lineByteOffset: number;
  readonly emptied: number;
}

/**
 * Lines remembered, each in the slot its record's place picks: an event's records, written to several logs one log
 * after the other, fit in it (a record whose slot a later one took is formatted again, never mistaken).
 */
const SLOT_BITS = 6;
const SLOTS = 1 << SLOT_BITS;

/**
 * The slot of a record: its range (in a batch's buffer, or the whole of a payload of its own), type and style. Why a
 * slot and not a ring searched newest first: most lookups find nothing (the first log to write a record, the host
 * alone), and a search of every slot cost about 100 ns an event. (Not the payload's byteOffset: V8 reads a typed
 * array's accessors through a generic inline-cache call even in optimised code.)
 */
function slotOf(type: number, srcStart: number, srcEnd: number, style: LineStyle): number {
  const h = Math.imul(srcStart ^ Math.imul(srcEnd ^ (type << 12) ^ (style.id << 24), 0x85ebca6b), 0x9e3779b1);
  return h >>> (32 - SLOT_BITS);
}

/**
 * Why: an event routed to an auxiliary daemon and kept by the host goes to two logs, record objects shared, and each
 * formatted every record again (an ENRICHED line's interpretation most of all). A record is recognised by where its
 * bytes lie: its payload object (a view of the kernel's batch or a copy), or the batch and the range a record passed
 * through lies in (src/daemon/streamed-event.ts). Those bytes do not change while the batch is read; the record
 * path ends every line's time here at the batch's end (endBatch), before the batch's buffer is filled again.
 */
export class RecentLines {
  private readonly payloads: Array<Buffer | null> = new Array<Buffer | null>(SLOTS).fill(null);
  private readonly srcStarts = new Int32Array(SLOTS);
  private readonly srcEnds = new Int32Array(SLOTS);
  private readonly styles: Array<LineStyle | null> = new Array<LineStyle | null>(SLOTS).fill(null);
  private readonly holders: Array<LineHolder | null> = new Array<LineHolder | null>(SLOTS).fill(null);
  private readonly types = new Int32Array(SLOTS);
  private readonly emptied = new Float64Array(SLOTS);
  private readonly starts = new Int32Array(SLOTS);
  private readonly ends = new Int32Array(SLOTS);
  /** The kernel batch each line was noted in; a line is copied only within its batch (endBatch). */
  private readonly batches = new Float64Array(SLOTS);
  private batch = 0;
  /** Lines copied so far (read by tests). */
  copied = 0;

  /** A text log of `style` opens: with another of the same style, lines are noted and looked for (shares()). */
  join(style: LineStyle): void {
    style.logs++;
  }

  /** A log of `style` joined before closes: its lines are forgotten, its buffer not kept alive here. */
  leave(style: LineStyle, holder: LineHolder): void {
    style.logs--;
    for (let i = 0; i < SLOTS; i++)
      if (this.holders[i] === holder) {
        this.payloads[i] = null;
        this.styles[i] = null;
        this.holders[i] = null;
      }
  }

  /** Whether a log of `style` may share lines: a single log of a style (the usual host) neither notes nor looks. */
  shares(style: LineStyle): boolean {
    return style.logs > 1;
  }

  /** The line of (type, payload[srcStart, srcEnd)) in `style` is [start, end) of the holder's line buffer. */
  note(
    type: number,
    payload: Buffer,
    srcStart: number,
    srcEnd: number,
    style: LineStyle,
    holder: LineHolder,
    start: number,
    end: number,
  ): void {
    const i = slotOf(type, srcStart, srcEnd, style);
    this.payloads[i] = payload;
    this.srcStarts[i] = srcStart;
    this.srcEnds[i] = srcEnd;
    this.styles[i] = style;
    this.holders[i] = holder;
    this.types[i] = type;
    this.emptied[i] = holder.emptied;
    this.starts[i] = start;
    this.ends[i] = end;
    this.batches[i] = this.batch;
  }

  /**
   * The kernel's batch is over: its buffer is filled again after this, so a record at the same place in it is
   * another record. Lines noted so far are not copied any more, whether or not their log has written them out (every
   * log does at a batch's end today; what is copied must not rest on when each log writes).
   */
  endBatch(): void {
    this.batch++;
  }

  /**
   * Copies the line of (type, payload[srcStart, srcEnd)) in `style` to dst[at..] when a log still holds it; returns
   * the position after it, or -1 (the caller formats the line).
   */
  copy(
    type: number,
    payload: Buffer,
    srcStart: number,
    srcEnd: number,
    style: LineStyle,
    dst: Buffer,
    at: number,
  ): number {
    const i = slotOf(type, srcStart, srcEnd, style);
    if (this.payloads[i] !== payload || this.srcStarts[i] !== srcStart) return -1;
    if (this.srcEnds[i] !== srcEnd || this.types[i] !== type || this.styles[i] !== style) return -1;
    if (this.batches[i] !== this.batch) return -1;
    const holder = this.holders[i]!;
    if (holder.emptied !== this.emptied[i]) return -1;
    const start = this.starts[i]!;
    const n = this.ends[i]! - start;
    // Positions the holder noted in its own buffer: within it.
    copyBytes(dst, new Uint8Array(holder.lineArrayBuffer, holder.lineByteOffset + start, n), at);
    this.copied++;
    return at + n;
  }
}
