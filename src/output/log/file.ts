// The live log file: opened without following links in a safe directory, written in full, synced as the flush mode
// asks, sealed read-only when rotated away.
import * as fs from 'node:fs';
import { dirname } from 'node:path';
import { IoError } from '../../errors';
import { checkDirSafe, openAppendNoFollow } from '../../safefs';
import { errText, type FlushMode, type LogReporter } from './types';

export interface LogFileCounters {
  writes: number;
  bytes: number;
  /** fsyncs and fdatasyncs done (a background one counts when it completes). */
  fsyncs: number;
  /** Syncs asked for by the flush mode (a background one counts when asked, even if it joins one in flight). */
  syncRequests: number;
}

/** Owns the descriptor of the live log and the fsyncs on it; the writer owns the buffer that feeds it. */
export class LogFile {
  readonly counters: LogFileCounters = { writes: 0, bytes: 0, fsyncs: 0, syncRequests: 0 };
  private fd = -1;
  /**
   * One more at every open and close. A background fsync's error counts only if the file it was asked for is still
   * the open one: after a rotation the new file often gets the same fd number, and an fsync that ran between the old
   * one's close and the new one's open fails with EBADF, which is no error of the new file (it used to suspend the
   * log through disk_error_action, refusing records in the middle of a rotation).
   */
  private generation = 0;
  private asyncFsyncBusy = false;
  private asyncFsyncAgain = false;

  /** `group`: gid of log_group; with a non-root group the file is 0640 (0440 once rotated), else 0600 (0400). */
  constructor(
    readonly path: string,
    private readonly group: number | undefined,
    private readonly reporter: LogReporter,
  ) {}

  get isOpen(): boolean {
    return this.fd >= 0;
  }

  /** Opens (creating if needed) for appending and returns the file's size. Throws IoError with an E_LOG_* code. */
  open(): number {
    const path = this.path;
    const group = this.group;
    const mode = group ? 0o640 : 0o600;
    // Whoever else can write in the log's directory can delete or replace the trail, whatever the file's own mode.
    const dir = dirname(path);
    try {
      checkDirSafe(dir, { owners: [0, process.geteuid?.() ?? 0], what: 'log directory' });
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
      ({ fd, stat: st } = openAppendNoFollow(path, { mode, what: 'log file' }));
    } catch (e) {
      const code =
        { E_SYMLINK: 'E_LOG_SYMLINK', E_NOT_REGULAR: 'E_LOG_NOT_FILE', E_HARDLINK: 'E_LOG_HARDLINK' }[
          (e as IoError).code
        ] ?? 'E_LOG_OPEN';
      throw new IoError((e as Error).message, code, { cause: e });
    }
    try {
      fs.fchmodSync(fd, mode);
      if (process.getuid?.() === 0) fs.fchownSync(fd, 0, group ?? 0);
    } catch (e) {
      fs.closeSync(fd);
      throw new IoError(`cannot set owner/permissions of log file ${path}: ${errText(e)}`, 'E_LOG_OPEN', { cause: e });
    }
    this.fd = fd;
    this.generation++;
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
        this.asyncFsync();
      }
    } catch (e) {
      this.reporter.report('fsync', e, 0);
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
  }

  /** fsync and close: every byte written is on disk afterwards (failures are reported). */
  close(): void {
    if (this.fd < 0) return;
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
    this.generation++;
  }

  private closeQuietly(): void {
    if (this.fd < 0) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      // closing a file we are rotating away: nothing useful to do on failure
    }
    this.fd = -1;
    this.generation++;
  }

  // At most one fsync in flight; requests during it coalesce into one more, as auditd's flush thread loops.
  private asyncFsync(): void {
    if (this.asyncFsyncBusy) {
      this.asyncFsyncAgain = true;
      return;
    }
    this.asyncFsyncBusy = true;
    const generation = this.generation;
    fs.fsync(this.fd, (err) => {
      this.asyncFsyncBusy = false;
      if (err) {
        if (generation === this.generation) this.reporter.report('fsync', err, 0);
      } else this.counters.fsyncs++;
      if (this.asyncFsyncAgain && this.fd >= 0) {
        this.asyncFsyncAgain = false;
        this.asyncFsync();
      }
    });
  }
}
