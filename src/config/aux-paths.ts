// Where an auxiliary daemon's log may live: one rule, shared by the config loader and `aux add`.
import { dirname, join } from 'node:path';

/** The name auxSpoolProblem takes for the host's own outputs: no daemon can be called so. */
export const HOST_OWNER = ':host';

/** What the placement rule needs to know about a daemon. */
export interface AuxLogPlacement {
  name: string;
  /** The user it runs as (isolation: process under another account), or null when it writes as root. */
  user: string | null;
  /** Absolute path of its live log. */
  file: string;
}

/**
 * The default log of an auxiliary daemon. One that writes as root (no `user`) sits next to the host's log, as
 * `<host log dir>/<name>.log`. One with a `user` gets a directory of its own that auditmux creates and hands to that
 * user, `<host log dir>/<name>/<name>.log`: the user then owns its own logs and nothing else.
 */
export function defaultAuxLogFile(hostLogFile: string, name: string, user: string | null): string {
  const dir = dirname(hostLogFile);
  return user ? join(dir, name, `${name}.log`) : join(dir, `${name}.log`);
}

/** `name` is `log` rotated: `log.N` or `log.N.gz`, the names rotation gives it (and the ones it renames over). */
function isRotationOf(name: string, log: string): boolean {
  return name.startsWith(`${log}.`) && /^\d+(\.gz)?$/.test(name.slice(log.length + 1));
}

/**
 * How two logs' names collide, or null: the same file, or one is a rotated name of the other. Rotating one would
 * rename it over the other's live file, or the other writes into a sealed rotation of it (the host's audit.log.1).
 */
export function logNamesClash(a: string, b: string): string | null {
  if (a === b) return 'is';
  if (isRotationOf(a, b)) return 'is a rotated name of';
  if (isRotationOf(b, a)) return 'has a rotated name that is';
  return null;
}

/** `p` is `dir` or below it (lexically; both absolute and normalised). */
function within(p: string, dir: string): boolean {
  return p === dir || dir === '/' || p.startsWith(`${dir}/`);
}

/**
 * Why `d`'s log cannot be where it is, or null when it can. A daemon with a user owns the directory its log is in,
 * so that directory must be its alone: not the host's log directory nor one above it, and holding no other daemon's
 * log; and no daemon (root or not) may write inside another user's directory. `others` are the daemons already
 * placed (earlier in the config, or running when `aux add` asks); each pair is checked in both directions.
 */
export function auxLogProblem(
  d: AuxLogPlacement,
  hostLogFile: string,
  others: readonly AuxLogPlacement[],
): string | null {
  const hostDir = dirname(hostLogFile);
  const dir = dirname(d.file);
  const suggestion = defaultAuxLogFile(hostLogFile, d.name, d.user);
  if (d.user) {
    const who = `daemon "${d.name}" runs as user "${d.user}" and would own the directory of its log ${d.file}`;
    if (dir === hostDir)
      return `${who}, which is the host's log directory; give it a directory of its own (default ${suggestion})`;
    if (within(hostDir, dir))
      return `${who}, which contains the host's log directory ${hostDir}; give it a directory of its own (default ${suggestion})`;
  }
  // The same path twice is the callers' own check (the config file's names the daemon's position).
  const hostClash = d.file === hostLogFile ? null : logNamesClash(d.file, hostLogFile);
  if (hostClash) return `the log of daemon "${d.name}" (${d.file}) ${hostClash} the host's log ${hostLogFile}`;
  for (const e of others) {
    if (e.name === d.name) continue;
    const clash = d.file === e.file ? null : logNamesClash(d.file, e.file);
    if (clash) return `the log of daemon "${d.name}" (${d.file}) ${clash} the log of daemon "${e.name}" (${e.file})`;
    const eDir = dirname(e.file);
    if (d.user && within(eDir, dir)) {
      return `daemon "${d.name}" runs as user "${d.user}" and would own ${dir}, which holds the log of daemon "${e.name}" (${e.file}); give each daemon with a user a directory of its own (default ${suggestion})`;
    }
    if (e.user && within(dir, eDir)) {
      return `the log of daemon "${d.name}" (${d.file}) is inside ${eDir}, the directory of daemon "${e.name}" which user "${e.user}" owns; choose another directory (default ${suggestion})`;
    }
  }
  return null;
}

/**
 * The default spool of an output of a daemon with a user: `<its own directory>/spool/<output>`, which it can create
 * after dropping privileges (root's /var/spool/auditmux is 0700, out of its reach).
 */
export function defaultAuxSpoolDir(logFile: string, output: string): string {
  return join(dirname(logFile), 'spool', output);
}

/**
 * Why an output spool of `d` (a daemon, or the host with user null) cannot be at `spoolDir`, or null. A daemon with
 * a user writes its spool as that user: only below its own directory can it do so without touching what is not
 * its own. A spool written as root must not be inside a directory that a daemon's user owns, where that user could
 * swap the files root then writes to.
 */
export function auxSpoolProblem(
  d: AuxLogPlacement,
  output: string,
  spoolDir: string,
  others: readonly AuxLogPlacement[],
): string | null {
  const own = dirname(d.file);
  if (d.user) {
    if (spoolDir === own || !within(spoolDir, own)) {
      return `output "${output}" of daemon "${d.name}" spools in ${spoolDir}, but the daemon runs as user "${d.user}" and may write only below its own directory ${own} (default ${defaultAuxSpoolDir(d.file, output)})`;
    }
  }
  for (const e of others) {
    if (e.name === d.name || !e.user) continue;
    const eDir = dirname(e.file);
    if (within(spoolDir, eDir) || within(eDir, spoolDir)) {
      return `output "${output}" of ${d.name === HOST_OWNER ? 'the host' : `daemon "${d.name}"`} spools in ${spoolDir}, which overlaps ${eDir}, the directory of daemon "${e.name}" which user "${e.user}" owns; choose another directory`;
    }
  }
  return null;
}

/**
 * The spool directory as a daemon with a user opens it: relative to its own directory, which is its working
 * directory after it dropped privileges (the host's log directory above it is root's 0700 and not traversable).
 */
export function spoolFromOwnDir(logFile: string, spoolDir: string): string {
  const own = dirname(logFile);
  return within(spoolDir, own) && spoolDir !== own ? spoolDir.slice(own.length + 1) : spoolDir;
}

/**
 * Why a log written as root at `file` (the aggregator's remote log) cannot be there, or null: not in a user's
 * directory.
 */
export function rootLogProblem(what: string, file: string, others: readonly AuxLogPlacement[]): string | null {
  for (const e of others) {
    const eDir = dirname(e.file);
    if (e.user && within(dirname(file), eDir)) {
      return `${what} ${file} is inside ${eDir}, the directory of daemon "${e.name}" which user "${e.user}" owns and where that user could delete or replace it; choose another directory`;
    }
  }
  return null;
}
