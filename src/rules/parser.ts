// The auditctl rule language: each line is one auditctl command line, turned into typed commands in order.
import { Buffer } from 'node:buffer';
import { statSync } from 'node:fs';
import {
  AUDIT_MAX_FIELDS,
  AUDIT_MAX_KEY_LEN,
  AUDIT_FILTER_PREPEND,
  Field,
  FilterList,
  Op,
  PATH_MAX,
  RuleAction,
} from '../kernel/constants';
import { RuleError, type SourcePos } from '../errors';
import { isDigit, strtoul, u32 } from './cnum';
import {
  addComparison,
  addFieldPair,
  addSyscall,
  FILTER_UNSET,
  newBuildState,
  permBits,
  type BuildState,
} from './fieldpair';
import { getopt } from './getopt';
import { HOST_MACHINE, machineToElf } from '../vocab/arch';
import type { Rule, RuleCommand } from './types';
import { splitWords } from './words';

const KEY_SEP = '\x01';

/**
 * auditctl -R reads with fgets into a 6144-byte buffer (LINE_SIZE in auditctl.c), so 6143 bytes is the longest line it
 * takes whole; it silently cuts a longer one in two. Such a line is refused here, with its position, before any work.
 */
export const MAX_RULE_LINE_BYTES = 6143;

/** File-wide state auditctl keeps across lines: -i / -c. */
export interface ParseContext {
  ignore: boolean;
}

/**
 * Parses a whole rules text; a bad line throws RuleError unless an earlier -i/-c line asked to go on. Pass one
 * context through several files that auditctl would read as one stream (augenrules' concatenation).
 */
export function parseRules(text: string, file: string, ctx: ParseContext = { ignore: false }): RuleCommand[] {
  const out: RuleCommand[] = [];
  const lines = text.split('\n');
  // A trailing newline does not start another line.
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const pos: SourcePos = { file, line: i + 1 };
    const line = lines[i]!;
    const r =
      line.length * 3 > MAX_RULE_LINE_BYTES && Buffer.byteLength(line) > MAX_RULE_LINE_BYTES
        ? new RuleError(`line is longer than auditctl's ${MAX_RULE_LINE_BYTES}-byte limit`, pos, 'E_RULE_TOO_LONG')
        : parseLineInto(line, pos, ctx, out);
    if (r) {
      if (!ctx.ignore) throw r;
      out.push({
        kind: 'invalid',
        error: r,
        pos,
        text: line.length > MAX_RULE_LINE_BYTES ? `${line.slice(0, 64).trim()}...` : line.trim(),
      });
    }
  }
  return out;
}

/** Parses one auditctl command line (without the program name); throws RuleError. */
export function parseLine(line: string, pos: SourcePos = { file: '<rule>', line: 1 }): RuleCommand[] {
  const out: RuleCommand[] = [];
  const err = parseLineInto(line, pos, { ignore: false }, out);
  if (err) throw err;
  return out;
}

/** Appends the line's commands to `out`; returns the error instead of throwing so -i set on this line counts. */
function parseLineInto(line: string, pos: SourcePos, ctx: ParseContext, out: RuleCommand[]): RuleError | null {
  let words: string[];
  try {
    words = splitWords(line, pos);
  } catch (e) {
    return e as RuleError;
  }
  if (words.length === 0) return null;
  const lp = new LineParser(words, pos, line.trim(), ctx);
  const cmds: RuleCommand[] = [];
  const reason = lp.run(cmds);
  // Options auditctl already carried out before it met the error on the same line (-b 10 -x) are kept.
  out.push(...cmds);
  return reason === null ? null : new RuleError(reason, pos);
}

/** What auditctl's setopt() returns: ends the option loop with an error or with "done, nothing to send". */
class Stop {
  constructor(readonly error: string | null) {}
}

class LineParser {
  private add = FILTER_UNSET;
  private del = FILTER_UNSET;
  private action = -1;
  private exclude = false;
  private multiple = 0;
  private key = '';
  private st: BuildState = newBuildState();
  private sendRule = false;
  private listRequested = false;

  constructor(
    private readonly words: string[],
    private readonly pos: SourcePos,
    private readonly text: string,
    private readonly ctx: ParseContext,
  ) {}

