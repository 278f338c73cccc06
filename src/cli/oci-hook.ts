// `auditmux oci-hook` and `auditmux containers`: the OCI hook program and the registry listing, thin over the daemon.
import { Buffer } from 'node:buffer';
import { closeSync, constants, existsSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AuditmuxError, ExitCode } from '../errors';
import { controlRequest } from '../daemon/control';
import { readBounded } from '../safefs';
import { textTable } from './table';
import { BUNDLE_CONFIG_MAX } from '../containers/bundle-hooks';
import {
  OCI_STATE_MAX,
  fitHookRequest,
  parseBundleAnnotations,
  parseOciState,
  type OciState,
} from '../containers/oci-state';
import { HOOK_FAILURES_FILE, appendHookFailure } from '../containers/hook-failures';

/** A hook's request, at most (the control socket refuses lines over 64 KiB; the rest is the envelope's). */
const HOOK_REQUEST_BUDGET = 60 * 1024;

/** Reads at most `limit` bytes from a stream within `deadline` (ms since epoch); rejects past either. */
export function readStdinBounded(stream: NodeJS.ReadableStream, limit: number, deadline: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const done = (e: Error | null): void => {
      clearTimeout(timer);
      stream.removeListener('data', onData);
      stream.removeListener('end', onEnd);
      stream.removeListener('error', onErr);
      if (e) {
        (stream as NodeJS.ReadStream).destroy?.();
        reject(e);
      } else resolve(Buffer.concat(chunks, total));
    };
    const onData = (c: Buffer | string): void => {
      const b = typeof c === 'string' ? Buffer.from(c) : c;
      total += b.length;
      if (total > limit)
        return done(
          new AuditmuxError('E_OCI_STATE', `OCI state on stdin is over the ${limit}-byte limit`, ExitCode.USAGE),
        );
      chunks.push(b);
    };
    const onEnd = (): void => done(null);
    const onErr = (e: Error): void => done(e);
    const timer = setTimeout(
      () => done(new AuditmuxError('E_TIMEOUT', 'no complete OCI state on stdin in time', ExitCode.FAILURE)),
      Math.max(0, deadline - Date.now()),
    );
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onErr);
  });
}

export interface OciHookOptions {
  socket: string;
  timeoutMs: number;
  failClosed: boolean;
  stdin: NodeJS.ReadableStream;
  err: (s: string) => void;
  out: (s: string) => void;
  /** Where /proc is (tests point it at a directory an emulated patched kernel reads). */
  procRoot?: string;
  /**
   * When the hook's time ends (ms since the epoch): the command line sets it before it reads the config file, so the
   * whole run is bounded by --timeout. Default: now + timeoutMs.
   */
  deadline?: number;
  /** Where a failure is recorded for the daemon; default beside the socket, null for nowhere. */
  failuresFile?: string | null;
}

/** The failures file of a control socket: in the daemon's runtime directory, beside the socket. */
export function hookFailuresFile(socket: string): string {
  return join(dirname(socket), HOOK_FAILURES_FILE);
}

/**
 * The contid patch set's interface: the decimal contid in one write to /proc/PID/audit_containerid. Never created
 * (no O_CREAT: on mainline, or for a vanished pid, there is nothing to write to) and never through a link.
 */
