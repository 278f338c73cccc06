// Parses, defaults and validates auditmux.yaml into a Config; every problem is a ConfigError at file:line:col.
import { Buffer } from 'node:buffer';
import type { Stats } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import type { Node } from 'yaml';
import { AuditmuxError, ConfigError } from '../errors';
import { readBounded } from '../safefs';
import { defaultConfig, type Config } from './schema';
import { Walker, parseConfigYaml } from './walk';
import { assertTrustedConfig } from '../trust';
import { readHost } from './host';
import { readDaemons } from './daemons';
import { readRoutes } from './routes';
import { readContid } from './contid-map';
import { readTemplates } from './templates';
import { checkOutputsDistinct, warnUnrouted } from './consistency';

/** Config files are hand-written; anything this large is a mistake or an attack on the parser. */
export const MAX_CONFIG_BYTES = 1 << 20;

export interface ConfigAnalysis {
  /** Present when there are no errors. */
  config: Config | undefined;
  errors: ConfigError[];
  /** Valid but probably unintended (a daemon no route reaches, a route that can never match). */
  warnings: ConfigError[];
}

const TOP_KEYS = ['version', 'host', 'daemons', 'routes', 'contid', 'daemon_templates'] as const;

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
  return readConfigFile(path).text;
}

function readConfigFile(path: string): { text: string; stat: Stats } {
  try {
    const r = readBounded(path, { limit: MAX_CONFIG_BYTES, noFollow: true, what: 'config file' });
    return { text: r.data.toString('utf8'), stat: r.stat };
  } catch (err) {
    const why = err instanceof AuditmuxError ? err.message : String(err);
    throw new ConfigError({ file: path, line: 1, col: 1 }, why);
  }
}

export function loadConfig(path: string): Config {
  // The host obeys this file as root: like auditd.conf it must be root's alone (the file and its directories).
  // Checked before it is opened (opening a device acts on it), and again on the file read, so the file checked is
  // the file obeyed.
  assertTrustedConfig(path);
  const { text, stat } = readConfigFile(path);
  assertTrustedConfig(path, stat);
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
  if (contidEntry) readContid(w, contidEntry, cfg.contid);

  const templatesEntry = top.get('daemon_templates');
  const names = cfg.daemons.map((d) => d.name);
  if (templatesEntry) cfg.templates = readTemplates(w, templatesEntry, cfg.host.log.file, names, baseDir);

  cfg.sources = w.sources;
  checkOutputsDistinct(w, cfg);
  warnUnrouted(w, cfg, daemonsEntry);
  return cfg;
}
