// The host daemon: a coordinator over the kernel session, the record path, the daemon registry and the control
// commands; it owns the order of start, reload and stop, and nothing else.
import { AuditmuxError, PermissionError, UsageError } from '../errors';
import { MsgType } from '../kernel/constants';
import type { AuditSocket } from '../kernel/socket';
import type { AuditStatus } from '../kernel/wire';
import { loadConfig, defaultConfig, type Config } from '../config';
import { auxLogProblem } from '../config/aux-paths';
import { loadRulesPath } from '../rules';
import { recordTypeNumber } from '../vocab/msgtypes';
import { VERSION } from '../shared';
import { encodeUntrusted } from '../records/encode';
import { daemonConfigBody, daemonEndBody, daemonStartBody, resolveNodeName, selfRequester } from '../output/logfile';
import { formatChain, parseChainsAt } from '../contid/chain';
import { ContidTracker } from '../contid/tracker';
import type { ContidSource } from '../contid/source';
import { ProcContidSource, kernelHasContid } from '../contid/source-kernel';
import { TrackerContidSource } from '../contid/source-tracker';
import { Router } from '../routing/router';
import { Containers } from '../containers/service';
import { auxRules } from './rule-union';
import { ControlServer, type PeerCred } from './control';
import { runCommand, type AuxAddArgs, type ControlTarget } from './control-commands';
import { KernelSession, UNKNOWN_REQUESTER, type ExtraRules } from './kernel-session';
import { RecordPath } from './record-path';
import { DaemonRegistry } from './daemon-registry';
import { RemoteIntake } from './remote-intake';
import { planAuxAdd } from './aux-add';
import type { Diag } from './diagnostics';

export { VERSION } from '../shared';

/** Where container IDs come from, chosen once the kernel's status is known: a `kernel` source means the patch set. */
export type ContidSourceFactory = (status: AuditStatus, tracker: ContidTracker) => ContidSource;

export const defaultContidSource: ContidSourceFactory = (status, tracker) =>
  kernelHasContid(status.featureBitmap) ? new ProcContidSource() : new TrackerContidSource(tracker);

export interface HostDaemonOptions {
  configPath: string | null;
  diag: Diag;
  /** Transport to the kernel (an emulated one in tests); the native addon otherwise. Not this machine's pids then. */
  socket?: AuditSocket;
  contidSource?: ContidSourceFactory;
  /** Skip the control socket (library use). */
  noControl?: boolean;
}

export class HostDaemon implements ControlTarget {
  config: Config;
  readonly counters = {
    records: 0,
    kernelLost: 0,
    reloads: 0,
    reloadFailures: 0,
    rotations: 0,
    refused: 0,
    dropsReported: 0,
    internalErrors: 0,
  };
  private readonly tracker: ContidTracker;
  /** Container registry and cgroup discovery; off with an injected transport, whose pids are not this machine's. */
  readonly containers: Containers;
  private readonly discover: boolean;
  private readonly session: KernelSession;
  readonly daemons: DaemonRegistry;
  private readonly path: RecordPath;
  private readonly remote: RemoteIntake;
  private control: ControlServer | null = null;
  private contidSource: ContidSource | null = null;
  private nodeName: string | undefined;
  private timers: NodeJS.Timeout[] = [];
  private stopping: Promise<void> | null = null;
  private readonly startedAt = Date.now();

