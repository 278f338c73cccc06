// `auditmux aux add`: from a request to a checked daemon config, its routes and rules; nothing changes until all pass.
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { RuleError, UsageError } from '../errors';
import { DEFAULT_QUEUE, OVERFLOW_ACTIONS, parseContidSelector, type DaemonConfig, type RouteConfig } from '../config';
import { blockForUserProblem, buildDaemonConfig, DAEMON_NAME_RE, queueDepthProblem } from '../config/daemon-config';
import { auxLogProblem, defaultAuxLogFile } from '../config/aux-paths';
import { loadRulesPath, type RuleCommand } from '../rules';
import { prepareAuxLogDir } from './aux-daemon';
import { auxRules } from './rule-union';
import { cutUtf8, encodeUntrusted } from '../records/encode';
import type { AuxAddArgs } from './control-commands';
import type { DaemonRegistry } from './daemon-registry';

export interface AuxAddPlan {
  daemon: DaemonConfig;
  routes: RouteConfig[];
  commands: RuleCommand[];
}

/**
 * Checks everything a new daemon needs and makes its log directory (or finds it already the user's): a refused
 * request leaves nothing behind. `refuse` records and throws for rules that ask for host-wide changes.
 */
export function planAuxAdd(
  args: AuxAddArgs,
  ctx: { hostLogFile: string; registry: DaemonRegistry; refuse: (reason: string, fields: string) => never },
): AuxAddPlan {
  const name = args.name;
  if (!DAEMON_NAME_RE.test(name) || name === 'host')
    throw new UsageError(`bad daemon name "${name}" (lowercase letters, digits, - and _, not "host")`);
  if (ctx.registry.has(name)) throw new UsageError(`daemon "${name}" already exists`);
  // A template's stopped tenant comes back under its name at its next event, and took the daemon over before.
  if (ctx.registry.templates.knows(name))
    throw new UsageError(`daemon "${name}" belongs to a daemon template (stopped now; it is made again on demand)`);
  if (!args.contid.length) throw new UsageError('aux add needs --contid');
  const patterns = args.contid.map((t) => {
    const p = parseContidSelector(t);
    if (typeof p === 'string') throw new UsageError(`--contid ${t}: ${p}`);
    return p;
  });
  const rulesPath = args.rules ? resolve(args.rules) : null;
  let commands: RuleCommand[] = [];
  if (rulesPath) {
    commands = loadRulesPath(rulesPath);
    try {
      auxRules(name, commands);
    } catch (e) {
      if (e instanceof RuleError) ctx.refuse(e.message, ` daemon=${name}`);
      throw e;
    }
  }
  const pos = { file: '<aux add>', line: 1 };
  const overflow = (args.overflow ?? DEFAULT_QUEUE.overflow) as DaemonConfig['queue']['overflow'];
  if (!OVERFLOW_ACTIONS.includes(overflow))
    throw new UsageError(`--overflow must be block, drop_newest or drop_oldest`);
  const blocked = blockForUserProblem(args.user ?? null, overflow);
  if (blocked) throw new UsageError(`--${blocked}`);
  if (args.queue !== undefined) {
    const bad = queueDepthProblem(args.queue);
    if (bad) throw new UsageError(`queue depth ${bad}`);
  }
  if (args.isolation !== undefined) {
    if (args.isolation !== 'inline' && args.isolation !== 'process')
      throw new UsageError('--isolation must be inline or process');
    if (args.isolation === 'inline' && args.user)
      throw new UsageError(`--isolation inline cannot run as user "${args.user}" (use --isolation process)`);
  }
  // The same builder as the config file's daemons: the same defaults (log format and all), whichever way it came.
  const daemon = buildDaemonConfig(
    {
      name,
      pos,
      rules: rulesPath,
      ...(args.log ? { log: { file: resolve(args.log) } } : {}),
      queue: { ...(args.queue !== undefined ? { depth: args.queue } : {}), overflow },
      user: args.user ?? null,
      ...(args.isolation ? { isolation: args.isolation as DaemonConfig['isolation'] } : {}),
    },
    ctx.hostLogFile,
  );
  const others = ctx.registry.configs();
  if (others.some((d) => d.log.file === daemon.log.file) || daemon.log.file === ctx.hostLogFile) {
    throw new UsageError(`log file ${daemon.log.file} is already used by another daemon`);
  }
  // The same placement rule as the config file's; then the directory is made (or found already the user's) before
  // anything else changes, so a refused directory leaves no daemon behind.
  const placement = auxLogProblem(
    { name, user: daemon.user, file: daemon.log.file },
    ctx.hostLogFile,
    others.map((d) => ({ name: d.name, user: d.user, file: d.log.file })),
  );
  if (placement) throw new UsageError(placement);
  runtimeLogProblem(daemon, ctx.hostLogFile, others);
  prepareAuxLogDir(daemon);
  const routes = [{ index: 0, contid: patterns, types: null, keys: null, daemons: [name], continue: true, pos }];
  return { daemon, routes, commands };
}

