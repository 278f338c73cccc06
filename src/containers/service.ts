// The host's container knowledge in one place: registry, cgroup discovery, hook registration, birth/retire records.
import { AuditmuxError, ExitCode } from '../errors';
import type { ContidTracker } from '../contid/tracker';
import { containerContid, containerKey } from '../contid/derive';
import { ContainerDiscovery, realContainerProc, type ContainerProc } from './discovery';
import { cutUtf8, encodeUntrusted } from '../records/encode';
import { containerdBundleNamespace, metaFromAnnotations } from './metadata';
import { parseOciState, type OciState } from './oci-state';
import { ContainerRegistry, RegistryFullError, type ContainerInfo } from './registry';
import {
  currentBootId,
  describeTrim,
  encodeState,
  readState,
  RUNTIME_NAME_RE,
  writeState,
  type PersistedContainer,
} from './persist';
import { collectHookFailures, type HookFailure } from './hook-failures';

export class ContainerError extends AuditmuxError {
  constructor(code: string, message: string) {
    super(code, message, ExitCode.FAILURE);
  }
}

export interface ContainersOptions {
  tracker: ContidTracker;
  proc?: ContainerProc;
  /** Writes a CONTAINER_OP record body to the host log. */
  record: (body: string) => void;
  maxLive?: number;
  /** The registry's clock (retirement times and their grace); the tracker has its own, Date.now in the daemon. */
  now?: () => number;
}

/** What a hook sends: the state it read on stdin and, when it could read it, the bundle's config.json annotations. */
export interface HookRegistration {
  state: unknown;
  bundleAnnotations?: unknown;
}

/**
 * The most UTF-8 bytes of one container value a record holds (cut with `...` past it): six such values as hex and the
 * other fields stay within auditd's line limit (8969 bytes), where annotations of 4 KiB (24 KiB as hex) would push
 * image, pod, namespace and res off the line. Names, images and namespaces Kubernetes and registries allow are shorter.
 */
export const RECORD_VALUE_MAX = 512;

/** Skipped state file entries named one by one in warnings at most (see restore). */
const SKIPPED_NAMED = 8;

function val(v: string | null | undefined): string {
  return v === null || v === undefined ? '?' : encodeUntrusted(cutUtf8(v, RECORD_VALUE_MAX));
}

/**
 * The birth, update or retirement record: every value a container or runtime chose is encoded as an untrusted string.
 * An update carries the whole metadata as it is now (search takes the newest per contid) and `changed`, the fields
 * that became known or changed since the last record.
 */
export function containerRecordBody(
  op: 'birth' | 'update' | 'retire',
  c: ContainerInfo,
  changed: readonly string[] = [],
): string {
  const m = c.meta;
  const parts = [
    `op=container-${op}`,
    `contid=${c.contid}`,
    // The daemon's own names, bare as ever; anything else (a value from outside, the state file, say) encoded like
    // every value a container chose, so it can never add fields to the record.
    `runtime=${RUNTIME_NAME_RE.test(c.runtime) ? c.runtime : val(c.runtime)}`,
    `container=${val(c.id)}`,
    `name=${val(m.name)}`,
    `image=${val(m.image)}`,
    `pod=${val(m.podName)}`,
    `namespace=${val(m.podNamespace)}`,
    `source=${c.source}`,
    `opid=${c.pid ?? -1}`,
  ];
  // containerd's own namespace (`ctr -n`, k8s.io under Kubernetes): one ID may run in several, each its own contid.
  // Docker's containers are in containerd's "moby" too, but their contid is by ID alone: the field would say nothing.
  if (c.runtime === 'containerd' && m.containerdNamespace !== undefined)
    parts.splice(4, 0, `containerd-ns=${val(m.containerdNamespace)}`);
  if (op === 'update') parts.push(`changed=${changed.filter((f) => /^[A-Za-z]{1,20}$/.test(f)).join(',') || '?'}`);
  if (op === 'retire') parts.push(`reason=${c.retireReason ?? '?'}`, `routed=${c.routed}`, `dropped=${c.dropped}`);
  parts.push('res=1');
  return parts.join(' ');
}

/**
 * One failed hook run as a CONTAINER_OP record: what the hook knew (the container ID and init pid from the state, when
 * it could read it), the stage, open or closed, and why; the hook's own time (it reaches the log a scan or two late).
 */