  run(cmds: RuleCommand[]): string | null {
    const rest: string[] = [];
    let anyOption = false;
    let ended = false;
    try {
      for (const o of getopt(this.words, rest)) {
        anyOption = true;
        if (!o.ok) return `Option ${o.bad} is invalid`;
        const r = this.option(o.opt, o.arg, o.index, cmds);
        if (r instanceof Stop) {
          if (r.error !== null) return r.error;
          ended = true;
          break;
        }
      }
    } catch (e) {
      if (e instanceof DeprecatedLine) return null;
      throw e;
    }
    if (!anyOption) return 'parameter passed without an option given';
    if (ended) {
      // -i, -D, -l … end the option loop; anything after them is a stray parameter.
      return this.afterEnd(rest) ? 'parameter passed without an option given' : null;
    }
    if (rest.length > 0) return 'parameter passed without an option given';
    if (this.key !== '' && !this.listRequested) {
      const flags = this.add !== FILTER_UNSET ? this.add & 7 : this.del !== FILTER_UNSET ? this.del & 7 : 0;
      const err = addFieldPair(this.st, `key=${this.key}`, flags);
      if (err) return err;
    }
    if (!this.sendRule) {
      if (this.st.syscallAdded) return 'Error - no list specified';
      return null;
    }
    const isAdd = this.add !== FILTER_UNSET;
    const list = isAdd ? this.add : this.del;
    if ((list & 7) !== FilterList.task && !this.st.syscallAdded) addSyscall(this.st, 'all');
    const rule = this.rule(list);
    cmds.push(
      isAdd
        ? { kind: 'add', rule, pos: this.pos, text: this.text }
        : { kind: 'delete', rule, pos: this.pos, text: this.text },
    );
    return null;
  }

  private endedWords = 0;
  private afterEnd(rest: string[]): boolean {
    return rest.length > 0 || this.endedWords < this.words.length;
  }

  private rule(flags: number): Rule {
    const keys: string[] = [];
    for (const f of this.st.fields) {
      if (f.field === Field.key && f.str !== undefined)
        for (const k of f.str.split(KEY_SEP)) if (k !== '') keys.push(k);
    }
    return { flags, action: this.action, mask: this.st.mask, fields: this.st.fields, keys };
  }

  private listOf(): number {
    if (this.add !== FILTER_UNSET) return this.add & 7;
    if (this.del !== FILTER_UNSET) return this.del & 7;
    return FILTER_UNSET;
  }

  /** One getopt result; returns a Stop to end the loop. */
  private option(opt: string, arg: string | undefined, index: number, cmds: RuleCommand[]): Stop | void {
    const a = arg ?? '';
    const base = { pos: this.pos, text: this.text };
    switch (opt) {
      case 'h':
        return new Stop('usage: auditctl [options] (-h is not a rule)');
      case 'i':
      case 'c':
        this.ctx.ignore = true;
        cmds.push({ kind: 'ignoreErrors', continueMode: opt === 'c', ...base });
        return this.end(index);
      case 's':
      case 'l':
      case 'v':
        // Reports only; nothing to do when loading rules.
        this.listRequested = true;
        return this.end(this.words.length - 1);
      case 'e':
        if (a === '0' || a === '1' || a === '2') cmds.push({ kind: 'enabled', value: Number(a), ...base });
        else return new Stop(`Enable must be 0, 1, or 2 was ${a}`);
        return;
      case 'f':
        if (a === '0' || a === '1' || a === '2') cmds.push({ kind: 'failure', value: Number(a), ...base });
        else return new Stop(`Failure must be 0, 1, or 2 was ${a}`);
        return;
      case 'r':
      case 'b':
      case '--backlog_wait_time': {
        const what = opt === 'r' ? 'Rate' : opt === 'b' ? 'Backlog' : 'Backlog_wait_time';
        if (!isDigit(a)) return new Stop(`${what} must be a numeric value was ${a}`);
        const r = strtoul(a);
        if (r.erange)
          return new Stop(`Error converting ${opt === 'r' ? 'rate' : opt === 'b' ? 'backlog' : 'backlog_wait_time'}`);
        const value = u32(r.value);
        cmds.push({
          kind: opt === 'r' ? 'rateLimit' : opt === 'b' ? 'backlogLimit' : 'backlogWaitTime',
          value,
          ...base,
        });
        return;
      }
      // auditctl returns straight out of setopt() after these, so words after them are not checked.
      case '--loginuid-immutable':
        cmds.push({ kind: 'loginuidImmutable', ...base });
        return this.end(this.words.length - 1);
      case '--reset-lost':
        cmds.push({ kind: 'resetLost', ...base });
        return this.end(this.words.length - 1);
      case '--reset_backlog_wait_time_actual':
      case '--signal':
        return new Stop(`${opt} is not supported in a rules file`);
      case 'a':
      case 'A':
      case 'd':
        return this.setupRule(opt, a);
      case 'S':
        return this.syscalls(a);
      case 'F': {
        const flags = this.listOf();
        if (flags === FILTER_UNSET) return new Stop('List must be given before field');
        if (a.startsWith('key=')) return this.addKey(a.slice(4));
        const err = addFieldPair(this.st, a, flags);
        if (err) return new Stop(err);
        const last = this.st.fields[this.st.fields.length - 1]!;
        if (last.field === Field.perm) this.st.permAdded = true;
        if (last.field === Field.exe) this.st.exeAdded = true;
        return;
      }
      case 'C': {
        const err = addComparison(this.st, a, this.listOf());
        return err ? new Stop(err) : undefined;
      }
      case 'm':
        return new Stop('-m (send a user message) is not supported in a rules file');
      case 'R':
        return new Stop('Error - nested rule files not supported');
      case 't':
      case 'q':
        return new Stop(`-${opt} (directory watch trimming) is not supported in a rules file`);
      case 'D':
        return this.deleteAll(index, cmds);
      case 'w':
        if (this.add !== FILTER_UNSET || this.del !== FILTER_UNSET)
          return new Stop("watch option can't be given with a syscall");
        this.add = FilterList.exit;
        return this.watch(a);
      case 'W':
        this.del = FilterList.exit;
        return this.watch(a);
      case 'k':
        if (
          !(this.st.syscallAdded || this.st.permAdded || this.st.exeAdded || this.st.filterFsAdded) ||
          (this.add === FILTER_UNSET && this.del === FILTER_UNSET)
        ) {
          return new Stop('key option needs a watch or syscall given prior to it');
        }
        return this.addKey(a);
      case 'p':
        if (this.add === FILTER_UNSET && this.del === FILTER_UNSET)
          return new Stop('permission option needs a watch given prior to it');
        return this.perms(a);
      default:
        return new Stop(`Option -${opt} is invalid`);
    }
  }