/**
 * Where a daemon added at run time may log: inside the host's log directory, checked on the paths with their links
 * resolved. The request comes from an orchestrator that may pass a tenant's choice on: anywhere else, an existing
 * file (/etc/passwd, the host's log through a linked directory) was taken over, chmod 0600 and appended to. The
 * host's log directory is root's alone (the log refuses to open otherwise), so whatever is in it is the trail's.
 */
function runtimeLogProblem(daemon: DaemonConfig, hostLogFile: string, others: readonly DaemonConfig[]): void {
  const file = canonicalPath(daemon.log.file);
  const hostDir = canonicalPath(dirname(hostLogFile));
  if (!file.startsWith(`${hostDir}/`)) {
    throw new UsageError(
      `log file ${daemon.log.file} is outside the host's log directory ${hostDir}: a daemon added at run time logs ` +
        `there (default ${defaultAuxLogFile(hostLogFile, daemon.name, daemon.user)})`,
    );
  }
  // The placement rule again on the resolved paths: a link must not make two logs, or a log and a rotation, one.
  const host = canonicalPath(hostLogFile);
  if (file === host) throw new UsageError(`log file ${daemon.log.file} is the host's log ${host}`);
  const same = others.find((d) => canonicalPath(d.log.file) === file);
  if (same) throw new UsageError(`log file ${daemon.log.file} is the log of daemon "${same.name}"`);
  const problem = auxLogProblem(
    { name: daemon.name, user: daemon.user, file },
    host,
    others.map((d) => ({ name: d.name, user: d.user, file: canonicalPath(d.log.file) })),
  );
  if (problem) throw new UsageError(problem);
}

/** `p` with every link resolved, as far as it exists; the rest (a log still to be made) appended as it is. */
function canonicalPath(p: string): string {
  let head = resolve(p);
  const tail: string[] = [];
  for (;;) {
    try {
      return join(realpathSync.native(head), ...tail.reverse());
    } catch (e) {
      const parent = dirname(head);
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || parent === head) throw new UsageError(`cannot resolve ${head}: ${code ?? e}`);
      tail.push(basename(head));
      head = parent;
    }
  }
}

/**
 * The DAEMON_CONFIG record body of a daemon added. Each value is cut to 1 KiB (hex doubles it): 2000 selectors or
 * two long paths pushed `res=success` past the line limit, so the record lost its outcome.
 */
export function auxAddBody(plan: AuxAddPlan, contid: string[]): string {
  const d = plan.daemon;
  const cut = (v: string): string => encodeUntrusted(cutUtf8(v, VALUE_MAX));
  const rules = d.rules === null ? '(none)' : cut(d.rules);
  return `op=aux-add daemon=${d.name} contid=${cut(contid.join(','))} rules=${rules} log=${cut(d.log.file)} res=success`;
}

/** Bytes of one value in the aux-add record before its hex encoding. */
const VALUE_MAX = 1024;
