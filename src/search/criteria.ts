// Search criteria as ausearch combines them (all must hold, each satisfied by any record of the event), compiled to
// byte tests.
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors';
import { parseContidSelector, contidSelectorsMatch } from '../contid/selectors';
import type { ContidPattern } from '../contid/selectors';
import { parseChains } from '../contid/chain';
import { decodeKeys } from '../records/fields';
import { msgTypeName, recordTypeNumber, writerTypeName } from '../vocab/msgtypes';
import { HOST_MACHINE, Machine } from '../vocab/arch';
import { syscallName, syscallNumber } from '../vocab/syscalls';
import { cachedAccounts } from '../vocab/accounts';
import { AUDIT_UID_UNSET } from '../kernel/constants';
import { firstField, fieldString, recordTypeName, someField, type LineHeader } from './logline';

/** What the command line asked for, before compiling. */
export interface CriteriaSpec {
  contid?: string;
  key?: string;
  message?: string;
  pid?: string;
  ppid?: string;
  uid?: string;
  /** ausearch -ua: uid, euid or auid. */
  uidAll?: string;
  /** ausearch -ul: auid only. */
  auid?: string;
  exe?: string;
  syscall?: string;
  success?: string;
  start?: string[];
  end?: string[];
  event?: string;
  /** ausearch -w: strings (key, executable) must match whole, not in part. */
  word?: boolean;
  /**
   * Contids of the containers `--container-name`, `--image` and `--k8s-namespace` selected (from the logs' birth
   * records): an event matches when a chain's own id is one of them. Empty: nothing matches.
   */
  containerIds?: readonly bigint[];
}

/** A per-record test; `line` is the whole line, [h.bodyStart, h.bodyEnd) its fields. */
type RecordTest = (line: Buffer, h: LineHeader) => boolean;

export interface Criteria {
  /** Number of record-level criteria; an event matches when all of their bits are set (and `final` agrees). */
  readonly count: number;
  readonly tests: readonly RecordTest[];
  /** Byte strings of which a record must contain at least one for tests[i] to be worth running. */
  readonly prefilters: readonly (readonly Buffer[] | null)[];
  /** Stamp-level test: time range and serials, decided once per event. */
  stamp(sec: number, ms: number, serial: number): boolean;
  /** The contid criterion needs whole-event knowledge ("unset" = no CONTAINER_ID record at all). */
  readonly contid: ContidCriterion | null;
  /** Index of the contid bit in `tests`, or -1. */
  readonly contidIndex: number;
  readonly empty: boolean;
}

export interface ContidCriterion {
  patterns: ContidPattern[];
  wantsUnset: boolean;
}

/** Tells whether a CONTAINER_ID / CONTAINER_OP record's chains match, and whether the record carries a set id. */
export function contidOfRecord(line: Buffer, h: LineHeader, type: string): bigint[][] | null {
  if (type === 'CONTAINER_ID') {
    const v = firstField(line, h.bodyStart, h.bodyEnd, 'contid');
    return v === undefined ? null : parseChains(v);
  }
  if (type === 'CONTAINER_OP') {
    // A drop says contid=-1 and names the container in old-contid; a set names the new id in contid.
    const v = firstField(line, h.bodyStart, h.bodyEnd, 'contid');
    if (v !== undefined && v !== '-1') return parseChains(v);
    const o = firstField(line, h.bodyStart, h.bodyEnd, 'old-contid');
    return o === undefined || o === '-1' ? null : parseChains(o);
  }
  return null;
}

function intList(what: string, text: string, allowNames?: (s: string) => number | undefined): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const p = part.trim();
    if (/^-?[0-9]{1,10}$/.test(p)) {
      out.add(Number(p));
      continue;
    }
    const n = allowNames?.(p);
    if (n === undefined)
      throw new UsageError(`${what}: "${p}" is not ${allowNames ? 'a number or a known name' : 'a number'}`);
    out.add(n);
  }
  return out;
}

function userId(name: string): number | undefined {
  return cachedAccounts('/etc/passwd', 'passwd')?.named(name)?.id;
}

/** Any `name=` field in the record whose value is one of ids. */
function numericFieldTest(names: readonly string[], ids: Set<number>): RecordTest {
  return (line, h) => {
    for (const name of names) {
      if (someField(line, h.bodyStart, h.bodyEnd, name, (raw) => ids.has(Number(raw)))) return true;
    }
    return false;
  };
}

