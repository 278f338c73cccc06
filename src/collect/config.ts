// The collector's YAML config: NATS connection, stream and durable consumer, log directory and log options.
import { resolve as resolvePath, dirname } from 'node:path';
import type { Node } from 'yaml';
import { ConfigError } from '../errors';
import { readBounded } from '../safefs';
import { NATS_CONN_KEYS, readNatsConn } from '../config/outputs';
import { FLUSH_MODES, LOG_FORMATS, MAX_LOG_FILE_ACTIONS, type NatsConnSpec } from '../config/schema';
import { Walker, parseConfigYaml, type Entry } from '../config/walk';
import { readMetricsSpec } from '../config/metrics';
import type { MetricsSpec } from '../metrics/contract';
import type { ClaimsSpec } from './claims';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type { FlushMode, MaxLogFileAction } from '../output/logfile';

export const MAX_COLLECT_CONFIG = 256 * 1024;
const KEYS = [
  ...NATS_CONN_KEYS,
  'stream',
  'consumer',
  'filter_subject',
  'node_token',
  'create_consumer',
  'ack_wait',
  'batch',
  'dir',
  'recent_ids',
  'status_file',
  'prometheus_textfile',
  'metrics',
  'per_daemon',
  'reorder_wait',
  'reorder_max',
  'start_wait',
  'claims',
  'instance',
  'log',
] as const;
const CLAIMS_KEYS = ['stream', 'lease', 'max_age', 'replicas'] as const;
const LOG_KEYS = ['format', 'flush', 'max_log_file', 'num_logs', 'max_log_file_action'] as const;
const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
const FILTER_RE = /^(?:[A-Za-z0-9_~-]{1,64}|\*)(?:\.(?:[A-Za-z0-9_~-]{1,64}|\*))*(?:\.>)?$|^>$/;

export interface CollectConfig extends NatsConnSpec {
  file: string;
  stream: string;
  consumer: string;
  filterSubject: string | null;
  /**
   * Which token of a message's subject (1-based) names its node: the outputs' default subject,
   * `audit.{node}.{daemon}.{contid}`, has it second. A message whose lines or id name another node is refused, so a
   * host allowed to publish only under its own subject cannot write into another node's log. 0 = not checked (a
   * subject template without `{node}`).
   */
  nodeToken: number;
  createConsumer: boolean;
  ackWaitMs: number;
  batch: number;
  dir: string;
  recentIds: number;
  statusFile: string;
  /** Counters in the Prometheus text format, served on a local address or written to a textfile; null = none. */
  metrics: MetricsSpec | null;
  /** Cross-instance claims (several instances sharing the consumer write each event once); null = off. */
  claims: ClaimsSpec | null;
  /** One log per node and daemon (DIR/NODE/DAEMON/audit.log) instead of one per node. */
  perDaemon: boolean;
  /** How long an event ahead of a hole in its publisher's order is held for it (ms); 0 = no reordering. */
  reorderWaitMs: number;
  /** How long start waits for JetStream to answer (a cluster electing its leaders), in ms; 0 = fail at once. */
  startWaitMs: number;
  /** Events held for ordering at most, over all publishers. */
  reorderMax: number;
  log: {
    format: 'RAW' | 'ENRICHED';
    flush: FlushMode;
    maxLogFileMiB: number;
    numLogs: number;
    maxLogFileAction: MaxLogFileAction;
  };
}

