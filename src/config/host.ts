// The `host:` section: node name, kernel settings, rules, log, control socket, reassembly, outputs and listen.
import { Buffer } from 'node:buffer';
import { DEFAULT_KERNEL, DIAG_LEVELS, KEEP_MODES, NAME_FORMATS, type HostConfig } from './schema';
import type { Walker, Entry } from './walk';
import { readListen, readOutputs } from './outputs';
import { configPath, readOutput } from './log';
import { readMetricsSpec } from './metrics';

const U32_MAX = 0xffffffff;
/** sun_path is 108 bytes including the NUL. */
const SUN_PATH_MAX = 107;
const HOST_KEYS = [
  'node_name',
  'kernel',
  'rules',
  'log',
  'keep',
  'control_socket',
  'reassembly',
  'receive_buffer',
  'priority_boost',
  'diagnostics',
  'outputs',
  'listen',
  'metrics',
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
const REASSEMBLY_KEYS = ['timeout_ms', 'max_in_flight'] as const;
const DIAG_KEYS = ['level'] as const;

export function readHost(w: Walker, e: Entry, host: HostConfig, baseDir: string): void {
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
    else if (r !== undefined) host.rules = configPath(w, rules, 'host.rules', r, baseDir) ?? host.rules;
  }

  const log = m.get('log');
  if (log) host.log = readOutput(w, log, 'host.log', baseDir, host.log.file);

  const mx = m.get('metrics');
  if (mx) host.metrics = readMetricsSpec(w, mx, 'host.metrics', baseDir) ?? null;

  const keep = m.get('keep');
  if (keep) host.keep = w.choice(keep, 'host.keep', KEEP_MODES) ?? host.keep;

  const cs = m.get('control_socket');
  if (cs) {
    const s = w.string(cs, 'host.control_socket');
    const p = s === undefined ? undefined : configPath(w, cs, 'host.control_socket', s, baseDir);
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
  const pb = m.get('priority_boost');
  if (pb) host.priorityBoost = w.integer(pb, 'host.priority_boost', 0, 20) ?? host.priorityBoost;

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
