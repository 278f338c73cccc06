// Formats records as auditd 3.0.9 log lines (RAW and ENRICHED), byte for byte, straight into the writer's buffer.
import { readFileSync } from 'node:fs';
import { SYSCALLS_I386, SYSCALLS_X86_64 } from '../rules/syscall-tables';
import { writerTypeName } from '../records/msgtypes';
import { hexDigit, type AuditRecord } from '../records/record';
import { MsgType } from '../kernel/constants';

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

/** uid/gid -> name from /etc/passwd and /etc/group, read once (no NSS, no child processes); reload() after a SIGHUP. */
export class IdNameCache {
  private users = new Map<number, string>();
  private groups = new Map<number, string>();
  private loaded = false;
  /** Bumped by every reload: formatters drop the interpreted fields they cached from older names. */
  generation = 0;
  constructor(
    private readonly passwdPath = '/etc/passwd',
    private readonly groupPath = '/etc/group',
  ) {}

  reload(): void {
    this.users = readIdFile(this.passwdPath);
    this.groups = readIdFile(this.groupPath);
    this.loaded = true;
    this.generation++;
  }

  user(id: number): string | undefined {
    if (!this.loaded) this.reload();
    return this.users.get(id);
  }

  group(id: number): string | undefined {
    if (!this.loaded) this.reload();
    return this.groups.get(id);
  }
}

function readIdFile(path: string): Map<number, string> {
  const m = new Map<number, string>();
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch {
    return m; // an unreadable database means names print as unknown(N), as auparse does
  }
  for (const line of text.split('\n')) {
    if (line === '' || line[0] === '#') continue;
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    const c = b < 0 ? -1 : line.indexOf(':', b + 1);
    if (c < 0) continue;
    const id = Number(line.slice(b + 1, c));
    // getpwuid returns the first entry for an id
    if (Number.isInteger(id) && !m.has(id)) m.set(id, line.slice(0, a));
  }
  return m;
}

type Kind = 1 | 2 | 3 | 4 | 5; // UID, GID, SYSCALL, ARCH, SOCKADDR
const K_UID = 1;
const K_GID = 2;
const K_SYSCALL = 3;
const K_ARCH = 4;
const K_SOCKADDR = 5;

/** auparse typetab.h entries of the types ENRICHED appends. */
const FIELD_KIND = new Map<string, Kind>([
  ['auid', K_UID], ['uid', K_UID], ['euid', K_UID], ['suid', K_UID], ['fsuid', K_UID], ['ouid', K_UID],
  ['oauid', K_UID], ['old-auid', K_UID], ['iuid', K_UID], ['id', K_UID], ['inode_uid', K_UID], ['sauid', K_UID],
  ['obj_uid', K_UID],
  ['obj_gid', K_GID], ['gid', K_GID], ['egid', K_GID], ['sgid', K_GID], ['fsgid', K_GID], ['ogid', K_GID],
  ['igid', K_GID], ['inode_gid', K_GID], ['new_gid', K_GID],
  ['syscall', K_SYSCALL],
  ['arch', K_ARCH],
  ['saddr', K_SOCKADDR],
]);
const MAX_KEY_LEN = 16;
/** Interpreted fields cached per field name; a map that grows past this is emptied (ids are few on real hosts). */
const MAX_CACHED_VALUES = 4096;

/** One field name ENRICHED interprets, with its `NAME=value` texts already encoded, keyed by the parsed value. */
interface FieldEntry {
  key: Buffer;
  upper: string;
  kind: Kind;
  cache: Map<number, Buffer>;
}

/** FNV-1a over a field name's bytes: finds its entry without making a string of every key in the record. */
function keyHash(s: Buffer, ks: number, ke: number): number {
  let h = 0x811c9dc5;
  for (let i = ks; i < ke; i++) h = Math.imul(h ^ s[i]!, 0x01000193);
  return h >>> 0;
}