  /** Options that end auditctl's option loop: the words after index belong to nobody. */
  private end(index: number): Stop {
    this.endedWords = index + 1;
    return new Stop(null);
  }

  private setupRule(opt: 'a' | 'A' | 'd', arg: string): Stop | void {
    if (opt !== 'd' && arg.includes('task') && this.st.syscallAdded) {
      return new Stop(
        opt === 'a' ? 'Syscall auditing requested for task list' : 'Error: syscall auditing requested for task list',
      );
    }
    let filter = opt === 'd' ? this.del : this.add;
    let act = this.action;
    const setup = (): number => {
      if (++this.multiple !== 1) return 3;
      const comma = arg.indexOf(',');
      if (comma < 0 || arg.indexOf(',', comma + 1) >= 0) return 2;
      const first = arg.slice(0, comma),
        second = arg.slice(comma + 1);
      const a1 = lookupAction(first);
      if (a1.rc === 2) {
        const f = this.lookupFilter(first);
        if (f === undefined) return 2;
        filter = f;
      } else if (a1.rc === 0) act = a1.act;
      if (filter === FILTER_UNSET) {
        const f = this.lookupFilter(second);
        if (f !== undefined) filter = f;
      } else {
        const a2 = lookupAction(second);
        if (a2.rc !== 0) return a2.rc;
        act = a2.act;
      }
      if (filter === FILTER_UNSET || act === -1) return 2;
      return 0;
    };
    const rc = setup();
    if (opt === 'd') this.del = filter;
    else this.add = filter;
    this.action = act;
    const verb = opt === 'a' ? 'Append rule' : opt === 'A' ? 'Add rule' : 'Delete rule';
    if (rc === 3) return new Stop('Multiple rule insert/delete operations are not allowed');
    if (rc === 2) return new Stop(`${verb} - bad keyword ${arg}`);
    if (rc === 1) {
      // auditctl warns "possible is deprecated" and drops the whole line without an error.
      this.add = this.del = FILTER_UNSET;
      this.sendRule = false;
      throw new DeprecatedLine();
    }
    if (opt === 'A') this.add |= AUDIT_FILTER_PREPEND;
    this.sendRule = true;
  }

  private lookupFilter(s: string): number | undefined {
    if (s === 'exit') return FilterList.exit;
    if (s === 'task') return FilterList.task;
    if (s === 'user') return FilterList.user;
    if (s === 'exclude') {
      this.exclude = true;
      return FilterList.exclude;
    }
    if (s === 'filesystem') return FilterList.filesystem;
    // Not known to auditctl 3.0.9; the kernel's AUDIT_FILTER_URING_EXIT (5.16+).
    if (s === 'io_uring') return FilterList.io_uring;
    return undefined;
  }

