// Route contid selectors and cgroup-path globs: parsing to a compiled form, and the matchers the router calls per
// event.
import { AUDIT_CID_UNSET } from '../kernel/constants';
import type { CgroupMapEntry, ContidPattern } from './schema';

/** The largest settable contid: (u64)-1 is the kernel's "unset" and can never be assigned. */
export const CONTID_MAX = AUDIT_CID_UNSET - 1n;

const NUM = '(?:0[xX][0-9a-fA-F]+|[0-9]+)';
const SELECTOR_RE = new RegExp(`^(${NUM})(?:\\s*-\\s*(${NUM}))?(\\^\\*)?$`);

/** Parses one id (decimal or 0x hex) exactly; returns an error reason instead of throwing. */
export function parseContidValue(text: string): bigint | string {
  const t = text.trim();
  if (/^-/.test(t)) return `contids are unsigned, got ${t}; write "unset" for processes without a contid`;
  if (!new RegExp(`^${NUM}$`).test(t)) return `"${t}" is not a contid (decimal or 0x hex)`;
  // Length guard before BigInt so a megabyte of digits costs nothing.
  if (t.length > 40) return `contid ${t.slice(0, 24)}... is above the u64 range`;
  const v = BigInt(t);
  if (v === AUDIT_CID_UNSET) return `${t} is the kernel's "unset" value; write "unset" instead`;
  if (v > AUDIT_CID_UNSET) return `contid ${t} is above the u64 range (max ${CONTID_MAX})`;
  return v;
}

/**
 * Parses a route selector: `100`, `0x64`, `100-199` (inclusive), `unset`, or any id/range followed by `^*`, meaning
 * "this container and every container nested in it" (records write nesting as `child,^parent`).
 */
export function parseContidSelector(text: string): ContidPattern | string {
  const t = text.trim();
  if (t.toLowerCase() === 'unset')
    return { kind: 'unset', lo: AUDIT_CID_UNSET, hi: AUDIT_CID_UNSET, nested: false, text: t };
  if (/^unset\s*\^\*$/i.test(t)) return '"unset" cannot have nested containers; drop the "^*"';
  if (t.length > 100) return `"${t.slice(0, 24)}..." is not a contid selector`;
  const m = SELECTOR_RE.exec(t);
  if (!m || m[1] === undefined) {
    if (/^-/.test(t)) return `contids are unsigned, got ${t}; write "unset" for processes without a contid`;
    return `"${t}" is not a contid selector (N, 0xN, LO-HI, unset, optionally followed by ^* for nested containers)`;
  }
  const lo = parseContidValue(m[1]);
  if (typeof lo === 'string') return lo;
  let hi = lo;
  if (m[2] !== undefined) {
    const h = parseContidValue(m[2]);
    if (typeof h === 'string') return h;
    if (h < lo) return `range ${t} is empty: ${m[2]} is below ${m[1]}`;
    hi = h;
  }
  return { kind: 'range', lo, hi, nested: m[3] !== undefined, text: t };
}

/**
 * Does a selector match an event's contid chain? `chain` is [own, parent, grandparent, ...] as decoded from
 * `contid=4,^2,^1`; an empty chain (or null) is a process without a contid.
 */
export function contidPatternMatches(p: ContidPattern, chain: readonly bigint[] | null): boolean {
  if (!chain || chain.length === 0 || chain[0] === AUDIT_CID_UNSET) return p.kind === 'unset';
  if (p.kind === 'unset') return false;
  const n = p.nested ? chain.length : 1;
  for (let i = 0; i < n; i++) {
    const id = chain[i] as bigint;
    if (id >= p.lo && id <= p.hi) return true;
  }
  return false;
}

export function contidSelectorsMatch(ps: readonly ContidPattern[], chain: readonly bigint[] | null): boolean {
  for (const p of ps) if (contidPatternMatches(p, chain)) return true;
  return false;
}

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

/** `*`/`?` match of one component; O(len(p)·len(s)) worst case via the single-backtrack-point method. */
function segmentMatch(p: string, s: string): boolean {
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
    return last !== undefined && segmentMatch(g.segments[0] as string, last);
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
    else r = j < S && segmentMatch(g.segments[i] as string, parts[j] as string) && rec(i + 1, j + 1);
    memo[k] = r ? 2 : 1;
    return r;
  };
  return rec(0, 0);
}

/** First cgroup_map entry matching the path wins; undefined when none does. */
export function contidForCgroup(map: readonly CgroupMapEntry[], cgroupPath: string): bigint | undefined {
  for (const e of map) if (cgroupGlobMatches(e, cgroupPath)) return e.contid;
  return undefined;
}
