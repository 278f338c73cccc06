// `auditmux route test`: which daemons an event with this contid, record types and keys would reach.
import { UsageError } from '../errors';
import { MsgType } from '../kernel/constants';
import type { KeepMode, RouteConfig } from '../config';
import { msgTypeByName } from '../records/msgtypes';
import { parseChainsAt } from '../contid/chain';
import { Router } from '../routing/router';

export function routeTest(
  routes: RouteConfig[],
  keepMode: KeepMode,
  args: { contid?: string; types?: string[]; keys?: string[] },
): unknown {
  const parsed = args.contid && args.contid !== 'unset' ? parseChainsAt(args.contid) : { chains: [] };
  if (!('chains' in parsed))
    throw new UsageError(
      `--contid ${args.contid}: column ${parsed.offset + 1}: ${parsed.reason} (e.g. 100 or 4,^2,^1 or 2,^1,3,^1)`,
    );
  const types: number[] = [];
  for (const t of args.types ?? []) {
    const n = /^\d+$/.test(t) ? Number(t) : msgTypeByName(t.toUpperCase());
    if (n === undefined) throw new UsageError(`unknown record type ${t}`);
    types.push(n);
  }
  const route = new Router(routes).route({
    chains: parsed.chains,
    types: types.length ? types : [MsgType.SYSCALL],
    keys: args.keys ?? [],
  });
  const keep = keepMode === 'all' || route.daemons.length === 0;
  return { daemons: route.daemons, routes: route.matched, host: keep };
}