export function hookFailureRecordBody(f: HookFailure): string {
  return [
    'op=container-hook-failure',
    `container=${val(f.container)}`,
    `opid=${f.pid}`,
    `phase=${f.phase}`,
    `hook-mode=${f.mode}`,
    `hook-time=${(f.time / 1000).toFixed(3)}`,
    `hook-error=${f.code ?? '?'}`,
    `reason=${val(f.reason)}`,
    'res=0',
  ].join(' ');
}

/**
 * The runtime an OCI hook's state comes from. A cgroup layout of a runtime's own says so first: a pod's annotations are
 * its user's (CRI-O copies them into the state), so `io.kubernetes.cri.x` on a CRI-O pod must not make it containerd's.
 * Annotations only refine what the cgroup cannot tell: a kubepods container of any CRI runtime, a free-form runc one.
 */
function runtimeOf(a: Record<string, string>, cgroupRuntime: string | undefined): string {
  if (cgroupRuntime !== undefined && cgroupRuntime !== 'kubernetes' && cgroupRuntime !== 'runc') return cgroupRuntime;
  // A kubepods container is a CRI runtime's: a pod's own libpod annotation does not make it podman's.
  if (cgroupRuntime !== 'kubernetes' && a['io.container.manager'] === 'libpod') return 'podman';
  if (Object.keys(a).some((k) => k.startsWith('io.kubernetes.cri.'))) return 'containerd';
  if (Object.keys(a).some((k) => k.startsWith('io.kubernetes.cri-o.'))) return 'cri-o';
  return cgroupRuntime ?? 'oci';
}

export class Containers {
  readonly registry: ContainerRegistry;
  readonly discovery: ContainerDiscovery;
  private readonly tracker: ContidTracker;
  /**
   * hookRefused: registrations the daemon refused. hookFailures: failures hooks reported through the failures file
   * (the daemon down or slow, or a refusal), hookFailuresDropped: those the hooks could only count (file full),
   * hookFailureLinesMalformed: lines in that file that were not a hook's.
   */
  readonly counters = { hookRefused: 0, hookFailures: 0, hookFailuresDropped: 0, hookFailureLinesMalformed: 0 };
  private readonly record: (body: string) => void;
  /** Retirement graces the registry ended since the last tick, for the tracker (see tick). */
  private readonly ended = new Map<bigint, { live: boolean; retiredAt: number }>();

  constructor(opts: ContainersOptions) {
    this.tracker = opts.tracker;
    this.record = opts.record;
    this.registry = new ContainerRegistry({
      ...(opts.maxLive !== undefined ? { maxLive: opts.maxLive } : {}),
      ...(opts.now ? { now: opts.now } : {}),
      onBirth: (c) => opts.record(containerRecordBody('birth', c)),
      onUpdate: (c, changed) => opts.record(containerRecordBody('update', c, changed)),
      // The record at once; its processes keep their contid for the grace (their events may still be on their way).
      onRetire: (c) => {
        this.tracker.retireContid(c.contid, c.retired!);
        opts.record(containerRecordBody('retire', c));
      },
      // Collected, and ended in the tracker with one pass at the tick (expire ends many graces at once).
      onRetireEnd: (c, live) => this.ended.set(c.contid, { live, retiredAt: c.retired! }),
    });
    this.discovery = new ContainerDiscovery(this.registry, opts.proc ?? realContainerProc(), (pid) =>
      this.tracker.noteContainerMember(pid),
    );
  }

