// Byte-level reading of one audit log line: header (node, type, stamp) by offsets, single fields by memmem, full
// tokenizing.
import { Buffer } from 'node:buffer';

const C_SPACE = 0x20;
const C_DQUOTE = 0x22;
const C_SQUOTE = 0x27;
const C_RPAREN = 0x29;
const C_COLON = 0x3a;
const C_DOT = 0x2e;
const C_EQ = 0x3d;
/** AUDIT_INTERP_SEPARATOR: ENRICHED logs append interpreted names after this byte. */
export const INTERP_SEP = 0x1d;

const NODE_PREFIX = Buffer.from('node=', 'latin1');
const TYPE_PREFIX = Buffer.from('type=', 'latin1');
const MSG_AUDIT = Buffer.from(' msg=audit(', 'latin1');

/**
 * Offsets of one parsed header. Reused between lines (one object per scan) so the hot loop allocates only the
 * event key string.
 */
export interface LineHeader {
  /** [nodeStart, nodeEnd) of the node name, or -1 when the line has no `node=` prefix. */
  nodeStart: number;
  nodeEnd: number;
  typeStart: number;
  typeEnd: number;
  /** [stampStart, stampEnd) covers `SEC.MSEC:SERIAL`. */
  stampStart: number;
  stampEnd: number;
  sec: number;
  ms: number;
  serial: number;
  /** First byte of the first field; bodyStart - 1 is a space, so ` name=` searches also find the first field. */
  bodyStart: number;
  /** End of the kernel/user text: the 0x1D separator of ENRICHED lines, or the end of the line. */
  bodyEnd: number;
}

export function newHeader(): LineHeader {
  return {
    nodeStart: -1,
    nodeEnd: -1,
    typeStart: 0,
    typeEnd: 0,
    stampStart: 0,
    stampEnd: 0,
    sec: 0,
    ms: 0,
    serial: 0,
    bodyStart: 0,
    bodyEnd: 0,
  };
}

function startsWithAt(b: Buffer, at: number, end: number, p: Buffer): boolean {
  if (at + p.length > end) return false;
  for (let i = 0; i < p.length; i++) if (b[at + i] !== p[i]) return false;
  return true;
}

/** Reads digits in [at, end); returns the index after them, or -1 when there are none or more than 15. */
function digits(b: Buffer, at: number, end: number): number {
  let i = at;
  while (i < end && b[i]! >= 0x30 && b[i]! <= 0x39) i++;
  return i === at || i - at > 15 ? -1 : i;
}

function num(b: Buffer, s: number, e: number): number {
  let v = 0;
  for (let i = s; i < e; i++) v = v * 10 + (b[i]! - 0x30);
  return v;
}

/**
 * Parses `[node=N ]type=T msg=audit(SEC.MSEC:SERIAL): ...` in line[start, end) into h. Returns null on success or the
 * reason the line is not an audit record, for file:line messages.
 */
