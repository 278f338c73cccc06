// Groups kernel records into events by (timestamp, serial) with auparse's completion rules; clock-driven, no timers.
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { MsgType } from '../kernel/constants';
import { parseHeaderAt, parseRecord, payloadEnd, type AuditRecord } from './record';

/** Why an event was emitted. */
export type CompletionReason = 'eoe' | 'last' | 'single' | 'timeout' | 'overflow' | 'flush' | 'malformed' | 'replaced';

export interface AuditEvent {
  sec: number;
  msec: number;
  serial: number;
  records: AuditRecord[];
  reason: CompletionReason;
}

/**
 * Where the records of an event that passes through go (ReassemblerOptions.passThrough): each record as it comes, read
 * where it lies in the caller's buffer, and then the event's end. The bytes are the caller's until `record` returns.
 */
export interface PassThrough {
  /** One record of the event: buf[start, end), its first NUL excluded (EOE too, before end('eoe')). */
  record(type: number, buf: Buffer, start: number, end: number): void;
  /** No record of the event comes after this: 'eoe', 'last' (PROCTITLE, KERNEL), 'timeout', 'flush' or 'replaced'. */
  end(reason: CompletionReason): void;
  /** The caller's batch ends with the event still open: its buffer is reused after this. */
  endBatch(): void;
}

export interface ReassemblerOptions {
  /** end_of_event_timeout in ms (auditd default 2 s). */
  timeoutMs?: number;
  /** In-flight events kept before the oldest is emitted incomplete. */
  maxInFlight?: number;
  /** Copy payloads out of the caller's buffer (needed when the receive buffer is reused). Default true. */
  copy?: boolean;
  /**
   * A monotonic clock in ms, performance.now() by default: a wall clock stepped back by an hour held every event
   * without an EOE for that hour, and one read only at the first tick made the events begun before it time out.
   */
  clock?: () => number;
  /**
   * Asked with the SYSCALL record that begins an event (no earlier record of it waits, no other event passes
   * through): a PassThrough takes the event's records as they come instead of an event made of them at its end;
   * null keeps the event here. One event at a time passes through; the completion rules are the same.
   */
  passThrough?: (first: AuditRecord) => PassThrough | null;
}

export interface ReassemblerCounters {
  /** Records pushed, EOE and malformed included. */
  records: number;
  /** EOE records consumed (they end an event and are not kept). */
  eoe: number;
  /** Records handed out inside events. */
  recordsEmitted: number;
  events: number;
  malformed: number;
  /** Serials never seen between completed events (kernel-side loss indicator; late arrivals pay back). */
  serialGaps: number;
  timeouts: number;
  overflows: number;
  /** Events that passed through (counted in `events` too). */
  passed: number;
}

const DEFAULT_TIMEOUT_MS = 2000;
const DEFAULT_MAX_IN_FLIGHT = 4096;

/** auparse's rule: these types are events of their own (docs/auditd.conf.5 NOTES). */
export function isSingleRecordType(t: number): boolean {
  return t < 1300 || t >= 1700 || (t >= 1406 && t <= 1419);
}

/** Types after which no more records of the event come (EOE is consumed, the others kept). */
export function endsEvent(t: number): boolean {
  return t === MsgType.EOE || t === MsgType.PROCTITLE || t === MsgType.KERNEL;
}

/** Daemon-internal serials (DAEMON_*) come from the daemon, not the kernel's counter. */
function countsForGaps(t: number): boolean {
  return t < 1200 || t > 1299;
}

/** The event passing through: its stamp, age and records so far. */
interface Through {
  /** When it began among the events in flight (Pending.seq): the oldest one is let go at an overflow. */
  seq: number;
  to: PassThrough;
  sec: number;
  msec: number;
  serial: number;
  bornMs: number;
  records: number;
}

interface Pending {
  seq: number;
  ev: AuditEvent;
  bornMs: number;
  /** Records before this index own their bytes (copied at a batch end); later ones may be views into a batch. */
  owned: number;
}

