// User and group names to ids for auditctl's -F uid=NAME / gid=NAME and for plugin users, through vocab/accounts'
// one reader of passwd and group (bounded, cached by mtime).
import { cachedAccounts, findUser } from '../vocab/accounts';

/** Paths are settable so tests can point at fixture files. */
export const accountFiles = { passwd: '/etc/passwd', group: '/etc/group' };

export function userId(name: string): number | undefined {
  return cachedAccounts(accountFiles.passwd, 'passwd')?.named(name)?.id;
}

export function groupId(name: string): number | undefined {
  return cachedAccounts(accountFiles.group, 'group')?.named(name)?.id;
}

/**
 * A user's uid and primary gid (getpwnam's pw_uid and pw_gid), by name or by a uid passwd lists; undefined when
 * unknown (see findUser).
 */
export function userIds(nameOrUid: string): { uid: number; gid: number } | undefined {
  const a = findUser(nameOrUid, cachedAccounts(accountFiles.passwd, 'passwd'));
  return a === undefined ? undefined : { uid: a.id, gid: a.gid! };
}
