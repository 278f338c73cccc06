// The daemon templates at run time: one auxiliary daemon per container metadata value, made on the first event of a
// container with that value, capped, stopped when idle, and never losing an event while one is made or stopped.
import { Buffer } from 'node:buffer';
import { MsgType } from '../kernel/constants';
import { AuditmuxError } from '../errors';
import type { DaemonConfig, DaemonTemplate, RouteConfig } from '../config';
import { auxLogProblem, defaultAuxLogFile, logNamesClash } from '../config/aux-paths';
import {
  sameTemplateDaemons,
  templateDaemonConfig,
  templateDaemonName,
  templateLogFile,
  templateValuePart,
} from '../config/templates';
import { loadRulesPath, type RuleCommand } from '../rules';
import { cutUtf8, encodeUntrusted } from '../records/encode';
import type { EventRecord } from './aux-ipc';
import { prepareAuxLogDir } from './aux-daemon';
import { auxRules } from './rule-union';
import type { Diag } from './diagnostics';

/** What the manager needs of the daemon registry (an interface: the registry owns the manager, not the reverse). */
export interface TemplateRegistry {
  has(name: string): boolean;
  running(name: string): boolean;
  configs(): DaemonConfig[];
  addRuntimeDaemon(daemon: DaemonConfig, routes: RouteConfig[], commands?: RuleCommand[]): Promise<unknown>;
  removeDaemon(name: string): Promise<unknown>;
  /** Straight to the daemon's queue, past the manager's holding. */
  deliver(name: string, records: EventRecord[]): boolean | undefined;
}

export interface TemplateManagerOptions {
  diag: Diag;
  /** auditmux's own record in the host log. */
  record: (type: number, body: string) => void;
  /** Writes an event to the host log: events held for a daemon that could not be made go there, never nowhere. */
  hostLog: () => ((records: EventRecord[]) => void) | null;
}

/**
 * creating: being made (its events are held); running; stopping: writing its queue before it goes (events held, and
 * it is made again at once if any came); stopped: idle, made again on its next event; failed: could not be made.
 */
export type TenantState = 'creating' | 'running' | 'stopping' | 'stopped' | 'failed';

interface Tenant {
  template: DaemonTemplate;
  value: string;
  name: string;
  state: TenantState;
  /** Events that came while the daemon was being made or stopped, in order (bounded by the template's queue depth). */
  held: EventRecord[][];
  lastEvent: number;
  events: number;
  made: number;
  error: string | null;
  /** Removed with its template on reload: stopped and forgotten. */
  orphan: boolean;
  /** Its log, once made: kept while it is stopped, so no other tenant is made onto the same trail meanwhile. */
  file: string | null;
}

function newCounters(): Record<string, number> {
  return {
    created: 0,
    stoppedIdle: 0,
    /** Events of values that got no daemon (over max, a refused value, a failed daemon): on down the table. */
    unroutedEvents: 0,
    overCapValues: 0,
    refusedValues: 0,
    failures: 0,
    heldEvents: 0,
    heldDropped: 0,
  };
}

/** Stopped tenants remembered per template, for status (their daemons are gone; only the entry stays). */
const MAX_STOPPED = 1024;
/** Values remembered as refused, so each is recorded once (not once per event). */
const MAX_REFUSED = 4096;
/** The most UTF-8 bytes of a refused value a record holds (it comes from an annotation or a label). */
const REFUSED_VALUE_MAX = 1024;

export class TemplateManager {
  private templates: DaemonTemplate[] = [];
  private hostLogFile = '';
  private readonly tenants = new Map<string, Tenant>();
  /** Per template name: value -> tenant. */
  private readonly byValue = new Map<string, Map<string, Tenant>>();
  private readonly counters = new Map<string, Record<string, number>>();
  /**
   * Values refused, each with the generation it was refused in: within one generation (no daemon of any template went
   * away since) the answer stands, so an over-cap container's events cost one lookup each, not a hash and a count.
   */
  private readonly refused = new Map<string, number>();
  private generation = 0;
  /** Registry changes one at a time: a daemon's rules, routes and process are made or undone before the next. */
  private chain: Promise<void> = Promise.resolve();
  private now = Date.now();
  private closed = false;

