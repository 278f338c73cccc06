// Per-container summary of found events, as text and as one self-contained HTML page with inline SVG plots.
import { AUDIT_CID_UNSET } from '../kernel/constants';
import { parseChains, formatChain } from '../contid/chain';
import { decodeKeys } from '../records/fields';
import { Machine } from '../vocab/arch';
import { syscallName } from '../vocab/syscalls';
import { fieldString, firstField, newHeader, parseHeader, recordTypeName } from './logline';
import type { SearchEvent } from './scan';
import { ttyEscape } from './escape';

/** Label of events that carry no CONTAINER_ID record (host processes). */
export const NO_CONTAINER = 'unset';
const MINUTE = 60_000;

/** Label of the events of containers beyond ReportLimits.containers. */
export const OTHER_CONTAINERS = '(other)';

/**
 * Memory caps of a report. Keys, executables, container ids and time stamps come from the logs, so a crafted log of
 * a million distinct ones must not cost a million table entries (1 GB before these caps). Worst case with the
 * defaults: 257 containers x (3 tables x 128 + 1024 minute bins + 128 keys x 64 bins) = about 2.5 million counters,
 * with stored strings cut to 512 characters; ordinary logs stay far below.
 */
export interface ReportLimits {
  /** Distinct containers; the events of later ones are counted under `(other)`. */
  containers: number;
  /** Entries per top table (keys, executables, failed syscalls) of a container: Space-Saving beyond it. */
  table: number;
  /** Time bins of a container's events-per-minute series; past it the bins widen (2, 4, 8... minutes). */
  minuteBins: number;
  /** Time bins of each key's series (plots have at most 60 buckets). */
  keyBins: number;
  /** Characters kept of a key, an executable or a container label. */
  text: number;
}

export const DEFAULT_REPORT_LIMITS: ReportLimits = {
  containers: 256,
  table: 128,
  minuteBins: 1024,
  keyBins: 64,
  text: 512,
};

/**
 * Top-K counting in bounded memory: the Space-Saving algorithm (Metwally, Agrawal, El Abbadi 2005) over a min-heap.
 * Below `cap` distinct items every count is exact. Past it, a new item replaces the least counted one and inherits
 * its count (kept as the item's possible overestimate, `error`), so any item seen more than total/cap times is
 * always in the table and its count is at most `error` too high: flooding with distinct values cannot hide a
 * frequent one.
 */
export class TopCounter implements Iterable<[string, number]> {
  private readonly pos = new Map<string, number>();
  private readonly items: string[] = [];
  private readonly counts: number[] = [];
  private readonly errors: number[] = [];
  /** Items replaced so far: 0 means every count is exact. */
  evictions = 0;

  constructor(readonly cap: number) {}

  get size(): number {
    return this.items.length;
  }

  get(k: string): number | undefined {
    const i = this.pos.get(k);
    return i === undefined ? undefined : this.counts[i];
  }

  has(k: string): boolean {
    return this.pos.has(k);
  }

  /** Possible overestimate of k's count (0 when exact). */
  error(k: string): number {
    const i = this.pos.get(k);
    return i === undefined ? 0 : this.errors[i]!;
  }

  /** Counts k; returns the item it replaced, if any. */
  add(k: string, n = 1): string | undefined {
    const i = this.pos.get(k);
    if (i !== undefined) {
      this.counts[i]! += n;
      this.down(i);
      return undefined;
    }
    if (this.items.length < this.cap) {
      this.items.push(k);
      this.counts.push(n);
      this.errors.push(0);
      this.pos.set(k, this.items.length - 1);
      this.up(this.items.length - 1);
      return undefined;
    }
    const old = this.items[0]!;
    const min = this.counts[0]!;
    this.pos.delete(old);
    this.items[0] = k;
    this.counts[0] = min + n;
    this.errors[0] = min;
    this.pos.set(k, 0);
    this.evictions++;
    this.down(0);
    return old;
  }

  *[Symbol.iterator](): Iterator<[string, number]> {
    for (let i = 0; i < this.items.length; i++) yield [this.items[i]!, this.counts[i]!];
  }

  private swap(a: number, b: number): void {
    const ia = this.items[a]!,
      ib = this.items[b]!;
    this.items[a] = ib;
    this.items[b] = ia;
    const c = this.counts[a]!;
    this.counts[a] = this.counts[b]!;
    this.counts[b] = c;
    const e = this.errors[a]!;
    this.errors[a] = this.errors[b]!;
    this.errors[b] = e;
    this.pos.set(ib, a);
    this.pos.set(ia, b);
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.counts[p]! <= this.counts[i]!) return;
      this.swap(p, i);
      i = p;
    }
  }

  private down(i: number): void {
    const n = this.items.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      const m = r < n && this.counts[r]! < this.counts[l]! ? r : l;
      if (this.counts[i]! <= this.counts[m]!) return;
      this.swap(i, m);
      i = m;
    }
  }
}

