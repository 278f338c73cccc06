// The routing table at run time: which daemons get an event, from its contid chains (and the metadata of the
// container they name), record types and rule keys.
import type { RouteConfig, TemplateKey } from '../config/schema';
import { contidSelectorsMatch } from '../contid/selectors';
import { keyBytes } from '../records/fields';
import type { Chain } from '../contid/chain';
import { containerSelectorMatches, type ContainerDirectory, type ContainerFacts } from '../contid/meta-selector';

export interface RoutableEvent {
  /** The event's contid chains: one for a task, several for a network-namespace event; empty = no contid (unset). */
  chains: readonly Chain[];
  /** Record type numbers present in the event. */
  types: readonly number[];
  /** Rule keys of the event (from its SYSCALL record), without auditmux's owner tags. */
  keys: readonly string[];
  /** `route test` only: the container's metadata as given, instead of what the directory knows of its contid. */
  container?: ContainerFacts;
}

export interface RouteDecision {
  daemons: string[];
  /** Indexes of the routes that matched, for `auditmux route test`. */
  matched: number[];
}

/** The first `n` entries of `a` hold `x`. */
function within<T>(a: readonly T[], n: number, x: T): boolean {
  for (let i = 0; i < n; i++) if (a[i] === x) return true;
  return false;
}

/** Some entry of `want` is in `have` (no closure per call, as `some(... includes ...)` makes). */
function anyIn<T>(want: readonly T[], have: readonly T[]): boolean {
  for (let i = 0; i < want.length; i++) if (have.includes(want[i]!)) return true;
  return false;
}

/** An event without a contid visits the routes once, as the unset chain. */
const NO_CHAIN: ReadonlyArray<Chain | null> = [null];

/** Past this many containers the per-container answers are dropped and recomputed (a bound, not a working limit). */
const MASK_CACHE_MAX = 4096;

export class Router {
  /** Positions (in `routes`) of routes with a container selector. */
  private readonly metaRoutes: number[] = [];
  /** Per contid, which container selectors its metadata matches (by position in `metaRoutes`). */
  private readonly masks = new Map<bigint, Uint8Array>();
  private masksVersion = -1;
  private readonly none: Uint8Array;
  /** Positions of daemon templates' routes, and per contid the value of each one's key (undefined: none). */
  private readonly templateRoutes: number[] = [];
  private readonly values = new Map<bigint, Array<string | undefined>>();
  private readonly noValues: Array<string | undefined>;
  /**
   * Each route's keys in the form events carry them (keyBytes: UTF-8 bytes, one char per byte), by position: the
   * config holds the text, so a non-ASCII key never matched an event's.
   */
  private readonly keys: Array<readonly string[] | null>;

  constructor(
    private readonly routes: readonly RouteConfig[],
    private readonly directory: ContainerDirectory | null = null,
  ) {
    routes.forEach((r, i) => {
      if (r.container && !r.template) this.metaRoutes.push(i);
      if (r.template) this.templateRoutes.push(i);
    });
    this.keys = routes.map((r) => (r.keys ? r.keys.map(keyBytes) : null));
    this.none = new Uint8Array(this.metaRoutes.length);
    this.noValues = this.templateRoutes.map(() => undefined);
  }

  get empty(): boolean {
    return this.routes.length === 0;
  }

  /**
   * Which container selectors the container of `chain` matches: computed once per contid and kept until the
   * directory changes, so no glob is matched per event.
   */
  private maskFor(chain: Chain | null, given: ContainerFacts | undefined): Uint8Array {
    if (given) return this.compute(given);
    const id = chain?.[0];
    if (id === undefined || !this.directory) return this.none;
    return this.cached(this.masks, id, (f) => this.compute(f));
  }

  /** The container's value of each template's key, computed once per contid and directory version like the masks. */
  private valuesFor(chain: Chain | null, given: ContainerFacts | undefined): Array<string | undefined> {
    if (given) return this.templateValues(given);
    const id = chain?.[0];
    if (id === undefined || !this.directory) return this.noValues;
    return this.cached(this.values, id, (f) => this.templateValues(f));
  }