  constructor(
    private readonly reg: TemplateRegistry,
    private readonly opts: TemplateManagerOptions,
  ) {}

  /**
   * The templates of a (new) config file. Unchanged templates keep their daemons; a template whose daemons would
   * differ (rules, log, queue, user, key, selector) has them stopped and made again from the new definition on their
   * next event; a removed template's daemons are stopped for good. A new cap or idle policy applies at once. Values
   * refused before, and daemons that could not be made, are tried again.
   */
  configure(templates: readonly DaemonTemplate[], hostLogFile: string): void {
    this.hostLogFile = hostLogFile;
    for (const tenant of [...this.tenants.values()]) {
      const next = templates.find((t) => t.name === tenant.template.name);
      // A daemon that could not be made is tried again after a reload (its rules file or directory may be fixed).
      if (tenant.state === 'failed') {
        this.forget(tenant);
        continue;
      }
      if (next && sameTemplateDaemons(next, tenant.template)) {
        tenant.template = next;
        continue;
      }
      if (!next) tenant.orphan = true;
      else tenant.template = next;
      if (tenant.state === 'running' || tenant.state === 'creating') this.stop(tenant, next ? 'changed' : 'removed');
      else if (!next) this.forget(tenant);
    }
    this.refused.clear();
    for (const t of templates) if (!this.counters.has(t.name)) this.counters.set(t.name, newCounters());
    this.templates = [...templates];
  }

  /** One route per template, after the file's routes: the daemon of the container's value, made when first needed. */
  routes(): RouteConfig[] {
    return this.templates.map((t) => ({
      index: 0,
      contid: [],
      ...(t.container ? { container: t.container } : {}),
      types: null,
      keys: null,
      daemons: [],
      // Later routes (another template, `aux add`) see the event as well.
      continue: true,
      pos: t.pos,
      template: { name: t.name, key: t.key, resolve: (value, create) => this.resolve(t, value, create) },
    }));
  }

  private active(t: DaemonTemplate): number {
    let n = 0;
    for (const x of this.byValue.get(t.name)?.values() ?? []) if (x.state !== 'stopped' && x.state !== 'failed') n++;
    return n;
  }

  private count(t: DaemonTemplate, what: string, n = 1): void {
    const c = this.counters.get(t.name) ?? newCounters();
    this.counters.set(t.name, c);
    c[what] = (c[what] ?? 0) + n;
  }

  /** Records a value with no daemon once (until the set of remembered values fills up). */
  private refuse(
    t: DaemonTemplate,
    value: string,
    reason: 'over-max' | 'bad-value' | 'name-taken' | 'daemon-failed',
  ): null {
    this.count(t, 'unroutedEvents');
    const k = `${t.name}\0${value}`;
    const seen = this.refused.has(k);
    if (!seen && this.refused.size >= MAX_REFUSED) this.refused.clear();
    this.refused.set(k, this.generation);
    if (seen) return null;
    this.count(t, reason === 'over-max' ? 'overCapValues' : 'refusedValues');
    this.opts.record(
      MsgType.DAEMON_ERR,
      // The value comes from an annotation or label (up to 4 KiB, 24 KiB as hex): cut, so reason=, max= and res= stay
      // on the line.
      `op=template-refuse template=${t.name} value=${encodeUntrusted(cutUtf8(value, REFUSED_VALUE_MAX))} reason=${reason} max=${t.max} res=failed`,
    );
    return null;
  }

