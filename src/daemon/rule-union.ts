// The kernel's single rule list, shared: host rules plus every auxiliary daemon's, merged and tagged with owners.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { RuleError } from '../errors';
import { AUDIT_FILTER_PREPEND, AUDIT_MAX_KEY_LEN, Field, FilterList, Op, RuleAction } from '../kernel/constants';
import { keyBytes } from '../records/fields';
import { encodeRule, type Rule, type RuleCommand } from '../rules';
import { GROUP_TAG_PREFIX, OWNER_TAG_PREFIX, type KeyGroup } from '../routing/pipeline';

/** Commands that change host-wide state: the kernel has one copy of each, so only the host daemon may issue them. */
const HOST_WIDE: Partial<Record<RuleCommand['kind'], string>> = {
  deleteAll: '-D (delete all rules)',
  delete: '-d (delete a rule)',
  enabled: '-e (enable/disable auditing)',
  failure: '-f (failure mode)',
  rateLimit: '-r (rate limit)',
  backlogLimit: '-b (backlog limit)',
  backlogWaitTime: '--backlog_wait_time',
  resetLost: '--reset-lost',
  loginuidImmutable: '--loginuid-immutable',
};

/**
 * Rules one auxiliary daemon may load (a tenant's file of 65,536 lines, times 16 contids on a patched kernel, would
 * be a million rules the kernel walks on every syscall and the host compares at every sync).
 */
export const MAX_AUX_RULES = 4096;
/** Keys auditmux itself puts in the kernel: owner tags and the tracking key. */
const RESERVED_KEY_PREFIX = 'auditmux-';

/** Lists whose rules act on every event of the host, whoever routes it: an auxiliary daemon may not add to them. */
const GLOBAL_LISTS = new Set<number>([FilterList.user, FilterList.exclude, FilterList.task]);

/**
 * Checks an auxiliary daemon's rule commands: host-wide settings, rule deletion, `never` rules and the global lists
 * are refused with the file:line of the first offending line. Returns the rules it may add.
 */
export function auxRules(daemon: string, commands: readonly RuleCommand[]): Rule[] {
  const rules: Rule[] = [];
  for (const c of commands) {
    const what = HOST_WIDE[c.kind];
    if (what)
      throw new RuleError(
        `auxiliary daemon "${daemon}" may not change host-wide audit settings: ${what} is refused`,
        c.pos,
        'E_HOST_WIDE',
      );
    if (c.kind === 'invalid') throw c.error;
    if (c.kind !== 'add') continue;
    const list = c.rule.flags & ~AUDIT_FILTER_PREPEND;
    if (c.rule.flags & AUDIT_FILTER_PREPEND)
      // The exit list is first-match, and only the first matching rule's key reaches the event: at the head, a
      // tenant's broad rule would take every event's keys from the host's rules and the other daemons' tags.
      throw new RuleError(
        `auxiliary daemon "${daemon}" may not prepend rules (-A): its rule would come before the host's and the other daemons'`,
        c.pos,
        'E_HOST_WIDE',
      );
    for (const k of c.rule.keys)
      if (k.startsWith(RESERVED_KEY_PREFIX) || k.includes('\x01'))
        // An owner tag (`auditmux-aux:other`) would send this rule's events to another daemon.
        throw new RuleError(
          `auxiliary daemon "${daemon}" may not use the key ${JSON.stringify(k.slice(0, 64))}: keys starting with "${RESERVED_KEY_PREFIX}" or holding \\x01 are auditmux's`,
          c.pos,
          'E_HOST_WIDE',
        );
    const tagged = [...c.rule.keys, OWNER_TAG_PREFIX + daemon].join('\x01');
    if (Buffer.byteLength(tagged) > AUDIT_MAX_KEY_LEN)
      throw new RuleError(
        `the rule's keys exceed the kernel's ${AUDIT_MAX_KEY_LEN} bytes once tagged with "${OWNER_TAG_PREFIX}${daemon}"`,
        c.pos,
        'E_KEY_TOO_LONG',
      );
    if (rules.length >= MAX_AUX_RULES)
      throw new RuleError(
        `auxiliary daemon "${daemon}" may load at most ${MAX_AUX_RULES} rules`,
        c.pos,
        'E_TOO_MANY_RULES',
      );
    if (c.rule.action !== RuleAction.always) {
      throw new RuleError(
        `auxiliary daemon "${daemon}" may not add "never" rules: they would hide events from every daemon`,
        c.pos,
        'E_HOST_WIDE',
      );
    }
    if (GLOBAL_LISTS.has(list)) {
      throw new RuleError(
        `auxiliary daemon "${daemon}" may not add rules to the ${list === FilterList.exclude ? 'exclude' : list === FilterList.user ? 'user' : 'task'} list: it filters every daemon's events`,
        c.pos,
        'E_HOST_WIDE',
      );
    }
    rules.push(c.rule);
  }
  return rules;
}

