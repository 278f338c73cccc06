// Per-event routing in the host: contid resolution (kernel records or the tracker), route table, owner tags, fan-out.
import { Buffer } from 'node:buffer';
import {
  AUDITMUX_CONTAINER_ID,
  AUDIT_ARCH_I386,
  AUDIT_CID_UNSET,
  CONTID_CONTAINER_ID,
  MsgType,
} from '../kernel/constants';
import type { EventRecord } from '../records/event';
import { formatChain, parseChains, type Chain } from '../contid/chain';
import type { ContidTracker } from '../contid/tracker';
import { Router, type RouteDecision } from './router';
import {
  appendBytes,
  decodeKeys,
  encodeKeys,
  fieldEnd,
  fieldInt,
  fieldText,
  findField,
  hexAt,
  intAt,
  joinBytes,
  replaceField,
  stampEnd,
} from '../records/fields';
import { bodyStartOf } from '../records/record';
import { Machine } from '../vocab/arch';
import { syscallNumber } from '../vocab/syscalls';

/** The key auditmux adds to an auxiliary daemon's rules in the kernel, to match events back to their owner. */
export const OWNER_TAG_PREFIX = 'auditmux-aux:';
/**
 * The key of a shared kernel rule whose owners' keys and tags do not fit the kernel's 256 bytes: it names a group
 * whose owners and keys the rule union keeps (PipelineOptions.keyGroup).
 */
export const GROUP_TAG_PREFIX = 'auditmux-group:';
/** A group tag's auxiliary owners and its rule's keys (every owner's, the host's included). */
export interface KeyGroup {
  owners: readonly string[];
  keys: readonly string[];
  /** Each owner's own keys ('host' for the host's): what each log shows. */
  byOwner: ReadonlyMap<string, readonly string[]>;
}
/** The key of the fork/exit tracking rule the host adds on mainline kernels while processes carry contids. */
export const TRACK_KEY = 'auditmux-contid-track';

/** Numbers of named syscalls from the generated tables, built once at load: per event it is one Set lookup. */
function syscallSet(machine: number, names: readonly string[]): ReadonlySet<number> {
  return new Set(
    names.map((n) => {
      const nr = syscallNumber(n, machine);
      if (nr === undefined) throw new Error(`syscall ${n} is missing from the table of machine ${machine}`);
      return nr;
    }),
  );
}
const FORKS = ['clone', 'fork', 'vfork', 'clone3'];
const EXITS = ['exit_group', 'exit'];
const EXECS = ['execve', 'execveat'];
const FORK_SYSCALLS_X86_64 = syscallSet(Machine.X86_64, FORKS);
const EXIT_SYSCALLS_X86_64 = syscallSet(Machine.X86_64, EXITS);
const FORK_SYSCALLS_I386 = syscallSet(Machine.X86, FORKS);
const EXIT_SYSCALLS_I386 = syscallSet(Machine.X86, EXITS);
const EXEC_SYSCALLS_X86_64 = syscallSet(Machine.X86_64, EXECS);
const EXEC_SYSCALLS_I386 = syscallSet(Machine.X86, EXECS);

export interface Destination {
  /** Daemon name, or null for the host log. */
  daemon: string | null;
  records: EventRecord[];
}

/** One event routed: where it goes, and the container it came from (per-container counters read it). */
export interface RoutedEvent {
  destinations: Destination[];
  chain: Chain | null;
}

export interface PipelineCounters {
  events: number;
  routed: number;
  unrouted: number;
  withContid: number;
  trackingOnly: number;
  fanout: number;
}

export interface PipelineOptions {
  router: Router;
  tracker: ContidTracker;
  /** The kernel emits CONTAINER_ID records itself (contid patch set): no tracking, no synthesized records. */
  contidKernel: boolean;
  /** Daemons with a rule set: they get only events their own (tagged) rules produced. A Set will do. */
  daemonsWithRules: { has(name: string): boolean };
  keep: 'all' | 'unrouted';
  /** A group tag's owners and keys (the kernel session's rule union); an unknown tag has none. */
  keyGroup?: (tag: string) => KeyGroup | undefined;
}

