// Bounded record queues for outputs: an on-disk spool (append-only segments + persisted read cursor) and a memory
// queue.
import { Buffer } from 'node:buffer';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { checkDirSafe, openNoFollow, syncDir } from '../../safefs';
import { pathTrustProblem } from '../../trust';
import { IoError } from '../../errors';
import { Fifo } from './fifo';

/** A position in the queue: segment number and byte offset inside it (memory queue: seg 0, off = record index). */
export interface QueueCursor {
  seg: number;
  off: number;
}

export interface QueuedRecord {
  data: Buffer;
  /** Cursor just after this record; commit(end) marks it and everything before it delivered. */
  end: QueueCursor;
}

/** What an output needs from its queue; once append() returned true the record survives until commit(). */
export interface RecordQueue {
  append(rec: Buffer): boolean;
  /** Make appended records and the committed cursor durable (one fsync per batch). */
  sync(): void;
  /** The next record not yet handed out since the last rewind, or null. */
  next(): QueuedRecord | null;
  commit(end: QueueCursor): void;
  /** Hand out every uncommitted record again (after a reconnect). */
  rewind(): void;
  /** The newest record appended and not committed, or null (read without handing anything out). */
  lastPending(): Buffer | null;
  /** Records appended and not committed (after a restart: those counted so far, see `uncounted`). */
  readonly pending: number;
  /** Bytes those records take. */
  readonly bytes: number;
  /** Bytes of a recovered spool whose records are not counted in `pending` yet (counted in the background). */
  readonly uncounted: number;
  readonly capacity: number;
  close(): void;
}

/** Per-record framing in a segment: u32 LE payload length, u32 LE crc32(payload), payload. */
export const REC_HEADER = 8;
/** Larger than any audit line; a length above it means the segment is damaged, not that a record is huge. */
export const MAX_SPOOL_RECORD = 64 * 1024;
/** Segment size unless a smaller spool needs smaller ones; a segment is never much larger than this. */
const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;
const CURSOR_FILE = 'cursor';
const CURSOR_MAGIC = 0x43584d41; // "AMXC"
const CURSOR_SLOT = 32;
const SEG_RE = /^seg-(\d{10})\.spool$/;
/**
 * The highest segment number: the cursor keeps it in a u32. A name above it (ten digits reach 9999999999) is damage,
 * skipped at recovery; numbering starts again at 0 when the spool is empty rather than pass it.
 */
export const MAX_SEGMENT = 0xfffffffe;
/**
 * Room for two of the largest records: every append goes through this buffer, whose flush writes on after a short
 * write and keeps what a failed write left. (Records larger than the buffer were written directly, and a short write
 * there lost the rest of the record and, at the next recovery, the rest of its segment.)
 */
const WRITE_BUF = 2 * (REC_HEADER + MAX_SPOOL_RECORD);
const CHUNK = 256 * 1024;

export interface SpoolOptions {
  dir: string;
  /** Bound on the bytes of uncommitted records (framing included). */
  maxBytes: number;
  /** A segment is closed and a new one started past this size. */
  segmentBytes?: number;
  /** Called for damage found while recovering (torn tail, bad checksum); the rest of that segment is skipped. */
  onCorrupt?: (file: string, offset: number, reason: string) => void;
}

export function segmentName(seg: number): string {
  return `seg-${String(seg).padStart(10, '0')}.spool`;
}

/** Result of reading one framed record at `off` in `b`: the record, 'short' (need more bytes) or 'bad' (damage). */
export function readFramed(b: Buffer, off: number, end: number): { len: number; data: Buffer } | 'short' | 'bad' {
  if (end - off < REC_HEADER) return 'short';
  const len = b.readUInt32LE(off);
  // Never written (append refuses empty records): zeros are a hole or a wipe, not millions of empty records.
  if (len === 0 || len > MAX_SPOOL_RECORD) return 'bad';
  if (end - off < REC_HEADER + len) return 'short';
  const data = b.subarray(off + REC_HEADER, off + REC_HEADER + len);
  if (crc32(data) >>> 0 !== b.readUInt32LE(off + 4)) return 'bad';
  return { len: REC_HEADER + len, data };
}

