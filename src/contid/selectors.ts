// Route contid selectors (`100`, `0x64`, `100-199`, `unset`, `N^*`): parsing to a compiled form, and the matcher the
// router calls per event.
import { AUDIT_CID_UNSET } from '../kernel/constants';

/**
 * One contid selector, compiled. Ids are matched as the inclusive range [lo, hi]; `nested` also matches any event whose
 * contid chain (`4,^2,^1` in records) has an ancestor in the range. `unset` is lo = hi = AUDIT_CID_UNSET.
 */
export interface ContidPattern {
  kind: 'range' | 'unset';
  lo: bigint;
  hi: bigint;
  nested: boolean;
  /** The selector as written, for messages. */
  text: string;
}

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
