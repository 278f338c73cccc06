// Splits one rules-file line into words: blanks separate, '…' and "…" quote, backslash escapes, # starts a comment.
import { RuleError, type SourcePos } from '../errors';

/**
 * auditctl itself splits on spaces only (with "\ " kept inside a word); this is a superset: the same words for every
 * line auditctl's own rule files contain, plus shell quoting so keys and paths with blanks can be written.
 * A '#' starts a comment only at the start of a word, so "-k a#b" keeps its '#' as auditctl does.
 */
export function splitWords(line: string, pos: SourcePos): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  const n = line.length;
  while (i < n) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      if (inWord) {
        words.push(cur);
        cur = '';
        inWord = false;
      }
      i++;
    } else if (c === '#' && !inWord) {
      break;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new RuleError('unterminated single quote', pos);
      cur += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const d = line[i]!;
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === '\\' && i + 1 < n && '"\\$`'.includes(line[i + 1]!)) {
          cur += line[i + 1];
          i += 2;
        } else {
          cur += d;
          i++;
        }
      }
      if (!closed) throw new RuleError('unterminated double quote', pos);
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 < n) cur += line[i + 1];
      inWord = true;
      i += 2;
    } else {
      cur += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(cur);
  return words;
}
