// Formats records as auditd 3.0.9 log lines (RAW and ENRICHED), byte for byte, straight into the writer's buffer.
import { Buffer } from 'node:buffer';
import { writerTypeName } from '../vocab/msgtypes';
import { hexDigit } from '../records/record';
import type { EventRecord } from '../records/event';
import { bytesView, copyBytes, indexOfByte } from '../bytes';
import { escapedLength, escapeInterp, textNeedsEncoding } from '../records/encode';
import { AUDIT_ARCH_I386, AUDIT_ARCH_X86_64 } from '../kernel/constants';
import { systemAccounts, type IdNameCache } from '../vocab/accounts';
import { archName } from '../vocab/arch';
import {
  archText,
  FIELD_KIND,
  idText,
  interpretsSaddr,
  K_GID,
  K_SYSCALL,
  K_UID,
  K_ARCH,
  parseId,
  sockaddrText,
  sockaddrTextLength,
  syscallText,
  syscallTextLength,
  type FieldKind as Kind,
} from '../vocab/interpret';

export type LogFormat = 'RAW' | 'ENRICHED';

/** lib/libaudit.h MAX_AUDIT_MESSAGE_LENGTH */
export const MAX_AUDIT_MESSAGE_LENGTH = 8970;
/** auditd-event.c FORMAT_BUF_LEN = MAX_AUDIT_MESSAGE_LENGTH + _POSIX_HOST_NAME_MAX */
const FORMAT_BUF_LEN = MAX_AUDIT_MESSAGE_LENGTH + 255;
/** snprintf(format_buf, MAX_AUDIT_MESSAGE_LENGTH - 32, ...) keeps at most this many bytes without a node name. */
const RAW_MAX_NO_NODE = MAX_AUDIT_MESSAGE_LENGTH - 32 - 1;
/** replace_event_msg() cuts every formatted line to MAX_AUDIT_MESSAGE_LENGTH - 1 bytes. */
const LINE_MAX = MAX_AUDIT_MESSAGE_LENGTH - 1;
const MIN_SPACE_LEFT = 24;
/** AUDIT_INTERP_SEPARATOR */
export const INTERP_SEPARATOR = 0x1d;
/** Room a caller must leave in the destination for one line plus its newline. */
export const MAX_LINE_BYTES = LINE_MAX + 1;

const C_LF = 0x0a;
const C_SPACE = 0x20;
const C_DQUOTE = 0x22;
const C_SQUOTE = 0x27;
const C_EQ = 0x3d;

/** One field name ENRICHED interprets. */
interface FieldEntry {
  key: Buffer;
  upper: string;
  kind: Kind;
  /** Index of this field's cache of encoded `NAME=value` texts in a formatter. */
  index: number;
  /** Next entry with the same length and first byte. */
  next: FieldEntry | undefined;
}

/**
 * Entries by key length and the first byte's low 5 bits. Most keys of a record (a0, exit, pid, comm...) land on an
 * empty
 * slot, so rejecting them costs one array load; a hit is confirmed byte by byte.
 */
const fieldSlot = (len: number, first: number): number => len * 32 + (first & 31);
let minKeyLen = Infinity;
let maxKeyLen = 0;
for (const key of FIELD_KIND.keys()) {
  minKeyLen = Math.min(minKeyLen, key.length);
  maxKeyLen = Math.max(maxKeyLen, key.length);
}
const MIN_KEY_LEN = minKeyLen;
const MAX_KEY_LEN = maxKeyLen;
const FIELD_SLOTS = new Array<FieldEntry | undefined>(fieldSlot(MAX_KEY_LEN, 31) + 1).fill(undefined);
const FIELD_ENTRIES: FieldEntry[] = [];
for (const [key, kind] of FIELD_KIND) {
  const slot = fieldSlot(key.length, key.charCodeAt(0));
  const e: FieldEntry = {
    key: Buffer.from(key, 'latin1'),
    upper: key.toUpperCase(),
    kind,
    index: FIELD_ENTRIES.length,
    next: FIELD_SLOTS[slot],
  };
  FIELD_SLOTS[slot] = e;
  FIELD_ENTRIES.push(e);
}
/** Cache sizes (log2) by kind: a host logs a handful of ids and arches but may log many syscalls. */
const CACHE_BITS: Record<Kind, number> = { 1: 6, 2: 6, 3: 8, 4: 3, 5: 0 };

