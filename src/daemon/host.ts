// The host daemon: owns the kernel connection and host-wide settings, loads host rules, writes the host log.
import { hostname, networkInterfaces } from 'node:os';
import { readFileSync } from 'node:fs';
import { AuditmuxError, UsageError } from '../errors';
import { AuditClient } from '../kernel/client';
import { Feature, MsgType } from '../kernel/constants';
import type { AuditSocket } from '../kernel/socket';
import type { AuditStatus } from '../kernel/wire';
import { loadConfig, defaultConfig, type Config } from '../config';
import { loadRulesPath, applyRules, type RuleCommand } from '../rules';
import { Reassembler } from '../records/reassembler';
import { LogFile } from '../output/logfile';
import { ControlServer, type PeerCred } from './control';
import type { Diag } from './diagnostics';

export interface HostDaemonOptions {
  configPath: string | null;
  diag: Diag;
  /** Transport for an emulated kernel (tests); the native addon otherwise. */
  socket?: AuditSocket;
  /** Skip the control socket (library use). */
  noControl?: boolean;
}

interface KernelFound {
  status: AuditStatus;
  loginuidImmutable: boolean;
  rules: Buffer[];
}

export class HostDaemon {
  config: Config;
  private client: AuditClient | null = null;
  private log: LogFile | null = null;
  private control: ControlServer | null = null;
  private found: KernelFound | null = null;
  private loadedRules: Buffer[] = [];
  private reassembler: Reassembler | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  private readonly startedAt = Date.now();
  private lastKernelLost = 0;
  readonly counters = { records: 0, eoe: 0, kernelLost: 0, reloads: 0, reloadFailures: 0, rotations: 0 };

  constructor(private readonly opts: HostDaemonOptions) {
    this.config = opts.configPath ? loadConfig(opts.configPath) : defaultConfig();
  }

  get diag(): Diag {
    return this.opts.diag;
  }

  /** Starts everything in auditd's order: log, kernel registration, settings, rules, enable, control socket. */
  async start(): Promise<void> {
    const cfg = this.config;
    this.log = this.openLog(cfg);
    const clientOpts = this.opts.socket ? { socket: this.opts.socket } : { receiveBuffer: cfg.host.receiveBuffer };
    const client = await AuditClient.open(clientOpts);
    this.client = client;
    try {
      const status = await client.getStatus();
      const feats = await client.getFeatures();
      this.found = {
        status,
        loginuidImmutable: (feats.features & (1 << Feature.LOGINUID_IMMUTABLE)) !== 0,
        rules: await client.listRules(),
      };
      this.lastKernelLost = status.lost;
      this.reassembler = new Reassembler({ timeoutMs: cfg.host.reassembly.timeoutMs, maxInFlight: cfg.host.reassembly.maxInFlight });
      client.onRecords((type, buf, start, end) => this.onRecord(type, buf, start, end), () => this.log?.endBatch());
      client.onReceiveError((e) => this.diag.warn({ err: e.message, code: e.code }, 'netlink receive error'));
      await client.registerDaemon();
      this.log.writeDaemonRecord(MsgType.DAEMON_START, this.daemonStartBody(status));
      await this.applyHostSettings(client, status);
      this.tickTimer = setInterval(() => this.reassembler?.tick(Date.now()), 250);
      this.tickTimer.unref();
      this.statusTimer = setInterval(() => void this.pollLost(), 5000);
      this.statusTimer.unref();
      if (!this.opts.noControl) {
        this.control = new ControlServer(cfg.host.controlSocket, (cmd, args, peer) => this.handleControl(cmd, args, peer));
        await this.control.listen();
      }
      this.diag.info({ pid: process.pid, config: cfg.file, log: cfg.host.log.file }, 'auditmux host daemon started');
    } catch (e) {
      await this.shutdown('start-failed').catch(() => undefined);
      throw e;
    }
  }

  private openLog(cfg: Config): LogFile {
    return new LogFile(cfg.host.log, {
      nodeName: this.nodeName(cfg),
      onWarning: (msg: string) => this.diag.warn(msg),
    });
  }

  private nodeName(cfg: Config): string | null {
    const n = cfg.host.nodeName;
    switch (n.format) {
      case 'none': return null;
      case 'user': return n.name;
      case 'hostname': return hostname().split('.')[0] ?? hostname();
      case 'fqd': return hostname();
      case 'numeric': return firstAddress() ?? hostname();
    }
  }

