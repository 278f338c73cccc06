// C library number parsing (strtoul/strtol with base 0, isdigit) as auditctl applies it to rule values.

const U64_MAX = (1n << 64n) - 1n;
const I64_MAX = (1n << 63n) - 1n;
const I64_MIN = -(1n << 63n);

export function isDigit(s: string, i = 0): boolean {
  const c = s.charCodeAt(i);
  return c >= 48 && c <= 57;
}

interface Scan {
  neg: boolean;
  mag: bigint;
  overflow: boolean;
}

/** The common part of strtoul/strtol: whitespace, sign, 0x/0 prefixes, as many digits as parse. */
function scan(s: string, base0: number): Scan {
  let i = 0;
  while (i < s.length && ' \t\n\v\f\r'.includes(s[i]!)) i++;
  let neg = false;
  if (s[i] === '+' || s[i] === '-') neg = s[i++] === '-';
  let base = base0;
  const hexPrefix = s[i] === '0' && (s[i + 1] === 'x' || s[i + 1] === 'X') && hexVal(s.charCodeAt(i + 2)) >= 0;
  if ((base === 0 || base === 16) && hexPrefix) {
    base = 16;
    i += 2;
  } else if (base === 0) base = s[i] === '0' ? 8 : 10;
  let mag = 0n;
  let overflow = false;
  const b = BigInt(base);
  for (; i < s.length; i++) {
    const d = hexVal(s.charCodeAt(i));
    if (d < 0 || d >= base) break;
    if (!overflow) {
      mag = mag * b + BigInt(d);
      if (mag > U64_MAX) overflow = true;
    }
  }
  return { neg, mag, overflow };
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** strtoul(s, NULL, base) on LP64: ULONG_MAX and erange on overflow; "-n" wraps modulo 2^64. */
export function strtoul(s: string, base = 0): { value: bigint; erange: boolean } {
  const r = scan(s, base);
  if (r.overflow) return { value: U64_MAX, erange: true };
  return { value: r.neg ? BigInt.asUintN(64, -r.mag) : r.mag, erange: false };
}

/** strtol(s, NULL, base) on LP64: clamps to LONG_MIN/LONG_MAX. */
export function strtol(s: string, base = 0): { value: bigint; erange: boolean } {
  const r = scan(s, base);
  const v = r.neg ? -r.mag : r.mag;
  if (r.overflow || v > I64_MAX) return { value: r.neg ? I64_MIN : I64_MAX, erange: true };
  if (v < I64_MIN) return { value: I64_MIN, erange: true };
  return { value: v, erange: false };
}

/** What storing a C long into a __u32 leaves. */
export function u32(v: bigint): number {
  return Number(BigInt.asUintN(32, v));
}

/** (int) of a __u32, for auditctl's %d printing. */
export function s32(v: number): number {
  return v | 0;
}