  /** The daemon of `value` (null: none; the event goes on down the route table). Called once per event. */
  resolve(t: DaemonTemplate, value: string, create: boolean): string | null {
    let values = this.byValue.get(t.name);
    const known = values?.get(value);
    if (!create) return known?.name ?? templateDaemonName(t.name, value);
    if (known && !known.orphan) {
      known.lastEvent = this.now;
      known.events++;
      if (known.state === 'failed') return this.refuse(t, value, 'daemon-failed');
      if (known.state === 'stopped') {
        if (this.active(t) >= t.max) return this.refuse(t, value, 'over-max');
        this.make(known);
      }
      return known.name;
    }
    if (this.closed) return null;
    if (this.refused.get(`${t.name}\0${value}`) === this.generation) {
      this.count(t, 'unroutedEvents');
      return null;
    }
    const name = templateDaemonName(t.name, value);
    if (name === null) return this.refuse(t, value, 'bad-value');
    const other = this.tenants.get(name);
    // Two values that sanitise to one name (a forged hash collision), or a daemon of the file or `aux add`: refused,
    // never shared.
    if (other || this.reg.has(name)) return this.refuse(t, value, 'name-taken');
    if (this.active(t) >= t.max) return this.refuse(t, value, 'over-max');
    const tenant: Tenant = {
      template: t,
      value,
      name,
      state: 'stopped',
      held: [],
      lastEvent: this.now,
      events: 1,
      made: 0,
      error: null,
      orphan: false,
      file: null,
    };
    if (!values) this.byValue.set(t.name, (values = new Map()));
    values.set(value, tenant);
    this.tenants.set(name, tenant);
    this.make(tenant);
    return name;
  }

  /**
   * An event for `name` while its daemon is being made or stopped: kept, in order, for the daemon once it runs.
   * undefined: not a template daemon being changed (the registry delivers it); false: the hold was full (dropped,
   * counted as the daemon's queue would).
   */
  hold(name: string, records: EventRecord[]): boolean | undefined {
    if (this.passes(name)) return undefined;
    const tenant = this.tenants.get(name)!;
    // Running, and its daemon went (`aux remove`): made again, like an idle one.
    if (tenant.state === 'running') this.make(tenant);
    if (tenant.held.length >= tenant.template.queue.depth) {
      this.count(tenant.template, 'heldDropped');
      return false;
    }
    // The records point into the kernel batch's buffer: copied, so a long hold keeps only what it needs.
    tenant.held.push(records.map((r) => ({ type: r.type, payload: Buffer.from(r.payload) })));
    this.count(tenant.template, 'heldEvents');
    return true;
  }

  /**
   * Whether hold() lets an event for `name` through now: no tenant of that name, or one whose daemon runs, or one
   * neither running nor being made or stopped (without a side effect: the registry asks before streaming an event).
   */
  passes(name: string): boolean {
    const tenant = this.tenants.get(name);
    if (!tenant) return true;
    if (tenant.state === 'running') return this.reg.running(name);
    return tenant.state !== 'creating' && tenant.state !== 'stopping';
  }

  /** `name` belongs to a tenant of a template, made or not (a stopped one comes back under it). */
  knows(name: string): boolean {
    return this.tenants.has(name);
  }

  /** Daemons with rules get only events their rules produced: true for a template daemon with rules, even unmade. */
  hasRules(name: string): boolean {
    return this.tenants.get(name)?.template.rules != null;
  }

  private serial(job: () => Promise<void>): void {
    this.chain = this.chain.then(job).catch((e: unknown) => {
      this.opts.diag.error({ err: (e as Error).message }, 'daemon template job failed');
    });
  }

  private make(tenant: Tenant): void {
    tenant.state = 'creating';
    this.serial(() => this.create(tenant));
  }

