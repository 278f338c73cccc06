// The host daemon: owns the kernel connection and host-wide settings, the rule union, routing and the host log.
import { dirname, resolve } from 'node:path';
import { mkdirSync } from 'node:fs';
import { AuditmuxError, PermissionError, RuleError, UsageError } from '../errors';
import { AuditClient } from '../kernel/client';
import { AUDIT_FILTER_PREPEND, Feature, Field, MsgType, Op } from '../kernel/constants';
import type { AuditSocket } from '../kernel/socket';
import type { EmulatedKernel } from '../kernel/emulated-kernel';
import type { AuditStatus } from '../kernel/wire';
import {
  loadConfig,
  defaultConfig,
  parseContidSelector,
  type Config,
  type DaemonConfig,
  type RouteConfig,
  type OutputConfig,
  DEFAULT_QUEUE,
  DEFAULT_MAX_RESTARTS,
  defaultIsolation,
} from '../config';
import { applyRules, encodeRule, loadRulesPath, parseRules, type Rule, type RuleCommand } from '../rules';
import { encodeDetail, encodeUntrusted } from '../records/encode';
import { Reassembler, type AuditEvent } from '../records/reassembler';
import {
  LogWriter,
  daemonConfigBody,
  daemonEndBody,
  daemonStartBody,
  resolveNodeName,
  selfRequester,
  type Requester,
} from '../output/logfile';
import { formatChain } from '../contid/chain';
import { ContidTracker } from '../contid/tracker';
import type { ContidSource } from '../contid/source';
import { ProcContidSource, kernelHasContid } from '../contid/source-kernel';
import { EmulatedContidSource } from '../contid/source-emulated';
import { TrackerContidSource } from '../contid/source-tracker';
import { Router } from '../routing/router';
import { routeTest, type RouteTestArgs } from '../routing/route-test';
import { Pipeline, TRACK_KEY } from '../routing/pipeline';
import type { EventRecord } from './aux-ipc';
import { AuxDaemon, prepareAuxLogDir } from './aux-daemon';
import { auxLogProblem, defaultAuxLogFile } from '../config/aux-paths';
import { auxRules, mergeRules, type KernelRuleSet, type Owned } from './rule-union';
import { writerOptions } from './outputs';
import { ControlServer, type PeerCred } from './control';
import { closeAll, createOutputs, flushAll, writeAll, type RecordOutput } from '../output/outputs';
import { DiskSpaceGuard } from '../output/diskspace';
import { startAggregator, type Aggregator, type SinkState } from '../output/remote/aggregator';
import type { Diag } from './diagnostics';
import { Containers } from '../containers/service';

export const VERSION = '0.1.0';
/** Write at once when this much is buffered; below it, within FLUSH_DELAY_MS. */
const FLUSH_NOW_BYTES = 256 * 1024;
const FLUSH_DELAY_MS = 5;
const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export interface HostDaemonOptions {
  configPath: string | null;
  diag: Diag;
  /** Transport for an emulated kernel (tests); the native addon otherwise. */
  socket?: AuditSocket;
  /** The emulated kernel behind `socket`, so `contid set` can reach its /proc emulation. */
  emulated?: EmulatedKernel;
  /** Skip the control socket (library use). */
  noControl?: boolean;
}

interface KernelFound {
  status: AuditStatus;
  loginuidImmutable: boolean;
}

/** An auxiliary daemon added at run time (`auditmux aux add`): kept across reloads. */
interface RuntimeDaemon {
  daemon: DaemonConfig;
  routes: RouteConfig[];
}

export class HostDaemon {
  config: Config;
  private client: AuditClient | null = null;
  private log: LogWriter | null = null;
  private guard: DiskSpaceGuard | null = null;
  private lastSpaceCheck = 0;
  private outputs: RecordOutput[] = [];
  private aggregator: Aggregator | null = null;
  private remoteLog: LogWriter | null = null;
  /** The remote log's own disk-space guard, from its own settings: peers hear DISKLOW/DISKFULL from it. */
  private remoteGuard: { guard: DiskSpaceGuard; checked: number } | null = null;
  private control: ControlServer | null = null;
  private found: KernelFound | null = null;
  private nodeName: string | undefined;
  private contidKernel = false;
  /** Encoded kernel rules this daemon added, in the order added (removed again at stop). */
  private loaded: Buffer[] = [];
  private ruleSet: KernelRuleSet = { rules: [], keysByOwner: new Map() };
  private hostCommands: RuleCommand[] = [];
  private readonly auxes = new Map<string, AuxDaemon>();
  private readonly runtime = new Map<string, RuntimeDaemon>();
  private tracker: ContidTracker;
  /** Container registry and cgroup discovery; off with an emulated kernel, whose pids are not this machine's. */
  readonly containers: Containers;
  private readonly discover: boolean;
  private contidSource: ContidSource | null = null;
  private pipeline: Pipeline;
  private reassembler: Reassembler;
  private eventMode = false;
  private tracking = false;
  private tickTimer: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  private readonly blockedBy = new Set<string>();
  private readonly startedAt = Date.now();
  private lastKernelLost = 0;
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

  constructor(private readonly opts: HostDaemonOptions) {
    this.config = opts.configPath ? loadConfig(opts.configPath) : defaultConfig();
    this.tracker = new ContidTracker({ cgroupMap: this.config.contid.cgroupMap });
    this.containers = new Containers({
      tracker: this.tracker,
      record: (body) => this.daemonRecord(MsgType.CONTAINER_OP, body),
    });
    this.discover = !opts.socket && !opts.emulated;
    if (this.discover) this.tracker.setContainers(this.containers.discovery);
    this.pipeline = this.makePipeline();
    this.reassembler = this.makeReassembler();
  }

