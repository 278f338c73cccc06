// passwd and group files, read bounded and parsed in one place: names to ids for rules, search, plugins and daemons,
// ids to names for the interpreters (no NSS, no subprocess).
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

/** One line of passwd (`name:pw:uid:gid:gecos:home:shell`) or group (`name:pw:gid:members`). */
export interface Account {
  name: string;
  /** uid in passwd, gid in group. */
  id: number;
  /** passwd only: the primary gid. */
  gid: number | undefined;
  /** passwd only. */
  home: string | undefined;
}

const DECIMAL = /^[0-9]{1,10}$/;
/** The highest id an account can have: ids are 32 bits, and 4294967295 is (uid_t)-1, "no change" to setuid. */
export const MAX_ACCOUNT_ID = 0xfffffffe;

/** A decimal id that fits: 4294967296 would wrap to 0 in a rule (uid=0) and 4294967295 means no id at all. */
const isId = (s: string): boolean => DECIMAL.test(s) && Number(s) <= MAX_ACCOUNT_ID;

/**
 * The entries of a passwd or group file in file order. Blank, comment and NIS compat (`+`, `-`) lines are skipped, and
 * so is a line whose id (or, in passwd, gid) is not a decimal number of 32 bits: getpwnam would not return it either.
 */
export function parseAccounts(text: string, kind: 'passwd' | 'group'): Account[] {
  const out: Account[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line[0] === '#' || line[0] === '+' || line[0] === '-') continue;
    const f = line.split(':');
    if (f.length < (kind === 'passwd' ? 4 : 3) || f[0] === '' || !isId(f[2]!)) continue;
    if (kind === 'passwd' && !isId(f[3]!)) continue;
    out.push({
      name: f[0]!,
      id: Number(f[2]),
      gid: kind === 'passwd' ? Number(f[3]) : undefined,
      home: kind === 'passwd' ? f[5] : undefined,
    });
  }
  return out;
}

/** An account file's entries by name and by id; the first entry wins both ways, as getpwnam and getpwuid. */
export class AccountTable {
  private readonly byName = new Map<string, Account>();
  private readonly byId = new Map<number, Account>();
  constructor(readonly entries: readonly Account[]) {
    for (const a of entries) {
      if (!this.byName.has(a.name)) this.byName.set(a.name, a);
      if (!this.byId.has(a.id)) this.byId.set(a.id, a);
    }
  }
  named(name: string): Account | undefined {
    return this.byName.get(name);
  }
  withId(id: number): Account | undefined {
    return this.byId.get(id);
  }
  /** Every name in the file (config checks). */
  names(): Set<string> {
    return new Set(this.byName.keys());
  }
}

/** The table of a passwd or group file read now; null when it cannot be read (see readAccountText). */
export function readAccounts(path: string, kind: 'passwd' | 'group'): AccountTable | null {
  const text = readAccountText(path);
  return text === null ? null : new AccountTable(parseAccounts(text, kind));
}

const cache = new Map<string, { mtimeMs: number; table: AccountTable | null }>();

/** readAccounts(), read again only when the file's mtime changed: for lookups repeated per rule or per record. */
export function cachedAccounts(path: string, kind: 'passwd' | 'group'): AccountTable | null {
  let mtimeMs: number;
  try {
    mtimeMs = statSync(path).mtimeMs;
  } catch {
    return null;
  }
  const c = cache.get(`${kind}:${path}`);
  if (c && c.mtimeMs === mtimeMs) return c.table;
  const table = readAccounts(path, kind);
  cache.set(`${kind}:${path}`, { mtimeMs, table });
  return table;
}

/**
 * The account a `user:` setting names: by name first, else, for a decimal text, by uid. A uid that passwd does not
 * list is unknown (undefined): its primary gid cannot be known, and guessing gid = uid could hand a process an
 * unrelated group (gid 42 is `shadow` on Debian).
 */
export function findUser(nameOrUid: string, passwd: AccountTable | null): Account | undefined {
  if (passwd === null) return undefined;
  const byName = passwd.named(nameOrUid);
  if (byName !== undefined || !DECIMAL.test(nameOrUid)) return byName;
  return passwd.withId(Number(nameOrUid));
}

/** uid/gid -> name for the interpreters, read on first use and again on reload() (after a SIGHUP). */
export class IdNameCache {
  private users: AccountTable | null = null;
  private groups: AccountTable | null = null;
  private loaded = false;
  /** Bumped by every reload: formatters drop the interpreted fields they cached from older names. */
  generation = 0;
  constructor(
    private readonly passwdPath = '/etc/passwd',
    private readonly groupPath = '/etc/group',
  ) {}

  reload(): void {
    // An unreadable database means names print as unknown(N), as auparse does.
    this.users = readAccounts(this.passwdPath, 'passwd');
    this.groups = readAccounts(this.groupPath, 'group');
    this.loaded = true;
    this.generation++;
  }

  user(id: number): string | undefined {
    if (!this.loaded) this.reload();
    return this.users?.withId(id)?.name;
  }

  group(id: number): string | undefined {
    if (!this.loaded) this.reload();
    return this.groups?.withId(id)?.name;
  }
}
