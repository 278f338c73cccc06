// getopt_long as auditctl calls it (GNU permutation, opterr=0, unique long-option prefixes), over one line's words.

export const SHORT_OPTS = 'hicslDvtC:e:f:r:b:a:A:d:S:F:m:R:w:W:k:p:q:';
export const LONG_OPTS: ReadonlyArray<readonly [name: string, hasArg: boolean]> = [
  ['loginuid-immutable', false],
  ['backlog_wait_time', true],
  ['reset-lost', false],
  ['reset_backlog_wait_time_actual', false],
  ['signal', true],
];

export type OptResult =
  { ok: true; opt: string; arg: string | undefined; index: number } | { ok: false; bad: string; index: number };

function shortTakesArg(c: string): boolean | undefined {
  const i = SHORT_OPTS.indexOf(c);
  if (i < 0 || c === ':') return undefined;
  return SHORT_OPTS[i + 1] === ':';
}

/**
 * Yields options in order; non-option words are gathered in `rest` (GNU moves them after the options), so the caller
 * can refuse them the way auditctl does ("parameter passed without an option given").
 */
export function* getopt(words: readonly string[], rest: string[]): Generator<OptResult> {
  let i = 0;
  while (i < words.length) {
    const w = words[i]!;
    if (w === '--') {
      rest.push(...words.slice(i + 1));
      return;
    }
    if (w.length < 2 || w[0] !== '-') {
      rest.push(w);
      i++;
      continue;
    }
    if (w.startsWith('--')) {
      const eq = w.indexOf('=');
      const name = eq < 0 ? w.slice(2) : w.slice(2, eq);
      const exact = LONG_OPTS.find(([n]) => n === name);
      const prefixed = LONG_OPTS.filter(([n]) => n.startsWith(name));
      const def = exact ?? (prefixed.length === 1 ? prefixed[0] : undefined);
      const at = i;
      i++;
      if (!def) {
        yield { ok: false, bad: w, index: at };
        return;
      }
      let arg: string | undefined;
      if (eq >= 0) {
        if (!def[1]) {
          yield { ok: false, bad: w, index: at };
          return;
        }
        arg = w.slice(eq + 1);
      } else if (def[1]) {
        if (i >= words.length) {
          yield { ok: false, bad: w, index: at };
          return;
        }
        arg = words[i++];
      }
      yield { ok: true, opt: '--' + def[0], arg, index: at };
      continue;
    }
    // A cluster of short options, the last of which may take the rest of the word or the next word as its argument.
    const at = i;
    i++;
    for (let j = 1; j < w.length; j++) {
      const c = w[j]!;
      const takes = shortTakesArg(c);
      if (takes === undefined) {
        yield { ok: false, bad: w, index: at };
        return;
      }
      if (!takes) {
        yield { ok: true, opt: c, arg: undefined, index: at };
        continue;
      }
      let arg: string;
      if (j + 1 < w.length) arg = w.slice(j + 1);
      else if (i < words.length) arg = words[i++]!;
      else {
        yield { ok: false, bad: w, index: at };
        return;
      }
      yield { ok: true, opt: c, arg, index: at };
      break;
    }
  }
}
