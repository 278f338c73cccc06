// Log rotation as auditd does it (rotate_logs, shift_logs for keep_logs, check_excess_logs), plus hourly or daily
// rotation: which names move where, never through a planted link.
import * as fs from 'node:fs';
import { lstatOrNull, openNoFollow } from '../../safefs';
import type { LogCompressor } from './compress';
import type { LogFile } from './file';
import type { LogDir } from './dir';
import { errText, type LogReporter, type MaxLogFileAction } from './types';

export interface LogRotationOptions {
  /** The live log; rotated logs are `path.1`, `path.2`... (`.gz` when compressed). */
  path: string;
  /** The log's directory as the live file holds it: every name is reached through it (names in messages are paths). */
  dir: LogDir;
  numLogs: number;
  /** gid of log_group (a live log that cannot be renamed keeps 0640 with one, 0600 without). */
  logGroupGid?: number;
  /** Also rotate when the hour or the (local) day changes. */
  rotateInterval?: 'hourly' | 'daily';
  /** Compresses `path.1` after each rotation; none = rotated logs stay plain. */
  compressor?: LogCompressor;
  now: () => number;
}

/** Owns the rotated names: the rename chain, the highest kept number (keep_logs) and the current period. */
export class LogRotation {
  rotations = 0;
  private lastLog = 1;
  private period = '';

  constructor(
    private readonly opts: LogRotationOptions,
    private readonly reporter: LogReporter,
  ) {}

  rotatedName(i: number): string {
    return `${this.opts.path}.${i}`;
  }

  /**
   * rotate_logs(): .N-2 -> .N-1 ... .1 -> .2, then seals and closes the live file and renames it to .1, with n = 0
   * the configured num_logs. False when the live file was not touched (rotation disabled, or a step of the chain
   * failed): it is still open and written on. True: the caller reopens the live file (a new one, or the same one when
   * log -> .1 failed). `keep` (keep_logs, n from keepNumber) rotates whatever num_logs says, as auditd 3.0.9's
   * rotate_logs(n, keep_logs) does (refused, every record past max_log_file asked again, each with a forced sync).
   */
  rotate(file: LogFile, n: number, keep = false): boolean {
    if (this.opts.numLogs < 2 && !keep) {
      this.reporter.log('info', 'Log rotation disabled (num_logs < 2), skipping');
      return false;
    }
    const num = n === 0 ? this.opts.numLogs : n;
    // The chain stops at its first failure, before the live file is touched: each step empties the name the next one
    // renames onto, so going on after .2 -> .3 failed made .1 -> .2 replace the old .2 (auditd goes on). The names
    // stay as they are, and the live log is written on unrotated, as when log -> .1 fails.
    for (let i = num - 1; i > 1; i--) {
      const from = this.rotatedName(i - 1);
      const to = this.rotatedName(i);
      if (!this.renameIfExists(from, to) || !this.renameIfExists(`${from}.gz`, `${to}.gz`)) {
        this.reporter.log('error', `Log rotation stopped at ${from}: ${this.opts.path} goes on without rotating`);
        return false;
      }
    }
    file.seal();
    if (!this.renameIfExists(this.opts.path, this.rotatedName(1))) {
      try {
        // Through a descriptor: chmod(2) on the name would follow a symlink planted there.
        const { fd } = openNoFollow(this.at(this.opts.path), fs.constants.O_RDONLY, { what: 'log file' });
        try {
          fs.fchmodSync(fd, this.opts.logGroupGid ? 0o640 : 0o600);
        } finally {
          fs.closeSync(fd);
        }
      } catch {
        // the reopen that follows reports the real problem
      }
      // Nothing was rotated: not counted, and nothing new at .1 to compress.
      return true;
    }
    this.rotations++;
    this.opts.compressor?.compress(this.rotatedName(1), this.opts.dir);
    return true;
  }

  /** Where a name of this log is reached: in the held directory. */
  private at(name: string): string {
    return this.opts.dir.at(name);
  }

