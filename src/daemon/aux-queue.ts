// An auxiliary daemon's bounded queue, held by the host: survives the aux process, overflow policy and counters.
import type { OverflowAction } from '../config/schema';

export interface QueueCounters {
  /** Events the aux daemon confirmed written. */
  delivered: number;
  dropped: number;
  /** Events held now (waiting to be sent, or sent and not yet confirmed). */
  queued: number;
  peak: number;
  /** Events sent again after the aux process restarted. */
  resent: number;
}

export interface QueueItem {
  seq: number;
  frame: Buffer;
}

/**
 * Items wait in `pending` until sent, then in `inflight` until the aux daemon acknowledges them (cumulatively). On a
 * crash everything in flight is moved back to the front of pending, so nothing accepted is lost.
 */
export class AuxQueue {
  private pending: QueueItem[] = [];
  private pendingHead = 0;
  private inflight: QueueItem[] = [];
  private nextSeq = 1;
  /** pendingBytes: kept as frames come, go and come back, so the host's pump reads it per kernel batch. */
  private bytesPending = 0;
  readonly counters: QueueCounters = { delivered: 0, dropped: 0, queued: 0, peak: 0, resent: 0 };
  /** Drops since the last report, so the host can log them as records. */
  unreportedDrops = 0;

  constructor(
    public depth: number,
    public overflow: OverflowAction,
  ) {}

  get size(): number {
    return this.pending.length - this.pendingHead + this.inflight.length;
  }

  /** Events sent and not yet acknowledged. */
  get inFlight(): number {
    return this.inflight.length;
  }

  /** Bytes of the frames waiting to be sent (not yet in flight). */
  get pendingBytes(): number {
    return this.bytesPending;
  }

  get full(): boolean {
    return this.size >= this.depth;
  }

  /**
   * Offers an event frame (built by `make(seq)`). Returns false when it was dropped. With `block`, the event is held
   * even past depth: the host pauses its kernel intake instead and drops only when the block time runs out.
   */
  offer(make: (seq: number) => Buffer): boolean {
    if (this.full && this.overflow !== 'block') {
      // drop_oldest can only evict what has not been sent yet; with everything in flight it drops the newest too.
      if (this.overflow === 'drop_newest' || this.pendingHead >= this.pending.length) {
        this.drop(1);
        return false;
      }
      this.bytesPending -= this.pending[this.pendingHead++]!.frame.length;
      this.drop(1);
      this.compact();
    }
    const seq = this.nextSeq++;
    const frame = make(seq);
    this.pending.push({ seq, frame });
    this.bytesPending += frame.length;
    this.touch();
    return true;
  }

  /** With `block`: after the time limit, sheds the newest events beyond depth. */
  shedOverflow(): number {
    const excess = this.size - this.depth;
    if (excess <= 0) return 0;
    const removable = Math.min(excess, this.pending.length - this.pendingHead);
    for (let i = this.pending.length - removable; i < this.pending.length; i++)
      this.bytesPending -= this.pending[i]!.frame.length;
    this.pending.length -= removable;
    this.drop(removable);
    return removable;
  }

  private drop(n: number): void {
    this.counters.dropped += n;
    this.unreportedDrops += n;
    this.touch();
  }

  private touch(): void {
    this.counters.queued = this.size;
    if (this.counters.queued > this.counters.peak) this.counters.peak = this.counters.queued;
  }

  private compact(): void {
    if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.pendingHead);
      this.pendingHead = 0;
    }
  }

  /** Takes up to `maxBytes` of frames to send now, moving them in flight. */
  take(maxBytes: number, maxInflight: number): Buffer[] {
    const out: Buffer[] = [];
    let bytes = 0;
    while (this.pendingHead < this.pending.length && bytes < maxBytes && this.inflight.length < maxInflight) {
      const it = this.pending[this.pendingHead++]!;
      this.inflight.push(it);
      out.push(it.frame);
      bytes += it.frame.length;
    }
    this.bytesPending -= bytes;
    this.compact();
    return out;
  }

  /** Cumulative acknowledgement: everything up to `seq` is in the aux daemon's log. */
  ack(seq: number): number {
    let n = 0;
    while (n < this.inflight.length && this.inflight[n]!.seq <= seq) n++;
    if (n) {
      this.inflight.splice(0, n);
      this.counters.delivered += n;
      this.touch();
    }
    return n;
  }

  /** The aux process died: unacknowledged events go back to the front, to be sent again in order. */
  requeueInflight(): void {
    if (!this.inflight.length) return;
    this.counters.resent += this.inflight.length;
    for (const it of this.inflight) this.bytesPending += it.frame.length;
    this.pending = [...this.inflight, ...this.pending.slice(this.pendingHead)];
    this.pendingHead = 0;
    this.inflight = [];
  }
}
