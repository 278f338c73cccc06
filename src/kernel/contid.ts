// The audit container ID (u64) in its kernel forms: two u32 words, the 8-byte rule-buffer form, and record text.
import { native } from './native';
import { AUDIT_CID_UNSET } from './constants';

export { AUDIT_CID_UNSET };

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

/** Record text of a contid as the patch set prints it: `-1` for unset, else decimal. */
export function formatContid(id: bigint): string {
  return id === AUDIT_CID_UNSET ? '-1' : id.toString(10);
}

/** Parses decimal, 0x-hex, `-1` or `unset`; returns undefined when the text is not a u64. */
export function parseContid(text: string): bigint | undefined {
  const t = text.trim();
  if (t === 'unset' || t === '-1' || t === '18446744073709551615') return AUDIT_CID_UNSET;
  if (!/^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/.test(t)) return undefined;
  const v = BigInt(t);
  return v <= AUDIT_CID_UNSET ? v : undefined;
}
