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

/**
 * What identifies one version of a file: mtime, size, inode and device (an editor's rename gives a new inode whatever
 * the mtime), or null when it cannot be stat'd.
 */
function fileStamp(path: string): string | null {
  try {
    const st = statSync(path);
    return `${st.mtimeMs}:${st.size}:${st.ino}:${st.dev}`;
  } catch {
    return null;
  }
}

const cache = new Map<string, { stamp: string; table: AccountTable | null }>();

/** readAccounts(), read again only when the file changed (fileStamp): for lookups repeated per rule or per record. */
export function cachedAccounts(path: string, kind: 'passwd' | 'group'): AccountTable | null {
  const stamp = fileStamp(path);
  if (stamp === null) return null;
  const c = cache.get(`${kind}:${path}`);
  if (c && c.stamp === stamp) return c.table;
  const table = readAccounts(path, kind);
  cache.set(`${kind}:${path}`, { stamp, table });
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

/** How often, at most, IdNameCache.refresh() looks whether passwd or group changed. */
export const ACCOUNTS_RECHECK_MS = 1000;

/**
 * Seconds counted by one unref'd interval, made when this module loads: a clock a formatter can read per record for
 * nothing (performance.now() cost 0.2 µs on a VM without a vDSO clock, 7% of formatting an ENRICHED record).
 */
let coarseSeconds = 0;
setInterval(() => coarseSeconds++, 1000).unref();
const coarseNow = (): number => coarseSeconds * 1000;

export interface IdNameCacheOptions {
  /** A monotonic clock in ms (a 1 s tick by default): refresh() stats the files once per ACCOUNTS_RECHECK_MS. */
  now?: () => number;
}

/**
 * uid/gid -> name for the interpreters, read on first use, again on reload() (after a SIGHUP) and, through refresh(),
 * when passwd or group changed: a user added after the start (useradd bob) is named in its events within a second, as
 * auparse, which asks getpwuid() on every miss, names it.
 */
export class IdNameCache {
  private users: AccountTable | null = null;
  private groups: AccountTable | null = null;
  private loaded = false;
  private passwdStamp: string | null = null;
  private groupStamp: string | null = null;
  private checkedAt = 0;
  private readonly now: () => number;
  /** Bumped by every reload: formatters drop the interpreted fields they cached from older names. */
  generation = 0;
  constructor(
    private readonly passwdPath = '/etc/passwd',
    private readonly groupPath = '/etc/group',
    opts: IdNameCacheOptions = {},
  ) {
    this.now = opts.now ?? coarseNow;
  }

  reload(): void {
    // Stat'd before the read: a change during the read is seen at the next check and read again.
    this.passwdStamp = fileStamp(this.passwdPath);
    this.groupStamp = fileStamp(this.groupPath);
    this.checkedAt = this.now();
    // An unreadable database means names print as unknown(N), as auparse does.
    this.users = readAccounts(this.passwdPath, 'passwd');
    this.groups = readAccounts(this.groupPath, 'group');
    this.loaded = true;
    this.generation++;
  }

  /**
   * Reads the files again when either changed since they were read (mtime, size, inode), looking at most once per
   * ACCOUNTS_RECHECK_MS: a read of a counter per call, two stats a second at most. Formatters call it per record, so
   * that a name cached in their own tables (unknown(1001) before useradd) is dropped with the new generation.
   */
  refresh(): void {
    if (!this.loaded) return; // nothing read yet: the first lookup reads
    const now = this.now();
    if (now - this.checkedAt < ACCOUNTS_RECHECK_MS && now >= this.checkedAt) return;
    this.checkedAt = now;
    if (fileStamp(this.passwdPath) !== this.passwdStamp || fileStamp(this.groupPath) !== this.groupStamp) this.reload();
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

let system: IdNameCache | null = null;

/** The names of /etc/passwd and /etc/group, one table for the whole process (made on first use). */
export function systemAccounts(): IdNameCache {
  system ??= new IdNameCache();
  return system;
}