/**
 * Index of the first space at or after i, read four bytes at a time (SWAR: a space is a zero byte of x ^ 0x20202020,
 * and the lowest flagged byte is always a true one). A space must follow before the end of the view: walk's sentinel.
 */
function nextSpace(v: DataView, i: number): number {
  for (;;) {
    const x = v.getInt32(i, true) ^ 0x20202020;
    const z = (x - 0x01010101) & ~x & 0x80808080;
    if (z !== 0) return i + ((31 - Math.clz32(z & -z)) >> 3);
    i += 4;
  }
}

/** Index of the first '=' or space at or after i: nextSpace() for the end of a key. */
function keyEnd(v: DataView, i: number): number {
  for (;;) {
    const w = v.getInt32(i, true);
    const x = w ^ 0x20202020;
    const y = w ^ 0x3d3d3d3d;
    const z = ((x - 0x01010101) & ~x & 0x80808080) | ((y - 0x01010101) & ~y & 0x80808080);
    if (z !== 0) return i + ((31 - Math.clz32(z & -z)) >> 3);
    i += 4;
  }
}

function keyIs(key: Buffer, s: Buffer, ks: number): boolean {
  for (let j = 0; j < key.length; j++) if (key[j] !== s[ks + j]) return false;
  return true;
}

/**
 * Number -> encoded text, direct-mapped on the low bits: a lookup is an array load and a compare, with no hashing and
 * no allocation. Collisions only recompute an entry, and a host logs few distinct ids and syscall numbers.
 */
class NumCache {
  private readonly keys: Float64Array;
  private readonly vals: (Buffer | undefined)[];
  private readonly mask: number;

  constructor(bits: number) {
    this.mask = (1 << bits) - 1;
    this.keys = new Float64Array(1 << bits).fill(NaN);
    this.vals = new Array<Buffer | undefined>(1 << bits).fill(undefined);
  }

  get(k: number): Buffer | undefined {
    const i = k & this.mask;
    return this.keys[i] === k ? this.vals[i] : undefined;
  }

  set(k: number, v: Buffer): Buffer {
    const i = k & this.mask;
    this.keys[i] = k;
    this.vals[i] = v;
    return v;
  }

  clear(): void {
    this.keys.fill(NaN);
    this.vals.fill(undefined);
  }
}

/**
 * A plain decimal value (optional '-', 1-15 digits) as a number, or NaN for anything else: exactly the cases where the
 * bytes and Number() of their text agree and the result is exact. Anything unusual takes the string path.
 */
function plainDecimal(s: Buffer, vs: number, ve: number): number {
  let i = vs;
  const neg = s[i] === 0x2d;
  if (neg) i++;
  if (ve - i < 1 || ve - i > 15) return NaN;
  let v = 0;
  for (; i < ve; i++) {
    const c = s[i]!;
    if (c < 0x30 || c > 0x39) return NaN;
    v = v * 10 + (c - 0x30);
  }
  return neg ? -v : v;
}

/**
 * Bytes Number() may read as part of an integer (digits, a sign, '.', the letters of 0x/0o/0b and exponents,
 * whitespace): a value with any other byte is no number, and its interpretation is known without a string.
 */
const NUMBERISH = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEFxXoO+-.\t\n\v\f\r \xa0') NUMBERISH[c.charCodeAt(0)] = 1;

function mayBeNumber(s: Buffer, vs: number, ve: number): boolean {
  for (let i = vs; i < ve; i++) if (NUMBERISH[s[i]!] === 0) return false;
  return true;
}

/** libaudit's text for a uid or gid that is no number; with its space it is always written hex. */
const CONVERSION_ERROR = Buffer.from('conversion error(', 'latin1');
/** Uppercase hex digits by value, as char codes. */
const HEX_UPPER = Buffer.from('0123456789ABCDEF', 'latin1');
const UNKNOWN_SYSCALL_LEN = 'unknown-syscall()'.length;
const UNKNOWN_ELF_LEN = 'unknown-elf-type()'.length;

