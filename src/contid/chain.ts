// Contid chains (`4,^2,^1`: own id, then the ids it is nested in) as records write them: parse and format.
import { AUDIT_CID_UNSET } from '../kernel/constants';

/** A contid chain: own id first, then the ids it is nested in ([4, 2, 1] is written `4,^2,^1`). */
export type Chain = readonly bigint[];

export function formatChain(chain: Chain): string {
  return chain.map((id, i) => (i === 0 ? '' : '^') + (id === AUDIT_CID_UNSET ? '-1' : id.toString())).join(',');
}

/** One id of a chain as records write it: `-1` (unset) or decimal, never above 2^64-1. */
function chainId(p: string): bigint | string {
  if (p === '-1') return AUDIT_CID_UNSET;
  if (!/^[0-9]{1,20}$/.test(p))
    return `"${p.length > 24 ? `${p.slice(0, 24)}...` : p}" is not a contid (decimal or -1)`;
  const v = BigInt(p);
  return v > AUDIT_CID_UNSET ? `contid ${p} is above 2^64-1` : v;
}

/** Parses `4,^2,^1` (one task chain); returns null when malformed. */
export function parseChain(text: string): bigint[] | null {
  const r = parseChainsAt(text);
  return 'chains' in r && r.chains.length === 1 ? (r.chains[0] as bigint[]) : null;
}

/**
 * Parses a CONTAINER_ID record's list: task chains, or several chains for a network namespace (`2,^1,3,^1`). On bad
 * input, says why and where (0-based character offset of the bad item).
 */
export function parseChainsAt(text: string): { chains: bigint[][] } | { offset: number; reason: string } {
  const chains: bigint[][] = [];
  let offset = 0;
  for (const part of text.split(',')) {
    const nested = part[0] === '^';
    const last = chains[chains.length - 1];
    if (nested && !last) return { offset, reason: '"^" (nested in) needs a contid before it' };
    const v = chainId(nested ? part.slice(1) : part);
    if (typeof v === 'string') return { offset: nested ? offset + 1 : offset, reason: v };
    if (nested) (last as bigint[]).push(v);
    else chains.push([v]);
    offset += part.length + 1;
  }
  return chains.length ? { chains } : { offset: 0, reason: 'empty contid list' };
}

/** parseChainsAt without the reason: null when malformed (records that cannot be parsed are not routed by contid). */
export function parseChains(text: string): bigint[][] | null {
  const r = parseChainsAt(text);
  return 'chains' in r ? r.chains : null;
}