export function encodeFramed(rec: Buffer): Buffer {
  const out = Buffer.allocUnsafe(REC_HEADER + rec.length);
  out.writeUInt32LE(rec.length, 0);
  out.writeUInt32LE(crc32(rec) >>> 0, 4);
  rec.copy(out, REC_HEADER);
  return out;
}

interface SegInfo {
  seg: number;
  /** Bytes of valid records in the segment (of a segment not counted yet: its file's size, up to the limit). */
  size: number;
  /** Records of the segment counted and not committed (those before `counted`; commit() takes them off). */
  records: number;
  /** Bytes from the start whose records are counted in `records`: `size` except in a segment not counted yet. */
  counted: number;
}

/** What the background count of a recovered spool reads per turn of the event loop (about a millisecond). */
const COUNT_STEP = 1024 * 1024;

/**
 * On-disk spool, one directory per output. Records are appended to numbered segment files; a 2-slot cursor file
 * (generation + crc per slot, so a torn write leaves the other slot valid) records how far delivery got. Segments
 * wholly before the cursor are deleted. On open, the cursor's segment and the last one are scanned and a damaged
 * tail is cut off, so a crash mid-append loses only that unsynced record; the segments between, synced whole before
 * the next one was made, are counted in the background, a slice per turn of the event loop (a scan of every segment
 * held the daemon's loop for about 0.5-1 s per 256 MiB at start, while the kernel's records waited and could be lost),
 * and a damaged record found there (count or delivery) ends its segment. Delivery is at least once: records
 * committed after the last sync() are sent again after a restart.
 */
export class Spool implements RecordQueue {
  readonly capacity: number;
  private readonly dir: string;
  private readonly segmentBytes: number;
  private readonly onCorrupt: SpoolOptions['onCorrupt'];
  private segs: SegInfo[] = [];
  private wfd = -1;
  private wbuf = Buffer.allocUnsafe(WRITE_BUF);
  private wused = 0;
  private cfd = -1;
  private gen = 0;
  private committed: QueueCursor = { seg: 0, off: 0 };
  private cursorDirty = false;
  private read: QueueCursor = { seg: 0, off: 0 };
  private pendingRecords = 0;
  private pendingBytes = 0;
  private chunk = Buffer.allocUnsafe(CHUNK);
  private chunkSeg = -1;
  private chunkStart = 0;
  private chunkLen = 0;
  private rfd = -1;
  private rfdSeg = -1;
  /** End cursors of records handed out but not committed, to count what a commit releases. */
  private readonly inFlight = new Fifo<{ end: QueueCursor; bytes: number }>();
  private closed = false;
  /** Bytes of segments not counted yet (SegInfo.counted below size), and what cancels the count's next turn. */
  private uncountedBytes = 0;
  private counting: (() => void) | null = null;
  /** The count's last turn failed (reported once until a turn succeeds). */
  private countFailed = false;
  /** Segments numbered below this one are counted whole: where the count looks first (a spool can hold 100,000). */
  private countSeg = 0;

  constructor(opts: SpoolOptions) {
    this.dir = opts.dir;
    this.capacity = opts.maxBytes;
    this.segmentBytes = Math.max(
      64 * 1024,
      Math.min(opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES, Math.ceil(opts.maxBytes / 4)),
    );
    this.onCorrupt = opts.onCorrupt;
    const made = fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    // Records wait here as root's (or the daemon user's) files: nobody else may add, swap or link names in it.
    checkDirSafe(this.dir, { owners: [0, process.geteuid?.() ?? 0], what: 'spool directory' });
    // And every directory above it (the leaf is checkDirSafe's): whoever can write one of them can swap the spool
    // directory itself after the check. A relative path is a user daemon's own spool below its working directory,
    // checked when it entered it.
    if (path.isAbsolute(this.dir)) {
      const problem = pathTrustProblem(path.dirname(this.dir), { dir: true });
      if (problem)
        throw new IoError(`spool directory ${this.dir}: ${problem}; others could swap it (refused)`, 'E_UNSAFE_DIR');
    }
    this.cfd = openFile(path.join(this.dir, CURSOR_FILE), fs.constants.O_RDWR | fs.constants.O_CREAT, 'spool cursor');
    try {
      this.loadCursor();
      this.recover();
      this.read = { ...this.committed };
      this.openWriteSegment();
      syncDir(this.dir);
      // A spool directory made here: its own name made durable too (and the first one made, when several were).
      if (made !== undefined) {
        syncDir(path.dirname(this.dir));
        if (path.dirname(made) !== path.dirname(this.dir)) syncDir(path.dirname(made));
      }
      // Last: a constructor that throws leaves no count running on a spool nobody holds.
      if (this.uncountedBytes > 0) this.countLater(0);
    } catch (e) {
      for (const fd of [this.cfd, this.wfd]) if (fd >= 0) fs.closeSync(fd);
      this.cfd = this.wfd = -1;
      throw e;
    }
  }

