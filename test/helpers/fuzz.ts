// Fuzz budgets: CI runs each fuzz test's base iteration count with a fixed seed; `npm run bench:fuzz` sets
// AUDITMUX_FUZZ_BUDGET to multiply them (same seeds, more inputs).

/** Multiplier from AUDITMUX_FUZZ_BUDGET (default 1; anything unparsable or below 1 counts as 1). */
export const FUZZ_BUDGET = Math.max(1, Math.floor(Number(process.env.AUDITMUX_FUZZ_BUDGET ?? 1)) || 1);

/** Iterations for a test whose CI count is `base`. */
export function budget(base: number): number {
  return base * FUZZ_BUDGET;
}