  private syscalls(arg: string): Stop | void {
    const lists = [this.add, this.del].map((l) => (l === FILTER_UNSET ? FILTER_UNSET : l & 7));
    if (lists.includes(FilterList.task)) return new Stop('Error: syscall auditing being added to task list');
    if (lists.includes(FilterList.user)) return new Stop('Error: syscall auditing being added to user list');
    if (lists.includes(FilterList.filesystem))
      return new Stop('Error: syscall auditing being added to filesystem list');
    if (this.exclude) return new Stop('Error: syscall auditing cannot be put on exclude list');
    if (this.st.elf === 0) this.st.elf = machineToElf(HOST_MACHINE);
    if (arg.includes(',')) {
      for (const tok of arg.split(',')) {
        if (tok === '') continue;
        const rc = addSyscall(this.st, tok);
        if (rc === -1) return new Stop(`Syscall name unknown: ${tok}`);
        if (rc === -2) return new Stop(`Elf type unknown: 0x${this.st.elf.toString(16)}`);
      }
    } else {
      const rc = addSyscall(this.st, arg);
      if (rc === -1) return new Stop(`Syscall name unknown: ${arg}`);
      if (rc === -2) return new Stop(`Elf type unknown: 0x${this.st.elf.toString(16)}`);
    }
    this.st.syscallAdded = true;
  }

  private addKey(k: string): Stop | void {
    const cur = Buffer.byteLength(this.key);
    if (Buffer.byteLength(k) + cur + (cur > 0 ? 1 : 0) > AUDIT_MAX_KEY_LEN)
      return new Stop('key option exceeds size limit');
    this.key = cur > 0 ? this.key + KEY_SEP + k : k;
  }

  private perms(a: string): Stop | void {
    if (a.length > 4) return new Stop(`permission ${a} is too long`);
    const bad = [...a].find((c) => !'rwxa'.includes(c.toLowerCase()));
    if (bad !== undefined) return new Stop(`Permission ${bad} isn't supported`);
    const val = permBits(a)!;
    const fields = this.st.fields;
    if (fields.length < 1) return new Stop('Permissions should be preceeded by other fields');
    let done = false;
    for (const f of fields) {
      if (f.field === Field.perm) {
        f.value = val;
        done = true;
      }
    }
    if (!done) {
      if (fields.length >= AUDIT_MAX_FIELDS - 1) return new Stop('Too many fields when adding permissions');
      fields.push({ field: Field.perm, op: Op.EQUAL, value: val });
    }
    this.st.permAdded = true;
  }

  /** -w / -W: a watch is an exit rule on all syscalls with a path (or dir) field and perm=rwxa unless -p narrows it. */
  private watch(path: string): Stop | void {
    this.action = RuleAction.always;
    this.st.syscallAdded = true;
    this.sendRule = true;
    if (Buffer.byteLength(path) >= PATH_MAX) return new Stop('The path passed for the watch is too big');
    if (path[0] !== '/') return new Stop("The path must start with '/'");
    if (Buffer.byteLength(basename(path)) > 255) return new Stop('The base name of the path is too big');
    let p = path;
    if (p.length > 2 && p.endsWith('/')) while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
    let type: number = Field.watch;
    try {
      if (statSync(p).isDirectory()) type = Field.dir;
    } catch {
      // A path that does not exist yet is watched as a file, as auditctl does.
    }
    if (this.st.fields.length > 0) return new Stop('Rule is not empty');
    this.st.mask.fill(0xffffffff);
    this.st.fields = [
      { field: type, op: Op.EQUAL, value: Buffer.byteLength(p), str: p },
      { field: Field.perm, op: Op.EQUAL, value: 15 },
    ];
    this.st.permAdded = true;
  }

  /** -D alone, or "-D -k key"; auditctl allows nothing else on the line. */
  private deleteAll(index: number, cmds: RuleCommand[]): Stop {
    const count = this.words.length + 1;
    if (count > 4 || count === 3) return new Stop('Wrong number of options for Delete all request');
    const base = { pos: this.pos, text: this.text };
    if (count === 4) {
      if (index !== 0 || this.words[1] !== '-k') return new Stop('Only the -k option is allowed');
      const k = Buffer.from(this.words[2]!).subarray(0, AUDIT_MAX_KEY_LEN).toString();
      cmds.push({ kind: 'deleteAll', key: k, ...base });
    } else cmds.push({ kind: 'deleteAll', ...base });
    this.listRequested = true;
    return this.end(this.words.length - 1);
  }
}

/** Thrown through the option loop for "possible" lists, which auditctl drops silently. */
class DeprecatedLine extends Stop {
  constructor() {
    super(null);
  }
}

function lookupAction(s: string): { rc: 0 | 1 | 2; act: number } {
  if (s === 'always') return { rc: 0, act: RuleAction.always };
  if (s === 'never') return { rc: 0, act: RuleAction.never };
  if (s === 'possible') return { rc: 1, act: -1 };
  return { rc: 2, act: -1 };
}

function basename(p: string): string {
  let s = p;
  while (s.length > 1 && s.endsWith('/')) s = s.slice(0, -1);
  const i = s.lastIndexOf('/');
  return i < 0 ? s : s.slice(i + 1);
}
