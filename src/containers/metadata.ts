// What a container is called: name, image and Kubernetes fields from OCI annotations and the runtime's own processes.
import { basename, dirname, normalize } from 'node:path';
import { containerdNamespace, OCI_ID_RE } from '../contid/cgroup-patterns';

export interface ContainerMeta {
  name?: string;
  image?: string;
  podName?: string;
  podNamespace?: string;
  podUid?: string;
  /** The container's name inside its pod (Kubernetes). */
  containerName?: string;
  /**
   * containerd's namespace (`default`, `k8s.io`, a tenant's), from the cgroup path containerd's state confirmed or the
   * hook's canonical bundle path, never from annotations: the contid of a containerd container found by it is keyed by
   * it (see containerKey). At most 76 characters (containerd's identifier rule).
   */
  containerdNamespace?: string;
  /**
   * Labels route selectors can test: the container's OCI annotations, and CRI-O's pod and container labels
   * (`io.kubernetes.cri-o.Labels`, a JSON object) expanded. Bounded by the hook's annotation limits.
   */
  labels?: Record<string, string>;
}

/** CRI-O's labels annotation is a JSON object of strings; anything else is ignored. */
function crioLabels(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text || text.length > 65536) return out;
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v))
      for (const [k, x] of Object.entries(v as Record<string, unknown>).slice(0, 256))
        if (typeof x === 'string' && k.length <= 253 && x.length <= 4096) out[k] = x;
  } catch {
    /* not JSON: no labels from it */
  }
  return out;
}

/**
 * The one value the annotations among `keys` agree on, or undefined when none is present or two differ. For the pod's
 * identity (namespace, name, uid), which routes and daemon templates select tenants by: each runtime writes its own
 * key, but CRI-O also copies the pod's own annotations into every container of the pod, so a pod in `tenant-a` could
 * add containerd's key saying `tenant-b`. The key the runtime sets (CRI-O: kubelet's `io.kubernetes.pod.namespace`,
 * applied last) then disagrees, and the container gets no namespace rather than another tenant's.
 */
function agreed(a: Record<string, string>, keys: readonly string[]): string | undefined {
  let v: string | undefined;
  for (const k of keys) {
    const x = a[k];
    if (typeof x !== 'string' || x.length === 0) continue;
    if (v !== undefined && x !== v) return undefined;
    v = x;
  }
  return v;
}

/** First present annotation among `keys`. */
function pick(a: Record<string, string>, keys: readonly string[]): string | undefined {
  for (const k of keys) {
    const v = a[k];
    if (typeof v === 'string' && v.length > 0) return v;
  }
  return undefined;
}

/** CRI (containerd), CRI-O and kubelet annotations, plus the generic ones podman and docker set on request. */
export function metaFromAnnotations(a: Record<string, string>): ContainerMeta {
  const m: ContainerMeta = {};
  const set = (k: Exclude<keyof ContainerMeta, 'labels'>, v: string | undefined): void => {
    if (v !== undefined) m[k] = v;
  };
  // CRI-O's SandboxName is the sandbox's (`k8s_POD_<pod>_<namespace>_...`), not the pod's: only when nothing else is.
  const podKeys = ['io.kubernetes.cri.sandbox-name', 'io.kubernetes.pod.name'];
  set('podName', podKeys.some((k) => a[k]) ? agreed(a, podKeys) : pick(a, ['io.kubernetes.cri-o.SandboxName']));
  set(
    'podNamespace',
    agreed(a, ['io.kubernetes.cri.sandbox-namespace', 'io.kubernetes.cri-o.Namespace', 'io.kubernetes.pod.namespace']),
  );
  set('podUid', agreed(a, ['io.kubernetes.cri.sandbox-uid', 'io.kubernetes.pod.uid']));
  set(
    'containerName',
    pick(a, ['io.kubernetes.cri.container-name', 'io.kubernetes.container.name', 'io.kubernetes.cri-o.ContainerName']),
  );
  set(
    'image',
    pick(a, [
      'io.kubernetes.cri.image-name',
      'io.kubernetes.cri-o.ImageName',
      'io.auditmux.image',
      'org.opencontainers.image.ref.name',
    ]),
  );
  set('name', pick(a, ['io.auditmux.name', 'io.kubernetes.cri-o.Name', 'nerdctl/name']) ?? m.containerName);
  // Null prototype: a label called __proto__ is a label, not the object's prototype.
  const labels: Record<string, string> = Object.assign(Object.create(null) as Record<string, string>, a);
  Object.assign(labels, crioLabels(a['io.kubernetes.cri-o.Labels']));
  if (Object.keys(labels).length) m.labels = labels;
  return m;
}

