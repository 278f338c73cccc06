// `auditmux route test`: where an event with this contid, container metadata, record types and keys would go.
import { UsageError } from '../errors';
import type { RouteConfig } from '../config/schema';
import { parseChainsAt } from '../contid/chain';
import type { ContainerDirectory, ContainerFacts } from '../contid/meta-selector';
import { META_FIELDS } from '../contid/container-selector';
import { MsgType } from '../kernel/constants';
import { recordTypeNumber } from '../vocab/msgtypes';
import { Router } from './router';
import { keyBytes } from '../records/fields';

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

/** A directory that can list its live containers (the host's registry): `--name` is looked up in it. */
export interface LiveContainerDirectory extends ContainerDirectory {
  liveContainerIds(): Iterable<bigint>;
}

const isLive = (d: ContainerDirectory | null): d is LiveContainerDirectory =>
  d !== null && typeof (d as Partial<LiveContainerDirectory>).liveContainerIds === 'function';

/** A live container `--name` found, and where its events would go. */
export interface RouteTestContainer {
  contid: string;
  name: string;
  runtime: string | null;
  daemons: string[];
}

export interface RouteTestResult {
  daemons: string[];
  routes: number[];
  host: boolean;
  /** With `--name` and no `--contid`: the live containers of that name (empty when none runs). */
  containers?: RouteTestContainer[];
}

/** The live containers named exactly `name`, at most `max` (names are not unique: a restarted one, two hosts). */
function liveNamed(directory: LiveContainerDirectory, name: string, max = 64): bigint[] {
  const out: bigint[] = [];
  for (const id of directory.liveContainerIds()) {
    if (directory.facts(id)?.name === name) out.push(id);
    if (out.length >= max) break;
  }
  return out;
}

export function routeTest(
  routes: readonly RouteConfig[],
  directory: ContainerDirectory | null,
  keepAll: boolean,
  args: RouteTestArgs,
): RouteTestResult {
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
  const router = new Router(routes, directory);
  const one = (chains: readonly (readonly bigint[])[], facts: ContainerFacts | undefined): RouteTestResult => {
    const route = router.route({
      chains,
      types: types.length ? types : [MsgType.SYSCALL],
      // As typed (text): an event carries its keys' bytes.
      keys: (args.keys ?? []).map(keyBytes),
      ...(facts ? { container: facts } : {}),
    });
    return { daemons: route.daemons, routes: route.matched, host: keepAll || route.daemons.length === 0 };
  };
  const name = container?.name;
  if (name === undefined || parsed.chains.length > 0 || !isLive(directory)) return one(parsed.chains, container);
  // `--name X` alone: each live container called X routes as itself (its contid, its full metadata, the options
  // given on top); the answer is where any of them would go.
  const found = liveNamed(directory, name);
  if (found.length === 0) return { ...one([], container), containers: [] };
  const daemons = new Set<string>();
  const matched = new Set<number>();
  let host = false;
  const containers = found.map((id): RouteTestContainer => {
    const facts = { ...directory.facts(id), ...container };
    const r = one([[id]], facts);
    r.daemons.forEach((d) => daemons.add(d));
    r.routes.forEach((m) => matched.add(m));
    host ||= r.host;
    return { contid: id.toString(), name, runtime: facts.runtime ?? null, daemons: r.daemons };
  });
  return { daemons: [...daemons], routes: [...matched].sort((a, b) => a - b), host, containers };
}