export function parseHeader(b: Buffer, start: number, end: number, h: LineHeader): string | null {
  let i = start;
  h.nodeStart = -1;
  h.nodeEnd = -1;
  if (startsWithAt(b, i, end, NODE_PREFIX)) {
    h.nodeStart = i + NODE_PREFIX.length;
    const sp = b.indexOf(C_SPACE, h.nodeStart);
    if (sp < 0 || sp >= end) return 'node= without a record after it';
    h.nodeEnd = sp;
    i = sp + 1;
  }
  if (!startsWithAt(b, i, end, TYPE_PREFIX)) return 'no "type=" at the start of the line';
  h.typeStart = i + TYPE_PREFIX.length;
  const m = b.indexOf(MSG_AUDIT, h.typeStart);
  if (m < 0 || m + MSG_AUDIT.length > end) return 'no " msg=audit(" after the type';
  h.typeEnd = m;
  if (h.typeEnd === h.typeStart) return 'empty record type';
  for (let k = h.typeStart; k < h.typeEnd; k++) if (b[k] === C_SPACE || b[k] === C_EQ) return 'malformed record type';
  const s0 = m + MSG_AUDIT.length;
  h.stampStart = s0;
  const s1 = digits(b, s0, end);
  // Past 12 digits of seconds (year 33658) a time is no Date: malformed here, not a RangeError in a report later.
  if (s1 < 0 || s1 - s0 > 12 || b[s1] !== C_DOT) return 'malformed time stamp in msg=audit(...)';
  const m1 = digits(b, s1 + 1, end);
  if (m1 < 0 || m1 - s1 - 1 > 3 || b[m1] !== C_COLON) return 'malformed time stamp in msg=audit(...)';
  const n1 = digits(b, m1 + 1, end);
  if (n1 < 0 || b[n1] !== C_RPAREN || n1 >= end) return 'malformed serial in msg=audit(...)';
  if (b[n1 + 1] !== C_COLON || n1 + 1 >= end) return 'no ":" after msg=audit(...)';
  h.stampEnd = n1;
  h.sec = num(b, s0, s1);
  // auditd always prints three millisecond digits; normalise shorter ones anyway
  h.ms = num(b, s1 + 1, m1) * (m1 - s1 - 1 === 1 ? 100 : m1 - s1 - 1 === 2 ? 10 : 1);
  h.serial = num(b, m1 + 1, n1);
  let body = n1 + 2;
  if (body < end && b[body] === C_SPACE) body++;
  h.bodyStart = body;
  const sep = b.indexOf(INTERP_SEP, body);
  h.bodyEnd = sep < 0 || sep >= end ? end : sep;
  return null;
}

/** The grouping key of a record's event: node and stamp (records of two nodes can share a stamp). */
export function eventKey(b: Buffer, h: LineHeader): string {
  const stamp = b.toString('latin1', h.stampStart, h.stampEnd);
  return h.nodeStart < 0 ? stamp : b.toString('latin1', h.nodeStart, h.nodeEnd) + ' ' + stamp;
}

const needles = new Map<string, Buffer>();
function needleFor(name: string): Buffer {
  let n = needles.get(name);
  if (!n) {
    n = Buffer.from(' ' + name + '=', 'latin1');
    needles.set(name, n);
  }
  return n;
}

/** End of a value starting at vs (quoted values include their quotes). */
export function valueEnd(b: Buffer, vs: number, end: number): number {
  const q = b[vs];
  if (q === C_DQUOTE || q === C_SQUOTE) {
    const close = b.indexOf(q, vs + 1);
    return close < 0 || close >= end ? end : close + 1;
  }
  let i = vs;
  while (i < end && b[i] !== C_SPACE) i++;
  return i;
}

/**
 * Calls fn with the raw text of every `name=` field in [from, end), including fields inside a user record's
 * msg='...' (auparse reads those as fields too). Stops early when fn returns true; returns whether it did.
 */
export function someField(b: Buffer, from: number, end: number, name: string, fn: (raw: string) => boolean): boolean {
  const nd = needleFor(name);
  let at = b.indexOf(nd, from - 1);
  while (at >= 0 && at + nd.length <= end) {
    const vs = at + nd.length;
    const ve = valueEnd(b, vs, end);
    if (fn(b.toString('latin1', vs, ve))) return true;
    at = b.indexOf(nd, vs);
  }
  return false;
}

/** Raw text of the first `name=` field in [from, end), or undefined. `from` is a body start (a space precedes it). */
export function firstField(b: Buffer, from: number, end: number, name: string): string | undefined {
  const nd = needleFor(name);
  const at = b.indexOf(nd, from - 1);
  if (at < 0 || at + nd.length > end) return undefined;
  const vs = at + nd.length;
  return b.toString('latin1', vs, valueEnd(b, vs, end));
}

/** One token of a record body: `name=value` (value raw, quotes kept) or a bare word (value null). */
export type Field = [string, string | null];

