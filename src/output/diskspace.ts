// auditd.conf's disk-space handling (space_left, admin_space_left, disk_full, disk_error) as a check plus a guard.
import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import { defaultDiskSpace, type DiskAction, type DiskSpaceConfig, type SpaceThreshold } from '../config/schema';
import type { Diag } from './output';
import { AUDIT_SID_UNSET, AUDIT_UID_UNSET } from '../kernel/constants';
import { programTrustProblem } from '../trust';

const MiB = 1024 * 1024;
/** auditd never consumes the last 5 blocks: below that the disk counts as full. */
const MIN_FREE_BLOCKS = 5;

export type DiskLevel = 'ok' | 'space_left' | 'admin_space_left' | 'disk_full';

export interface DiskSpaceState {
  spaceWarned: boolean;
  adminWarned: boolean;
  /** Consecutive disk_error syslog warnings (auditd stops at 5). */
  errorWarnings: number;
  fullHandled: boolean;
}

export interface DiskCheck {
  level: DiskLevel;
  /** What to do now; 'none' when the level was already handled (actions other than syslog fire once). */
  action: DiskAction | 'none';
  /** exec path for action 'exec'. */
  exe: string | null;
  freeBytes: number;
  totalBytes: number;
  message: string;
  /** Set when statfs failed (its error code): nothing is known of the space, level and action say nothing. */
  unreadable?: string;
}

/** Reads a file system's free and total blocks (statfs); replaceable so tests can stage any level. */
export type FreeSpaceReader = (path: string) => Pick<fs.StatsFs, 'bavail' | 'bsize' | 'blocks'>;

export function newDiskSpaceState(): DiskSpaceState {
  return { spaceWarned: false, adminWarned: false, errorWarnings: 0, fullHandled: false };
}

/** Threshold in bytes for a file system of `totalBytes`. */
export function thresholdBytes(t: SpaceThreshold, totalBytes: number): number {
  return t.unit === '%' ? Math.floor((totalBytes * t.value) / 100) : t.value * MiB;
}

/** Parses auditd's value syntax: `75` or `75MiB` (MiB) or `25%`. Returns a reason string when it is not valid. */
export function parseSpaceThreshold(text: string): SpaceThreshold | string {
  const m = /^\s*([0-9]{1,10})\s*(MiB|M|%)?\s*$/.exec(text);
  if (!m) return `"${text.slice(0, 40)}" is not a size: write MiB as a number (75, 75MiB) or a percentage (25%)`;
  const value = Number(m[1]);
  if (m[2] === '%') {
    if (value > 99) return `${value}% is not a percentage below 100`;
    return { value, unit: '%' };
  }
  return { value, unit: 'MiB' };
}

/**
 * One free-space check of the file system holding `path`, as auditd's check_space_left does, updating `state` so each
 * level's action fires once (auditd re-arms only levels whose action is syslog once space comes back).
 * Throws nothing: an unreadable statfs is level 'ok' and action 'none', with `unreadable` set.
 */
export function checkDiskSpace(
  path: string,
  cfg: DiskSpaceConfig | undefined,
  state: DiskSpaceState,
  statfs: FreeSpaceReader = fs.statfsSync,
): DiskCheck {
  const c = cfg ?? defaultDiskSpace();
  let st: ReturnType<FreeSpaceReader>;
  try {
    st = statfs(path);
  } catch (e) {
    return {
      level: 'ok',
      action: 'none',
      exe: null,
      freeBytes: -1,
      totalBytes: -1,
      message: `statfs ${path}: ${String(e)}`,
      unreadable: (e as NodeJS.ErrnoException).code ?? String(e),
    };
  }
  const free = st.bavail * st.bsize;
  const total = st.blocks * st.bsize;
  const base = { freeBytes: free, totalBytes: total };
  if (st.bavail < MIN_FREE_BLOCKS) {
    if (state.fullHandled) return { ...base, level: 'disk_full', action: 'none', exe: null, message: 'disk full' };
    state.fullHandled = true;
    return {
      ...base,
      level: 'disk_full',
      action: c.diskFullAction,
      exe: c.diskFullExe,
      message: 'Audit daemon has no space left on logging partition',
    };
  }
  state.fullHandled = false;
  const adminT = thresholdBytes(c.adminSpaceLeft, total);
  const spaceT = thresholdBytes(c.spaceLeft, total);
  let out: DiskCheck = { ...base, level: 'ok', action: 'none', exe: null, message: '' };
  if (free < spaceT) {
    out = {
      ...base,
      level: 'space_left',
      action: 'none',
      exe: null,
      message: 'Audit daemon is low on disk space for logging',
    };
    if (!state.spaceWarned) {
      state.spaceWarned = true;
      out.action = c.spaceLeftAction;
      out.exe = c.spaceLeftExe;
    }
  } else if (state.spaceWarned && c.spaceLeftAction === 'syslog') {
    state.spaceWarned = false;
  }
  if (free < adminT) {
    // The admin level wins when both are crossed at once; the space_left level stays marked as handled.
    const msg = 'Audit daemon is very low on disk space for logging';
    if (!state.adminWarned) {
      state.adminWarned = true;
      return {
        ...base,
        level: 'admin_space_left',
        action: c.adminSpaceLeftAction,
        exe: c.adminSpaceLeftExe,
        message: msg,
      };
    }
    return { ...base, level: 'admin_space_left', action: out.action, exe: out.exe, message: msg };
  } else if (state.adminWarned && c.adminSpaceLeftAction === 'syslog') {
    state.adminWarned = false;
  }
  return out;
}