/**
 * Counts per time bin with at most `cap` bins: bins start one minute wide and double in width (merging pairs)
 * whenever a new bin would exceed the cap, so a log spanning years costs no more than one spanning an hour.
 */
export class MinuteSeries implements Iterable<[number, number]> {
  /** Minutes per bin, a power of two. */
  width = 1;
  private bins = new Map<number, number>();

  constructor(readonly cap: number) {}

  get size(): number {
    return this.bins.size;
  }

  add(minute: number, n = 1): void {
    let b = Math.floor(minute / this.width);
    while (!this.bins.has(b) && this.bins.size >= this.cap) {
      this.width *= 2;
      const next = new Map<number, number>();
      for (const [k, v] of this.bins) {
        const nk = Math.floor(k / 2);
        next.set(nk, (next.get(nk) ?? 0) + v);
      }
      this.bins = next;
      b = Math.floor(minute / this.width);
    }
    this.bins.set(b, (this.bins.get(b) ?? 0) + n);
  }

  /** [first minute of the bin, count]. */
  *[Symbol.iterator](): Iterator<[number, number]> {
    for (const [b, v] of this.bins) yield [b * this.width, v];
  }
}

export interface ContainerStats {
  /** The chain as records write it (`4,^2,^1`), `unset`, or `(other)` past ReportLimits.containers. */
  container: string;
  events: number;
  keys: TopCounter;
  exes: TopCounter;
  failedSyscalls: TopCounter;
  failed: number;
  firstMs: number;
  lastMs: number;
  /** Events per minute (bins widen past ReportLimits.minuteBins). */
  perMinute: MinuteSeries;
  /** Events per minute and key, for the by-key plot: only for keys in `keys`, dropped with them. */
  keysPerMinute: Map<string, MinuteSeries>;
}

function bump<K>(m: Map<K, number>, k: K, n = 1): void {
  m.set(k, (m.get(k) ?? 0) + n);
}

function cut(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n) + '...';
}

/**
 * Accumulates events in memory bounded by `limits` (see ReportLimits), never growing with events or distinct values.
 */
/** What a report row stands for, as its headings say: a container (by contid chain or name), an image, a namespace. */
export type RowKind = 'container' | 'image' | 'namespace';

export class ReportBuilder {
  readonly containers = new Map<string, ContainerStats>();
  events = 0;
  private readonly h = newHeader();
  readonly limits: ReportLimits;

  /**
   * @param groupKey what a container is called in the report (e.g. its name, so a container restarted under a new
   *   contid stays one row); default its contid chain.
   * @param rowKind what groupKey's rows are, for the headings (an image row is not a container).
   */
  constructor(
    limits: Partial<ReportLimits> = {},
    private readonly groupKey?: (chain: readonly bigint[]) => string,
    readonly rowKind: RowKind = 'container',
  ) {
    this.limits = { ...DEFAULT_REPORT_LIMITS, ...limits };
  }

