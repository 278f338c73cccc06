// The interpreters of record fields shared by the log writer (ENRICHED) and `auditmux search -i`: which fields are
// ids, syscalls, arches and socket addresses (auparse's typetab), and the text auparse prints for each.
import { Buffer } from 'node:buffer';
import { AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, AUDIT_UID_UNSET, MsgType } from '../kernel/constants';
import { hexDigit } from '../records/record';
import { escapedLength, escapeInterp } from '../records/encode';
import { archName } from './arch';
import { SYSCALLS_I386, SYSCALLS_X86_64 } from './syscall-tables';
import type { IdNameCache } from './accounts';

/** How a field is interpreted: UID, GID, SYSCALL, ARCH, SOCKADDR (the auparse types ENRICHED appends). */
export type FieldKind = 1 | 2 | 3 | 4 | 5;
export const K_UID = 1;
export const K_GID = 2;
export const K_SYSCALL = 3;
export const K_ARCH = 4;
export const K_SOCKADDR = 5;

/** auparse typetab.h entries of the kinds above. */
export const FIELD_KIND: ReadonlyMap<string, FieldKind> = new Map<string, FieldKind>([
  ['auid', K_UID],
  ['uid', K_UID],
  ['euid', K_UID],
  ['suid', K_UID],
  ['fsuid', K_UID],
  ['ouid', K_UID],
  ['oauid', K_UID],
  ['old-auid', K_UID],
  ['iuid', K_UID],
  ['id', K_UID],
  ['inode_uid', K_UID],
  ['sauid', K_UID],
  ['obj_uid', K_UID],
  ['obj_gid', K_GID],
  ['gid', K_GID],
  ['egid', K_GID],
  ['sgid', K_GID],
  ['fsgid', K_GID],
  ['ogid', K_GID],
  ['igid', K_GID],
  ['inode_gid', K_GID],
  ['new_gid', K_GID],
  ['syscall', K_SYSCALL],
  ['arch', K_ARCH],
  ['saddr', K_SOCKADDR],
]);

/**
 * Whether a record type's saddr= is a sockaddr to interpret: auparse takes NETFILTER_PKT's as a plain address and
 * AVC's as unclassified; auditmux leaves USER_AVC's alone as well (the writer's tests hold it to auditd's output).
 */
export function interpretsSaddr(type: number): boolean {
  return type !== MsgType.NETFILTER_PKT && type !== MsgType.FIRST_AVC && type !== MsgType.USER_AVC;
}

/** strtoul semantics: -1 wraps to 4294967295; undefined for anything not an integer. */
export function parseId(v: string): number | undefined {
  if (v.length === 0) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) return undefined;
  return n < 0 ? n >>> 0 : n;
}

/** An arch= value (hex, at most 8 digits) as a number, -1 when it is not one. */
export function parseHex(v: string): number {
  if (v.length === 0 || v.length > 8) return -1;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const d = hexDigit(v.charCodeAt(i));
    if (d < 0) return -1;
    n = n * 16 + d;
  }
  return n;
}

/** What auparse prints for a uid or gid (before the writer encodes it): unset, the name, or unknown(N). */
export function idText(ids: IdNameCache, kind: FieldKind, id: number): string {
  if (id === AUDIT_UID_UNSET) return 'unset';
  return (kind === K_UID ? ids.user(id) : ids.group(id)) ?? `unknown(${id})`;
}

/** A uid or gid field's text as written in the record: idText(), or conversion error(...) for a non-number. */
export function idValueText(ids: IdNameCache, kind: FieldKind, v: string): string {
  const id = parseId(v);
  return id === undefined ? `conversion error(${v})` : idText(ids, kind, id);
}

/** Interpreted values quote record text in a few error forms: escaped like every other interpreted byte. */
export function archText(v: string): string {
  return archName(parseHex(v)) ?? `unknown-elf-type(${escapeInterp(v)})`;
}

function syscallArray(t: ReadonlyArray<readonly [number, string]>): string[] {
  const a: string[] = [];
  for (const [n, name] of t) a[n] = name;
  return a;
}
const SYS_X86_64 = syscallArray(SYSCALLS_X86_64);
const SYS_I386 = syscallArray(SYSCALLS_I386);

