// The OCI runtime state a hook reads on stdin: untrusted input, parsed with size, shape and value bounds.
import { Buffer } from 'node:buffer';
import { AuditmuxError, ExitCode } from '../errors';
import { OCI_ID_RE } from '../contid/cgroup-patterns';

/** An OCI state document is a few hundred bytes plus annotations; 64 KiB is generous and bounds memory. */
export const OCI_STATE_MAX = 64 * 1024;
export const ANNOTATIONS_MAX = 256;
const ANNOTATION_KEY_MAX = 253;
const ANNOTATION_VALUE_MAX = 4096;
const PATH_MAX = 4096;
/** The kernel's pid_max ceiling (PID_MAX_LIMIT on 64-bit). */
const PID_MAX = 4194304;

export type OciStatus = 'creating' | 'created' | 'running' | 'stopped' | 'paused';
const STATUSES: readonly OciStatus[] = ['creating', 'created', 'running', 'stopped', 'paused'];

export interface OciState {
  ociVersion: string;
  id: string;
  status: OciStatus;
  /** Host pid of the container's init; 0 when the runtime gives none (poststop). */
  pid: number;
  bundle: string;
  annotations: Record<string, string>;
  /** Annotations left out: not a short printable string, or past the count cap (see parseOciState). */
  skippedAnnotations?: number;
}

/** Malformed state: the message says where (byte offset or field). */
export class OciStateError extends AuditmuxError {
  constructor(message: string) {
    super('E_OCI_STATE', `OCI state: ${message}`, ExitCode.USAGE);
  }
}

const CONTROL = /[\x00-\x1f\x7f]/;
/** Annotation keys the runtimes and kubelet write, which name a container (metadata.ts): kept past the count cap. */
export const RUNTIME_KEY_RE =
  /^(?:io\.kubernetes\.|io\.auditmux\.|io\.container\.manager$|nerdctl\/|org\.opencontainers\.)/;

/** A bounded, printable string value (annotations are free text but never control characters or huge). */
function str(v: unknown, field: string, max: number, opts: { allowControl?: boolean } = {}): string {
  if (typeof v !== 'string') throw new OciStateError(`"${field}" must be a string`);
  if (v.length > max) throw new OciStateError(`"${field}" is longer than ${max} characters`);
  if (!opts.allowControl && CONTROL.test(v)) throw new OciStateError(`"${field}" contains control characters`);
  return v;
}

