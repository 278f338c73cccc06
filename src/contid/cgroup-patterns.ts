// Which container a cgroup path belongs to: built-in patterns per runtime, matched on /proc/PID/cgroup (v1 and v2).

/** Runtimes auditmux recognises from their cgroup layout. */
export type Runtime = 'docker' | 'containerd' | 'cri-o' | 'kubernetes' | 'podman' | 'runc' | 'nspawn' | 'lxc';

export interface CgroupMatch {
  runtime: Runtime;
  /**
   * The runtime's container ID (64 hex for docker/containerd/CRI-O/podman, the OCI id for runc, a name for machines).
   */
  id: string;
  /** The cgroup path down to and including the container's own component: processes below it are the container's. */
  base: string;
  /** Kubernetes pod UID when the path names one (dashes restored). */
  podUid?: string;
  /** containerd's namespace (`default`, `k8s.io`, ...) when the path names it: `/<namespace>/<id>`. */
  namespace?: string;
  /**
   * Free-form places need the runtime's own root-owned state to confirm them: plain runc's `/<id>` (runc's state
   * directory), containerd's `/<namespace>/<id>` (its runc shim's state directory for that namespace).
   */
  verify?: 'runc-state' | 'containerd-state';
}

/** /proc/PID/cgroup is small; a longer one is not a kernel's. */
export const PROC_CGROUP_MAX = 64 * 1024;
/** The kernel's PATH_MAX bounds a cgroup path. */
const PATH_MAX = 4096;

/** The most leading components a runtime layout reads (`/kubepods/<qos>/pod<uid>/<container>`), with room to spare. */
const LAYOUT_DEPTH = 8;
/** An empty, `.` or `..` component of a path without its leading `/`. */
const NON_CANONICAL = /(?:^|\/)\.{0,2}(?:\/|$)/;

const HEX64 = /^[0-9a-f]{64}$/;
/** runc's own check for container IDs (libcontainer/utils: ^[\w+-\.]+$), with a length bound. */
export const OCI_ID_RE = /^[A-Za-z0-9_+.-]{1,128}$/;
/** systemd unit-name characters after escaping (systemd-escape leaves [A-Za-z0-9:_.\\-]). */
const UNIT_NAME_RE = /^[A-Za-z0-9:_.\\-]{1,256}$/;
/**
 * containerd's identifier rule for namespaces (pkg/identifiers: alphanumerics joined by single `.`, `_` or `-`, at
 * most 76), written as components so no regex backtracks over a long name.
 */
export function containerdNamespace(s: string): boolean {
  return s.length <= 76 && s.split(/[._-]/).every((p) => /^[A-Za-z0-9]+$/.test(p));
}
/** Top-level names that are never a plain runc container (systemd units, runtime parents, this machine's sandbox). */
const NOT_RUNC =
  /\.(slice|scope|service|mount|socket|swap|target)$|^(docker|kubepods|libpod_parent|machine|lxc|lxc\.payload|lxc\.monitor|system|user|init|podman)$/;

export interface ProcCgroup {
  /** The cgroup v2 path (`0::/path`), or null on a pure v1 machine. */
  v2: string | null;
  /** v1 hierarchies: controller list (or `name=systemd`) -> path. */
  v1: Array<{ controllers: string; path: string }>;
}

/** Parses /proc/PID/cgroup text (`N:controllers:/path` lines); malformed lines are skipped, sizes are bounded. */
export function parseProcCgroup(text: string): ProcCgroup {
  const out: ProcCgroup = { v2: null, v1: [] };
  if (text.length > PROC_CGROUP_MAX) text = text.slice(0, PROC_CGROUP_MAX);
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) continue;
    const hier = line.slice(0, a);
    const controllers = line.slice(a + 1, b);
    const path = line.slice(b + 1);
    if (!/^[0-9]{1,6}$/.test(hier) || !path.startsWith('/') || path.length > PATH_MAX) continue;
    if (hier === '0' && controllers === '') out.v2 = path;
    else if (out.v1.length < 64) out.v1.push({ controllers, path });
  }
  return out;
}

/**
 * The paths to classify, most trustworthy first: the v2 path, then systemd's named v1 hierarchy, then pids and the
 * other v1 controllers. On a hybrid machine (as here) the v2 path can be `/` while v1 holds the container.
 */
