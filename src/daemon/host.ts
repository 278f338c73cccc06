// The host daemon: a coordinator over the kernel session, the record path, the daemon registry and the control
// commands; it owns the order of start, reload and stop, and nothing else.
import { dirname } from 'node:path';
import { AuditmuxError } from '../errors';
import { MsgType } from '../kernel/constants';
import type { AuditSocket } from '../kernel/socket';
import { loadConfig, defaultConfig, type Config } from '../config';
import { loadRulesPath } from '../rules';
import { daemonConfigBody, daemonEndBody, daemonResumeBody, daemonStartBody } from '../output/logfile';
import { resolveNodeName, selfRequester } from '../output/logfile';
import type { PeerCred } from './control';
import { ContidCommands, type ContidSourceFactory } from './contid-commands';
import { routeTest, type RouteTestArgs } from '../routing/route-test';
import { ControlCommands, type AuxAddArgs, type ControlTarget } from './control-commands';
import { KernelSession, UNKNOWN_REQUESTER, type ExtraRules } from './kernel-session';
import { RecordPath } from './record-path';
import { DaemonRegistry } from './daemon-registry';
import { RemoteIntake } from './remote-intake';
import { auxAddBody, planAuxAdd } from './aux-add';
import { memoryMiB, newHostCounters, type Diag } from './diagnostics';
import { HostMetrics } from '../metrics/host';
import { VERSION } from '../shared';

export interface HostDaemonOptions {
  configPath: string | null;
  diag: Diag;
  /** Transport to the kernel: an emulated one in tests (not this machine's pids), or the socket registered early. */
  socket?: AuditSocket;
  contidSource?: ContidSourceFactory;
  /** Skip the control socket (library use). */
  noControl?: boolean;
}

export class HostDaemon implements ControlTarget {
  config: Config;
  readonly counters = newHostCounters();
  private readonly diag: Diag;
  private readonly session: KernelSession;
  readonly daemons: DaemonRegistry;
  private readonly path: RecordPath;
  private readonly remote: RemoteIntake;
  private readonly control: ControlCommands;
  readonly contid: ContidCommands;
  readonly metrics = new HostMetrics({ status: () => this.statusWithKernel(), diag: () => this.diag });
  private nodeName: string | undefined;
  private timers: NodeJS.Timeout[] = [];
  private stopping: Promise<void> | null = null;
  private readonly startedAt = Date.now();

  constructor(private readonly opts: HostDaemonOptions) {
    this.config = opts.configPath ? loadConfig(opts.configPath) : defaultConfig();
    const diag = (this.diag = opts.diag);
    this.contid = new ContidCommands({
      diag,
      cgroupMap: this.config.contid.cgroupMap,
      // A socket handed in already registered (src/kernel/registration.ts) is the real kernel: discovery stays on.
      discover: !opts.socket || opts.socket.registration !== undefined,
      record: (t, b) => this.path.daemonRecord(t, b),
      setTracking: (on) => this.session.setTracking(on),
      tracking: () => this.session.tracking,
      changed: () => this.updateMode(),
      controlSocket: opts.noControl ? null : this.config.host.controlSocket,
    });
    this.session = new KernelSession({
      diag,
      ...(opts.socket ? { socket: opts.socket } : {}),
      owners: () => ({ daemons: this.daemons.configs(), routes: this.daemons.allRoutes() }),
      counters: this.counters,
      stateDir: opts.noControl ? null : dirname(this.config.host.controlSocket),
    });
    this.daemons = new DaemonRegistry({
      diag,
      record: (t, b) => this.path.daemonRecord(t, b),
      setPaused: (p) => this.session.setPaused(p),
      changed: (extra) => this.daemonsChanged(extra),
      context: () => ({ nodeName: this.nodeName ?? null, contidKernel: this.session.contidKernel }),
      containers: this.contid.containers.registry,
      counters: this.counters,
    });
    this.daemons.setConfigured(this.config.daemons, this.config.routes, this.config);
    this.path = new RecordPath(
      {
        diag,
        tracker: this.contid.tracker,
        registry: this.daemons,
        keysFor: (owner, full) => this.session.keysFor(owner, full),
        keyGroup: (tag) => this.session.keyGroup(tag),
        noteEvent: (chain, routed, dropped) => this.contid.noteEvent(chain, routed, dropped),
        containers: this.contid.containers.registry,
        counters: this.counters,
      },
      this.config,
    );
    this.remote = new RemoteIntake(diag, this.path);
    this.control = new ControlCommands(this, {
      diag,
      record: (t, b) => this.path.daemonRecord(t, b),
      isDaemonProcess: (pid) => this.daemons.isDaemonProcess(pid),
      counters: this.counters,
    });
  }

