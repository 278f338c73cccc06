// The audit container ID (u64) in its kernel forms: two u32 words and the 8-byte rule-buffer form, packed by the addon.
import { native } from '../kernel/native';

/** u64 → [low, high] u32 words, host order (the kernel's pair-of-u32 representation). */
export function contidToU32Pair(id: bigint): [number, number] {
  return native().contidToU32Pair(id);
}

export function u32PairToContid(low: number, high: number): bigint {
  return native().u32PairToContid(low, high);
}

/** u64 → the 8 host-order bytes the contid patch set appends to audit_rule_data.buf for field AUDIT_CONTID. */
export function contidToBytes(id: bigint): Buffer {
  return native().contidToBytes(id);
}

export function bytesToContid(buf: Buffer, offset = 0): bigint {
  return native().bytesToContid(buf, offset);
}

/** The 8-byte rule-buffer form of a contid, as the rules codec needs it: the addon's packing unless one is injected. */
export interface ContidPacker {
  contidToBytes(id: bigint): Buffer;
  bytesToContid(buf: Buffer, offset?: number): bigint;
}

/** The addon's packing; loaded only when a contid field is encoded or decoded. */
export const addonContidPacker: ContidPacker = { contidToBytes, bytesToContid };
