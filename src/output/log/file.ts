// The live log file: opened without following links in a safe directory, written in full, synced as the flush mode
// asks, sealed read-only when rotated away.
import * as fs from 'node:fs';
import { dirname } from 'node:path';
import { getSystemErrorName } from 'node:util';
import { IoError } from '../../errors';
import { native } from '../../kernel/native';
import { openAppendNoFollow } from '../../safefs';
import { LogDir } from './dir';
import { errText, type FlushMode, type LogReporter } from './types';

export interface LogFileCounters {
  writes: number;
  bytes: number;
  /** fsyncs and fdatasyncs done (a background one counts when it completes). */
  fsyncs: number;
  /** Syncs asked for by the flush mode (a background one counts when asked, even if it joins one in flight). */
  syncRequests: number;
}

/**
 * The process's background fsync thread (native/log_sync.cc), as auditd's flush thread: `open` gives it its own
 * duplicate of a log's descriptor, `take` reads how many completed and the first errno not read before, `request`
 * asks for an fsync (one more after any in progress) and answers as `take` does, in one number (one call per batch),
 * `close` finishes what was asked and gives the last results; nothing wakes the event loop when a sync ends.
 */
export interface Syncer {
  open(fd: number): number;
  /** The syncs completed so far, or -errno for the first failure not read before. */
  request(id: number): number;
  take(id: number): [done: number, errno: number];
  /** Finishes what was asked (the running sync, one asked for and not started), closes, returns the last results. */
  close(id: number): [done: number, errno: number];
}

export const nativeSyncer: Syncer = {
  open: (fd) => native().syncOpen(fd),
  request: (id) => native().syncRequest(id),
  take: (id) => native().syncTake(id),
  close: (id) => native().syncClose(id),
};

/** Owns the descriptor of the live log and the fsyncs on it; the writer owns the buffer that feeds it. */
export class LogFile {
  readonly counters: LogFileCounters = { writes: 0, bytes: 0, fsyncs: 0, syncRequests: 0 };
  private fd = -1;
  /** The file's slot in the background fsync thread (incremental_async), opened at its first request. */
  private syncSlot = -1;
  /** Completed background syncs already counted in `fsyncs`. */
  private syncsTaken = 0;
  /** A background sync's errno read and not reported yet (reported where no rotation is under way). */
  private syncErrno = 0;
  /** Without the addon incremental_async syncs here, in the caller, as incremental does (warned once). */
  private noThread = false;
  /** `group`: gid of log_group; with a non-root group the file is 0640 (0440 once rotated), else 0600 (0400). */
  constructor(
    readonly path: string,
    private readonly group: number | undefined,
    private readonly reporter: LogReporter,
    private readonly syncer: Syncer = nativeSyncer,
    /** The log's directory, held open by the first open: rotation and compression reach their names through it too. */
    readonly dir: LogDir = new LogDir(dirname(path)),
  ) {}

  get isOpen(): boolean {
    return this.fd >= 0;
  }

  /**
   * Where statfs(2) measures this log's file system, as auditd's fstatfs(log_fd): the open file's descriptor, else
   * the held directory, both through /proc. The path would measure whatever is at it now: whoever can rename entries
   * above the log's directory can put theirs there, with an audit.log that leads to /proc (0 blocks free: the disk
   * full action on a disk with room) or nowhere (statfs fails). The path only without /proc.
   */
  get spaceTarget(): string {
    const held = this.dir.held;
    if (held === null) return this.path;
    return this.fd >= 0 ? `/proc/self/fd/${this.fd}` : held;
  }

  /** Opens (creating if needed) for appending and returns the file's size. Throws IoError with an E_LOG_* code. */
  open(): number {
    const path = this.path;
    const group = this.group;
    const mode = group ? 0o640 : 0o600;
    // Whoever else can write in the log's directory can delete or replace the trail, whatever the file's own mode.
    const dir = this.dir.dir;
    try {
      this.dir.open({ owners: [0, process.geteuid?.() ?? 0], what: 'log directory' });
    } catch (e) {
      const hint =
        (e as IoError).code === 'E_UNSAFE_DIR'
          ? ` (make it root's alone: chown root: ${dir} && chmod go-w ${dir}, and check the files in it)`
          : '';
      throw new IoError(`${(e as Error).message}${hint}`, 'E_LOG_DIR_UNSAFE', { cause: e });
    }
    // libuv adds O_CLOEXEC. O_NOFOLLOW, one link only: a name planted at the log path must not redirect root's writes.
    let fd: number;
    let st: fs.Stats;
    try {
      ({ fd, stat: st } = openAppendNoFollow(this.dir.at(path), { mode, what: 'log file' }));
    } catch (e) {
      const code =
        { E_SYMLINK: 'E_LOG_SYMLINK', E_NOT_REGULAR: 'E_LOG_NOT_FILE', E_HARDLINK: 'E_LOG_HARDLINK' }[
          (e as IoError).code
        ] ?? 'E_LOG_OPEN';
      throw new IoError(this.dir.show((e as Error).message), code, { cause: e });
    }
    try {
      fs.fchmodSync(fd, mode);
      if (process.getuid?.() === 0) fs.fchownSync(fd, 0, group ?? 0);
    } catch (e) {
      fs.closeSync(fd);
      throw new IoError(`cannot set owner/permissions of log file ${path}: ${errText(e)}`, 'E_LOG_OPEN', { cause: e });
    }
    this.fd = fd;
    return st.size;
  }