  get diag(): Diag {
    return this.opts.diag;
  }

  private makeReassembler(): Reassembler {
    const r = this.config.host.reassembly;
    // The addon hands over a fresh buffer per batch, so records can point into it without a copy.
    return new Reassembler((ev) => this.onEvent(ev), {
      timeoutMs: r.timeoutMs,
      maxInFlight: r.maxInFlight,
      copy: false,
    });
  }

  private makePipeline(): Pipeline {
    return new Pipeline({
      router: new Router(this.allRoutes(), this.containers.registry),
      tracker: this.tracker,
      contidKernel: this.contidKernel,
      daemonsWithRules: new Set(
        this.allDaemons()
          .filter((d) => d.rules)
          .map((d) => d.name),
      ),
      keep: this.config.host.keep,
    });
  }

  private allDaemons(): DaemonConfig[] {
    return [...this.config.daemons, ...[...this.runtime.values()].map((r) => r.daemon)];
  }

  private allRoutes(): RouteConfig[] {
    const routes = [...this.config.routes, ...[...this.runtime.values()].flatMap((r) => r.routes)];
    return routes.map((r, index) => ({ ...r, index }));
  }

  /**
   * Starts in auditd's order: log, registration, settings, rules, enable; then auxiliary daemons and the control
   * socket.
   */
  async start(): Promise<void> {
    const cfg = this.config;
    // A 2 ms moderation window: at most ~500 wake-ups a second for a trickle, far inside the kernel's backlog.
    const clientOpts = this.opts.socket
      ? { socket: this.opts.socket }
      : { receiveBuffer: cfg.host.receiveBuffer, coalesceMs: 2 };
    const client = await AuditClient.open(clientOpts);
    this.client = client;
    try {
      const status = await client.getStatus();
      const feats = await client.getFeatures();
      this.lastKernelLost = status.lost;
      this.contidKernel = this.opts.emulated ? this.opts.emulated.contid : kernelHasContid(status.featureBitmap);
      this.contidSource = this.contidKernel
        ? this.opts.emulated
          ? new EmulatedContidSource(this.opts.emulated)
          : new ProcContidSource()
        : new TrackerContidSource(this.tracker);
      this.nodeName = await resolveNodeName(cfg.host.nodeName.format, cfg.host.nodeName.name ?? undefined);
      client.onRecords(
        (type, buf, start, end) => this.onRecord(type, buf, start, end),
        () => this.endBatch(),
      );
      client.onReceiveError((e) => this.diag.warn({ err: e.message, code: e.code }, 'netlink receive error'));
      // Registration comes first: a refused second instance must not touch the running daemon's log or settings.
      await client.registerDaemon();
      this.found = { status, loginuidImmutable: (feats.features & (1 << Feature.LOGINUID_IMMUTABLE)) !== 0 };
      this.log = this.openLog(cfg);
      this.log.writeDaemonRecord(
        MsgType.DAEMON_START,
        daemonStartBody({ ...selfRequester(), ver: VERSION, format: cfg.host.log.format }),
      );
      this.outputs = createOutputs(cfg.host.outputs, {
        ...(this.nodeName !== undefined ? { nodeName: this.nodeName } : {}),
        contidKernel: this.contidKernel,
        diag: this.diag,
      });
      if (cfg.host.listen) {
        // Remote records (and their DAEMON_ACCEPT/CLOSE) go to a log of their own unless `log: host`: a peer cannot
        // rotate local history away.
        const rlog = cfg.host.listen.log ? this.openLogFile(cfg.host.listen.log) : null;
        this.remoteLog = rlog;
        this.aggregator = await startAggregator(cfg.host.listen, (line) => (rlog ?? this.log)?.writeLine(line), {
          state: () => (rlog ? sinkState(rlog, this.checkRemoteSpace()) : sinkState(this.log, this.guard)),
          onConnection: (kind, body) => {
            const type = kind === 'accept' ? MsgType.DAEMON_ACCEPT : MsgType.DAEMON_CLOSE;
            if (rlog) {
              rlog.writeDaemonRecord(type, body);
              rlog.flush();
            } else this.daemonRecord(type, body);
          },
          afterBatch: () => {
            rlog?.flush();
            this.checkRemoteSpace();
          },
          diag: this.diag,
        });
      }
      await this.applyHostSettings(client, status);
      this.pipeline = this.makePipeline();
      // Containers already running (started before auditmux, or while it was down) are found here, before routing.
      if (this.discover) this.containers.discovery.scan();
      this.updateMode();
      for (const d of this.allDaemons()) this.startAux(d);
      this.tickTimer = setInterval(() => this.tick(), 250);
      this.tickTimer.unref();
      this.statusTimer = setInterval(() => void this.housekeeping(), 2000);
      this.statusTimer.unref();
      if (!this.opts.noControl) {
        this.control = new ControlServer(cfg.host.controlSocket, (cmd, args, peer) =>
          this.handleControl(cmd, args, peer),
        );
        await this.control.listen();
      }
      this.log.flush();
      this.diag.info(
        { config: cfg.file, log: cfg.host.log.file, contidKernel: this.contidKernel },
        'auditmux host daemon started',
      );
    } catch (e) {
      await this.shutdown('start-failed').catch(() => undefined);
      throw e;
    }
  }

