// Typed readers over a parsed YAML document that turn every type/range problem into a ConfigError at the node's
// file:line:col.
import { isAlias, isMap, isScalar, isSeq, parseDocument, visit, type Document, type Node, type Scalar } from 'yaml';
import { ConfigError, type SourcePos } from '../errors';

/** A key/value pair of a mapping, after merge keys (`<<`) were applied. */
export interface Entry {
  name: string;
  key: Node;
  /** null when the key has no value node at all (`key:` at the end of a flow map). */
  value: Node | null;
}

/** Past this many alias dereferences the document is treated as an expansion bomb ("billion laughs"). */
const MAX_ALIAS_DEREFS = 1000;
/** Enough for a useful `config check` report without letting a pathological file build a huge list. */
const MAX_ERRORS = 50;
/** No auditmux mapping has more than a few dozen keys; past this one the file is not a config. */
export const MAX_MAP_KEYS = 1024;

/**
 * yaml's `uniqueKeys` check, in linear time: keys are equal when they are the same scalar value (so `1` and `0x1`,
 * or `~` and `null`, are duplicates, as yaml says), and each duplicate is reported at its own offset. A mapping with
 * more than MAX_MAP_KEYS keys is reported once, at the first key past the limit.
 */
export function duplicateKeyErrors(doc: Document.Parsed): { offset: number; reason: string }[] {
  const out: { offset: number; reason: string }[] = [];
  visit(doc, {
    Map(_k, map) {
      const seen = new Set<string>();
      let n = 0;
      for (const pair of map.items) {
        const key = pair.key as Node | null;
        if (++n > MAX_MAP_KEYS) {
          out.push({
            offset: key?.range?.[0] ?? map.range?.[0] ?? 0,
            reason: `more than ${MAX_MAP_KEYS} keys in one mapping`,
          });
          if (out.length >= MAX_ERRORS) return visit.BREAK;
          break;
        }
        if (!key || !isScalar(key)) continue;
        const v = key.value;
        const id = `${typeof v}:${String(v)}`;
        if (seen.has(id)) {
          out.push({ offset: key.range?.[0] ?? 0, reason: 'YAML DUPLICATE_KEY: Map keys must be unique' });
          if (out.length >= MAX_ERRORS) return visit.BREAK;
        } else seen.add(id);
      }
      return undefined;
    },
  });
  return out;
}

export class Walker {
  readonly errors: ConfigError[] = [];
  readonly warnings: ConfigError[] = [];
  /** Where each setting was written, keyed like error messages (`host.log.file`, `daemons[0].rules`). */
  readonly sources = new Map<string, SourcePos>();
  private aliasDerefs = 0;
  /**
   * Offsets where lines start. yaml's LineCounter is fed by the lexer and misses newlines it skips while recovering
   * from errors (fuzzing found errors placed on line 1 of a 3-line file), so lines are counted from the text itself.
   */
  private readonly lineStarts: number[] = [0];