export function writeKernelContid(procRoot: string, pid: number, contid: string): void {
  const file = `${procRoot}/${pid}/audit_containerid`;
  let fd: number;
  try {
    // O_TRUNC as `echo ID > /proc/PID/audit_containerid` opens it (procfs ignores it; a plain file is rewritten).
    fd = openSync(file, constants.O_WRONLY | constants.O_TRUNC | constants.O_NOFOLLOW | constants.O_NOCTTY);
  } catch (e) {
    throw new AuditmuxError('E_CONTID_WRITE', `cannot open ${file} (${(e as NodeJS.ErrnoException).code ?? 'EIO'})`);
  }
  try {
    const b = Buffer.from(contid, 'latin1');
    if (writeSync(fd, b, 0, b.length) !== b.length) throw Object.assign(new Error('short write'), { code: 'EIO' });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    // The patch set lets only an ancestor of the init set it: a hook is its sibling (docs/design.md, limits).
    const why = code === 'EXDEV' ? ': only an ancestor of the container init may set it; the runtime must' : '';
    throw new AuditmuxError('E_CONTID_WRITE', `kernel refused ${file} (${code})${why}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Registers (createRuntime/prestart) or retires (poststop) the container described on stdin with the host daemon.
 * Fails open unless told otherwise: a container must start when auditmux is down; its cgroup gets it tagged later.
 */
export async function runOciHook(o: OciHookOptions): Promise<number> {
  const deadline = o.deadline ?? Date.now() + o.timeoutMs;
  let state: OciState | null = null;
  try {
    if (deadline - Date.now() <= 0)
      throw new AuditmuxError('E_TIMEOUT', `--timeout ${o.timeoutMs} spent before the OCI state was read`);
    const raw = await readStdinBounded(o.stdin, OCI_STATE_MAX, deadline);
    state = parseOciState(raw);
    let bundleAnnotations: Record<string, string> | undefined;
    if (state.bundle && state.status !== 'stopped') {
      try {
        // The runtime wrote it, but the path came on stdin: regular file, no symlink, bounded.
        const b = readBounded(join(state.bundle, 'config.json'), {
          limit: BUNDLE_CONFIG_MAX,
          noFollow: true,
          what: 'bundle config',
        });
        bundleAnnotations = parseBundleAnnotations(b.data).annotations;
      } catch (e) {
        o.err(`auditmux oci-hook: ${(e as Error).message} (annotations from the state only)`);
      }
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new AuditmuxError('E_TIMEOUT', `no time left for the daemon (--timeout ${o.timeoutMs})`);
    // Under the control socket's 64 KiB request line, with room for the envelope.
    const fit = fitHookRequest(state, bundleAnnotations, HOOK_REQUEST_BUDGET);
    if (fit.dropped)
      o.err(`auditmux oci-hook: ${fit.dropped} annotation(s) left out to fit the daemon's request limit`);
    const req = { state: fit.state, ...(fit.bundleAnnotations ? { bundleAnnotations: fit.bundleAnnotations } : {}) };
    let r: Record<string, unknown>;
    for (let attempt = 0; ; attempt++) {
      try {
        r = (await controlRequest(o.socket, 'container-hook', req, deadline - Date.now())) as Record<string, unknown>;
        break;
      } catch (e) {
        // E_BUSY: the daemon had all the connections it takes (a burst of containers starting at once). Asked again,
        // with a jittered back-off, while the time lasts: one refusal used to leave the container unregistered.
        const wait = Math.min(25 * 2 ** attempt, 400) * (0.5 + Math.random() / 2);
        if (!(e instanceof AuditmuxError && e.code === 'E_BUSY') || deadline - Date.now() <= wait + 50) throw e;
        await new Promise((res) => setTimeout(res, wait));
      }
    }
    o.out(
      `auditmux oci-hook: container ${state.id} contid ${String(r.contid)} ${state.status === 'stopped' ? 'retired' : 'registered'}`,
    );
    // A kernel with the patch set tags the init itself (the daemon's contid, derived from the container ID), before
    // user code runs; mainline has no such file and the daemon's tracker does it.
    const proc = o.procRoot ?? '/proc';
    if (state.status !== 'stopped' && state.pid > 0 && existsSync(`${proc}/self/audit_containerid`)) {
      if (!/^[0-9]{1,20}$/.test(String(r.contid)))
        throw new AuditmuxError('E_CONTID_WRITE', `the daemon answered contid ${String(r.contid).slice(0, 40)}`);
      writeKernelContid(proc, state.pid, String(r.contid));
      o.out(`auditmux oci-hook: ${proc}/${state.pid}/audit_containerid set to ${String(r.contid)}`);
    }
    return ExitCode.OK;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    recordFailure(o, state, e);
    if (o.failClosed) {
      o.err(`auditmux oci-hook: ${msg} (--fail-closed: refusing the container)`);
      return e instanceof AuditmuxError && e.exitCode !== ExitCode.OK ? e.exitCode : ExitCode.FAILURE;
    }
    o.err(`auditmux oci-hook: ${msg} (failing open: the container runs, auditmux will recognise it by its cgroup)`);
    return ExitCode.OK;
  }
}

/**
 * Leaves the failure where the host daemon counts and logs it at its next scan: a runtime shows a hook's stderr only
 * when the hook fails, so failing open would otherwise go unseen. Never throws (the hook's answer must not change).
 */
function recordFailure(o: OciHookOptions, state: OciState | null, e: unknown): void {
  const file = o.failuresFile === undefined ? hookFailuresFile(o.socket) : o.failuresFile;
  if (file === null) return;
  try {
    const r = appendHookFailure(file, {
      time: Date.now(),
      container: state?.id ?? null,
      pid: state ? state.pid : -1,
      phase: state === null ? 'unknown' : state.status === 'stopped' ? 'poststop' : 'create',
      mode: o.failClosed ? 'closed' : 'open',
      code: e instanceof AuditmuxError ? e.code : null,
      reason: e instanceof Error ? e.message : String(e),
    });
    if (r !== 'written')
      o.err(
        `auditmux oci-hook: failures file ${file} is full: this failure only ${r === 'dropped' ? 'counted' : 'lost'}`,
      );
  } catch (err) {
    o.err(`auditmux oci-hook: failure not recorded: ${(err as Error).message}`);
  }
}

/** One cell of a text table: anything not printable ASCII (a hostile container name) is shown escaped. */
function cell(v: unknown): string {
  if (v === null || v === undefined) return '-';

  return String(v).replace(/[^\x21-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The line under the containers table when OCI hooks failed since the daemon started; null when none did. */
export function hookFailuresNote(status: Record<string, unknown>): string | null {
  const c = status.containers as Record<string, unknown> | undefined;
  const n = Number(c?.hookFailures ?? 0);
  if (!Number.isSafeInteger(n) || n <= 0) return null;
  const dropped = Number(c?.hookFailuresDropped ?? 0);
  return (
    `oci-hook failures: ${n}${dropped > 0 ? ` (${dropped} only counted: the failures file was full)` : ''};` +
    ' see op=container-hook-failure in the host log'
  );
}

export function formatContainers(rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return 'no containers';
  const cols = ['contid', 'runtime', 'id', 'name', 'image', 'namespace', 'pod', 'state', 'source', 'routed', 'dropped'];
  return textTable([
    cols,
    // A containerd container's ID is unique only within its namespace: `<namespace>/<id>`, as its contid is keyed.
    ...rows.map((r) =>
      cols.map((c) =>
        c === 'id'
          ? cell((r.containerdNamespace ? `${String(r.containerdNamespace)}/` : '') + String(r.id ?? '').slice(0, 12))
          : cell(r[c]),
      ),
    ),
  ]);
}