export function candidatePaths(cg: ProcCgroup): string[] {
  const out: string[] = [];
  const add = (p: string | undefined | null): void => {
    if (p && p !== '/' && !out.includes(p)) out.push(p);
  };
  add(cg.v2);
  add(cg.v1.find((l) => l.controllers === 'name=systemd')?.path);
  add(cg.v1.find((l) => l.controllers.split(',').includes('pids'))?.path);
  for (const l of cg.v1) add(l.path);
  return out;
}

/** `kubepods-burstable-pod1234_5678.slice` or `pod1234-5678` -> `1234-5678`. */
function podUidOf(component: string): string | undefined {
  const m = /^(?:kubepods(?:-[a-z]+)?-)?pod([0-9a-fA-F_-]{1,64})(?:\.slice)?$/.exec(component);
  return m ? m[1]!.replace(/_/g, '-') : undefined;
}

/**
 * Classifies one cgroup path. The container is the OUTERMOST component that matches, at a position only the runtime
 * (root) can create: a container with a delegated subtree can make `libpod-<other id>` below its own cgroup, but that
 * nests inside its own match and never changes which container it is. Paths are compared as components, never with a
 * backtracking regex over the whole path. Free-form readings are not confirmed here: of those, the outermost is
 * returned (the daemon classifies with its runtimes' state through classifyProcCgroup).
 */
export function classifyCgroupPath(path: string): CgroupMatch | null {
  let best: CgroupMatch | null = null;
  for (const m of classifyCgroupCandidates(path)) if (!best || m.base.length < best.base.length) best = m;
  return best;
}

/**
 * The runtimes with a fixed layout: a match, null for a path under a runtime's own top that is not a container
 * (`/libpod_parent/conmon`), undefined when the top is none of theirs (a free-form place, maybe).
 */
function classifyFixed(parts: readonly string[]): CgroupMatch | null | undefined {
  const base = (i: number): string => '/' + parts.slice(0, i + 1).join('/');
  const top = parts[0]!;

  // docker, cgroupfs driver: /docker/<64 hex>
  if (top === 'docker' && parts.length >= 2 && HEX64.test(parts[1]!))
    return { runtime: 'docker', id: parts[1]!, base: base(1) };

  // podman without systemd (as on this machine): /libpod_parent/libpod-<64 hex>[/...]
  if (top === 'libpod_parent' && parts.length >= 2) {
    const m = /^libpod-([0-9a-f]{64})(?:\.scope)?$/.exec(parts[1]!);
    if (m) return { runtime: 'podman', id: m[1]!, base: base(1) };
    return null;
  }

  // Kubernetes, either driver: /kubepods[.slice]/[<qos>[.slice]/]pod<uid>[.slice]/<container>
  if (top === 'kubepods' || top === 'kubepods.slice') {
    let i = 1;
    if (parts[i] && !podUidOf(parts[i]!)) i++; // QoS class level (besteffort, burstable; absent for guaranteed)
    const podUid = parts[i] ? podUidOf(parts[i]!) : undefined;
    if (!podUid || !parts[i + 1]) return null;
    const c = parts[i + 1]!;
    let m: RegExpExecArray | null;
    if ((m = /^cri-containerd-([0-9a-f]{64})\.scope$/.exec(c)))
      return { runtime: 'containerd', id: m[1]!, base: base(i + 1), podUid };
    if ((m = /^crio-([0-9a-f]{64})(?:\.scope)?$/.exec(c)))
      return { runtime: 'cri-o', id: m[1]!, base: base(i + 1), podUid };
    if ((m = /^docker-([0-9a-f]{64})\.scope$/.exec(c)))
      return { runtime: 'docker', id: m[1]!, base: base(i + 1), podUid };
    if (HEX64.test(c)) return { runtime: 'kubernetes', id: c, base: base(i + 1), podUid };
    return null;
  }

  // systemd-managed runtimes: /system.slice/docker-<hex>.scope, /machine.slice/libpod-<hex>.scope,
  // /system.slice/crio-<hex>.scope, /system.slice/cri-containerd-<hex>.scope, /machine.slice/machine-<name>.scope
  if (top === 'system.slice' || top === 'machine.slice') {
    const c = parts[1];
    if (!c) return null;
    let m: RegExpExecArray | null;
    if ((m = /^docker-([0-9a-f]{64})\.scope$/.exec(c))) return { runtime: 'docker', id: m[1]!, base: base(1) };
    if ((m = /^libpod-([0-9a-f]{64})\.scope$/.exec(c))) return { runtime: 'podman', id: m[1]!, base: base(1) };
    if ((m = /^crio-([0-9a-f]{64})\.scope$/.exec(c))) return { runtime: 'cri-o', id: m[1]!, base: base(1) };
    if ((m = /^cri-containerd-([0-9a-f]{64})\.scope$/.exec(c)))
      return { runtime: 'containerd', id: m[1]!, base: base(1) };
    // nerdctl with the systemd driver (`system.slice:nerdctl:<id>`); the namespace is not in the path.
    if (top === 'system.slice' && (m = /^nerdctl-([0-9a-f]{64})\.scope$/.exec(c)))
      return { runtime: 'containerd', id: m[1]!, base: base(1) };
    if (top === 'machine.slice' && (m = /^machine-(.+)\.scope$/.exec(c)) && UNIT_NAME_RE.test(m[1]!)) {
      // libvirt's LXC driver and systemd-nspawn both register machines; `lxc-` names are libvirt's.
      return { runtime: m[1]!.startsWith('lxc\\x2d') ? 'lxc' : 'nspawn', id: m[1]!, base: base(1) };
    }
    return null;
  }

  // LXC (lxc 4+): /lxc.payload.<name>[/...]; older: /lxc/<name>
  if (top.startsWith('lxc.payload.') && top.length > 12 && OCI_ID_RE.test(top.slice(12)))
    return { runtime: 'lxc', id: top.slice(12), base: base(0) };
  if (top === 'lxc' && parts[1] && OCI_ID_RE.test(parts[1])) return { runtime: 'lxc', id: parts[1], base: base(1) };
  return undefined;
}