  add(ev: SearchEvent): void {
    this.events++;
    const h = this.h;
    const chains = new Set<string>();
    const keys = new Set<string>();
    let exe: string | undefined;
    let failedSyscall: string | undefined;
    for (const line of ev.lines) {
      if (parseHeader(line, 0, line.length, h) !== null) continue;
      const type = recordTypeName(line, h);
      // The host's container birth and retirement records (CONTAINER_OP op=container-*) are events of the container
      // they describe, as search selects them, not host events under `unset`. Other CONTAINER_OP records (`contid
      // set`, the patch set's op=set) stay with the event of the process that made the change.
      if (
        type === 'CONTAINER_ID' ||
        (type === 'CONTAINER_OP' && firstField(line, h.bodyStart, h.bodyEnd, 'op')?.startsWith('container-'))
      ) {
        const raw = firstField(line, h.bodyStart, h.bodyEnd, 'contid');
        const parsed = raw === undefined ? null : parseChains(raw);
        if (parsed)
          for (const c of parsed)
            if (c.length && c[0] !== AUDIT_CID_UNSET)
              chains.add(cut(this.groupKey ? this.groupKey(c) : formatChain(c), this.limits.text));
      }
      const k = firstField(line, h.bodyStart, h.bodyEnd, 'key');
      if (k !== undefined) for (const key of decodeKeys(k)) keys.add(cut(key, this.limits.text));
      if (exe === undefined) {
        const x = firstField(line, h.bodyStart, h.bodyEnd, 'exe');
        if (x !== undefined) exe = cut(fieldString(type, 'exe', x), this.limits.text);
      }
      if (type === 'SYSCALL' && firstField(line, h.bodyStart, h.bodyEnd, 'success') === 'no') {
        const nr = Number(firstField(line, h.bodyStart, h.bodyEnd, 'syscall'));
        const arch = firstField(line, h.bodyStart, h.bodyEnd, 'arch');
        failedSyscall = syscallName(nr, arch === '40000003' ? Machine.X86 : Machine.X86_64) ?? String(nr);
      }
    }
    const t = ev.sec * 1000 + ev.ms;
    const minute = Math.floor(t / MINUTE);
    if (chains.size === 0) chains.add(NO_CONTAINER);
    const L = this.limits;
    const seen = new Set<ContainerStats>();
    for (const chain of chains) {
      let c = chain;
      let s = this.containers.get(c);
      if (!s && this.containers.size >= L.containers && c !== NO_CONTAINER) {
        c = OTHER_CONTAINERS;
        s = this.containers.get(c);
      }
      if (!s) {
        s = {
          container: c,
          events: 0,
          keys: new TopCounter(L.table),
          exes: new TopCounter(L.table),
          failedSyscalls: new TopCounter(L.table),
          failed: 0,
          firstMs: t,
          lastMs: t,
          perMinute: new MinuteSeries(L.minuteBins),
          keysPerMinute: new Map(),
        };
        this.containers.set(c, s);
      }
      // Several chains of one event may fall into (other): count the event there once.
      if (seen.has(s)) continue;
      seen.add(s);
      s.events++;
      if (t < s.firstMs) s.firstMs = t;
      if (t > s.lastMs) s.lastMs = t;
      s.perMinute.add(minute);
      for (const k of keys) {
        const gone = s.keys.add(k);
        if (gone !== undefined) s.keysPerMinute.delete(gone);
        let km = s.keysPerMinute.get(k);
        if (!km) s.keysPerMinute.set(k, (km = new MinuteSeries(L.keyBins)));
        km.add(minute);
      }
      if (exe !== undefined) s.exes.add(exe);
      if (failedSyscall !== undefined) {
        s.failed++;
        s.failedSyscalls.add(failedSyscall);
      }
    }
  }

  /** Containers by descending event count, `unset` last among equals. */
  sorted(): ContainerStats[] {
    return [...this.containers.values()].sort((a, b) => b.events - a.events || a.container.localeCompare(b.container));
  }
}

export function top(m: Iterable<[string, number]>, n: number): Array<[string, number]> {
  return [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, n);
}

/** Whether a container's top tables overflowed, so that their counts are Space-Saving upper bounds. */
function approximate(c: ContainerStats): boolean {
  return c.keys.evictions + c.exes.evictions + c.failedSyscalls.evictions > 0;
}

export function isoTime(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '?' : d.toISOString();
}

/**
 * `k (n), k (n)`, each entry escaped on its own (`escape`), and quoted when it holds what the list is made of: a key
 * `a (99), sshd` would otherwise read as two entries with a forged count.
 */
const fmtTop = (xs: Array<[string, number]>, escape: (s: string) => string): string =>
  xs.length
    ? xs
        .map(([k, n]) => {
          const e = escape(k);
          return `${/[,()"]/.test(k) || k !== k.trim() ? `"${e.replace(/"/g, '\\"')}"` : e} (${n})`;
        })
        .join(', ')
    : '-';

/**
 * The text report goes to a terminal: keys, executables and containers come from the log and are escaped as by ausearch
 * -i.
 */
export function textReport(r: ReportBuilder, topN = 5): string {
  const cs = r.sorted();
  const kind = r.rowKind;
  let s = `auditmux report: ${r.events} events, ${cs.length} ${kind}s\n`;
  for (const c of cs) {
    s += `\n${kind} ${ttyEscape(c.container)}\n`;
    s += `  events: ${c.events}\n`;
    s += `  first seen: ${isoTime(c.firstMs)}\n`;
    s += `  last seen: ${isoTime(c.lastMs)}\n`;
    s += `  top keys: ${fmtTop(top(c.keys, topN), ttyEscape)}\n`;
    s += `  top executables: ${fmtTop(top(c.exes, topN), ttyEscape)}\n`;
    s += `  failed syscalls: ${c.failed}${
      c.failed
        ? ` (${top(c.failedSyscalls, topN)
            .map(([k, n]) => `${k} ${n}`)
            .join(', ')})`
        : ''
    }\n`;
    if (approximate(c))
      s += `  note: more than ${c.keys.cap} distinct values in a table: its counts are upper bounds (Space-Saving)\n`;
  }
  if (r.containers.has(OTHER_CONTAINERS))
    s += `\nnote: ${kind}s beyond the first ${r.limits.containers} are counted under ${OTHER_CONTAINERS}\n`;
  return s;
}