  private daemonStartBody(status: AuditStatus): string {
    const kernel = safeRead('/proc/sys/kernel/osrelease').trim() || 'unknown';
    return `op=start ver=auditmux-0.1.0 format=${this.config.host.log.format.toLowerCase()} kernel=${kernel} ` +
      `auid=${selfAuid()} pid=${process.pid} uid=${process.getuid?.() ?? 0} ses=${selfSes()} subj=${selfSubj()} res=success` +
      (status.pid !== 0 ? ` old-pid=${status.pid}` : '');
  }

  /** Host-wide settings, then the host rules, then `enabled` (2 = immutable, so strictly last). */
  private async applyHostSettings(client: AuditClient, before: AuditStatus): Promise<void> {
    const k = this.config.host.kernel;
    if (before.enabled === 2) {
      this.diag.warn('kernel audit configuration is immutable (enabled=2): settings and rules left as they are');
      return;
    }
    await client.setStatus({ failure: k.failure, backlogLimit: k.backlogLimit, rateLimit: k.rateLimit });
    if (before.featureBitmap & 0x2) await client.setStatus({ backlogWaitTime: k.backlogWaitTime });
    if (k.resetLostOnStart) {
      await client.resetLost();
      this.lastKernelLost = 0;
    }
    if (k.loginuidImmutable) await client.setFeature(Feature.LOGINUID_IMMUTABLE, true, false);
    if (this.config.host.rules) await this.loadHostRules(client, this.config.host.rules);
    await client.setStatus({ enabled: k.enabled === 2 ? 1 : k.enabled });
    if (k.enabled === 2) await client.setStatus({ enabled: 2 });
  }

  private async loadHostRules(client: AuditClient, path: string): Promise<void> {
    const commands: RuleCommand[] = loadRulesPath(path);
    const before = await client.listRules();
    const summary = await applyRules(client, commands, { hostWide: true });
    const after = await client.listRules();
    this.loadedRules = after.filter((r) => !before.some((b) => b.equals(r)));
    for (const err of summary.errors) this.diag.warn({ rule: err.message }, 'rule not loaded');
    this.diag.info({ path, added: summary.added, deleted: summary.deleted, errors: summary.errors.length }, 'host rules loaded');
  }

  private onRecord(type: number, buf: Buffer, start: number, end: number): void {
    this.counters.records++;
    if (type === MsgType.EOE) this.counters.eoe++;
    this.reassembler!.push(type, buf, start, end);
    // auditd never writes EOE to disk.
    if (type !== MsgType.EOE) this.log!.writeRecord(type, buf, start, end);
  }

  private async pollLost(): Promise<void> {
    if (!this.client || this.stopping) return;
    try {
      const s = await this.client.getStatus();
      if (s.lost > this.lastKernelLost) this.counters.kernelLost += s.lost - this.lastKernelLost;
      this.lastKernelLost = s.lost;
    } catch (e) {
      this.diag.warn({ err: (e as Error).message }, 'status poll failed');
    }
  }

  private async signalSender(): Promise<string> {
    try {
      const si = await this.client!.getSignalInfo();
      return `auid=${si.uid} pid=${si.pid} subj=${si.ctx || '?'}`;
    } catch {
      return 'auid=-1 pid=-1 subj=?';
    }
  }

  /** SIGHUP: re-read the config; a bad new config is reported and the old one kept. */
  async reload(): Promise<{ ok: boolean; error?: string }> {
    const sender = await this.signalSender();
    if (!this.opts.configPath) return { ok: true };
    let next: Config;
    try {
      next = loadConfig(this.opts.configPath);
    } catch (e) {
      this.counters.reloadFailures++;
      const msg = e instanceof AuditmuxError ? e.message : String(e);
      this.diag.error({ err: msg }, 'reload refused: keeping the running configuration');
      this.log?.writeDaemonRecord(MsgType.DAEMON_CONFIG, `op=reconfigure state=no-change ${sender} res=failed`);
      return { ok: false, error: msg };
    }
    const old = this.config;
    this.config = next;
    try {
      if (JSON.stringify(old.host.log) !== JSON.stringify(next.host.log) || JSON.stringify(old.host.nodeName) !== JSON.stringify(next.host.nodeName)) {
        const newLog = this.openLog(next);
        const oldLog = this.log!;
        this.log = newLog;
        await oldLog.close();
      }
      const client = this.client!;
      const st = await client.getStatus();
      if (st.enabled !== 2) {
        // Host rules are replaced wholesale: ours are deleted, the new set loaded, as augenrules --load does.
        for (const r of this.loadedRules) await client.deleteRule(r).catch(() => undefined);
        this.loadedRules = [];
        await this.applyHostSettings(client, st);
      }
      this.counters.reloads++;
      this.log!.writeDaemonRecord(MsgType.DAEMON_CONFIG, `op=reconfigure state=changed ${sender} res=success`);
      this.diag.info('configuration reloaded');
      return { ok: true };
    } catch (e) {
      this.counters.reloadFailures++;
      const msg = e instanceof AuditmuxError ? e.message : String(e);
      this.diag.error({ err: msg }, 'reload failed while applying');
      this.log?.writeDaemonRecord(MsgType.DAEMON_CONFIG, `op=reconfigure state=changed ${sender} res=failed`);
      return { ok: false, error: msg };
    }
  }

