// File access that an attacker cannot steer: bounded reads of regular files only, optionally refusing symlinks.
import { Buffer } from 'node:buffer';
import * as fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { IoError } from './errors';

export interface BoundedReadOptions {
  /** Largest accepted size in bytes; a bigger file is refused without reading past the limit. */
  limit: number;
  /** Refuse a symlink at the final path component (O_NOFOLLOW), as auditd does for its config files. */
  noFollow?: boolean;
  /** What the file is, for messages ("the config file", "rules"). */
  what?: string;
}

export interface BoundedRead {
  data: Buffer;
  stat: fs.Stats;
}

/**
 * Reads a whole regular file of at most `limit` bytes. O_NONBLOCK makes opening a FIFO return at once (it is then
 * refused as not regular) instead of hanging the daemon; /dev/zero and other devices are refused before any read;
 * a file that grows past the limit while being read is refused too, so memory stays bounded whatever the path is.
 */
export function readBounded(path: string, opts: BoundedReadOptions): BoundedRead {
  const what = opts.what ?? 'file';
  const c = fs.constants;
  let flags = c.O_RDONLY | c.O_NONBLOCK | c.O_NOCTTY;
  if (opts.noFollow) flags |= c.O_NOFOLLOW;
  let fd: number;
  try {
    fd = fs.openSync(path, flags);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ELOOP' && opts.noFollow)
      throw new IoError(`${what} ${path} is a symlink (refused)`, 'E_SYMLINK', { cause: e });
    throw new IoError(`cannot read ${what} ${path} (${code})`, 'E_IO', { cause: e });
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new IoError(`${what} ${path} is not a regular file (refused)`, 'E_NOT_REGULAR');
    if (stat.size > opts.limit)
      throw new IoError(`${what} ${path} is ${stat.size} bytes, over the ${opts.limit}-byte limit`, 'E_TOO_LARGE');
    // Read up to one byte past the limit: that tells a file that grew after fstat from one exactly at the limit.
    const chunks: Buffer[] = [];
    let total = 0;
    while (total <= opts.limit) {
      const chunk = Buffer.allocUnsafe(Math.min(opts.limit + 1 - total, 65536));
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      total += n;
    }
    if (total > opts.limit) throw new IoError(`${what} ${path} is over the ${opts.limit}-byte limit`, 'E_TOO_LARGE');
    return { data: Buffer.concat(chunks, total), stat };
  } catch (e) {
    if (e instanceof IoError) throw e;
    throw new IoError(`cannot read ${what} ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, 'E_IO', {
      cause: e,
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** PEM files (certificates, keys, CA bundles) are small; anything bigger is not one and must not be read whole. */
export const PEM_FILE_LIMIT = 1 << 20;

/**
 * A TLS certificate, key or CA file, read once at start: bounded, regular files only (a FIFO would block the daemon).
 */
export function readPem(path: string, what: string): Buffer {
  return readBounded(path, { limit: PEM_FILE_LIMIT, what }).data;
}

// ---------------------------------------------------------------------------------------------------------------
// Write side: every file auditmux creates or writes goes through these, so a name planted by someone who can write
// in one of its directories (a symlink, a hard link to another file, a FIFO) never redirects a write made as root.

export interface NoFollowOptions {
  /** Permission bits for a file that gets created. */
  mode?: number;
  /** What the file is, for messages ("log file", "spool cursor"). */
  what?: string;
}

export interface OpenedFile {
  fd: number;
  stat: fs.Stats;
}

function errCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? 'EIO';
}

/**
 * Opens `path` with `flags` plus O_NOFOLLOW (a symlink at the last component is refused, not followed), O_NONBLOCK
 * (a FIFO cannot hang the daemon) and O_NOCTTY, then refuses anything but a regular file with exactly one link: a
 * hard link planted under our name would make every write land in someone else's file.
 */
export function openNoFollow(path: string, flags: number, opts: NoFollowOptions = {}): OpenedFile {
  const what = opts.what ?? 'file';
  const c = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(path, flags | c.O_NOFOLLOW | c.O_NONBLOCK | c.O_NOCTTY, opts.mode ?? 0o600);
  } catch (e) {
    const code = errCode(e);
    if (code === 'ELOOP')
      throw new IoError(`${what} ${path} is a symbolic link; refusing to follow it`, 'E_SYMLINK', { cause: e });
    if (code === 'ENXIO')
      throw new IoError(`${what} ${path} is not a regular file (refused)`, 'E_NOT_REGULAR', { cause: e });
    throw new IoError(`cannot open ${what} ${path} (${code})`, 'E_IO', { cause: e });
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new IoError(`${what} ${path} is not a regular file (refused)`, 'E_NOT_REGULAR');
    if (stat.nlink > 1) {
      const verb = (flags & (c.O_WRONLY | c.O_RDWR)) === 0 ? 'read' : 'write';
      throw new IoError(
        `${what} ${path} has ${stat.nlink} hard links; refusing to ${verb} a file that is also elsewhere`,
        'E_HARDLINK',
      );
    }
    return { fd, stat };
  } catch (e) {
    fs.closeSync(fd);
    if (e instanceof IoError) throw e;
    throw new IoError(`cannot stat ${what} ${path} (${errCode(e)})`, 'E_IO', { cause: e });
  }
}

/**
 * Opens a file someone else may have named to be read by root (a name listed in a tenant's directory): read-only,
 * with openNoFollow's refusals (symlink, FIFO, device, hard link). ENOENT comes back as null when `missingOk`.
 */
export function openReadNoFollow(path: string, what: string, missingOk?: false): OpenedFile;
export function openReadNoFollow(path: string, what: string, missingOk: true): OpenedFile | null;
export function openReadNoFollow(path: string, what: string, missingOk = false): OpenedFile | null {
  try {
    return openNoFollow(path, fs.constants.O_RDONLY, { what });
  } catch (e) {
    if (missingOk && errCode((e as { cause?: unknown }).cause) === 'ENOENT') return null;
    throw e;
  }
}

/**
 * Opens (creating with `mode` if missing) for appending, without following a symlink or writing through a hard link.
 */
export function openAppendNoFollow(path: string, opts: NoFollowOptions = {}): OpenedFile {
  const c = fs.constants;
  return openNoFollow(path, c.O_WRONLY | c.O_APPEND | c.O_CREAT, opts);
}

/**
 * Creates a new file that nobody else can have prepared: O_CREAT|O_EXCL (which never follows a symlink, even a
 * dangling one) and O_NOFOLLOW. With `replaceStale`, a leftover entry under the name (a temporary from a crash, or a
 * planted symlink) is unlinked first; unlink removes only the name, never what a symlink points to. A directory is
 * never removed.
 */
export function createExclusive(path: string, opts: NoFollowOptions & { replaceStale?: boolean } = {}): OpenedFile {
  const c = fs.constants;
  const flags = c.O_WRONLY | c.O_CREAT | c.O_EXCL;
  try {
    return openNoFollow(path, flags, opts);
  } catch (e) {
    const cause = (e as { cause?: unknown }).cause;
    if (!opts.replaceStale || errCode(cause) !== 'EEXIST') throw e;
  }
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch (e) {
    throw new IoError(`cannot inspect stale ${opts.what ?? 'file'} ${path} (${errCode(e)})`, 'E_IO', { cause: e });
  }
  if (st.isDirectory())
    throw new IoError(`${opts.what ?? 'file'} ${path} exists and is a directory (refused)`, 'E_NOT_REGULAR');
  try {
    fs.unlinkSync(path);
  } catch (e) {
    if (errCode(e) !== 'ENOENT')
      throw new IoError(`cannot remove stale ${opts.what ?? 'file'} ${path} (${errCode(e)})`, 'E_IO', { cause: e });
  }
  return openNoFollow(path, flags, opts);
}

/**
 * Replaces `file` with `data`: a temporary beside it (`.NAME.tmp`, O_EXCL|O_NOFOLLOW, 0600, a stale one unlinked
 * first) written in full, fsynced when `sync`, then renamed over it, so a reader sees the old file or the new one,
 * never a part. The temporary goes on any failure. Throws IoError (or the write's error).
 */
export function replaceFile(file: string, data: string, opts: { what: string; sync: boolean }): void {
  const tmp = join(dirname(file), `.${basename(file)}.tmp`);
  const { fd } = createExclusive(tmp, { mode: 0o600, what: `${opts.what} temporary`, replaceStale: true });
  try {
    try {
      const b = Buffer.from(data, 'utf8');
      for (let off = 0; off < b.length;) off += fs.writeSync(fd, b, off, b.length - off);
      if (opts.sync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * The object of a state file that holds for one boot only (`{version, boot, ...}`: pids, kernel rules), or `fail`'s
 * error naming what is wrong: not JSON, not an object, another version, another boot.
 */
export function bootStateDocument(
  text: string,
  version: number,
  boot: string,
  fail: (reason: string) => Error,
): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw fail(`not JSON (${(e as Error).message})`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw fail('not an object');
  const d = doc as Record<string, unknown>;
  if (d.version !== version) throw fail(`version ${String(d.version)}, expected ${version}`);
  if (d.boot !== boot) throw fail('written during another boot');
  return d;
}

/** The entry under `path` without following it, or null when there is none. */
export function lstatOrNull(path: string): fs.Stats | null {
  try {
    return fs.lstatSync(path);
  } catch (e) {
    if (errCode(e) === 'ENOENT') return null;
    throw e;
  }
}

export interface DirPolicy {
  /** uids allowed to own the directory (root, and the writer's own uid). */
  owners: readonly number[];
  what?: string;
}

/**
 * A directory auditmux writes in must not let anyone else add, remove or replace entries in it: a real directory
 * (not a symlink), owned by one of `owners`, not writable by group or others (sticky or not: a planted name in
 * /tmp is still a planted name). auditd 3.0.9 instead chowns its log directory back to root on every start.
 */
export function checkDirSafe(dir: string, policy: DirPolicy, shown = dir): fs.Stats {
  // `shown`: the path in messages when `dir` is reached through a held directory (/proc/self/fd/N/name).
  const what = policy.what ?? 'directory';
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (e) {
    throw new IoError(`cannot inspect ${what} ${shown} (${errCode(e)})`, 'E_IO', { cause: e });
  }
  if (st.isSymbolicLink()) throw new IoError(`${what} ${shown} is a symbolic link (refused)`, 'E_UNSAFE_DIR');
  checkDirStat(st, shown, policy);
  return st;
}

/**
 * `/proc/self/fd/N` of a directory held open at fd, when it leads there (null without /proc): a name under it
 * resolves in that directory wherever it has been moved, whatever now lies at its old path.
 */
function procAnchor(fd: number): string | null {
  const anchor = `/proc/self/fd/${fd}`;
  try {
    const a = fs.statSync(anchor);
    const b = fs.fstatSync(fd);
    return a.isDirectory() && a.dev === b.dev && a.ino === b.ino ? anchor : null;
  } catch {
    return null;
  }
}

/**
 * Makes a directory's entries durable (a file created in it, one removed): fsync of the file alone does not promise
 * its name survives a crash. The directory is opened O_DIRECTORY|O_NOFOLLOW, read-only.
 */
export function syncDir(dir: string): void {
  const c = fs.constants;
  const fd = fs.openSync(dir, c.O_RDONLY | c.O_DIRECTORY | c.O_NOFOLLOW);
  try {
    fs.fsyncSync(fd);
  } catch (e) {
    // A file system that cannot sync a directory (EINVAL, ENOTSUP) keeps names as well as it can: not an error here.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP') throw e;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Checks a directory (checkDirSafe) and opens it (O_DIRECTORY|O_NOFOLLOW), then checks what was opened again: a
 * directory above it swapped between the check and the open would give another one. Returns the descriptor and its
 * /proc anchor (procAnchor). Throws IoError; nothing stays open then.
 */
export function openCheckedDir(dir: string, policy: DirPolicy): { fd: number; anchor: string | null } {
  checkDirSafe(dir, policy);
  const c = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(dir, c.O_RDONLY | c.O_DIRECTORY | c.O_NOFOLLOW);
  } catch (e) {
    throw new IoError(`cannot open ${policy.what ?? 'directory'} ${dir} (${errCode(e)})`, 'E_UNSAFE_DIR', {
      cause: e,
    });
  }
  try {
    checkDirStat(fs.fstatSync(fd), dir, policy);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return { fd, anchor: procAnchor(fd) };
}

/** checkDirSafe's checks on a directory's stat (an lstat of its path, or an fstat of it held open). Throws IoError. */
function checkDirStat(st: fs.Stats, dir: string, policy: DirPolicy): void {
  const what = policy.what ?? 'directory';
  if (!st.isDirectory()) throw new IoError(`${what} ${dir} is not a directory (refused)`, 'E_UNSAFE_DIR');
  if (!policy.owners.includes(st.uid)) {
    throw new IoError(
      `${what} ${dir} is owned by uid ${st.uid}, expected uid ${[...new Set(policy.owners)].join(' or ')}: whoever owns it can replace the files in it (refused)`,
      'E_UNSAFE_DIR',
    );
  }
  if (st.mode & 0o022) {
    throw new IoError(
      `${what} ${dir} is writable by ${st.mode & 0o002 ? 'everyone' : 'its group'} (mode ${(st.mode & 0o7777).toString(8)}): others could plant or replace files in it (refused)`,
      'E_UNSAFE_DIR',
    );
  }
}

/**
 * The private directory of a process that runs as uid:gid. auditmux creates it (mkdir of the last component only,
 * mode 0700) and only then hands it over, through a descriptor opened with O_NOFOLLOW|O_DIRECTORY whose owner is
 * checked to still be us, so the chown cannot be steered to another directory. A directory that already exists is
 * never chowned: it is accepted only when it is a real directory already owned by uid and writable by it alone.
 * The parent must exist and be safe for root (checkDirSafe), so nobody else can swap the directory afterwards; it is
 * held open meanwhile, so a directory above it renamed between the check and the chown (its path then leading to
 * another directory, perhaps one of root's with the same name) cannot steer either.
 */
export function ensureOwnedDir(
  dir: string,
  ids: { uid: number; gid: number },
  what = 'directory',
): 'created' | 'existing' {
  const me = process.geteuid?.() ?? 0;
  const { fd, anchor } = openCheckedDir(dirname(dir), { owners: [0, me], what: `parent of ${what}` });
  try {
    return makeOwnedDir(anchor === null ? dir : `${anchor}/${basename(dir)}`, dir, ids, what, me);
  } finally {
    fs.closeSync(fd);
  }
}

/** ensureOwnedDir's work on `path` (the directory reached through its held parent); messages name `dir`. */
function makeOwnedDir(
  path: string,
  dir: string,
  ids: { uid: number; gid: number },
  what: string,
  me: number,
): 'created' | 'existing' {
  try {
    fs.mkdirSync(path, { mode: 0o700 });
  } catch (e) {
    if (errCode(e) !== 'EEXIST')
      throw new IoError(`cannot create ${what} ${dir} (${errCode(e)})`, 'E_IO', { cause: e });
    const st = checkDirSafe(path, { owners: [ids.uid], what }, dir);
    if (st.gid !== ids.gid && st.mode & 0o070)
      throw new IoError(
        `${what} ${dir} gives group ${st.gid} access (mode ${(st.mode & 0o7777).toString(8)}); expected the daemon's group ${ids.gid} (refused)`,
        'E_UNSAFE_DIR',
      );
    return 'existing';
  }
  const c = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(path, c.O_RDONLY | c.O_DIRECTORY | c.O_NOFOLLOW);
  } catch (e) {
    throw new IoError(`${what} ${dir} changed under us after mkdir (${errCode(e)}); refused`, 'E_UNSAFE_DIR', {
      cause: e,
    });
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isDirectory() || st.uid !== me)
      throw new IoError(`${what} ${dir} changed under us after mkdir; refused`, 'E_UNSAFE_DIR');
    fs.fchmodSync(fd, 0o700);
    if (ids.uid !== st.uid || ids.gid !== st.gid) fs.fchownSync(fd, ids.uid, ids.gid);
  } catch (e) {
    if (e instanceof IoError) throw e;
    throw new IoError(`cannot hand ${what} ${dir} to uid ${ids.uid} (${errCode(e)})`, 'E_IO', { cause: e });
  } finally {
    fs.closeSync(fd);
  }
  return 'created';
}