/** Serial list: `123`, `100-200`, comma separated. */
export function parseSerials(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const part of text.split(',')) {
    const m = /^\s*([0-9]{1,15})\s*(?:-\s*([0-9]{1,15})\s*)?$/.exec(part);
    if (!m) throw new UsageError(`--event: "${part}" is not an event serial or a range LO-HI`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new UsageError(`--event: range ${part.trim()} is empty`);
    out.push([lo, hi]);
  }
  return out;
}

function archMachine(raw: string | undefined): number {
  if (raw === 'c000003e') return Machine.X86_64;
  if (raw === '40000003') return Machine.X86;
  return HOST_MACHINE;
}

export function compileCriteria(
  spec: CriteriaSpec,
  now: Date = new Date(),
  bootTime: () => number = readBootTime,
): Criteria {
  const tests: RecordTest[] = [];
  const prefilters: (Buffer[] | null)[] = [];
  let contid: ContidCriterion | null = null;
  let contidIndex = -1;

  if (spec.key !== undefined) {
    const key = spec.key;
    if (key.length === 0) throw new UsageError('-k: the key is empty');
    const exact = spec.word === true;
    // Without -w ausearch matches a part of a key (-k k-1 finds k-10). A record names one key as key="k"; several keys
    // of one rule come hex-joined, so the key's text or its hex form must be somewhere in the line.
    const plain = Buffer.from(exact ? `key="${key}"` : key, 'latin1');
    const hex = Buffer.from(Buffer.from(key, 'latin1').toString('hex').toUpperCase(), 'latin1');
    prefilters.push([plain, hex]);
    tests.push((line, h) =>
      someField(line, h.bodyStart, h.bodyEnd, 'key', (raw) => {
        if (raw === '(null)') return false;
        for (const k of decodeKeys(raw)) if (exact ? k === key : k.includes(key)) return true;
        return false;
      }),
    );
  }

  if (spec.message !== undefined) {
    // As ausearch -m: a comma list of names in any case, numbers, UNKNOWN[n] or ALL; empty items are skipped. The
    // one lookup (recordTypeNumber) also takes auditmux's CONTAINER_ID and CONTAINER_OP, as `route test -m` does.
    const want = new Set<string>();
    let all = false;
    let items = 0;
    for (const part of spec.message.split(',')) {
      const t = part.trim();
      if (t === '') continue;
      items++;
      if (t.toUpperCase() === 'ALL') {
        all = true;
        continue;
      }
      const n = recordTypeNumber(t);
      if (n === undefined)
        throw new UsageError(
          `-m: ${JSON.stringify(t.slice(0, 60))} is not a record type (a name such as SYSCALL or CONTAINER_ID, a number 1-65535, or ALL)`,
        );
      else if (/^(?:[0-9]+|UNKNOWN\[[0-9]+\])$/i.test(t)) for (const name of typeNames(n)) want.add(name);
      // A name matches records written under that name (URINGOP and CONTAINER_ID share 1336 but are told apart).
      else want.add(t.toUpperCase());
    }
    if (items === 0) throw new UsageError('-m: no record type given');
    if (!all) {
      tests.push((line, h) => want.has(recordTypeName(line, h)));
      prefilters.push(null);
    }
  }

  if (spec.pid !== undefined) {
    tests.push(numericFieldTest(['pid'], intList('-p', spec.pid)));
    prefilters.push([Buffer.from(' pid=', 'latin1')]);
  }
  if (spec.ppid !== undefined) {
    tests.push(numericFieldTest(['ppid'], intList('-pp', spec.ppid)));
    prefilters.push([Buffer.from(' ppid=', 'latin1')]);
  }
  if (spec.uid !== undefined) {
    tests.push(numericFieldTest(['uid'], intList('-ui', spec.uid, userId)));
    prefilters.push([Buffer.from('uid=', 'latin1')]);
  }
  if (spec.uidAll !== undefined) {
    tests.push(numericFieldTest(['uid', 'euid', 'auid'], intList('-ua', spec.uidAll, userId)));
    prefilters.push([Buffer.from('uid=', 'latin1')]);
  }
  if (spec.auid !== undefined) {
    tests.push(
      numericFieldTest(
        ['auid'],
        intList('-ul', spec.auid, (s) => (s === 'unset' ? AUDIT_UID_UNSET : userId(s))),
      ),
    );
    prefilters.push([Buffer.from(' auid=', 'latin1')]);
  }
  if (spec.exe !== undefined) {
    const exe = spec.exe;
    if (exe.length === 0) throw new UsageError('-x: the executable is empty');
    // ausearch matches a part of the path unless -w; hex-encoded paths (with spaces) are decoded first.
    const exact = spec.word === true;
    tests.push((line, h) =>
      someField(line, h.bodyStart, h.bodyEnd, 'exe', (raw) => {
        const v = fieldString('', 'exe', raw);
        return exact ? v === exe : v.includes(exe);
      }),
    );
    prefilters.push([Buffer.from('exe=', 'latin1')]);
  }
  if (spec.syscall !== undefined) {
    const nums = new Set<number>();
    const names = new Set<string>();
    for (const part of spec.syscall.split(',')) {
      const t = part.trim();
      if (/^[0-9]{1,4}$/.test(t)) nums.add(Number(t));
      else if (syscallNumber(t, Machine.X86_64) !== undefined || syscallNumber(t, Machine.X86) !== undefined)
        names.add(t);
      else throw new UsageError(`-sc: "${t}" is not a syscall name or number`);
    }
    tests.push((line, h) => {
      if (recordTypeName(line, h) !== 'SYSCALL') return false;
      const raw = firstField(line, h.bodyStart, h.bodyEnd, 'syscall');
      if (raw === undefined) return false;
      const nr = Number(raw);
      if (nums.has(nr)) return true;
      if (names.size === 0) return false;
      const name = syscallName(nr, archMachine(firstField(line, h.bodyStart, h.bodyEnd, 'arch')));
      return name !== undefined && names.has(name);
    });
    prefilters.push([Buffer.from(' syscall=', 'latin1')]);
  }
  if (spec.success !== undefined) {
    const s = spec.success.toLowerCase();
    if (s !== 'yes' && s !== 'no') throw new UsageError(`-sv: expected yes or no, got "${spec.success}"`);
    const yes = s === 'yes';
    tests.push((line, h) => {
      const v = firstField(line, h.bodyStart, h.bodyEnd, 'success');
      if (v !== undefined) return (v === 'yes') === yes;
      const r = firstField(line, h.bodyStart, h.bodyEnd, 'res');
      if (r === undefined) return false;
      const ok = r === 'success' || r === '1' || r === "success'";
      const failed = r === 'failed' || r === '0' || r === "failed'";
      return yes ? ok : failed;
    });
    prefilters.push([Buffer.from('success=', 'latin1'), Buffer.from(' res=', 'latin1')]);
  }
  if (spec.contid !== undefined) {
    const patterns: ContidPattern[] = [];
    for (const part of spec.contid.split(',')) {
      const p = parseContidSelector(part);
      if (typeof p === 'string') throw new UsageError(`--contid: ${p}`);
      patterns.push(p);
    }
    contid = { patterns, wantsUnset: patterns.some((p) => p.kind === 'unset') };
    contidIndex = tests.length;
    tests.push((line, h) => {
      const type = recordTypeName(line, h);
      const chains = contidOfRecord(line, h, type);
      if (!chains) return false;
      return chains.some((c) => contidSelectorsMatch(patterns, c));
    });
    prefilters.push([Buffer.from('contid=', 'latin1')]);
  }
  if (spec.containerIds !== undefined) {
    const ids = new Set(spec.containerIds);
    tests.push((line, h) => {
      const chains = contidOfRecord(line, h, recordTypeName(line, h));
      return chains !== null && chains.some((c) => c.length > 0 && ids.has(c[0]!));
    });
    prefilters.push([Buffer.from('contid=', 'latin1')]);
  }

  let startMs = -Infinity;
  let endMs = Infinity;
  if (spec.start) startMs = parseTime(spec.start, 'start', now, bootTime);
  if (spec.end) endMs = parseTime(spec.end, 'end', now, bootTime);
  const serials = spec.event !== undefined ? parseSerials(spec.event) : null;
  const stamp = (sec: number, ms: number, serial: number): boolean => {
    const t = sec * 1000 + ms;
    if (t < startMs || t > endMs) return false;
    if (serials) {
      for (const [lo, hi] of serials) if (serial >= lo && serial <= hi) return true;
      return false;
    }
    return true;
  };
  const empty = tests.length === 0 && !spec.start && !spec.end && !serials;
  return { count: tests.length, tests, prefilters, stamp, contid, contidIndex, empty };
}

