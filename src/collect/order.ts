// The collector's per-publisher reordering: events ahead of a hole are held (bounded) until it fills or goes stale.

/** An event handed on for writing; `late` when its number was already passed (it cannot be placed any earlier). */
export interface OrderItem<T> {
  value: T;
  late: boolean;
}

/** A hole given up on: numbers `from`..`to` of one publisher's epoch never came (or not in time). */
export interface GapInfo {
  publisher: string;
  epoch: string;
  from: number;
  to: number;
  /**
   * wait: reorder_wait passed; bound: the hold was full; epoch: the publisher started a new numbering; evicted: too
   * many publishers; start: a publisher first seen past N=1 (its earlier events may have been consumed before this
   * collector, or gone from the stream: not counted as a gap).
   */
  reason: 'wait' | 'bound' | 'epoch' | 'evicted' | 'start';
}

export interface ReordererOptions {
  /** How long an event may be held for a hole before it (ms). */
  waitMs: number;
  /** Bound on held events over all publishers, by count and by bytes. */
  maxHeld: number;
  maxHeldBytes: number;
  /** Publishers remembered (least recently seen forgotten first). */
  maxPublishers: number;
  /**
   * Publishers of one node (the key's first word) at most: the daemon and output words come from headers a host
   * chooses, so one host could otherwise fill the whole table, and the state file written after every batch. A key
   * past it is not ordered: its events are handed on as they come (`unordered` counts them).
   */
  maxPerNode?: number;
  onGap?: (g: GapInfo) => void;
}

interface Held<T> {
  id: string;
  bytes: number;
  /** When it was first held (holds are made in arrival order, so a Map's first entry is the oldest). */
  at: number;
  /** When the server was last told it is being worked on. */
  touched: number;
  value: T;
}

interface Pub<T> {
  epoch: string;
  /** The number the next written event must carry. */
  next: number;
  held: Map<number, Held<T>>;
  /** Earlier epochs of this publisher, newest first: their stragglers are late, not a new numbering. */
  prev: string[];
  /** Whether an event of the current epoch was handed on (or the position came from the state file). */
  started: boolean;
}

/** What is persisted per publisher: its epoch, the next number, the earlier epochs. */
export type PublisherState = [string, number, ...string[]];

const KEEP_EPOCHS = 4;

/**
 * Per publisher (node, daemon, output), the next number expected (1 for one not seen before). An event with that
 * number is handed on at once, followed by the held run after it; one ahead of it is held; one behind it is handed on
 * as late. A hole is passed (counted as a gap, the held events after it handed on in order) when its oldest held event
 * waited `waitMs`, when the hold bounds are reached (the publisher holding longest gives way), or when the publisher
 * starts a new epoch. Pure: the caller passes the time and writes what comes out, in the order it comes out.
 */
export class Reorderer<T> {
  private readonly pubs = new Map<string, Pub<T>>();
  /** Publishers with held events. */
  private readonly holding = new Set<string>();
  private count = 0;
  private bytes = 0;
  /** Holes passed (not counting a first-seen publisher's missing start). */
  gaps = 0;
  /** Set whenever a publisher's state changed; the caller persists and clears it. */
  dirty = false;
  /** Events handed on unordered: their node already had maxPerNode publishers. */
  unordered = 0;
  /** Publishers per node (the key's first word). */
  private readonly perNode = new Map<string, number>();

  constructor(private readonly opts: ReordererOptions) {}

  get held(): number {
    return this.count;
  }

  get heldBytes(): number {
    return this.bytes;
  }

  get publishers(): number {
    return this.pubs.size;
  }

  /** Takes one event of `key` numbered `tag`; returns what may be written now, in order. */
  offer(
    key: string,
    tag: { epoch: string; n: number },
    id: string,
    bytes: number,
    value: T,
    now: number,
  ): OrderItem<T>[] {
    const out: OrderItem<T>[] = [];
    let p = this.pubs.get(key);
    if (p) {
      this.pubs.delete(key);
      this.pubs.set(key, p);
    } else {
      if (!this.admit(key)) {
        this.unordered++;
        out.push({ value, late: false });
        return out;
      }
      // First seen (or forgotten): its numbering starts at 1, so an event past 1 is held like any other. The stream
      // itself may hold k+1.. before k from its very first messages (a window published while the stream's leader
      // was being elected). A restarted collector knows its publishers from its state file.
      p = { epoch: tag.epoch, next: 1, held: new Map(), prev: [], started: false };
      this.pubs.set(key, p);
      this.dirty = true;
      this.evict(out);
    }
    if (tag.epoch !== p.epoch) {
      if (p.prev.includes(tag.epoch)) {
        out.push({ value, late: true });
        return out;
      }
      // A new numbering: the old one is complete in the stream before it (the publisher's spool was empty), so
      // whatever old hole remains is a real gap.
      this.drain(key, p, 'epoch', out);
      p.prev = [p.epoch, ...p.prev].slice(0, KEEP_EPOCHS);
      p.epoch = tag.epoch;
      p.next = 1;
      p.started = false;
      this.dirty = true;
    }
    if (tag.n < p.next) {
      out.push({ value, late: true });
      return out;
    }
    if (tag.n === p.next) {
      out.push({ value, late: false });
      p.next++;
      p.started = true;
      this.run(key, p, out);
      this.dirty = true;
      return out;
    }
    const h = p.held.get(tag.n);
    if (h) {
      if (h.id === id) {
        // Delivered again while held: the newer delivery is the one acknowledged later.
        this.bytes += bytes - h.bytes;
        h.bytes = bytes;
        h.value = value;
      } else {
        // Another event with a number already held (a publisher that lost part of its spool): it cannot be ordered.
        out.push({ value, late: true });
      }
      return out;
    }
    p.held.set(tag.n, { id, bytes, at: now, touched: now, value });
    this.holding.add(key);
    this.count++;
    this.bytes += bytes;
    while (this.count > this.opts.maxHeld || this.bytes > this.opts.maxHeldBytes) {
      const oldest = this.oldestHolder();
      if (!oldest) break;
      this.pass(oldest[0], oldest[1], 'bound', out);
    }
    return out;
  }

