// The host daemon's status (as `auditmux status` reports it) as Prometheus families: kernel loss and backlog, records,
// per-daemon queues, per-output spools, the log, per-container events.
import type { MetricFamily, MetricsExporter, MetricsSpec, MetricType, Sample } from './contract';
import { createMetricsExporter } from './exporter';
import { removeTextfile } from './textfile';

type Obj = Record<string, unknown>;

const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The families of a host status; a field the status lacks is left out, never reported as 0. */
export function hostMetricFamilies(status: Obj): MetricFamily[] {
  const out: MetricFamily[] = [];
  const fam = (name: string, type: MetricType, help: string, samples: Sample[]): void => {
    const s = samples.filter((x) => !Number.isNaN(x.value));
    if (s.length) out.push({ name, type, help, samples: s });
  };
  const one = (v: unknown, labels?: Record<string, string>): Sample[] => {
    const n = num(v);
    return n === null ? [] : [{ value: n, ...(labels ? { labels } : {}) }];
  };
  const kernel = obj(status.kernel);
  const daemon = obj(status.daemon);
  fam(
    'auditmux_kernel_lost_total',
    'counter',
    'Records the kernel lost (its own counter, as audit status reports it).',
    one(kernel.lost),
  );
  fam('auditmux_kernel_backlog', 'gauge', 'Records waiting in the kernel for the daemon.', one(kernel.backlog));
  fam('auditmux_kernel_backlog_limit', 'gauge', "The kernel's backlog limit.", one(kernel.backlogLimit));
  fam('auditmux_kernel_enabled', 'gauge', 'Audit enabled in the kernel (0, 1, or 2 = locked).', one(kernel.enabled));
  fam('auditmux_records_total', 'counter', 'Records read from the kernel.', one(daemon.records));
  fam('auditmux_internal_errors_total', 'counter', 'Internal errors of the host daemon.', one(daemon.internalErrors));
  const routing = obj(status.routing);
  fam('auditmux_events_total', 'counter', 'Events routed by the host.', one(routing.events));
  fam('auditmux_events_with_contid_total', 'counter', 'Events that carried a container id.', one(routing.withContid));
  // Per daemon: the host's own log, then each auxiliary daemon's queue.
  const log = obj(status.log);
  fam('auditmux_log_records_total', 'counter', "Records written to the host's log.", one(log.records));
  fam('auditmux_log_lost_total', 'counter', "Records the host's log could not take.", one(log.lost));
  const aux = Object.entries(obj(status.aux));
  const per = (k: string): Sample[] => aux.flatMap(([name, a]) => one(obj(a)[k], { daemon: name }));
  fam('auditmux_daemon_queue_depth', 'gauge', "Events waiting in an auxiliary daemon's queue.", per('queued'));
  fam('auditmux_daemon_queue_capacity', 'gauge', "An auxiliary daemon's queue size.", per('queueDepth'));
  fam('auditmux_daemon_delivered_total', 'counter', 'Events delivered to an auxiliary daemon.', per('delivered'));
  fam('auditmux_daemon_dropped_total', 'counter', "Events an auxiliary daemon's full queue dropped.", per('dropped'));
  fam('auditmux_daemon_restarts_total', 'counter', 'Restarts of an auxiliary daemon.', per('restarts'));
  const outputs = Object.entries(obj(status.outputs));
  const perOut = (k: string): Sample[] => outputs.flatMap(([name, o]) => one(obj(o)[k], { output: name }));
  fam('auditmux_output_accepted_total', 'counter', 'Records or events an output accepted.', perOut('accepted'));
  fam('auditmux_output_delivered_total', 'counter', 'Records or events an output delivered.', perOut('delivered'));
  fam('auditmux_output_lost_total', 'counter', 'Records or events an output lost (spool full).', perOut('lost'));
  fam('auditmux_output_lag', 'gauge', 'Records or events accepted but not yet delivered (the lag).', perOut('pending'));
  fam('auditmux_output_spool_bytes', 'gauge', "Bytes in an output's spool.", perOut('queuedBytes'));
  fam('auditmux_output_spool_capacity_bytes', 'gauge', "An output's spool size.", perOut('capacity'));
  fam(
    'auditmux_output_connected',
    'gauge',
    'Whether an output is connected to its peer (1) or not (0).',
    outputs.flatMap(([name, o]) => {
      const c = obj(o).connected;
      return typeof c === 'boolean' ? [{ value: c ? 1 : 0, labels: { output: name } }] : [];
    }),
  );
  containerFamilies(status, fam, one);
  return out;
}

