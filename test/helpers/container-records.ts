// Container birth records exactly as the host writes them, for search tests (unit) and ausearch checks (peer).
import { containerRecordBody } from '../../src/containers/service';
import { ContainerRegistry, type ContainerInfo } from '../../src/containers/registry';

/** The containerd container `cart` in pod shop/cart-0 (contid 22) as its hook registers it, every field named. */
export const CART_FROM_HOOK = {
  runtime: 'containerd',
  id: 'b'.repeat(64),
  contid: 22n,
  source: 'hook',
  meta: { name: 'cart', image: 'shop/cart:3', podName: 'cart-0', podNamespace: 'shop' },
} as const;

/**
 * Four births: podman web-1 (11), containerd cart in pod shop/cart-0 (22), web-1 restarted under a new contid (33)
 * and a runc container with a hostile name (44), which the record hex-encodes.
 */
export function sampleBirthLines(): string[] {
  const bodies: ContainerInfo[] = [];
  const r = new ContainerRegistry({ onBirth: (c) => bodies.push(c) });
  r.register({ runtime: 'podman', id: 'a'.repeat(64), contid: 11n, source: 'hook', meta: { name: 'web-1' } });
  r.register({ ...CART_FROM_HOOK, meta: { ...CART_FROM_HOOK.meta } });
  // Restarted: the same name under a new contid.
  r.register({ runtime: 'podman', id: 'c'.repeat(64), contid: 33n, source: 'cgroup', meta: { name: 'web-1' } });
  // A hostile name is hex-encoded in the record: ausearch's parser must not break, search must find its real text.
  r.register({ runtime: 'runc', id: 'evil', contid: 44n, source: 'cgroup', meta: { name: 'x y"\nz' } });
  return bodies.map(
    (c, i) => `type=CONTAINER_OP msg=audit(1700000000.00${i}:${i + 1}): ${containerRecordBody('birth', c)}`,
  );
}