/** Record types are below this except for rare user-space ones, which live in a Map. */
const TYPE_TABLE_SIZE = 4096;
const MEMO_FIELDS = 32;
const MEMO_BYTES = 1024;

/**
 * The interpreted fields last appended for one record type: their (entry, key) pairs and the bytes after the separator.
 * Consecutive records of a type mostly interpret to the same text (same process, same ids), and a record that matches
 * field for field gets those bytes in one copy instead of a cache lookup and a copy per field.
 */
class SuffixMemo {
  count = 0;
  readonly entries = new Int32Array(MEMO_FIELDS);
  readonly keys = new Float64Array(MEMO_FIELDS);
  /** Where field k's text ends, counted from the byte after the separator. */
  readonly ends = new Int32Array(MEMO_FIELDS);
  readonly bytes = Buffer.allocUnsafe(MEMO_BYTES);
  /** bytes[0..length of the suffix); remade only when the memo changes. */
  view = this.bytes.subarray(0, 0);
}

interface TypeInfo {
  /** `type=NAME msg=` (with node= when configured). */
  prefix: Buffer;
  /** ENRICHED only. */
  memo: SuffixMemo | undefined;
}

export interface FormatOptions {
  format: LogFormat;
  /** node= name; undefined or '' = name_format none. */
  node?: string;
  /** 1336 is CONTAINER_ID (contid-patched kernel) rather than URINGOP. */
  contidKernel?: boolean;
  ids?: IdNameCache;
}

/**
 * What decides a line's bytes besides its record: formatters with the same style make the same line of a record, so
 * one may copy another's (src/output/recent-lines.ts). One object per distinct style, compared by identity.
 */
export interface LineStyle {
  readonly name: string;
  /** A number of its own (RecentLines mixes it into a record's slot). */
  readonly id: number;
  /** Text logs of the process writing in this style (RecentLines.join/leave): below two, none has a line to share. */
  logs: number;
}

/** RAW lines: by format text; ENRICHED lines also by the account names they show (one table per IdNameCache). */
const rawStyles = new Map<string, LineStyle>();
const enrichedStyles = new WeakMap<IdNameCache, Map<string, LineStyle>>();
let nextStyleId = 1;

function lineStyle(format: LogFormat, node: string | undefined, contidKernel: boolean, ids: IdNameCache): LineStyle {
  // node is nodeText()'s output: it has no NUL, so the name cannot be another style's.
  const name = `${format}\0${contidKernel ? 'contid' : 'mainline'}\0${node === undefined ? '' : `node=${node}`}`;
  let styles = format === 'ENRICHED' ? enrichedStyles.get(ids) : rawStyles;
  if (styles === undefined) {
    styles = new Map<string, LineStyle>();
    enrichedStyles.set(ids, styles);
  }
  let style = styles.get(name);
  if (style === undefined) {
    style = { name, id: nextStyleId++, logs: 0 };
    styles.set(name, style);
  }
  return style;
}

