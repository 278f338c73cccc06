// OCI hook failures kept for the host daemon: the failing-open hook appends one line, the daemon counts and logs them.
import { Buffer } from 'node:buffer';
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { IoError } from '../errors';
import { checkDirSafe, openAppendNoFollow, openReadNoFollow } from '../safefs';
import { cutUtf8, decodeUntrusted, encodeUntrusted } from '../records/encode';

/**
 * Beside the control socket, in the daemon's own root-only runtime directory. A runtime shows a hook's stderr only
 * when the hook fails, so a hook that fails open (exit 0) would otherwise leave no trace anyone sees.
 */
export const HOOK_FAILURES_FILE = 'oci-hook.failures';
/** What the daemon took at one scan and reads at the next (see collectHookFailures). */
export const HOOK_FAILURES_TAKEN = 'oci-hook.failures.taken';
/** Failure lines stop here: a daemon that stays down while containers keep starting cannot fill the disk. */
export const HOOK_FAILURES_MAX = 256 * 1024;
/** Past HOOK_FAILURES_MAX each failure is one `!` line, counted as dropped, up to this many more bytes. */
export const HOOK_DROP_MARKS_MAX = 16 * 1024;
/** A line's container ID and reason are cut so that one line stays below this. */
export const HOOK_FAILURE_LINE_MAX = 1024;
/**
 * The most the daemon reads of one file: hooks that check the size at the same moment can each still append one
 * line past the caps (no lock between separate processes), so the read limit leaves room for 64 of them.
 */
export const HOOK_FAILURES_READ_MAX = HOOK_FAILURES_MAX + HOOK_DROP_MARKS_MAX + 64 * HOOK_FAILURE_LINE_MAX;
const DROP_MARK = '!\n';
/**
 * Caps in UTF-8 bytes, the unit the line is written in: a value is hex-encoded when it holds anything but plain
 * printable ASCII, two characters a byte, so a cap in UTF-16 units would let 300 `€` (900 bytes) become 1800.
 */
export const HOOK_FAILURE_ID_MAX = 128;
export const HOOK_FAILURE_REASON_MAX = 300;
/** The largest time the line carries (15 digits); a later one is written as 0. */
const TIME_MAX = 1e15 - 1;

export type HookPhase = 'create' | 'poststop' | 'unknown';

export interface HookFailure {
  /** When the hook failed (ms since the epoch). */
  time: number;
  /** The container ID from the OCI state, or null when the state could not be read. */
  container: string | null;
  /** The container init's host pid, -1 when unknown. */
  pid: number;
  phase: HookPhase;
  /** `open`: the container ran anyway; `closed` (--fail-closed): the runtime refused it. */
  mode: 'open' | 'closed';
  /** The error's stable code (E_NO_DAEMON, E_TIMEOUT, ...) or null. */
  code: string | null;
  reason: string;
}

/** One line of the file: key=value pairs, every value a container or an error chose encoded (never a space or \n). */
export function formatHookFailure(f: HookFailure): string {
  const code = f.code && /^[A-Z0-9_]{1,40}$/.test(f.code) ? f.code : '?';
  const pid = Number.isSafeInteger(f.pid) && f.pid >= 0 && f.pid <= 4194304 ? f.pid : -1;
  const time = Number.isSafeInteger(f.time) && f.time >= 0 && f.time <= TIME_MAX ? f.time : 0;
  return (
    `v=1 time=${time} phase=${f.phase} pid=${pid} container=${f.container === null ? '?' : encodeUntrusted(cutUtf8(f.container, HOOK_FAILURE_ID_MAX))}` +
    ` mode=${f.mode} code=${code} reason=${encodeUntrusted(cutUtf8(f.reason, HOOK_FAILURE_REASON_MAX))}\n`
  );
}

/**
 * Value lengths as the writer's caps make them: at most 2 characters a byte (hex), or the bytes plus two quotes. The
 * longest line is then 985 bytes with its \n, below HOOK_FAILURE_LINE_MAX (a test builds it).
 */
const LINE_RE = new RegExp(
  '^v=1 time=([0-9]{1,15}) phase=(create|poststop|unknown) pid=(-1|[0-9]{1,7}) ' +
    `container=(\\?|\\S{2,${2 * HOOK_FAILURE_ID_MAX}}) mode=(open|closed) code=(\\?|[A-Z0-9_]{1,40}) ` +
    `reason=(\\S{2,${2 * HOOK_FAILURE_REASON_MAX}})$`,
);

/** Parses one line (without its \n) the hook wrote; null for anything else, whoever wrote it. */
export function parseHookFailure(line: string): HookFailure | null {
  const m = LINE_RE.exec(line);
  if (!m) return null;
  const dec = (s: string): string | null => {
    const b = decodeUntrusted(s);
    return b === null ? null : b.toString('utf8');
  };
  const container = m[4] === '?' ? null : dec(m[4]!);
  const reason = dec(m[7]!);
  if ((m[4] !== '?' && container === null) || reason === null) return null;
  return {
    time: Number(m[1]),
    phase: m[2] as HookPhase,
    pid: Number(m[3]),
    container,
    mode: m[5] as 'open' | 'closed',
    code: m[6] === '?' ? null : m[6]!,
    reason,
  };
}

