// Encoding and decoding of netlink headers and the audit control structs (audit_status, audit_features, sig_info).
import { Buffer } from 'node:buffer';
import { KernelError } from '../errors';
import {
  AUDIT_FEATURES_SIZE,
  AUDIT_FEATURE_VERSION,
  AUDIT_STATUS_SIZE,
  NLMSG_HDRLEN,
  NLM_F_ACK,
  NLM_F_REQUEST,
  StatusMask,
} from './constants';

export interface NlHeader {
  len: number;
  type: number;
  flags: number;
  seq: number;
  pid: number;
}

export function readHeader(buf: Buffer, off: number): NlHeader {
  return {
    len: buf.readUInt32LE(off),
    type: buf.readUInt16LE(off + 4),
    flags: buf.readUInt16LE(off + 6),
    seq: buf.readUInt32LE(off + 8),
    pid: buf.readUInt32LE(off + 12),
  };
}

/** n rounded up to a multiple of 4, for any length up to 2^32 (`(n + 3) & ~3` wraps at 2^31 in 32-bit JS ints). */
export function nlAlign(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/** Builds one request message: header (length includes it, as the kernel's size checks expect) and payload. */
export function encodeRequest(type: number, seq: number, payload: Buffer | undefined, ack = true): Buffer {
  const plen = payload ? payload.length : 0;
  const buf = Buffer.alloc(NLMSG_HDRLEN + nlAlign(plen));
  buf.writeUInt32LE(NLMSG_HDRLEN + plen, 0);
  buf.writeUInt16LE(type, 4);
  buf.writeUInt16LE(NLM_F_REQUEST | (ack ? NLM_F_ACK : 0), 6);
  buf.writeUInt32LE(seq >>> 0, 8);
  buf.writeUInt32LE(0, 12);
  if (payload) payload.copy(buf, NLMSG_HDRLEN);
  return buf;
}

export interface AuditStatus {
  mask: number;
  enabled: number;
  failure: number;
  pid: number;
  rateLimit: number;
  backlogLimit: number;
  lost: number;
  backlog: number;
  featureBitmap: number;
  backlogWaitTime: number;
  backlogWaitTimeActual: number;
}

const STATUS_FIELDS: Array<[keyof AuditStatus, number]> = [
  ['mask', 0],
  ['enabled', 4],
  ['failure', 8],
  ['pid', 12],
  ['rateLimit', 16],
  ['backlogLimit', 20],
  ['lost', 24],
  ['backlog', 28],
  ['featureBitmap', 32],
  ['backlogWaitTime', 36],
  ['backlogWaitTimeActual', 40],
];

/** Decodes a (possibly short, older-kernel) audit_status; absent fields read as 0. */
export function decodeStatus(payload: Buffer): AuditStatus {
  const s = {} as AuditStatus;
  for (const [k, off] of STATUS_FIELDS) s[k] = off + 4 <= payload.length ? payload.readUInt32LE(off) : 0;
  return s;
}

export function encodeStatus(s: Partial<AuditStatus>): Buffer {
  const buf = Buffer.alloc(AUDIT_STATUS_SIZE);
  for (const [k, off] of STATUS_FIELDS) buf.writeUInt32LE((s[k] ?? 0) >>> 0, off);
  return buf;
}

/** The settable status fields and their mask bits, in the order the kernel applies them. */
export interface StatusChange {
  enabled?: number;
  failure?: number;
  pid?: number;
  rateLimit?: number;
  backlogLimit?: number;
  backlogWaitTime?: number;
}

export function statusChangeToStruct(c: StatusChange): Buffer {
  let mask = 0;
  const s: Partial<AuditStatus> = {};
  if (c.enabled !== undefined) {
    mask |= StatusMask.ENABLED;
    s.enabled = c.enabled;
  }
  if (c.failure !== undefined) {
    mask |= StatusMask.FAILURE;
    s.failure = c.failure;
  }
  if (c.pid !== undefined) {
    mask |= StatusMask.PID;
    s.pid = c.pid;
  }
  if (c.rateLimit !== undefined) {
    mask |= StatusMask.RATE_LIMIT;
    s.rateLimit = c.rateLimit;
  }
  if (c.backlogLimit !== undefined) {
    mask |= StatusMask.BACKLOG_LIMIT;
    s.backlogLimit = c.backlogLimit;
  }
  if (c.backlogWaitTime !== undefined) {
    mask |= StatusMask.BACKLOG_WAIT_TIME;
    s.backlogWaitTime = c.backlogWaitTime;
  }
  s.mask = mask;
  return encodeStatus(s);
}

export interface AuditFeatures {
  vers: number;
  mask: number;
  features: number;
  lock: number;
}

export function decodeFeatures(p: Buffer): AuditFeatures {
  const r = (o: number): number => (o + 4 <= p.length ? p.readUInt32LE(o) : 0);
  return { vers: r(0), mask: r(4), features: r(8), lock: r(12) };
}

export function encodeFeatureChange(feature: number, value: boolean, lock: boolean): Buffer {
  const buf = Buffer.alloc(AUDIT_FEATURES_SIZE);
  const bit = 1 << feature;
  buf.writeUInt32LE(AUDIT_FEATURE_VERSION, 0);
  buf.writeUInt32LE(bit, 4);
  buf.writeUInt32LE(value ? bit : 0, 8);
  buf.writeUInt32LE(lock ? bit : 0, 12);
  return buf;
}

export interface SignalInfo {
  /** auid of the sender if set, else its uid */
  uid: number;
  pid: number;
  /** LSM context of the sender, '' when none */
  ctx: string;
  /** contid chain text (SIGNAL_INFO2 only) */
  contid?: string;
}

export function decodeSignalInfo(p: Buffer): SignalInfo {
  const uid = p.length >= 4 ? p.readUInt32LE(0) : 0;
  const pid = p.length >= 8 ? p.readInt32LE(4) : 0;
  let ctx = p.length > 8 ? p.toString('latin1', 8) : '';
  const nul = ctx.indexOf('\0');
  if (nul >= 0) ctx = ctx.slice(0, nul);
  return { uid, pid, ctx };
}

/**
 * struct audit_sig_info2 (contid patch set v9+): uid, pid, cid_len, then cid text and context, no NUL. A reply shorter
 * than the 12 fixed bytes is refused with EPROTO.
 */
export function decodeSignalInfo2(p: Buffer): SignalInfo {
  if (p.length < 12)
    throw new KernelError(
      'EPROTO',
      71,
      'AUDIT_SIGNAL_INFO2',
      `AUDIT_SIGNAL_INFO2: a reply of ${p.length} bytes, shorter than audit_sig_info2's 12 fixed bytes`,
    );
  const uid = p.readUInt32LE(0);
  const pid = p.readInt32LE(4);
  const cidLen = p.readUInt32LE(8);
  const end = Math.min(p.length, 12 + cidLen);
  const contid = p.toString('latin1', 12, end);
  let ctx = p.toString('latin1', end);
  const nul = ctx.indexOf('\0');
  if (nul >= 0) ctx = ctx.slice(0, nul);
  return cidLen > 0 ? { uid, pid, ctx, contid } : { uid, pid, ctx };
}