export function jsonReport(r: ReportBuilder, topN = 5): unknown {
  return {
    events: r.events,
    containers: r.sorted().map((c) => ({
      container: c.container,
      events: c.events,
      firstSeen: isoTime(c.firstMs),
      lastSeen: isoTime(c.lastMs),
      topKeys: top(c.keys, topN),
      topExecutables: top(c.exes, topN),
      failedSyscalls: c.failed,
      topFailedSyscalls: top(c.failedSyscalls, topN),
      ...(approximate(c) ? { approximate: true } : {}),
    })),
  };
}

/**
 * Keys, executables and container labels come from the log: everything written into the page is escaped, for HTML
 * and, so that controls show as in the terminal report rather than vanish, as ausearch -i escapes them.
 */
export function esc(s: string): string {
  return ttyEscape(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];

interface Series {
  label: string;
  counts: number[];
}

/** Buckets per-minute counts into `n` equal spans of [fromMin, toMin]. */
function bucketize(perMinute: Iterable<[number, number]>, fromMin: number, toMin: number, n: number): number[] {
  const out = new Array<number>(n).fill(0);
  const span = Math.max(1, toMin - fromMin + 1);
  for (const [m, c] of perMinute) {
    // A widened bin may start before the first event's minute: it belongs to the first bucket.
    const i = Math.min(n - 1, Math.max(0, Math.floor(((m - fromMin) * n) / span)));
    out[i]! += c;
  }
  return out;
}

/** A step-free line chart of several series over time buckets, with axes, labels and a legend. */
function lineChart(title: string, id: string, series: Series[], fromMs: number, toMs: number): string {
  const W = 900,
    H = 320,
    L = 60,
    R = 200,
    T = 30,
    B = 40;
  const pw = W - L - R,
    ph = H - T - B;
  const n = series[0]?.counts.length ?? 1;
  const max = Math.max(1, ...series.flatMap((s) => s.counts));
  const x = (i: number): number => L + (n === 1 ? pw / 2 : (i * pw) / (n - 1));
  const y = (v: number): number => T + ph - (v * ph) / max;
  let g = `<svg xmlns="http://www.w3.org/2000/svg" id="${id}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`;
  g += `<text x="${L}" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`;
  g += `<line x1="${L}" y1="${T + ph}" x2="${L + pw}" y2="${T + ph}" stroke="#333"/><line x1="${L}" y1="${T}" x2="${L}" y2="${T + ph}" stroke="#333"/>`;
  for (const f of [0, 0.5, 1]) {
    const v = Math.round(max * f);
    g += `<text x="${L - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${v}</text>`;
    g += `<line x1="${L}" y1="${y(v)}" x2="${L + pw}" y2="${y(v)}" stroke="#ddd"/>`;
  }
  g += `<text x="${L}" y="${H - 12}" font-size="11">${esc(isoTime(fromMs))}</text>`;
  g += `<text x="${L + pw}" y="${H - 12}" font-size="11" text-anchor="end">${esc(isoTime(toMs))}</text>`;
  series.forEach((s, si) => {
    const color = PALETTE[si % PALETTE.length]!;
    const pts = s.counts.map((c, i) => `${x(i).toFixed(1)},${y(c).toFixed(1)}`).join(' ');
    const total = s.counts.reduce((a, b) => a + b, 0);
    g += `<polyline class="series" data-label="${esc(s.label)}" data-total="${total}" fill="none" stroke="${color}" stroke-width="2" points="${pts}"><title>${esc(s.label)}: ${total}</title></polyline>`;
    const ly = T + 14 + si * 16;
    g += `<rect x="${L + pw + 14}" y="${ly - 9}" width="10" height="10" fill="${color}"/><text x="${L + pw + 30}" y="${ly}" font-size="11">${esc(s.label)} (${total})</text>`;
  });
  return g + '</svg>';
}

/** Horizontal stacked bars: one bar per key, one segment per container. */
function keyChart(title: string, id: string, cs: ContainerStats[], keys: string[]): string {
  const W = 900,
    L = 180,
    R = 80,
    T = 30,
    BAR = 18,
    GAP = 8;
  const H = T + keys.length * (BAR + GAP) + 40;
  const totals = keys.map((k) => cs.reduce((a, c) => a + (c.keys.get(k) ?? 0), 0));
  const max = Math.max(1, ...totals);
  const pw = W - L - R;
  let g = `<svg xmlns="http://www.w3.org/2000/svg" id="${id}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`;
  g += `<text x="${L}" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`;
  keys.forEach((k, ki) => {
    const yy = T + ki * (BAR + GAP);
    g += `<text x="${L - 6}" y="${yy + BAR - 4}" font-size="11" text-anchor="end">${esc(k)}</text>`;
    let xx = L;
    cs.forEach((c, ci) => {
      const v = c.keys.get(k) ?? 0;
      if (!v) return;
      const w = (v * pw) / max;
      g += `<rect class="seg" data-key="${esc(k)}" data-container="${esc(c.container)}" data-count="${v}" x="${xx.toFixed(1)}" y="${yy}" width="${Math.max(w, 0.5).toFixed(1)}" height="${BAR}" fill="${PALETTE[ci % PALETTE.length]}"><title>${esc(c.container)} / ${esc(k)}: ${v}</title></rect>`;
      xx += w;
    });
    g += `<text x="${(xx + 6).toFixed(1)}" y="${yy + BAR - 4}" font-size="11">${totals[ki]}</text>`;
  });
  return g + '</svg>';
}

export function htmlReport(r: ReportBuilder, topN = 5, buckets = 60): string {
  const cs = r.sorted();
  const kind = r.rowKind;
  const from = Math.min(...cs.map((c) => c.firstMs));
  const to = Math.max(...cs.map((c) => c.lastMs));
  const fromMin = Math.floor(from / MINUTE),
    toMin = Math.floor(to / MINUTE);
  const n = Math.max(1, Math.min(buckets, toMin - fromMin + 1));
  // Past the palette, lines become indistinguishable: plot the busiest rows, the table has every one.
  const plotted = cs.slice(0, PALETTE.length);
  const allKeys = new Map<string, number>();
  for (const c of cs) for (const [k, v] of c.keys) bump(allKeys, k, v);
  const keys = top(allKeys, 20).map(([k]) => k);

  let rows = '';
  for (const c of cs) {
    rows +=
      `<tr data-container="${esc(c.container)}"><td class="container">${esc(c.container)}</td><td class="events">${c.events}</td>` +
      `<td class="first">${isoTime(c.firstMs)}</td><td class="last">${isoTime(c.lastMs)}</td>` +
      `<td class="keys">${fmtTop(top(c.keys, topN), esc)}</td><td class="exes">${fmtTop(top(c.exes, topN), esc)}</td>` +
      `<td class="failed">${c.failed}</td></tr>\n`;
  }
  const charts = cs.length
    ? lineChart(
        `Events per ${kind} over time`,
        'chart-containers',
        plotted.map((c) => ({ label: c.container, counts: bucketize(c.perMinute, fromMin, toMin, n) })),
        from,
        to,
      ) +
      '\n' +
      keyChart(`Events by key and ${kind}`, 'chart-keys', plotted, keys) +
      '\n' +
      keys
        .slice(0, 5)
        .map((k, i) =>
          lineChart(
            `Events over time, key ${k}`,
            `chart-key-${i}`,
            plotted
              .filter((c) => c.keysPerMinute.has(k))
              .map((c) => ({ label: c.container, counts: bucketize(c.keysPerMinute.get(k)!, fromMin, toMin, n) })),
            from,
            to,
          ),
        )
        .join('\n')
    : '<p>No events.</p>';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>auditmux report</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>
body{font-family:sans-serif;margin:20px;color:#222}
table{border-collapse:collapse;margin:12px 0}
td,th{border:1px solid #bbb;padding:4px 8px;font-size:13px;text-align:left;vertical-align:top}
td.events,td.failed{text-align:right}
svg{display:block;margin:16px 0;background:#fafafa;border:1px solid #eee}
</style></head>
<body>
<h1>auditmux report</h1>
<p id="summary">Events: <span id="total-events">${r.events}</span>; ${kind}s: <span id="total-containers">${cs.length}</span>${cs.length ? `; from ${isoTime(from)} to ${isoTime(to)}` : ''}.</p>
<table id="containers"><thead><tr><th>${kind}</th><th>events</th><th>first seen</th><th>last seen</th><th>top keys</th><th>top executables</th><th>failed syscalls</th></tr></thead>
<tbody>
${rows}</tbody></table>
${charts}
</body></html>
`;
}