/**
 * A plain decimal value (optional '-', 1-15 digits) as a number, or NaN for anything else: the cases that Number()
 * in the string path reads the same way. Anything unusual takes that path instead.
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

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const ARCH_NAMES = new Map<number, string>([
  [AUDIT_ARCH_X86_64, 'x86_64'], [AUDIT_ARCH_I386, 'i386'], [0xc00000b7, 'aarch64'], [0x80000015, 'ppc64'],
  [0xc0000015, 'ppc64le'], [0x80000016, 's390x'], [0x00000016, 's390'], [0x00000014, 'ppc'], [0x40000028, 'armeb'],
]);

function syscallArray(t: ReadonlyArray<readonly [number, string]>): string[] {
  const a: string[] = [];
  for (const [n, name] of t) a[n] = name;
  return a;
}
const SYS_X86_64 = syscallArray(SYSCALLS_X86_64);
const SYS_I386 = syscallArray(SYSCALLS_I386);

/** libaudit's family names (famtab), index = AF_* number; missing ones print unknown-family(N). */
const FAMILIES: (string | undefined)[] = [
  undefined, 'local', 'inet', 'ax25', 'ipx', 'appletalk', 'netrom', 'bridge', 'atmpvc', 'x25', 'inet6', 'rose',
  'decnet', 'netbeui', 'security', 'key', 'netlink', 'packet', 'ash', 'econet', 'atmsvc', 'rds', 'sna', 'irda',
  'pppox', 'wanpipe', 'llc', undefined, undefined, 'can', 'tipc', 'bluetooth', 'iucv', 'rxrpc', 'isdn', 'phonet',
  'ieee802154', 'caif', 'alg', 'nfc', 'vsock', 'kcm', 'qipcrtr', 'smc', 'xdp',
];

export interface FormatOptions {
  format: LogFormat;
  /** node= name; undefined or '' = name_format none. */
  node?: string;
  /** 1336 is CONTAINER_ID (contid-patched kernel) rather than URINGOP. */
  contidKernel?: boolean;
  ids?: IdNameCache;
  /** Interpret every field through its text, never the byte-level cache (the reference the cache is tested against). */
  uncached?: boolean;
}

export class LineFormatter {
  readonly format: LogFormat;
  private readonly node: string | undefined;
  private readonly contidKernel: boolean;
  private readonly ids: IdNameCache;
  private readonly prefixes = new Map<number, Buffer>();
  private readonly fields = new Map<number, FieldEntry[]>();
  private idGeneration = -1;
  private readonly uncached: boolean;
  // Scratch line for one record: auditd formats into a fixed buffer too, and we copy out once.
  private readonly scratch = Buffer.allocUnsafe(FORMAT_BUF_LEN + 64);

  constructor(opts: FormatOptions) {
    this.format = opts.format;
    this.node = opts.node ? opts.node : undefined;
    this.contidKernel = opts.contidKernel ?? false;
    this.ids = opts.ids ?? new IdNameCache();
    this.uncached = opts.uncached ?? false;
    for (const [key, kind] of FIELD_KIND) {
      const b = Buffer.from(key, 'latin1');
      const h = keyHash(b, 0, b.length);
      const list = this.fields.get(h) ?? [];
      list.push({ key: b, upper: key.toUpperCase(), kind, cache: new Map() });
      this.fields.set(h, list);
    }
  }

  private fieldEntry(hash: number, s: Buffer, ks: number, ke: number): FieldEntry | undefined {
    const list = this.fields.get(hash);
    if (list === undefined) return undefined;
    const n = ke - ks;
    for (const e of list) {
      if (e.key.length !== n) continue;
      let j = 0;
      while (j < n && e.key[j] === s[ks + j]) j++;
      if (j === n) return e;
    }
    return undefined;
  }

  /**
   * The encoded `NAME=value` of a field when it can be cached by a number parsed from its bytes (ids, syscall numbers,
   * known architectures), else undefined and the caller takes the string path.
   */
  private cachedField(e: FieldEntry, s: Buffer, vs: number, ve: number, st: EnrichState): Buffer | undefined {
    let key: number;
    if (e.kind === K_UID || e.kind === K_GID) {
      const n = plainDecimal(s, vs, ve);
      if (Number.isNaN(n)) return undefined;
      key = n < 0 ? n >>> 0 : n;
    } else if (e.kind === K_SYSCALL) {
      const n = plainDecimal(s, vs, ve);
      if (!(n >= 0)) return undefined;
      // The text depends on the record's arch as well: x86_64 (or none seen), i386, anything else.
      key = n * 4 + (st.arch === AUDIT_ARCH_I386 ? 1 : st.arch === AUDIT_ARCH_X86_64 || st.arch < 0 ? 0 : 2);
    } else if (e.kind === K_ARCH) {
      if (ve - vs < 1 || ve - vs > 8) return undefined;
      let a = 0;
      for (let i = vs; i < ve; i++) {
        const d = hexDigit(s[i]!);
        if (d < 0) return undefined;
        a = a * 16 + d;
      }
      // An unknown architecture prints its text as written: not cached by value.
      if (!ARCH_NAMES.has(a)) return undefined;
      key = a;
    } else {
      return undefined;
    }
    let b = e.cache.get(key);
    if (b === undefined) {
      const value = s.toString('latin1', vs, ve);
      const text =
        e.kind === K_UID ? encodeNv(e.upper, this.uidText(value)) :
        e.kind === K_GID ? encodeNv(e.upper, this.gidText(value)) :
        e.kind === K_SYSCALL ? `${e.upper}=${syscallText(value, st.arch)}` :
        `${e.upper}=${archText(value)}`;
      b = Buffer.from(text, 'latin1');
      if (e.cache.size >= MAX_CACHED_VALUES) e.cache.clear();
      e.cache.set(key, b);
    }
    return b;
  }

