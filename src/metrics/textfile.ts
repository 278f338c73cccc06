// Metrics as a node_exporter textfile: written to a new temporary (O_EXCL, never through a link), then renamed over.
import { Buffer } from 'node:buffer';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IoError } from '../errors';
import { createExclusive } from '../safefs';

/**
 * Replaces `file` with `text` atomically: node_exporter reads either the old file or the new one, never half. The
 * temporary does not end in .prom, so the collector never reads it; a stale one from a crash is replaced.
 */
export function writeTextfileAtomic(file: string, text: string, mode = 0o644): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const { fd } = createExclusive(tmp, { mode, what: 'metrics temporary', replaceStale: true });
  try {
    try {
      const b = Buffer.from(text, 'utf8');
      for (let off = 0; off < b.length;) off += fs.writeSync(fd, b, off, b.length - off);
      // fchmod: the umask must not make the file unreadable to node_exporter.
      fs.fchmodSync(fd, mode);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    if (e instanceof IoError) throw e;
    throw new IoError(`cannot write metrics file ${file} (${(e as NodeJS.ErrnoException).code ?? 'EIO'})`, 'E_IO', {
      cause: e,
    });
  }
}

/** Removes a textfile the host no longer writes (metrics moved): unlink removes a link itself, never its target. */
export function removeTextfile(file: string, warn: (e: Error) => void): void {
  try {
    fs.unlinkSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') warn(e as Error);
  }
}