export class Reassembler {
  readonly counters: ReassemblerCounters = {
    records: 0,
    eoe: 0,
    recordsEmitted: 0,
    events: 0,
    malformed: 0,
    serialGaps: 0,
    timeouts: 0,
    overflows: 0,
    passed: 0,
  };
  private readonly timeoutMs: number;
  private readonly maxInFlight: number;
  private readonly copy: boolean;
  private readonly emit: (ev: AuditEvent) => void;
  // Keyed by serial: the kernel counter is global, so a timestamp mismatch under one serial means reuse.
  private readonly inFlight = new Map<number, Pending>();
  /**
   * The event begun last, kept out of the map: a syscall event's records come one after another, so most events
   * start, grow and end here without a Map set, get and delete each. Logically it is the map's last entry.
   */
  private newest: Pending | null = null;
  private through: Through | null = null;
  /** Events begun so far (their `seq`). */
  private begun = 0;
  /** The header of the event passing through, `audit(SEC.MSEC:SERIAL):` (0 long: none, its records are parsed). */
  private readonly throughStamp = Buffer.alloc(64);
  private throughStampLength = 0;
  /** The event passing through ended at its last record (PROCTITLE, KERNEL) just now: its EOE may come next. */
  private eoeDue = false;
  private readonly passThrough: ((first: AuditRecord) => PassThrough | null) | null;
  private readonly clock: () => number;
  /** The clock at the last tick or batch start: the age a new event starts with. */
  private nowMs: number;
  /**
   * The last moment the kernel's records are known to have been read up to: the start of the latest receive batch
   * or the previous tick, whichever is later (a poll of the socket always comes between two ticks). An event expires
   * when its deadline had passed by then, not merely by now: after the loop stalled, the tick that comes first must
   * not expire events whose last records wait, unread, in the socket.
   */
  private seenMs: number;
  /** A receive batch is being pushed (push() after endBatch() starts the next one). */
  private inBatch = false;
  private maxSerial = -1;
  /** The stamp of the EOE being read (push's fast path), reused. */
  private readonly eoeStamp: Stamp & { bodyStart: number; malformed: boolean } = {
    sec: 0,
    msec: 0,
    serial: 0,
    bodyStart: 0,
    malformed: true,
  };

  constructor(emit: (ev: AuditEvent) => void, opts: ReassemblerOptions = {}) {
    this.emit = emit;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
    this.copy = opts.copy ?? true;
    this.clock = opts.clock ?? (() => performance.now());
    this.passThrough = opts.passThrough ?? null;
    this.nowMs = this.seenMs = this.clock();
  }

  /** The first record of a receive batch: one clock read per batch, the age of the events it starts. */
  private beginBatch(): void {
    this.inBatch = true;
    const now = this.clock();
    this.nowMs = now;
    if (now > this.seenMs) this.seenMs = now;
  }

  get inFlightCount(): number {
    return this.inFlight.size + (this.newest !== null ? 1 : 0) + (this.through !== null ? 1 : 0);
  }

  private pending(serial: number): Pending | undefined {
    const n = this.newest;
    if (n !== null && n.ev.serial === serial) return n;
    return this.inFlight.size === 0 ? undefined : this.inFlight.get(serial);
  }

  private remove(p: Pending): void {
    if (p === this.newest) this.newest = null;
    else this.inFlight.delete(p.ev.serial);
  }

  /** Same shape as the kernel client's RecordSink, so it can be plugged in directly. */
  push(type: number, buf: Buffer, start = 0, end = buf.length): void {
    if (!this.inBatch) this.beginBatch();
    const t = this.through;
    const eoeDue = this.eoeDue;
    this.eoeDue = false;
    // The kernel's EOE right after the PROCTITLE that ended the event passing through: it ends nothing (endByEoe
    // finds no event of its stamp; no record came between), so it is counted without a parse.
    if (eoeDue && type === MsgType.EOE && start >= 0 && end <= buf.length && this.sameThroughStamp(buf, start, end)) {
      this.counters.records++;
      this.counters.eoe++;
      return;
    }
    if (t !== null && start >= 0 && end <= buf.length && start <= end) {
      // The next record of the event passing through, recognised by its header's bytes: the same bytes parse to the
      // same stamp, so this is the parse below without its cost (about 60 ns a record); any other header is parsed.
      if (!isSingleRecordType(type) && this.sameThroughStamp(buf, start, end)) {
        this.passOn(t, type, buf, start, payloadEnd(buf, start, end));
        return;
      }
    }
    if ((type === MsgType.EOE || t !== null) && start >= 0 && end <= buf.length && start <= end) {
      // An EOE only ends its event (it is not kept), and a record of the event passing through goes on where it lies:
      // the stamp is read in place, with no record object or view.
      const e = this.eoeStamp;
      const stop = payloadEnd(buf, start, end);
      parseHeaderAt(e, buf, start, stop);
      if (!e.malformed) {
        if (t !== null && e.serial === t.serial && !isSingleRecordType(type)) {
          if (e.sec === t.sec && e.msec === t.msec) {
            this.passOn(t, type, buf, start, stop);
            return;
          }
          // The serial again under another stamp: the counter wrapped or the kernel restarted, as pushRecord's
          // 'replaced' (an EOE of another stamp ends nothing, as endByEoe).
          if (type !== MsgType.EOE) this.endThrough('replaced');
        }
        if (type === MsgType.EOE) {
          this.counters.records++;
          this.endByEoe(e);
          return;
        }
      }
    }
    this.pushRecord(parseRecord(type, buf, start, end, this.copy));
  }