  private async create(tenant: Tenant): Promise<void> {
    const t = tenant.template;
    const name = tenant.name;
    try {
      if (this.closed || tenant.orphan) throw new Error('daemon templates are closing');
      const part = templateValuePart(tenant.value, 62 - t.name.length)!;
      const file = t.logPattern
        ? templateLogFile(t.logPattern, t.name, part, name)
        : defaultAuxLogFile(this.hostLogFile, name, t.user);
      if (!file) throw new Error(`log file pattern ${t.logPattern} gives no file under its directory`);
      const cfg = templateDaemonConfig(t, name, file);
      // An `aux add` (or the config file) took the name while this tenant was stopped: never make it over theirs.
      if (this.reg.has(name)) throw new Error(`daemon name ${name} is taken by another daemon`);
      const others = this.reg.configs().filter((d) => d.name !== name);
      if (others.some((d) => d.log.file === file) || file === this.hostLogFile)
        throw new Error(`log file ${file} is already used by another daemon`);
      // Tenants not running now keep their log too (a stopped one comes back to it): two templates whose patterns
      // meet, or values chosen to meet, must not make a second daemon write the first one's trail.
      for (const other of this.tenants.values()) {
        if (other === tenant || other.file === null) continue;
        const clash = logNamesClash(file, other.file);
        if (clash) throw new Error(`log file ${file} ${clash} the log of template daemon ${other.name}`);
      }
      const placement = auxLogProblem(
        { name, user: cfg.user, file },
        this.hostLogFile,
        others.map((d) => ({ name: d.name, user: d.user, file: d.log.file })),
      );
      if (placement) throw new Error(placement);
      let commands: RuleCommand[] = [];
      if (t.rules) {
        commands = loadRulesPath(t.rules);
        auxRules(name, commands);
      }
      prepareAuxLogDir(cfg);
      tenant.file = file;
      await this.reg.addRuntimeDaemon(cfg, [], commands);
      const again = tenant.made > 0;
      tenant.made++;
      this.count(t, 'created');
      this.opts.record(
        MsgType.DAEMON_CONFIG,
        `op=template-add template=${t.name} key=${encodeUntrusted(t.keyText)} value=${encodeUntrusted(tenant.value)} daemon=${name} log=${encodeUntrusted(file)} again=${again ? 'yes' : 'no'} res=success`,
      );
    } catch (e) {
      tenant.state = 'failed';
      this.generation++;
      tenant.error = e instanceof AuditmuxError || e instanceof Error ? e.message : String(e);
      this.count(t, 'failures');
      this.opts.record(
        MsgType.DAEMON_ERR,
        `op=template-add template=${t.name} value=${encodeUntrusted(tenant.value)} daemon=${name} reason=${encodeUntrusted(tenant.error)} res=failed`,
      );
      this.opts.diag.warn({ template: t.name, daemon: name, err: tenant.error }, 'daemon template: daemon not made');
      this.release(tenant);
      if (tenant.orphan) this.forget(tenant);
      else this.trimStopped(t);
      return;
    }
    // Synchronously, before any other event is read: the held events first, then new ones straight to the queue.
    tenant.state = 'running';
    tenant.error = null;
    const held = tenant.held;
    tenant.held = [];
    for (const records of held) if (this.reg.deliver(name, records) === false) this.count(t, 'heldDropped');
    if (this.closed) await this.reg.removeDaemon(name).catch(() => undefined);
  }

  /** Held events with no daemon to go to: to the host log, as an event no route took. */
  private release(tenant: Tenant): void {
    const write = this.opts.hostLog();
    for (const records of tenant.held) {
      if (write) write(records);
      else this.count(tenant.template, 'heldDropped');
    }
    tenant.held = [];
  }

  private stop(tenant: Tenant, reason: 'idle' | 'changed' | 'removed'): void {
    tenant.state = 'stopping';
    this.serial(async () => {
      // A tenant still being made stops once it runs (the jobs are in order); one that failed has nothing to stop.
      if (tenant.state !== 'stopping' && tenant.state !== 'running') return;
      tenant.state = 'stopping';
      if (this.reg.has(tenant.name)) await this.reg.removeDaemon(tenant.name);
      const t = tenant.template;
      if (reason === 'idle') this.count(t, 'stoppedIdle');
      this.opts.record(
        MsgType.DAEMON_CONFIG,
        `op=template-stop template=${t.name} daemon=${tenant.name} reason=${reason} events=${tenant.events} res=success`,
      );
      if (tenant.orphan || this.closed) {
        this.release(tenant);
        this.forget(tenant);
      } else if (tenant.held.length) {
        // Events came while it was writing its queue: it is made again at once, and they go first.
        tenant.state = 'creating';
        await this.create(tenant);
      } else {
        tenant.state = 'stopped';
        this.generation++;
        this.trimStopped(t);
      }
    });
  }

