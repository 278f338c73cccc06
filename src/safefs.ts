// File access that an attacker cannot steer: bounded reads of regular files only, optionally refusing symlinks.
import * as fs from 'node:fs';
import { IoError } from './errors';

export interface BoundedReadOptions {
  /** Largest accepted size in bytes; a bigger file is refused without reading past the limit. */
  limit: number;
  /** Refuse a symlink at the final path component (O_NOFOLLOW), as auditd does for its config files. */
  noFollow?: boolean;
  /** What the file is, for messages ("the config file", "rules"). */
  what?: string;
}

export interface BoundedRead {
  data: Buffer;
  stat: fs.Stats;
}

/**
 * Reads a whole regular file of at most `limit` bytes. O_NONBLOCK makes opening a FIFO return at once (it is then
 * refused as not regular) instead of hanging the daemon; /dev/zero and other devices are refused before any read;
 * a file that grows past the limit while being read is refused too, so memory stays bounded whatever the path is.
 */
export function readBounded(path: string, opts: BoundedReadOptions): BoundedRead {
  const what = opts.what ?? 'file';
  const c = fs.constants;
  let flags = c.O_RDONLY | c.O_NONBLOCK | c.O_NOCTTY;
  if (opts.noFollow) flags |= c.O_NOFOLLOW;
  let fd: number;
  try {
    fd = fs.openSync(path, flags);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ELOOP' && opts.noFollow) throw new IoError(`${what} ${path} is a symlink (refused)`, 'E_SYMLINK', { cause: e });
    throw new IoError(`cannot read ${what} ${path} (${code})`, 'E_IO', { cause: e });
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new IoError(`${what} ${path} is not a regular file (refused)`, 'E_NOT_REGULAR');
    if (stat.size > opts.limit) throw new IoError(`${what} ${path} is ${stat.size} bytes, over the ${opts.limit}-byte limit`, 'E_TOO_LARGE');
    // Read up to one byte past the limit: that tells a file that grew after fstat from one exactly at the limit.
    const chunks: Buffer[] = [];
    let total = 0;
    while (total <= opts.limit) {
      const chunk = Buffer.allocUnsafe(Math.min(opts.limit + 1 - total, 65536));
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      total += n;
    }
    if (total > opts.limit) throw new IoError(`${what} ${path} is over the ${opts.limit}-byte limit`, 'E_TOO_LARGE');
    return { data: Buffer.concat(chunks, total), stat };
  } catch (e) {
    if (e instanceof IoError) throw e;
    throw new IoError(`cannot read ${what} ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, 'E_IO', { cause: e });
  } finally {
    fs.closeSync(fd);
  }
}