/** What routing found out about one event. */
export interface EventView {
  chains: Chain[];
  types: number[];
  keys: string[];
  owners: string[];
  /** Every key of the SYSCALL record as the kernel wrote it, tags included (decoded once per event). */
  fullKeys: string[];
  /** The fork/exit tracking rule produced the event. */
  tracking: boolean;
  /** The key field holds what no log shows as it is (owner tags, the tracking key, a group tag): rewritten per log. */
  rewriteKeys: boolean;
  syscallIndex: number;
}

/** The keys of one SYSCALL key field, decoded and sorted out (owner tags, the tracking key, the user's keys). */
interface KeySet {
  /** The field's bytes as the kernel wrote them (latin1), to recognise the next event with the same keys. */
  raw: string;
  full: string[];
  user: string[];
  owners: string[];
  tracking: boolean;
  /** See EventView.rewriteKeys. */
  rewrite: boolean;
}

const NO_CHAINS: Chain[] = [];
/** What links a SYSCALL record to the CONTAINER_ID record before it (the patch set's form). */
const RECORD_1 = Buffer.from(' record=1', 'latin1');
/** An event without a SYSCALL record has no keys. */
const NO_KEYS: KeySet = { raw: '', full: [], user: [], owners: [], tracking: false, rewrite: false };

/** How many fields past the previous one the next wanted field may be looked for by walking, before a search. */
const WALK_FIELDS = 6;

/**
 * The value start of field `name`, looked for first among the few fields after the one that ended at `prevEnd` (the
 * kernel's order: arch syscall success exit a0 a1 a2 a3 items ppid pid ...), by walking spaces; else the first
 * `name=` in the body, as findField finds it. In the kernel's format both find the same field: the fields before
 * `prevEnd` are the ones read before this one, and values with a space are hex-encoded, so none hides a `name=`.
 */
function nextField(b: Buffer, prevEnd: number, body: number, name: string): number {
  const n = b.length;
  let at = prevEnd + 1;
  for (let k = 0; prevEnd >= 0 && k < WALK_FIELDS && at < n; k++) {
    const vs = fieldAt(b, at, name);
    if (vs >= 0) return vs;
    // Bare values (no quotes) up to the next space; a quote means a value this walk does not read: search instead.
    while (at < n && b[at] !== 0x20) {
      if (b[at] === 0x22 || b[at] === 0x27) return findField(b, body, name);
      at++;
    }
    at++;
  }
  return findField(b, body, name);
}

/** The value start when field `name` begins exactly at `at`, else -1. */
function fieldAt(b: Buffer, at: number, name: string): number {
  const end = at + name.length;
  return end < b.length && b[end] === 0x3d && sameLatin1(b, at, end, name) ? end + 1 : -1;
}

/**
 * Where the value of the SYSCALL record's key field starts: the kernel writes `key=` last, so it is looked for from
 * the end and taken when its value ends the record; otherwise the first `key=`, as findField finds it. In the
 * kernel's format that is the same field (one key field, and values with a space are hex-encoded).
 */
function keyField(b: Buffer, body: number): number {
  const n = b.length;
  for (let i = n - 5; i >= body; i--) {
    if (b[i] === 0x20 && b[i + 1] === 0x6b && b[i + 2] === 0x65 && b[i + 3] === 0x79 && b[i + 4] === 0x3d) {
      const vs = i + 5;
      return fieldEnd(b, vs) === n ? vs : findField(b, body, 'key');
    }
    // Key values are short: past a few hundred bytes from the end, the field is not where the kernel puts it.
    if (n - i > 512) break;
  }
  return findField(b, body, 'key');
}

/** b[start, end) is the latin1 text `s`, compared byte by byte (key fields are short). */
function sameLatin1(b: Buffer, start: number, end: number, s: string): boolean {
  if (end - start !== s.length) return false;
  for (let i = 0; i < s.length; i++) if (b[start + i] !== s.charCodeAt(i)) return false;
  return true;
}

/** Sets destination `n` (reusing the object there when `reuse`) and returns the next index. */
function put(out: Destination[], n: number, reuse: boolean, daemon: string | null, records: EventRecord[]): number {
  const d = reuse ? out[n] : undefined;
  if (d) {
    d.daemon = daemon;
    d.records = records;
  } else out[n] = { daemon, records };
  return n + 1;
}