  /** Passes every hole whose oldest held event waited `waitMs` by `now`. */
  expire(now: number): OrderItem<T>[] {
    const out: OrderItem<T>[] = [];
    for (const key of [...this.holding]) {
      const p = this.pubs.get(key) as Pub<T>;
      while (p.held.size > 0 && (p.held.values().next().value as Held<T>).at + this.opts.waitMs <= now)
        this.pass(key, p, 'wait', out);
    }
    return out;
  }

  /** Whether expire(now) would hand anything on. */
  due(now: number): boolean {
    for (const key of this.holding) {
      const p = this.pubs.get(key) as Pub<T>;
      const first = p.held.values().next().value as Held<T> | undefined;
      if (first && first.at + this.opts.waitMs <= now) return true;
    }
    return false;
  }

  /** Held events last touched `ms` or longer ago, marked touched at `now` (the caller tells the server). */
  stale(now: number, ms: number): T[] {
    const out: T[] = [];
    for (const key of this.holding) {
      for (const h of (this.pubs.get(key) as Pub<T>).held.values()) {
        if (now - h.touched >= ms) {
          h.touched = now;
          out.push(h.value);
        }
      }
    }
    return out;
  }

  /** Every publisher's position, to persist (held events are not: they were never acknowledged, they come again). */
  snapshot(): Record<string, PublisherState> {
    const s: Record<string, PublisherState> = {};
    for (const [k, p] of this.pubs) s[k] = [p.epoch, p.next, ...p.prev];
    return s;
  }

  /** Restores positions from a snapshot already validated by the caller. */
  restore(s: Record<string, PublisherState>): void {
    for (const [k, [epoch, next, ...prev]] of Object.entries(s)) {
      if (this.pubs.size >= this.opts.maxPublishers) break;
      if (this.pubs.has(k) || !this.admit(k)) continue;
      this.pubs.set(k, { epoch, next, held: new Map(), prev: prev.slice(0, KEEP_EPOCHS), started: true });
    }
  }

  /** Hands on the run of held events from `next` on. */
  private run(key: string, p: Pub<T>, out: OrderItem<T>[]): void {
    for (let h = p.held.get(p.next); h; h = p.held.get(p.next)) {
      p.held.delete(p.next);
      this.count--;
      this.bytes -= h.bytes;
      out.push({ value: h.value, late: false });
      p.next++;
      p.started = true;
    }
    if (p.held.size === 0) this.holding.delete(key);
  }

  /** Gives up on the first hole of `p`: counts it, moves `next` to the lowest held number and hands on the run. */
  private pass(key: string, p: Pub<T>, reason: GapInfo['reason'], out: OrderItem<T>[]): void {
    let low = Infinity;
    for (const n of p.held.keys()) if (n < low) low = n;
    if (low === Infinity) return;
    const r = p.started ? reason : 'start';
    if (r !== 'start') this.gaps++;
    this.opts.onGap?.({ publisher: key, epoch: p.epoch, from: p.next, to: low - 1, reason: r });
    p.next = low;
    this.dirty = true;
    this.run(key, p, out);
  }

  private drain(key: string, p: Pub<T>, reason: GapInfo['reason'], out: OrderItem<T>[]): void {
    while (p.held.size > 0) this.pass(key, p, reason, out);
  }

  private oldestHolder(): [string, Pub<T>] | null {
    let best: [string, Pub<T>] | null = null;
    let at = Infinity;
    for (const key of this.holding) {
      const p = this.pubs.get(key) as Pub<T>;
      const first = p.held.values().next().value as Held<T>;
      if (first.at < at) {
        at = first.at;
        best = [key, p];
      }
    }
    return best;
  }

  /** Counts a new publisher of `key`'s node; false (nothing counted) when its node already has maxPerNode. */
  private admit(key: string): boolean {
    const node = nodeOf(key);
    const have = this.perNode.get(node) ?? 0;
    if (have >= (this.opts.maxPerNode ?? Infinity)) return false;
    this.perNode.set(node, have + 1);
    return true;
  }

  /** Forgets the least recently seen publishers past the bound, passing what they hold. */
  private evict(out: OrderItem<T>[]): void {
    while (this.pubs.size > this.opts.maxPublishers) {
      const [key, p] = this.pubs.entries().next().value as [string, Pub<T>];
      this.drain(key, p, 'evicted', out);
      this.pubs.delete(key);
      const node = nodeOf(key);
      const left = (this.perNode.get(node) ?? 1) - 1;
      if (left > 0) this.perNode.set(node, left);
      else this.perNode.delete(node);
    }
  }
}

/** The node word of a publisher key (`NODE DAEMON OUTPUT`). */
function nodeOf(key: string): string {
  const sp = key.indexOf(' ');
  return sp < 0 ? key : key.slice(0, sp);
}