  get pending(): number {
    return this.pendingRecords;
  }

  get bytes(): number {
    return this.pendingBytes;
  }

  get uncounted(): number {
    return this.uncountedBytes;
  }

  /**
   * The next slice of the background count: after the event loop's other work, or `delayMs` later (unref'd: it holds
   * no exit; close() cancels it).
   */
  private countLater(delayMs: number): void {
    const turn = (): void => {
      this.counting = null;
      if (this.closed) return;
      try {
        this.countSome(COUNT_STEP);
      } catch (e) {
        // A read that failed (EIO, EMFILE, a file changed underneath; or the report of damage threw): tried again
        // each second, reported once; delivery reading the same segment meets the same error and reports it.
        this.countLater(1000);
        if (!this.countFailed) {
          this.countFailed = true;
          try {
            this.onCorrupt?.(this.dir, 0, `counting the recovered spool failed: ${String(e)}`);
          } catch {
            // The report itself failed: the count goes on regardless (it is retried above).
          }
        }
        return;
      }
      this.countFailed = false;
      if (this.uncountedBytes > 0) this.countLater(0);
    };
    if (delayMs > 0) {
      const t = setTimeout(turn, delayMs);
      t.unref();
      this.counting = () => clearTimeout(t);
    } else {
      const im = setImmediate(turn);
      im.unref();
      this.counting = () => clearImmediate(im);
    }
  }