  /** buf[start, end) begins with the header `audit(...):` of the event passing through (compared from its end). */
  private sameThroughStamp(buf: Buffer, start: number, end: number): boolean {
    const s = this.throughStamp;
    const n = this.throughStampLength;
    if (n === 0 || end - start < n) return false;
    for (let i = n - 1; i >= 0; i--) if (buf[start + i] !== s[i]) return false;
    return true;
  }

  private passOn(t: Through, type: number, buf: Buffer, start: number, end: number): void {
    const c = this.counters;
    c.records++;
    if (type === MsgType.EOE) {
      c.eoe++;
      t.to.record(type, buf, start, end);
      this.endThrough('eoe');
      return;
    }
    t.records++;
    t.to.record(type, buf, start, end);
    if (endsEvent(type)) this.endThrough('last');
  }

  /**
   * Ends the event passing through now, as a flush ends it (its destinations get what came so far); its later records
   * are made into an event of their own. False when none was passing through.
   */
  closeThrough(): boolean {
    if (this.through === null) return false;
    this.endThrough('flush');
    return true;
  }

  /** The event passing through is over: counted as finish() counts an event, then told. */
  private endThrough(reason: CompletionReason): void {
    const t = this.through!;
    this.through = null;
    const c = this.counters;
    c.events++;
    c.passed++;
    c.recordsEmitted += t.records;
    if (reason === 'timeout') c.timeouts++;
    this.eoeDue = reason === 'last';
    this.noteSerial(t.serial);
    t.to.end(reason);
  }

  private endByEoe(rec: Stamp): void {
    this.counters.eoe++;
    const p = this.pending(rec.serial);
    if (p !== undefined && sameStamp(p.ev, rec)) {
      this.remove(p);
      p.ev.reason = 'eoe';
      this.finish(p.ev);
    }
  }

  pushRecord(rec: AuditRecord): void {
    if (!this.inBatch) this.beginBatch();
    const c = this.counters;
    c.records++;
    if (rec.malformed) {
      c.malformed++;
      this.finish({ sec: 0, msec: 0, serial: 0, records: [rec], reason: 'malformed' });
      return;
    }
    const t = rec.type;
    if (t === MsgType.EOE) {
      this.endByEoe(rec);
      return;
    }
    if (isSingleRecordType(t)) {
      this.finish({ sec: rec.sec, msec: rec.msec, serial: rec.serial, records: [rec], reason: 'single' });
      return;
    }
    let p = this.pending(rec.serial);
    if (p !== undefined && !sameStamp(p.ev, rec)) {
      this.remove(p);
      p.ev.reason = 'replaced';
      this.finish(p.ev);
      p = undefined;
    }
    if (endsEvent(t)) {
      if (p !== undefined) {
        this.remove(p);
        p.ev.records.push(rec);
        p.ev.reason = 'last';
        this.finish(p.ev);
      } else {
        this.finish({ sec: rec.sec, msec: rec.msec, serial: rec.serial, records: [rec], reason: 'last' });
      }
      return;
    }
    if (p !== undefined) {
      p.ev.records.push(rec);
      if (this.copy) p.owned++;
      return;
    }
    if (t === MsgType.SYSCALL && this.through === null && this.passThrough !== null) {
      const to = this.passThrough(rec);
      if (to !== null) {
        this.through = {
          seq: this.begun++,
          to,
          sec: rec.sec,
          msec: rec.msec,
          serial: rec.serial,
          bornMs: this.nowMs,
          records: 1,
        };
        // The header up to `):` (bodyStart is past it and the space after it, when there is one).
        const p = rec.payload;
        const n = rec.bodyStart - (p[rec.bodyStart - 1] === 0x20 ? 1 : 0);
        const stamp = this.throughStamp;
        if (n <= stamp.length) {
          for (let i = 0; i < n; i++) stamp[i] = p[i]!;
          this.throughStampLength = n;
        } else this.throughStampLength = 0;
        this.checkOverflow(this.through);
        return;
      }
    }
    if (this.newest !== null) this.inFlight.set(this.newest.ev.serial, this.newest);
    this.newest = {
      seq: this.begun++,
      ev: { sec: rec.sec, msec: rec.msec, serial: rec.serial, records: [rec], reason: 'flush' },
      bornMs: this.nowMs,
      owned: this.copy ? 1 : 0,
    };
    this.checkOverflow(this.newest);
  }