  /** The aggregator's own log: same writer, rotation, size and disk-space settings as any log, its own guard. */
  private openLogFile(out: OutputConfig): LogWriter {
    mkdirSync(dirname(out.file), { recursive: true, mode: 0o700 });
    const w = new LogWriter({
      ...writerOptions(out, this.nodeName, this.contidKernel),
      logger: (level, msg) => this.diag[level](msg),
      onError: (e) => {
        this.diag.error(
          { op: e.op, code: e.code, lost: e.lostRecords, log: out.file },
          `remote log ${e.op} failed: ${e.message}`,
        );
        this.remoteGuard?.guard.onWriteError(e.code);
      },
    });
    w.open();
    this.remoteGuard = { guard: new DiskSpaceGuard(out.file, out.diskSpace, w, this.diag, out.numLogs), checked: 0 };
    return w;
  }

  /** One statfs a second at most, asked by the aggregator before it answers a peer: the level is at most 1 s old. */
  private checkRemoteSpace(): DiskSpaceGuard | null {
    const g = this.remoteGuard;
    if (!g) return null;
    const now = Date.now();
    if (now - g.checked >= 1000) {
      g.checked = now;
      g.guard.afterFlush();
    }
    return g.guard;
  }

  private openLog(cfg: Config): LogWriter {
    // auditd expects the directory to exist; a fresh machine without the unit's LogsDirectory= gets it made here.
    mkdirSync(dirname(cfg.host.log.file), { recursive: true, mode: 0o700 });
    const w = new LogWriter({
      ...writerOptions(cfg.host.log, this.nodeName, this.contidKernel),
      logger: (level, msg) => this.diag[level](msg),
      onError: (e) => {
        this.diag.error({ op: e.op, code: e.code, lost: e.lostRecords }, `log ${e.op} failed: ${e.message}`);
        this.guard?.onWriteError(e.code);
      },
    });
    w.open();
    this.guard = new DiskSpaceGuard(cfg.host.log.file, cfg.host.log.diskSpace, w, this.diag, cfg.host.log.numLogs);
    return w;
  }

  // ---- kernel settings and rules ----