  constructor(private readonly opts: HostDaemonOptions) {
    this.config = opts.configPath ? loadConfig(opts.configPath) : defaultConfig();
    const diag = opts.diag;
    this.tracker = new ContidTracker({ cgroupMap: this.config.contid.cgroupMap });
    this.containers = new Containers({ tracker: this.tracker, record: (b) => this.record(MsgType.CONTAINER_OP, b) });
    this.discover = !opts.socket;
    if (this.discover) this.tracker.setContainers(this.containers.discovery);
    this.session = new KernelSession({
      diag,
      ...(opts.socket ? { socket: opts.socket } : {}),
      owners: () => ({ daemons: this.daemons.configs(), routes: this.daemons.allRoutes() }),
      counters: this.counters,
    });
    this.daemons = new DaemonRegistry({
      diag,
      record: (t, b) => this.record(t, b),
      setPaused: (p) => this.session.setPaused(p),
      changed: (extra) => this.daemonsChanged(extra),
      context: () => ({ nodeName: this.nodeName ?? null, contidKernel: this.session.contidKernel }),
      counters: this.counters,
    });
    this.daemons.setConfigured(this.config.daemons, this.config.routes);
    this.path = new RecordPath(
      {
        diag,
        tracker: this.tracker,
        registry: this.daemons,
        keysFor: (owner, full) => this.session.keysFor(owner, full),
        noteEvent: (chain, routed, dropped) => {
          if (this.containers.registry.liveCount) this.containers.registry.noteEvent(chain[0]!, routed, dropped);
        },
        counters: this.counters,
      },
      this.config,
    );
    this.remote = new RemoteIntake(diag, this.path);
  }

  get diag(): Diag {
    return this.opts.diag;
  }

  /**
   * Starts in auditd's order: log, registration, settings, rules, enable; then auxiliary daemons and the control
   * socket.
   */
  async start(): Promise<void> {
    const cfg = this.config;
    const s = this.session;
    try {
      const status = await s.open(
        cfg.host.receiveBuffer,
        (type, buf, start, end) => this.path.onRecord(type, buf, start, end),
        () => this.path.endBatch(),
      );
      this.contidSource = (this.opts.contidSource ?? defaultContidSource)(status, this.tracker);
      s.contidKernel = this.contidSource.kind === 'kernel';
      this.nodeName = await resolveNodeName(cfg.host.nodeName.format, cfg.host.nodeName.name ?? undefined);
      await s.register(status);
      this.path.openLog(cfg.host.log, this.nodeName, s.contidKernel);
      const start = daemonStartBody({ ...selfRequester(), ver: VERSION, format: cfg.host.log.format });
      this.path.log!.writeDaemonRecord(MsgType.DAEMON_START, start);
      this.path.openOutputs(cfg, this.nodeName, s.contidKernel);
      if (cfg.host.listen) await this.remote.start(cfg.host.listen, this.nodeName, s.contidKernel);
      await s.applyHostSettings(cfg.host, status);
      this.path.reroute(cfg, s.contidKernel);
      // Containers already running (started before auditmux, or while it was down) are found here, before routing.
      if (this.discover) this.containers.discovery.scan();
      this.updateMode();
      await this.daemons.sync();
      this.timers = [setInterval(() => this.tick(), 250), setInterval(() => void this.housekeeping(), 2000)];
      for (const t of this.timers) t.unref();
      if (!this.opts.noControl) {
        this.control = new ControlServer(cfg.host.controlSocket, (cmd, args, peer) => this.onControl(cmd, args, peer));
        await this.control.listen();
      }
      this.path.log!.flush();
      const info = { config: cfg.file, log: cfg.host.log.file, contidKernel: s.contidKernel };
      this.diag.info(info, 'auditmux host daemon started');
    } catch (e) {
      if (s.isOpen) await this.shutdown('start-failed').catch(() => undefined);
      throw e;
    }
  }

  private updateMode(): void {
    this.path.eventMode =
      this.session.contidKernel ||
      this.daemons.configs().length > 0 ||
      this.daemons.allRoutes().length > 0 ||
      !this.tracker.idle;
  }

  /** The registry's daemons changed: the kernel's rules first (they may refuse), then the route table. */
  private async daemonsChanged(extra?: ExtraRules): Promise<void> {
    await this.session.syncRules(extra);
    this.path.reroute(this.config, this.session.contidKernel);
    this.updateMode();
  }

  private tick(): void {
    this.path.tick(Date.now());
    this.daemons.tick();
    this.path.log?.flush();
  }

