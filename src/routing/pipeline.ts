// Per-event routing in the host: contid resolution (kernel records or the tracker), route table, owner tags, fan-out.
import { AUDITMUX_CONTAINER_ID, AUDIT_CID_UNSET, CONTID_CONTAINER_ID, MsgType } from '../kernel/constants';
import type { EventRecord } from '../records/event';
import { formatChain, parseChains, type Chain } from '../contid/chain';
import type { ContidTracker } from '../contid/tracker';
import { Router, type RouteDecision } from './router';
import {
  appendField,
  decodeKeys,
  encodeKeys,
  fieldHex,
  fieldInt,
  fieldText,
  replaceField,
  stampOf,
} from '../records/fields';
import { bodyStartOf } from '../records/record';

/** The key auditmux adds to an auxiliary daemon's rules in the kernel, to match events back to their owner. */
export const OWNER_TAG_PREFIX = 'auditmux-aux:';
/** The key of the fork/exit tracking rule the host adds on mainline kernels while processes carry contids. */
export const TRACK_KEY = 'auditmux-contid-track';

const FORK_SYSCALLS_X86_64 = new Set([56, 57, 58, 435]); // clone, fork, vfork, clone3
const EXIT_SYSCALLS_X86_64 = new Set([231, 60]); // exit_group, exit
const FORK_SYSCALLS_I386 = new Set([120, 2, 190, 435]);
const EXIT_SYSCALLS_I386 = new Set([252, 1]);

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
  /** Daemons with a rule set: they get only events their own (tagged) rules produced. */
  daemonsWithRules: ReadonlySet<string>;
  keep: 'all' | 'unrouted';
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
  syscallIndex: number;
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
  constructor(public opts: PipelineOptions) {}

  /** Reads the event, feeding the tracker (forks, exits) on the way. */
  view(records: readonly EventRecord[]): EventView {
    const types: number[] = [];
    let syscallIndex = -1;
    let chains: Chain[] = [];
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      types.push(r.type);
      if (r.type === MsgType.SYSCALL && syscallIndex < 0) syscallIndex = i;
      if (this.opts.contidKernel && r.type === CONTID_CONTAINER_ID) {
        const t = fieldText(r.payload, 'contid');
        const parsed = t ? parseChains(t) : null;
        if (parsed) chains = parsed.filter((c) => c[0] !== AUDIT_CID_UNSET);
      }
    }
    let keys: string[] = [];
    if (syscallIndex >= 0) {
      const sc = records[syscallIndex]!.payload;
      const body = bodyStartOf(sc);
      keys = decodeKeys(fieldText(sc, 'key', body));
      if (!this.opts.contidKernel) {
        // Byte-level reads (a cached needle, memmem, digits parsed in place): no string per field.
        const i386 = fieldHex(sc, 'arch', body) === 0x40000003;
        const nr = fieldInt(sc, 'syscall', body) ?? -1;
        const exit = fieldInt(sc, 'exit', body) ?? -1;
        const ppid = fieldInt(sc, 'ppid', body) ?? 0;
        const pid = fieldInt(sc, 'pid', body) ?? 0;
        if ((i386 ? FORK_SYSCALLS_I386 : FORK_SYSCALLS_X86_64).has(nr) && exit > 0) this.opts.tracker.onFork(pid, exit);
        const chain = this.opts.tracker.lookup(pid, ppid);
        if (chain) chains = [chain];
        if ((i386 ? EXIT_SYSCALLS_I386 : EXIT_SYSCALLS_X86_64).has(nr)) this.opts.tracker.onExit(pid);
      }
    } else if (!this.opts.contidKernel && !this.opts.tracker.idle && records.length) {
      // User-space messages carry the sender's pid.
      const first = records[0]!;
      if ((first.type >= 1100 && first.type < 1200) || (first.type >= 2100 && first.type < 3000)) {
        const pid = fieldInt(first.payload, 'pid');
        const chain = pid ? this.opts.tracker.lookup(pid, 0) : null;
        if (chain) chains = [chain];
      }
    }
    const owners: string[] = [];
    const userKeys: string[] = [];
    for (const k of keys) {
      if (k.startsWith(OWNER_TAG_PREFIX)) owners.push(k.slice(OWNER_TAG_PREFIX.length));
      else if (k !== TRACK_KEY) userKeys.push(k);
    }
    return { chains, types, keys: userKeys, owners, fullKeys: keys, tracking: keys.includes(TRACK_KEY), syscallIndex };
  }

  /** The route decision alone (for `auditmux route test`). */
  decide(v: EventView): RouteDecision {
    const d = this.opts.router.route({ chains: v.chains, types: v.types, keys: v.keys });
    d.daemons = d.daemons.filter((name) => !this.opts.daemonsWithRules.has(name) || v.owners.includes(name));
    return d;
  }

  /**
   * Where an event goes and in what form: each destination gets the records with auditmux's tags removed from the
   * key field, and, on mainline kernels, a CONTAINER_ID record in the patch set's form for tagged processes.
   */
  route(records: EventRecord[], keysByOwner?: (owner: string | null, fullKeys: string[]) => string[]): RoutedEvent {
    this.counters.events++;
    const v = this.view(records);
    if (v.chains.length) this.counters.withContid++;
    const onlyTracking = v.tracking && v.keys.length === 0 && v.owners.length === 0;
    const decision = this.decide(v);
    const out: Destination[] = [];
    const shaped = (owner: string | null): EventRecord[] => this.shape(records, v, owner, keysByOwner);
    for (const d of decision.daemons) out.push({ daemon: d, records: shaped(d) });
    if (decision.daemons.length) this.counters.routed++;
    else this.counters.unrouted++;
    if (decision.daemons.length > 1) this.counters.fanout += decision.daemons.length - 1;
    if (onlyTracking) {
      // Produced only by the fork/exit tracking rule: state for the tracker, not an event anyone asked for.
      this.counters.trackingOnly++;
    } else if (this.opts.keep === 'all' || decision.daemons.length === 0)
      out.push({ daemon: null, records: shaped(null) });
    return { destinations: out, chain: v.chains[0] ?? null };
  }

  private shape(
    records: EventRecord[],
    v: EventView,
    owner: string | null,
    keysByOwner?: (owner: string | null, fullKeys: string[]) => string[],
  ): EventRecord[] {
    const needsKeyRewrite = v.syscallIndex >= 0 && (v.owners.length > 0 || v.tracking);
    const synth = !this.opts.contidKernel && v.chains.length > 0 && v.syscallIndex >= 0;
    if (!needsKeyRewrite && !synth) return records;
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
          const stamp = stampOf(p);
          if (stamp) {
            // The patch set logs CONTAINER_ID before the SYSCALL record it qualifies, linked by record=1.
            out.push({
              type: AUDITMUX_CONTAINER_ID,
              payload: Buffer.from(`${stamp}: record=1 contid=${formatChain(v.chains[0]!)}`, 'latin1'),
            });
            p = appendField(p, 'record=1');
          }
        }
        r = { type: r.type, payload: p };
      }
      out.push(r);
    }
    return out;
  }
}