  private forget(tenant: Tenant): void {
    this.generation++;
    this.tenants.delete(tenant.name);
    const values = this.byValue.get(tenant.template.name);
    if (values?.get(tenant.value) === tenant) values.delete(tenant.value);
  }

  /**
   * Keeps at most MAX_STOPPED stopped and MAX_STOPPED failed tenants per template, forgetting the least recent. A
   * failed one does not count against `max`: without this, each new value of a failing template (its rules file
   * gone, a full disk) added a tenant for good (20,000 values, a 20 MB status answer).
   */
  private trimStopped(t: DaemonTemplate): void {
    for (const state of ['stopped', 'failed'] as const) {
      const idle = [...(this.byValue.get(t.name)?.values() ?? [])].filter((x) => x.state === state);
      idle.sort((a, b) => a.lastEvent - b.lastEvent);
      for (const x of idle.slice(0, Math.max(0, idle.length - MAX_STOPPED))) this.forget(x);
    }
  }

  /** The registry removed a daemon (`aux remove`): its tenant is made again on its next event. */
  removed(name: string): void {
    const tenant = this.tenants.get(name);
    if (tenant && tenant.state === 'running') {
      tenant.state = 'stopped';
      this.generation++;
    }
  }

  /** Every 250 ms from the host's tick: the coarse clock of `lastEvent`, and idle daemons stopped. */
  tick(now: number): void {
    this.now = now;
    for (const tenant of this.tenants.values()) {
      const idle = tenant.template.idle;
      if (tenant.state === 'running' && idle.action === 'stop' && now - tenant.lastEvent >= idle.afterMs)
        this.stop(tenant, 'idle');
    }
  }

  /** Waits for every daemon being made or stopped (reload and `sync` wait for them before going on). */
  async settle(): Promise<void> {
    for (let last: Promise<void> | null = null; last !== this.chain;) {
      last = this.chain;
      await last;
    }
  }

  /** Shutdown: nothing more is made; what is held goes to the host log. */
  async close(): Promise<void> {
    this.closed = true;
    await this.settle();
    for (const tenant of this.tenants.values()) this.release(tenant);
  }

  /** `template`, `templateValue` for a daemon a template made (aux list, status). */
  tag(name: string): Record<string, unknown> {
    const t = this.tenants.get(name);
    return t ? { template: t.template.name, templateValue: t.value } : {};
  }

  /** Template daemons without a running daemon (stopped, failed, being made): rows for `aux list`. */
  idleRows(running: (name: string) => boolean): Array<Record<string, unknown>> {
    return [...this.tenants.values()]
      .filter((t) => !running(t.name))
      .map((t) => ({
        name: t.name,
        state: t.state,
        isolation: t.template.isolation,
        pid: 0,
        ...this.tag(t.name),
        ...(t.error ? { lastError: t.error } : {}),
      }));
  }

  status(): Record<string, unknown> {
    return Object.fromEntries(
      this.templates.map((t) => {
        const tenants = [...(this.byValue.get(t.name)?.values() ?? [])];
        return [
          t.name,
          {
            key: t.keyText,
            max: t.max,
            idle: `${t.idle.action}${t.idle.action === 'stop' ? ` after ${t.idle.afterMs / 1000}s` : ''}`,
            active: this.active(t),
            stopped: tenants.filter((x) => x.state === 'stopped').length,
            ...(this.counters.get(t.name) ?? newCounters()),
            daemons: Object.fromEntries(
              tenants.map((x) => [x.name, { value: x.value, state: x.state, events: x.events, held: x.held.length }]),
            ),
          },
        ];
      }),
    );
  }
}