export class Pipeline {
  readonly counters: PipelineCounters = {
    events: 0,
    routed: 0,
    unrouted: 0,
    withContid: 0,
    trackingOnly: 0,
    fanout: 0,
  };
  /** A result for a caller that reads each routed event before it routes the next (`route`'s `into`). */
  readonly scratch: RoutedEvent = { destinations: [], chain: null };
  private readonly viewScratch: EventView = {
    chains: NO_CHAINS,
    types: [],
    keys: [],
    owners: [],
    fullKeys: [],
    tracking: false,
    rewriteKeys: false,
    syscallIndex: -1,
  };
  private readonly decisionScratch: RouteDecision = { daemons: [], matched: [] };
  /** The key field of the last event: a rule's events come in runs, so its decoded keys are kept for the next. */
  private lastKeys: KeySet = { raw: '(null)', full: [], user: [], owners: [], tracking: false, rewrite: false };
  private lastChain: Chain | null = null;
  /** The event being routed and its records as shape() made them for every destination (route() clears both). */
  private shapedFrom: EventRecord[] | null = null;
  private shaped: EventRecord[] | null = null;
  private lastTail = Buffer.alloc(0);
  /** route() counted its last event as produced by the tracking rule alone (uncount() takes it back). */
  private lastTrackingOnly = false;
  constructor(public opts: PipelineOptions) {}

  /**
   * Takes back what route() counted for `r`, its last result: an event let go after routing (its head could not be
   * written) is routed again when it is made whole, and counted then.
   */
  uncount(r: RoutedEvent): void {
    const c = this.counters;
    c.events--;
    if (r.chain !== null) c.withContid--;
    let daemons = 0;
    for (const d of r.destinations) if (d.daemon !== null) daemons++;
    if (daemons) c.routed--;
    else c.unrouted--;
    if (daemons > 1) c.fanout -= daemons - 1;
    if (this.lastTrackingOnly) c.trackingOnly--;
  }

  /** The event's keys from the SYSCALL key field (quoted, hex-joined or (null)), decoded once per distinct field. */
  private keySet(sc: Buffer, body: number): KeySet {
    const vs = keyField(sc, body);
    const ve = vs < 0 ? -1 : fieldEnd(sc, vs);
    const last = this.lastKeys;
    // Compared as bytes: no string per event when the keys are the last event's (the usual case).
    if (vs < 0 ? last.raw === '(null)' : sameLatin1(sc, vs, ve, last.raw)) return last;
    const raw = vs < 0 ? '(null)' : sc.toString('latin1', vs, ve);
    const full = decodeKeys(vs < 0 ? undefined : raw);
    const owners: string[] = [];
    const user: string[] = [];
    let tracking = false;
    let unknownGroup = false;
    let grouped = false;
    const sort = (k: string): void => {
      if (k.startsWith(OWNER_TAG_PREFIX)) owners.push(k.slice(OWNER_TAG_PREFIX.length));
      else if (k === TRACK_KEY) tracking = true;
      else user.push(k);
    };
    for (const k of full) {
      if (!k.startsWith(GROUP_TAG_PREFIX)) sort(k);
      else {
        grouped = true;
        // A group the union does not know names no one.
        const g = this.opts.keyGroup?.(k);
        if (!g) unknownGroup = true;
        else {
          owners.push(...g.owners);
          for (const gk of g.keys) sort(gk);
        }
      }
    }
    const set = { raw, full, user, owners, tracking, rewrite: grouped || tracking || owners.length > 0 };
    // Not kept for the next event when a group was unknown: the union may know it by then.
    if (!unknownGroup) this.lastKeys = set;
    return set;
  }