export class LineFormatter {
  readonly format: LogFormat;
  /** Shared by every formatter that makes the same lines (see LineStyle). */
  readonly style: LineStyle;
  private readonly enriched: boolean;
  private readonly node: string | undefined;
  private readonly rawCap: number;
  private readonly contidKernel: boolean;
  private readonly ids: IdNameCache;
  private readonly typeTable = new Array<TypeInfo | undefined>(TYPE_TABLE_SIZE).fill(undefined);
  private readonly typeMap = new Map<number, TypeInfo>();
  /** Encoded `NAME=value` texts by FieldEntry.index, keyed by the value's number; names can change on reload(). */
  private readonly texts = FIELD_ENTRIES.map((e) => new NumCache(CACHE_BITS[e.kind]));
  private idGeneration = -1;
  // Scratch line for when the destination lacks room for auditd's whole format buffer; we copy out once.
  private readonly scratch = Buffer.allocUnsafe(FORMAT_BUF_LEN + 64);
  /** A DataView of the buffer being enriched, for nextSpace(); remade only when the destination buffer changes. */
  private view: DataView = new DataView(this.scratch.buffer, this.scratch.byteOffset, this.scratch.byteLength);
  private viewOf: Buffer = this.scratch;
  // State of the record being enriched; fields rather than an object so a record allocates nothing.
  /** Where the next interpreted byte goes. */
  private w = 0;
  /** End of auditd's format buffer for this record: `left` in format_enrich() is limit - w. */
  private limit = 0;
  /** Interpreted fields so far, counting ones that did not fit (auditd counts them for its spacing too). */
  private added = 0;
  /** The record's arch= so far (-1: none or unparsable), which selects the syscall table. */
  private arch = -1;
  /** Where the separator goes; the fields' bytes start after it. */
  private sep = 0;
  private memo = new SuffixMemo();
  /**
   * Leading fields of the record that equal the memo's, accounted for in w but not yet written; -1 once one differed
   * and fields are written as they come.
   */
  private matched = 0;
  /** This record's fields so far, the next memo when it differs from the current one. */
  private readonly seen = new SuffixMemo();
  /** False once a field took the string path or did not fit: such a record is not memoised. */
  private memoable = true;
  /**
   * Interpreted texts made on the string path (odd ids, unknown syscalls and arches, sockaddrs). Their length is
   * known first, and one is made only for a field that fits: a user message of thousands of `uid=x` made and dropped
   * one each (60 times a plain record's cost). Tests count them.
   */
  stringTexts = 0;

  constructor(opts: FormatOptions) {
    this.format = opts.format;
    this.enriched = opts.format === 'ENRICHED';
    // A node name can come from reverse DNS (name_format fqd): a space or newline in it would split every line.
    this.node = opts.node ? nodeText(opts.node) : undefined;
    this.rawCap = this.node !== undefined ? FORMAT_BUF_LEN - 32 - 1 : RAW_MAX_NO_NODE;
    this.contidKernel = opts.contidKernel ?? false;
    // The system's accounts are read into one table for the process: every log names an id alike, so their ENRICHED
    // lines share a style.
    this.ids = opts.ids ?? systemAccounts();
    this.style = lineStyle(this.format, this.node, this.contidKernel, this.ids);
  }

  private typeInfo(type: number): TypeInfo {
    const inTable = type >= 0 && type < TYPE_TABLE_SIZE;
    let t = inTable ? this.typeTable[type] : this.typeMap.get(type);
    if (t === undefined) {
      const name = writerTypeName(type, this.contidKernel);
      const prefix = Buffer.from(
        this.node !== undefined ? `node=${this.node} type=${name} msg=` : `type=${name} msg=`,
        'latin1',
      );
      t = { prefix, memo: this.enriched ? new SuffixMemo() : undefined };
      if (inTable) this.typeTable[type] = t;
      else this.typeMap.set(type, t);
    }
    return t;
  }

  /**
   * Writes the line for (type, payload) and a trailing newline at dst[pos..]; returns the new position.
   * `payload` must already stop at the first NUL (AuditRecord.payload does). dst needs MAX_LINE_BYTES free.
   */
  formatInto(type: number, payload: Buffer, dst: Buffer, pos: number): number {
    return this.formatRangeInto(type, payload, 0, payload.length, dst, pos);
  }

  /**
   * formatInto for the payload src[start..end): a record read in place in the kernel batch, with no Buffer view made
   * for it (a view per record was a fifth of the log writer's JavaScript time at 80k events/s).
   */
  formatRangeInto(type: number, src: Buffer, start: number, end: number, dst: Buffer, pos: number): number {
    // Formatting straight into dst saves a copy, but ENRICHED may write up to auditd's whole format buffer before the
    // line is cut to LINE_MAX; without that much room the line is built in scratch.
    const direct = dst.length - pos >= FORMAT_BUF_LEN;
    const o = direct ? dst : this.scratch;
    const base = direct ? pos : 0;
    const t = this.typeInfo(type);
    let len = this.formatRaw(t.prefix, src, start, end, o, base);
    if (t.memo !== undefined) len = this.enrich(type, t.memo, o, base, base + t.prefix.length, len);
    if (len > LINE_MAX) len = LINE_MAX;
    if (!direct) o.copy(dst, pos, 0, len);
    dst[pos + len] = C_LF;
    return pos + len + 1;
  }

