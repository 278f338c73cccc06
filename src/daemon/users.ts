// Resolves a daemon's `user:` and a log's `log_group:` to ids through vocab/accounts' one passwd and group reader.
import { ConfigError, type SourcePos } from '../errors';
import { cachedAccounts, findUser } from '../vocab/accounts';

export interface UserIds {
  uid: number;
  gid: number;
  home: string;
}

/**
 * By name, or by a uid that passwd lists (its primary gid and home come from there). A uid passwd does not list is
 * an error, not gid = uid: a guessed gid could be an unrelated group (42 is `shadow` on Debian). passwd is read once
 * and again only when it changed (cachedAccounts): every auxiliary daemon's start and restart read and parsed the
 * whole file (up to 64 MiB) on the host's loop.
 */
export function lookupUser(name: string, pos: SourcePos, etc = '/etc'): UserIds {
  const a = findUser(name, cachedAccounts(`${etc}/passwd`, 'passwd'));
  if (a === undefined) throw new ConfigError(pos, `unknown user "${name}"`);
  return { uid: a.id, gid: a.gid!, home: a.home || '/' };
}

/** By name, or any decimal gid (a group id needs no entry: nothing else is derived from it). */
export function lookupGroup(name: string, pos: SourcePos, etc = '/etc'): number {
  if (/^\d+$/.test(name)) return Number(name);
  const a = cachedAccounts(`${etc}/group`, 'group')?.named(name);
  if (a === undefined) throw new ConfigError(pos, `unknown group "${name}"`);
  return a.id;
}