export interface TrustedReadOptions {
  /** Largest accepted size in bytes (see readBounded). */
  limit: number;
  /** uids that may own every directory on the path (root, and in tests the test's own uid). */
  dirOwners: readonly number[];
  /** The uid the file itself must have. */
  fileOwner: number;
  what?: string;
}

/**
 * Why a directory on a trusted path cannot be trusted, or null: anything but a directory, an owner outside `owners`,
 * or group/other write permission. A sticky directory owned by root (/tmp) is accepted: there only an entry's owner
 * (or root) may rename or remove it, so the next component, whose owner is checked in turn, cannot be replaced.
 */
export function dirTrustProblem(st: fs.Stats, owners: readonly number[]): string | null {
  if (!st.isDirectory()) return 'is not a directory';
  if (!owners.includes(st.uid)) return `is owned by uid ${st.uid}, not ${[...new Set(owners)].join(' or ')}`;
  if (st.mode & 0o022 && !(st.uid === 0 && st.mode & 0o1000))
    return `is writable by ${st.mode & 0o002 ? 'everyone' : 'its group'} (mode ${(st.mode & 0o7777).toString(8)})`;
  return null;
}

/**
 * Reads the file at `path` (absolute, canonical) so that nobody outside `dirOwners` can have chosen what is read, even
 * while the path is being walked: from `/`, each directory is opened O_DIRECTORY|O_NOFOLLOW relative to the one
 * before (by its descriptor, through /proc/self/fd, as openat would) and checked on that descriptor (dirTrustProblem);
 * the file is opened below the last one with O_NOFOLLOW, and must be regular, owned by `fileOwner`, have exactly one
 * link (a hard link to it would be a file of someone else's choosing) and be within `limit`. A symlink anywhere is
 * refused (E_SYMLINK), an untrusted directory too (E_UNSAFE_DIR); a missing component gives null.
 */
