// `auditmux route test`: where an event with this contid, container metadata, record types and keys would go.
import { UsageError } from '../errors';
import type { RouteConfig } from '../config/schema';
import { parseChainsAt } from '../contid/chain';
import { META_FIELDS, type ContainerDirectory, type ContainerFacts } from '../contid/meta-selector';
import { MsgType } from '../kernel/constants';
import { recordTypeNumber } from '../config/record-types';
import { Router } from './router';

export interface RouteTestArgs {
  contid?: string;
  types?: string[];
  keys?: string[];
  /** The container's metadata (`--name web-1 --label app=web`); absent: what the host knows of the contid. */
  container?: unknown;
}

const VALUE_MAX = 4096;

/** The `container` argument of a request, checked: known fields, strings, bounded; labels as `{key: value}`. */
export function containerFactsArg(v: unknown): ContainerFacts | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new UsageError('container must be an object');
  const out: ContainerFacts = {};
  const str = (k: string, x: unknown): string => {
    if (typeof x !== 'string' || x.length > VALUE_MAX) throw new UsageError(`container ${k} must be a short string`);
    return x;
  };
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if ((META_FIELDS as readonly string[]).includes(k)) out[k as (typeof META_FIELDS)[number]] = str(k, x);
    else if (k === 'labels') {
      if (!x || typeof x !== 'object' || Array.isArray(x)) throw new UsageError('container labels must be an object');
      const entries = Object.entries(x as Record<string, unknown>);
      if (entries.length > 256) throw new UsageError('at most 256 labels');
      const labels: Record<string, string> = Object.create(null) as Record<string, string>;
      for (const [lk, lv] of entries) labels[str(`label ${lk.slice(0, 64)}`, lk)] = str(`label ${lk.slice(0, 64)}`, lv);
      out.labels = labels;
    } else throw new UsageError(`unknown container field "${k.slice(0, 64)}"`);
  }
  return out;
}

/** The names routes accept (`types: [CONTAINER_OP]`), so route test agrees with the table it tests. */
function msgTypeNumber(name: string): number | undefined {
  if (/^[0-9]{1,5}$/.test(name)) return Number(name) >= 1 && Number(name) <= 0xffff ? Number(name) : undefined;
  return recordTypeNumber(name.toUpperCase());
}

export function routeTest(
  routes: readonly RouteConfig[],
  directory: ContainerDirectory | null,
  keepAll: boolean,
  args: RouteTestArgs,
): { daemons: string[]; routes: number[]; host: boolean } {
  const parsed = args.contid && args.contid !== 'unset' ? parseChainsAt(args.contid) : { chains: [] };
  if (!('chains' in parsed))
    throw new UsageError(
      `--contid ${args.contid}: column ${parsed.offset + 1}: ${parsed.reason} (e.g. 100 or 4,^2,^1 or 2,^1,3,^1)`,
    );
  const types: number[] = [];
  for (const t of args.types ?? []) {
    const n = msgTypeNumber(t);
    if (n === undefined) throw new UsageError(`unknown record type ${t}`);
    types.push(n);
  }
  const container = containerFactsArg(args.container);
  const route = new Router(routes, directory).route({
    chains: parsed.chains,
    types: types.length ? types : [MsgType.SYSCALL],
    keys: args.keys ?? [],
    ...(container ? { container } : {}),
  });
  return { daemons: route.daemons, routes: route.matched, host: keepAll || route.daemons.length === 0 };
}