/** disk_full_action / disk_error_action for a failed write (ENOSPC is "full", anything else an error). */
export function diskErrorAction(code: string, cfg: DiskSpaceConfig | undefined, state: DiskSpaceState): DiskCheck {
  const c = cfg ?? defaultDiskSpace();
  const base = { freeBytes: -1, totalBytes: -1 };
  if (code === 'ENOSPC') {
    if (state.fullHandled) return { ...base, level: 'disk_full', action: 'none', exe: null, message: 'disk full' };
    state.fullHandled = true;
    return {
      ...base,
      level: 'disk_full',
      action: c.diskFullAction,
      exe: c.diskFullExe,
      message: 'Audit daemon has no space left on logging partition',
    };
  }
  let action: DiskAction | 'none' = c.diskErrorAction;
  if (action === 'syslog') {
    if (state.errorWarnings >= 5) action = 'none';
    state.errorWarnings++;
  }
  return {
    ...base,
    level: 'ok',
    action,
    exe: c.diskErrorExe,
    message: `Audit daemon detected an error writing an event to disk (${code})`,
  };
}

/**
 * exec, single and halt as auditd runs them: exec forks the configured program (its exit is not waited for);
 * single and halt ask init to change run level (`/sbin/init 1` / `/sbin/init 0`), which really stops the machine.
 */
export function runAdminAction(action: string, exe: string | null, diag: Diag): void {
  let cmd: string;
  let args: string[];
  if (action === 'exec') {
    if (!exe) {
      diag.error({ action }, 'exec action without a program');
      return;
    }
    // auditd's check_exe_name, done at every run and over the whole path: a program that anyone but root can change
    // (or swap through a symlink or a writable directory) would be run as root.
    const untrusted = programTrustProblem(exe);
    if (untrusted) {
      diag.error(
        { action, cmd: exe, reason: untrusted },
        'exec action refused: only root may be able to change the program',
      );
      return;
    }
    cmd = exe;
    args = [];
  } else if (action === 'single' || action === 'halt') {
    diag.error(
      { action },
      action === 'single'
        ? 'The audit daemon is now changing the system to single user mode'
        : 'The audit daemon is now halting the system',
    );
    cmd = '/sbin/init';
    args = [action === 'single' ? '1' : '0'];
  } else {
    diag.error({ action }, 'unknown action');
    return;
  }
  try {
    // auditd's safe_exec: execve(exe, argv, NULL), descriptors past stderr closed (libuv opens them O_CLOEXEC).
    const child = spawn(cmd, args, { stdio: 'ignore', detached: false, env: {}, cwd: '/' });
    child.on('error', (e) => diag.error({ action, cmd, err: String(e) }, 'action failed to start'));
    child.unref();
  } catch (e) {
    diag.error({ action, cmd, err: String(e) }, 'action failed to start');
  }
}

/** The part of LogWriter a guard drives; LogWriter satisfies it as is. */
export interface GuardedWriter {
  /** `closeFile`: sync and close the log too (exec actions); resume() opens it again. */
  suspend(closeFile?: boolean): void;
  resume(): void;
  rotateNow(by: { auid: number; uid: number; ses: number; pid: number }): void;
  flush(): void;
  readonly isSuspended: boolean;
  readonly counters: { lost: number };
  /** What statfs measures the log's file system through (LogWriter's open log); none: the log's path. */
  readonly spaceTarget?: string;
}

/**
 * Applies disk-space results to a log writer: the LogWriter owner calls afterFlush() after each batch flush and
 * onWriteError(code) from LogWriter's onError. A full disk suspends or rotates, never throws; records the writer
 * refuses while suspended are counted in writer.counters.lost.
 */
