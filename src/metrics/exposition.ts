// Prometheus text exposition format (0.0.4): HELP/TYPE lines and samples, every label value and help text escaped.
import type { MetricFamily } from './contract';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A high surrogate without its low half, or a low one without its high half: not encodable as UTF-8. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

const wellFormed = (v: string): string => v.replace(LONE_SURROGATE, '\uFFFD');

/** A metric or label name that breaks the format is a programming error, not input: it throws. */
export class MetricNameError extends Error {}

/**
 * A label value: backslash, double quote and line feed escaped as the format requires. Lone surrogates (not UTF-8)
 * become U+FFFD so the output is always valid UTF-8.
 */
export function escapeLabelValue(v: string): string {
  return wellFormed(v).replace(/[\\"\n]/g, (c) => (c === '\\' ? '\\\\' : c === '"' ? '\\"' : '\\n'));
}

/** HELP text: backslash and line feed escaped (quotes are literal there). */
export function escapeHelp(v: string): string {
  return wellFormed(v).replace(/[\\\n]/g, (c) => (c === '\\' ? '\\\\' : '\\n'));
}

/** A sample value as Prometheus writes it: integers plainly, NaN and infinities by name. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

export function renderExposition(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const f of families) {
    if (!METRIC_NAME_RE.test(f.name)) throw new MetricNameError(`bad metric name ${JSON.stringify(f.name)}`);
    if (seen.has(f.name)) throw new MetricNameError(`metric ${f.name} rendered twice`);
    seen.add(f.name);
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels ?? {});
      let l = '';
      if (labels.length) {
        for (const [k] of labels)
          if (!LABEL_NAME_RE.test(k) || k.startsWith('__'))
            throw new MetricNameError(`bad label name ${JSON.stringify(k)}`);
        l = `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
      }
      out.push(`${f.name}${l} ${formatValue(s.value)}`);
    }
  }
  return out.length ? out.join('\n') + '\n' : '';
}