  /** Host-wide settings, the host rules' settings, the rule union, then `enabled` (2 = immutable, strictly last). */
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
    this.hostCommands = this.config.host.rules ? loadRulesPath(this.config.host.rules) : [];
    const settings = this.hostCommands.filter((c) => c.kind !== 'add' && c.kind !== 'enabled');
    const enables = this.hostCommands.filter((c) => c.kind === 'enabled');
    if (settings.length) {
      const s = await applyRules(client, settings, { hostWide: true });
      for (const e of s.errors) this.diag.warn({ rule: e.message }, 'host rule setting not applied');
    }
    await this.syncKernelRules();
    await client.setStatus({ enabled: k.enabled === 2 ? 1 : k.enabled });
    if (enables.length) await applyRules(client, enables, { hostWide: true });
    else if (k.enabled === 2) await client.setStatus({ enabled: 2 });
  }

  /** The rules every owner wants in the kernel: host rules first, then each auxiliary daemon's, then tracking. */
  private desiredRules(extra?: { name: string; commands: RuleCommand[] }): KernelRuleSet {
    const filtered: Owned[] = [];
    const host: Owned[] = [];
    const aux: Owned[] = [];
    for (const c of this.hostCommands) if (c.kind === 'add') host.push({ owner: 'host', rule: c.rule });
    const addAux = (name: string, rules: Rule[]): void => {
      const k = this.kernelFiltered(name, rules);
      for (const rule of k ?? rules) (k ? filtered : aux).push({ owner: name, rule });
    };
    for (const d of this.allDaemons()) {
      if (!d.rules || (extra && extra.name === d.name)) continue;
      addAux(d.name, auxRules(d.name, loadRulesPath(d.rules)));
    }
    if (extra) addAux(extra.name, auxRules(extra.name, extra.commands));
    if (this.tracking)
      for (const c of parseRules(trackingRulesText(), '<contid tracking>'))
        if (c.kind === 'add') aux.push({ owner: 'host', rule: c.rule });
    // The exit list is first-match: rules narrowed to a container by the kernel's contid field go before the host's,
    // or a host rule for the same syscall would always win and the container's daemon would never see its events.
    return mergeRules([...filtered, ...host, ...aux]);
  }

  /**
   * On a kernel with the contid patch set, an auxiliary daemon routed only exact ids gets its rules once per id with
   * the `contid` field, so the kernel itself filters; ranges, nesting and `unset` stay with the userspace router.
   */
  private kernelFiltered(name: string, rules: Rule[]): Rule[] | null {
    if (!this.contidKernel) return null;
    const ids: bigint[] = [];
    for (const r of this.allRoutes()) {
      if (!r.daemons.includes(name)) continue;
      if (r.container) return null;
      for (const p of r.contid) {
        if (p.kind !== 'range' || p.nested || p.lo !== p.hi) return null;
        if (!ids.includes(p.lo)) ids.push(p.lo);
      }
    }
    if (ids.length === 0 || ids.length > 16) return null;
    // Prepended (-A): added later at run time they must still come before the host's rules.
    return rules.flatMap((rule) =>
      ids.map((id) => ({
        ...rule,
        flags: rule.flags | AUDIT_FILTER_PREPEND,
        fields: [...rule.fields, { field: Field.contid, op: Op.EQUAL, value: 8, u64: id }],
      })),
    );
  }

  /** Makes the kernel hold exactly the desired rules that this daemon owns: adds what is missing, deletes the rest. */
  private async syncKernelRules(desired = this.desiredRules()): Promise<void> {
    const client = this.client!;
    const want = desired.rules.map((r) => encodeRule(r));
    for (const b of want) {
      if (this.loaded.some((l) => l.equals(b))) continue;
      try {
        await client.addRule(b);
        this.loaded.push(b);
      } catch (e) {
        if (e instanceof AuditmuxError && e.code === 'EEXIST') continue; // loaded by someone else already: not ours
        throw e;
      }
    }
    for (const b of [...this.loaded]) {
      if (want.some((w) => w.equals(b))) continue;
      await client.deleteRule(b).catch(() => undefined);
      this.loaded = this.loaded.filter((l) => l !== b);
    }
    this.ruleSet = desired;
  }

  // ---- record path ----

  private updateMode(): void {
    this.eventMode =
      this.contidKernel || this.allDaemons().length > 0 || this.allRoutes().length > 0 || !this.tracker.idle;
  }

  private onRecord(type: number, buf: Buffer, start: number, end: number): void {
    this.counters.records++;
    if (this.eventMode) this.reassembler.push(type, buf, start, end);
    else {
      const payload = buf.subarray(start, end);
      if (type !== MsgType.EOE) this.log?.writeRecord(type, payload);
      // Plugins get EOE, as auditd's dispatcher sends it; the disk log never does.
      if (this.outputs.length) writeAll(this.outputs, type, payload);
    }
  }

  private onEvent(ev: AuditEvent): void {
    try {
      const records: EventRecord[] = ev.records.map((r) => ({ type: r.type, payload: r.raw }));
      // Syscall events end with the kernel's EOE, which the reassembler consumes (or, after PROCTITLE, drops):
      // plugins expect it, as auditd's dispatcher forwards it; logs skip it.
      if ((ev.reason === 'eoe' || ev.reason === 'last') && ev.records[0]!.type >= MsgType.SYSCALL) {
        const first = ev.records[0]!.raw;
        records.push({ type: MsgType.EOE, payload: first.subarray(0, first.indexOf(')') + 3) });
      }
      const dests = this.pipeline.route(records, (owner, full) => this.keysFor(owner, full));
      let routed = 0;
      let dropped = 0;
      for (const d of dests) {
        if (d.daemon === null) {
          for (const r of d.records) this.log!.writeRecord(r.type, r.payload);
          if (this.outputs.length) for (const r of d.records) writeAll(this.outputs, r.type, r.payload);
        } else if (this.auxes.get(d.daemon)?.enqueue(d.records) === false) dropped++;
        else routed++;
      }
      const chain = this.pipeline.lastChain;
      if (chain && this.containers.registry.liveCount) this.containers.registry.noteEvent(chain[0]!, routed, dropped);
    } catch (e) {
      // A bug on one event must not lose the others: count it and keep the raw records in the host log.
      this.counters.internalErrors++;
      this.diag.error({ err: (e as Error).stack }, 'routing failed; event written to the host log');
      for (const r of ev.records) this.log!.writeRecord(r.type, r.raw);
    }
  }

  private keysFor(owner: string | null, full: string[]): string[] {
    const owners = this.ruleSet.keysByOwner.get(full.join('\x01'));
    const userKeys = full.filter((k) => !k.startsWith('auditmux-'));
    if (!owners) return userKeys;
    // The host log shows the host's own keys when a host rule produced the event, else every user key.
    return owners.get(owner ?? 'host') ?? (owner === null ? userKeys : []);
  }

  private endBatch(): void {
    if (this.eventMode) this.reassembler.endBatch();
    // Small batches (low rates) are written together a few ms later: one write() instead of one per wake-up.
    const log = this.log;
    if (log && log.bufferedBytes >= FLUSH_NOW_BYTES) log.flush();
    else if (log && log.bufferedBytes > 0 && !this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        this.log?.flush();
      }, FLUSH_DELAY_MS);
    }
    if (this.outputs.length) flushAll(this.outputs);
    const now = Date.now();
    this.containers.registry.endBatch(now);
    // One statfs a second at most: disk-space levels move slowly, batches arrive thousands of times a second.
    if (this.guard && now - this.lastSpaceCheck >= 1000) {
      this.lastSpaceCheck = now;
      this.guard.afterFlush();
    }
    for (const a of this.auxes.values()) a.pump();
  }

  private tick(): void {
    this.reassembler.tick(Date.now());
    for (const a of this.auxes.values()) {
      if (a.queue.unreportedDrops > 0) {
        const n = a.queue.unreportedDrops;
        a.queue.unreportedDrops = 0;
        this.counters.dropsReported += n;
        this.daemonRecord(
          MsgType.DAEMON_ERR,
          `op=queue-overflow daemon=${a.name} dropped=${n} total-dropped=${a.queue.counters.dropped} policy=${a.config.queue.overflow} res=failed`,
        );
      }
      a.pump();
    }
    this.log?.flush();
  }

  private async housekeeping(): Promise<void> {
    if (!this.client || this.stopping) return;
    try {
      const s = await this.client.getStatus();
      if (s.lost > this.lastKernelLost) this.counters.kernelLost += s.lost - this.lastKernelLost;
      this.lastKernelLost = s.lost;
      if (this.discover) {
        const { born, retired } = this.containers.discovery.scan();
        if (born.length || retired.length) this.updateMode();
      }
      if (!this.contidKernel && this.tracking) {
        this.tracker.sweep();
        if (this.tracker.size === 0) await this.setTracking(false);
      }
    } catch (e) {
      this.diag.warn({ err: (e as Error).message }, 'housekeeping failed');
    }
  }

  private daemonRecord(type: number, body: string): void {
    if (!this.log) return;
    const payload = this.log.daemonPayload(body);
    this.log.writeRecord(type, payload);
    // auditd dispatches its own records to plugins as well; so do the host's outputs.
    if (this.outputs.length) writeAll(this.outputs, type, payload);
    this.log?.flush();
  }

  // ---- auxiliary daemons ----

  private startAux(cfg: DaemonConfig): void {
    const existing = this.auxes.get(cfg.name);
    if (existing) {
      existing.update(cfg);
      existing.start();
      return;
    }
    const a = new AuxDaemon(cfg, {
      diag: this.diag,
      nodeName: this.nodeName ?? null,
      report: (event, detail) => {
        const res = event === 'start' ? 'success' : 'failed';
        // A failure's detail is free text (error messages name tenants' files): encoded as the kernel encodes untrusted
        // strings.
        const safe = event === 'failed' ? `reason=${encodeUntrusted(detail)}` : encodeDetail(detail);
        this.daemonRecord(
          event === 'start' ? MsgType.DAEMON_START : MsgType.DAEMON_ERR,
          `op=aux-${event} daemon=${cfg.name} ${safe} res=${res}`,
        );
        if (event !== 'start') this.diag.warn({ daemon: cfg.name, detail }, `auxiliary daemon ${event}`);
      },
      backpressure: (name, full) => this.backpressure(name, full),
      contidKernel: this.contidKernel,
    });
    this.auxes.set(cfg.name, a);
    a.start();
  }

  /** `block` policy: while any such queue is full the host stops reading the kernel, whose backlog absorbs it. */
  private backpressure(name: string, full: boolean): void {
    if (full) this.blockedBy.add(name);
    else this.blockedBy.delete(name);
    if (this.blockedBy.size > 0) this.client?.pause();
    else this.client?.resume();
  }

  private async setTracking(on: boolean): Promise<void> {
    if (this.tracking === on || this.contidKernel) return;
    this.tracking = on;
    await this.syncKernelRules();
    this.updateMode();
  }

  /** `fields`: more ` name=value` text, already encoded. The reason carries tenants' text (rule lines, file names). */
  private refuse(reason: string, peer?: PeerCred, fields = ''): never {
    this.counters.refused++;
    // Cut so that hex (twice the bytes) and the fields after it stay within auditd's line limit.
    this.daemonRecord(
      MsgType.DAEMON_ERR,
      `op=refused reason=${encodeUntrusted(reason.slice(0, 2048))}${fields}${peer ? ` pid=${peer.pid} uid=${peer.uid}` : ''} res=failed`,
    );
    throw new PermissionError(reason, 'E_HOST_WIDE');
  }

  /** `auditmux aux add`: a new daemon with its rules and routes; a bad rules file changes nothing. */
  async auxAdd(
    args: {
      name: string;
      rules?: string | null;
      contid: string[];
      log?: string;
      queue?: number;
      overflow?: string;
      user?: string;
      isolation?: string;
    },
    peer?: PeerCred,
  ): Promise<unknown> {
    const name = args.name;
    if (!NAME_RE.test(name) || name === 'host')
      throw new UsageError(`bad daemon name "${name}" (lowercase letters, digits, - and _, not "host")`);
    if (this.allDaemons().some((d) => d.name === name)) throw new UsageError(`daemon "${name}" already exists`);
    if (!args.contid.length) throw new UsageError('aux add needs --contid');
    const patterns = args.contid.map((t) => {
      const p = parseContidSelector(t);
      if (typeof p === 'string') throw new UsageError(`--contid ${t}: ${p}`);
      return p;
    });
    const rulesPath = args.rules ? resolve(args.rules) : null;
    let commands: RuleCommand[] = [];
    if (rulesPath) {
      commands = loadRulesPath(rulesPath);
      try {
        auxRules(name, commands);
      } catch (e) {
        if (e instanceof RuleError) this.refuse(e.message, peer, ` daemon=${name}`);
        throw e;
      }
    }
    const pos = { file: '<aux add>', line: 1 };
    const overflow = (args.overflow ?? DEFAULT_QUEUE.overflow) as DaemonConfig['queue']['overflow'];
    if (!['block', 'drop_newest', 'drop_oldest'].includes(overflow))
      throw new UsageError(`--overflow must be block, drop_newest or drop_oldest`);
    const daemon: DaemonConfig = {
      name,
      rules: rulesPath,
      log: {
        ...this.config.host.log,
        file: args.log ? resolve(args.log) : defaultAuxLogFile(this.config.host.log.file, name, args.user ?? null),
      },
      queue: { ...DEFAULT_QUEUE, depth: args.queue ?? DEFAULT_QUEUE.depth, overflow },
      user: args.user ?? null,
      isolation: defaultIsolation(args.user),
      maxRestarts: DEFAULT_MAX_RESTARTS,
      pos,
    };
    if (args.isolation !== undefined) {
      if (args.isolation !== 'inline' && args.isolation !== 'process')
        throw new UsageError('--isolation must be inline or process');
      if (args.isolation === 'inline' && args.user)
        throw new UsageError(`--isolation inline cannot run as user "${args.user}" (use --isolation process)`);
      daemon.isolation = args.isolation;
    }
    if (
      this.allDaemons().some((d) => d.log.file === daemon.log.file) ||
      daemon.log.file === this.config.host.log.file
    ) {
      throw new UsageError(`log file ${daemon.log.file} is already used by another daemon`);
    }
    // The same placement rule as the config file's; then the directory is made (or found already the user's) before
    // anything else changes, so a refused directory leaves no daemon behind.
    const placement = auxLogProblem(
      { name, user: daemon.user, file: daemon.log.file },
      this.config.host.log.file,
      this.allDaemons().map((d) => ({ name: d.name, user: d.user, file: d.log.file })),
    );
    if (placement) throw new UsageError(placement);
    prepareAuxLogDir(daemon);
    // The new union must build before the kernel is touched; on any failure the daemon and its rules go again.
    this.runtime.set(name, {
      daemon,
      routes: [{ index: 0, contid: patterns, types: null, keys: null, daemons: [name], continue: true, pos }],
    });
    try {
      await this.syncKernelRules(this.desiredRules({ name, commands }));
    } catch (e) {
      this.runtime.delete(name);
      await this.syncKernelRules().catch(() => undefined);
      throw e;
    }
    this.pipeline = this.makePipeline();
    this.updateMode();
    this.startAux(daemon);
    this.daemonRecord(
      MsgType.DAEMON_CONFIG,
      `op=aux-add daemon=${name} contid=${encodeUntrusted(args.contid.join(','))} rules=${rulesPath === null ? '(none)' : encodeUntrusted(rulesPath)} log=${encodeUntrusted(daemon.log.file)} res=success`,
    );
    return this.auxes.get(name)!.status();
  }

  async auxRemove(name: string): Promise<unknown> {
    const rt = this.runtime.get(name);
    if (!rt) {
      if (this.config.daemons.some((d) => d.name === name))
        throw new UsageError(`daemon "${name}" comes from the configuration file: remove it there and reload`);
      throw new UsageError(`no auxiliary daemon "${name}"`);
    }
    const a = this.auxes.get(name);
    this.runtime.delete(name);
    this.pipeline = this.makePipeline();
    await this.syncKernelRules();
    this.updateMode();
    if (a) {
      await a.stop();
      this.auxes.delete(name);
    }
    this.daemonRecord(MsgType.DAEMON_CONFIG, `op=aux-remove daemon=${name} res=success`);
    return a?.status() ?? { name };
  }

  contidSet(pid: number, idText: string, nested: boolean, peer: PeerCred): unknown {
    const id = parseContidValueStrict(idText);
    const src = this.contidSource!;
    let res: { old: readonly bigint[] | null; chain: readonly bigint[] };
    // A process that joined a known container (runc exec, podman exec) may carry that container's contid too.
    const join = this.discover && this.containers.discovery.sameContainer(pid, id);
    try {
      res = src.set(pid, id, { setterPid: peer.pid, nested, join });
    } catch (e) {
      this.daemonRecord(
        MsgType.CONTAINER_OP,
        `op=set opid=${pid} contid=${id} old-contid=${formatChain(src.get(pid) ?? [0xffffffffffffffffn])} pid=${peer.pid} uid=${peer.uid} res=0`,
      );
      throw e;
    }
    if (src.kind === 'tracker') {
      this.daemonRecord(
        MsgType.CONTAINER_OP,
        `op=set opid=${pid} contid=${id} old-contid=${formatChain(res.old ?? [0xffffffffffffffffn])} pid=${peer.pid} uid=${peer.uid} res=1`,
      );
      void this.setTracking(true).catch((e: Error) =>
        this.diag.error({ err: e.message }, 'could not load the contid tracking rules'),
      );
      this.updateMode();
    }
    return { pid, contid: formatChain(res.chain), old: res.old ? formatChain(res.old) : null, source: src.kind };
  }

  routeTest(args: RouteTestArgs): unknown {
    return routeTest(this.allRoutes(), this.containers.registry, this.config.host.keep === 'all', args);
  }

  // ---- signals and control ----

  private async requester(): Promise<Requester> {
    try {
      const si = await this.client!.getSignalInfo(this.contidKernel && !this.opts.emulated);
      return { auid: si.uid, uid: si.uid, ses: 4294967295, pid: si.pid };
    } catch {
      return { auid: 4294967295, uid: 4294967295, ses: 4294967295, pid: -1 };
    }
  }

  /** SIGHUP: re-read the config; a bad new config is reported and the old one kept. Run-time daemons survive. */
  async reload(): Promise<{ ok: boolean; error?: string }> {
    const by = await this.requester();
    if (!this.opts.configPath) return { ok: true };
    let next: Config;
    try {
      next = loadConfig(this.opts.configPath);
      for (const d of next.daemons) {
        if (this.runtime.has(d.name))
          throw new UsageError(`${d.pos.file}:${d.pos.line}: daemon "${d.name}" clashes with one added at run time`);
        if (d.rules) auxRules(d.name, loadRulesPath(d.rules));
      }
      if (next.host.rules) loadRulesPath(next.host.rules);
      // Daemons added at run time are placed against the new file's host log and daemons by the same rule.
      const placed = next.daemons.map((d) => ({ name: d.name, user: d.user, file: d.log.file }));
      for (const { daemon: d } of this.runtime.values()) {
        const p = auxLogProblem({ name: d.name, user: d.user, file: d.log.file }, next.host.log.file, placed);
        if (p) throw new UsageError(`${p} (daemon "${d.name}" was added at run time)`);
      }
    } catch (e) {
      this.counters.reloadFailures++;
      const msg = e instanceof AuditmuxError ? e.message : String(e);
      this.diag.error({ err: msg }, 'reload refused: keeping the running configuration');
      this.daemonRecord(MsgType.DAEMON_CONFIG, daemonConfigBody(by, false));
      return { ok: false, error: msg };
    }
    const old = this.config;
    this.config = next;
    try {
      if (
        JSON.stringify(old.host.log) !== JSON.stringify(next.host.log) ||
        JSON.stringify(old.host.nodeName) !== JSON.stringify(next.host.nodeName)
      ) {
        this.nodeName = await resolveNodeName(next.host.nodeName.format, next.host.nodeName.name ?? undefined);
        const oldLog = this.log!;
        this.log = this.openLog(next);
        oldLog.close();
      }
      this.tracker.setCgroupMap(next.contid.cgroupMap);
      const st = await this.client!.getStatus();
      if (st.enabled !== 2) await this.applyHostSettings(this.client!, st);
      const names = new Set(this.allDaemons().map((d) => d.name));
      for (const [name, a] of [...this.auxes]) {
        if (!names.has(name)) {
          await a.stop();
          this.auxes.delete(name);
        }
      }
      this.pipeline = this.makePipeline();
      this.updateMode();
      for (const d of this.allDaemons()) this.startAux(d);
      this.counters.reloads++;
      this.daemonRecord(MsgType.DAEMON_CONFIG, daemonConfigBody(by, true));
      this.diag.info('configuration reloaded');
      return { ok: true };
    } catch (e) {
      this.counters.reloadFailures++;
      const msg = e instanceof AuditmuxError ? e.message : String(e);
      this.diag.error({ err: msg }, 'reload failed while applying');
      this.daemonRecord(MsgType.DAEMON_CONFIG, daemonConfigBody(by, false));
      return { ok: false, error: msg };
    }
  }

  /** SIGUSR1: rotate the logs now (host and auxiliary daemons). */
  async rotate(): Promise<void> {
    const by = await this.requester();
    this.log!.rotateNow(by);
    this.remoteLog?.rotateNow(by);
    for (const a of this.auxes.values()) a.rotate();
    this.counters.rotations++;
  }

  /** SIGUSR2 / `auditmux resume`: resume logging after a suspend. */
  async resume(): Promise<void> {
    const by = await this.requester();
    if (this.guard) this.guard.resume();
    else this.log!.resume();
    if (this.remoteGuard) this.remoteGuard.guard.resume();
    for (const o of this.outputs) o.resume?.();
    for (const a of this.auxes.values()) a.resume();
    this.daemonRecord(
      MsgType.DAEMON_RESUME,
      `op=resume auid=${by.auid} uid=${by.uid} ses=${by.ses} pid=${by.pid} res=success`,
    );
  }

  status(): Record<string, unknown> {
    return {
      daemon: {
        pid: process.pid,
        version: VERSION,
        uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
        config: this.config.file,
        contidSource: this.contidSource?.kind ?? 'none',
        mode: this.eventMode ? 'events' : 'stream',
        // Daemons whose full `block` queue has paused the host's kernel intake.
        intakePausedBy: [...this.blockedBy],
        ...this.counters,
      },
      memory: Object.fromEntries(
        Object.entries(process.memoryUsage()).map(([k, v]) => [`${k}MiB`, Math.round(v / 10485.76) / 100]),
      ),
      client: { ...this.client?.counters },
      reassembly: { ...this.reassembler.counters, inFlight: this.reassembler.inFlightCount },
      routing: { ...this.pipeline.counters },
      tracker: { ...this.tracker.counters, tracked: this.tracker.size },
      containers: {
        live: this.containers.registry.liveCount,
        ...this.containers.registry.counters,
        ...this.containers.discovery.counters,
        ...this.containers.counters,
      },
      log: this.log
        ? { ...this.log.counters, suspended: this.log.isSuspended, diskLevel: this.guard?.lastLevel ?? 'ok' }
        : {},
      outputs: Object.fromEntries(this.outputs.map((o) => [o.name, o.stats()])),
      ...(this.aggregator ? { aggregator: this.aggregator.stats() } : {}),
      ...(this.control ? { control: this.control.stats() } : {}),
      aux: Object.fromEntries([...this.auxes].map(([n, a]) => [n, a.status()])),
    };
  }

  private isAuxPeer(peer: PeerCred): boolean {
    for (const a of this.auxes.values()) if (a.pid !== 0 && a.pid === peer.pid) return true;
    return false;
  }

  private async handleControl(cmd: string, args: Record<string, unknown>, peer: PeerCred): Promise<unknown> {
    this.diag.debug({ cmd, peer }, 'control request');
    // An auxiliary daemon's own process gets nothing here, whatever user it runs as.
    if (this.isAuxPeer(peer)) this.refuse(`control request ${cmd} from an auxiliary daemon's process`, peer);
    const str = (k: string): string | undefined => (typeof args[k] === 'string' ? (args[k] as string) : undefined);
    const num = (k: string): number | undefined => (typeof args[k] === 'number' ? (args[k] as number) : undefined);
    const list = (k: string): string[] => (Array.isArray(args[k]) ? (args[k] as unknown[]).map(String) : []);
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
      case 'aux-add': {
        const a: Parameters<HostDaemon['auxAdd']>[0] = {
          name: str('name') ?? '',
          rules: str('rules') ?? null,
          contid: list('contid'),
        };
        const log = str('log');
        const queue = num('queue');
        const overflow = str('overflow');
        const user = str('user');
        if (log) a.log = log;
        if (queue !== undefined) a.queue = queue;
        if (overflow) a.overflow = overflow;
        if (user) a.user = user;
        const isolation = str('isolation');
        if (isolation) a.isolation = isolation;
        return this.auxAdd(a, peer);
      }
      case 'aux-remove':
        return this.auxRemove(str('name') ?? '');
      case 'aux-list':
        return [...this.auxes.values()].map((a) => a.status());
      case 'contid-set':
        return this.contidSet(num('pid') ?? 0, str('contid') ?? '', args.nested === true, peer);
      case 'contid-get': {
        const pid = num('pid');
        if (pid === undefined) return this.tracker.entries();
        const c = this.contidSource!.get(pid);
        return { pid, contid: c ? formatChain(c) : 'unset', source: this.contidSource!.kind };
      }
      case 'container-hook': {
        const r = this.containers.fromHook({ state: args.state, bundleAnnotations: args.bundleAnnotations });
        // An init whose cgroup no pattern knows is followed through its forks (the kernel's fork/exit tracking rule).
        if (r.cgroupKnown === false && !this.contidKernel)
          void this.setTracking(true).catch((e: Error) =>
            this.diag.error({ err: e.message }, 'could not load the contid tracking rules'),
          );
        this.updateMode();
        return r;
      }
      case 'containers':
        return this.containers.list();
      case 'route-test':
        return this.routeTest({
          ...(str('contid') ? { contid: str('contid')! } : {}),
          types: list('types'),
          keys: list('keys'),
          container: args.container,
        });
      case 'kernel-set':
        // Host-wide settings belong to the configuration and rules files of the host daemon, never to a request.
        return this.refuse(
          'host-wide setting change requested over the control socket',
          peer,
          ` args=${encodeUntrusted(JSON.stringify(args).slice(0, 1024))}`,
        );
      default:
        throw new UsageError(`unknown control command "${cmd}"`);
    }
  }

  /** SIGTERM: every accepted record on disk, the kernel handed back as found. Idempotent. */
  stop(reason = 'terminate'): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  private async shutdown(reason: string): Promise<void> {
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.statusTimer) clearInterval(this.statusTimer);
    await this.control?.close().catch(() => undefined);
    const client = this.client;
    let by: Requester = { auid: 4294967295, uid: 4294967295, ses: 4294967295, pid: -1 };
    if (client) {
      if (reason === 'terminate') by = await this.requester();
      try {
        await this.restoreKernel(client);
      } catch (e) {
        this.diag.error({ err: (e as Error).message }, 'could not restore the kernel state');
      }
      // Records the kernel sent before it saw pid 0 may still sit in the socket: drain them before closing it.
      await this.waitQuiet();
      client.close();
    }
    this.reassembler.flush();
    await this.aggregator?.close().catch(() => undefined);
    this.remoteLog?.close();
    for (const a of this.auxes.values()) await a.stop().catch(() => undefined);
    await closeAll(this.outputs).catch((e: Error) => this.diag.error({ err: e.message }, 'closing outputs failed'));
    if (this.log) {
      this.log.writeDaemonRecord(MsgType.DAEMON_END, daemonEndBody(by).replace('op=terminate', `op=${reason}`));
      this.log.close();
    }
    this.diag.info({ reason }, 'auditmux host daemon stopped');
  }

  /**
   * Waits (at most 5 s) until the kernel's backlog for us is empty and no record has arrived for a few moderation
   * windows: kauditd can lag behind on a busy machine, and what it still holds when we unregister is lost to us.
   */
  private async waitQuiet(): Promise<void> {
    let last = -1;
    let quiet = 0;
    for (let i = 0; i < 250 && quiet < 3; i++) {
      await new Promise((r) => setTimeout(r, 20));
      let backlog: number;
      try {
        backlog = this.client && this.client.isRegistered ? (await this.client.getStatus()).backlog : 0;
      } catch {
        backlog = 0;
      }
      quiet = this.counters.records === last && backlog === 0 ? quiet + 1 : 0;
      last = this.counters.records;
    }
  }

  private async restoreKernel(client: AuditClient): Promise<void> {
    const found = this.found;
    if (!found) return;
    const st = await client.getStatus();
    if (st.enabled !== 2) {
      for (const r of this.loaded) await client.deleteRule(r).catch(() => undefined);
      this.loaded = [];
      // Our rules are gone, so no new events of ours: take what the kernel still queues for us before letting go.
      await this.waitQuiet();
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

/** What a log's state means to a remote peer: a full disk says DISKFULL even when its action suspended the log. */
function sinkState(log: LogWriter | null, guard: DiskSpaceGuard | null): SinkState {
  if (guard?.lastLevel === 'disk_full') return 'disk-full';
  if (log?.isSuspended) return 'suspended';
  return guard && guard.lastLevel !== 'ok' ? 'disk-low' : 'ok';
}

function trackingRulesText(): string {
  return [
    `-a always,exit -F arch=b64 -S clone,fork,vfork,clone3,exit_group -F key=${TRACK_KEY}`,
    `-a always,exit -F arch=b32 -S clone,fork,vfork,clone3,exit_group -F key=${TRACK_KEY}`,
  ].join('\n');
}

function parseContidValueStrict(text: string): bigint {
  const t = text.trim();
  if (!/^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/.test(t))
    throw new UsageError(`"${text}" is not a contid (decimal or 0x hex u64)`);
  const v = BigInt(t);
  if (v > 0xffffffffffffffffn) throw new UsageError(`contid ${text} is above 2^64-1`);
  return v;
}
