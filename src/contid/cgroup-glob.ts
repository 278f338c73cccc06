// cgroup_map globs: a cgroup path glob compiled without RegExp, matched against paths a container may name itself.

/** Limits that keep glob matching cheap even against cgroup names chosen by a container with a delegated subtree. */
export const CGROUP_PATTERN_MAX = 512;
const CGROUP_WILDCARDS_MAX = 16;

export interface CompiledGlob {
  /** Path components from the root (`**` = any number of components); the first is a literal name. */
  segments: string[];
}

/** Does a path component of a pattern hold a wildcard? */
function wild(segment: string): boolean {
  return segment.includes('*') || segment.includes('?');
}

/**
 * Compiles a cgroup glob. `*` matches within one path component, `?` one character, `**` (a whole component) any
 * number of components. A pattern is an absolute cgroup path whose first component is a literal name: only root makes
 * top-level cgroups, while a user's systemd (`systemd-run --user --scope --unit=docker-x` makes
 * `…/user@1000.service/app.slice/docker-x.scope`) and a container with a delegated subtree name cgroups below theirs
 * as they like, and a pattern free to match there (a bare last-component name, `/**` or `/*` at the top) gave their
 * processes a tenant's contid. Deliberately no RegExp: a backtracking regex over attacker-named cgroups is a ReDoS.
 */
export function compileCgroupGlob(pattern: string): CompiledGlob | string {
  if (pattern.length === 0) return 'pattern is empty';
  if (pattern.length > CGROUP_PATTERN_MAX) return `pattern is longer than ${CGROUP_PATTERN_MAX} characters`;

  if (/[\x00-\x1f\x7f]/.test(pattern)) return 'pattern contains control characters';
  const n = (pattern.match(/[*?]/g) ?? []).length;
  if (n > CGROUP_WILDCARDS_MAX) return `pattern has more than ${CGROUP_WILDCARDS_MAX} wildcards`;
  if (!pattern.startsWith('/'))
    return (
      'a pattern must be an absolute cgroup path (start with /): a bare name would match cgroups that users and ' +
      'delegated subtrees create anywhere'
    );
  const segments = pattern.split('/').filter((s) => s !== '');
  if (segments.length === 0) return 'pattern "/" matches only the root cgroup; name a component';
  for (const s of segments) if (s.includes('**') && s !== '**') return '"**" must be a whole path component (/**/)';
  if (wild(segments[0]!))
    return (
      `the first component ("/${segments[0]}") must be a literal name, without * ? or **: only root makes ` +
      'top-level cgroups, and a wildcard there reaches the cgroups users and delegated subtrees create'
    );
  return { segments };
}

/**
 * `*`/`?` match of one string (a cgroup path component, a container name); O(len(p)·len(s)) worst case via the
 * single-backtrack-point method.
 */
export function globMatch(p: string, s: string): boolean {
  let pi = 0;
  let si = 0;
  let star = -1;
  let mark = 0;
  while (si < s.length) {
    const pc = p[pi];
    if (pc === '?' || (pc !== undefined && pc !== '*' && pc === s[si])) {
      pi++;
      si++;
    } else if (pc === '*') {
      star = pi++;
      mark = si;
    } else if (star >= 0) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (p[pi] === '*') pi++;
  return pi === p.length;
}

/** A cgroup path's components; the kernel writes canonical paths, so empty ones (`//`, a trailing `/`) are dropped. */
function components(cgroupPath: string): string[] {
  return cgroupPath.split('/').filter((s) => s !== '');
}

/** What compileCgroupGlob accepts; an entry built by hand that is not is matched against nothing. */
function anchored(g: CompiledGlob): boolean {
  return g.segments.length > 0 && !wild(g.segments[0]!);
}

/**
 * The number of leading components of `parts` forming the shortest prefix the glob matches whole, or -1 (none, or none
 * shorter than `below`). One pass over the path with the set of pattern positions reachable so far (an NFA without
 * backtracking): O(P·S) component matches, and a pattern without `**` stops after its own length.
 */
function shortestPrefix(g: CompiledGlob, parts: readonly string[], below = Infinity): number {
  if (!anchored(g)) return -1;
  const seg = g.segments;
  const P = seg.length;
  // cur[i]: pattern position i reachable after the components consumed so far; a `**` may also match none.
  let cur = new Uint8Array(P + 1);
  let next = new Uint8Array(P + 1);
  const close = (set: Uint8Array): void => {
    for (let i = 0; i < P; i++) if (set[i] && seg[i] === '**') set[i + 1] = 1;
  };
  cur[0] = 1;
  close(cur);
  for (let j = 0; j < parts.length && j + 1 < below; j++) {
    next.fill(0);
    let any = false;
    for (let i = 0; i < P; i++) {
      if (!cur[i]) continue;
      if (seg[i] === '**') next[i] = 1;
      else if (globMatch(seg[i]!, parts[j]!)) next[i + 1] = 1;
      else continue;
      any = true;
    }
    if (!any) return -1;
    close(next);
    if (next[P]) return j + 1;
    [cur, next] = [next, cur];
  }
  return -1;
}

/** Does the glob match the whole cgroup path? */
export function cgroupGlobMatches(g: CompiledGlob, cgroupPath: string): boolean {
  if (!anchored(g)) return false;
  const parts = components(cgroupPath);
  const P = g.segments.length;
  const S = parts.length;
  // memo[(i*(S+1))+j]: 0 unknown, 1 false, 2 true; bounds the `**` search to O(P·S) component matches.
  const memo = new Uint8Array((P + 1) * (S + 1));
  const rec = (i: number, j: number): boolean => {
    const k = i * (S + 1) + j;
    if (memo[k]) return memo[k] === 2;
    let r: boolean;
    if (i === P) r = j === S;
    else if (g.segments[i] === '**') r = rec(i + 1, j) || (j < S && rec(i, j + 1));
    else r = j < S && globMatch(g.segments[i] as string, parts[j] as string) && rec(i + 1, j + 1);
    memo[k] = r ? 2 : 1;
    return r;
  };
  return rec(0, 0);
}

/** A compiled glob and the contid it gives (config's CgroupMapEntry is one, with its source position). */
export interface CgroupGlobEntry extends CompiledGlob {
  contid: bigint;
}

/**
 * The contid of the OUTERMOST prefix of the cgroup path that some entry matches (prefixes tried from the root down;
 * among entries matching that prefix, the first in the map); undefined when none does. Outermost, as container
 * discovery's patterns: a cgroup made below a mapped one (a delegated subtree's `docker-<another id>.scope`, any name
 * at all) keeps the mapped one's contid, so nesting never changes the answer.
 */
export function contidForCgroup(map: readonly CgroupGlobEntry[], cgroupPath: string): bigint | undefined {
  if (map.length === 0) return undefined;
  const parts = components(cgroupPath);
  let best: bigint | undefined;
  let bestLen = Infinity;
  for (const e of map) {
    // Only a strictly shorter prefix displaces an earlier entry's: at equal length the first entry wins.
    const n = shortestPrefix(e, parts, bestLen);
    if (n >= 0) {
      best = e.contid;
      bestLen = n;
    }
  }
  return best;
}
