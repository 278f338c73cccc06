// cgroup_map globs: a cgroup path glob compiled without RegExp, matched against paths a container may name itself.

/** Limits that keep glob matching cheap even against cgroup names chosen by a container with a delegated subtree. */
export const CGROUP_PATTERN_MAX = 512;
const CGROUP_WILDCARDS_MAX = 16;

export interface CompiledGlob {
  segments: string[];
  basename: boolean;
}

/**
 * Compiles a cgroup glob. `*` matches within one path component, `?` one character, `**` (a whole component) any
 * number of components. A pattern without `/` matches the last component; one with `/` must be absolute and matches the
 * whole cgroup path. Deliberately no RegExp: a backtracking regex over attacker-named cgroups is a ReDoS.
 */
export function compileCgroupGlob(pattern: string): CompiledGlob | string {
  if (pattern.length === 0) return 'pattern is empty';
  if (pattern.length > CGROUP_PATTERN_MAX) return `pattern is longer than ${CGROUP_PATTERN_MAX} characters`;

  if (/[\x00-\x1f\x7f]/.test(pattern)) return 'pattern contains control characters';
  const wild = (pattern.match(/[*?]/g) ?? []).length;
  if (wild > CGROUP_WILDCARDS_MAX) return `pattern has more than ${CGROUP_WILDCARDS_MAX} wildcards`;
  if (!pattern.includes('/')) {
    if (pattern.includes('**')) return '"**" only makes sense in a full path pattern (one starting with /)';
    return { segments: [pattern], basename: true };
  }
  if (!pattern.startsWith('/')) return 'a pattern with "/" must be an absolute cgroup path (start with /)';
  const segments = pattern.split('/').filter((s) => s !== '');
  if (segments.length === 0) return 'pattern "/" matches only the root cgroup; name a component';
  for (const s of segments) if (s.includes('**') && s !== '**') return '"**" must be a whole path component (/**/)';
  return { segments, basename: false };
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

export function cgroupGlobMatches(g: CompiledGlob, cgroupPath: string): boolean {
  const parts = cgroupPath.split('/').filter((s) => s !== '');
  if (g.basename) {
    const last = parts[parts.length - 1];
    return last !== undefined && globMatch(g.segments[0] as string, last);
  }
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

/** First cgroup_map entry matching the path wins; undefined when none does. */
export function contidForCgroup(map: readonly CgroupGlobEntry[], cgroupPath: string): bigint | undefined {
  for (const e of map) if (cgroupGlobMatches(e, cgroupPath)) return e.contid;
  return undefined;
}
