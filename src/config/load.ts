// Parses, defaults and validates auditmux.yaml into a Config; every problem is a ConfigError at file:line:col.
import { dirname, resolve as resolvePath } from 'node:path';
import type { Node } from 'yaml';
import { AuditmuxError, ConfigError } from '../errors';
import { readBounded } from '../safefs';
import { AUDIT_MAX_KEY_LEN, PATH_MAX } from '../kernel/constants';
import { compileCgroupGlob } from '../contid/cgroup-glob';
import { parseContidSelector, parseContidValue } from '../contid/selectors';
import { readContainerSelector } from './route-selectors';
import { RECORD_TYPES, recordTypeNumber } from './record-types';
import {
  DEFAULT_KERNEL,
  DEFAULT_MAX_RESTARTS,
  DEFAULT_OUTPUT,
  DEFAULT_QUEUE,
  DIAG_LEVELS,
  FLUSH_MODES,
  KEEP_MODES,
  LOG_FORMATS,
  MAX_LOG_FILE_ACTIONS,
  NAME_FORMATS,
  OVERFLOW_ACTIONS,
  AUX_ISOLATIONS,
  defaultIsolation,
  defaultConfig,
  type CgroupMapEntry,
  type Config,
  type ContidPattern,
  type DaemonConfig,
  type HostConfig,
  type OutputConfig,
  type RouteConfig,
} from './schema';
import { Walker, didYouMean, parseConfigYaml, type Entry } from './walk';
import {
  auxLogProblem,
  auxSpoolProblem,
  defaultAuxLogFile,
  defaultAuxSpoolDir,
  HOST_OWNER,
  rootLogProblem,
} from './aux-paths';
import { assertTrustedConfig } from '../trust';
import { DISK_SPACE_KEYS, readDiskSpace, readListen, readOutputs } from './outputs';