  /**
   * Writes `buf[0..n)` in full. Null when it all went; otherwise how much did before `error` (that part stays in the
   * file, the rest is not written).
   */
  write(buf: Buffer, n: number): { written: number; error: unknown } | null {
    let off = 0;
    try {
      while (off < n) off += fs.writeSync(this.fd, buf, off, n - off);
    } catch (error) {
      return { written: off, error };
    }
    this.counters.writes++;
    this.counters.bytes += n;
    return null;
  }

  /** After a write: fdatasync (data), fsync (sync, incremental), a background fsync (incremental_async), or nothing. */
  sync(mode: FlushMode): void {
    if (mode === 'none') return;
    this.counters.syncRequests++;
    try {
      if (mode === 'data') {
        fs.fdatasyncSync(this.fd);
        this.counters.fsyncs++;
      } else if (mode === 'sync' || mode === 'incremental') {
        fs.fsyncSync(this.fd);
        this.counters.fsyncs++;
      } else if (mode === 'incremental_async') {
        if (this.syncSlot < 0 && !this.noThread) this.openSlot();
        if (this.noThread) {
          fs.fsyncSync(this.fd);
          this.counters.fsyncs++;
          return;
        }
        const r = this.syncer.request(this.syncSlot);
        // A failure comes without the count: read it apart (rare), the failure kept as the one to report.
        if (r >= 0) this.count(r, 0);
        else this.count(this.syncer.take(this.syncSlot)[0], -r);
        // Last: a disk action the error sets off (a rotation) finds this file's state complete.
        this.reportSyncError();
      }
    } catch (e) {
      this.reporter.report('fsync', e, 0);
    }
  }

  private openSlot(): void {
    try {
      this.syncSlot = this.syncer.open(this.fd);
      this.syncsTaken = 0;
    } catch (e) {
      // The addon missing or its thread refused (EAGAIN past a task limit): the promise is kept the slow way.
      this.noThread = true;
      this.reporter.log('warn', `no background fsync thread (${errText(e)}): incremental_async syncs in line`);
    }
  }

  /** The file is being rotated away: read-only for its owner (and log_group), then closed. */
  seal(): void {
    try {
      fs.fchmodSync(this.fd, this.group ? 0o440 : 0o400);
    } catch (e) {
      this.reporter.log('warn', `Couldn't change permissions while rotating log file (${errText(e)})`);
    }
    this.closeQuietly();
    // The old file's last sync failed: told once the rotation is over, so its disk action does not run inside it.
    if (this.syncErrno !== 0) queueMicrotask(() => this.reportSyncError());
  }

  /** fsync and close, the directory too: every byte written is on disk afterwards (failures are reported). */
  close(): void {
    this.release();
    this.dir.close();
  }

  /**
   * fsync and close the file but keep holding its directory: an exec disk action's program may move or compress the
   * file meanwhile, and the next open creates the log again in the directory that was checked.
   */
  release(): void {
    if (this.fd < 0) return;
    this.endSyncs();
    try {
      fs.fsyncSync(this.fd);
      this.counters.fsyncs++;
    } catch (e) {
      this.reporter.report('fsync', e, 0);
    }
    try {
      fs.closeSync(this.fd);
    } catch (e) {
      this.reporter.report('close', e, 0);
    }
    this.fd = -1;
    this.reportSyncError();
  }

  private closeQuietly(): void {
    if (this.fd < 0) return;
    this.endSyncs();
    try {
      fs.closeSync(this.fd);
    } catch {
      // closing a file we are rotating away: nothing useful to do on failure
    }
    this.fd = -1;
  }

  /**
   * Counts the background syncs completed since the last look and keeps the first failure to report. The thread syncs
   * its own duplicate of the descriptor, so a result is always this file's, even after a rotation reused the number.
   * Reading counts (a status) sets off nothing.
   */
  takeSyncs(): void {
    if (this.syncSlot < 0) return;
    this.count(...this.syncer.take(this.syncSlot));
  }

  private count(done: number, errno: number): void {
    this.counters.fsyncs += done - this.syncsTaken;
    this.syncsTaken = done;
    if (errno !== 0 && this.syncErrno === 0) this.syncErrno = errno;
  }

  private reportSyncError(): void {
    const errno = this.syncErrno;
    if (errno === 0) return;
    this.syncErrno = 0;
    this.reporter.report('fsync', syncError(errno), 0);
  }

  /** Before the file is closed: what was asked is finished, its results counted, and the thread's duplicate goes. */
  private endSyncs(): void {
    if (this.syncSlot < 0) return;
    const slot = this.syncSlot;
    this.syncSlot = -1;
    this.count(...this.syncer.close(slot));
  }
}

/** A failed background fsync, shaped as Node's own system errors (code, errno, syscall). */
function syncError(errno: number): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(-errno);
  } catch {
    code = `E${errno}`;
  }
  return Object.assign(new Error(`${code}: background fsync failed (errno ${errno}), fsync`), {
    code,
    errno: -errno,
    syscall: 'fsync',
  });
}
