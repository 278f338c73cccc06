// YAML readers for `outputs:` (remote, syslog, plugin), `host.listen` and the log's auditd disk-space options.
import { dirname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { isScalar, type Node } from 'yaml';
import { NAME_PATTERN, NAME_RE } from '../shared';
import {
  ADMIN_SPACE_LEFT_ACTIONS,
  DISK_ERROR_ACTIONS,
  DISK_FULL_ACTIONS,
  LOG_FORMATS,
  NATS_PAYLOADS,
  NETWORK_FAILURE_ACTIONS,
  PLUGIN_FORMATS,
  SPACE_LEFT_ACTIONS,
  SPOOL_FULL_ACTIONS,
  defaultDiskSpace,
  type DiskSpaceConfig,
  DEFAULT_OUTPUT,
  LISTEN_DEFAULTS,
  NODE_POLICIES,
  type ListenConfig,
  type ListenTlsSpec,
  type OutputConfig,
  type NatsConnSpec,
  type NatsOutputSpec,
  type OutputSpec,
  type SpaceThreshold,
  type SpoolSpec,
  type TlsSpec,
} from './schema';
import { didYouMean, type Entry, type Walker } from './walk';
import { MAX_ACCOUNT_ID } from '../vocab/accounts';

export const DEFAULT_SPOOL_DIR = '/var/spool/auditmux';
export const DEFAULT_SPOOL_MIB = 64;
export const DISK_SPACE_KEYS = [
  'space_left',
  'space_left_action',
  'space_left_exe',
  'admin_space_left',
  'admin_space_left_action',
  'admin_space_left_exe',
  'disk_full_action',
  'disk_full_exe',
  'disk_error_action',
  'disk_error_exe',
] as const;
const COMMON_KEYS = ['name', 'type', 'log_format', 'spool'] as const;
const REMOTE_KEYS = [
  ...COMMON_KEYS,
  'host',
  'port',
  'heartbeat_timeout',
  'ack_timeout',
  'network_retry_time',
  'network_failure_action',
  'network_failure_exe',
  'window',
] as const;
const SYSLOG_KEYS = [
  ...COMMON_KEYS,
  'host',
  'port',
  'tls',
  'facility',
  'severity',
  'app_name',
  'hostname',
  'network_retry_time',
  'network_failure_action',
  'network_failure_exe',
  'resend_window_ms',
] as const;
const PLUGIN_KEYS = [...COMMON_KEYS, 'path', 'args', 'format', 'max_restarts', 'user'] as const;
const ACCOUNT_RE = /^(?:[0-9]{1,10}|[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?)$/;
export const NATS_CONN_KEYS = ['servers', 'tls', 'user', 'password', 'token', 'creds'] as const;
const NATS_KEYS = [
  ...COMMON_KEYS,
  ...NATS_CONN_KEYS,
  'subject',
  'stream',
  'create_stream',
  'stream_subjects',
  'replicas',
  'duplicate_window',
  'payload',
  'ack_timeout',
  'max_in_flight',
  'network_retry_time',
  'network_failure_action',
  'network_failure_exe',
] as const;
const SPOOL_KEYS = ['dir', 'size', 'full_action', 'full_exe'] as const;
const TLS_KEYS = ['ca', 'cert', 'key', 'server_name', 'verify'] as const;
const LISTEN_KEYS = [
  'port',
  'address',
  'queue',
  'max_per_addr',
  'max_connections',
  'client_max_idle',
  'client_ports',
  'tls',
  'plain_tcp',
  'node_policy',
  'rate_limit',
  'rate_burst',
  'log',
] as const;
const LISTEN_TLS_KEYS = ['cert', 'key', 'ca', 'require_client_cert'] as const;
const OUTPUT_TYPES = ['remote', 'syslog', 'plugin', 'nats'] as const;
const HOST_RE = /^[A-Za-z0-9._:-]{1,253}$/;
/** syslog(3) facility names as rsyslog and RFC 5424 number them. */
export const FACILITIES: Record<string, number> = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};
export const SEVERITIES: Record<string, number> = {
  emerg: 0,
  alert: 1,
  crit: 2,
  err: 3,
  warning: 4,
  notice: 5,
  info: 6,
  debug: 7,
};

/** auditd's space_left syntax: an integer (MiB), `NMiB`, or `N%`. */
export function parseThreshold(w: Walker, e: Entry, where: string): SpaceThreshold | undefined {
  const s = w.scalarText(e.value, where, e.key);
  if (!s) return undefined;
  const m = /^([0-9]{1,9})(MiB|M|%)?$/.exec(s.text.trim());
  if (!m)
    return w.error(
      s.node,
      `${where} must be MiB (75, 75MiB) or a percentage of the file system (25%), got "${s.text.slice(0, 40)}"`,
    );
  const value = Number(m[1]);
  if (m[2] === '%') {
    if (value > 99) return w.error(s.node, `${where} must be a percentage from 0% to 99%, got ${s.text}`);
    return { value, unit: '%' };
  }
  return { value, unit: 'MiB' };
}

function exePath(w: Walker, e: Entry, where: string): string | undefined {
  const s = w.string(e, where);
  if (s === undefined) return undefined;
  // auditd runs these as root without a shell: only an absolute path is unambiguous.
  if (!isAbsolute(s)) return w.error(e.value, `${where} must be an absolute path, got "${s.slice(0, 60)}"`, e.key);
  return s;
}

/** Requires the `<action>_exe` companion when an action is exec, as auditd does. */
function needExe(w: Walker, action: string, exe: string | null, actionEntry: Entry | undefined, where: string): void {
  if (action === 'exec' && !exe && actionEntry)
    w.error(actionEntry.value, `${where}: exec needs ${where.replace(/_action$/, '_exe')}`, actionEntry.key);
}

/** Reads the disk-space keys of a `log:` mapping; undefined when none is present. */
export function readDiskSpace(w: Walker, m: Map<string, Entry>, where: string): DiskSpaceConfig | undefined {
  if (!DISK_SPACE_KEYS.some((k) => m.has(k))) return undefined;
  const d = defaultDiskSpace();
  let x: Entry | undefined;
  if ((x = m.get('space_left'))) d.spaceLeft = parseThreshold(w, x, `${where}.space_left`) ?? d.spaceLeft;
  if ((x = m.get('admin_space_left')))
    d.adminSpaceLeft = parseThreshold(w, x, `${where}.admin_space_left`) ?? d.adminSpaceLeft;
  if ((x = m.get('space_left_action')))
    d.spaceLeftAction = w.choice(x, `${where}.space_left_action`, SPACE_LEFT_ACTIONS) ?? d.spaceLeftAction;
  if ((x = m.get('admin_space_left_action')))
    d.adminSpaceLeftAction =
      w.choice(x, `${where}.admin_space_left_action`, ADMIN_SPACE_LEFT_ACTIONS) ?? d.adminSpaceLeftAction;
  if ((x = m.get('disk_full_action')))
    d.diskFullAction = w.choice(x, `${where}.disk_full_action`, DISK_FULL_ACTIONS) ?? d.diskFullAction;
  if ((x = m.get('disk_error_action')))
    d.diskErrorAction = w.choice(x, `${where}.disk_error_action`, DISK_ERROR_ACTIONS) ?? d.diskErrorAction;
  if ((x = m.get('space_left_exe'))) d.spaceLeftExe = exePath(w, x, `${where}.space_left_exe`) ?? null;
  if ((x = m.get('admin_space_left_exe'))) d.adminSpaceLeftExe = exePath(w, x, `${where}.admin_space_left_exe`) ?? null;
  if ((x = m.get('disk_full_exe'))) d.diskFullExe = exePath(w, x, `${where}.disk_full_exe`) ?? null;
  if ((x = m.get('disk_error_exe'))) d.diskErrorExe = exePath(w, x, `${where}.disk_error_exe`) ?? null;
  needExe(w, d.spaceLeftAction, d.spaceLeftExe, m.get('space_left_action'), `${where}.space_left_action`);
  needExe(
    w,
    d.adminSpaceLeftAction,
    d.adminSpaceLeftExe,
    m.get('admin_space_left_action'),
    `${where}.admin_space_left_action`,
  );
  needExe(w, d.diskFullAction, d.diskFullExe, m.get('disk_full_action'), `${where}.disk_full_action`);
  needExe(w, d.diskErrorAction, d.diskErrorExe, m.get('disk_error_action'), `${where}.disk_error_action`);
  // auditd refuses a configuration where the emergency level is not below the warning level.
  if (d.spaceLeft.unit === d.adminSpaceLeft.unit && d.spaceLeft.value <= d.adminSpaceLeft.value) {
    const e = m.get('space_left') ?? (m.get('admin_space_left') as Entry);
    w.error(
      e.value,
      `${where}.space_left (${d.spaceLeft.value}${d.spaceLeft.unit}) must be larger than admin_space_left (${d.adminSpaceLeft.value}${d.adminSpaceLeft.unit})`,
      e.key,
    );
  }
  return d;
}

function hostName(w: Walker, e: Entry, where: string): string | undefined {
  const s = w.string(e, where);
  if (s === undefined) return undefined;
  if (!HOST_RE.test(s))
    return w.error(e.value, `${where} must be a host name or IP address, got "${s.slice(0, 60)}"`, e.key);
  return s;
}

function readSpool(w: Walker, e: Entry | undefined, where: string, defaultDir: string, baseDir: string): SpoolSpec {
  const sp: SpoolSpec = {
    dir: defaultDir,
    maxBytes: DEFAULT_SPOOL_MIB * 1024 * 1024,
    fullAction: 'syslog',
    fullExe: null,
  };
  if (!e) return sp;
  const m = w.mapping(e.value, where, SPOOL_KEYS, e.key);
  if (!m) return sp;
  let x: Entry | undefined;
  if ((x = m.get('dir'))) {
    const d = w.nullableString(x, `${where}.dir`);
    if (d === null) sp.dir = null;
    else if (d !== undefined) {
      if (d.length === 0 || d.includes('\0')) w.error(x.value, `${where}.dir is not a usable path`, x.key);
      else sp.dir = resolvePath(baseDir, d);
    }
  }
  if ((x = m.get('size'))) sp.maxBytes = (w.integer(x, `${where}.size`, 1, 1048576) ?? DEFAULT_SPOOL_MIB) * 1024 * 1024;
  const fa = m.get('full_action');
  if (fa) sp.fullAction = w.choice(fa, `${where}.full_action`, SPOOL_FULL_ACTIONS) ?? sp.fullAction;
  if ((x = m.get('full_exe'))) sp.fullExe = exePath(w, x, `${where}.full_exe`) ?? null;
  needExe(w, sp.fullAction, sp.fullExe, fa, `${where}.full_action`);
  return sp;
}

function readTls(w: Walker, e: Entry, where: string, baseDir: string): TlsSpec | null | undefined {
  if (w.resolve(e.value) === null) return null;
  const m = w.mapping(e.value, where, TLS_KEYS, e.key);
  if (!m) return undefined;
  const t: TlsSpec = { ca: null, cert: null, key: null, serverName: null, verify: true };
  const file = (k: 'ca' | 'cert' | 'key'): void => {
    const x = m.get(k);
    if (!x) return;
    const s = w.string(x, `${where}.${k}`);
    if (s !== undefined) t[k] = resolvePath(baseDir, s);
  };
  file('ca');
  file('cert');
  file('key');
  let x: Entry | undefined;
  if ((x = m.get('server_name'))) t.serverName = w.string(x, `${where}.server_name`) ?? null;
  if ((x = m.get('verify'))) t.verify = w.boolean(x, `${where}.verify`) ?? true;
  if ((t.cert === null) !== (t.key === null))
    w.error(w.resolve(e.value), `${where} needs both cert and key for a client certificate`, e.key);
  return t;
}

function networkCommon(
  w: Walker,
  m: Map<string, Entry>,
  where: string,
): { retry: number; action: (typeof NETWORK_FAILURE_ACTIONS)[number]; exe: string | null } {
  let x: Entry | undefined;
  let retry = 1000;
  if ((x = m.get('network_retry_time'))) retry = (w.integer(x, `${where}.network_retry_time`, 1, 3600) ?? 1) * 1000;
  const ae = m.get('network_failure_action');
  const action = ae ? (w.choice(ae, `${where}.network_failure_action`, NETWORK_FAILURE_ACTIONS) ?? 'syslog') : 'syslog';
  const exe = (x = m.get('network_failure_exe')) ? (exePath(w, x, `${where}.network_failure_exe`) ?? null) : null;
  needExe(w, action, exe, ae, `${where}.network_failure_action`);
  return { retry, action, exe };
}

/**
 * Subject tokens the template may use; each is filled from the event and sanitised (see output/nats/subject.ts). The
 * container's fields come from the host's registry (`none` when unknown, and in a process-isolated daemon).
 */
export const NATS_PLACEHOLDERS = [
  '{node}',
  '{daemon}',
  '{contid}',
  '{name}',
  '{image}',
  '{runtime}',
  '{pod}',
  '{namespace}',
] as const;
const NATS_SERVER_RE = /^(?:(?:nats|tls):\/\/)?(?:[A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/;
const NATS_STREAM_RE = /^[A-Za-z0-9_-]{1,64}$/;
const NATS_LITERAL_TOKEN_RE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Checks a subject template: 1-16 dot-separated tokens, each a literal or one placeholder; `*`/`>` only as `>` at the
 * end of stream subjects.
 */
export function natsTemplateError(t: string, wildcards: boolean): string | null {
  if (t.length === 0 || t.length > 255) return 'must be 1-255 characters';
  const toks = t.split('.');
  if (toks.length > 16) return 'has more than 16 tokens';
  for (let i = 0; i < toks.length; i++) {
    const k = toks[i] as string;
    if ((NATS_PLACEHOLDERS as readonly string[]).includes(k)) {
      if (wildcards) return `cannot use ${k} (stream subjects take * and >)`;
      continue;
    }
    if (wildcards && (k === '*' || (k === '>' && i === toks.length - 1))) continue;
    if (!NATS_LITERAL_TOKEN_RE.test(k)) {
      return `token "${k.slice(0, 40)}" must be [A-Za-z0-9_-]{1,64}${wildcards ? ', * or a final >' : ` or one of ${NATS_PLACEHOLDERS.join(', ')}`}`;
    }
  }
  return null;
}

/** The connection half of a NATS mapping (servers, tls, credentials); shared by the output and the collector. */
export function readNatsConn(
  w: Walker,
  m: Map<string, Entry>,
  where: string,
  owner: Node | null,
  ownerKey: Node | null,
  baseDir: string,
): NatsConnSpec {
  const c: NatsConnSpec = { servers: [], tls: null, user: null, password: null, token: null, creds: null };
  let x: Entry | undefined;
  if ((x = m.get('servers'))) {
    for (const it of w.sequence(x.value, `${where}.servers`, x.key, true) ?? []) {
      const s = w.scalarText(it, `${where}.servers`, x.key);
      if (!s) continue;
      if (!NATS_SERVER_RE.test(s.text))
        w.error(
          s.node,
          `${where}.servers: "${s.text.slice(0, 60)}" must be nats://host:port or tls://host:port (credentials go in user/password/token/creds)`,
        );
      else c.servers.push(s.text);
    }
  } else w.error(owner, `${where} needs servers: a list of nats://host:port`, ownerKey);
  if ((x = m.get('tls'))) c.tls = readTls(w, x, `${where}.tls`, baseDir) ?? null;
  const str = (k: 'user' | 'password' | 'token'): void => {
    const e = m.get(k);
    if (!e) return;
    const s = w.string(e, `${where}.${k}`);
    if (s !== undefined && (s.length === 0 || s.length > 4096 || /[\x00-\x1f\x7f]/.test(s)))
      w.error(e.value, `${where}.${k} must be 1-4096 characters without control characters`, e.key);
    else if (s !== undefined) c[k] = s;
  };
  str('user');
  str('password');
  str('token');
  if ((x = m.get('creds'))) {
    const s = w.string(x, `${where}.creds`);
    if (s !== undefined) c.creds = resolvePath(baseDir, s);
  }
  if ((c.user === null) !== (c.password === null)) w.error(owner, `${where} needs both user and password`, ownerKey);
  const kinds = [c.user !== null, c.token !== null, c.creds !== null].filter(Boolean).length;
  if (kinds > 1) w.error(owner, `${where}: use one of user/password, token or creds`, ownerKey);
  return c;
}

type NatsParsed = Omit<NatsOutputSpec, 'name' | 'format' | 'spool' | 'pos'>;

function readNats(
  w: Walker,
  m: Map<string, Entry>,
  wi: string,
  node: Node | null,
  item: Node | null,
  owner: string,
  baseDir: string,
): NatsParsed | undefined {
  const conn = readNatsConn(w, m, wi, node, item, baseDir);
  let x: Entry | undefined;
  let subject = 'audit.{node}.{daemon}.{contid}';
  if ((x = m.get('subject'))) {
    const s = w.string(x, `${wi}.subject`);
    const err = s === undefined ? null : natsTemplateError(s, false);
    if (err) w.error(x.value, `${wi}.subject ${err}`, x.key);
    else if (s !== undefined) subject = s;
  }
  let stream = 'AUDIT';
  if ((x = m.get('stream'))) {
    const s = w.string(x, `${wi}.stream`);
    if (s !== undefined && !NATS_STREAM_RE.test(s)) w.error(x.value, `${wi}.stream must be [A-Za-z0-9_-]{1,64}`, x.key);
    else if (s !== undefined) stream = s;
  }
  const createStream = (x = m.get('create_stream')) ? (w.boolean(x, `${wi}.create_stream`) ?? false) : false;
  const streamSubjects: string[] = [];
  if ((x = m.get('stream_subjects'))) {
    for (const it of w.sequence(x.value, `${wi}.stream_subjects`, x.key, true) ?? []) {
      const s = w.scalarText(it, `${wi}.stream_subjects`, x.key);
      const err = s ? natsTemplateError(s.text, true) : null;
      if (s && err) w.error(s.node, `${wi}.stream_subjects "${s.text.slice(0, 60)}" ${err}`);
      else if (s) streamSubjects.push(s.text);
    }
  }
  if (streamSubjects.length === 0)
    streamSubjects.push(
      subject
        .split('.')
        .map((t) => (t.startsWith('{') ? '*' : t))
        .join('.'),
    );
  const replicas = (x = m.get('replicas')) ? (w.integer(x, `${wi}.replicas`, 1, 5) ?? 1) : 1;
  const dup = (x = m.get('duplicate_window')) ? (w.integer(x, `${wi}.duplicate_window`, 1, 86400) ?? 120) : 120;
  const payload = (x = m.get('payload')) ? (w.choice(x, `${wi}.payload`, NATS_PAYLOADS) ?? 'text') : 'text';
  const ack = (x = m.get('ack_timeout')) ? (w.integer(x, `${wi}.ack_timeout`, 1, 3600) ?? 10) : 10;
  const mif = (x = m.get('max_in_flight')) ? (w.integer(x, `${wi}.max_in_flight`, 1, 4096) ?? 256) : 256;
  const net = networkCommon(w, m, wi);
  return {
    type: 'nats',
    ...conn,
    daemon: owner,
    subject,
    stream,
    createStream,
    streamSubjects,
    replicas,
    duplicateWindowMs: dup * 1000,
    payload,
    ackTimeoutMs: ack * 1000,
    maxInFlight: mif,
    networkRetryMs: net.retry,
    networkFailureAction: net.action,
    networkFailureExe: net.exe,
  };
}

/**
 * `outputs:` of the host (owner "host") or of an auxiliary daemon. Spools default to
 * /var/spool/auditmux/OWNER/NAME, so two daemons' outputs never share a directory; `spoolBase` replaces
 * /var/spool/auditmux/OWNER (a daemon with a user spools in its own directory, src/config/aux-paths.ts).
 */
export function readOutputs(
  w: Walker,
  e: Entry,
  where: string,
  owner: string,
  baseDir: string,
  spoolBase = join(DEFAULT_SPOOL_DIR, owner),
): OutputSpec[] {
  const items = w.sequence(e.value, where, e.key);
  if (!items) return [];
  const out: OutputSpec[] = [];
  const names = new Map<string, Node>();
  items.forEach((item, i) => {
    const wi = `${where}[${i}]`;
    const node = w.resolve(item);
    const pre = w.mapping(item, wi, [...new Set([...REMOTE_KEYS, ...SYSLOG_KEYS, ...PLUGIN_KEYS, ...NATS_KEYS])]);
    if (!pre) return;
    const te = pre.get('type');
    if (!te) {
      w.error(node, `${wi} needs a type: ${OUTPUT_TYPES.join(', ')}`, item);
      return;
    }
    const type = w.choice(te, `${wi}.type`, OUTPUT_TYPES);
    if (!type) return;
    const allowed: readonly string[] =
      type === 'remote' ? REMOTE_KEYS : type === 'syslog' ? SYSLOG_KEYS : type === 'nats' ? NATS_KEYS : PLUGIN_KEYS;
    for (const [k, v] of pre) {
      if (!allowed.includes(k))
        w.error(v.key, `${wi}: ${k} does not apply to a ${type} output${didYouMean(k, allowed)}`);
    }
    const m = pre;
    const ne = m.get('name');
    let name: string = type === 'plugin' ? `plugin${i}` : `${type}${i}`;
    if (ne) {
      const s = w.string(ne, `${wi}.name`);
      if (s !== undefined && !NAME_RE.test(s))
        w.error(ne.value, `${wi}.name "${s.slice(0, 70)}" must match ${NAME_PATTERN}`, ne.key);
      else if (s !== undefined) name = s;
    }
    const first = names.get(name);
    if (first) {
      const p = w.posOf(first);
      w.error(
        ne?.value ?? node,
        `${wi}: duplicate output name "${name}" (first at line ${p.line}:${p.col ?? 1})`,
        ne?.key ?? item,
      );
      return;
    }
    names.set(name, ne?.value ?? node ?? (item as Node));
    let x: Entry | undefined;
    const format = (x = m.get('log_format')) ? (w.choice(x, `${wi}.log_format`, LOG_FORMATS) ?? 'RAW') : 'RAW';
    const spool = readSpool(w, m.get('spool'), `${wi}.spool`, join(spoolBase, name), baseDir);
    const pos = w.posOf(node, item);
    if (type === 'nats') {
      const n = readNats(w, m, wi, node, item, owner, baseDir);
      if (n) out.push({ ...n, name, format, spool, pos });
      return;
    }
    if (type === 'plugin') {
      const pe = m.get('path');
      if (!pe) {
        w.error(node, `${wi} needs a path: the plugin executable`, item);
        return;
      }
      const path = exePath(w, pe, `${wi}.path`);
      const args: string[] = [];
      if ((x = m.get('args'))) {
        for (const a of w.sequence(x.value, `${wi}.args`, x.key, true) ?? []) {
          const t = w.scalarText(a, `${wi}.args`, x.key);
          if (t) args.push(t.text);
        }
      }
      const pf = (x = m.get('format')) ? (w.choice(x, `${wi}.format`, PLUGIN_FORMATS) ?? 'string') : 'string';
      const mr = (x = m.get('max_restarts')) ? (w.integer(x, `${wi}.max_restarts`, 0, 10000) ?? 10) : 10;
      let user: string | undefined;
      if ((x = m.get('user'))) {
        user = w.string(x, `${wi}.user`);
        if (user !== undefined && (!ACCOUNT_RE.test(user) || (/^[0-9]/.test(user) && Number(user) > MAX_ACCOUNT_ID)))
          user = w.error(
            x.value,
            `${wi}.user must be a user name or a numeric uid up to ${MAX_ACCOUNT_ID}, got "${user.slice(0, 40)}"`,
            x.key,
          );
      }
      if (path === undefined) return;
      out.push({
        type: 'plugin',
        name,
        format,
        spool,
        pos,
        path,
        args,
        pluginFormat: pf,
        maxRestarts: mr,
        ...(user !== undefined ? { user } : {}),
      });
      return;
    }
    const he = m.get('host');
    const pe = m.get('port');
    if (!he) w.error(node, `${wi} needs a host`, item);
    const host = he ? hostName(w, he, `${wi}.host`) : undefined;
    const port = pe ? w.integer(pe, `${wi}.port`, 1, 65535) : type === 'remote' ? 60 : 514;
    const net = networkCommon(w, m, wi);
    if (host === undefined || port === undefined) return;
    if (type === 'remote') {
      const hb = (x = m.get('heartbeat_timeout')) ? (w.integer(x, `${wi}.heartbeat_timeout`, 0, 86400) ?? 0) : 0;
      const ack = (x = m.get('ack_timeout')) ? (w.integer(x, `${wi}.ack_timeout`, 1, 3600) ?? 30) : 30;
      const win = (x = m.get('window')) ? (w.integer(x, `${wi}.window`, 1, 1024) ?? 32) : 32;
      out.push({
        type: 'remote',
        name,
        format,
        spool,
        pos,
        host,
        port,
        heartbeatTimeout: hb,
        ackTimeoutMs: ack * 1000,
        networkRetryMs: net.retry,
        networkFailureAction: net.action,
        networkFailureExe: net.exe,
        window: win,
      });
      return;
    }
    const tls = (x = m.get('tls')) ? (readTls(w, x, `${wi}.tls`, baseDir) ?? null) : null;
    const fac = (x = m.get('facility')) ? named(w, x, `${wi}.facility`, FACILITIES, 23) : 13;
    const sev = (x = m.get('severity')) ? named(w, x, `${wi}.severity`, SEVERITIES, 7) : 6;
    const app = (x = m.get('app_name')) ? printable(w, x, `${wi}.app_name`, 48) : 'auditmux';
    const hn = (x = m.get('hostname')) ? printable(w, x, `${wi}.hostname`, 255) : null;
    const rw = (x = m.get('resend_window_ms')) ? (w.integer(x, `${wi}.resend_window_ms`, 0, 600000) ?? 1000) : 1000;
    out.push({
      type: 'syslog',
      name,
      format,
      spool,
      pos,
      host,
      port,
      tls,
      facility: fac ?? 13,
      severity: sev ?? 6,
      appName: app ?? 'auditmux',
      hostname: hn ?? null,
      networkRetryMs: net.retry,
      networkFailureAction: net.action,
      networkFailureExe: net.exe,
      resendWindowMs: rw,
    });
  });
  return out;
}

function named(w: Walker, e: Entry, where: string, table: Record<string, number>, max: number): number | undefined {
  const s = w.scalarText(e.value, where, e.key);
  if (!s) return undefined;
  if (/^[0-9]+$/.test(s.text)) {
    const n = Number(s.text);
    if (n > max || (max === 23 && !Object.values(table).includes(n) && n > 11 && n < 16)) {
      // 12-15 are valid RFC 5424 facilities too (security, console, solaris-cron); only the range is checked.
      if (n > max) return w.error(s.node, `${where} must be 0..${max}, got ${n}`);
    }
    return n;
  }
  const v = table[s.text.toLowerCase()];
  if (v === undefined)
    return w.error(
      s.node,
      `${where} must be a number or one of ${Object.keys(table).join(', ')}; got "${s.text.slice(0, 40)}"${didYouMean(s.text, Object.keys(table))}`,
    );
  return v;
}

function printable(w: Walker, e: Entry, where: string, max: number): string | undefined {
  const s = w.string(e, where);
  if (s === undefined) return undefined;
  if (!/^[\x21-\x7e]+$/.test(s) || s.length > max)
    return w.error(e.value, `${where} must be 1-${max} printable ASCII characters without spaces (RFC 5424)`, e.key);
  return s;
}

/** What readListen needs from the loader: where relative paths start, and its reader for a `log:` mapping. */
export interface ListenContext {
  baseDir: string;
  hostLogFile: string;
  readLog: (e: Entry, where: string, defaultFile: string) => OutputConfig;
}

/** Addresses that only this machine can reach: plain TCP needs no explicit opt-in there. */
export function isLoopback(address: string): boolean {
  return (
    /^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(address) ||
    address === '::1' ||
    address === 'localhost' ||
    address === '::ffff:127.0.0.1'
  );
}

/**
 * `host.listen`: auditd's tcp_listen_port family plus the hardening auditd lacks: loopback by default, TLS with client
 * certificates (plain TCP elsewhere only with `plain_tcp: true`), a node= policy, caps, an idle timeout, a rate limit
 * and a log of its own for remote records.
 */
export function readListen(w: Walker, e: Entry, where: string, ctx?: ListenContext): ListenConfig | null | undefined {
  if (w.resolve(e.value) === null) return null;
  const m = w.mapping(e.value, where, LISTEN_KEYS, e.key);
  if (!m) return undefined;
  const pe = m.get('port');
  if (!pe) return w.error(w.resolve(e.value), `${where} needs a port`, e.key);
  const port = w.integer(pe, `${where}.port`, 1, 65535);
  const D = LISTEN_DEFAULTS;
  const l: ListenConfig = {
    port: port ?? 60,
    address: D.address,
    queue: 5,
    maxPerAddr: D.maxPerAddr,
    maxConnections: D.maxConnections,
    clientMaxIdle: D.clientMaxIdle,
    clientPorts: null,
    tls: null,
    plainTcp: false,
    nodePolicy: D.nodePolicy,
    rateLimit: D.rateLimit,
    rateBurst: D.rateBurst,
    pos: w.posOf(w.resolve(e.value), e.key),
  };
  let x: Entry | undefined;
  if ((x = m.get('address'))) l.address = hostName(w, x, `${where}.address`) ?? l.address;
  if ((x = m.get('queue'))) l.queue = w.integer(x, `${where}.queue`, 1, 65535) ?? l.queue;
  if ((x = m.get('max_per_addr'))) l.maxPerAddr = w.integer(x, `${where}.max_per_addr`, 1, 1024) ?? l.maxPerAddr;
  if ((x = m.get('max_connections')))
    l.maxConnections = w.integer(x, `${where}.max_connections`, 1, 65535) ?? l.maxConnections;
  if ((x = m.get('client_max_idle')))
    l.clientMaxIdle = w.integer(x, `${where}.client_max_idle`, 0, 86400) ?? l.clientMaxIdle;
  if ((x = m.get('client_ports'))) {
    const s = w.scalarText(x.value, `${where}.client_ports`, x.key);
    const mm = s ? /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(s.text) : null;
    const lo = mm ? Number(mm[1]) : NaN;
    const hi = mm ? Number(mm[2] ?? mm[1]) : NaN;
    if (s && (!mm || lo < 1 || hi > 65535 || lo > hi))
      w.error(s.node, `${where}.client_ports must be N or N-M within 1-65535, got "${s.text.slice(0, 40)}"`);
    else if (s) l.clientPorts = { min: lo, max: hi };
  }
  if ((x = m.get('node_policy'))) l.nodePolicy = w.choice(x, `${where}.node_policy`, NODE_POLICIES) ?? l.nodePolicy;
  if ((x = m.get('rate_limit'))) l.rateLimit = w.integer(x, `${where}.rate_limit`, 0, 10_000_000) ?? l.rateLimit;
  if ((x = m.get('rate_burst'))) l.rateBurst = w.integer(x, `${where}.rate_burst`, 1, 10_000_000) ?? l.rateBurst;
  if ((x = m.get('plain_tcp'))) l.plainTcp = w.boolean(x, `${where}.plain_tcp`) ?? false;
  const te = m.get('tls');
  if (te) l.tls = readListenTls(w, te, `${where}.tls`, ctx?.baseDir ?? '/') ?? null;
  if (te && l.tls && l.plainTcp) w.error(te.value, `${where} has both tls and plain_tcp: true; choose one`, te.key);
  // audisp-remote cannot do TLS, so plain TCP stays possible, but off loopback only when the file says so in words.
  if (!te && !l.plainTcp && !isLoopback(l.address)) {
    w.error(
      w.resolve(e.value),
      `${where}: plain TCP on ${l.address} lets anyone who can reach the port write records; configure tls: or set plain_tcp: true`,
      e.key,
    );
  }
  const le = m.get('log');
  const defLog = ctx ? join(dirname(ctx.hostLogFile), D.remoteLogName) : null;
  if (le && isScalar(w.resolve(le.value))) {
    const v = w.choice(le, `${where}.log`, ['host'] as const);
    if (v === 'host') l.log = null;
  } else if (ctx && defLog) {
    l.log = le ? ctx.readLog(le, `${where}.log`, defLog) : { file: defLog, ...DEFAULT_OUTPUT };
    if (l.log.file === ctx.hostLogFile) {
      w.error(
        (le ?? e).value,
        `${where}.log is the host log; write \`log: host\` to mix remote records into it`,
        (le ?? e).key,
      );
    }
  }
  return port === undefined ? undefined : l;
}

function readListenTls(w: Walker, e: Entry, where: string, baseDir: string): ListenTlsSpec | undefined {
  const m = w.mapping(e.value, where, LISTEN_TLS_KEYS, e.key);
  if (!m) return undefined;
  const files: Partial<Record<'cert' | 'key' | 'ca', string>> = {};
  for (const k of ['cert', 'key', 'ca'] as const) {
    const x = m.get(k);
    if (!x) {
      w.error(
        w.resolve(e.value),
        `${where} needs ${k} (the listener's certificate, its key and the CA of client certificates)`,
        e.key,
      );
      continue;
    }
    const s = w.string(x, `${where}.${k}`);
    if (s !== undefined) {
      if (s.length === 0 || s.includes('\0')) w.error(x.value, `${where}.${k} is not a usable path`, x.key);
      else files[k] = resolvePath(baseDir, s);
    }
  }
  let req = true;
  const x = m.get('require_client_cert');
  if (x) req = w.boolean(x, `${where}.require_client_cert`) ?? true;
  if (!files.cert || !files.key || !files.ca) return undefined;
  return { cert: files.cert, key: files.key, ca: files.ca, requireClientCert: req };
}