  private async housekeeping(): Promise<void> {
    if (!this.session.isOpen || this.stopping) return;
    try {
      await this.session.poll();
      if (this.discover) {
        const { born, retired } = this.containers.discovery.scan();
        if (born.length || retired.length) this.updateMode();
      }
      if (!this.session.contidKernel && this.session.tracking) {
        this.tracker.sweep();
        if (this.tracker.size === 0) await this.setTracking(false);
      }
    } catch (e) {
      this.diag.warn({ err: (e as Error).message }, 'housekeeping failed');
    }
  }

  private record(type: number, body: string): void {
    this.path.daemonRecord(type, body);
  }

  private async setTracking(on: boolean): Promise<void> {
    if (await this.session.setTracking(on)) this.updateMode();
  }

  private startTracking(): void {
    void this.setTracking(true).catch((e: Error) =>
      this.diag.error({ err: e.message }, 'could not load the contid tracking rules'),
    );
  }

  /** `fields`: more ` name=value` text, already encoded. The reason carries tenants' text (rule lines, file names). */
  refuse(reason: string, peer?: PeerCred, fields = ''): never {
    this.counters.refused++;
    // Cut so that hex (twice the bytes) and the fields after it stay within auditd's line limit.
    const who = peer ? ` pid=${peer.pid} uid=${peer.uid}` : '';
    this.record(
      MsgType.DAEMON_ERR,
      `op=refused reason=${encodeUntrusted(reason.slice(0, 2048))}${fields}${who} res=failed`,
    );
    throw new PermissionError(reason, 'E_HOST_WIDE');
  }

  /** `auditmux aux add`: a new daemon with its rules and routes; a bad rules file changes nothing. */
  async auxAdd(args: AuxAddArgs, peer?: PeerCred): Promise<unknown> {
    const refuse = (reason: string, fields: string): never => this.refuse(reason, peer, fields);
    const plan = planAuxAdd(args, { hostLogFile: this.config.host.log.file, registry: this.daemons, refuse });
    const a = await this.daemons.addRuntimeDaemon(plan.daemon, plan.routes, plan.commands);
    const rules = plan.daemon.rules === null ? '(none)' : encodeUntrusted(plan.daemon.rules);
    const contid = encodeUntrusted(args.contid.join(','));
    const log = encodeUntrusted(plan.daemon.log.file);
    this.record(
      MsgType.DAEMON_CONFIG,
      `op=aux-add daemon=${a.name} contid=${contid} rules=${rules} log=${log} res=success`,
    );
    return a.status();
  }

  async auxRemove(name: string): Promise<unknown> {
    if (!this.daemons.isRuntime(name)) {
      if (this.daemons.has(name))
        throw new UsageError(`daemon "${name}" comes from the configuration file: remove it there and reload`);
      throw new UsageError(`no auxiliary daemon "${name}"`);
    }
    const a = await this.daemons.removeDaemon(name);
    this.record(MsgType.DAEMON_CONFIG, `op=aux-remove daemon=${name} res=success`);
    return a?.status() ?? { name };
  }

  auxList(): unknown {
    return this.daemons.list();
  }

  contidSet(pid: number, idText: string, nested: boolean, peer: PeerCred): unknown {
    const id = parseContidValueStrict(idText);
    const src = this.contidSource!;
    let res: { old: readonly bigint[] | null; chain: readonly bigint[] };
    // A process that joined a known container (runc exec, podman exec) may carry that container's contid too.
    const join = this.discover && this.containers.discovery.sameContainer(pid, id);
    const op = (old: readonly bigint[] | null, ok: 0 | 1): void =>
      this.record(
        MsgType.CONTAINER_OP,
        `op=set opid=${pid} contid=${id} old-contid=${formatChain(old ?? [0xffffffffffffffffn])} pid=${peer.pid} uid=${peer.uid} res=${ok}`,
      );
    try {
      res = src.set(pid, id, { setterPid: peer.pid, nested, join });
    } catch (e) {
      op(src.get(pid), 0);
      throw e;
    }
    if (src.kind === 'tracker') {
      op(res.old, 1);
      this.startTracking();
      this.updateMode();
    }
    return { pid, contid: formatChain(res.chain), old: res.old ? formatChain(res.old) : null, source: src.kind };
  }