  private prefix(type: number): Buffer {
    let p = this.prefixes.get(type);
    if (p === undefined) {
      const name = writerTypeName(type, this.contidKernel);
      p = Buffer.from(this.node !== undefined ? `node=${this.node} type=${name} msg=` : `type=${name} msg=`, 'latin1');
      this.prefixes.set(type, p);
    }
    return p;
  }

  /**
   * Writes the line for (type, payload) and a trailing newline at dst[pos..]; returns the new position.
   * `payload` must already stop at the first NUL (AuditRecord.raw does). dst needs MAX_LINE_BYTES free.
   */
  formatInto(type: number, payload: Buffer, dst: Buffer, pos: number): number {
    const s = this.scratch;
    let len = this.formatRawScratch(type, payload);
    if (this.format === 'ENRICHED') len = this.enrichScratch(type, len);
    if (len > LINE_MAX) len = LINE_MAX;
    s.copy(dst, pos, 0, len);
    dst[pos + len] = C_LF;
    return pos + len + 1;
  }

  /** The line for one record as a string without the newline (tests, diagnostics). */
  formatRecord(rec: AuditRecord): string {
    const out = Buffer.allocUnsafe(MAX_LINE_BYTES);
    const end = this.formatInto(rec.type, rec.raw, out, 0);
    return out.toString('latin1', 0, end - 1);
  }

  /** format_raw(): returns the length in scratch. */
  private formatRawScratch(type: number, payload: Buffer): number {
    const s = this.scratch;
    const p = this.prefix(type);
    const total = p.length + payload.length;
    const cap = this.node !== undefined ? FORMAT_BUF_LEN - 32 - 1 : RAW_MAX_NO_NODE;
    const len = total > cap ? cap : total;
    p.copy(s, 0, 0, Math.min(p.length, len));
    if (len > p.length) payload.copy(s, p.length, 0, len - p.length);
    // Replace \n with a space, as auditd does, so a record stays on one line.
    let i = s.indexOf(C_LF, p.length);
    while (i >= 0 && i < len) {
      s[i] = C_SPACE;
      i = s.indexOf(C_LF, i + 1);
    }
    // Without a node name auditd trims one trailing space from the untruncated text; with one, the trimmed space is
    // the newline its format string added, so the payload keeps its own.
    if (this.node === undefined && total <= cap && len > 0 && s[len - 1] === C_SPACE) return len - 1;
    return len;
  }

  /** format_enrich(): appends 0x1D and the interpreted fields; returns the new length. */
  private enrichScratch(type: number, mlen: number): number {
    const left = FORMAT_BUF_LEN - mlen;
    if (left <= MIN_SPACE_LEFT) return mlen;
    if (this.ids.generation !== this.idGeneration) {
      for (const list of this.fields.values()) for (const e of list) e.cache.clear();
      this.idGeneration = this.ids.generation;
    }
    const st: EnrichState = { sepDone: 0, left, pos: mlen, arch: -1 };
    this.walk(type, this.scratch, this.prefix(type).length, mlen, st);
    return st.pos;
  }