  /** The line for one record as a string without the newline (tests, diagnostics). */
  formatRecord(rec: EventRecord): string {
    const out = Buffer.allocUnsafe(MAX_LINE_BYTES);
    const end = this.formatInto(rec.type, rec.payload, out, 0);
    return out.toString('latin1', 0, end - 1);
  }

  /** format_raw() of the payload src[start..end) into o[base..]: returns the line's length. */
  private formatRaw(p: Buffer, src: Buffer, start: number, end: number, o: Buffer, base: number): number {
    const plen = p.length;
    const total = plen + end - start;
    const len = total > this.rawCap ? this.rawCap : total;
    // TypedArray.set is a memmove without Buffer.copy's argument checks and native call; a plain Uint8Array view
    // costs about half of a Buffer's (subarray goes through Buffer's own constructor). src/bytes.ts: no method loads.
    copyBytes(o, plen <= len ? p : p.subarray(0, len), base);
    if (len > plen) {
      // A record's own payload, whole (the event path), is copied as it is: no view to allocate.
      const n = len - plen;
      copyBytes(o, start === 0 && n === src.length ? src : bytesView(src, start, n), base + plen);
    }
    // Replace \n with a space, as auditd does, so a record stays on one line. A 0x1D in the text (a user message's
    // msg='...' is the sender's bytes) would start a forged interpretation list for ausearch; auditd writes it as is,
    // auditmux as a space, like the newline. Each is found by memchr over the copied text, which the byte after it
    // (o has FORMAT_BUF_LEN of room; the caller writes the newline or the interpretation there next) stops.
    const from = base + plen;
    const stop = base + len;
    if (stop > from) {
      o[stop] = C_LF;
      for (let i = indexOfByte(o, C_LF, from); i < stop; i = indexOfByte(o, C_LF, i + 1)) o[i] = C_SPACE;
      o[stop] = INTERP_SEPARATOR;
      for (let i = indexOfByte(o, INTERP_SEPARATOR, from); i < stop; i = indexOfByte(o, INTERP_SEPARATOR, i + 1))
        o[i] = C_SPACE;
    }
    // Without a node name auditd trims one trailing space from the untruncated text; with one, the trimmed space is
    // the newline its format string added, so the payload keeps its own.
    if (this.node === undefined && total <= this.rawCap && len > 0 && o[base + len - 1] === C_SPACE) return len - 1;
    return len;
  }

  /** format_enrich(): appends 0x1D and the interpreted fields of o[from..base+mlen); returns the new length. */
  private enrich(type: number, memo: SuffixMemo, o: Buffer, base: number, from: number, mlen: number): number {
    const end = base + mlen;
    this.limit = base + FORMAT_BUF_LEN;
    this.w = end;
    if (this.limit - end <= MIN_SPACE_LEFT) return mlen;
    // passwd or group changed (useradd): a counter read here, a stat a second at most, and a new generation if so.
    this.ids.refresh();
    if (this.ids.generation !== this.idGeneration) {
      for (const e of FIELD_ENTRIES) if (e.kind === K_UID || e.kind === K_GID) this.texts[e.index]!.clear();
      for (const t of this.typeTable) if (t?.memo !== undefined) t.memo.count = 0;
      for (const t of this.typeMap.values()) if (t.memo !== undefined) t.memo.count = 0;
      this.idGeneration = this.ids.generation;
    }
    this.added = 0;
    this.arch = -1;
    this.sep = end;
    this.memo = memo;
    this.matched = 0;
    this.seen.count = 0;
    this.memoable = true;
    if (o !== this.viewOf) {
      this.view = new DataView(o.buffer, o.byteOffset, o.byteLength);
      this.viewOf = o;
    }
    this.walk(type, o, from, end);
    if (this.matched > 0) {
      if (this.matched === memo.count) copyBytes(o, memo.view, end + 1);
      else this.writeMatched(o);
    }
    // A record that matched to the end had as many fields as the memo: only a different one replaces it.
    if (this.memoable && this.matched !== memo.count) this.remember(o);
    // The separator goes in last: until then o[end] is walk's sentinel.
    if (this.added > 0) o[end] = INTERP_SEPARATOR;
    return this.w - base;
  }

