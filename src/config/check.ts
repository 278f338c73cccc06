// `auditmux config check`: full validation plus the checks that need the machine (rules paths, accounts).
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, type SourcePos } from '../errors';
import { findUser, readAccounts, type AccountTable } from '../vocab/accounts';
import { rulesFilesIn } from '../rules/loader';
import { pathTrustProblem, programTrustProblem } from '../trust';
import { analyzeConfig, readConfigText, type ConfigAnalysis } from './load';
import type { Config, DiskSpaceConfig, OutputSpec } from './schema';

export interface CheckOptions {
  /** Where passwd and group live; tests point this at a fixture directory. */
  etcDir?: string;
}

/** Never throws for problems in the file: everything found is in `errors` / `warnings`, each with file:line:col. */
export function checkConfig(path: string, opts: CheckOptions = {}): ConfigAnalysis {
  let text: string;
  try {
    text = readConfigText(path);
  } catch (err) {
    if (err instanceof ConfigError) return { config: undefined, errors: [err], warnings: [] };
    throw err;
  }
  const r = analyzeConfig(text, path);
  // The daemon refuses a config file that anyone but root could change (loadConfig): so does the check.
  const untrusted = pathTrustProblem(resolve(path));
  const trust = untrusted
    ? [
        new ConfigError(
          { file: path, line: 1, col: 1 },
          `config file refused: ${untrusted}; auditmux runs it as root, so only root may be able to change it`,
        ),
      ]
    : [];
  if (!r.config) return { ...r, errors: [...trust, ...r.errors] };
  const env = checkEnvironment(r.config, path, opts);
  const errors = [...trust, ...env.errors];
  return {
    config: errors.length === 0 ? r.config : undefined,
    errors,
    warnings: [...r.warnings, ...env.warnings],
  };
}