  /**
   * A hook's createRuntime/prestart (register) or poststop (retire). The init pid is tagged at once, before user code
   * runs; a pid whose cgroup names a different container is refused (a confused or lying caller).
   */
  fromHook(reg: HookRegistration): Record<string, unknown> {
    let state: OciState;
    try {
      state = parseOciState(JSON.stringify(reg.state ?? null));
    } catch (e) {
      this.counters.hookRefused++;
      throw e;
    }
    const annotations: Record<string, string> = { ...state.annotations };
    if (reg.bundleAnnotations && typeof reg.bundleAnnotations === 'object') {
      // Re-validated: the same bounds as the state's own annotations.
      const b = parseOciState(
        JSON.stringify({ id: state.id, status: state.status, annotations: reg.bundleAnnotations }),
      ).annotations;
      for (const [k, v] of Object.entries(b)) if (!(k in annotations)) annotations[k] = v;
    }
    // containerd's namespace, from the bundle path its shim chose (never from annotations, which a tenant sets).
    const bundleNs = containerdBundleNamespace(state.bundle, state.id);
    // A free-form cgroup named after this very container is confirmed by the (root) hook's own state: runc writes its
    // state directory (containerd's runc state as well) only after the createRuntime hooks ran. A containerd bundle
    // confirms only containerd's `/<its namespace>/<id>`, never a plain runc `/<id>`: the container is containerd's.
    const match =
      state.pid > 0
        ? this.discovery.classify(
            state.pid,
            null,
            (m) =>
              m.id === state.id &&
              (m.verify === 'containerd-state' ? m.namespace === bundleNs : bundleNs === undefined),
          )
        : null;
    // The namespace the contid is keyed by: a free-form containerd cgroup's, else (no fixed layout found, so the
    // scan cannot know it by a pattern either) the bundle's. CRI containers in kubepods or `cri-containerd-<id>.scope`
    // keep their ID alone as key, as the scan derives it (see containerKey).
    const keyNs = match ? match.namespace : bundleNs;
    const runtime = keyNs !== undefined ? 'containerd' : runtimeOf(annotations, match?.runtime);
    let contid = containerContid(containerKey(runtime, state.id, keyNs));
    if (state.status === 'stopped') {
      // No pid at poststop, so no cgroup: a containerd container known by a fixed layout was keyed by its ID alone.
      if (!this.registry.get(contid) && bundleNs !== undefined) {
        const plain = containerContid(containerKey('containerd', state.id));
        const c = this.registry.get(plain);
        if (c?.runtime === 'containerd' && c.id === state.id && c.meta.containerdNamespace === bundleNs) contid = plain;
      }
      const c = this.registry.retire(contid, 'poststop');
      return { contid: contid.toString(), id: state.id, retired: c !== null };
    }
    if (
      match &&
      (match.id !== state.id ||
        (bundleNs !== undefined && match.namespace !== undefined && match.namespace !== bundleNs))
    ) {
      this.counters.hookRefused++;
      const where = match.namespace !== undefined ? `${match.namespace.slice(0, 76)}/` : '';
      throw new ContainerError(
        'E_CONTAINER_MISMATCH',
        `pid ${state.pid} is in container ${where}${match.id.slice(0, 64)} (by its cgroup), not ${bundleNs !== undefined ? `${bundleNs}/` : ''}${state.id}`,
      );
    }
    const st = state.pid > 0 ? this.discovery.proc.stat(state.pid) : null;
    if (state.pid > 0 && !st) throw new ContainerError('E_CONTAINER_NOPID', `no process ${state.pid}`);
    const meta = metaFromAnnotations(annotations);
    if (bundleNs !== undefined) meta.containerdNamespace = bundleNs;
    if (!meta.name && state.pid > 0) {
      const n = this.discovery.runtimeName(state.pid, state.id);
      if (n) meta.name = n;
    }
    // What the runtime's own files say (docker's config.v2.json, podman's store): the birth record of a container the
    // hook registers first carries its image too, not only a later update record. Annotations win where both know.
    if (state.pid > 0) {
      const known = meta as Record<string, unknown>;
      const rm = this.discovery.runtimeMeta(state.pid, { runtime, id: state.id, namespace: keyNs });
      for (const [k, v] of Object.entries(rm)) if (v !== undefined && known[k] === undefined) known[k] = v;
    }
    // An ID that is not a generated hex one (plain runc, `runc run NAME`) is the name its user chose.
    if (!meta.name && !/^[0-9a-f]{64}$/.test(state.id)) meta.name = state.id;
    let isNew = false;
    try {
      isNew = this.registry.register({
        runtime,
        id: state.id,
        contid,
        source: 'hook',
        pid: state.pid || null,
        pidStart: st?.starttime ?? null,
        meta,
      }).isNew;
    } catch (e) {
      if (!(e instanceof RegistryFullError)) throw e;
    }
    if (state.pid > 0 && st) this.tracker.adopt(state.pid, contid, st.starttime);
    // cgroupKnown: the container's processes are recognised by their cgroup, so no fork tracking is needed for them.
    return {
      contid: contid.toString(),
      id: state.id,
      name: meta.name ?? null,
      new: isNew,
      cgroupKnown: match !== null,
    };
  }

  list(): Array<Record<string, unknown>> {
    return this.registry.list();
  }

