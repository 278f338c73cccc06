// auditd plugin output (auditd-plugins(5)): runs an executable and feeds it records on stdin, restarting it on crashes.
import { Buffer } from 'node:buffer';
import { spawn, type ChildProcess } from 'node:child_process';
import type { PluginOutputSpec } from '../config/schema';
import { programTrustProblem } from '../trust';
import { ConfigError } from '../errors';
import { userIds } from '../rules/accounts';
import type { OutputContext } from './output';
import type { QueueCursor } from './transport/spool';
import { QueuedOutput, queuedOptions } from './transport/queued-output';
import { MAX_LINE_BYTES } from './format';

/**
 * struct audit_dispatcher_header: u32 ver, hlen, type, size in host byte order (little-endian on every Linux we run
 * on).
 */
export const DISPATCHER_HEADER_SIZE = 16;
/** AUDISP_PROTOCOL_VER: the payload is the kernel's text (`audit(...): ...`). */
export const AUDISP_PROTOCOL_VER = 0;
/** AUDISP_PROTOCOL_VER2: the payload is a preformatted line starting with node= or type=. */
export const AUDISP_PROTOCOL_VER2 = 1;
const HIGH_WATER = 256 * 1024;
/**
 * auditd's dispatcher execs plugins with an empty environment (execve(path, argv, NULL)) and only stdin, stdout
 * and stderr open; so does auditmux, so no secret or LD_PRELOAD/NODE_OPTIONS of the daemon's reaches a plugin.
 */
export const PLUGIN_ENV: Readonly<Record<string, string>> = Object.freeze({});
const STOP_GRACE_MS = 2000;

export function dispatcherFrame(ver: number, type: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(DISPATCHER_HEADER_SIZE + payload.length);
  out.writeUInt32LE(ver, 0);
  out.writeUInt32LE(DISPATCHER_HEADER_SIZE, 4);
  out.writeUInt32LE(type >>> 0, 8);
  out.writeUInt32LE(payload.length, 12);
  payload.copy(out, DISPATCHER_HEADER_SIZE);
  return out;
}

/**
 * Queue entries are already what goes down the pipe (a line + newline, or a dispatcher frame), so a restarted plugin
 * gets exactly the bytes the crashed one would have. A pipe has no acks, so a record counts as delivered once it has
 * been in the pipe for resendWindowMs with the plugin still alive; when the plugin dies, everything younger is fed to
 * the restarted one again (auditd loses it instead). The plugin may therefore see a few records twice after a crash.
 */
export class PluginOutput extends QueuedOutput {
  private readonly spec: PluginOutputSpec;
  private readonly rawBinary: boolean;
  private child: ChildProcess | null = null;
  private restarts = 0;
  private gaveUp = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private readonly pc = { starts: 0, crashes: 0, lastExit: '' };
  private written: { end: QueueCursor; at: number; n: number }[] = [];
  private readonly tick: NodeJS.Timeout;
  private readonly ids: { uid: number; gid: number } | undefined;

  constructor(spec: PluginOutputSpec, ctx: OutputContext) {
    // Checked before the spool is opened, so a refused plugin leaves nothing behind; the daemon does not start.
    const ids = checkPlugin(spec);
    super(queuedOptions(spec, ctx, MAX_LINE_BYTES, true));
    this.spec = spec;
    this.ids = ids;
    // auditd sends version-0 frames (kernel text) only for local RAW records without a node name.
    this.rawBinary = spec.pluginFormat === 'binary' && spec.format === 'RAW' && !ctx.nodeName;
    this.tick = setInterval(() => this.commitOld(Date.now() - (this.spec.resendWindowMs ?? 1000)), 200);
    this.startChild();
  }

  /** Forwards SIGHUP, as auditd does on reconfigure. */
  reconfigure(): void {
    this.child?.kill('SIGHUP');
  }

  override resume(): void {
    if (this.gaveUp) {
      this.gaveUp = false;
      this.restarts = 0;
      this.startChild();
    }
    super.resume();
  }

  protected kind(): string {
    return 'plugin';
  }

  protected override encode(type: number, payload: Buffer): Buffer {
    if (this.rawBinary) {
      let end = payload.indexOf(0);
      if (end < 0) end = payload.length;
      return dispatcherFrame(AUDISP_PROTOCOL_VER, type, payload.subarray(0, Math.min(end, MAX_LINE_BYTES)));
    }
    const line = super.encode(type, payload);
    if (this.spec.pluginFormat === 'binary') return dispatcherFrame(AUDISP_PROTOCOL_VER2, type, line);
    return Buffer.concat([line, Buffer.from('\n')]);
  }

  protected onAppend(): void {
    this.pump();
  }

  protected pump(): void {
    const c = this.child;
    const stdin = c?.stdin;
    if (!c || !stdin || this.waitingDrain || this.closed || this.suspended || stdin.destroyed) return;
    const parts: Buffer[] = [];
    let bytes = 0;
    let end: QueueCursor | null = null;
    let n = 0;
    while (bytes < HIGH_WATER) {
      const r = this.queue.next();
      if (!r) break;
      parts.push(r.data);
      bytes += r.data.length;
      end = r.end;
      n++;
    }
    if (!end) return;
    const commitEnd = end;
    this.sendBatch(stdin, Buffer.concat(parts), bytes, HIGH_WATER, (err) => {
      if (err || this.child !== c) return;
      this.written.push({ end: commitEnd, at: Date.now(), n });
    });
  }

  protected override extraStats(): Record<string, number | string | boolean> {
    return {
      ...this.pc,
      restarts: this.restarts,
      running: this.child !== null,
      gaveUp: this.gaveUp,
      path: this.spec.path,
    };
  }