  /** SIGUSR1: rotate the log now. */
  async rotate(): Promise<void> {
    const sender = await this.signalSender();
    this.log!.writeDaemonRecord(MsgType.DAEMON_ROTATE, `op=rotate-logs ${sender} res=success`);
    this.log!.rotate();
    this.counters.rotations++;
  }

  /** SIGUSR2 / `auditmux resume`: resume logging after a suspend. */
  async resume(): Promise<void> {
    const sender = await this.signalSender();
    this.log!.resume();
    this.log!.writeDaemonRecord(MsgType.DAEMON_RESUME, `op=resume ${sender} res=success`);
  }

  status(): Record<string, unknown> {
    return {
      daemon: {
        pid: process.pid,
        uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
        config: this.config.file,
        ...this.counters,
      },
      client: { ...this.client?.counters },
      reassembly: this.reassembler ? { ...this.reassembler.counters } : {},
      log: this.log ? this.log.stats() : {},
    };
  }

  private async handleControl(cmd: string, args: Record<string, unknown>, peer: PeerCred): Promise<unknown> {
    this.diag.debug({ cmd, peer }, 'control request');
    switch (cmd) {
      case 'status': {
        const s = await this.client!.getStatus();
        return { kernel: s, ...this.status() };
      }
      case 'rotate':
        await this.rotate();
        return { rotated: true };
      case 'resume':
        await this.resume();
        return { resumed: true };
      case 'reload':
        return this.reload();
      default:
        throw new UsageError(`unknown control command "${cmd}" (args: ${Object.keys(args).join(',') || 'none'})`);
    }
  }

  /** SIGTERM: every accepted record on disk, the kernel handed back as found. Idempotent. */
  stop(reason = 'terminate'): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  private async shutdown(reason: string): Promise<void> {
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.statusTimer) clearInterval(this.statusTimer);
    await this.control?.close().catch(() => undefined);
    const client = this.client;
    let sender = 'auid=-1 pid=-1 subj=?';
    if (client) {
      if (reason === 'terminate') sender = await this.signalSender();
      try {
        await this.restoreKernel(client);
      } catch (e) {
        this.diag.error({ err: (e as Error).message }, 'could not restore the kernel state');
      }
      // Records the kernel queued before it saw pid 0 are still in the socket: give the loop a turn to drain them.
      await new Promise((r) => setTimeout(r, 50));
      client.close();
    }
    this.reassembler?.flushAll();
    if (this.log) {
      this.log.writeDaemonRecord(MsgType.DAEMON_END, `op=${reason} ${sender} res=success`);
      await this.log.close();
    }
    this.diag.info({ reason }, 'auditmux host daemon stopped');
  }

  private async restoreKernel(client: AuditClient): Promise<void> {
    const found = this.found;
    if (!found) return;
    const st = await client.getStatus();
    if (st.enabled !== 2) {
      for (const r of this.loadedRules) await client.deleteRule(r).catch(() => undefined);
      await client.setStatus({
        enabled: found.status.enabled,
        failure: found.status.failure,
        backlogLimit: found.status.backlogLimit,
        rateLimit: found.status.rateLimit,
      });
      if (found.status.featureBitmap & 0x2) await client.setStatus({ backlogWaitTime: found.status.backlogWaitTime });
    }
    if (client.isRegistered) await client.unregisterDaemon();
  }
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

function selfAuid(): string {
  const v = safeRead('/proc/self/loginuid').trim();
  return v === '' ? '4294967295' : v;
}
function selfSes(): string {
  const v = safeRead('/proc/self/sessionid').trim();
  return v === '' ? '4294967295' : v;
}
function selfSubj(): string {
  return safeRead('/proc/self/attr/current').replace(/\0/g, '').trim() || 'unconfined';
}

function firstAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  return undefined;
}