  constructor(
    readonly text: string,
    readonly file: string,
    private readonly doc: Document.Parsed,
  ) {
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) this.lineStarts.push(i + 1);
  }

  /** 1-based line and column (in UTF-16 units, as editors count JS strings) of a character offset. */
  posAt(offset: number): SourcePos {
    const o = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.lineStarts[mid] as number) <= o) lo = mid;
      else hi = mid - 1;
    }
    return { file: this.file, line: lo + 1, col: o - (this.lineStarts[lo] as number) + 1 };
  }

  posOf(node: Node | null | undefined, fallback?: Node | null): SourcePos {
    const r = node?.range ?? fallback?.range;
    return this.posAt(r ? r[0] : 0);
  }

  error(node: Node | null | undefined, reason: string, fallback?: Node | null): undefined {
    return this.errorAt(this.posOf(node, fallback), reason);
  }

  /**
   * A problem at a position the walk recorded (w.sources, a daemon's or an output's pos), found after the walk: under
   * the same cap and de-duplication as error() (pushed directly, thousands of daemons gave as many errors).
   */
  errorAt(pos: SourcePos, reason: string): undefined {
    // Aliased nodes are validated once per use; report each distinct problem once.
    const dup = this.errors.some((e) => e.reason === reason && e.pos.line === pos.line && e.pos.col === pos.col);
    if (!dup && this.errors.length < MAX_ERRORS) this.errors.push(new ConfigError(pos, reason));
    return undefined;
  }

  warn(node: Node | null | undefined, reason: string): void {
    this.warnings.push(new ConfigError(this.posOf(node), reason));
  }

  /** Follows aliases; returns null for a missing or null-valued node. */
  resolve(node: Node | null | undefined): Node | null {
    let n: Node | null | undefined = node;
    for (let hops = 0; n && isAlias(n); hops++) {
      if (++this.aliasDerefs > MAX_ALIAS_DEREFS || hops > 64) {
        this.error(n, `too many alias expansions (more than ${MAX_ALIAS_DEREFS})`);
        return null;
      }
      const target = n.resolve(this.doc) as Node | undefined;
      if (!target) {
        this.error(n, `unknown alias *${n.source}`);
        return null;
      }
      n = target;
    }
    if (!n) return null;
    if (isScalar(n) && n.value === null) return null;
    return n;
  }

  /**
   * Reads a mapping, applying `<<` merge keys, and rejects keys outside `allowed` with a "did you mean" hint.
   * A null node reads as an empty mapping, so `kernel:` with every child commented out is valid.
   */
  mapping(
    node: Node | null,
    where: string,
    allowed: readonly string[],
    owner?: Node | null,
  ): Map<string, Entry> | undefined {
    const out = new Map<string, Entry>();
    const n = this.resolve(node);
    if (n === null) return out;
    if (!isMap(n)) return this.error(n, `${where} must be a mapping, got ${describe(n)}`, owner);
    const merged = new Map<string, Entry>();
    for (const pair of n.items) {
      const key = pair.key as Node | null;
      const value = pair.value as Node | null;
      if (!key || !isScalar(key) || key.value === null || typeof key.value === 'object') {
        this.error(key, `${where}: keys must be plain names`, n);
        continue;
      }
      const name = String(key.source ?? key.value);
      if (name === '<<') {
        this.mergeInto(merged, value, where, allowed, key);
        continue;
      }
      if (!allowed.includes(name)) {
        this.error(key, `unknown key "${truncate(name)}" in ${where}${didYouMean(name, allowed)}`);
        continue;
      }
      out.set(name, { name, key, value });
    }
    // Explicit keys win over merged ones, as YAML merge keys specify.
    for (const [k, e] of merged) if (!out.has(k)) out.set(k, e);
    return out;
  }

  private mergeInto(
    into: Map<string, Entry>,
    value: Node | null,
    where: string,
    allowed: readonly string[],
    key: Node,
  ): void {
    const v = this.resolve(value);
    const sources = v && isSeq(v) ? (v.items as Node[]) : [value];
    for (const src of sources) {
      const m = this.resolve(src);
      if (m === null || !isMap(m)) {
        this.error(src ?? key, `${where}: "<<" needs a mapping or a list of mappings`);
        continue;
      }
      const entries = this.mapping(m, where, allowed);
      if (!entries) continue;
      // Earlier sources in a merge list take precedence.
      for (const [k, e] of entries) if (!into.has(k)) into.set(k, e);
    }
  }

  /** Items of a sequence; a null node reads as empty. `single` lets one scalar stand for a one-item list. */
  sequence(node: Node | null, where: string, owner: Node | null, single = false): Node[] | undefined {
    const n = this.resolve(node);
    if (n === null) return [];
    if (isSeq(n)) return n.items as Node[];
    if (single && isScalar(n)) return [n];
    return this.error(n, `${where} must be a list, got ${describe(n)}`, owner);
  }

  /** Plain text of a scalar: the source for plain scalars (keeps `0x10` and big numbers exact), the value otherwise. */
  scalarText(
    node: Node | null,
    where: string,
    owner: Node | null,
  ): { text: string; node: Scalar; quoted: boolean } | undefined {
    const n = this.resolve(node);
    // An empty value's null node sits after the colon; the key is what the reader looks for.
    if (n === null) return this.error(owner ?? node, `${where} needs a value`, node);
    if (!isScalar(n)) return this.error(n, `${where} must be a single value, got ${describe(n)}`, owner);
    if (!this.sources.has(where)) this.sources.set(where, this.posOf(n));
    const quoted = n.type !== 'PLAIN';
    const text = typeof n.value === 'string' ? n.value : String(n.source ?? n.value);
    return { text, node: n, quoted };
  }

  string(e: Entry, where: string): string | undefined {
    const s = this.scalarText(e.value, where, e.key);
    return s?.text;
  }

  /** A string, or null when the value is YAML null (`~`, `null` or empty). */
  nullableString(e: Entry, where: string): string | null | undefined {
    if (this.resolve(e.value) === null) return null;
    return this.string(e, where);
  }

  integer(e: Entry, where: string, min: number, max: number): number | undefined {
    const s = this.scalarText(e.value, where, e.key);
    if (!s) return undefined;
    const { text, node } = s;
    if (typeof node.value !== 'number' || !/^-?(?:[0-9]+|0x[0-9a-fA-F]+)$/.test(text)) {
      return this.error(node, `${where} must be an integer, got ${describeScalar(node)}`);
    }
    const neg = text.startsWith('-');
    const big = neg ? -BigInt(text.slice(1)) : BigInt(text);
    if (big < BigInt(min) || big > BigInt(max))
      return this.error(node, `${where} must be between ${min} and ${max}, got ${truncate(text)}`);
    return Number(big);
  }

  boolean(e: Entry, where: string): boolean | undefined {
    const s = this.scalarText(e.value, where, e.key);
    if (!s) return undefined;
    if (typeof s.node.value === 'boolean') return s.node.value;
    const hint = /^(yes|no|on|off|y|n)$/i.test(s.text)
      ? ` (YAML 1.2: write ${/^(yes|on|y)$/i.test(s.text) ? 'true' : 'false'})`
      : '';
    return this.error(s.node, `${where} must be true or false, got ${describeScalar(s.node)}${hint}`);
  }

  /** One of `choices`, matched case-insensitively (as auditd does) and returned in its canonical spelling. */
  choice<T extends string>(e: Entry, where: string, choices: readonly T[]): T | undefined {
    const s = this.scalarText(e.value, where, e.key);
    if (!s) return undefined;
    const found = choices.find((c) => c.toLowerCase() === s.text.toLowerCase());
    if (found !== undefined) return found;
    return this.error(
      s.node,
      `${where} must be one of ${choices.join(', ')}; got "${truncate(s.text)}"${didYouMean(s.text, choices)}`,
    );
  }
}

