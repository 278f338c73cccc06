// Per-container summary of found events, as text and as one self-contained HTML page with inline SVG plots.
import { parseChains, formatChain } from '../routing/contid-tracker';
import { decodeKeys } from '../routing/event-fields';
import { Machine, syscallName } from '../rules/tables';
import { fieldString, firstField, newHeader, parseHeader, recordTypeName } from './logline';
import type { SearchEvent } from './scan';
import { ttyEscape } from './escape';

/** Label of events that carry no CONTAINER_ID record (host processes). */
export const NO_CONTAINER = 'unset';
const MINUTE = 60_000;

export interface ContainerStats {
  /** The chain as records write it (`4,^2,^1`), or `unset`. */
  container: string;
  events: number;
  keys: Map<string, number>;
  exes: Map<string, number>;
  failedSyscalls: Map<string, number>;
  failed: number;
  firstMs: number;
  lastMs: number;
  /** Events per minute (epoch minute -> count): bounded by the log's span, not its size. */
  perMinute: Map<number, number>;
  /** Events per minute and key, for the by-key plot. */
  keysPerMinute: Map<string, Map<number, number>>;
}

function bump<K>(m: Map<K, number>, k: K, n = 1): void {
  m.set(k, (m.get(k) ?? 0) + n);
}

/** Accumulates events; memory grows with containers, keys, executables and minutes, never with events. */
export class ReportBuilder {
  readonly containers = new Map<string, ContainerStats>();
  events = 0;
  private readonly h = newHeader();

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
      if (type === 'CONTAINER_ID') {
        const raw = firstField(line, h.bodyStart, h.bodyEnd, 'contid');
        const parsed = raw === undefined ? null : parseChains(raw);
        if (parsed) for (const c of parsed) if (c.length && c[0] !== 0xffffffffffffffffn) chains.add(formatChain(c));
      }
      const k = firstField(line, h.bodyStart, h.bodyEnd, 'key');
      if (k !== undefined) for (const key of decodeKeys(k)) keys.add(key);
      if (exe === undefined) {
        const x = firstField(line, h.bodyStart, h.bodyEnd, 'exe');
        if (x !== undefined) exe = fieldString(type, 'exe', x);
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
    for (const c of chains) {
      let s = this.containers.get(c);
      if (!s) {
        s = { container: c, events: 0, keys: new Map(), exes: new Map(), failedSyscalls: new Map(), failed: 0, firstMs: t, lastMs: t, perMinute: new Map(), keysPerMinute: new Map() };
        this.containers.set(c, s);
      }
      s.events++;
      if (t < s.firstMs) s.firstMs = t;
      if (t > s.lastMs) s.lastMs = t;
      bump(s.perMinute, minute);
      for (const k of keys) {
        bump(s.keys, k);
        let km = s.keysPerMinute.get(k);
        if (!km) s.keysPerMinute.set(k, (km = new Map()));
        bump(km, minute);
      }
      if (exe !== undefined) bump(s.exes, exe);
      if (failedSyscall !== undefined) {
        s.failed++;
        bump(s.failedSyscalls, failedSyscall);
      }
    }
  }

  /** Containers by descending event count, `unset` last among equals. */
  sorted(): ContainerStats[] {
    return [...this.containers.values()].sort((a, b) => b.events - a.events || a.container.localeCompare(b.container));
  }
}

export function top(m: Map<string, number>, n: number): Array<[string, number]> {
  return [...m.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, n);
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

const fmtTop = (xs: Array<[string, number]>): string => (xs.length ? xs.map(([k, n]) => `${k} (${n})`).join(', ') : '-');

/** The text report goes to a terminal: keys, executables and containers come from the log and are escaped as by ausearch -i. */
export function textReport(r: ReportBuilder, topN = 5): string {
  const cs = r.sorted();
  let s = `auditmux report: ${r.events} events, ${cs.length} containers\n`;
  for (const c of cs) {
    s += `\ncontainer ${ttyEscape(c.container)}\n`;
    s += `  events: ${c.events}\n`;
    s += `  first seen: ${isoTime(c.firstMs)}\n`;
    s += `  last seen: ${isoTime(c.lastMs)}\n`;
    s += `  top keys: ${ttyEscape(fmtTop(top(c.keys, topN)))}\n`;
    s += `  top executables: ${ttyEscape(fmtTop(top(c.exes, topN)))}\n`;
    s += `  failed syscalls: ${c.failed}${c.failed ? ` (${top(c.failedSyscalls, topN).map(([k, n]) => `${k} ${n}`).join(', ')})` : ''}\n`;
  }
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
    })),
  };
}