  /**
   * One lookup per contid until the directory changes: a new version empties both caches at once (a container's
   * facts can change, e.g. a name learned after its cgroup was seen, and neither cache may keep the old answer).
   */
  private cached<T>(cache: Map<bigint, T>, id: bigint, make: (f: ContainerFacts | undefined) => T): T {
    const dir = this.directory!;
    if (dir.version !== this.masksVersion) {
      this.masks.clear();
      this.values.clear();
      this.masksVersion = dir.version;
    }
    let v = cache.get(id);
    if (v === undefined) {
      if (cache.size >= MASK_CACHE_MAX) cache.clear();
      v = make(dir.facts(id));
      cache.set(id, v);
    }
    return v;
  }

  private templateValues(facts: ContainerFacts | undefined): Array<string | undefined> {
    return this.templateRoutes.map((ri) => {
      const r = this.routes[ri]!;
      if (!facts || (r.container && !containerSelectorMatches(r.container, facts))) return undefined;
      return keyValue(r.template!.key, facts);
    });
  }

  private compute(facts: ContainerFacts | undefined): Uint8Array {
    const m = new Uint8Array(this.metaRoutes.length);
    if (facts)
      this.metaRoutes.forEach((ri, k) => {
        if (containerSelectorMatches(this.routes[ri]!.container!, facts)) m[k] = 1;
      });
    return m;
  }

  /** Every daemon that some chain of the event routes to (a netns event fans out to all its containers' daemons). */
  route(ev: RoutableEvent, into?: RouteDecision): RouteDecision {
    // Arrays, not Sets: an event matches a handful of routes at most, and this runs for every event. `into`: the
    // caller's decision, refilled by index event after event and cut to size at the end (no allocation per event;
    // `length = 0` would drop the arrays' storage every time).
    const out = into ?? { daemons: [], matched: [] };
    const daemons = out.daemons;
    const matched = out.matched;
    let nd = 0;
    let nm = 0;
    const chains: ReadonlyArray<Chain | null> = ev.chains.length ? ev.chains : NO_CHAIN;
    for (const chain of chains) {
      let mask: Uint8Array | null = null;
      let values: Array<string | undefined> | null = null;
      let k = 0;
      let t = 0;
      for (let i = 0; i < this.routes.length; i++) {
        const r = this.routes[i]!;
        const keys = this.keys[i];
        if (r.template) {
          // The template's own container selector is folded into its value (no value: no match).
          values ??= this.valuesFor(chain, ev.container);
          const value = values[t++];
          const name = value === undefined ? null : r.template.resolve(value, ev.container === undefined);
          if (name === null) continue;
          if (r.types && !anyIn(r.types, ev.types)) continue;
          if (keys && !anyIn(keys, ev.keys)) continue;
          if (!within(matched, nm, r.index)) matched[nm++] = r.index;
          if (!within(daemons, nd, name)) daemons[nd++] = name;
          if (!r.continue) break;
          continue;
        }
        if (r.container) {
          mask ??= this.maskFor(chain, ev.container);
          if (!mask[k++]) continue;
          // A route with both selectors needs both; one with a container selector alone needs no contid selector.
          if (r.contid.length && !contidSelectorsMatch(r.contid, chain)) continue;
        } else if (!contidSelectorsMatch(r.contid, chain)) continue;
        if (r.types && !anyIn(r.types, ev.types)) continue;
        if (keys && !anyIn(keys, ev.keys)) continue;
        if (!within(matched, nm, r.index)) matched[nm++] = r.index;
        for (const d of r.daemons) if (!within(daemons, nd, d)) daemons[nd++] = d;
        if (!r.continue) break;
      }
    }
    if (daemons.length !== nd) daemons.length = nd;
    if (matched.length !== nm) matched.length = nm;
    // One chain visits routes in order; several can interleave.
    if (chains.length > 1) matched.sort((a, b) => a - b);
    return out;
  }
}

/** A container's value of a template's key; an empty value is no value. */
export function keyValue(key: TemplateKey, facts: ContainerFacts): string | undefined {
  let v: string | undefined;
  if ('field' in key) v = facts[key.field];
  else {
    const labels = facts.labels;
    v = labels && Object.prototype.hasOwnProperty.call(labels, key.label) ? labels[key.label] : undefined;
  }
  return v ? v : undefined;
}