/** The syscall names of an arch (-1: none seen, which auparse reads as the host's, x86_64); undefined: unknown. */
function syscallTable(arch: number): string[] | undefined {
  return arch === AUDIT_ARCH_I386 ? SYS_I386 : arch === AUDIT_ARCH_X86_64 || arch < 0 ? SYS_X86_64 : undefined;
}

/** A syscall= value under the record's arch (-1: none seen, which auparse reads as the host's, x86_64). */
export function syscallText(v: string, arch: number): string {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) return `unknown-syscall(${escapeInterp(v)})`;
  return syscallTable(arch)?.[n] ?? `unknown-syscall(${n})`;
}

/** syscallText(v, arch).length, with no text made for a value that names no syscall. */
export function syscallTextLength(v: string, arch: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    const b = Buffer.from(v, 'latin1');
    return 'unknown-syscall()'.length + escapedLength(b, 0, b.length);
  }
  const name = syscallTable(arch)?.[n];
  return name !== undefined ? name.length : 'unknown-syscall()'.length + String(n).length;
}

/** libaudit's family names (famtab), index = AF_* number; missing ones print unknown-family(N). */
const FAMILIES: (string | undefined)[] = [
  undefined,
  'local',
  'inet',
  'ax25',
  'ipx',
  'appletalk',
  'netrom',
  'bridge',
  'atmpvc',
  'x25',
  'inet6',
  'rose',
  'decnet',
  'netbeui',
  'security',
  'key',
  'netlink',
  'packet',
  'ash',
  'econet',
  'atmsvc',
  'rds',
  'sna',
  'irda',
  'pppox',
  'wanpipe',
  'llc',
  undefined,
  undefined,
  'can',
  'tipc',
  'bluetooth',
  'iucv',
  'rxrpc',
  'isdn',
  'phonet',
  'ieee802154',
  'caif',
  'alg',
  'nfc',
  'vsock',
  'kcm',
  'qipcrtr',
  'smc',
  'xdp',
];

/** sun_path's size: auparse prints a path with %.108s. */
const SUN_PATH_MAX = 108;
const LOCAL_SHORT = '{ saddr_fam=local sockaddr len too short }';
const INET_SHORT = '{ saddr_fam=inet sockaddr len too short }';
const INET6_SHORT = '{ saddr_fam=inet6 sockaddr6 len too short }';
const NETLINK_SHORT = '{ saddr_fam=netlink len too short }';

/**
 * auparse print_sockaddr() (3.0.9) for the families a Linux host produces. An AF_UNIX path is the connecting
 * process's choice of bytes: auparse prints it raw (a newline in it ends auditd's log line and starts a forged one),
 * auditmux escapes it with escapeInterp(). An abstract name (sun_path[0] == 0) prints from sun_path[1], as auparse.
 */
export function sockaddrText(hex: string): string {
  if (hex.length % 2 !== 0) return `malformed-host(${escapeInterp(hex)})`;
  const b = Buffer.from(hex, 'hex');
  if (b.length * 2 !== hex.length) return `malformed-host(${escapeInterp(hex)})`;
  if (b.length < 2) return `malformed-host(${escapeInterp(hex)})`;
  const fam = b.readUInt16LE(0);
  const name = FAMILIES[fam];
  if (name === undefined) return `unknown-family(${fam})`;
  switch (fam) {
    case 1: {
      if (b.length < 4) return LOCAL_SHORT;
      const start = b[2] === 0 ? 3 : 2;
      let e = b.indexOf(0, start);
      if (e < 0) e = b.length;
      if (e - start > SUN_PATH_MAX) e = start + SUN_PATH_MAX;
      return `{ saddr_fam=local path=${escapeInterp(b.toString('latin1', start, e))} }`;
    }
    case 2:
      if (b.length < 16) return INET_SHORT;
      return `{ saddr_fam=inet laddr=${b[4]}.${b[5]}.${b[6]}.${b[7]} lport=${b.readUInt16BE(2)} }`;
    case 10:
      if (b.length < 24) return INET6_SHORT;
      return `{ saddr_fam=inet6 laddr=${inet6Text(b.subarray(8, 24))} lport=${b.readUInt16BE(2)} }`;
    case 16:
      if (b.length < 12) return NETLINK_SHORT;
      return `{ saddr_fam=netlink nlnk-fam=${fam} nlnk-pid=${b.readUInt32LE(4)} }`;
    default:
      return `{ saddr_fam=${name} (unsupported) }`;
  }
}

