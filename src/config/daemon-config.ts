// The one builder of an auxiliary daemon's config and the checks of its fields, for the config file, `aux add` and
// the control socket alike: a daemon is the same whichever way it was made.
import { defaultAuxLogFile } from './aux-paths';
import {
  DEFAULT_MAX_RESTARTS,
  DEFAULT_OUTPUT,
  DEFAULT_QUEUE,
  defaultIsolation,
  AUX_ISOLATIONS,
  OVERFLOW_ACTIONS,
  type AuxIsolation,
  type DaemonConfig,
  type OutputConfig,
  type OutputSpec,
  type QueueConfig,
} from './schema';
import type { SourcePos } from '../errors';
import { NAME_RE } from '../shared';
import type { Entry, Walker } from './walk';

/** Daemon names become file names, key tags and record fields: a short, safe alphabet. */
export const DAEMON_NAME_RE = NAME_RE;

/** Queue depth bounds: at least one event, and a cap that keeps a typo from reserving gigabytes. */
export const QUEUE_DEPTH = Object.freeze({ min: 1, max: 10_000_000 });

/** Why `v` is not a queue depth (an integer within QUEUE_DEPTH), or null when it is. */
export function queueDepthProblem(v: unknown): string | null {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < QUEUE_DEPTH.min || v > QUEUE_DEPTH.max) {
    const got = typeof v === 'number' || typeof v === 'string' ? String(v).slice(0, 40) : typeof v;
    return `must be an integer between ${QUEUE_DEPTH.min} and ${QUEUE_DEPTH.max}, got ${got}`;
  }
  return null;
}

/** How long a producer may wait for room in a full `overflow: block` queue: up to ten minutes. */
export const BLOCK_TIMEOUT_MS = Object.freeze({ min: 0, max: 600_000 });
/** A daemon restarted more often than this is broken, not unlucky. */
export const MAX_RESTARTS = Object.freeze({ min: 0, max: 10_000 });

const QUEUE_KEYS = ['depth', 'overflow', 'block_timeout_ms'] as const;

/**
 * A daemon's `queue:` section, for `daemons:` and `daemon_templates:` alike (one reader, so one set of bounds and one
 * wording of each error); undefined when it is not a mapping (the error is recorded).
 */
export function readQueue(w: Walker, e: Entry, where: string): QueueConfig | undefined {
  const q = w.mapping(e.value, `${where}.queue`, QUEUE_KEYS, e.key);
  if (!q) return undefined;
  const queue = { ...DEFAULT_QUEUE };
  let y: Entry | undefined;
  if ((y = q.get('depth')))
    queue.depth = w.integer(y, `${where}.queue.depth`, QUEUE_DEPTH.min, QUEUE_DEPTH.max) ?? queue.depth;
  if ((y = q.get('overflow')))
    queue.overflow = w.choice(y, `${where}.queue.overflow`, OVERFLOW_ACTIONS) ?? queue.overflow;
  if ((y = q.get('block_timeout_ms'))) {
    const t = w.integer(y, `${where}.queue.block_timeout_ms`, BLOCK_TIMEOUT_MS.min, BLOCK_TIMEOUT_MS.max);
    if (t !== undefined && queue.overflow !== 'block')
      w.error(y.key, `${where}.queue.block_timeout_ms only applies to overflow: block (overflow is ${queue.overflow})`);
    else if (t !== undefined) queue.blockTimeoutMs = t;
  }
  return queue;
}

/**
 * Why a daemon running as `user` may not have `overflow: block` (null when it may): its process is the tenant's, and a
 * process that reads its events and never acknowledges them would hold the host's kernel intake paused, time after
 * time, until the kernel's backlog overflowed and the host lost records.
 */
export function blockForUserProblem(user: string | null, overflow: string): string | null {
  return user !== null && overflow === 'block'
    ? `overflow: block cannot be used by a daemon that runs as user "${user}": its process could pause the host's kernel intake by never acknowledging (use drop_newest or drop_oldest)`
    : null;
}

/** A daemon's `isolation:`; undefined when it is not valid for `user` (the error is recorded). */
export function readIsolation(w: Walker, e: Entry, where: string, user: string | null): AuxIsolation | undefined {
  const iso = w.choice(e, `${where}.isolation`, AUX_ISOLATIONS);
  // Only a process of its own can change user: the host process stays root.
  if (iso === 'inline' && user !== null)
    return w.error(e.value, `${where}.isolation: inline cannot run as user "${user}" (use isolation: process)`, e.key);
  return iso;
}

/** A daemon's `max_restarts:`. */
export function readMaxRestarts(w: Walker, e: Entry, where: string): number | undefined {
  return w.integer(e, `${where}.max_restarts`, MAX_RESTARTS.min, MAX_RESTARTS.max);
}

/** What a caller says about a daemon; everything left out gets the one set of defaults. */
export interface DaemonSpec {
  name: string;
  pos: SourcePos;
  rules?: string | null;
  /** The log's settings; `file` left out: beside the host log (a directory of its own with a user). */
  log?: Partial<OutputConfig>;
  queue?: Partial<QueueConfig>;
  user?: string | null;
  isolation?: AuxIsolation;
  maxRestarts?: number;
  outputs?: OutputSpec[];
}

/**
 * A daemon's config from what its maker said and the defaults: ENRICHED logs, DEFAULT_QUEUE, inline unless it has a
 * user. Validation of each field stays with its maker (it knows the position to blame); this only assembles.
 */
export function buildDaemonConfig(spec: DaemonSpec, hostLogFile: string): DaemonConfig {
  const user = spec.user ?? null;
  const d: DaemonConfig = {
    name: spec.name,
    rules: spec.rules ?? null,
    // `file` first: config check prints the config in this order.
    log: { file: spec.log?.file ?? defaultAuxLogFile(hostLogFile, spec.name, user), ...DEFAULT_OUTPUT, ...spec.log },
    queue: { ...DEFAULT_QUEUE, ...spec.queue },
    user,
    isolation: spec.isolation ?? defaultIsolation(user),
    maxRestarts: spec.maxRestarts ?? DEFAULT_MAX_RESTARTS,
    pos: spec.pos,
  };
  if (spec.outputs) d.outputs = spec.outputs;
  return d;
}