  /**
   * auparse's field split of o[from..to), interpreting the keys found in FIELD_SLOTS. o[to] is set to a space for
   * the walk (and put back after): it ends every key and unquoted value, so those scans need no bounds check, and
   * nextSpace() reads at most 3 bytes past it (the destination has FORMAT_BUF_LEN bytes of room).
   */
  private walk(type: number, o: Buffer, from: number, to: number): void {
    const saved = o[to]!;
    o[to] = C_SPACE;
    let i = from;
    while (i < to && this.limit - this.w > MIN_SPACE_LEFT) {
      if (o[i] === C_SPACE) {
        i++;
        continue;
      }
      const ks = i;
      i = keyEnd(this.view, i);
      if (o[i] !== C_EQ) continue; // a word without '=' (the audit(...): header)
      const klen = i - ks;
      const vs = i + 1;
      // At the end (vs === to) this reads the sentinel: an empty value, never a stale byte taken for a quote.
      const q = o[vs]!;
      let ve: number;
      if (q === C_DQUOTE || q === C_SQUOTE) {
        ve = vs + 1;
        while (ve < to && o[ve] !== q) ve++;
        if (ve < to) ve++;
      } else {
        ve = nextSpace(this.view, vs);
      }
      i = ve;
      if (klen < MIN_KEY_LEN || klen > MAX_KEY_LEN) continue;
      // auparse splits a user message's msg='...' into fields of their own.
      if (q === C_SQUOTE && klen === 3 && o[ks] === 0x6d && o[ks + 1] === 0x73 && o[ks + 2] === 0x67) {
        this.walk(type, o, vs + 1, ve > vs + 1 && o[ve - 1] === C_SQUOTE ? ve - 1 : ve);
        continue;
      }
      let e = FIELD_SLOTS[fieldSlot(klen, o[ks]!)];
      while (e !== undefined && !keyIs(e.key, o, ks)) e = e.next;
      if (e !== undefined) this.interpret(type, e, o, vs, ve);
    }
    o[to] = saved;
  }