  contidGet(pid: number | undefined): unknown {
    if (pid === undefined) return this.tracker.entries();
    const c = this.contidSource!.get(pid);
    return { pid, contid: c ? formatChain(c) : 'unset', source: this.contidSource!.kind };
  }

  containerHook(state: unknown, bundleAnnotations: unknown): unknown {
    const r = this.containers.fromHook({ state, bundleAnnotations });
    // An init whose cgroup no pattern knows is followed through its forks (the kernel's fork/exit tracking rule).
    if (r.cgroupKnown === false && !this.session.contidKernel) this.startTracking();
    this.updateMode();
    return r;
  }

  containerList(): unknown {
    return this.containers.list();
  }

  routeTest(args: { contid?: string; types?: string[]; keys?: string[] }): unknown {
    const parsed = args.contid && args.contid !== 'unset' ? parseChainsAt(args.contid) : { chains: [] };
    if (!('chains' in parsed))
      throw new UsageError(
        `--contid ${args.contid}: column ${parsed.offset + 1}: ${parsed.reason} (e.g. 100 or 4,^2,^1 or 2,^1,3,^1)`,
      );
    const types: number[] = [];
    for (const t of args.types ?? []) {
      const n = recordTypeNumber(t);
      if (n === undefined) throw new UsageError(`unknown record type ${t}`);
      types.push(n);
    }
    const route = new Router(this.daemons.allRoutes()).route({
      chains: parsed.chains,
      types: types.length ? types : [MsgType.SYSCALL],
      keys: args.keys ?? [],
    });
    const keep = this.config.host.keep === 'all' || route.daemons.length === 0;
    return { daemons: route.daemons, routes: route.matched, host: keep };
  }

  private requester(): ReturnType<KernelSession['requester']> {
    return this.session.requester(this.session.contidKernel);
  }

  /** SIGHUP: re-read the config; a bad new config is reported and the old one kept. Run-time daemons survive. */
  async reload(): Promise<{ ok: boolean; error?: string }> {
    const by = await this.requester();
    if (!this.opts.configPath) return { ok: true };
    let next: Config;
    const failed = (e: unknown, what: string): { ok: boolean; error: string } => {
      this.counters.reloadFailures++;
      const msg = e instanceof AuditmuxError ? e.message : String(e);
      this.diag.error({ err: msg }, what);
      this.record(MsgType.DAEMON_CONFIG, daemonConfigBody(by, false));
      return { ok: false, error: msg };
    };
    try {
      next = loadConfig(this.opts.configPath);
      for (const d of next.daemons) {
        if (this.daemons.isRuntime(d.name))
          throw new UsageError(`${d.pos.file}:${d.pos.line}: daemon "${d.name}" clashes with one added at run time`);
        if (d.rules) auxRules(d.name, loadRulesPath(d.rules));
      }
      if (next.host.rules) loadRulesPath(next.host.rules);
      // Daemons added at run time are placed against the new file's host log and daemons by the same rule.
      const placed = next.daemons.map((d) => ({ name: d.name, user: d.user, file: d.log.file }));
      for (const d of this.daemons.runtimeConfigs()) {
        const p = auxLogProblem({ name: d.name, user: d.user, file: d.log.file }, next.host.log.file, placed);
        if (p) throw new UsageError(`${p} (daemon "${d.name}" was added at run time)`);
      }
    } catch (e) {
      return failed(e, 'reload refused: keeping the running configuration');
    }
    const old = this.config;
    this.config = next;
    this.daemons.setConfigured(next.daemons, next.routes);
    try {
      const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
      if (!same(old.host.log, next.host.log) || !same(old.host.nodeName, next.host.nodeName)) {
        this.nodeName = await resolveNodeName(next.host.nodeName.format, next.host.nodeName.name ?? undefined);
        this.path.openLog(next.host.log, this.nodeName, this.session.contidKernel);
      }
      this.tracker.setCgroupMap(next.contid.cgroupMap);
      const st = await this.session.getStatus();
      if (st.enabled !== 2) await this.session.applyHostSettings(next.host, st);
      this.path.reroute(next, this.session.contidKernel);
      this.updateMode();
      await this.daemons.sync();
      this.counters.reloads++;
      this.record(MsgType.DAEMON_CONFIG, daemonConfigBody(by, true));
      this.diag.info('configuration reloaded');
      return { ok: true };
    } catch (e) {
      return failed(e, 'reload failed while applying');
    }
  }