export type AppendResult = 'written' | 'dropped' | 'full';

/**
 * Appends one failure to `file` (as root, from the hook). The directory must be the daemon's: safe for root (not
 * writable by others) and existing (it is never created here: a wrong --socket must not make directories). The file
 * is opened without following links, must be a regular file with one link, and never grows past the caps.
 */
export function appendHookFailure(file: string, f: HookFailure): AppendResult {
  checkDirSafe(dirname(file), { owners: [0, process.geteuid?.() ?? 0], what: 'control socket directory' });
  const { fd, stat } = openAppendNoFollow(file, { mode: 0o600, what: 'hook failures file' });
  try {
    const line = formatHookFailure(f);
    let text: string;
    let res: AppendResult;
    if (stat.size + line.length <= HOOK_FAILURES_MAX) [text, res] = [line, 'written'];
    else if (stat.size + DROP_MARK.length <= HOOK_FAILURES_MAX + HOOK_DROP_MARKS_MAX)
      [text, res] = [DROP_MARK, 'dropped'];
    else return 'full';
    // One write of a short line to an O_APPEND file: concurrent hooks' lines do not interleave.
    const b = Buffer.from(text, 'latin1');
    if (fs.writeSync(fd, b, 0, b.length) !== b.length)
      throw new IoError(`short write to hook failures file ${file}`, 'E_IO');
    return res;
  } catch (e) {
    if (e instanceof IoError) throw e;
    throw new IoError(
      `cannot write hook failures file ${file} (${(e as NodeJS.ErrnoException).code ?? 'EIO'})`,
      'E_IO',
      {
        cause: e,
      },
    );
  } finally {
    fs.closeSync(fd);
  }
}

export interface HookFailureScan {
  failures: HookFailure[];
  /** Failures the hooks only counted (the file was full). */
  dropped: number;
  /** Lines that are not the hook's (a bad line, a line cut by a crash). */
  malformed: number;
  /** Bytes past HOOK_FAILURES_READ_MAX that were not read. */
  unread: number;
  /** Problems with the files themselves (a symlink or a hard link under the name): for a warning. */
  problems: string[];
}

/** Parses what a failures file held. */
export function parseHookFailures(text: string): Omit<HookFailureScan, 'unread' | 'problems'> {
  const out = { failures: [] as HookFailure[], dropped: 0, malformed: 0 };
  const lines = text.split('\n');
  // The last piece has no \n: empty for a complete file, else a line cut short.
  const last = lines.pop()!;
  if (last !== '') out.malformed++;
  for (const l of lines) {
    if (l === '!') out.dropped++;
    else {
      const f = parseHookFailure(l);
      if (f) out.failures.push(f);
      else out.malformed++;
    }
  }
  return out;
}

function errCode(e: unknown): string {
  const c = (e as { cause?: { code?: string } }).cause?.code ?? (e as NodeJS.ErrnoException).code;
  return c ?? 'EIO';
}

/**
 * The daemon's side, at start and at every scan, in `dir` (the control socket's directory): reads and removes what
 * the previous call took, then takes the current file by renaming it. A hook that opened the file just before the
 * rename still writes into the taken one, which is read only one scan (2 s) later: no line is lost to that race,
 * and no truncation of a file a hook may be appending to is ever needed. Reads are bounded and never follow links.
 */
export function collectHookFailures(dir: string): HookFailureScan {
  const scan: HookFailureScan = { failures: [], dropped: 0, malformed: 0, unread: 0, problems: [] };
  const taken = join(dir, HOOK_FAILURES_TAKEN);
  let opened: { fd: number; stat: fs.Stats } | null = null;
  try {
    opened = openReadNoFollow(taken, 'hook failures file', true);
  } catch (e) {
    scan.problems.push(`${(e as Error).message}; removed`);
  }
  if (opened) {
    try {
      const want = Math.min(opened.stat.size, HOOK_FAILURES_READ_MAX);
      const buf = Buffer.alloc(want);
      let n = 0;
      while (n < want) {
        const r = fs.readSync(opened.fd, buf, n, want - n, n);
        if (r === 0) break;
        n += r;
      }
      scan.unread = Math.max(0, opened.stat.size - n);
      Object.assign(scan, parseHookFailures(buf.subarray(0, n).toString('latin1')));
    } catch (e) {
      scan.problems.push(`cannot read ${taken} (${errCode(e)}); removed`);
    } finally {
      fs.closeSync(opened.fd);
    }
  }
  // Unlink removes the name only (a planted symlink's target is never touched).
  try {
    fs.unlinkSync(taken);
  } catch (e) {
    if (errCode(e) !== 'ENOENT') scan.problems.push(`cannot remove ${taken} (${errCode(e)})`);
  }
  try {
    fs.renameSync(join(dir, HOOK_FAILURES_FILE), taken);
  } catch (e) {
    if (errCode(e) !== 'ENOENT') scan.problems.push(`cannot take ${join(dir, HOOK_FAILURES_FILE)} (${errCode(e)})`);
  }
  return scan;
}