/** Config files are hand-written; anything this large is a mistake or an attack on the parser. */
export const MAX_CONFIG_BYTES = 1 << 20;
const U32_MAX = 0xffffffff;
/** sun_path is 108 bytes including the NUL. */
const SUN_PATH_MAX = 107;
const DAEMON_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** A user or group as passwd/group files allow it, or a numeric id. */
const ACCOUNT_RE = /^(?:[0-9]{1,10}|[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?)$/;

export interface ConfigAnalysis {
  /** Present when there are no errors. */
  config: Config | undefined;
  errors: ConfigError[];
  /** Valid but probably unintended (a daemon no route reaches, a route that can never match). */
  warnings: ConfigError[];
}

const TOP_KEYS = ['version', 'host', 'daemons', 'routes', 'contid'] as const;
const HOST_KEYS = [
  'node_name',
  'kernel',
  'rules',
  'log',
  'keep',
  'control_socket',
  'reassembly',
  'receive_buffer',
  'diagnostics',
  'outputs',
  'listen',
] as const;
const NODE_NAME_KEYS = ['format', 'name'] as const;
const KERNEL_KEYS = [
  'enabled',
  'failure',
  'backlog_limit',
  'rate_limit',
  'backlog_wait_time',
  'loginuid_immutable',
  'reset_lost_on_start',
] as const;
const LOG_KEYS = [
  'file',
  'format',
  'flush',
  'freq',
  'max_log_file',
  'max_log_file_action',
  'num_logs',
  'log_group',
  'rotate_interval',
  'compress',
  ...DISK_SPACE_KEYS,
] as const;
const REASSEMBLY_KEYS = ['timeout_ms', 'max_in_flight'] as const;
const DIAG_KEYS = ['level'] as const;
const DAEMON_KEYS = ['name', 'rules', 'log', 'queue', 'user', 'isolation', 'max_restarts', 'outputs'] as const;
const QUEUE_KEYS = ['depth', 'overflow', 'block_timeout_ms'] as const;
const ROUTE_KEYS = ['contid', 'container', 'types', 'keys', 'daemons', 'continue'] as const;
const CONTID_KEYS = ['cgroup_map'] as const;
const CGROUP_KEYS = ['pattern', 'contid'] as const;

/** Parses and validates, collecting every error instead of stopping at the first (for `auditmux config check`). */
export function analyzeConfig(text: string, file: string): ConfigAnalysis {
  const absFile = resolvePath(file);
  if (text.length > MAX_CONFIG_BYTES || Buffer.byteLength(text) > MAX_CONFIG_BYTES) {
    const e = new ConfigError({ file, line: 1, col: 1 }, `config file is larger than ${MAX_CONFIG_BYTES} bytes`);
    return { config: undefined, errors: [e], warnings: [] };
  }
  const { doc, problems: found } = parseConfigYaml(text);
  const w = new Walker(text, file, doc);
  for (const e of found) w.errors.push(new ConfigError(w.posAt(e.offset), e.reason));
  if (w.errors.length > 0) return { config: undefined, errors: w.errors, warnings: [] };
  const config = build(w, absFile, doc.contents as Node | null);
  if (w.errors.length > 0) return { config: undefined, errors: w.errors, warnings: w.warnings };
  return { config, errors: [], warnings: w.warnings };
}

/** Parses config text; `file` names it in errors and anchors relative paths. Throws the first ConfigError. */
export function parseConfig(text: string, file: string): Config {
  const r = analyzeConfig(text, file);
  const first = r.errors[0];
  if (first) throw first;
  return r.config as Config;
}

/**
 * Reads the config file as auditd reads auditd.conf: a regular file only (a FIFO or a device is refused at once,
 * never waited on), not through a symlink, and never more than MAX_CONFIG_BYTES of it.
 */
export function readConfigText(path: string): string {
  try {
    return readBounded(path, { limit: MAX_CONFIG_BYTES, noFollow: true, what: 'config file' }).data.toString('utf8');
  } catch (err) {
    const why = err instanceof AuditmuxError ? err.message : String(err);
    throw new ConfigError({ file: path, line: 1, col: 1 }, why);
  }
}

export function loadConfig(path: string): Config {
  const text = readConfigText(path);
  // The host obeys this file as root: like auditd.conf it must be root's alone (the file and its directories).
  assertTrustedConfig(path);
  return parseConfig(text, path);
}

function build(w: Walker, absFile: string, root: Node | null): Config {
  const cfg = defaultConfig();
  cfg.file = absFile;
  const baseDir = dirname(absFile);
  const top = w.mapping(root, 'the top level', TOP_KEYS);
  if (!top) return cfg;

  const version = top.get('version');
  // Only validated: the key exists so a future schema change can be detected instead of misread.
  if (version) w.integer(version, 'version', 1, 1);
  const hostEntry = top.get('host');
  if (hostEntry) readHost(w, hostEntry, cfg.host, baseDir);

  const daemonsEntry = top.get('daemons');
  if (daemonsEntry) cfg.daemons = readDaemons(w, daemonsEntry, cfg.host, baseDir);

  const routesEntry = top.get('routes');
  if (routesEntry) cfg.routes = readRoutes(w, routesEntry, cfg.daemons);

  const contidEntry = top.get('contid');
  if (contidEntry) {
    const m = w.mapping(contidEntry.value, 'contid', CONTID_KEYS, contidEntry.key);
    const cm = m?.get('cgroup_map');
    if (cm) cfg.contid.cgroupMap = readCgroupMap(w, cm);
  }

  cfg.sources = w.sources;
  checkOutputsDistinct(w, cfg);
  warnUnrouted(w, cfg, daemonsEntry);
  return cfg;
}

function readHost(w: Walker, e: Entry, host: HostConfig, baseDir: string): void {
  const m = w.mapping(e.value, 'host', HOST_KEYS, e.key);
  if (!m) return;

  const nn = m.get('node_name');
  if (nn) {
    const nm = w.mapping(nn.value, 'host.node_name', NODE_NAME_KEYS, nn.key);
    if (nm) {
      const f = nm.get('format');
      const n = nm.get('name');
      if (f) host.nodeName.format = w.choice(f, 'host.node_name.format', NAME_FORMATS) ?? host.nodeName.format;
      const name = n ? w.nullableString(n, 'host.node_name.name') : null;
      if (n && name !== undefined && name !== null) {
        // The name is written unquoted as `node=NAME`, so anything that would split the field breaks parsers.
        if (!/^[A-Za-z0-9._:@-]{1,64}$/.test(name)) {
          w.error(n.value, 'host.node_name.name must be 1-64 characters of letters, digits and . _ : @ -', n.key);
        } else if (host.nodeName.format !== 'user') {
          w.error(
            n.value,
            `host.node_name.name is only used with format: user (format is ${host.nodeName.format})`,
            n.key,
          );
        } else {
          host.nodeName.name = name;
        }
      } else if (name === null && host.nodeName.format === 'user') {
        w.error(f?.value ?? nn.value, 'host.node_name.format: user needs host.node_name.name', f?.key ?? nn.key);
      }
    }
  }

  const k = m.get('kernel');
  if (k) {
    const km = w.mapping(k.value, 'host.kernel', KERNEL_KEYS, k.key);
    if (km) {
      const kc = host.kernel;
      const get = (name: string) => km.get(name);
      let x: Entry | undefined;
      if ((x = get('enabled')))
        kc.enabled = (w.integer(x, 'host.kernel.enabled', 0, 2) ?? DEFAULT_KERNEL.enabled) as 0 | 1 | 2;
      if ((x = get('failure')))
        kc.failure = (w.integer(x, 'host.kernel.failure', 0, 2) ?? DEFAULT_KERNEL.failure) as 0 | 1 | 2;
      if ((x = get('backlog_limit')))
        kc.backlogLimit = w.integer(x, 'host.kernel.backlog_limit', 0, U32_MAX) ?? kc.backlogLimit;
      if ((x = get('rate_limit'))) kc.rateLimit = w.integer(x, 'host.kernel.rate_limit', 0, U32_MAX) ?? kc.rateLimit;
      // The kernel refuses more than 10 × AUDIT_BACKLOG_WAIT_TIME (60 × HZ); 600000 is that bound at HZ=1000.
      if ((x = get('backlog_wait_time')))
        kc.backlogWaitTime = w.integer(x, 'host.kernel.backlog_wait_time', 0, 600000) ?? kc.backlogWaitTime;
      if ((x = get('loginuid_immutable')))
        kc.loginuidImmutable = w.boolean(x, 'host.kernel.loginuid_immutable') ?? kc.loginuidImmutable;
      if ((x = get('reset_lost_on_start')))
        kc.resetLostOnStart = w.boolean(x, 'host.kernel.reset_lost_on_start') ?? kc.resetLostOnStart;
    }
  }

  const rules = m.get('rules');
  if (rules) {
    const r = w.nullableString(rules, 'host.rules');
    if (r === null) host.rules = null;
    else if (r !== undefined) host.rules = path(w, rules, 'host.rules', r, baseDir) ?? host.rules;
  }

  const log = m.get('log');
  if (log) host.log = readOutput(w, log, 'host.log', baseDir, host.log.file);

  const keep = m.get('keep');
  if (keep) host.keep = w.choice(keep, 'host.keep', KEEP_MODES) ?? host.keep;

  const cs = m.get('control_socket');
  if (cs) {
    const s = w.string(cs, 'host.control_socket');
    const p = s === undefined ? undefined : path(w, cs, 'host.control_socket', s, baseDir);
    if (p !== undefined) {
      if (Buffer.byteLength(p) > SUN_PATH_MAX) {
        w.error(
          cs.value,
          `host.control_socket resolves to ${Buffer.byteLength(p)} bytes; a unix socket path is at most ${SUN_PATH_MAX}`,
          cs.key,
        );
      } else {
        host.controlSocket = p;
      }
    }
  }

  const ra = m.get('reassembly');
  if (ra) {
    const rm = w.mapping(ra.value, 'host.reassembly', REASSEMBLY_KEYS, ra.key);
    const t = rm?.get('timeout_ms');
    const n = rm?.get('max_in_flight');
    if (t)
      host.reassembly.timeoutMs = w.integer(t, 'host.reassembly.timeout_ms', 10, 600000) ?? host.reassembly.timeoutMs;
    if (n)
      host.reassembly.maxInFlight =
        w.integer(n, 'host.reassembly.max_in_flight', 1, 1000000) ?? host.reassembly.maxInFlight;
  }

  const rb = m.get('receive_buffer');
  if (rb) host.receiveBuffer = w.integer(rb, 'host.receive_buffer', 0, 1 << 30) ?? host.receiveBuffer;

  const outs = m.get('outputs');
  if (outs) host.outputs = readOutputs(w, outs, 'host.outputs', 'host', baseDir);
  const listen = m.get('listen');
  if (listen)
    host.listen =
      readListen(w, listen, 'host.listen', {
        baseDir,
        hostLogFile: host.log.file,
        readLog: (x, wh, f) => readOutput(w, x, wh, baseDir, f),
      }) ?? null;

  const d = m.get('diagnostics');
  if (d) {
    const dm = w.mapping(d.value, 'host.diagnostics', DIAG_KEYS, d.key);
    const lv = dm?.get('level');
    if (lv) host.diagnostics.level = w.choice(lv, 'host.diagnostics.level', DIAG_LEVELS) ?? host.diagnostics.level;
  }
}

/** Resolves a path against the config file's directory and rejects what no file system would accept. */
function path(w: Walker, e: Entry, where: string, text: string, baseDir: string): string | undefined {
  if (text.length === 0) return w.error(e.value, `${where} is an empty path`, e.key);
  if (text.includes('\0')) return w.error(e.value, `${where} contains a NUL byte`, e.key);
  const p = resolvePath(baseDir, text);
  if (Buffer.byteLength(p) >= PATH_MAX)
    return w.error(e.value, `${where} is longer than PATH_MAX (${PATH_MAX})`, e.key);
  return p;
}

function readOutput(w: Walker, e: Entry, where: string, baseDir: string, defaultFile: string): OutputConfig {
  const out: OutputConfig = { file: defaultFile, ...DEFAULT_OUTPUT };
  const m = w.mapping(e.value, where, LOG_KEYS, e.key);
  if (!m) return out;
  let x: Entry | undefined;
  if ((x = m.get('file'))) {
    const s = w.string(x, `${where}.file`);
    if (s !== undefined) {
      if (s.endsWith('/')) w.error(x.value, `${where}.file must name a file, not a directory`, x.key);
      else out.file = path(w, x, `${where}.file`, s, baseDir) ?? out.file;
    }
  }
  if ((x = m.get('format'))) out.format = w.choice(x, `${where}.format`, LOG_FORMATS) ?? out.format;
  if ((x = m.get('flush'))) out.flush = w.choice(x, `${where}.flush`, FLUSH_MODES) ?? out.flush;
  const freqEntry = m.get('freq');
  if (freqEntry) out.freq = w.integer(freqEntry, `${where}.freq`, 0, 0x7fffffff) ?? out.freq;
  // auditd refuses incremental flushing with freq 0: it would never flush at all.
  if ((out.flush === 'incremental' || out.flush === 'incremental_async') && out.freq === 0 && freqEntry) {
    w.error(freqEntry.value, `${where}.freq must be at least 1 with flush: ${out.flush}`, freqEntry.key);
  }
  if ((x = m.get('max_log_file')))
    out.maxLogFileMiB = w.integer(x, `${where}.max_log_file`, 0, 1048576) ?? out.maxLogFileMiB;
  if ((x = m.get('max_log_file_action')))
    out.maxLogFileAction = w.choice(x, `${where}.max_log_file_action`, MAX_LOG_FILE_ACTIONS) ?? out.maxLogFileAction;
  if ((x = m.get('num_logs'))) out.numLogs = w.integer(x, `${where}.num_logs`, 0, 999) ?? out.numLogs;
  if ((x = m.get('log_group'))) out.logGroup = account(w, x, `${where}.log_group`) ?? out.logGroup;
  if ((x = m.get('rotate_interval'))) {
    const v = w.choice(x, `${where}.rotate_interval`, ['none', 'hourly', 'daily'] as const);
    if (v === 'hourly' || v === 'daily') out.rotateInterval = v;
    else if (v === 'none') delete out.rotateInterval;
  }
  if ((x = m.get('compress'))) {
    const v = w.boolean(x, `${where}.compress`);
    if (v) out.compress = true;
  }
  const disk = readDiskSpace(w, m, where);
  if (disk) out.diskSpace = disk;
  return out;
}

function account(w: Walker, e: Entry, where: string): string | undefined {
  const s = w.string(e, where);
  if (s === undefined) return undefined;
  if (!ACCOUNT_RE.test(s))
    return w.error(e.value, `${where} must be a user/group name or a numeric id, got "${s.slice(0, 40)}"`, e.key);
  return s;
}

function readDaemons(w: Walker, e: Entry, host: HostConfig, baseDir: string): DaemonConfig[] {
  const items = w.sequence(e.value, 'daemons', e.key);
  if (!items) return [];
  const out: DaemonConfig[] = [];
  const seen = new Map<string, Node>();
  items.forEach((item, i) => {
    const where = `daemons[${i}]`;
    const m = w.mapping(item, where, DAEMON_KEYS);
    if (!m) return;
    const pos = w.posOf(w.resolve(item), item);
    const nameE = m.get('name');
    if (!nameE) {
      w.error(w.resolve(item), `${where} needs a name`, item);
      return;
    }
    const name = w.string(nameE, `${where}.name`);
    if (name === undefined) return;
    if (!DAEMON_NAME_RE.test(name)) {
      w.error(nameE.value, `${where}.name "${name.slice(0, 70)}" must match [a-z0-9][a-z0-9_-]{0,62}`, nameE.key);
      return;
    }
    if (name === 'host') {
      w.error(nameE.value, `${where}.name "host" is reserved for the host daemon`, nameE.key);
      return;
    }
    const first = seen.get(name);
    if (first) {
      const p = w.posOf(first);
      w.error(
        nameE.value,
        `duplicate daemon name "${name}" (first defined at line ${p.line}:${p.col ?? 1})`,
        nameE.key,
      );
      return;
    }
    seen.set(name, nameE.value ?? nameE.key);
    const d: DaemonConfig = {
      name,
      rules: null,
      log: { file: resolvePath(dirname(host.log.file), `${name}.log`), ...DEFAULT_OUTPUT },
      queue: { ...DEFAULT_QUEUE },
      user: null,
      isolation: 'inline',
      maxRestarts: DEFAULT_MAX_RESTARTS,
      pos,
    };
    let x: Entry | undefined;
    if ((x = m.get('rules'))) {
      const r = w.nullableString(x, `${where}.rules`);
      if (r !== null && r !== undefined) d.rules = path(w, x, `${where}.rules`, r, baseDir) ?? null;
    }
    if ((x = m.get('log'))) d.log = readOutput(w, x, `${where}.log`, baseDir, d.log.file);
    if ((x = m.get('queue'))) {
      const q = w.mapping(x.value, `${where}.queue`, QUEUE_KEYS, x.key);
      if (q) {
        let y: Entry | undefined;
        if ((y = q.get('depth'))) d.queue.depth = w.integer(y, `${where}.queue.depth`, 1, 10000000) ?? d.queue.depth;
        if ((y = q.get('overflow')))
          d.queue.overflow = w.choice(y, `${where}.queue.overflow`, OVERFLOW_ACTIONS) ?? d.queue.overflow;
        if ((y = q.get('block_timeout_ms'))) {
          const t = w.integer(y, `${where}.queue.block_timeout_ms`, 0, 600000);
          if (t !== undefined && d.queue.overflow !== 'block') {
            w.error(
              y.key,
              `${where}.queue.block_timeout_ms only applies to overflow: block (overflow is ${d.queue.overflow})`,
            );
          } else if (t !== undefined) {
            d.queue.blockTimeoutMs = t;
          }
        }
      }
    }
    if ((x = m.get('user'))) {
      if (w.resolve(x.value) !== null) d.user = account(w, x, `${where}.user`) ?? null;
    }
    // Without `file:` the default depends on the user (src/config/aux-paths.ts); either way the placement is checked.
    const filePos = w.sources.get(`${where}.log.file`);
    if (!filePos) d.log.file = defaultAuxLogFile(host.log.file, name, d.user);
    const placement = auxLogProblem(
      { name, user: d.user, file: d.log.file },
      host.log.file,
      out.map((o) => ({ name: o.name, user: o.user, file: o.log.file })),
    );
    if (placement) w.errors.push(new ConfigError(filePos ?? w.sources.get(`${where}.user`) ?? pos, placement));
    d.isolation = defaultIsolation(d.user);
    if ((x = m.get('isolation'))) {
      const iso = w.choice(x, `${where}.isolation`, AUX_ISOLATIONS);
      // Only a process of its own can change user: the host process stays root.
      if (iso === 'inline' && d.user !== null)
        w.error(x.value, `${where}.isolation: inline cannot run as user "${d.user}" (use isolation: process)`, x.key);
      else if (iso) d.isolation = iso;
    }
    if ((x = m.get('max_restarts'))) d.maxRestarts = w.integer(x, `${where}.max_restarts`, 0, 10000) ?? d.maxRestarts;
    d.outputs = (x = m.get('outputs'))
      ? readOutputs(
          w,
          x,
          `${where}.outputs`,
          name,
          baseDir,
          d.user ? dirname(defaultAuxSpoolDir(d.log.file, 'x')) : undefined,
        )
      : [];
    out.push(d);
  });
  return out;
}

function readRoutes(w: Walker, e: Entry, daemons: readonly DaemonConfig[]): RouteConfig[] {
  const items = w.sequence(e.value, 'routes', e.key);
  if (!items) return [];
  const names = daemons.map((d) => d.name);
  const out: RouteConfig[] = [];
  items.forEach((item, i) => {
    const where = `routes[${i}]`;
    const m = w.mapping(item, where, ROUTE_KEYS);
    if (!m) return;
    const node = w.resolve(item);
    const route: RouteConfig = {
      index: i,
      contid: [],
      types: null,
      keys: null,
      daemons: [],
      continue: false,
      pos: w.posOf(node, item),
    };
    // A route with errors is still returned; the errors make analyzeConfig withhold the whole Config anyway.
    const c = m.get('contid');
    const sel = m.get('container');
    if (sel) route.container = readContainerSelector(w, sel, where) ?? { fields: [], labels: [], text: '' };
    if (!c && !sel) w.error(node, `${where} needs a contid selector or a container selector`, item);
    else if (c) {
      const sels = w.sequence(c.value, `${where}.contid`, c.key, true);
      if (sels && sels.length === 0) w.error(c.value, `${where}.contid is an empty list; it would never match`, c.key);
      for (const s of sels ?? []) {
        const t = w.scalarText(s, `${where}.contid`, c.key);
        if (!t) continue;
        const p = parseContidSelector(t.text);
        if (typeof p === 'string') w.error(t.node, `${where}.contid: ${p}`);
        else route.contid.push(p);
      }
    }

    const ty = m.get('types');
    if (ty && w.resolve(ty.value) !== null) {
      const list = w.sequence(ty.value, `${where}.types`, ty.key, true);
      if (list) {
        const types = new Set<number>();
        for (const s of list) {
          const t = w.scalarText(s, `${where}.types`, ty.key);
          if (!t) continue;
          const n = /^[0-9]{1,5}$/.test(t.text) ? Number(t.text) : recordTypeNumber(t.text.toUpperCase());
          if (n === undefined || n < 1 || n > 0xffff) {
            w.error(
              t.node,
              `${where}.types: unknown record type "${t.text.slice(0, 40)}"${didYouMean(t.text.toUpperCase(), Object.keys(RECORD_TYPES))}`,
            );
          } else {
            types.add(n);
          }
        }
        route.types = [...types];
      }
    }

    const ks = m.get('keys');
    if (ks && w.resolve(ks.value) !== null) {
      const list = w.sequence(ks.value, `${where}.keys`, ks.key, true);
      if (list) {
        const keys = new Set<string>();
        for (const s of list) {
          const t = w.scalarText(s, `${where}.keys`, ks.key);
          if (!t) continue;
          if (t.text.length === 0 || Buffer.byteLength(t.text) > AUDIT_MAX_KEY_LEN) {
            w.error(t.node, `${where}.keys: a rule key is 1 to ${AUDIT_MAX_KEY_LEN} bytes`);
          } else {
            keys.add(t.text);
          }
        }
        route.keys = [...keys];
      }
    }

    const ds = m.get('daemons');
    if (!ds) w.error(node, `${where} needs daemons: the auxiliary daemons that receive the matching events`, item);
    else {
      const list = w.sequence(ds.value, `${where}.daemons`, ds.key, true);
      if (list && list.length === 0) w.error(ds.value, `${where}.daemons is an empty list`, ds.key);
      const set = new Set<string>();
      for (const s of list ?? []) {
        const t = w.scalarText(s, `${where}.daemons`, ds.key);
        if (!t) continue;
        if (!names.includes(t.text)) {
          const hint = t.text === 'host' ? ' (the host log is controlled by host.keep)' : didYouMean(t.text, names);
          w.error(t.node, `${where}.daemons: no daemon named "${t.text.slice(0, 70)}" is defined${hint}`);
        } else {
          set.add(t.text);
        }
      }
      route.daemons = [...set];
    }

    const co = m.get('continue');
    if (co) route.continue = w.boolean(co, `${where}.continue`) ?? false;
    out.push(route);
  });
  return out;
}

function readCgroupMap(w: Walker, e: Entry): CgroupMapEntry[] {
  const items = w.sequence(e.value, 'contid.cgroup_map', e.key);
  if (!items) return [];
  const out: CgroupMapEntry[] = [];
  items.forEach((item, i) => {
    const where = `contid.cgroup_map[${i}]`;
    const m = w.mapping(item, where, CGROUP_KEYS);
    if (!m) return;
    const node = w.resolve(item);
    const pe = m.get('pattern');
    const ce = m.get('contid');
    if (!pe) w.error(node, `${where} needs a pattern`, item);
    if (!ce) w.error(node, `${where} needs a contid`, item);
    if (!pe || !ce) return;
    const pat = w.string(pe, `${where}.pattern`);
    const glob = pat === undefined ? undefined : compileCgroupGlob(pat);
    if (typeof glob === 'string') w.error(pe.value, `${where}.pattern: ${glob}`, pe.key);
    const ct = w.scalarText(ce.value, `${where}.contid`, ce.key);
    let id: bigint | undefined;
    if (ct) {
      const v = parseContidValue(ct.text);
      if (typeof v === 'string') w.error(ct.node, `${where}.contid: ${v}`);
      else id = v;
    }
    if (pat === undefined || glob === undefined || typeof glob === 'string' || id === undefined) return;
    out.push({ pattern: pat, segments: glob.segments, basename: glob.basename, contid: id, pos: w.posOf(node, item) });
  });
  return out;
}

/** Two writers appending to one file interleave records and rotate each other's files away. */
function checkOutputsDistinct(w: Walker, cfg: Config): void {
  const owner = new Map<string, string>([[cfg.host.log.file, 'host.log']]);
  for (const d of cfg.daemons) {
    const other = owner.get(d.log.file);
    if (other) {
      w.errors.push(new ConfigError(d.pos, `daemon "${d.name}" writes ${d.log.file}, which ${other} already uses`));
    } else {
      owner.set(d.log.file, `daemon "${d.name}"`);
    }
  }
  // Two outputs on one spool directory would append to each other's segments and move each other's cursor.
  const spools = new Map<string, string>();
  const all = [
    ...cfg.host.outputs.map((o) => ({ o, who: 'host' })),
    ...cfg.daemons.flatMap((d) => (d.outputs ?? []).map((o) => ({ o, who: `daemon "${d.name}"` }))),
  ];
  const placed = cfg.daemons.map((d) => ({ name: d.name, user: d.user, file: d.log.file }));
  const rlog = cfg.host.listen?.log;
  const rbad = rlog ? rootLogProblem('the remote log', rlog.file, placed) : null;
  if (rbad)
    w.errors.push(
      new ConfigError(
        cfg.sources.get('host.listen.log.file') ?? cfg.host.listen?.pos ?? { file: cfg.file ?? '', line: 1 },
        rbad,
      ),
    );
  for (const { o, who } of all) {
    if (!o.spool.dir) continue;
    const d = placed.find((x) => `daemon "${x.name}"` === who) ?? {
      name: HOST_OWNER,
      user: null,
      file: cfg.host.log.file,
    };
    const bad = auxSpoolProblem(d, o.name, o.spool.dir, placed);
    if (bad) w.errors.push(new ConfigError(o.pos ?? { file: cfg.file ?? '', line: 1 }, bad));
    const other = spools.get(o.spool.dir);
    if (other)
      w.errors.push(
        new ConfigError(
          o.pos ?? { file: cfg.file ?? '', line: 1 },
          `output "${o.name}" of ${who} uses spool ${o.spool.dir}, which ${other} already uses`,
        ),
      );
    else spools.set(o.spool.dir, `output "${o.name}" of ${who}`);
  }
}

function warnUnrouted(w: Walker, cfg: Config, daemonsEntry: Entry | undefined): void {
  if (!daemonsEntry) return;
  const used = new Set(cfg.routes.flatMap((r) => r.daemons));
  for (const d of cfg.daemons) {
    if (!used.has(d.name))
      w.warnings.push(new ConfigError(d.pos, `daemon "${d.name}" is not named by any route; it receives no events`));
  }
  const seenCatchAll = cfg.routes.find(
    (r) => !r.continue && r.types === null && r.keys === null && coversAll(r.contid),
  );
  if (seenCatchAll) {
    for (const r of cfg.routes) {
      if (r.index > seenCatchAll.index)
        w.warnings.push(
          new ConfigError(
            r.pos,
            `route ${r.index} can never match: route ${seenCatchAll.index} matches every event first`,
          ),
        );
    }
  }
}

function coversAll(ps: readonly ContidPattern[]): boolean {
  const hasUnset = ps.some((p) => p.kind === 'unset');
  const hasAll = ps.some((p) => p.kind === 'range' && p.lo === 0n && p.hi >= 0xfffffffffffffffen);
  return hasUnset && hasAll;
}