  /**
   * The housekeeping tick (every 2 s, discovery or not): retired containers whose grace is over leave routing (their
   * processes' tracker entries, their metadata), and a process under a pid of one still in its grace is found to be
   * another. Returns how many graces ended.
   */
  tick(): number {
    this.tracker.checkRetired();
    const n = this.registry.expire();
    // Also graces ended early since the last tick (more than maxRetired retired at once).
    this.tracker.endRetirements(this.ended);
    this.ended.clear();
    return n;
  }

  /**
   * The failures hooks left in `dir` (the control socket's directory) since the last call: counted, and each one a
   * record in the host log; problems with the files themselves go to `warn`. Returns how many failures it found.
   */
  collectHookFailures(dir: string, warn: (msg: string) => void): number {
    const s = collectHookFailures(dir);
    for (const p of s.problems) warn(`oci-hook failures: ${p}`);
    if (s.malformed) warn(`oci-hook failures: ${s.malformed} malformed line(s) ignored`);
    if (s.unread) warn(`oci-hook failures: ${s.unread} byte(s) over the read limit not read`);
    for (const f of s.failures) this.record(hookFailureRecordBody(f));
    if (s.dropped) this.record(`op=container-hook-failure dropped=${s.dropped} res=0`);
    this.counters.hookFailures += s.failures.length + s.dropped;
    this.counters.hookFailuresDropped += s.dropped;
    this.counters.hookFailureLinesMalformed += s.malformed;
    return s.failures.length + s.dropped;
  }

  /**
   * Takes back the containers a previous run of the daemon knew (before the first scan, so a container still running
   * keeps its name and image and gets no second birth record; one that stopped meanwhile is retired by the scan). A
   * state file that cannot be used is reported through `warn` and the registry starts empty; an entry that cannot be
   * used is named through `warn` and skipped, and the others come back.
   */
  restore(file: string, warn: (msg: string) => void, boot = currentBootId()): number {
    let saved: PersistedContainer[] = [];
    try {
      const s = readState(file, boot);
      saved = s.containers;
      // Named up to a few (a planted file of thousands must not flood the log), counted past them.
      for (const k of s.skipped.slice(0, SKIPPED_NAMED))
        warn(`container state ${file}: entry ${k.index} skipped (${k.reason})`);
      if (s.skipped.length > SKIPPED_NAMED)
        warn(`container state ${file}: ${s.skipped.length - SKIPPED_NAMED} more entries skipped`);
    } catch (e) {
      warn(`container state ${file} not used: ${(e as Error).message}`);
    }
    let n = 0;
    for (const c of saved)
      if (this.registry.restore(c)) {
        n++;
        // The init pid, checked to still be the same process (its start time: an entry saved without one cannot
        // tell, and whatever holds that pid now, a host shell perhaps, must not take the container's contid), keeps
        // its contid on the mainline tracker.
        const st = c.pid ? this.discovery.proc.stat(c.pid) : null;
        if (c.pid && st && c.pidStart !== null && st.starttime === c.pidStart)
          this.tracker.adopt(c.pid, c.contid, st.starttime);
      }
    this.savedVersion = this.registry.version;
    return n;
  }

  private savedVersion = -1;
  /** The kinds of trimming the last write did (see save): a warning when they change, not at every write. */
  private trimKinds = '';

  /**
   * Writes the live containers when they changed since the last write; failures go to `warn` (retried next time), and
   * so does what the writer had to leave out to keep the file readable (see encodeState).
   */
  save(file: string, warn: (msg: string) => void, boot = currentBootId()): void {
    // Never before restore(): a daemon that failed to start must not overwrite the state with an empty registry.
    if (this.savedVersion < 0 || this.registry.version === this.savedVersion) return;
    try {
      const { text, trim } = encodeState(boot, this.registry.liveContainers());
      writeState(file, text);
      this.savedVersion = this.registry.version;
      // Writes come every 2 s while containers change: warned when what is trimmed changes kind, not at each one.
      const kinds = Object.entries(trim)
        .filter(([, n]) => n > 0)
        .map(([k]) => k)
        .join(',');
      if (kinds !== this.trimKinds && kinds) warn(`container state ${file} written trimmed: ${describeTrim(trim)}`);
      this.trimKinds = kinds;
    } catch (e) {
      warn(`container state ${file} not written: ${(e as Error).message}`);
    }
  }
}
