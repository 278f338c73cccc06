// User and group names to ids from /etc/passwd and /etc/group, read directly (no NSS, no subprocess), cached per file.
import { statSync } from 'node:fs';
import { readBounded } from '../safefs';

/** passwd and group files synced from a directory can be large, but never this large. */
export const MAX_ACCOUNT_FILE_BYTES = 64 << 20;

/**
 * The text of a passwd-like file, or null when it is missing, unreadable, not a regular file (a FIFO must not hang
 * the daemon) or over MAX_ACCOUNT_FILE_BYTES: callers then treat every name as unknown.
 */
export function readAccountText(path: string): string | null {
  try {
    return readBounded(path, { limit: MAX_ACCOUNT_FILE_BYTES, what: 'account file' }).data.toString('latin1');
  } catch {
    return null;
  }
}

interface Cached {
  mtimeMs: number;
  ids: Map<string, number>;
}
const cache = new Map<string, Cached>();

/** Paths are settable so tests can point at fixture files. */
export const accountFiles = { passwd: '/etc/passwd', group: '/etc/group' };

function idsOf(path: string): Map<string, number> {
  let mtimeMs: number;
  try {
    mtimeMs = statSync(path).mtimeMs;
  } catch {
    return new Map();
  }
  const c = cache.get(path);
  if (c && c.mtimeMs === mtimeMs) return c.ids;
  const ids = new Map<string, number>();
  for (const line of (readAccountText(path) ?? '').split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const parts = line.split(':');
    if (parts.length < 3 || !/^\d+$/.test(parts[2]!)) continue;
    // getpwnam returns the first matching entry.
    if (!ids.has(parts[0]!)) ids.set(parts[0]!, Number(parts[2]));
  }
  cache.set(path, { mtimeMs, ids });
  return ids;
}

export function userId(name: string): number | undefined {
  return idsOf(accountFiles.passwd).get(name);
}

export function groupId(name: string): number | undefined {
  return idsOf(accountFiles.group).get(name);
}

/** A user's uid and primary gid (getpwnam's pw_uid and pw_gid), by name or numeric uid; undefined when unknown. */
export function userIds(nameOrUid: string): { uid: number; gid: number } | undefined {
  const text = readAccountText(accountFiles.passwd);
  if (text === null) return undefined;
  const numeric = /^\d+$/.test(nameOrUid);
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) continue;
    if (numeric ? f[2] === String(Number(nameOrUid)) : f[0] === nameOrUid)
      return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}
