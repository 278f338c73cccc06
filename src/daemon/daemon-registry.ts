// The auxiliary daemons of the host: those of the config file and those added at run time, their routes, their
// processes or writers, and the backpressure their `block` queues put on the kernel intake.
import { MsgType } from '../kernel/constants';
import { UsageError } from '../errors';
import type { Config, DaemonConfig, DaemonTemplate, RouteConfig } from '../config';
import { auxLogProblem } from '../config/aux-paths';
import { loadRulesPath } from '../rules';
import { auxRules } from './rule-union';
import { encodeDetail, encodeUntrusted } from '../records/encode';
import type { EventRecord } from './aux-ipc';
import { AuxDaemon } from './aux-daemon';
import type { ExtraRules } from './kernel-session';
import type { Diag } from './diagnostics';
import type { ContainerDirectory } from '../contid/meta-selector';
import { TemplateManager } from './templates';

export interface DaemonRegistryOptions {
  diag: Diag;
  /** auditmux's own record in the host log. */
  record: (type: number, body: string) => void;
  /** The kernel intake: paused while any `block` queue is full. */
  setPaused: (paused: boolean) => void;
  /**
   * The set of daemons changed: the kernel's rules and the route table follow. `extra` is a daemon being added whose
   * rules must load first; a throw undoes the change.
   */
  changed: (extra?: ExtraRules) => Promise<void>;
  /** What every daemon's writer needs from the host. */
  context: () => { nodeName: string | null; contidKernel: boolean };
  /** The host's container registry, handed to inline auxiliary daemons' outputs and logs. */
  containers?: ContainerDirectory;
  counters: { dropsReported: number };
}

/** An auxiliary daemon added at run time (`auditmux aux add`, or a template on a first event): kept across reloads. */
interface RuntimeDaemon {
  daemon: DaemonConfig;
  routes: RouteConfig[];
}

export class DaemonRegistry {
  private configured: DaemonConfig[] = [];
  private configuredRoutes: RouteConfig[] = [];
  private readonly auxes = new Map<string, AuxDaemon>();
  private readonly runtime = new Map<string, RuntimeDaemon>();
  private readonly blockedBy = new Set<string>();
  /** Daemons made by `daemon_templates:` (src/daemon/templates.ts): run-time daemons the registry makes itself. */
  readonly templates: TemplateManager;
  /** Writes an event to the host log (set by the record path): held events of a template daemon never made go there. */
  hostLog: ((records: EventRecord[]) => void) | null = null;

  constructor(private readonly opts: DaemonRegistryOptions) {
    this.templates = new TemplateManager(
      {
        has: (n) => this.has(n),
        running: (n) => this.runtime.has(n) && this.auxes.has(n),
        configs: () => this.configs(),
        addRuntimeDaemon: (d, r, c) => this.addRuntimeDaemon(d, r, c),
        removeDaemon: (n) => this.removeDaemon(n, true),
        deliver: (n, records) => this.auxes.get(n)?.enqueue(records),
      },
      { diag: opts.diag, record: opts.record, hostLog: () => this.hostLog },
    );
  }

  /**
   * The config file's daemons, routes and daemon templates (at start and on reload); run-time daemons stay, and
   * templates' daemons follow the rules of TemplateManager.configure.
   */
  setConfigured(
    daemons: DaemonConfig[],
    routes: RouteConfig[],
    cfg?: { templates?: DaemonTemplate[]; host: { log: { file: string } } },
  ): void {
    this.configured = daemons;
    this.configuredRoutes = routes;
    if (cfg) this.templates.configure(cfg.templates ?? [], cfg.host.log.file);
  }

  /** Every daemon's config: the file's, then the run-time ones in the order added. */
  configs(): DaemonConfig[] {
    return [...this.configured, ...[...this.runtime.values()].map((r) => r.daemon)];
  }

  /** Every route, the file's first, then one per daemon template, then `aux add`'s, numbered in that order. */
  allRoutes(): RouteConfig[] {
    const routes = [
      ...this.configuredRoutes,
      ...this.templates.routes(),
      ...[...this.runtime.values()].flatMap((r) => r.routes),
    ];
    return routes.map((r, index) => ({ ...r, index }));
  }

  /**
   * The daemons that get only events their own rules produced (the pipeline's filter): those with rules, and the
   * daemons of templates with rules even while they are being made (their rules are not in the kernel yet).
   */
  rulesOwners(): { has(name: string): boolean } {
    const names = new Set(
      this.configs()
        .filter((d) => d.rules)
        .map((d) => d.name),
    );
    const templates = this.templates;
    // A predicate, not a Set: template daemons are known by name only when asked, so there is no size to trust.
    return { has: (name) => names.has(name) || templates.hasRules(name) };
  }