  /** Counts records of the first segment not counted yet, about `budget` bytes of them. */
  private countSome(budget: number): void {
    // Binary search for countSeg (segments are in number order), then on past those delivery counted first.
    const segs = this.segs;
    let lo = 0;
    let hi = segs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (segs[mid]!.seg < this.countSeg) lo = mid + 1;
      else hi = mid;
    }
    while (lo < segs.length && segs[lo]!.counted >= segs[lo]!.size) lo++;
    const seg = segs[lo];
    if (seg === undefined) return;
    this.countSeg = seg.seg;
    const start = seg.counted;
    while (seg.counted < seg.size && seg.counted - start < budget) {
      const r = this.readAt(seg.seg, seg.counted, seg.size);
      if (r === null) {
        this.cutDamaged(seg, seg.counted, 'bad length or checksum');
        return;
      }
      this.countRecord(seg, r.len);
    }
  }

  private countRecord(seg: SegInfo, len: number): void {
    seg.counted += len;
    seg.records++;
    this.pendingRecords++;
    this.uncountedBytes -= len;
  }

  /**
   * A damaged record at `off`: what the segment holds from there is neither pending nor delivered, as a damaged tail
   * is cut at recovery. A segment before the last ends there; the last one, where appends go on at the file's end,
   * is read on from what comes after it.
   */
  private cutDamaged(seg: SegInfo, off: number, reason: string): void {
    this.onCorrupt?.(path.join(this.dir, segmentName(seg.seg)), off, reason);
    if (off < seg.counted) this.dropCountedFrom(seg);
    this.uncountedBytes -= seg.size - seg.counted;
    this.pendingBytes -= seg.size - off;
    if (seg === this.segs[this.segs.length - 1]) this.read = { seg: seg.seg, off: seg.size };
    else {
      seg.size = off;
      seg.counted = off;
    }
  }

  /**
   * The records of `seg` counted past the damage just found go (changed underneath after they were counted). Reads go
   * forward from the cursor, so the segment's records handed out and not committed all lie before it: only they stay.
   */
  private dropCountedFrom(seg: SegInfo): void {
    let kept = 0;
    for (let i = 0, f = this.inFlight.at(0); f !== undefined; f = this.inFlight.at(++i))
      if (f.end.seg === seg.seg) kept++;
    this.pendingRecords -= seg.records - kept;
    seg.records = kept;
  }

  append(rec: Buffer): boolean {
    if (this.closed) return false;
    if (rec.length > MAX_SPOOL_RECORD)
      throw new RangeError(`spool record of ${rec.length} bytes exceeds ${MAX_SPOOL_RECORD}`);
    if (rec.length === 0) throw new RangeError('an empty spool record cannot be told from a hole in the file');
    const need = REC_HEADER + rec.length;
    if (this.pendingBytes + need > this.capacity) return false;
    let last = this.segs[this.segs.length - 1] as SegInfo;
    if (last.size > 0 && last.size + need > this.segmentBytes && last.seg >= MAX_SEGMENT) {
      if (this.pendingRecords > 0 || this.uncountedBytes > 0)
        throw new IoError(
          `spool ${this.dir}: segment ${last.seg} is the last number the cursor can hold; no record is added ` +
            'until everything spooled is delivered and numbering starts again at 0',
          'E_SPOOL_SEGMENTS',
        );
      last = this.restartNumbering();
    }
    if (last.size > 0 && last.size + need > this.segmentBytes) {
      this.flushWrites();
      fs.fsyncSync(this.wfd);
      // The next segment is opened before this one is let go: a create that fails (a full file system) leaves the
      // spool as it was, still appending here, instead of without a segment to write to for good.
      const next: SegInfo = { seg: last.seg + 1, size: 0, records: 0, counted: 0 };
      const fd = openFile(
        path.join(this.dir, segmentName(next.seg)),
        fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND,
        'spool segment',
      );
      // A stale file of that number (not found at recovery) would put its bytes before the new records.
      if (fs.fstatSync(fd).size !== 0) fs.ftruncateSync(fd, 0);
      // The new name made durable once, before records synced into it are acknowledged: a crash could otherwise
      // keep the data blocks and lose the name (and the records recovery would find).
      try {
        syncDir(this.dir);
      } catch (e) {
        fs.closeSync(fd);
        throw e;
      }
      fs.closeSync(this.wfd);
      this.wfd = fd;
      this.segs.push(next);
      last = next;
    }
    if (this.wused + need > this.wbuf.length) this.flushWrites();
    this.wbuf.writeUInt32LE(rec.length, this.wused);
    this.wbuf.writeUInt32LE(crc32(rec) >>> 0, this.wused + 4);
    rec.copy(this.wbuf, this.wused + REC_HEADER);
    this.wused += need;
    last.size += need;
    last.counted += need;
    last.records++;
    this.pendingRecords++;
    this.pendingBytes += need;
    return true;
  }

  sync(): void {
    if (this.closed) return;
    this.flushWrites();
    fs.fdatasyncSync(this.wfd);
    if (this.cursorDirty) this.persistCursor();
  }

  next(): QueuedRecord | null {
    for (;;) {
      const head = this.segs[0];
      // The segment being read was delivered and deleted under the cursor: continue at the oldest that remains.
      if (head && this.read.seg < head.seg) this.read = { seg: head.seg, off: 0 };
      const si = this.segs.findIndex((s) => s.seg === this.read.seg);
      const seg = this.segs[si];
      if (!seg) return null;
      if (this.read.off >= seg.size) {
        const after = this.segs[si + 1];
        if (!after) return null;
        this.read = { seg: after.seg, off: 0 };
        continue;
      }
      let limit = seg.size;
      if (seg === this.segs[this.segs.length - 1]) {
        try {
          this.flushWrites();
        } catch {
          // Its file system is full: what is still buffered is not on disk, and is read after a later flush.
        }
        limit = seg.size - this.wused;
      }
      if (this.read.off >= limit) return null;
      const r = this.readAt(seg.seg, this.read.off, limit);
      if (r === null && limit < seg.size) return null;
      if (r === null) {
        // Reached before the background count, or the file was changed underneath (the last segment: only that).
        const last = seg === this.segs[this.segs.length - 1];
        this.cutDamaged(seg, this.read.off, last ? 'unreadable record' : 'bad length or checksum');
        continue;
      }
      // Read before the background count got there (reads go forward from the count's frontier): counted now.
      if (this.read.off === seg.counted && seg.counted < seg.size) this.countRecord(seg, r.len);
      const end = { seg: seg.seg, off: this.read.off + r.len };
      this.read = end;
      this.inFlight.push({ end, bytes: r.len });
      return { data: Buffer.from(r.data), end };
    }
  }

  commit(end: QueueCursor): void {
    let bytes = 0;
    let n = 0;
    // Each record is taken off its segment's count: the entries and the segments are both in order.
    let si = 0;
    for (let f = this.inFlight.at(0); f !== undefined && cmp(f.end, end) <= 0; f = this.inFlight.at(++n)) {
      bytes += f.bytes;
      while (si < this.segs.length - 1 && this.segs[si]!.seg < f.end.seg) si++;
      const s = this.segs[si];
      if (s !== undefined && s.seg === f.end.seg) s.records--;
    }
    if (n === 0) return;
    this.inFlight.drop(n);
    this.pendingRecords -= n;
    this.pendingBytes -= bytes;
    this.committed = { ...end };
    this.cursorDirty = true;
    // Segments wholly before the cursor are done; the write segment is kept even when empty.
    while (this.segs.length > 1) {
      const first = this.segs[0] as SegInfo;
      if (first.seg < this.committed.seg || (first.seg === this.committed.seg && this.committed.off >= first.size)) {
        this.segs.shift();
        if (this.rfdSeg === first.seg) this.closeReader();
        if (this.chunkSeg === first.seg) this.chunkSeg = -1;
        try {
          fs.unlinkSync(path.join(this.dir, segmentName(first.seg)));
        } catch {
          // already gone: nothing to reclaim
        }
        if (this.committed.seg === first.seg) this.committed = { seg: (this.segs[0] as SegInfo).seg, off: 0 };
      } else {
        break;
      }
    }
  }

  rewind(): void {
    this.read = { ...this.committed };
    this.inFlight.clear();
  }

  lastPending(): Buffer | null {
    // Records are framed forwards only: the newest segment holding pending records is read from its start (or the
    // cursor), one segment at most (8 MiB by default), whatever the spool's size.
    for (let i = this.segs.length - 1; i >= 0; i--) {
      const seg = this.segs[i] as SegInfo;
      if (seg.seg < this.committed.seg) break;
      if (i === this.segs.length - 1) this.flushWrites();
      let off = seg.seg === this.committed.seg ? this.committed.off : 0;
      // By position: a record read is a view of the read chunk, which the next read may refill (a damaged record
      // across a chunk's end left the previous record's view showing other bytes).
      let last = -1;
      while (off < seg.size) {
        const r = this.readAt(seg.seg, off, seg.size);
        if (r === null) break;
        last = off;
        off += r.len;
      }
      // Read again from the file (the chunk may have been refilled): gone meanwhile (changed underneath), the older
      // segments are looked at instead.
      const r = last >= 0 ? this.readAt(seg.seg, last, seg.size) : null;
      if (r !== null) return Buffer.from(r.data);
    }
    return null;
  }

  close(): void {
    if (this.closed) return;
    this.counting?.();
    this.counting = null;
    try {
      this.sync();
    } finally {
      this.closed = true;
      for (const fd of [this.wfd, this.cfd, this.rfd]) if (fd >= 0) fs.closeSync(fd);
      this.wfd = this.cfd = this.rfd = -1;
    }
  }

  private flushWrites(): void {
    let off = 0;
    try {
      while (off < this.wused) off += fs.writeSync(this.wfd, this.wbuf, off, this.wused - off);
    } finally {
      // A write that failed part way (ENOSPC, EDQUOT) keeps what it did not write, at the front, for the next flush:
      // writing the whole buffer again would put its first bytes twice in the segment, and the record across the
      // join would fail its CRC and take the rest of the segment with it.
      if (off > 0) this.wbuf.copy(this.wbuf, 0, off, this.wused);
      this.wused -= off;
    }
  }

  /**
   * Everything spooled is delivered and the write segment has the highest number: its files go, the cursor moves to
   * segment 0 and segment 0 is started. In this order a crash at any step leaves nothing undelivered behind a cursor
   * that skips it (the old files are gone before the cursor names 0, and 0 is made only after).
   */
  private restartNumbering(): SegInfo {
    this.flushWrites();
    this.closeReader();
    for (const s of this.segs) {
      try {
        fs.unlinkSync(path.join(this.dir, segmentName(s.seg)));
      } catch {
        // already gone
      }
    }
    syncDir(this.dir);
    this.committed = { seg: 0, off: 0 };
    this.persistCursor();
    const fd = openFile(
      path.join(this.dir, segmentName(0)),
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND,
      'spool segment',
    );
    if (fs.fstatSync(fd).size !== 0) fs.ftruncateSync(fd, 0);
    syncDir(this.dir);
    fs.closeSync(this.wfd);
    this.wfd = fd;
    const first: SegInfo = { seg: 0, size: 0, records: 0, counted: 0 };
    this.segs = [first];
    this.countSeg = 0;
    this.read = { seg: 0, off: 0 };
    this.inFlight.clear();
    this.pendingBytes = 0;
    return first;
  }

  private openWriteSegment(): void {
    const last = this.segs[this.segs.length - 1] as SegInfo;
    const p = path.join(this.dir, segmentName(last.seg));
    this.wfd = openFile(p, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND, 'spool segment');
    // recover() may have cut a torn tail off this segment; appends must continue from the last good record.
    if (fs.fstatSync(this.wfd).size !== last.size) fs.ftruncateSync(this.wfd, last.size);
  }

  private loadCursor(): void {
    const b = Buffer.alloc(CURSOR_SLOT * 2);
    fs.readSync(this.cfd, b, 0, b.length, 0);
    let best: { gen: number; seg: number; off: number } | undefined;
    for (let slot = 0; slot < 2; slot++) {
      const o = slot * CURSOR_SLOT;
      if (b.readUInt32LE(o) !== CURSOR_MAGIC) continue;
      if (crc32(b.subarray(o, o + 16)) >>> 0 !== b.readUInt32LE(o + 16)) continue;
      const c = { gen: b.readUInt32LE(o + 4), seg: b.readUInt32LE(o + 8), off: b.readUInt32LE(o + 12) };
      // Never written (numbering stops at MAX_SEGMENT): trusting it would delete every segment below it.
      if (c.seg > MAX_SEGMENT) continue;
      if (!best || c.gen > best.gen) best = c;
    }
    if (best) {
      this.gen = best.gen;
      this.committed = { seg: best.seg, off: best.off };
    }
  }

  private persistCursor(): void {
    this.gen = (this.gen + 1) >>> 0;
    const b = Buffer.alloc(CURSOR_SLOT);
    b.writeUInt32LE(CURSOR_MAGIC, 0);
    b.writeUInt32LE(this.gen, 4);
    b.writeUInt32LE(this.committed.seg, 8);
    b.writeUInt32LE(this.committed.off, 12);
    b.writeUInt32LE(crc32(b.subarray(0, 16)) >>> 0, 16);
    fs.writeSync(this.cfd, b, 0, CURSOR_SLOT, (this.gen % 2) * CURSOR_SLOT);
    fs.fdatasyncSync(this.cfd);
    this.cursorDirty = false;
  }

  /** Scans segments, drops those before the cursor, cuts damaged tails and counts what is pending. */
  private recover(): void {
    const names = fs.readdirSync(this.dir).filter((n) => SEG_RE.test(n));
    const nums: number[] = [];
    for (const n of names) {
      const seg = Number((SEG_RE.exec(n) as RegExpExecArray)[1]);
      // Not a segment auditmux writes (the cursor could not name it): left where it is, reported, never read.
      if (seg > MAX_SEGMENT) this.onCorrupt?.(path.join(this.dir, n), 0, `segment number above ${MAX_SEGMENT}`);
      else nums.push(seg);
    }
    nums.sort((a, b) => a - b);
    const kept = nums.filter((seg) => seg >= this.committed.seg);
    for (const seg of nums) {
      const p = path.join(this.dir, segmentName(seg));
      if (seg < this.committed.seg) {
        fs.unlinkSync(p);
        continue;
      }
      // The first one kept holds the cursor (checked to lie on a record) and the last one the appends a crash may
      // have torn: both are read now. Those between were synced whole before the next one was made.
      const whole = seg === kept[0] || seg === kept[kept.length - 1];
      const info = whole ? this.scanSegment(seg, p) : this.sizeSegment(seg, p);
      this.segs.push(info);
      this.uncountedBytes += info.size - info.counted;
    }
    if (this.segs.length === 0) {
      const seg = Math.max(this.committed.seg, nums.length ? (nums[nums.length - 1] as number) + 1 : 0);
      this.segs.push({ seg, size: 0, records: 0, counted: 0 });
      this.committed = { seg, off: 0 };
    } else if ((this.segs[0] as SegInfo).seg !== this.committed.seg) {
      // The cursor's segment is gone (deleted after full delivery): start at the oldest that remains.
      this.committed = { seg: (this.segs[0] as SegInfo).seg, off: 0 };
    }
    const first = this.segs[0] as SegInfo;
    if (this.committed.off > first.size) this.committed.off = first.size;
    for (const s of this.segs) {
      this.pendingRecords += s.records;
    }
    this.pendingBytes = this.segs.reduce((a, s) => a + s.size, 0) - this.committed.off;
    this.cursorDirty = true;
  }

  private scanSegment(seg: number, p: string): SegInfo {
    const fd = openFile(p, fs.constants.O_RDWR, 'spool segment');
    try {
      const real = fs.fstatSync(fd).size;
      // No segment auditmux writes is larger than this; in a tenant's spool a planted (sparse) multi-GB one must not
      // be read whole. What lies past the limit is treated as a damaged tail and cut.
      const limit = this.segmentLimit();
      const size = Math.min(real, limit);
      const buf = Buffer.allocUnsafe(size);
      let got = 0;
      while (got < size) {
        const n = fs.readSync(fd, buf, got, size - got, got);
        if (n === 0) break;
        got += n;
      }
      if (got < size) buf.fill(0, got);
      if (real > limit) {
        this.onCorrupt?.(p, limit, `segment of ${real} bytes is larger than any spool segment (${limit})`);
      }
      let off = 0;
      let records = 0;
      const start = seg === this.committed.seg ? this.committed.off : 0;
      let startValid = start === 0;
      while (off < size) {
        const r = readFramed(buf, off, size);
        if (r === 'short' || r === 'bad') {
          this.onCorrupt?.(p, off, r === 'short' ? 'torn record at the end' : 'bad length or checksum');
          fs.ftruncateSync(fd, off);
          break;
        }
        if (off >= start) records++;
        off += r.len;
        if (off === start) startValid = true;
      }
      if (real > limit && off === size) {
        // Every byte up to the limit held whole records: still cut what lies beyond.
        fs.ftruncateSync(fd, off);
      }
      if (!startValid && seg === this.committed.seg) {
        // A cursor that is not on a record boundary cannot be trusted: resend the whole segment rather than lose any.
        this.onCorrupt?.(p, start, 'cursor not on a record boundary');
        this.committed = { seg, off: 0 };
        records = 0;
        for (let o = 0; o < off;) {
          const r = readFramed(buf, o, off) as { len: number };
          o += r.len;
          records++;
        }
      }
      return { seg, size: off, records, counted: off };
    } finally {
      fs.closeSync(fd);
    }
  }

  /** A segment between the first and the last: its size now, its records counted later (countSome, next). */
  private sizeSegment(seg: number, p: string): SegInfo {
    const fd = openFile(p, fs.constants.O_RDONLY, 'spool segment');
    try {
      const real = fs.fstatSync(fd).size;
      const limit = this.segmentLimit();
      // As scanSegment: a larger one is not a segment auditmux wrote; nothing past the limit is read (the record
      // across it is damage, where the count or delivery ends the segment).
      if (real > limit)
        this.onCorrupt?.(p, limit, `segment of ${real} bytes is larger than any spool segment (${limit})`);
      return { seg, size: Math.min(real, limit), records: 0, counted: 0 };
    } finally {
      fs.closeSync(fd);
    }
  }

  /** No segment auditmux writes is larger than this. */
  private segmentLimit(): number {
    return Math.max(this.segmentBytes, DEFAULT_SEGMENT_BYTES) + REC_HEADER + MAX_SPOOL_RECORD;
  }

  private readAt(seg: number, off: number, size: number): { len: number; data: Buffer } | null {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (this.chunkSeg === seg && off >= this.chunkStart) {
        const r = readFramed(this.chunk, off - this.chunkStart, this.chunkLen);
        if (r !== 'short') return r === 'bad' ? null : r;
      }
      if (attempt === 1) return null;
      this.fillChunk(seg, off, size);
    }
    return null;
  }

  private fillChunk(seg: number, off: number, size: number): void {
    if (this.rfdSeg !== seg) {
      this.closeReader();
      this.rfd = openFile(path.join(this.dir, segmentName(seg)), fs.constants.O_RDONLY, 'spool segment');
      this.rfdSeg = seg;
    }
    const want = Math.min(size - off, Math.max(CHUNK, REC_HEADER + MAX_SPOOL_RECORD));
    if (this.chunk.length < want) this.chunk = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const n = fs.readSync(this.rfd, this.chunk, got, want - got, off + got);
      if (n === 0) break;
      got += n;
    }
    this.chunkSeg = seg;
    this.chunkStart = off;
    this.chunkLen = got;
  }

  private closeReader(): void {
    if (this.rfd >= 0) fs.closeSync(this.rfd);
    this.rfd = -1;
    this.rfdSeg = -1;
    this.chunkSeg = -1;
  }
}