  /** Starts in auditd's order: log, registration, settings, rules, enable; then auxiliary daemons and control. */
  async start(): Promise<void> {
    const cfg = this.config;
    const s = this.session;
    try {
      const status = await s.open(
        cfg.host.receiveBuffer,
        (type, buf, start, end) => this.path.onRecord(type, buf, start, end),
        () => this.path.endBatch(),
      );
      s.contidKernel = this.contid.begin(status, this.opts.contidSource).kind === 'kernel';
      this.nodeName = await resolveNodeName(cfg.host.nodeName.format, cfg.host.nodeName.name ?? undefined);
      await s.register(status);
      const start = daemonStartBody({ ...selfRequester(), ver: VERSION, format: cfg.host.log.format });
      this.path.openSink(cfg, this.nodeName, s.contidKernel, start);
      if (cfg.host.listen) await this.remote.start(cfg.host.listen, this.nodeName, s.contidKernel);
      await s.applyHostSettings(cfg.host, status);
      this.path.reroute(cfg, s.contidKernel);
      this.contid.discoverRunning();
      this.updateMode();
      await this.daemons.sync();
      this.timers = [setInterval(() => this.tick(), 250), setInterval(() => void this.housekeeping(), 2000)];
      for (const t of this.timers) t.unref();
      if (!this.opts.noControl) await this.control.listen(cfg.host.controlSocket);
      await this.metrics.apply(cfg.host.metrics);
      this.path.log!.flush();
      const info = { config: cfg.file, log: cfg.host.log.file, contidKernel: s.contidKernel };
      this.diag.info(info, 'auditmux host daemon started');
    } catch (e) {
      if (s.isOpen) await this.shutdown('start-failed').catch(() => undefined);
      throw e;
    }
  }

  private updateMode(): void {
    this.path.eventMode = this.session.contidKernel || this.daemons.active || !this.contid.tracker.idle;
  }

  /** The registry's daemons changed: the kernel's rules first (they may refuse), then the route table. */
  private async daemonsChanged(extra?: ExtraRules): Promise<void> {
    await this.session.syncRules(extra);
    this.path.reroute(this.config, this.session.contidKernel);
    this.updateMode();
  }

  private tick(): void {
    this.path.tick();
    this.daemons.tick();
    this.path.log?.flush();
  }

  private async housekeeping(): Promise<void> {
    if (!this.session.isOpen || this.stopping) return;
    try {
      await this.session.poll();
      await this.contid.housekeep();
    } catch (e) {
      this.diag.warn({ err: (e as Error).message }, 'housekeeping failed');
    }
  }

  /** `auditmux aux add`: a new daemon with its rules and routes; a bad rules file changes nothing. */
  async auxAdd(args: AuxAddArgs, peer?: PeerCred): Promise<unknown> {
    const refuse = (reason: string, fields: string): never => this.control.refuse(reason, peer, fields);
    const plan = planAuxAdd(args, { hostLogFile: this.config.host.log.file, registry: this.daemons, refuse });
    const a = await this.daemons.addRuntimeDaemon(plan.daemon, plan.routes, plan.commands);
    this.path.daemonRecord(MsgType.DAEMON_CONFIG, auxAddBody(plan, args.contid));
    return a.status();
  }

  async auxRemove(name: string): Promise<unknown> {
    const a = await this.daemons.removeDaemon(name);
    this.path.daemonRecord(MsgType.DAEMON_CONFIG, `op=aux-remove daemon=${name} res=success`);
    return a?.status() ?? { name };
  }

  routeTest(args: RouteTestArgs): unknown {
    return routeTest(this.daemons.allRoutes(), this.contid.containers.registry, this.config.host.keep === 'all', args);
  }