  /** Some daemon or route exists: events must be reassembled and routed. */
  get active(): boolean {
    return this.configs().length > 0 || this.allRoutes().length > 0;
  }

  has(name: string): boolean {
    return this.configs().some((d) => d.name === name);
  }

  isRuntime(name: string): boolean {
    return this.runtime.has(name);
  }

  get(name: string): AuxDaemon | undefined {
    return this.auxes.get(name);
  }

  /** A new config file's daemons: no name of a run-time daemon, rules that load and leave host-wide settings alone. */
  checkNext(next: Config): void {
    for (const d of next.daemons) {
      if (this.runtime.has(d.name))
        throw new UsageError(`${d.pos.file}:${d.pos.line}: daemon "${d.name}" clashes with one added at run time`);
      if (d.rules) auxRules(d.name, loadRulesPath(d.rules));
    }
    // A template's rules are loaded again for each daemon it makes; a bad file is refused before the reload applies.
    for (const t of next.templates ?? []) if (t.rules) auxRules(t.name, loadRulesPath(t.rules));
  }

  /** Daemons added at run time are placed against a new file's host log and daemons by the same rule. */
  checkPlacement(next: Config): void {
    const placed = next.daemons.map((d) => ({ name: d.name, user: d.user, file: d.log.file }));
    for (const { daemon: d } of this.runtime.values()) {
      const p = auxLogProblem({ name: d.name, user: d.user, file: d.log.file }, next.host.log.file, placed);
      if (p) throw new UsageError(`${p} (daemon "${d.name}" was added at run time)`);
    }
  }

  /** Starts every configured daemon not running yet and updates the running ones; stops those no longer there. */
  async sync(): Promise<void> {
    // Template daemons being made or stopped (a reload that changed their template) finish first.
    await this.templates.settle();
    const names = new Set(this.configs().map((d) => d.name));
    for (const [name, a] of [...this.auxes]) {
      if (!names.has(name)) {
        await a.stop();
        this.auxes.delete(name);
      }
    }
    for (const d of this.configs()) this.start(d);
  }

  /**
   * Adds a daemon at run time with its routes and (checked) rules: the kernel's rules load before anything else
   * changes, and on any failure the daemon and its rules go again. Returns the running daemon.
   */
  async addRuntimeDaemon(
    daemon: DaemonConfig,
    routes: RouteConfig[],
    commands?: ExtraRules['commands'],
  ): Promise<AuxDaemon> {
    const name = daemon.name;
    // One run-time daemon per name: a second add (a template's tenant coming back, `aux add`) would replace the
    // first one's entry, its routes and its log, while the first still runs.
    if (this.runtime.has(name)) throw new UsageError(`daemon "${name}" already exists`);
    const entry = { daemon, routes };
    this.runtime.set(name, entry);
    try {
      await this.opts.changed(commands ? { name, commands } : { name, commands: [] });
    } catch (e) {
      // Ours only: an `aux remove` meanwhile took the entry, and another add may have put its own there since.
      if (this.runtime.get(name) === entry) this.runtime.delete(name);
      await this.stopUnlisted(name);
      await this.opts.changed().catch(() => undefined);
      throw e;
    }
    // Removed while its rules were loading: starting it now left a daemon running with no config, no route and no
    // way to remove it (`aux remove` said it did not exist).
    if (this.runtime.get(name) !== entry) {
      await this.stopUnlisted(name);
      throw new UsageError(`daemon "${name}" was removed while it was being added`);
    }
    return this.start(daemon);
  }

  /**
   * Stops and forgets the running daemon `name` when no config lists it any more: a reload's sync() can start a
   * run-time daemon whose add has not finished, and the add then failed or was overtaken by a remove.
   */
  private async stopUnlisted(name: string): Promise<void> {
    const a = this.auxes.get(name);
    if (!a || this.configs().some((d) => d.name === name)) return;
    this.auxes.delete(name);
    await a.stop().catch(() => undefined);
  }

  /** Removes a run-time daemon: no more events routed to it, its rules out, then it stops after writing its queue. */
  async removeDaemon(name: string, byTemplate = false): Promise<AuxDaemon | undefined> {
    if (!byTemplate) this.templates.removed(name);
    if (!this.runtime.delete(name)) {
      if (this.has(name))
        throw new UsageError(`daemon "${name}" comes from the configuration file: remove it there and reload`);
      throw new UsageError(`no auxiliary daemon "${name}"`);
    }
    const a = this.auxes.get(name);
    await this.opts.changed();
    if (a) {
      await a.stop();
      this.auxes.delete(name);
    }
    return a;
  }