  /**
   * Appends one interpreted field. Values the kernel writes (plain decimal ids and syscall numbers, known arches) are
   * parsed from their bytes into a number that keys the field's cached text; only odd values and sockaddrs go through
   * a JS string.
   */
  private interpret(type: number, e: FieldEntry, o: Buffer, vs: number, ve: number): void {
    const kind = e.kind;
    let n: number;
    let key: number;
    if (kind === K_UID || kind === K_GID) {
      n = plainDecimal(o, vs, ve);
      if (Number.isNaN(n)) {
        this.idString(e, o, vs, ve);
        return;
      }
      // strtoul semantics: -1 wraps to 4294967295.
      if (n < 0) n = n >>> 0;
      key = n;
    } else if (kind === K_SYSCALL) {
      n = plainDecimal(o, vs, ve);
      if (!(n >= 0)) {
        // Its text's length first (from the bytes when no number can be read from them), the text only if it fits.
        const v = mayBeNumber(o, vs, ve) ? o.toString('latin1', vs, ve) : undefined;
        const len = v === undefined ? UNKNOWN_SYSCALL_LEN + escapedLength(o, vs, ve) : syscallTextLength(v, this.arch);
        const p = this.reserveString(o, e.upper.length + 1 + len);
        if (p >= 0) this.putString(o, p, `${e.upper}=${syscallText(v ?? o.toString('latin1', vs, ve), this.arch)}`);
        return;
      }
      // The name depends on the record's arch too: x86_64 (or none seen), i386, anything else.
      const a = this.arch;
      key = n * 4 + (a === AUDIT_ARCH_I386 ? 1 : a === AUDIT_ARCH_X86_64 || a < 0 ? 0 : 2);
    } else if (kind === K_ARCH) {
      n = parseHexBytes(o, vs, ve);
      this.arch = n;
      // An unknown architecture prints its text as written: not cached by value.
      if (archName(n) === undefined) {
        // unknown-elf-type(VALUE), the value escaped.
        const p = this.reserveString(o, e.upper.length + 1 + UNKNOWN_ELF_LEN + escapedLength(o, vs, ve));
        if (p >= 0) this.putString(o, p, `${e.upper}=${archText(o.toString('latin1', vs, ve))}`);
        return;
      }
      key = n;
    } else {
      if (!interpretsSaddr(type)) return;
      const p = this.reserveString(o, e.upper.length + 1 + sockaddrTextLength(o, vs, ve));
      if (p >= 0) this.putString(o, p, `${e.upper}=${sockaddrText(o.toString('latin1', vs, ve))}`);
      return;
    }
    const seen = this.seen;
    const k = seen.count;
    if (k === MEMO_FIELDS) this.memoable = false;
    else {
      seen.entries[k] = e.index;
      seen.keys[k] = key;
      seen.count = k + 1;
    }
    const memo = this.memo;
    if (this.matched === k && k < memo.count && memo.entries[k] === e.index && memo.keys[k] === key) {
      if (this.reserve(o, memo.ends[k] - (k === 0 ? 0 : memo.ends[k - 1]! + 1)) >= 0) {
        this.matched = k + 1;
        seen.ends[k] = memo.ends[k]!;
        return;
      }
      this.memoable = false; // it did not fit: skipped, as on the plain path
      this.writeMatched(o);
      return;
    }
    if (this.matched >= 0) this.writeMatched(o);
    const cache = this.texts[e.index]!;
    if (this.putEncoded(o, cache.get(key) ?? cache.set(key, Buffer.from(this.fieldText(e, n), 'latin1')))) {
      if (k < MEMO_FIELDS) seen.ends[k] = this.w - this.sep - 1;
    } else {
      this.memoable = false;
    }
  }

  /** Writes the fields accounted for from the memo so far; fields from here on are written as they come. */
  private writeMatched(o: Buffer): void {
    const k = this.matched;
    if (k > 0) copyBytes(o, bytesView(this.memo.bytes, 0, this.memo.ends[k - 1]!), this.sep + 1);
    this.matched = -1;
  }

  /** Makes this record's fields the memo of its type. */
  private remember(o: Buffer): void {
    const m = this.memo;
    const n = this.seen.count;
    const len = n === 0 ? 0 : this.seen.ends[n - 1]!;
    if (len > MEMO_BYTES) {
      m.count = 0;
      m.view = m.bytes.subarray(0, 0);
      return;
    }
    m.entries.set(this.seen.entries);
    m.keys.set(this.seen.keys);
    m.ends.set(this.seen.ends);
    m.count = n;
    copyBytes(m.bytes, bytesView(o, this.sep + 1, len), 0);
    m.view = m.bytes.subarray(0, len);
  }

  /** `NAME=value` of a field whose value parsed to n. */
  private fieldText(e: FieldEntry, n: number): string {
    switch (e.kind) {
      case K_UID:
      case K_GID:
        return encodeNv(e.upper, this.idText(e.kind, n));
      case K_SYSCALL:
        return `${e.upper}=${syscallText(String(n), this.arch)}`;
      default:
        return `${e.upper}=${archName(n)!}`;
    }
  }

  /** What auparse prints for a uid or gid, before encoding. */
  private idText(kind: Kind, id: number): string {
    return idText(this.ids, kind, id);
  }

  /**
   * add_field()'s bookkeeping for a field of n bytes: room for the separator (written by enrich()) before the first
   * field, a space before the others, and a field that does not fit is skipped rather than cut (auditd counts it
   * anyway). Returns where its bytes go, or -1.
   */
  private reserve(o: Buffer, n: number): number {
    if (this.added++ === 0) this.w++;
    if (n + 2 >= this.limit - this.w) return -1;
    if (this.added > 1) o[this.w++] = C_SPACE;
    const p = this.w;
    this.w = p + n;
    return p;
  }

