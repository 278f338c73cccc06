// gzip of a rotated log in place (audit.log.1 -> audit.log.1.gz), never through a planted link or temporary.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { IoError } from '../../errors';
import { createExclusive, readBounded } from '../../safefs';
import { errText, type LogReporter } from './types';
import type { LogDir } from './dir';

/**
 * The largest rotated log compressed (64 MiB; the default max_log_file is 8). Compression runs on the thread that reads
 * the kernel, so a bigger one (a large max_log_file, or a daily rotation with no size limit) would hold the whole file
 * in memory and stop the record path for seconds, long enough for the kernel's backlog to overflow: it stays plain,
 * with a warning, and loses nothing.
 */
export const COMPRESS_MAX = 64 * 1024 * 1024;

/** Compresses rotated logs with the rotated files' mode and group; a failure leaves the plain file, nothing is lost. */
export class LogCompressor {
  /**
   * `mode`: what a rotated log gets (0440 with a log_group, 0400 without); `group`: its log_group's gid; `max`: the
   * largest file compressed (tests set a smaller one).
   */
  constructor(
    private readonly mode: number,
    private readonly reporter: LogReporter,
    private readonly group?: number,
    private readonly max = COMPRESS_MAX,
  ) {}

  /**
   * gzip a just-rotated log in place (name.gz, then the plain file goes). Synchronous at level 1: rotations are rare,
   * an 8 MiB log takes tens of ms, and no later rotation can rename the file while it is being read.
   */
  compress(name: string, dir?: LogDir): void {
    // `name` as users know it (messages); `file` and the others reached through the held directory (dir.ts).
    const at = (p: string): string => (dir ? dir.at(p) : p);
    const file = at(name);
    const tmp = at(`${name}.gz.tmp`);
    let created = false;
    try {
      // The file we just renamed: read without following a symlink, and never copy out a file linked elsewhere.
      const { data, stat } = readBounded(file, {
        limit: this.max,
        noFollow: true,
        what: 'rotated log',
      });
      if (stat.nlink > 1) throw new IoError(`rotated log ${name} has ${stat.nlink} hard links`, 'E_HARDLINK');
      const gz = zlib.gzipSync(data, { level: 1 });
      // O_EXCL: a name planted at the temporary (a symlink to any file) is removed, never written through.
      const { fd } = createExclusive(tmp, { mode: this.mode, what: 'temporary file', replaceStale: true });
      created = true;
      try {
        // Set on the descriptor, as the log's own: the umask (0077 under the unit) would leave 0400, and the file
        // would be root's group, so a log_group reader (a SIEM agent, `auditmux search`) could read the plain
        // rotated logs but not the compressed ones.
        fs.fchmodSync(fd, this.mode);
        if (process.getuid?.() === 0) fs.fchownSync(fd, 0, this.group ?? 0);
        let off = 0;
        while (off < gz.length) off += fs.writeSync(fd, gz, off, gz.length - off);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      // link(2), not rename(2): rename replaces whatever holds the name, and an existing name.gz is another rotated
      // log (keep_logs once lost one at every rotation this way). EEXIST keeps both it and the plain file.
      fs.linkSync(tmp, at(`${name}.gz`));
      fs.unlinkSync(tmp);
      created = false;
      fs.unlinkSync(file);
    } catch (e) {
      if (created) fs.rmSync(tmp, { force: true });
      // The plain rotated file stays: nothing is lost, it is just not compressed.
      if ((e as IoError).code === 'E_TOO_LARGE') {
        this.reporter.log(
          'warn',
          `Left ${name} plain: it is over the ${this.max}-byte limit of compression, which runs on the record path`,
        );
        return;
      }
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        this.reporter.log('error', `Left ${name} plain: ${name}.gz already exists and is not replaced`);
        return;
      }
      const why = errText(e);
      this.reporter.log('warn', `Could not compress ${name} (${dir ? dir.show(why) : why})`);
    }
  }
}