  /** An error's text with the held directory shown by its path. */
  private err(e: unknown): string {
    return this.opts.dir.show(errText(e));
  }

  /**
   * shift_logs(): the number the live log gets with keep_logs (the highest grows instead of old logs going). A
   * compressed log holds its number as a plain one does: counting only `audit.log.N`, every rotation found .1 free
   * and its gzip replaced the previous audit.log.1.gz.
   */
  keepNumber(): number {
    let num = this.lastLog;
    while (this.rotatedExists(num)) num++;
    if (num <= this.lastLog && this.lastLog > 1) {
      this.reporter.log('warn', `Last known log disappeared (${this.rotatedName(num)})`);
      num = this.lastLog = 1;
      while (this.rotatedExists(num)) num++;
    }
    this.lastLog = num;
    return num + 1;
  }

  /** Whether rotated log `i` is there, plain or compressed (whatever is at the name: it is not ours to replace). */
  private rotatedExists(i: number): boolean {
    const name = this.rotatedName(i);
    return lstatOrNull(this.at(name)) !== null || lstatOrNull(this.at(`${name}.gz`)) !== null;
  }

  /** check_excess_logs(): only with rotate and num_logs >= 2, removes .num_logs, .num_logs+1, ... */
  removeExcess(action: MaxLogFileAction): void {
    if (action !== 'rotate' || this.opts.numLogs < 2) return;
    for (let i = this.opts.numLogs; ; i++) {
      let removed = false;
      for (const name of [this.rotatedName(i), this.rotatedName(i) + '.gz']) {
        try {
          fs.unlinkSync(this.at(name));
          removed = true;
          this.reporter.log('info', `Log ${name} removed as it exceeds num_logs parameter`);
        } catch {
          // not there
        }
      }
      if (!removed) break;
    }
  }

  /** Starts counting the current hour or day (at open). */
  startPeriod(): void {
    this.period = this.periodKey();
  }

  /** Whether the hour or day changed since the last call (and it is now the current one); false without an interval. */
  periodChanged(): boolean {
    if (!this.opts.rotateInterval) return false;
    const p = this.periodKey();
    if (p === this.period) return false;
    this.period = p;
    return true;
  }

  /** The current hour or local day, for time-based rotation. */
  private periodKey(): string {
    if (!this.opts.rotateInterval) return '';
    const d = new Date(this.opts.now());
    const day = `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
    return this.opts.rotateInterval === 'daily' ? day : `${day}T${d.getHours()}`;
  }

  /**
   * rename(2) never follows a symlink, but a symlink moved along the rotated names would later be read by search and
   * compression as if it were a log: one found where a log belongs was planted, and only its name is removed.
   */
  private renameIfExists(from: string, to: string): boolean {
    let st: fs.Stats | null;
    try {
      st = lstatOrNull(this.at(from));
    } catch (e) {
      this.reporter.log('error', `Error rotating logs from ${from} to ${to} (${this.err(e)})`);
      this.reporter.report('rotate', e, 0);
      return false;
    }
    if (!st) return true;
    if (st.isSymbolicLink()) {
      try {
        fs.unlinkSync(this.at(from));
        this.reporter.log('warn', `Removed ${from}: a symbolic link where a log belongs, not written by auditmux`);
        return true;
      } catch (e) {
        this.reporter.log('error', `Could not remove the symbolic link ${from} (${this.err(e)})`);
        this.reporter.report('rotate', e, 0);
        return false;
      }
    }
    if (!st.isFile()) {
      this.reporter.log('error', `Error rotating logs from ${from} to ${to} (not a regular file)`);
      this.reporter.report(
        'rotate',
        Object.assign(new Error(`${from} is not a regular file`), { code: 'E_LOG_NOT_FILE' }),
        0,
      );
      return false;
    }
    try {
      fs.renameSync(this.at(from), this.at(to));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
      this.reporter.log('error', `Error rotating logs from ${from} to ${to} (${this.err(e)})`);
      this.reporter.report('rotate', e, 0);
      return false;
    }
  }
}