  /** Returns false when the field did not fit. */
  private putEncoded(o: Buffer, text: Buffer): boolean {
    let p = this.reserve(o, text.length);
    if (p < 0) return false;
    // Interpreted fields are a few bytes: a loop beats a native copy call.
    for (let j = 0; j < text.length; j++) o[p++] = text[j]!;
    return true;
  }

  /**
   * reserve() for a field interpreted through a string (rare values, not memoised) whose text will be `len` bytes:
   * -1 when it does not fit, and then no text is made.
   */
  private reserveString(o: Buffer, len: number): number {
    if (this.matched >= 0) this.writeMatched(o);
    this.memoable = false;
    return this.reserve(o, len);
  }

  /** Writes the text of a field reserveString() made room for (exactly its length: the room is already taken). */
  private putString(o: Buffer, p: number, text: string): void {
    this.stringTexts++;
    o.write(text, p, text.length, 'latin1');
  }

  /**
   * A uid or gid that is not plain decimal (idValueText()): an id Number() reads (0x10, 1e3, -0) is named as the
   * number path names it, from the same cache; anything else is `conversion error(VALUE)`, which has a space and so
   * is always hex: written here byte by byte, its length known from the value's.
   */
  private idString(e: FieldEntry, o: Buffer, vs: number, ve: number): void {
    const id = mayBeNumber(o, vs, ve) ? parseId(o.toString('latin1', vs, ve)) : undefined;
    if (id !== undefined) {
      const cache = this.texts[e.index]!;
      let text = cache.get(id);
      const len = text !== undefined ? text.length : e.upper.length + 1 + encodedLength(idText(this.ids, e.kind, id));
      const p = this.reserveString(o, len);
      if (p < 0) return;
      if (text === undefined) {
        this.stringTexts++;
        text = cache.set(id, Buffer.from(this.fieldText(e, id), 'latin1'));
      }
      for (let j = 0; j < text.length; j++) o[p + j] = text[j]!;
      return;
    }
    const vlen = ve - vs;
    let p = this.reserveString(o, e.upper.length + 1 + 2 * (CONVERSION_ERROR.length + vlen + 1));
    if (p < 0) return;
    this.stringTexts++;
    p += o.write(e.upper, p, 'latin1');
    o[p++] = C_EQ;
    for (let j = 0; j < CONVERSION_ERROR.length; j++) p = putHex(o, p, CONVERSION_ERROR[j]!);
    for (let j = vs; j < ve; j++) p = putHex(o, p, o[j]!);
    putHex(o, p, 0x29);
  }
}

/** A node name as written after node=: escapeInterp(), and a space as \040 so that it stays one field. */
export function nodeText(name: string): string {
  return escapeInterp(Buffer.from(name, 'utf8').toString('latin1')).replace(/ /g, '\\040');
}

/** parseHex() of s[vs..ve) without a string. */
function parseHexBytes(s: Buffer, vs: number, ve: number): number {
  if (ve - vs < 1 || ve - vs > 8) return -1;
  let n = 0;
  for (let i = vs; i < ve; i++) {
    const d = hexDigit(s[i]!);
    if (d < 0) return -1;
    n = n * 16 + d;
  }
  return n;
}

/** Writes the two uppercase hex digits of byte c at o[p]; returns p + 2. */
function putHex(o: Buffer, p: number, c: number): number {
  o[p] = HEX_UPPER[c >> 4]!;
  o[p + 1] = HEX_UPPER[c & 15]!;
  return p + 2;
}

/** audit_encode_nv_string(): NAME="value", or NAME=HEX when the value has a quote, space, control or non-ASCII byte. */
export function encodeNv(name: string, value: string): string {
  return `${name}=${encodedValue(value)}`;
}

/** encodedValue(value).length, with no text made. */
function encodedLength(value: string): number {
  return textNeedsEncoding(value) ? 2 * value.length : value.length + 2;
}

/** The part of audit_encode_nv_string() after `NAME=`, which ENRICHED caches per id. */
function encodedValue(value: string): string {
  return textNeedsEncoding(value) ? Buffer.from(value, 'latin1').toString('hex').toUpperCase() : `"${value}"`;
}