/** Splits a record body into fields as auparse does, flattening the inside of msg='...' into the list. */
export function tokenize(text: string, out: Field[] = []): Field[] {
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && text.charCodeAt(i) === C_SPACE) i++;
    if (i >= n) break;
    let j = i;
    while (j < n && text.charCodeAt(j) !== C_SPACE && text.charCodeAt(j) !== C_EQ) j++;
    if (j >= n || text.charCodeAt(j) !== C_EQ) {
      out.push([text.slice(i, j), null]);
      i = j;
      continue;
    }
    const name = text.slice(i, j);
    const vs = j + 1;
    const q = text.charCodeAt(vs);
    let ve: number;
    if (q === C_DQUOTE || q === C_SQUOTE) {
      const close = text.indexOf(q === C_DQUOTE ? '"' : "'", vs + 1);
      ve = close < 0 ? n : close + 1;
    } else {
      ve = vs;
      while (ve < n && text.charCodeAt(ve) !== C_SPACE) ve++;
    }
    const value = text.slice(vs, ve);
    if (name === 'msg' && q === C_SQUOTE)
      tokenize(value.slice(1, value.endsWith("'") && value.length > 1 ? -1 : undefined), out);
    else out.push([name, value]);
    i = ve;
  }
  return out;
}

/** Fields whose values the kernel or auditd hex-encode when they contain spaces, quotes or control bytes. */
const ENCODED = new Set([
  'exe',
  'comm',
  'name',
  'cwd',
  'path',
  'proctitle',
  'cmd',
  'acct',
  'data',
  'ocomm',
  'watch',
  'dir',
  'new',
  'old',
  'root_dir',
  'vm',
  'sauid',
  'grp',
  'new_group',
  'old_group',
  'id',
  'subj',
  'obj',
]);

/** Fields of the records auditmux writes about itself that carry tenants' text, encoded (src/records/encode.ts). */
const DAEMON_ENCODED = new Set(['reason', 'rules', 'log', 'args', 'error']);

function isHex(v: string): boolean {
  if (v.length < 2 || v.length % 2 !== 0) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46))) return false;
  }
  return true;
}

/** Whether a field's bare value is the hex form of a string (EXECVE's a0, a1... are, when they had to be encoded). */
export function isEncodedField(recordType: string, name: string, raw: string): boolean {
  if (raw.length === 0 || raw.charCodeAt(0) === C_DQUOTE || raw.charCodeAt(0) === C_SQUOTE) return false;
  if (ENCODED.has(name)) {
    // `id` and `new`/`old` are numbers or words in most record types; only a pure even-length uppercase hex run counts
    if (
      (name === 'id' || name === 'new' || name === 'old' || name === 'subj' || name === 'obj') &&
      /^[0-9]+$/.test(raw)
    )
      return false;
    return isHex(raw);
  }
  if (recordType === 'EXECVE' && /^a[0-9]+(\[[0-9]+\])?$/.test(name)) return isHex(raw);
  if (recordType.startsWith('DAEMON_') && DAEMON_ENCODED.has(name)) return isHex(raw);
  return false;
}

/**
 * The string a raw value stands for: quotes removed, hex decoded (NULs as spaces for proctitle, as ausearch shows
 * them). Keys are handled by decodeKeys because several keys come hex-joined with \x01.
 */
export function fieldString(recordType: string, name: string, raw: string): string {
  const c = raw.charCodeAt(0);
  if ((c === C_DQUOTE || c === C_SQUOTE) && raw.length >= 2 && raw.charCodeAt(raw.length - 1) === c)
    return raw.slice(1, -1);
  if (isEncodedField(recordType, name, raw)) {
    let s = Buffer.from(raw, 'hex').toString('utf8');
    if (name === 'proctitle' || name === 'data') {
      // Trailing NULs cut by a loop: /\0+$/ backtracks quadratically over a long run of NULs before another byte.
      let e = s.length;
      while (e > 0 && s.charCodeAt(e - 1) === 0) e--;
      s = s.slice(0, e).replace(/\0/g, ' ');
    }
    return s;
  }
  return raw;
}

/**
 * `type=UNKNOWN[1336]` or `URINGOP` records that carry `record=` and `contid=` are CONTAINER_ID records read by old
 * tools.
 */
export function recordTypeName(b: Buffer, h: LineHeader): string {
  const t = b.toString('latin1', h.typeStart, h.typeEnd);
  if (t === 'UNKNOWN[1336]' || t === 'URINGOP') {
    if (
      startsWithAt(b, h.bodyStart, h.bodyEnd, RECORD_EQ) &&
      firstField(b, h.bodyStart, h.bodyEnd, 'contid') !== undefined
    )
      return 'CONTAINER_ID';
  }
  return t;
}
const RECORD_EQ = Buffer.from('record=', 'latin1');