  /** Reads the event, feeding the tracker (forks, exits) on the way. */
  view(records: readonly EventRecord[], into?: EventView): EventView {
    // `into`: the pipeline's own view, refilled event after event by route() (no arrays or objects per event).
    // Refilled by index and cut to size at the end: `length = 0` would drop the array's storage every event.
    const types: number[] = into ? into.types : [];
    let syscallIndex = -1;
    let chains: Chain[] = NO_CHAINS;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      types[i] = r.type;
      if (r.type === MsgType.SYSCALL && syscallIndex < 0) syscallIndex = i;
      if (this.opts.contidKernel && r.type === CONTID_CONTAINER_ID) {
        const t = fieldText(r.payload, 'contid');
        const parsed = t ? parseChains(t) : null;
        if (parsed) chains = parsed.filter((c) => c[0] !== AUDIT_CID_UNSET);
      }
    }
    if (types.length !== records.length) types.length = records.length;
    let ks: KeySet | null = null;
    if (syscallIndex >= 0) {
      const sc = records[syscallIndex]!.payload;
      const body = bodyStartOf(sc);
      ks = this.keySet(sc, body);
      if (!this.opts.contidKernel && !this.opts.tracker.quiet) {
        // Byte-level reads (digits parsed in place, no string per field), each starting where the kernel's order
        // puts the field (arch syscall success exit a0..a3 items ppid pid): mostly no search at all.
        const archAt = findField(sc, body, 'arch');
        const i386 = archAt >= 0 && hexAt(sc, archAt) === AUDIT_ARCH_I386;
        const nrAt = nextField(sc, archAt < 0 ? -1 : fieldEnd(sc, archAt), body, 'syscall');
        const nr = nrAt < 0 ? -1 : (intAt(sc, nrAt) ?? -1);
        const exitAt = nextField(sc, nrAt < 0 ? -1 : fieldEnd(sc, nrAt), body, 'exit');
        const exit = exitAt < 0 ? -1 : (intAt(sc, exitAt) ?? -1);
        const ppidAt = nextField(sc, exitAt < 0 ? -1 : fieldEnd(sc, exitAt), body, 'ppid');
        const ppid = ppidAt < 0 ? 0 : (intAt(sc, ppidAt) ?? 0);
        const pidAt = nextField(sc, ppidAt < 0 ? -1 : fieldEnd(sc, ppidAt), body, 'pid');
        const pid = pidAt < 0 ? 0 : (intAt(sc, pidAt) ?? 0);
        if ((i386 ? FORK_SYSCALLS_I386 : FORK_SYSCALLS_X86_64).has(nr) && exit > 0) this.opts.tracker.onFork(pid, exit);
        else if (exit === 0 && (i386 ? EXEC_SYSCALLS_I386 : EXEC_SYSCALLS_X86_64).has(nr))
          this.opts.tracker.noteExec(pid);
        const chain = this.opts.tracker.lookup(pid, ppid);
        if (chain) chains = [chain];
        if ((i386 ? EXIT_SYSCALLS_I386 : EXIT_SYSCALLS_X86_64).has(nr)) this.opts.tracker.onExit(pid);
      }
    } else if (!this.opts.contidKernel && !this.opts.tracker.idle && records.length) {
      // User-space messages carry the sender's pid.
      const first = records[0]!;
      if ((first.type >= 1100 && first.type < 1200) || (first.type >= 2100 && first.type < 3000)) {
        const pid = fieldInt(first.payload, 'pid');
        const chain = pid ? this.opts.tracker.lookupUser(pid) : null;
        if (chain) chains = [chain];
      }
    }
    // The key arrays are shared with the next events of the same keys: nothing downstream changes them.
    const k = ks ?? NO_KEYS;
    if (!into)
      return {
        chains,
        types,
        keys: k.user,
        owners: k.owners,
        fullKeys: k.full,
        tracking: k.tracking,
        rewriteKeys: k.rewrite,
        syscallIndex,
      };
    into.chains = chains;
    into.keys = k.user;
    into.owners = k.owners;
    into.fullKeys = k.full;
    into.tracking = k.tracking;
    into.rewriteKeys = k.rewrite;
    into.syscallIndex = syscallIndex;
    return into;
  }

  /** The route decision alone (for `auditmux route test`). */
  decide(v: EventView, into?: RouteDecision): RouteDecision {
    const d = this.opts.router.route(v, into);
    // Asked per destination (template daemons with rules are known only when asked: DaemonRegistry.rulesOwners).
    // The array is copied only when a destination must go.
    const rules = this.opts.daemonsWithRules;
    for (const name of d.daemons)
      if (rules.has(name) && !v.owners.includes(name)) {
        d.daemons = d.daemons.filter((n) => !rules.has(n) || v.owners.includes(n));
        break;
      }
    return d;
  }

  /**
   * Where an event goes and in what form: each destination gets the records with auditmux's tags removed from the
   * key field, and, on mainline kernels, a CONTAINER_ID record in the patch set's form for tagged processes.
   */
  route(
    records: EventRecord[],
    keysByOwner?: (owner: string | null, fullKeys: string[]) => readonly string[],
    into?: RoutedEvent,
  ): RoutedEvent {
    // `into`: the caller's result, reused event after event (it reads it before routing the next one); with it the
    // view, the decision and the destination objects are the pipeline's own, refilled for every event.
    const v = this.view(records, into ? this.viewScratch : undefined);
    // Produced only by the fork/exit tracking rule: state for the tracker, not an event anyone asked for.
    const onlyTracking = v.tracking && v.keys.length === 0 && v.owners.length === 0;
    const decision = this.decide(v, into ? this.decisionScratch : undefined);
    const result = into ?? { destinations: [], chain: null };
    const out = result.destinations;
    let n = 0;
    for (const d of decision.daemons) n = put(out, n, into !== undefined, d, this.shape(records, v, d, keysByOwner));
    if (!onlyTracking && (this.opts.keep === 'all' || decision.daemons.length === 0))
      n = put(out, n, into !== undefined, null, this.shape(records, v, null, keysByOwner));
    if (out.length !== n) out.length = n;
    this.shapedFrom = null;
    this.shaped = null;
    result.chain = v.chains[0] ?? null;
    // Counted once routed: a route that throws part-way (a bug; its event is made whole and routed again, or written
    // to the host log as it came) counts nothing, so status() never shows an event twice or half-counted.
    const c = this.counters;
    c.events++;
    if (v.chains.length) c.withContid++;
    const daemons = decision.daemons.length;
    if (daemons) c.routed++;
    else c.unrouted++;
    if (daemons > 1) c.fanout += daemons - 1;
    if (onlyTracking) c.trackingOnly++;
    this.lastTrackingOnly = onlyTracking;
    return result;
  }

  /**
   * `: record=1 contid=CHAIN` for the last chain asked about: a process tree's events share one chain object (the
   * tracker's entry), so a run of them formats it once.
   */
  private contidTail(chain: Chain): Buffer {
    if (chain !== this.lastChain) {
      this.lastChain = chain;
      this.lastTail = Buffer.from(`: record=1 contid=${formatChain(chain)}`, 'latin1');
    }
    return this.lastTail;
  }

  private shape(
    records: EventRecord[],
    v: EventView,
    owner: string | null,
    keysByOwner?: (owner: string | null, fullKeys: string[]) => readonly string[],
  ): EventRecord[] {
    const needsKeyRewrite = v.syscallIndex >= 0 && v.rewriteKeys;
    const synth = !this.opts.contidKernel && v.chains.length > 0 && v.syscallIndex >= 0;
    if (!needsKeyRewrite && !synth) return records;
    // Without a key to rewrite per owner every destination of the event gets the same records: shaped once (one
    // CONTAINER_ID record and one SYSCALL copy per event, not one per destination); nobody changes them.
    if (!needsKeyRewrite && this.shapedFrom === records) return this.shaped!;
    const out: EventRecord[] = [];
    for (let i = 0; i < records.length; i++) {
      let r = records[i]!;
      if (i === v.syscallIndex) {
        let p = r.payload;
        if (needsKeyRewrite) {
          const keys = keysByOwner ? keysByOwner(owner, v.fullKeys) : v.keys;
          p = replaceField(p, 'key', encodeKeys(keys));
        }
        if (synth) {
          const end = stampEnd(p);
          if (end > 0) {
            // The patch set logs CONTAINER_ID before the SYSCALL record it qualifies, linked by record=1: the event's
            // stamp, then `: record=1 contid=CHAIN` (the chain's bytes made once per chain, not per event).
            out.push({ type: AUDITMUX_CONTAINER_ID, payload: joinBytes(p, end, this.contidTail(v.chains[0]!)) });
            p = appendBytes(p, RECORD_1);
          }
        }
        r = { type: r.type, payload: p };
      }
      out.push(r);
    }
    if (!needsKeyRewrite) {
      this.shapedFrom = records;
      this.shaped = out;
    }
    return out;
  }
}
