// Reads rules from a file, or from a rules.d directory the way augenrules merges it.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { IoError } from '../errors';
import { readBounded } from '../safefs';
import { assertTrustedRules } from '../trust';
import { parseRules, type ParseContext } from './parser';
import type { RuleCommand } from './types';

/** `ls -v` order: runs of digits compare as numbers, the rest byte-wise. */
export function naturalCompare(a: string, b: string): number {
  const re = /(\d+)|(\D+)/g;
  const pa = a.match(re) ?? [];
  const pb = b.match(re) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!,
      y = pb[i]!;
    const dx = /^\d/.test(x),
      dy = /^\d/.test(y);
    if (dx && dy) {
      const d = BigInt(x) - BigInt(y);
      if (d !== 0n) return d < 0n ? -1 : 1;
      if (x.length !== y.length) return x.length - y.length;
    } else if (x !== y) return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** The *.rules files of a rules.d directory in the order augenrules concatenates them. */
export function rulesFilesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.rules'))
    .sort(naturalCompare)
    .map((n) => join(dir, n));
}

/** Largest rules file, and largest rules.d directory in total: real rule sets are kilobytes. */
export const MAX_RULES_BYTES = 16 << 20;
/** Most lines in one load (file or directory): each rule costs about 2 KiB parsed, so this bounds memory too. */
export const MAX_RULES_LINES = 65536;

/**
 * A regular file only (a FIFO is refused at once instead of hanging the daemon, /dev/zero before a byte is read), at
 * most `budget.bytes` of it. Symlinks are followed, as augenrules and auditctl -R do (Kubernetes mounts ConfigMaps as
 * symlinks).
 */
function readText(path: string, budget: { bytes: number; lines: number }): string {
  const { data } = readBounded(path, { limit: budget.bytes, what: 'rules' });
  budget.bytes -= data.length;
  let lines = 0;
  for (let i = data.indexOf(10); i >= 0; i = data.indexOf(10, i + 1)) lines++;
  budget.lines -= lines;
  if (budget.lines < 0)
    throw new IoError(`rules ${path}: more than ${MAX_RULES_LINES} lines in one rule set`, 'E_TOO_LARGE');
  return data.toString('utf8');
}

/** Commands augenrules moves: bare -D, -b, -f and --backlog_wait_time go first (last of each wins), -e goes last. */
type Hoisted = 'deleteAll' | 'backlogLimit' | 'failure' | 'backlogWaitTime';
const HOIST_ORDER: readonly Hoisted[] = ['deleteAll', 'backlogLimit', 'failure', 'backlogWaitTime'];

/**
 * Merges rules.d files like augenrules: a line that is only one of the hoisted settings is taken out of place
 * (the last one of each wins) and put first, and the last -e line is put at the end. Lines keep their file:line.
 */
export function mergeRulesDir(files: ReadonlyArray<{ path: string; commands: RuleCommand[] }>): RuleCommand[] {
  const hoisted = new Map<Hoisted, RuleCommand>();
  let enable: RuleCommand | undefined;
  const body: RuleCommand[] = [];
  for (const { commands } of files) {
    // A line is hoisted only when it holds nothing else, as augenrules matches whole lines.
    const byLine = new Map<number, RuleCommand[]>();
    for (const c of commands) {
      const l = byLine.get(c.pos.line);
      if (l) l.push(c);
      else byLine.set(c.pos.line, [c]);
    }
    for (const c of commands) {
      const alone = byLine.get(c.pos.line)!.length === 1;
      if (alone && c.kind === 'enabled' && /^-e\b/.test(c.text)) enable = c;
      else if (alone && c.kind === 'deleteAll' && c.key === undefined) hoisted.set('deleteAll', c);
      else if (alone && c.kind === 'backlogLimit' && /^-b\b/.test(c.text)) hoisted.set('backlogLimit', c);
      else if (alone && c.kind === 'failure' && /^-f\b/.test(c.text)) hoisted.set('failure', c);
      else if (alone && c.kind === 'backlogWaitTime') hoisted.set('backlogWaitTime', c);
      else body.push(c);
    }
  }
  const out: RuleCommand[] = [];
  for (const k of HOIST_ORDER) {
    const c = hoisted.get(k);
    if (c) out.push(c);
  }
  out.push(...body);
  if (enable) out.push(enable);
  return out;
}

/** A rules file read in order, or a rules.d directory merged like augenrules. Throws RuleError or IoError. */
export function loadRulesPath(path: string): RuleCommand[] {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new IoError(`cannot read rules ${path}: ${(e as Error).message}`, 'E_IO', { cause: e });
  }
  const budget = { bytes: MAX_RULES_BYTES, lines: MAX_RULES_LINES };
  const paths = st.isDirectory() ? rulesFilesIn(path) : [path];
  // Checked before anything is opened: rules go into the kernel as root, so like auditctl -R only root's regular
  // files (for auditmux: and directories) are obeyed, and opening is itself an act on a device (a watchdog starts, a
  // tape rewinds) that a link in a tenant's directory could aim at. Then read, bounded and regular files only (what
  // the path names can only change by root's hand now). Nothing is parsed before both pass.
  assertTrustedRules(path, st.isDirectory() ? paths : undefined);
  const texts = paths.map((p) => readText(p, budget));
  if (!st.isDirectory()) return parseRules(texts[0]!, path);
  const ctx: ParseContext = { ignore: false };
  const files = paths.map((p, i) => ({ path: p, commands: parseRules(texts[i]!, p, ctx) }));
  return mergeRulesDir(files);
}
