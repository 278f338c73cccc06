// The log's directory held open: every name of a log (live, rotated, compressed, temporary) is reached through it.
import * as fs from 'node:fs';
import { basename } from 'node:path';
import { openCheckedDir, type DirPolicy } from '../../safefs';

/**
 * Why held: the directory is checked once (root's, nobody else may write in it), but its path runs through
 * directories others may write in (Ubuntu's /var/log is root:syslog 0775). Whoever can rename entries there could
 * move the log's directory away and put their own at its path, and a rotation by name would then rename, delete and
 * compress files in theirs. Through `/proc/self/fd/N/NAME` every name resolves in the directory that was checked,
 * wherever it has been moved since. Without /proc (a chroot without it) names are used as they are, as before.
 */
export class LogDir {
  private fd = -1;
  /** `/proc/self/fd/N` of the held directory, or null when not held or /proc is missing. */
  private anchor: string | null = null;

  constructor(readonly dir: string) {}

  /** Checks and holds the directory, once (again after close). Throws IoError (E_UNSAFE_DIR, E_IO). */
  open(policy: DirPolicy): void {
    if (this.fd >= 0) return;
    ({ fd: this.fd, anchor: this.anchor } = openCheckedDir(this.dir, policy));
  }

  /** Where `path` (a name in this directory, given as its full path) is reached: through the held directory. */
  at(path: string): string {
    return this.anchor === null ? path : `${this.anchor}/${basename(path)}`;
  }

  /** The held directory's `/proc/self/fd/N`, or null when not held or /proc is missing. */
  get held(): string | null {
    return this.anchor;
  }

  /** `text` (an error's message) with the held directory's /proc name shown as the directory's path. */
  show(text: string): string {
    return this.anchor === null ? text : text.split(this.anchor).join(this.dir);
  }

  close(): void {
    if (this.fd < 0) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      // nothing was written through it
    }
    this.fd = -1;
    this.anchor = null;
  }
}