export function parseCollectConfig(text: string, file: string): CollectConfig {
  const { doc, problems } = parseConfigYaml(text);
  const w = new Walker(text, file, doc);
  for (const e of problems) w.errors.push(new ConfigError(w.posAt(e.offset), e.reason));
  if (w.errors.length) throw w.errors[0];
  const root = w.resolve(doc.contents as Node | null);
  const m = w.mapping(root, 'collect', KEYS, null);
  if (!m) throw w.errors[0] ?? new ConfigError({ file, line: 1, col: 1 }, 'collect config must be a mapping');
  const base = dirname(resolvePath(file));
  const conn = readNatsConn(w, m, 'collect', root, null, base);
  let x: Entry | undefined;
  const name = (k: string, def: string): string => {
    const e = m.get(k);
    if (!e) return def;
    const s = w.string(e, k);
    if (s !== undefined && !NAME_RE.test(s)) w.error(e.value, `${k} must be [A-Za-z0-9_-]{1,64}`, e.key);
    return s ?? def;
  };
  const stream = name('stream', 'AUDIT');
  const consumer = name('consumer', 'auditmux-collect');
  let filterSubject: string | null = null;
  if ((x = m.get('filter_subject'))) {
    const s = w.string(x, 'filter_subject');
    if (s !== undefined && (s.length > 255 || !FILTER_RE.test(s)))
      w.error(x.value, 'filter_subject must be a NATS subject (tokens, *, a final >)', x.key);
    else if (s !== undefined) filterSubject = s;
  }
  const nodeToken = (x = m.get('node_token')) ? (w.integer(x, 'node_token', 0, 16) ?? 2) : 2;
  const createConsumer = (x = m.get('create_consumer')) ? (w.boolean(x, 'create_consumer') ?? true) : true;
  const ackWait = (x = m.get('ack_wait')) ? (w.integer(x, 'ack_wait', 1, 3600) ?? 30) : 30;
  const batch = (x = m.get('batch')) ? (w.integer(x, 'batch', 1, 10000) ?? 256) : 256;
  let dir = '/var/log/auditmux-fleet';
  if ((x = m.get('dir'))) {
    const s = w.string(x, 'dir');
    if (s !== undefined && (s.length === 0 || s.includes('\0'))) w.error(x.value, 'dir is not a usable path', x.key);
    else if (s !== undefined) dir = resolvePath(base, s);
  }
  const recentIds = (x = m.get('recent_ids')) ? (w.integer(x, 'recent_ids', 16, 10_000_000) ?? 100000) : 100000;
  let statusFile = resolvePath(dir, 'collect.status');
  if ((x = m.get('status_file'))) {
    const s = w.string(x, 'status_file');
    if (s !== undefined) statusFile = resolvePath(base, s);
  }
  let metrics: MetricsSpec | null = null;
  if ((x = m.get('prometheus_textfile'))) {
    // The first spelling of `metrics: { textfile: ... }`, still accepted.
    const s = w.string(x, 'prometheus_textfile');
    if (s !== undefined && !s.endsWith('.prom'))
      w.error(x.value, 'prometheus_textfile must end in .prom (node_exporter reads only those)', x.key);
    else if (s !== undefined) metrics = { textfile: resolvePath(base, s) };
  }
  if ((x = m.get('metrics'))) {
    if (metrics) w.error(x.key, 'give metrics or prometheus_textfile, not both');
    else metrics = readMetricsSpec(w, x, 'metrics', base) ?? null;
  }
  // Stable across restarts of one collector writing one directory: its own old claims are its to resume.
  const instance =
    name('instance', '') ||
    `${hostname()
      .replace(/[^A-Za-z0-9_-]/g, '-')
      .slice(0, 40)}-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`;
  let claims: ClaimsSpec | null = null;
  if ((x = m.get('claims'))) {
    const cm = w.mapping(x.value, 'claims', CLAIMS_KEYS, x.key);
    let y: Entry | undefined;
    let stream = 'AUDITMUX_CLAIMS';
    if (cm && (y = cm.get('stream'))) {
      const s = w.string(y, 'claims.stream');
      if (s !== undefined && !NAME_RE.test(s)) w.error(y.value, 'claims.stream must be [A-Za-z0-9_-]{1,64}', y.key);
      else if (s !== undefined) stream = s;
    }
    const lease = cm && (y = cm.get('lease')) ? (w.integer(y, 'claims.lease', 1, 3600) ?? ackWait) : ackWait;
    const maxAge = cm && (y = cm.get('max_age')) ? (w.integer(y, 'claims.max_age', 60, 30 * 86400) ?? 86400) : 86400;
    const replicas = cm && (y = cm.get('replicas')) ? (w.integer(y, 'claims.replicas', 1, 5) ?? 1) : 1;
    if (maxAge < lease * 2) w.error(x.key, 'claims.max_age must be at least twice claims.lease');
    claims = { stream, leaseMs: lease * 1000, maxAgeMs: maxAge * 1000, replicas, instance };
  }
  // Instances sharing a consumer (what claims are for) each get part of every publisher's numbers: every hole would be
  // waited on, so ordering is off for them unless asked for.
  const reorderWait = (x = m.get('reorder_wait')) ? (w.integer(x, 'reorder_wait', 0, 3600) ?? 20) : claims ? 0 : 20;
  const reorderMax = (x = m.get('reorder_max')) ? (w.integer(x, 'reorder_max', 1, 100000) ?? 4096) : 4096;
  const startWait = (x = m.get('start_wait')) ? (w.integer(x, 'start_wait', 0, 3600) ?? 60) : 60;
  const perDaemon = (x = m.get('per_daemon')) ? (w.boolean(x, 'per_daemon') ?? false) : false;
  const log: CollectConfig['log'] = {
    format: 'RAW',
    flush: 'data',
    maxLogFileMiB: 8,
    numLogs: 5,
    maxLogFileAction: 'rotate',
  };
  if ((x = m.get('log'))) {
    const lm = w.mapping(x.value, 'log', LOG_KEYS, x.key);
    let y: Entry | undefined;
    if (lm && (y = lm.get('format'))) log.format = w.choice(y, 'log.format', LOG_FORMATS) ?? log.format;
    if (lm && (y = lm.get('flush'))) log.flush = w.choice(y, 'log.flush', FLUSH_MODES) ?? log.flush;
    if (lm && (y = lm.get('max_log_file')))
      log.maxLogFileMiB = w.integer(y, 'log.max_log_file', 0, 1048576) ?? log.maxLogFileMiB;
    if (lm && (y = lm.get('num_logs'))) log.numLogs = w.integer(y, 'log.num_logs', 0, 999) ?? log.numLogs;
    if (lm && (y = lm.get('max_log_file_action')))
      log.maxLogFileAction = w.choice(y, 'log.max_log_file_action', MAX_LOG_FILE_ACTIONS) ?? log.maxLogFileAction;
  }
  if (w.errors.length) throw w.errors[0];
  return {
    file,
    ...conn,
    stream,
    consumer,
    filterSubject,
    nodeToken,
    createConsumer,
    ackWaitMs: ackWait * 1000,
    batch,
    dir,
    recentIds,
    statusFile,
    metrics,
    claims,
    perDaemon,
    reorderWaitMs: reorderWait * 1000,
    reorderMax,
    startWaitMs: startWait * 1000,
    log,
  };
}

export function loadCollectConfig(path: string): CollectConfig {
  const text = readBounded(path, {
    limit: MAX_COLLECT_CONFIG,
    noFollow: true,
    what: 'collect config file',
  }).data.toString('utf8');
  return parseCollectConfig(text, path);
}