export function describe(n: Node): string {
  if (isMap(n)) return 'a mapping';
  if (isSeq(n)) return 'a list';
  if (isScalar(n)) return describeScalar(n);
  return 'an unsupported node';
}

function describeScalar(n: Scalar): string {
  const v = n.value;
  if (v === null) return 'null';
  if (typeof v === 'string') return `the string "${truncate(v)}"`;
  if (typeof v === 'boolean') return `the boolean ${v}`;
  return truncate(String(n.source ?? v));
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** Optimal-string-alignment distance: Levenshtein plus adjacent transpositions ("hots" → "host" is 1). */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row[j] = j;
        continue;
      }
      const prev = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      row[j] = d;
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/** ` (did you mean "x"?)` for the closest candidate within a typo's distance or sharing a prefix, else ''. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  if (word.length === 0 || word.length > 64) return '';
  const w = word.toLowerCase();
  const limit = w.length <= 3 ? 1 : w.length <= 6 ? 2 : 3;
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const cl = c.toLowerCase();
    let d = editDistance(w, cl);
    // A truncated name ("warning" for "warn", "drop_old" for "drop_oldest") is as good a hint as a typo.
    if (w.length >= 4 && (cl.startsWith(w) || w.startsWith(cl))) d = Math.min(d, limit);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= limit ? ` (did you mean "${best}"?)` : '';
}

/**
 * Parses a config file's YAML and its syntax problems, duplicate keys included, sorted by position. yaml's own
 * unique-key check compares each key with every earlier one (40k keys took 40 s); duplicateKeyErrors does the same
 * check with a Map, in one pass over the document.
 */
export function parseConfigYaml(text: string): {
  doc: Document.Parsed;
  problems: { offset: number; reason: string }[];
} {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: false, strict: true, version: '1.2' });
  // YAML warnings (unknown tags, for instance) are errors too: a config must mean exactly one thing.
  const problems = [...doc.errors, ...doc.warnings].map((e) => ({
    offset: e.pos[0],
    reason: `YAML ${e.code}: ${firstLineOf(e.message)}`,
  }));
  // A `%YAML 1.1` directive overrides the 1.2 asked for: `yes` and `n` become booleans and `010` is 8. The file would
  // mean one thing here and another to other tools (and to a reader who knows YAML 1.2).
  const yamlVersion = doc.directives?.yaml;
  if (yamlVersion?.explicit && yamlVersion.version !== '1.2')
    problems.push({ offset: 0, reason: `%YAML ${yamlVersion.version}: auditmux reads YAML 1.2 only` });
  problems.push(...duplicateKeyErrors(doc));
  problems.sort((a, b) => a.offset - b.offset);
  return { doc, problems };
}

function firstLineOf(s: string): string {
  const i = s.indexOf('\n');
  return i < 0 ? s : s.slice(0, i);
}