/** Digits of a non-negative integer in decimal. */
function decimalLength(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/** The byte that the hex digits s[at], s[at + 1] stand for (both are hex digits). */
function hexByteAt(s: Uint8Array, at: number): number {
  return hexDigit(s[at]!) * 16 + hexDigit(s[at + 1]!);
}

const inet6Scratch = Buffer.alloc(16);

/**
 * sockaddrText(hex).length for the hex text s[vs..ve) (its latin1 bytes), read in place: the writer learns whether an
 * interpreted saddr fits before it makes one (a user message of thousands of saddr= fields made one per field).
 */
export function sockaddrTextLength(s: Uint8Array, vs: number, ve: number): number {
  const n = ve - vs;
  const malformed = 'malformed-host()'.length + escapedLength(s, vs, ve);
  if (n % 2 !== 0) return malformed;
  for (let i = vs; i < ve; i++) if (hexDigit(s[i]!) < 0) return malformed;
  const len = n / 2;
  if (len < 2) return malformed;
  const byte = (k: number): number => hexByteAt(s, vs + 2 * k);
  const fam = byte(0) | (byte(1) << 8);
  const name = FAMILIES[fam];
  if (name === undefined) return 'unknown-family()'.length + decimalLength(fam);
  switch (fam) {
    case 1: {
      if (len < 4) return LOCAL_SHORT.length;
      const start = byte(2) === 0 ? 3 : 2;
      let e = start;
      while (e < len && byte(e) !== 0) e++;
      if (e - start > SUN_PATH_MAX) e = start + SUN_PATH_MAX;
      let path = 0;
      for (let k = start; k < e; k++) {
        const c = byte(k);
        path += c < 0x20 || c > 0x7e || c === 0x5c ? 4 : 1;
      }
      return '{ saddr_fam=local path= }'.length + path;
    }
    case 2:
      if (len < 16) return INET_SHORT.length;
      return (
        '{ saddr_fam=inet laddr=... lport= }'.length +
        decimalLength(byte(4)) +
        decimalLength(byte(5)) +
        decimalLength(byte(6)) +
        decimalLength(byte(7)) +
        decimalLength(byte(2) * 256 + byte(3))
      );
    case 10: {
      if (len < 24) return INET6_SHORT.length;
      for (let k = 0; k < 16; k++) inet6Scratch[k] = byte(8 + k);
      return (
        '{ saddr_fam=inet6 laddr= lport= }'.length +
        inet6Text(inet6Scratch).length +
        decimalLength(byte(2) * 256 + byte(3))
      );
    }
    case 16:
      if (len < 12) return NETLINK_SHORT.length;
      return (
        '{ saddr_fam=netlink nlnk-fam=16 nlnk-pid= }'.length +
        decimalLength(byte(4) + byte(5) * 0x100 + byte(6) * 0x10000 + byte(7) * 0x1000000)
      );
    default:
      return '{ saddr_fam= (unsupported) }'.length + name.length;
  }
}

/**
 * glibc inet_ntop(AF_INET6): longest run (>=2) of zero groups becomes ::, v4-mapped/compatible tails as dotted quads.
 */
export function inet6Text(a: Buffer): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(a.readUInt16BE(i * 2));
  let bestS = -1;
  let bestL = 0;
  for (let i = 0; i < 8;) {
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
    bestS === 0 && (bestL === 6 || (bestL === 5 && g[5] === 0xffff))
      ? `${a[12]}.${a[13]}.${a[14]}.${a[15]}`
      : undefined;
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

/**
 * The text of one interpreted field, as auparse prints it: the one interpretation of a raw value for the writer's
 * string path and for search. `arch` is the record's arch= value (-1 when none), which selects the syscall table.
 */
export function interpretText(ids: IdNameCache, kind: FieldKind, raw: string, arch: number): string {
  switch (kind) {
    case K_UID:
    case K_GID:
      return idValueText(ids, kind, raw);
    case K_SYSCALL:
      return syscallText(raw, arch);
    case K_ARCH:
      return archText(raw);
    default:
      return sockaddrText(raw);
  }
}