  private start(cfg: DaemonConfig): AuxDaemon {
    const existing = this.auxes.get(cfg.name);
    if (existing) {
      existing.update(cfg);
      existing.start();
      return existing;
    }
    const { nodeName, contidKernel } = this.opts.context();
    const a = new AuxDaemon(cfg, {
      diag: this.opts.diag,
      nodeName,
      report: (event, detail) => {
        const res = event === 'start' ? 'success' : 'failed';
        // A failure's detail is free text (error messages name tenants' files): encoded as the kernel encodes untrusted
        // strings.
        const safe = event === 'failed' ? `reason=${encodeUntrusted(detail)}` : encodeDetail(detail);
        this.opts.record(
          event === 'start' ? MsgType.DAEMON_START : MsgType.DAEMON_ERR,
          `op=aux-${event} daemon=${cfg.name} ${safe} res=${res}`,
        );
        if (event !== 'start') this.opts.diag.warn({ daemon: cfg.name, detail }, `auxiliary daemon ${event}`);
      },
      backpressure: (name, full) => this.backpressure(name, full),
      contidKernel,
      ...(this.opts.containers ? { containers: this.opts.containers } : {}),
    });
    this.auxes.set(cfg.name, a);
    a.start();
    return a;
  }

  private backpressure(name: string, full: boolean): void {
    if (full) this.blockedBy.add(name);
    else this.blockedBy.delete(name);
    this.opts.setPaused(this.blockedBy.size > 0);
  }

  /** Daemons whose full `block` queue has paused the host's kernel intake. */
  pausedBy(): string[] {
    return [...this.blockedBy];
  }

  /** false: the daemon's queue refused the event (its overflow policy dropped it). */
  enqueue(name: string, records: EventRecord[]): boolean | undefined {
    // A template daemon being made or stopped holds its events until it runs again.
    const held = this.templates.hold(name, records);
    if (held !== undefined) return held;
    return this.auxes.get(name)?.enqueue(records);
  }

  /**
   * Daemon `name` when an event may be written to it record by record as they come (AuxDaemon.streams); null when it
   * must be enqueued whole at the event's end (held for a template daemon, queued, a process, a JSON log); undefined
   * when there is no such daemon (as enqueue).
   */
  streamTo(name: string): AuxDaemon | null | undefined {
    if (!this.templates.passes(name)) return null;
    const a = this.auxes.get(name);
    if (a === undefined) return undefined;
    return a.streams() ? a : null;
  }

  pumpAll(): void {
    for (const a of this.auxes.values()) a.pump();
  }

  /** Reports the drops since the last tick, one record per daemon, and moves every queue on. */
  tick(): void {
    this.templates.tick(Date.now());
    for (const a of this.auxes.values()) {
      if (a.queue.unreportedDrops > 0) {
        const n = a.queue.unreportedDrops;
        a.queue.unreportedDrops = 0;
        this.opts.counters.dropsReported += n;
        this.opts.record(
          MsgType.DAEMON_ERR,
          `op=queue-overflow daemon=${a.name} dropped=${n} total-dropped=${a.queue.counters.dropped} policy=${a.config.queue.overflow} res=failed`,
        );
      }
      a.pump();
    }
  }

  /** The pid is one of the auxiliary daemons' own processes. */
  isDaemonProcess(pid: number): boolean {
    for (const a of this.auxes.values()) if (a.pid !== 0 && a.pid === pid) return true;
    return false;
  }

  rotate(): void {
    for (const a of this.auxes.values()) a.rotate();
  }

  resume(): void {
    for (const a of this.auxes.values()) a.resume();
  }

  /**
   * Every daemon at once, each writing its queue within its own 10 s: one after another, a few processes that never
   * acknowledge (a tenant's) would outlast the unit's TimeoutStopSec=30, and systemd's SIGKILL would take the host's
   * DAEMON_END and its last buffered records with it.
   */
  async stopAll(): Promise<void> {
    await this.templates.close();
    await Promise.all([...this.auxes.values()].map((a) => a.stop().catch(() => undefined)));
  }

  /** `aux list`: every daemon, then template daemons with no daemon running now (stopped, failed, being made). */
  list(): Array<Record<string, unknown>> {
    const rows = [...this.auxes.values()].map((a) => ({ ...a.status(), ...this.templates.tag(a.name) }));
    return [...rows, ...this.templates.idleRows((n) => this.auxes.has(n))];
  }

  status(): Record<string, unknown> {
    return Object.fromEntries([...this.auxes].map(([n, a]) => [n, { ...a.status(), ...this.templates.tag(n) }]));
  }

  /** The host's status sections: `aux` (every daemon, by name) and `templates` (counters and daemons per template). */
  statusSections(): Record<string, unknown> {
    return { aux: this.status(), templates: this.templates.status() };
  }
}