export class DiskSpaceGuard {
  readonly state = newDiskSpaceState();
  readonly counters = { checks: 0, actions: 0 };
  lastAction: DiskAction | 'none' = 'none';
  lastLevel: DiskLevel = 'ok';
  /** The last statfs failed and was said (once, until one succeeds again). */
  private unreadableSaid = false;

  constructor(
    private readonly logPath: string,
    private readonly cfg: DiskSpaceConfig | undefined,
    private readonly writer: GuardedWriter,
    private readonly diag: Diag,
    private readonly numLogs = 5,
    private readonly statfs: FreeSpaceReader = fs.statfsSync,
  ) {
    // auditd refuses to start over an untrusted *_exe; the guard has no config position, so it says so at once
    // instead of when the disk fills up (the program is checked, and refused, again then).
    const c = cfg ?? defaultDiskSpace();
    const exes: [string, DiskAction, string | null][] = [
      ['space_left_exe', c.spaceLeftAction, c.spaceLeftExe],
      ['admin_space_left_exe', c.adminSpaceLeftAction, c.adminSpaceLeftExe],
      ['disk_full_exe', c.diskFullAction, c.diskFullExe],
      ['disk_error_exe', c.diskErrorAction, c.diskErrorExe],
    ];
    for (const [key, action, exe] of exes) {
      const reason = action === 'exec' && exe ? programTrustProblem(exe) : null;
      if (reason)
        diag.error({ path: logPath, key, exe, reason }, `${key} will not be run: only root may be able to change it`);
    }
  }

  afterFlush(): DiskCheck {
    this.counters.checks++;
    // Through the log the writer holds, as auditd's fstatfs(log_fd), never the path: see LogFile.spaceTarget.
    const r = checkDiskSpace(this.writer.spaceTarget ?? this.logPath, this.cfg, this.state, this.statfs);
    if (r.unreadable !== undefined) {
      // Unknown is not "ok": the last level stands, and the operator hears of it once (auditd logs at debug level).
      if (!this.unreadableSaid) {
        this.unreadableSaid = true;
        this.diag.warn(
          { path: this.logPath, err: r.unreadable },
          "Audit daemon cannot read the free space of the log's file system; its space levels are not checked",
        );
      }
      return r;
    }
    this.unreadableSaid = false;
    this.lastLevel = r.level;
    this.apply(r);
    return r;
  }

  onWriteError(code: string): DiskCheck {
    const r = diskErrorAction(code, this.cfg, this.state);
    this.apply(r);
    return r;
  }

  /** After SIGUSR2: re-arm every level, as auditd's resume_logging does. */
  resume(): void {
    this.state.spaceWarned = false;
    this.state.adminWarned = false;
    this.state.fullHandled = false;
    this.state.errorWarnings = 0;
    this.writer.resume();
  }

  private apply(r: DiskCheck): void {
    if (r.action === 'none') return;
    this.counters.actions++;
    this.lastAction = r.action;
    const info = {
      path: this.logPath,
      level: r.level,
      action: r.action,
      freeBytes: r.freeBytes,
      lost: this.writer.counters.lost,
    };
    switch (r.action) {
      case 'ignore':
        return;
      case 'syslog':
        this.diag.warn(info, r.message);
        return;
      case 'rotate':
      case 'keep_logs':
        if (this.numLogs > 1) {
          this.diag.warn(info, 'Audit daemon rotating log files');
          // Once, as auditd: the level stays handled until a resume (only syslog re-arms when space comes back, in
          // checkDiskSpace). Re-armed here, a disk kept low by someone else (a tenant's log on the same file system)
          // rotated at every check, once a second: every rotated log was gone after num_logs - 1 checks, nothing
          // freed. Re-armed when space comes back, a tenant freeing and filling space in turn would do the same.
          this.writer.rotateNow({ auid: AUDIT_UID_UNSET, uid: 0, ses: AUDIT_SID_UNSET, pid: process.pid });
        }
        return;
      case 'suspend':
        this.diag.error(info, `${r.message}; Audit daemon is suspending logging`);
        this.writer.suspend();
        return;
      case 'exec':
        // auditd closes the log so the program can move or compress it; logging resumes on SIGUSR2, in a new file.
        this.diag.error(info, `${r.message}; running ${r.exe ?? '(none)'}`);
        this.writer.suspend(true);
        runAdminAction('exec', r.exe, this.diag);
        return;
      default:
        runAdminAction(r.action, r.exe, this.diag);
    }
  }
}