/**
 * Per-container events, one series per live container (and per retired one in its retirement grace, whose late events
 * still count) labelled with its contid and name (values escaped by the renderer: names are chosen by whoever started
 * the container). The status carries at most MAX_CONTAINER_SERIES of
 * them; the rest are counted, not exported, so a burst of containers cannot grow the scrape without bound.
 */
function containerFamilies(
  status: Obj,
  fam: (name: string, type: MetricType, help: string, samples: Sample[]) => void,
  one: (v: unknown, labels?: Record<string, string>) => Sample[],
): void {
  const ce = obj(status.containerEvents);
  const series = Object.entries(obj(ce.series));
  const per = (k: string): Sample[] =>
    series.flatMap(([contid, c]) => one(obj(c)[k], { contid, name: String(obj(c).name ?? '') }));
  fam('auditmux_containers_live', 'gauge', 'Containers the host knows as running.', one(obj(status.containers).live));
  fam(
    'auditmux_container_hook_failures_total',
    'counter',
    'OCI hook runs that could not reach or were refused by the daemon (reported by the hooks, counted at the next scan).',
    one(obj(status.containers).hookFailures),
  );
  fam('auditmux_container_routed_total', 'counter', "Deliveries of a container's events to daemons.", per('routed'));
  fam('auditmux_container_dropped_total', 'counter', "A container's events dropped by full queues.", per('dropped'));
  fam('auditmux_container_host_only_total', 'counter', "A container's events kept by the host only.", per('hostOnly'));
  fam(
    'auditmux_container_series_overflow',
    'gauge',
    'Containers (live, or retired in their grace) left out of the per-container series (over the cap).',
    one(ce.overflow),
  );
}

/** Starts the host's exporter over `status` (read at each scrape or textfile write); a failed scrape goes to `warn`. */
export async function startHostMetrics(
  spec: MetricsSpec,
  status: () => Promise<unknown>,
  warn: (e: Error) => void,
): Promise<MetricsExporter> {
  const exporter = createMetricsExporter(spec, { metrics: async () => hostMetricFamilies(obj(await status())) }, warn);
  await exporter.start();
  return exporter;
}

const sameSpec = (a: MetricsSpec | null, b: MetricsSpec | null): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * The host's exporter across reloads: apply() starts it, moves it when `metrics` changed (the old listener closed,
 * the new one open; an old textfile removed so node_exporter does not keep serving it) or stops it. A new listener
 * that cannot open leaves the old one serving and throws, so the reload reports the failure.
 */
export class HostMetrics {
  private exporter: MetricsExporter | null = null;
  private spec: MetricsSpec | null = null;

  private readonly status: () => Promise<unknown>;
  private readonly warn: (e: Error) => void;

  /** `diag` is read when a warning comes (the daemon builds its diagnostics after this). */
  constructor(o: { status: () => Promise<unknown>; diag: () => { warn(o: object, msg: string): void } }) {
    this.status = o.status;
    this.warn = (e) => o.diag().warn({ err: e.message }, 'metrics');
  }

  get current(): { spec: MetricsSpec | null; address: { host: string; port: number } | null } {
    return { spec: this.spec, address: this.exporter?.address() ?? null };
  }

  async apply(spec: MetricsSpec | null): Promise<void> {
    if (sameSpec(spec, this.spec)) return;
    const old = this.exporter;
    const oldSpec = this.spec;
    // The same port on another address (127.0.0.1 -> 0.0.0.0) cannot be open twice: the old one closes first.
    const clash =
      oldSpec && spec && 'listen' in oldSpec && 'listen' in spec && oldSpec.listen.port === spec.listen.port;
    if (clash && old) {
      await old.stop();
      this.exporter = null;
    }
    let next: MetricsExporter | null = null;
    try {
      if (spec) next = await startHostMetrics(spec, this.status, this.warn);
    } catch (e) {
      if (clash && oldSpec) this.exporter = await startHostMetrics(oldSpec, this.status, this.warn).catch(() => null);
      throw e;
    }
    if (!clash) await old?.stop().catch((e: unknown) => this.warn(e as Error));
    if (oldSpec && 'textfile' in oldSpec && !(spec && 'textfile' in spec && spec.textfile === oldSpec.textfile))
      removeTextfile(oldSpec.textfile, this.warn);
    this.exporter = next;
    this.spec = spec;
  }

  /** Stops the exporter at daemon exit; a textfile stays, with the last values. */
  async stop(): Promise<void> {
    const e = this.exporter;
    this.exporter = null;
    this.spec = null;
    await e?.stop().catch(() => undefined);
  }
}