/**
 * Every name a record of type `n` may carry in a log: libaudit's (or UNKNOWN[n]), UNKNOWN[n] as an older libaudit
 * wrote it, and the name auditmux writes for its own types (CONTAINER_ID, CONTAINER_OP).
 */
function typeNames(n: number): Set<string> {
  return new Set([msgTypeName(n), `UNKNOWN[${n}]`, writerTypeName(n, true)]);
}

function readBootTime(): number {
  const text = readFileSync('/proc/stat', 'latin1');
  const m = /^btime (\d+)$/m.exec(text);
  if (!m) throw new UsageError('boot: /proc/stat has no btime line');
  return Number(m[1]) * 1000;
}

const WORDS = [
  'now',
  'recent',
  'boot',
  'today',
  'yesterday',
  'this-week',
  'week-ago',
  'this-month',
  'this-year',
] as const;

function midnight(d: Date): Date {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate());
}

/**
 * `-ts`/`-te` arguments in ausearch's forms: a word, or [date] [time] in local time. Dates: MM/DD/YYYY, MM/DD/YY
 * (the C locale's %x, what ausearch accepts here) or YYYY-MM-DD; times HH:MM[:SS]. A missing date is today; a missing
 * time is midnight for a start and now for an end. Also `@EPOCH[.mmm]`. Returns epoch milliseconds.
 */
