// The host's kernel session: registration, host-wide settings, the rule union in the kernel, and the kernel handed back
// as it was found at stop.
import { statSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { AuditmuxError, RuleError } from '../errors';
import { assertTrustedRules } from '../trust';
import { AuditClient } from '../kernel/client';
import { AUDIT_FILTER_PREPEND, AUDIT_UID_UNSET, Feature, Field, Op } from '../kernel/constants';
import type { AuditSocket } from '../kernel/socket';
import type { AuditStatus } from '../kernel/wire';
import type { DaemonConfig, HostConfig, RouteConfig } from '../config';
import {
  applyRules,
  decodeRule,
  encodeRule,
  loadRulesPath,
  parseRules,
  ruleKeyMatches,
  rulesFilesIn,
  type Rule,
  type RuleCommand,
} from '../rules';
import type { Requester } from '../output/logfile';
import { TRACK_KEY, type KeyGroup } from '../routing/pipeline';
import { auxRules, mergeRules, type KernelRuleSet, type Owned } from './rule-union';
import { currentBootId } from '../containers/persist';
import {
  KERNEL_STATE_FILE,
  KERNEL_STATE_MAX_RULES,
  encodeKernelState,
  prepareStateDir,
  readKernelState,
  removeKernelState,
  ruleHash,
  writeKernelState,
  type KernelState,
} from './kernel-state';
import type { Diag } from './diagnostics';

/** Group tags kept once no loaded rule carries them (each a few hundred bytes; tenants churn them at each change). */
const KNOWN_GROUPS_MAX = 4096;

/**
 * A rules file changed this recently (by its ctime) may change again within the same tick of the file system's clock
 * (a jiffy; a second or two on some file systems) without its stamp changing: it is read again until it is older.
 */
const RULES_SETTLE_NS = 2_000_000_000n;

/** Who signalled when nobody can be asked: auditd's "unset" ids. */
export const UNKNOWN_REQUESTER: Requester = {
  auid: AUDIT_UID_UNSET,
  uid: AUDIT_UID_UNSET,
  ses: AUDIT_UID_UNSET,
  pid: -1,
};

export interface KernelSessionOptions {
  diag: Diag;
  /** The transport (an emulated kernel in tests); the native addon otherwise. */
  socket?: AuditSocket;
  /** The daemons and routes whose rules the kernel must hold (the registry's, read at each sync). */
  owners: () => { daemons: DaemonConfig[]; routes: RouteConfig[] };
  /** Counted here, reported in the host's status. */
  counters: { kernelLost: number };
  /** The wall clock in ns since the epoch, which file times are compared with (see RULES_SETTLE_NS); tests set it. */
  nowNs?: () => bigint;
  /**
   * The daemon's runtime directory, where KERNEL_STATE_FILE says what this daemon found and loaded while it holds the
   * kernel (see register); none: a daemon that did not stop cleanly leaves its rules and settings to nobody.
   */
  stateDir?: string | null;
}

/** What an auxiliary daemon's rules path was when last read (see auxRulesOf). */
interface RulesRead {
  path: string;
  stamp: string;
  /** What reading it threw, when it did: the same file gives the same error again. */
  error?: RuleError;
}

/** A runtime daemon's rules, checked and loaded before it is registered anywhere. */
export interface ExtraRules {
  name: string;
  commands: RuleCommand[];
}

export class KernelSession {
  private client: AuditClient | null = null;
  private found: { status: AuditStatus; loginuidImmutable: boolean } | null = null;
  /** Encoded kernel rules this daemon added, in the order added (removed again at stop). */
  private loaded: Buffer[] = [];
  /** Each auxiliary daemon's rules as last accepted (see auxRulesOf). */
  private readonly auxAccepted = new Map<string, Rule[]>();
  /**
   * Each auxiliary daemon's rules path as last read. Parsing a tenant's file at every sync (each `aux add`, each
   * template daemon, each reload) took ~1 s and ~170 MB for a 16 MiB file, per tenant, on the event loop.
   */
  private readonly auxRead = new Map<string, RulesRead>();
  private ruleSet: KernelRuleSet = { rules: [], keysByOwner: new Map(), groups: new Map() };
  /**
   * Every group tag (see mergeRules) of the rule sets loaded or being loaded, and, for a while, of those replaced:
   * events of a rule read after a sync replaced it (a backlog, a paused intake) still carry its tag. A tag names its
   * contents (a hash of the rule and every owner's keys), so an old entry is never wrong, only old; the oldest of
   * those no longer loaded go past KNOWN_GROUPS_MAX.
   */
  private readonly knownGroups = new Map<string, KeyGroup>();
  /** Syncs one after the other: two at once (a tracking change during a reload) interleaved their adds and deletes. */
  private syncQueue: Promise<void> = Promise.resolve();
  private hostCommands: RuleCommand[] = [];
  private lastKernelLost = 0;
  private features = 0;
  /** KERNEL_STATE_FILE once registered and its directory checked (see register); null: not kept. */
  private stateFile: string | null = null;
  /** This boot's id, which the file carries (a file from another boot describes nothing here). */
  private stateBoot = '';
  /** The text last written there: a sync that changed nothing writes nothing. */
  private stateText = '';
  /** A failed write is reported once until one succeeds again. */
  private stateWarned = false;
  /** Each loaded rule's hash (see ruleHash), computed once per buffer. */
  private readonly hashes = new WeakMap<Buffer, string>();
  /** The kernel has the contid patch set: it filters by contid and writes CONTAINER_ID records itself. */
  contidKernel = false;
  /** The fork/exit tracking rules are loaded (mainline kernels, while processes carry contids). */
  tracking = false;

  constructor(private readonly opts: KernelSessionOptions) {}

  /** Opens the connection and reads the kernel's state; records flow to `onRecords` once registered. */
  async open(
    receiveBuffer: number,
    onRecords: (type: number, buf: Buffer, start: number, end: number) => void,
    endBatch: () => void,
  ): Promise<AuditStatus> {
    // A 2 ms moderation window: at most ~500 wake-ups a second for a trickle, far inside the kernel's backlog.
    const clientOpts = this.opts.socket ? { socket: this.opts.socket } : { receiveBuffer, coalesceMs: 2 };
    const client = await AuditClient.open(clientOpts);
    this.client = client;
    const status = await client.getStatus();
    this.features = (await client.getFeatures()).features;
    this.lastKernelLost = status.lost;
    client.onRecords(onRecords, endBatch);
    client.onReceiveError((e) => this.opts.diag.warn({ err: e.message, code: e.code }, 'netlink receive error'));
    return status;
  }

  get isOpen(): boolean {
    return this.client !== null;
  }

  /**
   * Registration comes first: a refused second instance must not touch the running daemon's log or settings, nor its
   * state file. A state file left there means the daemon before this one did not stop cleanly (see takeOver).
   */
  async register(status: AuditStatus): Promise<void> {
    await this.client!.registerDaemon();
    this.found = { status, loginuidImmutable: (this.features & (1 << Feature.LOGINUID_IMMUTABLE)) !== 0 };
    if (this.opts.stateDir) await this.takeOver(this.opts.stateDir, status);
  }

  /**
   * The kernel as it is now is the previous daemon's work when that one was killed: its settings applied, its rules
   * loaded (adding them again gives EEXIST, which reads as someone else's). Its state file says what it found, which
   * this daemon restores in turn, and the hashes of the rules it loaded: those still in the kernel are this daemon's
   * to keep or delete. A file that cannot be used is reported and ignored; the kernel's rules it does not name stay
   * someone else's. Then this daemon's own state is written, before it changes anything.
   */
  private async takeOver(dir: string, status: AuditStatus): Promise<void> {
    const diag = this.opts.diag;
    const file = join(dir, KERNEL_STATE_FILE);
    try {
      prepareStateDir(dir);
    } catch (e) {
      diag.warn(
        { dir, err: (e as Error).message },
        "kernel state directory unusable: after a crash, the next daemon will not know which rules and settings were auditmux's",
      );
      return;
    }
    const boot = currentBootId();
    let prev: KernelState | null = null;
    try {
      prev = readKernelState(file, boot);
    } catch (e) {
      diag.warn({ file, err: (e as Error).message }, 'kernel state file refused and ignored');
    }
    if (prev) {
      const adopted: Buffer[] = [];
      const seen = new Set<string>();
      for (const raw of await this.client!.listRules()) {
        // As sent, or as the codec writes the kernel's copy back (the kernel returns some rules in its own form).
        let mine: Buffer | null = prev.rules.has(this.hashOf(raw)) ? raw : null;
        if (!mine) {
          try {
            const again = encodeRule(decodeRule(raw));
            if (prev.rules.has(this.hashOf(again))) mine = again;
          } catch {
            // Not a rule the codec reads: not one auditmux loaded.
          }
        }
        if (mine && !seen.has(this.hashOf(mine))) {
          seen.add(this.hashOf(mine));
          adopted.push(mine);
        }
      }
      this.found = { status: { ...status, ...prev.found }, loginuidImmutable: prev.loginuidImmutable };
      this.loaded = adopted;
      diag.warn(
        { file, pid: prev.pid, rules: adopted.length, found: prev.found },
        'the previous daemon did not stop cleanly: its kernel rules and the settings it found are taken back',
      );
    }
    this.stateFile = file;
    this.stateBoot = boot;
    this.saveState();
  }

  private hashOf(rule: Buffer): string {
    let h = this.hashes.get(rule);
    if (h === undefined) this.hashes.set(rule, (h = ruleHash(rule)));
    return h;
  }

  /** Writes the state file: the settings found and the hashes of `loaded` (and of `adding`, about to be added). */
  private saveState(adding: Buffer[] = []): void {
    const file = this.stateFile;
    const found = this.found;
    if (!file || !found) return;
    const rules = new Set<string>();
    for (const b of this.loaded) rules.add(this.hashOf(b));
    for (const b of adding) rules.add(this.hashOf(b));
    const s = found.status;
    const text = encodeKernelState(this.stateBoot, {
      found: {
        enabled: s.enabled,
        failure: s.failure,
        backlogLimit: s.backlogLimit,
        rateLimit: s.rateLimit,
        backlogWaitTime: s.backlogWaitTime,
      },
      loginuidImmutable: found.loginuidImmutable,
      rules,
      pid: process.pid,
    });
    if (text === this.stateText) return;
    try {
      writeKernelState(file, text);
      this.stateText = text;
      if (rules.size > KERNEL_STATE_MAX_RULES)
        this.opts.diag.warn(
          { file, rules: rules.size, written: KERNEL_STATE_MAX_RULES },
          'kernel state file: too many rules to name them all; after a crash the others stay loaded',
        );
      this.stateWarned = false;
    } catch (e) {
      if (!this.stateWarned)
        this.opts.diag.warn(
          { file, err: (e as Error).message },
          'kernel state file not written: after a crash, the next daemon may leave rules or settings of this one',
        );
      this.stateWarned = true;
    }
  }

  getStatus(): Promise<AuditStatus> {
    return this.client!.getStatus();
  }

  /** Host-wide settings, the host rules' settings, the rule union, then `enabled` (2 = immutable, strictly last). */
  async applyHostSettings(host: HostConfig, before?: AuditStatus): Promise<void> {
    const client = this.client!;
    before ??= await client.getStatus();
    const k = host.kernel;
    if (before.enabled === 2) {
      this.opts.diag.warn('kernel audit configuration is immutable (enabled=2): settings and rules left as they are');
      return;
    }
    await client.setStatus({ failure: k.failure, backlogLimit: k.backlogLimit, rateLimit: k.rateLimit });
    if (before.featureBitmap & 0x2) await client.setStatus({ backlogWaitTime: k.backlogWaitTime });
    if (k.resetLostOnStart) {
      await client.resetLost();
      this.lastKernelLost = 0;
    }
    if (k.loginuidImmutable) await client.setFeature(Feature.LOGINUID_IMMUTABLE, true, false);
    this.hostCommands = host.rules ? loadRulesPath(host.rules) : [];
    const settings = this.hostCommands.filter((c) => c.kind !== 'add' && c.kind !== 'enabled');
    const enables = this.hostCommands.filter((c) => c.kind === 'enabled');
    // In turn with syncs: -D's bookkeeping below would be undone by a sync running meanwhile.
    if (settings.length) await this.exclusive(() => this.applySettings(client, settings));
    await this.syncRules();
    await client.setStatus({ enabled: k.enabled === 2 ? 1 : k.enabled });
    if (enables.length) await applyRules(client, enables, { hostWide: true });
    else if (k.enabled === 2) await client.setStatus({ enabled: 2 });
  }

  private async applySettings(client: AuditClient, settings: RuleCommand[]): Promise<void> {
    const s = await applyRules(client, settings, { hostWide: true });
    for (const e of s.errors) this.opts.diag.warn({ rule: e.message }, 'host rule setting not applied');
    // -D (the first line of most rules files) or -d removed rules this session loaded: forgotten here too, or the
    // sync below would take them for loaded and, at a reload, leave the kernel with none of them.
    for (const c of settings) {
      if (c.kind === 'deleteAll')
        this.loaded = c.key === undefined ? [] : this.loaded.filter((b) => !ruleKeyMatches(decodeRule(b), c.key!));
      else if (c.kind === 'delete') {
        const gone = encodeRule(c.rule);
        this.loaded = this.loaded.filter((b) => !b.equals(gone));
      }
    }
  }

  /** The rules every owner wants in the kernel: host rules first, then each auxiliary daemon's, then tracking. */
  private desiredRules(extra?: ExtraRules): KernelRuleSet {
    const filtered: Owned[] = [];
    const host: Owned[] = [];
    const aux: Owned[] = [];
    const { daemons, routes } = this.opts.owners();
    for (const c of this.hostCommands) if (c.kind === 'add') host.push({ owner: 'host', rule: c.rule });
    const addAux = (name: string, rules: Rule[]): void => {
      const k = this.kernelFiltered(name, rules, routes);
      for (const rule of k ?? rules) (k ? filtered : aux).push({ owner: name, rule });
    };
    for (const d of daemons) {
      if (!d.rules || (extra && extra.name === d.name)) continue;
      addAux(d.name, this.auxRulesOf(d.name, d.rules));
    }
    if (extra) {
      const rules = auxRules(extra.name, extra.commands);
      this.auxAccepted.set(extra.name, rules);
      // Accepted from the commands it was added with, not from its file as last read: the next sync reads that.
      this.auxRead.delete(extra.name);
      addAux(extra.name, rules);
    }
    // A daemon gone takes its accepted rules along (a new one of the same name starts from its own file).
    const names = new Set(daemons.map((d) => d.name));
    if (extra) names.add(extra.name);
    for (const name of this.auxAccepted.keys()) if (!names.has(name)) this.auxAccepted.delete(name);
    for (const name of this.auxRead.keys()) if (!names.has(name)) this.auxRead.delete(name);
    if (this.tracking)
      for (const c of parseRules(trackingRulesText(), '<contid tracking>'))
        if (c.kind === 'add') aux.push({ owner: 'host', rule: c.rule });
    // The exit list is first-match: rules narrowed to a container by the kernel's contid field go before the host's,
    // or a host rule for the same syscall would always win and the container's daemon would never see its events.
    return mergeRules([...filtered, ...host, ...aux]);
  }

  /**
   * A daemon's rules as its file says now, checked; when the file no longer reads or checks (its owner rewrote it
   * after the daemon was accepted), the rules last accepted stay, with a warning: one daemon's file must not stop
   * every rule update of the host (a start, a reload, another daemon's `aux add`). A file whose stamp (see rulesStamp)
   * is the one last read is not read again: its rules are those accepted then, or its error the one it gave then.
   */
  private auxRulesOf(name: string, path: string): Rule[] {
    try {
      const stamp = rulesStamp(path, this.opts.nowNs?.() ?? BigInt(Date.now()) * 1_000_000n);
      const last = this.auxRead.get(name);
      if (stamp && last && last.path === path && last.stamp === stamp.stamp) {
        // Who may change the file depends on its directories too, which its stamp does not cover: checked each time,
        // first, as the loader does after reading.
        assertTrustedRules(path, stamp.dirFiles);
        if (last.error) throw last.error;
        const kept = this.auxAccepted.get(name);
        if (kept) return kept;
      }
      this.auxRead.delete(name);
      let rules: Rule[];
      try {
        rules = auxRules(name, loadRulesPath(path));
      } catch (e) {
        // A refused line stays refused while the file stays the same; a refused path (its trust) is not the file's.
        if (stamp && e instanceof RuleError && e.code !== 'E_UNTRUSTED')
          this.auxRead.set(name, { path, stamp: stamp.stamp, error: e });
        throw e;
      }
      this.auxAccepted.set(name, rules);
      if (stamp) this.auxRead.set(name, { path, stamp: stamp.stamp });
      return rules;
    } catch (e) {
      const kept = this.auxAccepted.get(name) ?? [];
      this.opts.diag.warn(
        { daemon: name, err: (e as Error).message, kept: kept.length },
        'auxiliary daemon rules not reloaded: the rules last accepted stay',
      );
      return kept;
    }
  }

  /**
   * On a kernel with the contid patch set, an auxiliary daemon routed only exact ids gets its rules once per id with
   * the `contid` field, so the kernel itself filters; ranges, nesting and `unset` stay with the userspace router.
   */
  private kernelFiltered(name: string, rules: Rule[], routes: RouteConfig[]): Rule[] | null {
    if (!this.contidKernel) return null;
    const ids: bigint[] = [];
    for (const r of routes) {
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

  /**
   * Makes the kernel hold exactly the desired rules that this daemon owns: adds what is missing, deletes the rest.
   * `extra`: a daemon about to be added, whose rules must load before it exists anywhere else.
   */
  async syncRules(extra?: ExtraRules): Promise<void> {
    const client = this.client!;
    return this.exclusive(() => this.syncOnce(client, extra));
  }

  /** Runs `fn` after every change of the kernel's rule list asked for before it (see syncQueue). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.syncQueue.then(fn);
    this.syncQueue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async syncOnce(client: AuditClient, extra?: ExtraRules): Promise<void> {
    const desired = this.desiredRules(extra);
    for (const [tag, g] of desired.groups) {
      this.knownGroups.delete(tag); // re-inserted last: the newest in the map's order
      this.knownGroups.set(tag, g);
    }
    await this.loadRules(client, desired);
    for (const tag of this.knownGroups.keys()) {
      if (this.knownGroups.size <= KNOWN_GROUPS_MAX) break;
      if (!desired.groups.has(tag)) this.knownGroups.delete(tag);
    }
  }

  private async loadRules(client: AuditClient, desired: KernelRuleSet): Promise<void> {
    const want = desired.rules.map((r) => encodeRule(r));
    // By their bytes as hex: a set lookup per rule, not a scan of every loaded rule (thousands of tenants' rules).
    const loadedHex = new Set(this.loaded.map((b) => b.toString('hex')));
    // Named before they are added: a daemon killed in between leaves none that its successor does not know of. One that
    // turns out to be someone else's (EEXIST) is named until the write after this sync.
    const adding = want.filter((b) => !loadedHex.has(b.toString('hex')));
    if (adding.length) this.saveState(adding);
    try {
      for (const b of want) {
        const hex = b.toString('hex');
        if (loadedHex.has(hex)) continue;
        try {
          await client.addRule(b);
          this.loaded.push(b);
          loadedHex.add(hex);
        } catch (e) {
          if (e instanceof AuditmuxError && e.code === 'EEXIST') continue; // loaded by someone else already: not ours
          throw e;
        }
      }
      const wantHex = new Set(want.map((b) => b.toString('hex')));
      const keep: Buffer[] = [];
      for (const b of this.loaded) {
        if (wantHex.has(b.toString('hex'))) keep.push(b);
        else await client.deleteRule(b).catch(() => undefined);
      }
      this.loaded = keep;
      this.ruleSet = desired;
    } finally {
      this.saveState();
    }
  }

  /** Loads or drops the fork/exit tracking rules; false when nothing changed. */
  async setTracking(on: boolean): Promise<boolean> {
    if (this.tracking === on || this.contidKernel) return false;
    this.tracking = on;
    try {
      await this.syncRules();
    } catch (e) {
      // Not loaded: the next call tries again instead of answering "no change".
      this.tracking = !on;
      throw e;
    }
    return true;
  }

  /** The keys an event's owner should see: its own rules' keys, not the tags auditmux added. */
  keysFor(owner: string | null, full: string[]): readonly string[] {
    const group = full.length === 1 ? this.keyGroup(full[0]!) : undefined;
    const owners = group ? group.byOwner : this.ruleSet.keysByOwner.get(full.join('\x01'));
    const userKeys = group ? group.keys.filter((k) => k !== TRACK_KEY) : full.filter((k) => !k.startsWith('auditmux-'));
    if (!owners) return userKeys;
    // The host log shows the host's own keys when a host rule produced the event, else every user key.
    return owners.get(owner ?? 'host') ?? (owner === null ? userKeys : []);
  }

  /** A group tag's owners and keys (see mergeRules and knownGroups). */
  keyGroup(tag: string): KeyGroup | undefined {
    return this.knownGroups.get(tag);
  }

  /** Counts what the kernel lost since the last look. */
  async poll(): Promise<void> {
    const s = await this.client!.getStatus();
    if (s.lost > this.lastKernelLost) this.opts.counters.kernelLost += s.lost - this.lastKernelLost;
    this.lastKernelLost = s.lost;
  }

  /** Who sent the signal being handled, as the kernel tells it. */
  async requester(): Promise<Requester> {
    try {
      const si = await this.client!.getSignalInfo(this.contidKernel);
      return { auid: si.uid, uid: si.uid, ses: AUDIT_UID_UNSET, pid: si.pid };
    } catch {
      return UNKNOWN_REQUESTER;
    }
  }

  /** `block` policy: while any such queue is full the host stops reading the kernel, whose backlog absorbs it. */
  setPaused(paused: boolean): void {
    if (paused) this.client?.pause();
    else this.client?.resume();
  }

  counters(): Record<string, unknown> {
    return { ...this.client?.counters };
  }

  /**
   * Waits (at most 5 s) until the kernel's backlog for us is empty and no record has arrived for a few moderation
   * windows: kauditd can lag behind on a busy machine, and what it still holds when we unregister is lost to us.
   */
  async waitQuiet(records: () => number): Promise<void> {
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
      quiet = records() === last && backlog === 0 ? quiet + 1 : 0;
      last = records();
    }
  }

  /** Our rules out, the settings as found, unregistered, every record the kernel still queued for us taken. */
  async close(records: () => number): Promise<void> {
    const client = this.client;
    if (!client) return;
    try {
      await this.exclusive(() => this.restore(client, records));
    } catch (e) {
      this.opts.diag.error({ err: (e as Error).message }, 'could not restore the kernel state');
    }
    // Records the kernel sent before it saw pid 0 may still sit in the socket: drain them before closing it.
    await this.waitQuiet(records);
    client.close();
  }

  private async restore(client: AuditClient, records: () => number): Promise<void> {
    const found = this.found;
    if (!found) return;
    const st = await client.getStatus();
    if (st.enabled !== 2) {
      for (const r of this.loaded) await client.deleteRule(r).catch(() => undefined);
      this.loaded = [];
      // Our rules are gone, so no new events of ours: take what the kernel still queues for us before letting go.
      await this.waitQuiet(records);
      await client.setStatus({
        enabled: found.status.enabled,
        failure: found.status.failure,
        backlogLimit: found.status.backlogLimit,
        rateLimit: found.status.rateLimit,
      });
      if (found.status.featureBitmap & 0x2) await client.setStatus({ backlogWaitTime: found.status.backlogWaitTime });
    }
    // Handed back: nothing left for a successor to take over. Removed while still registered, so that it can only be
    // this daemon's file; kept when the restore above failed, for the next daemon to try again.
    const file = this.stateFile;
    this.stateFile = null;
    if (file) {
      try {
        removeKernelState(file);
      } catch (e) {
        this.opts.diag.warn({ file, err: (e as Error).message }, 'kernel state file not removed');
      }
    }
    if (client.isRegistered) await client.unregisterDaemon();
  }
}

/** A file's identity and version: another file, or the same one written to, has another. */
function statStamp(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * The stamp of a rules path (a file, or a directory's *.rules files), taken before it is read: a change after the
 * stamp makes the next stamp differ, so what was read is never older than its stamp says. Null when the path does
 * not stat (the loader reports why) or changed within RULES_SETTLE_NS of `nowNs` (not kept: it may change unseen).
 */
function rulesStamp(path: string, nowNs: bigint): { stamp: string; dirFiles: string[] | undefined } | null {
  try {
    const st = statSync(path, { bigint: true });
    if (!st.isDirectory())
      return nowNs - st.ctimeNs < RULES_SETTLE_NS ? null : { stamp: statStamp(st), dirFiles: undefined };
    // A directory's own times change with any entry in it; its *.rules files (which, and each one's stamp) are read.
    const dirFiles = rulesFilesIn(path);
    const parts = [`${st.dev}:${st.ino}`];
    let newest = 0n;
    for (const f of dirFiles) {
      const fst = statSync(f, { bigint: true });
      parts.push(`${f}=${statStamp(fst)}`);
      if (fst.ctimeNs > newest) newest = fst.ctimeNs;
    }
    return nowNs - newest < RULES_SETTLE_NS ? null : { stamp: parts.join('\n'), dirFiles };
  } catch {
    return null;
  }
}

function trackingRulesText(): string {
  return [
    `-a always,exit -F arch=b64 -S clone,fork,vfork,clone3,exit_group -F key=${TRACK_KEY}`,
    `-a always,exit -F arch=b32 -S clone,fork,vfork,clone3,exit_group -F key=${TRACK_KEY}`,
  ].join('\n');
}