/**
 * The free-form places, each needing its runtime's state to confirm it (classifyProcCgroup takes the first confirmed
 * one): containerd outside Kubernetes (ctr, nerdctl, cgroupfs driver), `/<namespace>/<container id>`, then plain runc
 * without cgroupsPath, `/<container id>`. Any root-made top-level name could be either. containerd's reading comes
 * first: when containerd's root-owned state holds `<namespace>/<id>`, the process is that container even if a runc
 * container happens to be called like the namespace (a runc container named `default` must not take every
 * `/default/<id>` process of containerd's default namespace). A runc container with a delegated cgroup can make
 * `/<its id>/<name>` below itself, but not containerd state for it, so such a child stays the runc container.
 */
function freeFormCandidates(parts: readonly string[], base: (i: number) => string): CgroupMatch[] {
  const top = parts[0]!;
  if (!OCI_ID_RE.test(top) || NOT_RUNC.test(top)) return [];
  const out: CgroupMatch[] = [];
  const id = parts[1];
  if (id !== undefined && containerdNamespace(top) && OCI_ID_RE.test(id))
    out.push({ runtime: 'containerd', id, base: base(1), namespace: top, verify: 'containerd-state' });
  out.push({ runtime: 'runc', id: top, base: base(0), verify: 'runc-state' });
  return out;
}

/**
 * Every reading of one cgroup path, most trustworthy first: a fixed runtime layout (at most one), else the
 * free-form places that need confirming, in the order classifyProcCgroup tries them.
 */
export function classifyCgroupCandidates(path: string): CgroupMatch[] {
  // The kernel writes canonical paths: an empty, `.` or `..` component means the text is not a real cgroup path
  // (one linear scan of at most PATH_MAX characters, no backtracking).
  if (!path.startsWith('/') || path.length > PATH_MAX || NON_CANONICAL.test(path.slice(1))) return [];
  // Every layout is named by the first LAYOUT_DEPTH components at most; the depth below is the container's own to
  // choose (a delegated subtree nests as deep as PATH_MAX allows: 2000 levels), and bounding it made a process moved
  // past 256 levels nobody's (its events left the tenant's log; a deep `conmon -c <id> -n <name>` was believed).
  const parts = path.slice(1).split('/', LAYOUT_DEPTH);
  const fixed = classifyFixed(parts);
  if (fixed !== undefined) return fixed ? [fixed] : [];
  return freeFormCandidates(parts, (i) => '/' + parts.slice(0, i + 1).join('/'));
}

/**
 * Classifies a process's whole /proc/PID/cgroup text: the first candidate path (see candidatePaths) that matches and,
 * for matches that need it, that `verify` confirms.
 */
export function classifyProcCgroup(
  text: string,
  verify: (m: CgroupMatch) => boolean = () => false,
): CgroupMatch | null {
  const cg = parseProcCgroup(text);
  for (const p of candidatePaths(cg)) for (const m of classifyCgroupCandidates(p)) if (!m.verify || verify(m)) return m;
  return null;
}
