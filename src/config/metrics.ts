// The `metrics:` config key (host and collector): `{ listen: [HOST:]PORT }` or `{ textfile: FILE.prom }`.
import { isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import type { MetricsSpec } from './schema';
import type { Entry, Walker } from './walk';

const KEYS = ['listen', 'textfile'] as const;

/** `PORT`, `HOST:PORT` or `[V6]:PORT`; HOST must be an IP literal (no name lookups), 127.0.0.1 when left out. */
export function parseListen(s: string): { host: string; port: number } | string {
  const m = /^(?:(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):)?([0-9]{1,5})$/.exec(s);
  if (!m) return 'listen must be PORT, IPV4:PORT or [IPV6]:PORT';
  const host = m[1] ?? m[2] ?? '127.0.0.1';
  if (isIP(host) === 0) return `listen: ${host} is not an IP address`;
  const port = Number(m[3]);
  if (port > 65535) return 'listen: the port must be at most 65535';
  return { host, port };
}

/** Reads `metrics:`; relative textfile paths resolve from `base` (the config file's directory). */
export function readMetricsSpec(w: Walker, e: Entry, where: string, base: string): MetricsSpec | undefined {
  const m = w.mapping(e.value, where, KEYS, e.key);
  if (!m) return undefined;
  const listen = m.get('listen');
  const textfile = m.get('textfile');
  if (listen && textfile) return w.error(textfile.key, `${where}: give listen or textfile, not both`);
  if (listen) {
    const s = w.string(listen, `${where}.listen`);
    if (s === undefined) return undefined;
    const r = parseListen(s);
    return typeof r === 'string' ? w.error(listen.value, `${where}.${r}`, listen.key) : { listen: r };
  }
  if (textfile) {
    const s = w.string(textfile, `${where}.textfile`);
    if (s === undefined) return undefined;
    if (!s.endsWith('.prom') || s.includes('\0'))
      return w.error(textfile.value, `${where}.textfile must end in .prom (node_exporter reads only those)`);
    return { textfile: resolvePath(base, s) };
  }
  return w.error(e.key, `${where} needs listen or textfile`);
}