  /** SIGUSR1: rotate the logs now (host and auxiliary daemons). */
  async rotate(): Promise<void> {
    const by = await this.requester();
    this.path.log!.rotateNow(by);
    this.remote.rotate(by);
    this.daemons.rotate();
    this.counters.rotations++;
  }

  /** SIGUSR2 / `auditmux resume`: resume logging after a suspend. */
  async resume(): Promise<void> {
    const by = await this.requester();
    this.path.resume();
    this.remote.resume();
    this.daemons.resume();
    const body = `op=resume auid=${by.auid} uid=${by.uid} ses=${by.ses} pid=${by.pid} res=success`;
    this.record(MsgType.DAEMON_RESUME, body);
  }

  status(): Record<string, unknown> {
    const reg = this.containers.registry;
    return {
      daemon: {
        pid: process.pid,
        version: VERSION,
        uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
        config: this.config.file,
        contidSource: this.contidSource?.kind ?? 'none',
        mode: this.path.eventMode ? 'events' : 'stream',
        // Daemons whose full `block` queue has paused the host's kernel intake.
        intakePausedBy: this.daemons.pausedBy(),
        ...this.counters,
      },
      memory: Object.fromEntries(
        Object.entries(process.memoryUsage()).map(([k, v]) => [`${k}MiB`, Math.round(v / 10485.76) / 100]),
      ),
      client: this.session.counters(),
      ...this.path.status(),
      tracker: { ...this.tracker.counters, tracked: this.tracker.size },
      containers: {
        live: reg.liveCount,
        ...reg.counters,
        ...this.containers.discovery.counters,
        ...this.containers.counters,
      },
      ...this.path.sinkStatus(),
      ...this.remote.stats(),
      ...(this.control ? { control: this.control.stats() } : {}),
      aux: this.daemons.status(),
    };
  }

  async statusWithKernel(): Promise<unknown> {
    return { kernel: await this.session.getStatus(), ...this.status() };
  }

  private onControl(cmd: string, args: Record<string, unknown>, peer: PeerCred): Promise<unknown> {
    this.diag.debug?.({ cmd, peer }, 'control request');
    // An auxiliary daemon's own process gets nothing here, whatever user it runs as.
    if (this.daemons.isDaemonProcess(peer.pid))
      this.refuse(`control request ${cmd} from an auxiliary daemon's process`, peer);
    return runCommand(this, cmd, args, peer);
  }

  /** SIGTERM: every accepted record on disk, the kernel handed back as found. Idempotent. */
  stop(reason = 'terminate'): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  private async shutdown(reason: string): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.control?.close().catch(() => undefined);
    let by = UNKNOWN_REQUESTER;
    if (this.session.isOpen) {
      if (reason === 'terminate') by = await this.requester();
      await this.session.close(() => this.counters.records);
    }
    this.path.drain();
    await this.remote.close();
    await this.daemons.stopAll();
    await this.path.closeOutputs().catch((e: Error) => this.diag.error({ err: e.message }, 'closing outputs failed'));
    const log = this.path.log;
    if (log) {
      log.writeDaemonRecord(MsgType.DAEMON_END, daemonEndBody(by).replace('op=terminate', `op=${reason}`));
      log.close();
    }
    this.diag.info({ reason }, 'auditmux host daemon stopped');
  }
}

function parseContidValueStrict(text: string): bigint {
  const t = text.trim();
  if (!/^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/.test(t))
    throw new UsageError(`"${text}" is not a contid (decimal or 0x hex u64)`);
  const v = BigInt(t);
  if (v > 0xffffffffffffffffn) throw new UsageError(`contid ${text} is above 2^64-1`);
  return v;
}