/** Spool files are opened without following a symlink and refused when linked elsewhere: truncating or appending
 * through a planted name would damage another file. */
function openFile(p: string, flags: number, what: string): number {
  return openNoFollow(p, flags, { mode: 0o600, what }).fd;
}

function cmp(a: QueueCursor, b: QueueCursor): number {
  return a.seg !== b.seg ? a.seg - b.seg : a.off - b.off;
}

/** The queue used when an output has no spool directory: same contract, lost on restart, bounded by bytes. */
export class MemoryQueue implements RecordQueue {
  readonly capacity: number;
  /** The records not committed, oldest first. */
  private readonly items = new Fifo<Buffer>();
  /** Index (absolute) of the first of them. */
  private base = 0;
  private readPos = 0;
  private used = 0;

  constructor(maxBytes: number) {
    this.capacity = maxBytes;
  }

  get pending(): number {
    return this.items.length;
  }

  get bytes(): number {
    return this.used;
  }

  /** Every record is counted as it comes. */
  get uncounted(): number {
    return 0;
  }

  append(rec: Buffer): boolean {
    if (this.used + rec.length + REC_HEADER > this.capacity) return false;
    this.items.push(rec);
    this.used += rec.length + REC_HEADER;
    return true;
  }

  sync(): void {
    // nothing to make durable
  }

  next(): QueuedRecord | null {
    const data = this.items.at(this.readPos - this.base);
    if (data === undefined) return null;
    this.readPos++;
    return { data, end: { seg: 0, off: this.readPos } };
  }

  commit(end: QueueCursor): void {
    // Committing is O(records released): the head moves and the spent slots are cleared (a splice of the array's
    // front moved every record behind them, once per ack: draining 200k records one ack at a time took 27 s).
    const n = Math.min(end.off - this.base, this.pending);
    if (n <= 0) return;
    for (let i = 0; i < n; i++) this.used -= (this.items.at(i) as Buffer).length + REC_HEADER;
    this.items.drop(n);
    this.base += n;
    if (this.readPos < this.base) this.readPos = this.base;
  }

  rewind(): void {
    this.readPos = this.base;
  }

  lastPending(): Buffer | null {
    return this.items.last() ?? null;
  }

  close(): void {
    this.items.clear();
    this.used = 0;
  }
}
