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
 * The key a container's contid is derived from: its runtime ID, which docker, podman, CRI-O, Kubernetes and plain
 * runc make unique on the host (these keys must never change: contids in logs and persisted registries depend on
 * them). Machine names are names, not IDs, so they get a prefix: a machine called like a container's hex ID still
 * gets a different contid. systemd-nspawn's (machined's) prefix is `machine:`; LXC's is `lxc:`, since an nspawn
 * machine and an LXC container may carry the same name and are two tenants' (both were `machine:` before, so LXC
 * contids changed once, with this). A containerd container known by its namespace (the `/<namespace>/<id>`
 * cgroup of ctr and nerdctl, or the hook's canonical bundle path) is keyed `containerd:<namespace>/<id>`: containerd
 * IDs are unique only within a namespace, so `ctr -n a run img web` and `ctr -n b run img web` are two tenants'
 * containers, and neither may share a contid with a runc container called `web`. Namespaces and IDs hold no `/` or
 * `:`, so no two keys collide.
 */
export function containerKey(runtime: string, id: string, containerdNamespace?: string): string {
  if (runtime === 'nspawn') return `machine:${id}`;
  if (runtime === 'lxc') return `lxc:${id}`;
  if (runtime === 'containerd' && containerdNamespace !== undefined) return `containerd:${containerdNamespace}/${id}`;
  return id;
}