  /** SIGHUP: re-read the config; a bad one is reported and the old one kept. Run-time daemons survive. See stop(). */
  async reload(): Promise<{ ok: boolean; error?: string }> {
    const by = await this.session.requester();
    if (this.stopping) return { ok: false, error: 'the daemon is stopping' };
    if (!this.opts.configPath) return { ok: true };
    let next: Config;
    const failed = (e: unknown, what: string): { ok: boolean; error: string } => {
      this.counters.reloadFailures++;
      const msg = e instanceof AuditmuxError ? e.message : String(e);
      this.diag.error({ err: msg }, what);
      this.path.daemonRecord(MsgType.DAEMON_CONFIG, daemonConfigBody(by, false));
      return { ok: false, error: msg };
    };
    try {
      next = loadConfig(this.opts.configPath);
      this.daemons.checkNext(next);
      if (next.host.rules) loadRulesPath(next.host.rules);
      this.daemons.checkPlacement(next);
    } catch (e) {
      return failed(e, 'reload refused: keeping the running configuration');
    }
    const old = this.config;
    this.config = next;
    this.daemons.setConfigured(next.daemons, next.routes, next);
    try {
      const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
      if (!same(old.host.log, next.host.log) || !same(old.host.nodeName, next.host.nodeName)) {
        this.nodeName = await resolveNodeName(next.host.nodeName.format, next.host.nodeName.name ?? undefined);
        if (!this.stopping) this.path.replaceLog(next.host.log, this.nodeName, this.session.contidKernel);
      }
      this.contid.tracker.setCgroupMap(next.contid.cgroupMap);
      const st = await this.session.getStatus();
      if (st.enabled !== 2 && !this.stopping) await this.session.applyHostSettings(next.host, st);
      this.path.reroute(next, this.session.contidKernel);
      this.updateMode();
      if (!this.stopping) await this.daemons.sync();
      if (!this.stopping) await this.metrics.apply(next.host.metrics);
      this.counters.reloads++;
      this.path.daemonRecord(MsgType.DAEMON_CONFIG, daemonConfigBody(by, true));
      this.diag.info('configuration reloaded');
      return { ok: true };
    } catch (e) {
      return failed(e, 'reload failed while applying');
    }
  }

  /** SIGUSR1: rotate the logs now (host and auxiliary daemons). See stop(). */
  async rotate(): Promise<void> {
    const by = await this.session.requester();
    if (this.stopping) return;
    this.path.rotate(by);
    this.remote.rotate(by);
    this.daemons.rotate();
    this.counters.rotations++;
  }

  /** SIGUSR2 / `auditmux resume`: resume logging after a suspend. See stop(). */
  async resume(): Promise<void> {
    const by = await this.session.requester();
    if (this.stopping) return;
    this.path.resume();
    this.remote.resume();
    this.daemons.resume();
    this.path.daemonRecord(MsgType.DAEMON_RESUME, daemonResumeBody(by));
  }

  status(): Record<string, unknown> {
    return {
      daemon: {
        pid: process.pid,
        version: VERSION,
        uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
        config: this.config.file,
        contidSource: this.contid.source?.kind ?? 'none',
        mode: this.path.eventMode ? 'events' : 'stream',
        // Daemons whose full `block` queue has paused the host's kernel intake.
        intakePausedBy: this.daemons.pausedBy(),
        ...this.counters,
      },
      memory: memoryMiB(),
      client: this.session.counters(),
      ...this.path.status(),
      ...this.contid.status(),
      ...this.path.sinkStatus(),
      ...this.remote.stats(),
      ...this.control.stats(),
      ...this.daemons.statusSections(),
    };
  }

  async statusWithKernel(): Promise<unknown> {
    return { kernel: await this.session.getStatus(), ...this.status() };
  }

  /** SIGTERM: every accepted record on disk, the kernel handed back as found. Idempotent; reloads etc. no-op after. */
  readonly stop = (reason = 'terminate'): Promise<void> => (this.stopping ??= this.shutdown(reason));

  private async shutdown(reason: string): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.control.close();
    await this.metrics.stop();
    this.contid.saveState();
    let by = UNKNOWN_REQUESTER;
    if (this.session.isOpen) {
      if (reason === 'terminate') by = await this.session.requester();
      await this.session.close(() => this.counters.records);
    }
    this.path.drain();
    await this.remote.close();
    await this.daemons.stopAll();
    await this.path.close({
      type: MsgType.DAEMON_END,
      body: daemonEndBody(by).replace('op=terminate', `op=${reason}`),
    });
    this.diag.info({ reason }, 'auditmux host daemon stopped');
  }
}