export function readTrusted(path: string, opts: TrustedReadOptions): BoundedRead | null {
  const what = opts.what ?? 'file';
  const parts = path.split('/').slice(1);
  if (!path.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..') || parts.length > 256)
    throw new IoError(`${what} path ${path.slice(0, 200)} is not canonical (refused)`, 'E_UNSAFE_DIR');
  const c = fs.constants;
  const dirFlags = c.O_RDONLY | c.O_DIRECTORY | c.O_NOFOLLOW | c.O_NONBLOCK;
  const name = parts.pop()!;
  let dir = '/';
  let fd = -1;
  try {
    fd = fs.openSync('/', dirFlags);
    for (let i = 0; ; i++) {
      const bad = dirTrustProblem(fs.fstatSync(fd), opts.dirOwners);
      if (bad) throw new IoError(`${what} ${path}: directory ${dir} ${bad} (refused)`, 'E_UNSAFE_DIR');
      if (i === parts.length) break;
      dir = '/' + parts.slice(0, i + 1).join('/');
      let next: number;
      try {
        next = fs.openSync(`/proc/self/fd/${fd}/${parts[i]}`, dirFlags);
      } catch (e) {
        const code = errCode(e);
        if (code === 'ENOENT') return null;
        if (code === 'ELOOP' || code === 'ENOTDIR')
          throw new IoError(`${what} ${path}: ${dir} is a symlink or not a directory (refused)`, 'E_SYMLINK', {
            cause: e,
          });
        throw new IoError(`cannot open directory ${dir} of ${what} ${path} (${code})`, 'E_IO', { cause: e });
      }
      fs.closeSync(fd);
      fd = next;
    }
    let r: BoundedRead;
    try {
      r = readBounded(`/proc/self/fd/${fd}/${name}`, { limit: opts.limit, noFollow: true, what });
    } catch (e) {
      const cause = (e as { cause?: unknown }).cause;
      if (cause && errCode(cause) === 'ENOENT') return null;
      throw new IoError((e as Error).message.replace(`/proc/self/fd/${fd}/${name}`, path), (e as IoError).code, {
        cause: e,
      });
    }
    if (r.stat.uid !== opts.fileOwner)
      throw new IoError(`${what} ${path} is owned by uid ${r.stat.uid}, not ${opts.fileOwner} (refused)`, 'E_OWNER');
    if (r.stat.nlink !== 1) throw new IoError(`${what} ${path} has ${r.stat.nlink} hard links (refused)`, 'E_HARDLINK');
    return r;
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}
