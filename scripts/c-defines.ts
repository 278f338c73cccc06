// Reads the integer #defines of C headers (kernel audit.h, elf-em.h, errno.h): shared by the table generator and the
// unit test that checks the generated tables against the headers of this machine.
import { readFileSync } from 'node:fs';

/**
 * Every `#define NAME value` whose value is an integer expression of numbers, names defined before and `|`, `+`,
 * `<<`, parentheses (what audit.h and errno.h use), evaluated. Other defines (strings, macros with arguments) are
 * skipped. Line continuations are joined and comments dropped first.
 */
export function readDefines(paths: readonly string[], into = new Map<string, number>()): Map<string, number> {
  for (const path of paths) {
    const text = readFileSync(path, 'latin1')
      .replace(/\/\*[\s\S]*?\*\//g, ' ')
      .replace(/\/\/[^\n]*/g, '')
      .replace(/\\\n/g, ' ');
    for (const line of text.split('\n')) {
      const m = /^\s*#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)\s+(.+?)\s*$/.exec(line);
      if (!m) continue;
      const v = evaluate(m[2]!, into);
      if (v !== undefined) into.set(m[1]!, v);
    }
  }
  return into;
}

/** An integer C expression over known names, or undefined when it uses anything else. */
export function evaluate(expr: string, names: ReadonlyMap<string, number>): number | undefined {
  const tokens = expr.match(/0[xX][0-9a-fA-F]+[uUlL]*|[0-9]+[uUlL]*|[A-Za-z_][A-Za-z0-9_]*|<<|[|+()]|\S/g) ?? [];
  let i = 0;
  const atom = (): number | undefined => {
    const t = tokens[i++];
    if (t === undefined) return undefined;
    if (t === '(') {
      const v = orExpr();
      return tokens[i++] === ')' ? v : undefined;
    }
    if (/^[0-9]/.test(t)) {
      const n = t.replace(/[uUlL]+$/, '');
      return /^0[xX]/.test(n) ? parseInt(n, 16) : /^0[0-7]+$/.test(n) ? parseInt(n, 8) : Number(n);
    }
    return names.get(t);
  };
  const sum = (): number | undefined => {
    let v = atom();
    while (v !== undefined && (tokens[i] === '+' || tokens[i] === '<<')) {
      const op = tokens[i++];
      const r = atom();
      if (r === undefined) return undefined;
      v = op === '+' ? v + r : v * 2 ** r;
    }
    return v;
  };
  const orExpr = (): number | undefined => {
    let v = sum();
    while (v !== undefined && tokens[i] === '|') {
      i++;
      const r = sum();
      if (r === undefined) return undefined;
      // Bitwise or of unsigned 32-bit values (the arch flags use bit 31).
      v = (v | r) >>> 0;
    }
    return v;
  };
  const v = orExpr();
  return i === tokens.length ? v : undefined;
}

export const HEADERS = {
  audit: '/usr/include/linux/audit.h',
  elfEm: '/usr/include/linux/elf-em.h',
  errno: ['/usr/include/asm-generic/errno-base.h', '/usr/include/asm-generic/errno.h'],
} as const;