/**
 * Keys, executables and container labels come from the log: everything written into the page is escaped, for HTML
 * and, so that controls show as in the terminal report rather than vanish, as ausearch -i escapes them.
 */
export function esc(s: string): string {
  return ttyEscape(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

interface Series {
  label: string;
  counts: number[];
}

/** Buckets per-minute counts into `n` equal spans of [fromMin, toMin]. */
function bucketize(perMinute: Map<number, number>, fromMin: number, toMin: number, n: number): number[] {
  const out = new Array<number>(n).fill(0);
  const span = Math.max(1, toMin - fromMin + 1);
  for (const [m, c] of perMinute) {
    const i = Math.min(n - 1, Math.floor(((m - fromMin) * n) / span));
    if (i >= 0) out[i]! += c;
  }
  return out;
}

/** A step-free line chart of several series over time buckets, with axes, labels and a legend. */
function lineChart(title: string, id: string, series: Series[], fromMs: number, toMs: number): string {
  const W = 900, H = 320, L = 60, R = 200, T = 30, B = 40;
  const pw = W - L - R, ph = H - T - B;
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
  const W = 900, L = 180, R = 80, T = 30, BAR = 18, GAP = 8;
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
  const from = Math.min(...cs.map((c) => c.firstMs));
  const to = Math.max(...cs.map((c) => c.lastMs));
  const fromMin = Math.floor(from / MINUTE), toMin = Math.floor(to / MINUTE);
  const n = Math.max(1, Math.min(buckets, toMin - fromMin + 1));
  // Past the palette, lines become indistinguishable: plot the busiest containers, the table has every one.
  const plotted = cs.slice(0, PALETTE.length);
  const allKeys = new Map<string, number>();
  for (const c of cs) for (const [k, v] of c.keys) bump(allKeys, k, v);
  const keys = top(allKeys, 20).map(([k]) => k);

  let rows = '';
  for (const c of cs) {
    rows += `<tr data-container="${esc(c.container)}"><td class="container">${esc(c.container)}</td><td class="events">${c.events}</td>` +
      `<td class="first">${isoTime(c.firstMs)}</td><td class="last">${isoTime(c.lastMs)}</td>` +
      `<td class="keys">${esc(fmtTop(top(c.keys, topN)))}</td><td class="exes">${esc(fmtTop(top(c.exes, topN)))}</td>` +
      `<td class="failed">${c.failed}</td></tr>\n`;
  }
  const charts = cs.length
    ? lineChart('Events per container over time', 'chart-containers',
      plotted.map((c) => ({ label: c.container, counts: bucketize(c.perMinute, fromMin, toMin, n) })), from, to) +
      '\n' + keyChart('Events by key and container', 'chart-keys', plotted, keys) + '\n' +
      keys.slice(0, 5).map((k, i) => lineChart(`Events over time, key ${k}`, `chart-key-${i}`,
        plotted.filter((c) => c.keysPerMinute.has(k)).map((c) => ({ label: c.container, counts: bucketize(c.keysPerMinute.get(k)!, fromMin, toMin, n) })), from, to)).join('\n')
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
<p id="summary">Events: <span id="total-events">${r.events}</span>; containers: <span id="total-containers">${cs.length}</span>${cs.length ? `; from ${isoTime(from)} to ${isoTime(to)}` : ''}.</p>
<table id="containers"><thead><tr><th>container</th><th>events</th><th>first seen</th><th>last seen</th><th>top keys</th><th>top executables</th><th>failed syscalls</th></tr></thead>
<tbody>
${rows}</tbody></table>
${charts}
</body></html>
`;
}