  /** The plugin was sent SIGTERM at shutdown (its exit then says nothing of what it read). */
  private signalled = false;

  private commitOld(before: number): void {
    let k = 0;
    let n = 0;
    while (k < this.written.length && (this.written[k] as { at: number }).at <= before)
      n += (this.written[k++] as { n: number }).n;
    if (k === 0) return;
    const last = this.written[k - 1] as { end: QueueCursor };
    this.written.splice(0, k);
    this.queue.commit(last.end);
    this.counters.delivered += n;
    this.markDirty();
  }

  protected async shutdown(): Promise<void> {
    clearInterval(this.tick);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const c = this.child;
    if (!c) return;
    await new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) return resolve();
      c.once('exit', () => resolve());
      // auditd's shutdown: close the pipe so the plugin sees EOF, then SIGTERM, then give up waiting.
      c.stdin?.end();
      const t1 = setTimeout(() => {
        this.signalled = true;
        c.kill('SIGTERM');
      }, STOP_GRACE_MS);
      const t2 = setTimeout(() => {
        c.kill('SIGKILL');
        resolve();
      }, STOP_GRACE_MS * 2);
      c.once('exit', () => {
        clearTimeout(t1);
        clearTimeout(t2);
      });
    });
    this.child = null;
    this.syncQueue();
  }

  private startChild(): void {
    if (this.closed) return;
    let c: ChildProcess;
    // Checked again at every start: a binary swapped since the daemon started is refused, not run as root.
    const untrusted = programTrustProblem(this.spec.path);
    if (untrusted) {
      this.lastError = `plugin refused: ${untrusted}`;
      this.diag.error(
        { output: this.name, path: this.spec.path, reason: untrusted },
        'plugin refused: only root may be able to change it',
      );
      this.onChildGone(null, null);
      return;
    }
    try {
      // Only stdio is inherited: libuv opens every other descriptor (netlink socket, logs, control socket) O_CLOEXEC.
      // With `user`, libuv calls setgroups(0), setgid, setuid before exec: from root to another uid the kernel clears
      // every capability, so the plugin runs with that user's rights alone.
      c = spawn(this.spec.path, this.spec.args, {
        stdio: ['pipe', 'ignore', 'pipe'],
        env: PLUGIN_ENV,
        cwd: '/',
        ...(this.ids ?? {}),
      });
    } catch (e) {
      this.lastError = `spawn: ${String(e)}`;
      this.onChildGone(null, null);
      return;
    }
    this.child = c;
    this.pc.starts++;
    this.waitingDrain = false;
    c.stdin?.on('error', (e) => {
      // EPIPE: the plugin died or closed stdin; 'exit' handles the restart.
      this.lastError = `stdin: ${e.message}`;
    });
    let errText = '';
    c.stderr?.on('data', (d: Buffer) => {
      if (errText.length < 2000) errText += d.toString('utf8');
    });
    c.on('error', (e) => {
      this.lastError = `spawn: ${e.message}`;
    });
    c.on('exit', (code, signal) => {
      if (this.child !== c) return;
      // A plugin that exited cleanly after EOF at shutdown has read everything it was given; one that exited only
      // when signalled (many audisp plugins exit 0 on SIGTERM) may not have: what it was given is sent again to the
      // next one, after a restart (at least once).
      if (this.closed) {
        if (code === 0 && !this.signalled) this.commitOld(Infinity);
        return;
      }
      if (errText) this.diag.warn({ output: this.name, stderr: errText.slice(0, 2000) }, 'plugin wrote to stderr');
      this.onChildGone(code, signal);
    });
    // A spawn failure (ENOENT) reports 'error' then 'close' without 'exit'.
    c.on('close', (code, signal) => {
      if (this.child === c && c.pid === undefined) this.onChildGone(code, signal);
    });
    this.queue.rewind();
    this.pump();
  }

  private onChildGone(code: number | null, signal: NodeJS.Signals | null): void {
    this.child = null;
    this.written = [];
    this.waitingDrain = false;
    this.queue.rewind();
    if (this.closed) return;
    this.pc.crashes++;
    this.pc.lastExit = signal ? `signal ${signal}` : `code ${code}`;
    if (this.restarts >= this.spec.maxRestarts) {
      this.gaveUp = true;
      this.diag.error(
        {
          output: this.name,
          path: this.spec.path,
          restarts: this.restarts,
          exit: this.pc.lastExit,
          lastError: this.lastError,
        },
        'plugin exceeded max_restarts; not restarting',
      );
      return;
    }
    this.restarts++;
    this.diag.warn(
      { output: this.name, path: this.spec.path, exit: this.pc.lastExit, restart: this.restarts },
      'plugin terminated unexpectedly; restarting',
    );
    this.restartTimer = setTimeout(
      () => {
        this.restartTimer = null;
        this.startChild();
      },
      Math.min(100 * this.restarts, 2000),
    );
  }
}

/**
 * auditd's plugin check (audispd-pconfig.c) and the chain of directories to it: a ConfigError at the plugin's position.
 * Returns the ids of `user:`, resolved once before the output is built: an unknown user is a config error, not a crash
 * loop.
 */
function checkPlugin(spec: PluginOutputSpec): { uid: number; gid: number } | undefined {
  const p = programTrustProblem(spec.path);
  const pos = spec.pos ?? { file: spec.name, line: 1, col: 1 };
  if (p)
    throw new ConfigError(
      pos,
      `plugin ${spec.name} refused: ${p}; it would run as root, so only root may be able to change it (chown root, chmod go-w, no symlink, in root-owned directories)`,
    );
  if (spec.user === undefined) return undefined;
  const ids = userIds(spec.user);
  if (!ids) throw new ConfigError(pos, `plugin ${spec.name}: unknown user "${spec.user}"`);
  return ids;
}