/** The machine-dependent checks, separate so the daemon can run them on a Config it already parsed. */
export function checkEnvironment(
  cfg: Config,
  file: string,
  opts: CheckOptions = {},
): { errors: ConfigError[]; warnings: ConfigError[] } {
  const errors: ConfigError[] = [];
  const warnings: ConfigError[] = [];
  const at = (key: string): SourcePos => cfg.sources.get(key) ?? { file, line: 1, col: 1 };
  const etc = opts.etcDir ?? '/etc';
  const users = readAccounts(join(etc, 'passwd'), 'passwd');
  const groups = readAccounts(join(etc, 'group'), 'group');

  const rulesPath = (key: string, p: string | null): void => {
    if (p === null) return;
    const st = statOrNull(p);
    if (!st) errors.push(new ConfigError(at(key), `${key}: ${p} does not exist`));
    else if (st.isDirectory()) {
      let names: string[];
      try {
        names = readdirSync(p).filter((n) => n.endsWith('.rules'));
      } catch (err) {
        errors.push(
          new ConfigError(at(key), `${key}: cannot read ${p} (${(err as NodeJS.ErrnoException).code ?? err})`),
        );
        return;
      }
      if (names.length === 0)
        warnings.push(new ConfigError(at(key), `${key}: ${p} has no *.rules files; no rules will be loaded`));
      trusted(key, p, { dir: true, followLast: true }, 'rules', names.length > 0 ? rulesFilesIn(p) : []);
    } else if (!st.isFile()) errors.push(new ConfigError(at(key), `${key}: ${p} is neither a file nor a directory`));
    else trusted(key, p, { followLast: true }, 'rules', []);
  };
  // What the daemon would refuse to obey (rules, assertTrustedRules) or to run (plugins), at the setting's position.
  const trusted = (
    key: string,
    p: string,
    o: { dir?: boolean; followLast?: boolean },
    what: string,
    files: string[],
  ): void => {
    for (const [f, fo] of [[p, o], ...files.map((x) => [x, { followLast: true }] as const)] as const) {
      const why = pathTrustProblem(f, fo);
      if (why)
        return void errors.push(
          new ConfigError(at(key), `${key}: ${what} refused: ${why}; only root may be able to change them`),
        );
    }
  };
  const programs = (
    where: string,
    outs: readonly OutputSpec[] | undefined,
    disk: DiskSpaceConfig | undefined,
  ): void => {
    for (const o of outs ?? []) {
      if (o.type !== 'plugin') continue;
      const why = programTrustProblem(o.path);
      if (why)
        errors.push(
          new ConfigError(
            o.pos ?? { file, line: 1, col: 1 },
            `plugin ${o.name} refused: ${why}; it would run as root, so only root may be able to change it`,
          ),
        );
    }
    if (!disk) return;
    const exes: [string, string, string | null][] = [
      ['space_left_exe', disk.spaceLeftAction, disk.spaceLeftExe],
      ['admin_space_left_exe', disk.adminSpaceLeftAction, disk.adminSpaceLeftExe],
      ['disk_full_exe', disk.diskFullAction, disk.diskFullExe],
      ['disk_error_exe', disk.diskErrorAction, disk.diskErrorExe],
    ];
    for (const [k, action, exe] of exes) {
      const why = action === 'exec' && exe ? programTrustProblem(exe) : null;
      // The daemon starts but never runs it (DiskSpaceGuard): a warning, as the daemon only logs it.
      if (why) warnings.push(new ConfigError(at(`${where}.${k}`), `${where}.${k}: will not be run: ${why}`));
    }
  };
  const logFile = (key: string, p: string, ownDir = false): void => {
    const st = statOrNull(p);
    if (st && !st.isFile())
      errors.push(new ConfigError(at(`${key}.file`), `${key}.file: ${p} exists and is not a regular file`));
    const dir = dirname(p);
    const dst = statOrNull(dir);
    if (dst && !dst.isDirectory())
      errors.push(new ConfigError(at(`${key}.file`), `${key}.file: ${dir} is not a directory`));
    // A daemon with a user gets its directory made by auditmux at start: only its parent has to be there.
    if (!dst && !(ownDir && statOrNull(dirname(dir))?.isDirectory()))
      warnings.push(
        new ConfigError(
          at(`${key}.file`),
          `${key}.file: ${dir} does not exist yet; it must exist or be creatable when the daemon starts`,
        ),
      );
  };
  const account = (key: string, name: string | null, known: AccountTable | null, kind: string): void => {
    if (name === null || known === null) return;
    // A user's uid must be listed (its gid comes from there, as the daemon resolves it); a gid needs no entry.
    if (kind === 'user' ? findUser(name, known) === undefined : !/^[0-9]+$/.test(name) && !known.named(name))
      errors.push(
        new ConfigError(
          at(key),
          `${key}: no ${kind} named "${name}" in ${join(etc, kind === 'user' ? 'passwd' : 'group')}`,
        ),
      );
  };

  rulesPath('host.rules', cfg.host.rules);
  logFile('host.log', cfg.host.log.file);
  programs('host.log', cfg.host.outputs, cfg.host.log.diskSpace);
  // The aggregator's remote log has a guard of its own, with its own *_exe programs.
  if (cfg.host.listen?.log) programs('host.listen.log', [], cfg.host.listen.log.diskSpace);
  account('host.log.log_group', cfg.host.log.logGroup, groups, 'group');
  cfg.daemons.forEach((d, i) => {
    rulesPath(`daemons[${i}].rules`, d.rules);
    logFile(`daemons[${i}].log`, d.log.file, d.user !== null);
    programs(`daemons[${i}].log`, d.outputs, d.log.diskSpace);
    account(`daemons[${i}].log.log_group`, d.log.logGroup, groups, 'group');
    account(`daemons[${i}].user`, d.user, users, 'user');
  });
  // A template's rules and accounts are used by every daemon it makes: checked here, not at its first event.
  (cfg.templates ?? []).forEach((t, i) => {
    rulesPath(`daemon_templates[${i}].rules`, t.rules);
    account(`daemon_templates[${i}].log.log_group`, t.log.logGroup, groups, 'group');
    account(`daemon_templates[${i}].user`, t.user, users, 'user');
  });
  return { errors, warnings };
}

function statOrNull(p: string): ReturnType<typeof statSync> | null {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}

/** Human-readable report: one `file:line:col: reason` line per problem, warnings marked. */
export function formatCheckReport(r: ConfigAnalysis): string {
  const lines = [...r.errors.map((e) => `error: ${e.message}`), ...r.warnings.map((e) => `warning: ${e.message}`)];
  if (r.config) lines.push(`${r.config.file ?? 'config'}: OK`);
  return lines.join('\n');
}

/** JSON-safe view of a Config (bigints as decimal strings, sources omitted) for `config check --print`. */
export function configToPlain(cfg: Config): unknown {
  const { sources: _sources, ...rest } = cfg;
  return JSON.parse(JSON.stringify(rest, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString(10) : v)));
}