export interface Owned {
  /** 'host' or an auxiliary daemon's name. */
  owner: string;
  rule: Rule;
}

export interface KernelRuleSet {
  rules: Rule[];
  /**
   * For a kernel rule's full key list (joined by \x01), each owner's own keys: what each destination's log shows.
   * Keys here and in `groups` are in the form records carry them (keyBytes(): UTF-8 bytes, one char per byte), so
   * that the keys decodeKeys() reads from an event find them; `rules` keep the rules files' text.
   */
  keysByOwner: Map<string, Map<string, string[]>>;
  /** For a group tag (a shared rule whose keys and tags do not fit the kernel's key), its owners and keys. */
  groups: Map<string, KeyGroup>;
}

/** The rule with its key replaced: the kernel reads keys from the FILTERKEY field, `keys` only mirrors it. */
export function withKeys(rule: Rule, keys: readonly string[]): Rule {
  const fields = rule.fields.filter((f) => f.field !== Field.key);
  if (keys.length) {
    const str = keys.join('\x01');
    fields.push({ field: Field.key, op: Op.EQUAL, value: Buffer.byteLength(str), str });
  }
  return { ...rule, fields, keys: [...keys] };
}

/** Each owner's keys in the form records carry them (keyBytes()). */
function asRecorded(owners: ReadonlyMap<string, readonly string[]>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [owner, keys] of owners) out.set(owner, keys.map(keyBytes));
  return out;
}

function canonical(rule: Rule): string {
  return encodeRule(withKeys(rule, [])).toString('hex');
}

/**
 * Merges owned rules into the kernel list: identical rules (but for keys) become one kernel rule carrying every
 * owner's keys plus `auditmux-aux:NAME` for each auxiliary owner, or, when those do not fit, one group tag (see
 * `groups`). Order: first appearance (host rules come first).
 */
export function mergeRules(owned: readonly Owned[]): KernelRuleSet {
  const byRule = new Map<string, { rule: Rule; owners: Map<string, string[]> }>();
  for (const { owner, rule } of owned) {
    const canon = canonical(rule);
    let g = byRule.get(canon);
    if (!g) {
      g = { rule, owners: new Map() };
      byRule.set(canon, g);
    }
    const mine = g.owners.get(owner) ?? [];
    for (const key of rule.keys) if (!mine.includes(key)) mine.push(key);
    g.owners.set(owner, mine);
  }
  const rules: Rule[] = [];
  const keysByOwner = new Map<string, Map<string, string[]>>();
  const groups = new Map<string, KeyGroup>();
  for (const [canon, g] of byRule) {
    const keys: string[] = [];
    for (const [owner, ks] of g.owners) {
      for (const key of ks) if (!keys.includes(key)) keys.push(key);
      if (owner !== 'host') keys.push(OWNER_TAG_PREFIX + owner);
    }
    let joined = keys.join('\x01');
    if (Buffer.byteLength(joined) > AUDIT_MAX_KEY_LEN) {
      // Every owner's keys and tags do not fit the kernel's 256 bytes (twenty tenants loading the host's execve
      // rule; two identical host rules with long keys): the kernel rule carries one tag naming the group instead,
      // and routing reads its owners and keys from `groups`. Named by its contents, so a change of owners or keys
      // is a new kernel key (no event is read with another group's owners).
      const owners = [...g.owners.keys()].filter((o) => o !== 'host');
      const userKeys = keys.filter((key) => !key.startsWith(OWNER_TAG_PREFIX));
      // 128 bits of SHA-256: no tenant can search out a collision with another group; one found anyway (two
      // different groups, one tag) takes the next counter rather than the other group's owners.
      for (let n = 0; ; n++) {
        const id = createHash('sha256')
          .update(canon)
          .update(JSON.stringify([...g.owners]))
          .update(n ? `#${n}` : '')
          .digest('hex')
          .slice(0, 32);
        joined = GROUP_TAG_PREFIX + id;
        if (!groups.has(joined)) break;
      }
      keys.length = 0;
      keys.push(joined);
      groups.set(joined, { owners, keys: userKeys.map(keyBytes), byOwner: asRecorded(g.owners) });
    }
    rules.push(withKeys(g.rule, keys));
    keysByOwner.set(keyBytes(joined), asRecorded(g.owners));
  }
  return { rules, keysByOwner, groups };
}
