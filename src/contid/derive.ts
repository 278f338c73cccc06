// A container's contid, derived from its ID alone: the same number on every host daemon start, reload and source.
import { createHash } from 'node:crypto';

/**
 * Why a hash and not a persisted table: the hook, the cgroup scan at start and the scan after a restart must all agree
 * without shared state, and a table would be one more root-owned file to guard, bound and recover. SHA-256 of the
 * key, first 8 bytes, top bit cleared: 63 bits, so it can never be (u64)-1 (the kernel's "unset"), and collisions need
 * ~3 billion containers for even odds. 0 is mapped to 1 because tools read contid 0 as "none". Contids the operator
 * sets by hand (`contid set`, small numbers) are below 2^32 and a derived one lands there with probability 2^-31.
 */
export function containerContid(key: string): bigint {
  const h = createHash('sha256').update(key, 'utf8').digest();
  const v = h.readBigUInt64BE(0) & 0x7fffffffffffffffn;
  return v === 0n ? 1n : v;
}

/**
 * The key a container's contid is derived from: its runtime ID. Machine names (nspawn, LXC) are names, not IDs, so they
 * get a prefix: a machine called like a container's hex ID still gets a different contid.
 */
export function containerKey(runtime: string, id: string): string {
  return runtime === 'nspawn' || runtime === 'lxc' ? `machine:${id}` : id;
}
