// The routing table at run time: which daemons get an event, from its contid chains, record types and rule keys.
import type { RouteConfig } from '../config/schema';
import { contidSelectorsMatch } from '../contid/selectors';
import type { Chain } from '../contid/chain';

export interface RoutableEvent {
  /** The event's contid chains: one for a task, several for a network-namespace event; empty = no contid (unset). */
  chains: readonly Chain[];
  /** Record type numbers present in the event. */
  types: readonly number[];
  /** Rule keys of the event (from its SYSCALL record), without auditmux's owner tags. */
  keys: readonly string[];
}

export interface RouteDecision {
  daemons: string[];
  /** Indexes of the routes that matched, for `auditmux route test`. */
  matched: number[];
}

export class Router {
  constructor(private readonly routes: readonly RouteConfig[]) {}

  get empty(): boolean {
    return this.routes.length === 0;
  }

  /** Every daemon that some chain of the event routes to (a netns event fans out to all its containers' daemons). */
  route(ev: RoutableEvent): RouteDecision {
    // Arrays, not Sets: an event matches a handful of routes at most, and this runs for every event.
    const daemons: string[] = [];
    const matched: number[] = [];
    const chains: ReadonlyArray<Chain | null> = ev.chains.length ? ev.chains : [null];
    for (const chain of chains) {
      for (const r of this.routes) {
        if (!contidSelectorsMatch(r.contid, chain)) continue;
        if (r.types && !r.types.some((t) => ev.types.includes(t))) continue;
        if (r.keys && !r.keys.some((k) => ev.keys.includes(k))) continue;
        if (!matched.includes(r.index)) matched.push(r.index);
        for (const d of r.daemons) if (!daemons.includes(d)) daemons.push(d);
        if (!r.continue) break;
      }
    }
    // One chain visits routes in order; several can interleave.
    if (chains.length > 1) matched.sort((a, b) => a - b);
    return { daemons, matched };
  }
}
