// The lines the logs of this process made last: another log of the same line style copies one instead of formatting.
import type { Buffer } from 'node:buffer';
import { bytesView, copyBytes } from '../bytes';
import type { LineStyle } from './format';

/**
 * A log whose buffer holds lines another may copy: `emptied` counts the times the buffer was written out and reused
 * (a line is only where it was made while the count is unchanged).
 */
export interface LineHolder {
  readonly lineBuffer: Buffer;
  readonly emptied: number;
}

/** Lines remembered: an event's records, written to several logs one log after the other, fit in it. */
const SLOTS = 16;

/**
 * Why: an event routed to an auxiliary daemon and kept by the host goes to two logs, record objects shared, and each
 * formatted every record again (an ENRICHED line's interpretation most of all). A record is recognised by where its
 * bytes lie: its payload object (a view of the kernel's batch or a copy), or the batch and the range a record passed
 * through lies in (src/daemon/streamed-event.ts). Those bytes do not change while the batch is read, and the logs
 * write their buffers out at the end of every batch, before the batch's buffer is filled again, which ends every
 * line's time here.
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
  private next = 0;
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

  /** The line of (type, payload[srcStart, srcEnd)) in `style` is holder.lineBuffer[start, end). */
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
    const i = this.next;
    this.next = (i + 1) % SLOTS;
    this.payloads[i] = payload;
    this.srcStarts[i] = srcStart;
    this.srcEnds[i] = srcEnd;
    this.styles[i] = style;
    this.holders[i] = holder;
    this.types[i] = type;
    this.emptied[i] = holder.emptied;
    this.starts[i] = start;
    this.ends[i] = end;
  }

  /**
   * Copies the line of (type, payload[srcStart, srcEnd)) in `style` to dst[at..] when a log still holds it; returns
   * the position after it, or -1 (the caller formats the line). The newest lines are looked at first: the record was
   * written last to the other log a few records ago.
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
    for (let k = 1; k <= SLOTS; k++) {
      const i = (this.next - k + SLOTS) % SLOTS;
      if (this.payloads[i] !== payload || this.srcStarts[i] !== srcStart) continue;
      if (this.srcEnds[i] !== srcEnd || this.types[i] !== type || this.styles[i] !== style) continue;
      const holder = this.holders[i]!;
      if (holder.emptied !== this.emptied[i]) return -1;
      const start = this.starts[i]!;
      const n = this.ends[i]! - start;
      copyBytes(dst, bytesView(holder.lineBuffer, start, n), at);
      this.copied++;
      return at + n;
    }
    return -1;
  }
}