  private walk(type: number, s: Buffer, from: number, to: number, st: EnrichState): void {
    let i = from;
    while (i < to && st.left > MIN_SPACE_LEFT) {
      while (i < to && s[i] === C_SPACE) i++;
      if (i >= to) break;
      const ks = i;
      // The key's FNV-1a hash (keyHash) is taken on the way to '=': its entry is found without a second pass.
      let h = 0x811c9dc5;
      while (i < to) {
        const c = s[i]!;
        if (c === C_EQ || c === C_SPACE) break;
        h = Math.imul(h ^ c, 0x01000193);
        i++;
      }
      if (i >= to || s[i] !== C_EQ) continue;
      const ke = i;
      const vs = i + 1;
      // Values are short: a loop here is cheaper than a native indexOf call per field.
      let ve = vs;
      const q = s[vs];
      if (q === C_DQUOTE || q === C_SQUOTE) {
        ve = vs + 1;
        while (ve < to && s[ve] !== q) ve++;
        if (ve < to) ve++;
      } else {
        while (ve < to && s[ve] !== C_SPACE) ve++;
      }
      i = ve;
      if (ke - ks > MAX_KEY_LEN) continue;
      // auparse splits a user message's msg='...' into fields of their own.
      if (q === C_SQUOTE && ke - ks === 3 && s[ks] === 0x6d && s[ks + 1] === 0x73 && s[ks + 2] === 0x67) {
        this.walk(type, s, vs + 1, ve > vs + 1 && s[ve - 1] === C_SQUOTE ? ve - 1 : ve, st);
        continue;
      }
      const e = this.fieldEntry(h >>> 0, s, ks, ke);
      if (e === undefined) continue;
      const kind = e.kind;
      if (kind === K_SOCKADDR && (type === MsgType.NETFILTER_PKT || type === MsgType.FIRST_AVC || type === 1107)) continue;
      const cached = this.uncached ? undefined : this.cachedField(e, s, vs, ve, st);
      if (kind === K_ARCH) st.arch = parseHexBytes(s, vs, ve);
      if (cached !== undefined) this.addEncoded(st, cached);
      else this.addField(st, e.upper, kind, s.toString('latin1', vs, ve));
    }
  }

  private addField(st: EnrichState, name: string, kind: Kind, value: string): void {
    const s = this.scratch;
    if (st.sepDone === 0) {
      s[FORMAT_BUF_LEN - st.left] = INTERP_SEPARATOR;
      st.pos = FORMAT_BUF_LEN - st.left + 1;
      st.left--;
    }
    st.sepDone++;
    let text: string;
    let tlen: number;
    if (kind === K_UID || kind === K_GID) {
      const v = kind === K_UID ? this.uidText(value) : this.gidText(value);
      text = encodeNv(name, v);
      tlen = 1 + text.length + 1;
    } else {
      const v = kind === K_SYSCALL ? syscallText(value, st.arch) : kind === K_ARCH ? archText(value) : sockaddrText(value);
      text = `${name}=${v}`;
      tlen = 1 + name.length + 1 + v.length + 1;
    }
    if (tlen >= st.left) return; // auditd skips a field that does not fit rather than truncating it
    let p = FORMAT_BUF_LEN - st.left;
    let num = 0;
    if (st.sepDone > 1) {
      s[p++] = C_SPACE;
      num = 1;
    }
    num += s.write(text, p, 'latin1');
    st.left -= num;
    st.pos = FORMAT_BUF_LEN - st.left;
  }

  /** addField() for a field already encoded: the same separator, fit and spacing rules, bytes copied. */
  private addEncoded(st: EnrichState, text: Buffer): void {
    const s = this.scratch;
    if (st.sepDone === 0) {
      s[FORMAT_BUF_LEN - st.left] = INTERP_SEPARATOR;
      st.pos = FORMAT_BUF_LEN - st.left + 1;
      st.left--;
    }
    st.sepDone++;
    if (text.length + 2 >= st.left) return;
    let p = FORMAT_BUF_LEN - st.left;
    let num = 0;
    if (st.sepDone > 1) {
      s[p++] = C_SPACE;
      num = 1;
    }
    // Interpreted fields are a few bytes: a loop beats Buffer.copy's call overhead.
    for (let j = 0; j < text.length; j++) s[p + j] = text[j]!;
    num += text.length;
    st.left -= num;
    st.pos = FORMAT_BUF_LEN - st.left;
  }

  private uidText(v: string): string {
    const id = parseId(v);
    if (id === undefined) return `conversion error(${v})`;
    if (id === 0xffffffff) return 'unset';
    return this.ids.user(id) ?? `unknown(${id})`;
  }