/** Parses and validates the state JSON (Buffer or text) a runtime writes to a hook's stdin. Throws OciStateError. */
export function parseOciState(input: Buffer | string): OciState {
  const len = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (len > OCI_STATE_MAX) throw new OciStateError(`${len} bytes, over the ${OCI_STATE_MAX}-byte limit`);
  const text = typeof input === 'string' ? input : input.toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    // V8 names the position ("... in JSON at position 12"): keep it in the message.
    throw new OciStateError(`not JSON (${(e as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new OciStateError('the document must be a JSON object');
  const o = doc as Record<string, unknown>;
  const ociVersion = o.ociVersion === undefined ? '' : str(o.ociVersion, 'ociVersion', 64);
  const id = str(o.id, 'id', 128);
  if (!OCI_ID_RE.test(id) || id === '.' || id === '..')
    throw new OciStateError(
      `"id" ${JSON.stringify(id.slice(0, 64))} is not an OCI container ID ([A-Za-z0-9_+.-], 1-128)`,
    );
  const status = str(o.status, 'status', 16) as OciStatus;
  if (!STATUSES.includes(status))
    throw new OciStateError(`"status" ${JSON.stringify(status)} is not one of ${STATUSES.join(', ')}`);
  let pid = 0;
  if (o.pid !== undefined) {
    if (typeof o.pid !== 'number' || !Number.isInteger(o.pid) || o.pid < 0 || o.pid > PID_MAX)
      throw new OciStateError(`"pid" must be an integer in 0..${PID_MAX}`);
    pid = o.pid;
  }
  const bundle = o.bundle === undefined ? '' : str(o.bundle, 'bundle', PATH_MAX);
  if (bundle && !bundle.startsWith('/')) throw new OciStateError('"bundle" must be an absolute path');
  const annotations: Record<string, string> = Object.create(null) as Record<string, string>;
  let skipped = 0;
  if (o.annotations !== undefined && o.annotations !== null) {
    if (typeof o.annotations !== 'object' || Array.isArray(o.annotations))
      throw new OciStateError('"annotations" must be an object of strings');
    // An annotation that is not a short printable string is left out, not the container: CRI-O copies a pod's own
    // annotations into each of its containers (kubectl's last-applied-configuration is often over 4 KiB), and a
    // refused state would leave the container unnamed (its events the host's alone) or, fail-closed, not started.
    // Past ANNOTATIONS_MAX only the runtimes' own keys are kept, so junk cannot push them out.
    let kept = 0;
    for (const [k, v] of Object.entries(o.annotations as Record<string, unknown>)) {
      const ok =
        typeof v === 'string' &&
        v.length <= ANNOTATION_VALUE_MAX &&
        !CONTROL.test(v) &&
        k.length > 0 &&
        k.length <= ANNOTATION_KEY_MAX &&
        !CONTROL.test(k);
      if (!ok || (kept >= ANNOTATIONS_MAX && !RUNTIME_KEY_RE.test(k))) {
        skipped++;
        continue;
      }
      annotations[k] = v;
      kept++;
    }
  }
  return { ociVersion, id, status, pid, bundle, annotations, skippedAnnotations: skipped };
}

/**
 * The annotations of a bundle's config.json (a trusted runtime wrote it, but it is bounded and checked all the same).
 */
export function parseBundleAnnotations(input: Buffer): {
  annotations: Record<string, string>;
  hostname: string | null;
} {
  let doc: unknown;
  try {
    doc = JSON.parse(input.toString('utf8'));
  } catch (e) {
    throw new OciStateError(`bundle config.json is not JSON (${(e as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new OciStateError('bundle config.json must be a JSON object');
  const o = doc as Record<string, unknown>;
  const annotations: Record<string, string> = Object.create(null) as Record<string, string>;
  if (typeof o.annotations === 'object' && o.annotations !== null && !Array.isArray(o.annotations)) {
    // Past ANNOTATIONS_MAX only the runtimes' own keys, as in the state: Go writes keys sorted, so `a0`...`a255`
    // would otherwise push every `io.kubernetes.*` key out.
    let n = 0;
    for (const [k, v] of Object.entries(o.annotations as Record<string, unknown>)) {
      if (
        typeof v !== 'string' ||
        k.length === 0 ||
        k.length > ANNOTATION_KEY_MAX ||
        CONTROL.test(k) ||
        v.length > ANNOTATION_VALUE_MAX ||
        CONTROL.test(v) ||
        (n >= ANNOTATIONS_MAX && !RUNTIME_KEY_RE.test(k))
      )
        continue;
      annotations[k] = v;
      n++;
    }
  }
  const hostname =
    typeof o.hostname === 'string' && o.hostname.length <= 253 && !CONTROL.test(o.hostname) ? o.hostname : null;
  return { annotations, hostname };
}

/**
 * What a hook sends the daemon, made to fit `budget` bytes of JSON (the control socket refuses longer request lines):
 * the bundle's annotations the state already has are not sent twice (runc and crun copy config.json's into the
 * state), then annotations are left out, largest first, other keys before the runtimes' own, until it fits. A pod's
 * own annotations (CRI-O copies them, Kubernetes allows 256 KiB) made the request too large and the container
 * unregistered (or, fail-closed, not started). `dropped`: how many were left out.
 */
export function fitHookRequest(
  state: OciState,
  bundle: Record<string, string> | undefined,
  budget: number,
): { state: OciState; bundleAnnotations?: Record<string, string>; dropped: number } {
  const annotations: Record<string, string> = { ...state.annotations };
  let extra: Record<string, string> | undefined;
  if (bundle) {
    extra = {};
    for (const [k, v] of Object.entries(bundle)) if (!(k in annotations)) extra[k] = v;
  }
  const size = (): number =>
    Buffer.byteLength(
      JSON.stringify({ state: { ...state, annotations }, ...(extra ? { bundleAnnotations: extra } : {}) }),
    );
  let total = size();
  let dropped = 0;
  if (total > budget) {
    const cost = (k: string, v: string): number => Buffer.byteLength(JSON.stringify(k) + JSON.stringify(v)) + 2;
    const all: Array<{ from: Record<string, string>; k: string; n: number; runtime: boolean }> = [];
    for (const from of extra ? [annotations, extra] : [annotations])
      for (const [k, v] of Object.entries(from)) all.push({ from, k, n: cost(k, v), runtime: RUNTIME_KEY_RE.test(k) });
    all.sort((a, b) => Number(a.runtime) - Number(b.runtime) || b.n - a.n || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
    for (const a of all) {
      if (total <= budget) break;
      delete a.from[a.k];
      total -= a.n;
      dropped++;
    }
  }
  return { state: { ...state, annotations }, ...(extra ? { bundleAnnotations: extra } : {}), dropped };
}
