// The one builder of an auxiliary daemon's config and the checks of its fields, for the config file, `aux add` and
// the control socket alike: a daemon is the same whichever way it was made.
import { defaultAuxLogFile } from './aux-paths';
import {
  DEFAULT_MAX_RESTARTS,
  DEFAULT_OUTPUT,
  DEFAULT_QUEUE,
  defaultIsolation,
  type AuxIsolation,
  type DaemonConfig,
  type OutputConfig,
  type OutputSpec,
  type QueueConfig,
} from './schema';
import type { SourcePos } from '../errors';

/** Daemon names become file names, key tags and record fields: a short, safe alphabet. */
export const DAEMON_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

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