  /**
   * Event `begun` just began: past maxInFlight, the oldest other event in flight is emitted incomplete ('overflow').
   * Waiting events are older the earlier they are in the map (insertion order), and the newest one is younger than
   * all of them; the event passing through began before or after any of them, and goes first when it is the oldest,
   * as it would had it been made whole.
   */
  private checkOverflow(begun: Pending | Through): void {
    const through = this.through;
    const newest = this.newest;
    if (this.inFlight.size + (newest !== null ? 1 : 0) + (through !== null ? 1 : 0) <= this.maxInFlight) return;
    const first = this.inFlight.size === 0 ? undefined : (this.inFlight.entries().next().value as [number, Pending]);
    const waiting = first !== undefined ? first[1] : newest !== begun ? newest : null;
    if (through !== null && through !== begun && (waiting === null || through.seq < waiting.seq)) {
      this.counters.overflows++;
      this.endThrough('overflow');
      return;
    }
    if (waiting === null) return; // not reached: maxInFlight >= 1 and two events are in flight
    this.counters.overflows++;
    if (first !== undefined) this.inFlight.delete(first[0]);
    else this.newest = null;
    waiting.ev.reason = 'overflow';
    this.finish(waiting.ev);
  }

  /**
   * End of the caller's receive batch (copy: false). Records of events still in flight are views into the batch:
   * copied out now, so an event waiting for its last record keeps a few hundred bytes alive, not the whole batch.
   */
  endBatch(): void {
    this.inBatch = false;
    if (this.through !== null) this.through.to.endBatch();
    if (this.copy) return;
    for (const p of this.inFlight.values()) ownRecords(p);
    if (this.newest !== null) ownRecords(this.newest);
  }

  /**
   * Reads the clock; events whose timeout had passed by the last batch start or the previous tick (seenMs) are
   * emitted incomplete. An event so times out between one and two ticks after its deadline.
   */
  tick(): void {
    const now = this.clock();
    const limit = this.seenMs - this.timeoutMs;
    this.nowMs = now;
    if (now > this.seenMs) this.seenMs = now;
    // First: it may be older than the waiting events (the loop below returns at the first one not due).
    if (this.through !== null && this.through.bornMs <= limit) this.endThrough('timeout');
    for (const [serial, p] of this.inFlight) {
      if (p.bornMs > limit) return;
      this.inFlight.delete(serial);
      this.counters.timeouts++;
      p.ev.reason = 'timeout';
      this.finish(p.ev);
    }
    const n = this.newest;
    if (n !== null && n.bornMs <= limit) {
      this.newest = null;
      this.counters.timeouts++;
      n.ev.reason = 'timeout';
      this.finish(n.ev);
    }
  }

  /** Emits every in-flight event (shutdown). */
  flush(): void {
    if (this.through !== null) this.endThrough('flush');
    const n = this.newest;
    this.newest = null;
    for (const p of this.inFlight.values()) {
      p.ev.reason = 'flush';
      this.finish(p.ev);
    }
    this.inFlight.clear();
    if (n !== null) {
      n.ev.reason = 'flush';
      this.finish(n.ev);
    }
  }

  private finish(ev: AuditEvent): void {
    const c = this.counters;
    c.events++;
    c.recordsEmitted += ev.records.length;
    if (ev.reason !== 'malformed' && ev.serial !== 0 && countsForGaps(ev.records[0]!.type)) this.noteSerial(ev.serial);
    this.emit(ev);
  }

  private noteSerial(s: number): void {
    if (this.maxSerial < 0) {
      this.maxSerial = s;
      return;
    }
    const d = (s - this.maxSerial) >>> 0;
    if (d === 0) return;
    if (d < 0x80000000) {
      this.counters.serialGaps += d - 1;
      this.maxSerial = s;
    } else if (this.counters.serialGaps > 0) {
      // A late event fills a hole counted when a newer serial completed first.
      this.counters.serialGaps--;
    }
  }
}

/** Copies out the records of a waiting event that are still views into the caller's batch. */
function ownRecords(p: Pending): void {
  const recs = p.ev.records;
  for (let i = p.owned; i < recs.length; i++) recs[i]!.payload = Buffer.from(recs[i]!.payload);
  p.owned = recs.length;
}

/** What identifies an event: `audit(SEC.MSEC:SERIAL)`. */
interface Stamp {
  sec: number;
  msec: number;
  serial: number;
}

function sameStamp(ev: Stamp, rec: Stamp): boolean {
  return ev.sec === rec.sec && ev.msec === rec.msec;
}
