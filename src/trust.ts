// Trust checks for what auditmux obeys or runs as root (config, rules, plugins, *_exe programs), ported from auditd.
import * as fs from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { ConfigError, RuleError } from './errors';

/** The part of fs.Stats the checks read, so a readBounded() result (or an lstat) can be checked as it is. */
export type TrustStat = Pick<fs.Stats, 'mode' | 'uid'>;

export interface TrustOptions {
  /** The file is run: it must also be executable by its owner. */
  exec?: boolean;
  /** The path names a directory (rules.d), checked like every directory on the way. */
  dir?: boolean;
  /** Follow a trusted symlink at the end too (rules: auditctl -R follows them, and linking example rules is common). */
  followLast?: boolean;
}

/** Linux's own limit on symlinks followed in one lookup (MAXSYMLINKS). */
const MAX_SYMLINKS = 40;
const S_ISVTX = 0o1000;

/**
 * Root may own what root obeys; so may the user running auditmux, which lets a non-root `config check` or test
 * read its own files while the daemon (euid 0) still accepts root's files only.
 */
function trustedOwner(uid: number): boolean {
  return uid === 0 || uid === (process.geteuid?.() ?? 0);
}

function writableBy(mode: number): string | null {
  const g = (mode & 0o020) !== 0;
  const o = (mode & 0o002) !== 0;
  return g && o ? 'group and world writable' : g ? 'group writable' : o ? 'world writable' : null;
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/**
 * Why a file may not be trusted, or null. auditd's rules: regular file (a symlink, from an lstat, is refused),
 * owned by root, not writable by group or others (audispd's plugin and plugin-config check; auditd.conf itself
 * only refuses world-writable, auditmux refuses group-writable too), and for a program executable by its owner.
 */
export function fileTrustProblem(st: TrustStat, opts: TrustOptions = {}): string | null {
  const type = st.mode & fs.constants.S_IFMT;
  if (type === fs.constants.S_IFLNK) return 'is a symlink';
  if (type !== fs.constants.S_IFREG) return 'is not a regular file';
  if (!trustedOwner(st.uid)) return `is owned by uid ${st.uid}, not root`;
  const w = writableBy(st.mode);
  if (w) return `is ${w} (mode ${octal(st.mode)})`;
  if (opts.exec && (st.mode & 0o100) === 0) return `is not executable by its owner (mode ${octal(st.mode)})`;
  return null;
}

/**
 * A directory on the way to a trusted file: whoever can write it can rename another file into its place. A sticky
 * directory (/tmp) is fine, since there only an entry's owner may rename it, and every entry is checked for owner.
 */
function dirTrustProblem(st: fs.Stats): string | null {
  if (!st.isDirectory()) return 'is not a directory';
  if (!trustedOwner(st.uid)) return `is owned by uid ${st.uid}, not root`;
  const w = writableBy(st.mode);
  if (w && (st.mode & S_ISVTX) === 0) return `is ${w} (mode ${octal(st.mode)})`;
  return null;
}

/**
 * Checks `path` and every directory and symlink met while resolving it, the way the kernel walks it. The final
 * component must not be a symlink (auditd opens its config with O_NOFOLLOW); symlinks on the way (/sbin -> usr/sbin)
 * are followed when they and their directory are trusted. auditd checks only the file; auditmux checks the chain
 * too, so nobody but root can swap the file between this check and the exec or read that follows. Returns the
 * problem, naming the component at fault, or null.
 */
export function pathTrustProblem(path: string, opts: TrustOptions = {}): string | null {
  if (!isAbsolute(path)) return `${path} is not an absolute path`;
  const rootSt = fs.lstatSync('/');
  const rp = dirTrustProblem(rootSt);
  if (rp) return `/ ${rp}`;
  const todo = path.split('/').filter((c) => c.length > 0);
  let dir = '/';
  let links = 0;
  while (todo.length > 0) {
    const c = todo.shift() as string;
    if (c === '.') continue;
    if (c === '..') {
      dir = join(dir, '..');
      continue;
    }
    const here = join(dir, c);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(here);
    } catch (e) {
      return `${here}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`;
    }
    const last = todo.length === 0;
    if (st.isSymbolicLink()) {
      if (last && !opts.followLast) return `${here} is a symlink`;
      if (!trustedOwner(st.uid)) return `${here} is a symlink owned by uid ${st.uid}, not root`;
      if (++links > MAX_SYMLINKS) return `${path}: too many symlinks`;
      const target = fs.readlinkSync(here);
      todo.unshift(...target.split('/').filter((x) => x.length > 0));
      if (isAbsolute(target)) dir = '/';
      continue;
    }
    if (last) {
      const p = opts.dir ? dirTrustProblem(st) : fileTrustProblem(st, opts);
      return p ? `${here} ${p}` : null;
    }
    const p = dirTrustProblem(st);
    if (p) return `${here} ${p}`;
    dir = here;
  }
  return `${path} names no file`;
}

const FIX = 'only root may be able to change it (chown root, chmod go-w, no symlink, in root-owned directories)';

/** The config file, before the host obeys it: a ConfigError at file:1:1 (exit 3) like every config problem. */
export function assertTrustedConfig(path: string, st?: TrustStat): void {
  const p = (st ? fileTrustProblem(st) : null) ?? pathTrustProblem(path);
  if (p)
    throw new ConfigError(
      { file: path, line: 1, col: 1 },
      `config file refused: ${p}; auditmux runs it as root, so ${FIX}`,
    );
}

/**
 * A rules file, or a rules.d directory (whoever may write it could add a file that sorts in between) and each
 * *.rules file in it: a RuleError at file:1:1 (exit 4).
 */
export function assertTrustedRules(path: string, dirFiles?: readonly string[]): void {
  const file: TrustOptions = { followLast: true };
  const checks: [string, TrustOptions][] = dirFiles
    ? [[path, { dir: true, followLast: true }], ...dirFiles.map((f): [string, TrustOptions] => [f, file])]
    : [[path, file]];
  for (const [f, opts] of checks) {
    const p = pathTrustProblem(f, opts);
    if (p)
      throw new RuleError(
        `rules refused: ${p}; they go into the kernel as root, so ${FIX}`,
        { file: f, line: 1, col: 1 },
        'E_UNTRUSTED',
      );
  }
}

/** A plugin or *_exe program, checked before every start: the reason it must not run, or null. */
export function programTrustProblem(path: string): string | null {
  return pathTrustProblem(path, { exec: true });
}
