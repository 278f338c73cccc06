// The typed, defaulted configuration object and its built-in defaults (what the daemon runs with when no file exists).
import type { SourcePos } from '../errors';
import type { ContidPattern } from '../contid/selectors';
import type { ContainerSelector, MetaField } from '../contid/container-selector';

/** Where metrics go: an HTTP listener (GET /metrics) or a textfile for node_exporter's textfile collector. */
export type MetricsSpec = { listen: { host: string; port: number } } | { textfile: string };

export const NAME_FORMATS = ['none', 'hostname', 'fqd', 'numeric', 'user'] as const;
export type NameFormat = (typeof NAME_FORMATS)[number];
export const LOG_FORMATS = ['RAW', 'ENRICHED'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
/** A log file's `format:`: auditd's lines, or JSON (one object per event and line, as the nats output's payload). */
export const LOG_FILE_FORMATS = ['RAW', 'ENRICHED', 'JSON'] as const;
export type LogFileFormat = (typeof LOG_FILE_FORMATS)[number];
export const FLUSH_MODES = ['none', 'incremental', 'incremental_async', 'data', 'sync'] as const;
export type FlushMode = (typeof FLUSH_MODES)[number];
export const MAX_LOG_FILE_ACTIONS = ['ignore', 'syslog', 'suspend', 'rotate', 'keep_logs'] as const;
export type MaxLogFileAction = (typeof MAX_LOG_FILE_ACTIONS)[number];
export const KEEP_MODES = ['all', 'unrouted'] as const;
export type KeepMode = (typeof KEEP_MODES)[number];
export const OVERFLOW_ACTIONS = ['block', 'drop_newest', 'drop_oldest'] as const;
export type OverflowAction = (typeof OVERFLOW_ACTIONS)[number];
export const DIAG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type DiagLevel = (typeof DIAG_LEVELS)[number];

/** One audit log writer (YAML `log:`), shared by the host daemon and every auxiliary daemon. */
export interface OutputConfig {
  /** Absolute path of the live log file (YAML `file`). */
  file: string;
  format: LogFileFormat;
  flush: FlushMode;
  /** Records between explicit flushes for incremental modes (YAML `freq`). */
  freq: number;
  /** Size in MiB that triggers maxLogFileAction; 0 disables the check (YAML `max_log_file`). */
  maxLogFileMiB: number;
  maxLogFileAction: MaxLogFileAction;
  /** 0..999; below 2 `rotate` truncates instead of keeping old files, as in auditd (YAML `num_logs`). */
  numLogs: number;
  /** Group name or numeric gid that may read the logs (YAML `log_group`). */
  logGroup: string;
  /** Rotate at each new hour or day as well as by size (YAML `rotate_interval`; auditd only rotates by size). */
  rotateInterval?: 'hourly' | 'daily';
  /** gzip rotated logs (YAML `compress`): audit.log.1.gz ...; search reads them. */
  compress?: boolean;
  /**
   * auditd.conf's free-space thresholds and actions for the log's file system (src/output/diskspace.ts); present only
   * when the file sets one of them, otherwise defaultDiskSpace() applies.
   */
  diskSpace?: DiskSpaceConfig;
}

/** auditd's size syntax: MiB, or a percentage of the file system's size. */
export interface SpaceThreshold {
  value: number;
  unit: 'MiB' | '%';
}

export const SPACE_LEFT_ACTIONS = ['ignore', 'syslog', 'rotate', 'exec', 'suspend', 'single'] as const;
export type SpaceLeftAction = (typeof SPACE_LEFT_ACTIONS)[number];
export const ADMIN_SPACE_LEFT_ACTIONS = ['ignore', 'syslog', 'rotate', 'exec', 'suspend', 'single', 'halt'] as const;
export type AdminSpaceLeftAction = (typeof ADMIN_SPACE_LEFT_ACTIONS)[number];
export const DISK_FULL_ACTIONS = ['ignore', 'syslog', 'rotate', 'exec', 'suspend', 'single', 'halt'] as const;
export type DiskFullAction = (typeof DISK_FULL_ACTIONS)[number];
export const DISK_ERROR_ACTIONS = ['ignore', 'syslog', 'exec', 'suspend', 'single', 'halt'] as const;
export type DiskErrorAction = (typeof DISK_ERROR_ACTIONS)[number];
/** Every action any disk-space setting can name. */
export type DiskAction = SpaceLeftAction | AdminSpaceLeftAction | DiskFullAction | DiskErrorAction | 'keep_logs';

export interface DiskSpaceConfig {
  spaceLeft: SpaceThreshold;
  spaceLeftAction: SpaceLeftAction;
  spaceLeftExe: string | null;
  adminSpaceLeft: SpaceThreshold;
  adminSpaceLeftAction: AdminSpaceLeftAction;
  adminSpaceLeftExe: string | null;
  diskFullAction: DiskFullAction;
  diskFullExe: string | null;
  diskErrorAction: DiskErrorAction;
  diskErrorExe: string | null;
}

/** What an output does when its spool (or a remote peer's disk) cannot take more records. */
export const SPOOL_FULL_ACTIONS = ['ignore', 'syslog', 'suspend', 'exec', 'single', 'halt'] as const;
export type SpoolFullAction = (typeof SPOOL_FULL_ACTIONS)[number];
/** audisp-remote's network_failure_action, minus `stop` (records keep spooling; the output never exits). */
export const NETWORK_FAILURE_ACTIONS = ['ignore', 'syslog', 'suspend', 'exec', 'single', 'halt'] as const;
export type NetworkFailureAction = (typeof NETWORK_FAILURE_ACTIONS)[number];
export const PLUGIN_FORMATS = ['string', 'binary'] as const;
export type PluginFormat = (typeof PLUGIN_FORMATS)[number];

export interface SpoolSpec {
  /** Directory of the on-disk spool; null keeps the queue in memory (lost on restart). */
  dir: string | null;
  maxBytes: number;
  fullAction: SpoolFullAction;
  fullExe: string | null;
}

interface OutputSpecBase {
  name: string;
  /** How records are formatted as lines before they are sent (auditd log_format). */
  format: LogFormat;
  spool: SpoolSpec;
  pos?: SourcePos;
}

/** auditd remote-logging client (audisp-remote's managed format). */
export interface RemoteOutputSpec extends OutputSpecBase {
  type: 'remote';
  host: string;
  port: number;
  /** Seconds of idle connection before a HEARTBEAT; 0 = none (audisp-remote heartbeat_timeout). */
  heartbeatTimeout: number;
  /** Milliseconds to wait for an ACK before the connection is considered dead. */
  ackTimeoutMs: number;
  networkRetryMs: number;
  networkFailureAction: NetworkFailureAction;
  networkFailureExe: string | null;
  /**
   * Frames sent before waiting for acks; auditd's listener acks in order, so >1 pipelines. 1 = audisp-remote's
   * stop-and-wait.
   */
  window: number;
}

export interface TlsSpec {
  ca: string | null;
  cert: string | null;
  key: string | null;
  /** Name checked against the server certificate; defaults to host. */
  serverName: string | null;
  verify: boolean;
}

/** RFC 5424 syslog over TCP with octet-counting framing (RFC 6587 3.4.1), optionally TLS (RFC 5425). */
export interface SyslogOutputSpec extends OutputSpecBase {
  type: 'syslog';
  host: string;
  port: number;
  tls: TlsSpec | null;
  facility: number;
  severity: number;
  appName: string;
  /** HOSTNAME field; null = os.hostname(). */
  hostname: string | null;
  networkRetryMs: number;
  networkFailureAction: NetworkFailureAction;
  networkFailureExe: string | null;
  /** Plain syslog has no acks: after a broken connection, records written in this many ms before it are sent again. */
  resendWindowMs: number;
}

/** An auditd plugin (auditd-plugins(5)): an executable fed records on stdin. */
export interface PluginOutputSpec extends OutputSpecBase {
  type: 'plugin';
  path: string;
  args: string[];
  pluginFormat: PluginFormat;
  maxRestarts: number;
  /**
   * A pipe has no acks: records written this many ms before a crash are fed to the restarted plugin again (default
   * 1000).
   */
  resendWindowMs?: number;
  /** Run the plugin as this user (name or uid) and its primary group, with no supplementary groups or capabilities. */
  user?: string;
}

/** How a NATS client reaches and authenticates to the servers (output and collector share it). */
export interface NatsConnSpec {
  /** `nats://host:port` or `tls://host:port` URLs (no credentials in them). */
  servers: string[];
  tls: TlsSpec | null;
  user: string | null;
  password: string | null;
  token: string | null;
  /** A NATS credentials file (JWT + nkey seed), read with a size bound at start. */
  creds: string | null;
}

export const NATS_PAYLOADS = ['text', 'json'] as const;
export type NatsPayload = (typeof NATS_PAYLOADS)[number];

/** NATS JetStream: one message per event, `Nats-Msg-Id` from node, boot, time and serial, sent until acknowledged. */
export interface NatsOutputSpec extends OutputSpecBase, NatsConnSpec {
  type: 'nats';
  /** The daemon the output belongs to ("host" or an auxiliary daemon's name), for `{daemon}` in the subject. */
  daemon: string;
  /** Subject template: dot-separated tokens, each literal or one of {node}, {daemon}, {contid}. */
  subject: string;
  stream: string;
  /** Create the stream when missing (else refuse to publish until it exists). */
  createStream: boolean;
  /** Subjects of a created stream; default: the template with placeholders as `*`. */
  streamSubjects: string[];
  replicas: number;
  duplicateWindowMs: number;
  payload: NatsPayload;
  ackTimeoutMs: number;
  /** Messages published and not yet acknowledged, at most. */
  maxInFlight: number;
  networkRetryMs: number;
  networkFailureAction: NetworkFailureAction;
  networkFailureExe: string | null;
}

export type OutputSpec = RemoteOutputSpec | SyslogOutputSpec | PluginOutputSpec | NatsOutputSpec;

/** What the aggregator does with the `node=` a remote peer writes (see docs/security.md). */
export const NODE_POLICIES = ['prefix', 'check', 'keep'] as const;
export type NodePolicy = (typeof NODE_POLICIES)[number];

/** The listener's TLS: its own certificate and the CA that client certificates must chain to. */
export interface ListenTlsSpec {
  cert: string;
  key: string;
  /** CA bundle for client certificates. */
  ca: string;
  /** Refuse a client without a valid certificate (always true unless the operator turns it off explicitly). */
  requireClientCert: boolean;
}

/**
 * auditd aggregator listener (tcp_listen_port), hardened: loopback unless an address is given, TLS with client
 * certificates (plain TCP only when asked for), node= bound to the peer's identity, caps, idle timeout, rate limit,
 * and remote records in a log of their own unless `log: host`.
 */
export interface ListenConfig {
  port: number;
  address: string;
  /** listen() backlog (tcp_listen_queue). */
  queue: number;
  /** Concurrent connections per client address (tcp_max_per_addr). */
  maxPerAddr: number;
  /** Concurrent connections in all. */
  maxConnections?: number;
  /** Seconds without traffic before a client is dropped; 0 = never (tcp_client_max_idle). */
  clientMaxIdle: number;
  /** Allowed client source ports, inclusive (tcp_client_ports); null = any. */
  clientPorts: { min: number; max: number } | null;
  /** null = plain TCP (audisp-remote's only transport). */
  tls?: ListenTlsSpec | null;
  /** Plain TCP on an address other than loopback was asked for explicitly (`plain_tcp: true`). */
  plainTcp?: boolean;
  nodePolicy?: NodePolicy;
  /** Records (and heartbeats) per second per client address; 0 = unlimited. */
  rateLimit?: number;
  /** Records a client address may send at once above the rate. */
  rateBurst?: number;
  /**
   * Log for remote records; null = the host log (`log: host`, auditd's behaviour). Absent = the host log (old callers).
   */
  log?: OutputConfig | null;
  pos?: SourcePos;
}

/** Defaults of the hardening settings, shared by the config reader and the listener. */
export const LISTEN_DEFAULTS = Object.freeze({
  address: '127.0.0.1',
  maxPerAddr: 1,
  maxConnections: 64,
  clientMaxIdle: 600,
  nodePolicy: 'prefix' as NodePolicy,
  rateLimit: 1000,
  rateBurst: 5000,
  remoteLogName: 'remote.log',
});

export interface KernelConfig {
  /** 0 off, 1 on, 2 on and immutable (applied after the rules, since nothing can change afterwards). */
  enabled: 0 | 1 | 2;
  /** 0 silent, 1 printk, 2 panic. */
  failure: 0 | 1 | 2;
  backlogLimit: number;
  /** Records per second, 0 = unlimited. */
  rateLimit: number;
  /** Kernel ticks (ms at HZ=1000) a task waits when the backlog is full; the kernel caps it at 10 × 60 × HZ. */
  backlogWaitTime: number;
  loginuidImmutable: boolean;
  resetLostOnStart: boolean;
}

export interface HostConfig {
  nodeName: { format: NameFormat; name: string | null };
  kernel: KernelConfig;
  /** A rules file or an augenrules-style directory of *.rules; null = leave the kernel's rules alone. */
  rules: string | null;
  log: OutputConfig;
  keep: KeepMode;
  controlSocket: string;
  reassembly: { timeoutMs: number; maxInFlight: number };
  /** SO_RCVBUFFORCE size in bytes for the netlink socket. */
  receiveBuffer: number;
  /** The daemon runs at nice -priorityBoost (auditd's priority_boost); 0 = leave the priority alone. */
  priorityBoost: number;
  diagnostics: { level: DiagLevel };
  /** Extra outputs (remote, syslog, plugin) besides the log. */
  outputs: OutputSpec[];
  /** Aggregator listener; null = off. */
  listen: ListenConfig | null;
  /** Prometheus metrics on a local address or a textfile (src/config/metrics.ts); null = off. */
  metrics: MetricsSpec | null;
}

export const AUX_ISOLATIONS = ['inline', 'process'] as const;
export type AuxIsolation = (typeof AUX_ISOLATIONS)[number];
/** Only a process of its own can run as another user: the host process stays root. */
export const defaultIsolation = (user: string | null | undefined): AuxIsolation => (user ? 'process' : 'inline');

export interface QueueConfig {
  depth: number;
  overflow: OverflowAction;
  /** Only with overflow `block`: how long the router waits before dropping the event anyway. */
  blockTimeoutMs: number;
}

export interface DaemonConfig {
  name: string;
  rules: string | null;
  log: OutputConfig;
  queue: QueueConfig;
  /** User name or numeric uid to run as; null = the host daemon's user. */
  user: string | null;
  /**
   * `inline`: the daemon's log and outputs are written by the host process (no process of its own: no memory per
   * daemon beyond its buffers). `process`: its own Node.js process, which can drop to `user`. Default: process when
   * `user` is set, else inline.
   */
  isolation: AuxIsolation;
  maxRestarts: number;
  /** Extra outputs (remote, syslog, plugin) besides the log; absent = none (daemons added at run time have none). */
  outputs?: OutputSpec[];
  /** Where the daemon is defined, for errors found after parsing (failed start, missing rules file). */
  pos: SourcePos;
}

export type { ContidPattern, ContainerSelector };

export interface RouteConfig {
  /** 0-based position in the table; routes are tried in this order. */
  index: number;
  /** Empty when the route selects by container metadata alone. */
  contid: ContidPattern[];
  /** Container metadata (name, image, runtime, pod, namespace, labels) the event's container must have. */
  container?: ContainerSelector;
  /** Record type numbers, or null for every type. */
  types: number[] | null;
  /** Rule keys, or null for any key (including none). */
  keys: string[] | null;
  daemons: string[];
  /** Keep trying later routes after this one matched. */
  continue: boolean;
  pos: SourcePos;
  /** A daemon template's route: the daemon is the one of the container's value of `key` (made on its first event). */
  template?: TemplateRoute;
}

/** The metadata field a daemon template is keyed by: a field of the registry, or one label. */
export type TemplateKey = { field: MetaField } | { label: string };

/** What a router asks a template: the daemon of a value (null: none, e.g. over the cap). */
export interface TemplateRoute {
  name: string;
  key: TemplateKey;
  /** `create` false: only say which daemon it would be (`route test`), never make one. */
  resolve(value: string, create: boolean): string | null;
}

export const TEMPLATE_IDLE_ACTIONS = ['stop', 'keep'] as const;
export type TemplateIdleAction = (typeof TEMPLATE_IDLE_ACTIONS)[number];

/**
 * `daemon_templates[]`: one auxiliary daemon per distinct value of a container metadata field, made on the first event
 * of a container with that value (src/daemon/templates.ts).
 */
export interface DaemonTemplate {
  name: string;
  key: TemplateKey;
  /** The key as written: `namespace`, `label.team`. */
  keyText: string;
  /** Only containers matching this selector get a daemon from the template. */
  container: ContainerSelector | null;
  /** Daemons of this template that may exist at once (running, being made or stopping). */
  max: number;
  idle: { afterMs: number; action: TemplateIdleAction };
  rules: string | null;
  /** The log's settings; `file` is a pattern with `{value}`/`{name}`, or null for the default beside the host log. */
  log: OutputConfig;
  logPattern: string | null;
  queue: QueueConfig;
  user: string | null;
  isolation: AuxIsolation;
  maxRestarts: number;
  pos: SourcePos;
}

export interface CgroupMapEntry {
  /** The glob as written. */
  pattern: string;
  /** Path components of the glob from the root (`**` = any number of components); see src/contid/cgroup-glob.ts. */
  segments: string[];
  contid: bigint;
  pos: SourcePos;
}

export interface Config {
  version: 1;
  /** Absolute path of the file this came from; null for the built-in defaults. */
  file: string | null;
  host: HostConfig;
  daemons: DaemonConfig[];
  routes: RouteConfig[];
  contid: { cgroupMap: CgroupMapEntry[] };
  /** `daemon_templates:`; absent in configs built by hand (tests, `aux add`) = none. */
  templates?: DaemonTemplate[];
  /** Where each scalar setting was written (`host.rules`, `daemons[0].log.file`), for errors found after parsing. */
  sources: Map<string, SourcePos>;
}

export const DEFAULT_CONFIG_PATH = '/etc/auditmux/auditmux.yaml';
export const DEFAULT_LOG_DIR = '/var/log/auditmux';

/** auditd's shipped auditd.conf values (init.d/auditd.conf). */
export function defaultDiskSpace(): DiskSpaceConfig {
  return {
    spaceLeft: { value: 75, unit: 'MiB' },
    spaceLeftAction: 'syslog',
    spaceLeftExe: null,
    adminSpaceLeft: { value: 50, unit: 'MiB' },
    adminSpaceLeftAction: 'suspend',
    adminSpaceLeftExe: null,
    diskFullAction: 'suspend',
    diskFullExe: null,
    diskErrorAction: 'suspend',
    diskErrorExe: null,
  };
}

export const DEFAULT_OUTPUT: Readonly<Omit<OutputConfig, 'file'>> = Object.freeze({
  format: 'ENRICHED',
  flush: 'incremental_async',
  freq: 50,
  maxLogFileMiB: 8,
  maxLogFileAction: 'rotate',
  numLogs: 5,
  logGroup: 'root',
});

export const DEFAULT_KERNEL: Readonly<KernelConfig> = Object.freeze({
  enabled: 1,
  failure: 1,
  backlogLimit: 8192,
  rateLimit: 0,
  backlogWaitTime: 60000,
  loginuidImmutable: false,
  resetLostOnStart: false,
});

export const DEFAULT_QUEUE: Readonly<QueueConfig> = Object.freeze({
  depth: 10000,
  // Blocking would let a slow auxiliary daemon back up the host's netlink reader and, through the kernel backlog, the
  // audited processes; auditd's own overflow_action also loses the current event.
  overflow: 'drop_newest',
  blockTimeoutMs: 1000,
});

export const DEFAULT_MAX_RESTARTS = 10;

/** A fresh copy of the built-in defaults, so callers can mutate their copy. */
export function defaultConfig(): Config {
  return {
    version: 1,
    file: null,
    host: {
      nodeName: { format: 'none', name: null },
      kernel: { ...DEFAULT_KERNEL },
      rules: '/etc/auditmux/rules.d',
      log: { file: `${DEFAULT_LOG_DIR}/audit.log`, ...DEFAULT_OUTPUT },
      keep: 'all',
      controlSocket: '/run/auditmux/control.sock',
      reassembly: { timeoutMs: 2000, maxInFlight: 4096 },
      receiveBuffer: 8 * 1024 * 1024,
      priorityBoost: 4,
      diagnostics: { level: 'info' },
      outputs: [],
      listen: null,
      metrics: null,
    },
    daemons: [],
    routes: [],
    contid: { cgroupMap: [] },
    templates: [],
    sources: new Map(),
  };
}