export function parseTime(
  args: string[],
  which: 'start' | 'end',
  now: Date,
  bootTime: () => number = readBootTime,
): number {
  const flag = which === 'start' ? '-ts' : '-te';
  if (args.length === 0 || args.length > 2) throw new UsageError(`${flag}: expected a word, or [date] [time]`);
  const first = args[0]!;
  if (args.length === 1 && (WORDS as readonly string[]).includes(first)) {
    switch (first) {
      case 'now':
        return now.getTime();
      case 'recent':
        return now.getTime() - 10 * 60 * 1000;
      case 'boot':
        return bootTime();
      case 'today':
        // ausearch: a start of "today" is midnight; an end of "today" is now
        return which === 'end' ? now.getTime() : midnight(now).getTime();
      case 'yesterday':
        return new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1).getTime();
      case 'this-week':
        return new Date(now.getFullYear(), now.getMonth(), now.getDate() - now.getDay()).getTime();
      case 'week-ago':
        return new Date(now.getFullYear(), now.getMonth(), now.getDate() - 7).getTime();
      case 'this-month':
        return new Date(now.getFullYear(), now.getMonth(), 1).getTime();
      case 'this-year':
        return new Date(now.getFullYear(), 0, 1).getTime();
    }
  }
  if (args.length === 1) {
    const e = /^@([0-9]{1,12})(?:\.([0-9]{1,3}))?$/.exec(first);
    if (e) return Number(e[1]) * 1000 + (e[2] ? Number(e[2].padEnd(3, '0')) : 0);
  }
  let date: [number, number, number] | null = null;
  let time: [number, number, number] | null = null;
  for (const a of args) {
    const d = parseDate(a);
    if (d) {
      if (date) throw new UsageError(`${flag}: two dates given`);
      date = d;
      continue;
    }
    const t = /^([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?$/.exec(a);
    if (t) {
      if (time) throw new UsageError(`${flag}: two times given`);
      const hh = Number(t[1]),
        mm = Number(t[2]),
        ss = t[3] ? Number(t[3]) : 0;
      if (hh > 23 || mm > 59 || ss > 60) throw new UsageError(`${flag}: "${a}" is not a valid time`);
      time = [hh, mm, ss];
      continue;
    }
    throw new UsageError(
      `${flag}: "${a}" is not a date (MM/DD/YYYY, YYYY-MM-DD), a time (HH:MM:SS), @EPOCH or one of ${WORDS.join(', ')}`,
    );
  }
  if (date && args.length === 2 && !time) throw new UsageError(`${flag}: expected a date then a time`);
  const [y, mo, d] = date ?? [now.getFullYear(), now.getMonth() + 1, now.getDate()];
  if (!time) {
    if (which === 'end' && !date) return now.getTime();
    time = which === 'end' ? [23, 59, 59] : [0, 0, 0];
  }
  const r = new Date(y, mo - 1, d, time[0], time[1], time[2]);
  if (r.getMonth() !== mo - 1 || r.getDate() !== d)
    throw new UsageError(`${flag}: ${args.join(' ')} is not a calendar date`);
  // An end time names a whole second: events in its last millisecond are still "at or before" it.
  return r.getTime() + (which === 'end' ? 999 : 0);
}

function parseDate(a: string): [number, number, number] | null {
  let m = /^([0-9]{1,2})\/([0-9]{1,2})\/([0-9]{2}|[0-9]{4})$/.exec(a);
  if (m) {
    let y = Number(m[3]);
    // strptime %y: 69-99 are 1900s, 00-68 are 2000s
    if (m[3]!.length === 2) y += y < 69 ? 2000 : 1900;
    return [y, Number(m[1]), Number(m[2])];
  }
  m = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/.exec(a);
  if (m) return [Number(m[1]), Number(m[2]), Number(m[3])];
  return null;
}