  private gidText(v: string): string {
    const id = parseId(v);
    if (id === undefined) return `conversion error(${v})`;
    if (id === 0xffffffff) return 'unset';
    return this.ids.group(id) ?? `unknown(${id})`;
  }
}

interface EnrichState {
  sepDone: number;
  left: number;
  pos: number;
  arch: number;
}

/** strtoul semantics: -1 wraps to 4294967295. */
function parseId(v: string): number | undefined {
  if (v.length === 0) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) return undefined;
  return n < 0 ? (n >>> 0) : n;
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

function parseHex(v: string): number {
  if (v.length === 0 || v.length > 8) return -1;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const d = hexDigit(v.charCodeAt(i));
    if (d < 0) return -1;
    n = n * 16 + d;
  }
  return n;
}

/** audit_encode_nv_string(): NAME="value", or NAME=HEX when the value has a quote, space, control or non-ASCII byte. */
export function encodeNv(name: string, value: string): string {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === C_DQUOTE || c < 0x21 || c > 0x7e) return `${name}=${Buffer.from(value, 'latin1').toString('hex').toUpperCase()}`;
  }
  return `${name}="${value}"`;
}

export function archText(v: string): string {
  const a = parseHex(v);
  return ARCH_NAMES.get(a) ?? `unknown-elf-type(${v})`;
}

export function syscallText(v: string, arch: number): string {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) return `unknown-syscall(${v})`;
  const table = arch === AUDIT_ARCH_I386 ? SYS_I386 : arch === AUDIT_ARCH_X86_64 || arch < 0 ? SYS_X86_64 : undefined;
  return table?.[n] ?? `unknown-syscall(${n})`;
}

/** auparse print_sockaddr() for the families a Linux host produces. */
export function sockaddrText(hex: string): string {
  if (hex.length % 2 !== 0) return `malformed-host(${hex})`;
  const b = Buffer.from(hex, 'hex');
  if (b.length * 2 !== hex.length) return `malformed-host(${hex})`;
  if (b.length < 2) return `malformed-host(${hex})`;
  const fam = b.readUInt16LE(0);
  const name = FAMILIES[fam];
  if (name === undefined) return `unknown-family(${fam})`;
  switch (fam) {
    case 1: {
      if (b.length < 3) return `{ saddr_fam=local sockaddr len too short }`;
      let e = b.indexOf(0, 2);
      if (e < 0) e = b.length;
      return `{ saddr_fam=local path=${b.toString('latin1', 2, e)} }`;
    }
    case 2:
      if (b.length < 16) return `{ saddr_fam=inet sockaddr len too short }`;
      return `{ saddr_fam=inet laddr=${b[4]}.${b[5]}.${b[6]}.${b[7]} lport=${b.readUInt16BE(2)} }`;
    case 10:
      if (b.length < 24) return `{ saddr_fam=inet6 sockaddr6 len too short }`;
      return `{ saddr_fam=inet6 laddr=${inet6Text(b.subarray(8, 24))} lport=${b.readUInt16BE(2)} }`;
    case 16:
      if (b.length < 12) return `{ saddr_fam=netlink len too short }`;
      return `{ saddr_fam=netlink nlnk-fam=${fam} nlnk-pid=${b.readUInt32LE(4)} }`;
    default:
      return `{ saddr_fam=${name} (unsupported) }`;
  }
}

/** glibc inet_ntop(AF_INET6): longest run (>=2) of zero groups becomes ::, v4-mapped/compatible tails as dotted quads. */
export function inet6Text(a: Buffer): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(a.readUInt16BE(i * 2));
  let bestS = -1;
  let bestL = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestL) {
      bestS = i;
      bestL = j - i;
    }
    i = j;
  }
  if (bestL < 2) bestS = -1;
  const v4 =
    bestS === 0 && (bestL === 6 || (bestL === 5 && g[5] === 0xffff)) ? `${a[12]}.${a[13]}.${a[14]}.${a[15]}` : undefined;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestS >= 0 && i >= bestS && i < bestS + bestL) {
      if (i === bestS) out += ':';
      continue;
    }
    if (v4 !== undefined && i === 6) {
      out += ':' + v4;
      return out;
    }
    if (i !== 0) out += ':';
    out += g[i]!.toString(16);
  }
  if (bestS >= 0 && bestS + bestL === 8) out += ':';
  return out;
}