/**
 * podman writes no name into annotations, but its monitor (conmon, a host process outside the container, started with
 * `-c <container id> -n <name>`) has it on its command line. Returns the name only when `-c` is this container's ID.
 */
export function conmonName(argv: readonly string[], containerId: string): string | undefined {
  const { id, name } = conmonArgs(argv);
  return id === containerId && name && name.length <= 253 ? name : undefined;
}

/** conmon's `-c`/`--cid`, `-n`/`--name` and `-b`/`--bundle` values (the last of each), among its first 256 words. */
function conmonArgs(argv: readonly string[]): { id?: string; name?: string; bundle?: string } {
  const out: { id?: string; name?: string; bundle?: string } = {};
  for (let i = 0; i < argv.length - 1 && i < 256; i++) {
    const a = argv[i];
    if (a === '-c' || a === '--cid') out.id = argv[i + 1];
    else if (a === '-n' || a === '--name') out.name = argv[i + 1];
    else if (a === '-b' || a === '--bundle') out.bundle = argv[i + 1];
  }
  return out;
}

/**
 * podman's containers/storage directory (`<root>/<driver>-containers`) for container `containerId`, from its conmon's
 * `-b <root>/<driver>-containers/<id>/userdata` (the bundle): only a canonical absolute path ending in this very
 * container's directory counts. RuntimeMetaReader then walks it link-free through root-owned directories only.
 */
export function conmonStoreDir(argv: readonly string[], containerId: string): string | null {
  const { id, bundle } = conmonArgs(argv);
  if (id !== containerId || !bundle || bundle.length > 4096 || !bundle.startsWith('/')) return null;
  if (normalize(bundle) !== bundle || !bundle.endsWith('/userdata')) return null;
  const dir = dirname(bundle);
  if (basename(dir) !== containerId) return null;
  const store = dirname(dir);
  return /^[a-z0-9]{1,32}-containers$/.test(basename(store)) ? store : null;
}

/** containerd's task state directory (its `state` root, default /run/containerd, plus the v2 runtime plugin's). */
export const CONTAINERD_TASK_DIR = '/run/containerd/io.containerd.runtime.v2.task';

/**
 * The containerd namespace of container `id` from its OCI bundle path: containerd's shim creates every bundle at
 * `<CONTAINERD_TASK_DIR>/<namespace>/<id>` (runtime/v2 NewBundle), and the runtime passes that path to the hook. Only
 * that exact, canonical form counts (no `.`/`..`, no doubled or trailing `/`, the last component this very container's
 * ID, the namespace containerd's identifier rule); annotations, which a tenant sets, are never used for it.
 */
export function containerdBundleNamespace(bundle: string, id: string): string | undefined {
  const prefix = CONTAINERD_TASK_DIR + '/';
  if (!bundle.startsWith(prefix) || bundle.length > 4096) return undefined;
  const rest = bundle.slice(prefix.length).split('/');
  if (rest.length !== 2 || rest[1] !== id || !OCI_ID_RE.test(id) || id === '.' || id === '..') return undefined;
  const ns = rest[0]!;
  return containerdNamespace(ns) ? ns : undefined;
}
