// Which log files a search reads, in time order, and a streaming line reader over plain and gzip files with flat
// memory.
import { Buffer } from 'node:buffer';
import { createReadStream, existsSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { AuditmuxError, IoError, UsageError } from '../errors';
import { openReadNoFollow } from '../safefs';
import { DEFAULT_CONFIG_PATH, defaultConfig, loadConfig, type Config } from '../config';

/** One file to read; `path` '-' is standard input. */
export interface LogInput {
  path: string;
  gzip: boolean;
  /** Rotation series (its live file's path): events are grouped across files of one series only. */
  series?: string;
  /**
   * Found by listing a directory rather than named by the operator. Such a directory can belong to a tenant (an
   * auxiliary daemon's own log directory), so root must not follow a name planted there: `x.log.1 -> /etc/shadow`
   * would make the search read it. These are opened with O_NOFOLLOW, as regular files with a single link only.
   */
  listed?: boolean;
}

/** `audit.log`, `audit.log.3`, `audit.log.3.gz`, `audit.log.gz`: base name, rotation number (0 = live), gzip. */
const ROTATED = /^(.*?)(?:\.(\d{1,4}))?(\.gz)?$/;

interface SeriesMember {
  path: string;
  n: number;
  gzip: boolean;
}

function describeErr(e: unknown): string {
  const c = (e as NodeJS.ErrnoException).code;
  return c ?? (e instanceof Error ? e.message : String(e));
}

/** Files of one rotation series beside `live` (audit.log, audit.log.1, audit.log.2.gz ...), oldest first. */
export function rotationSeries(live: string): LogInput[] {
  const dir = dirname(live);
  const base = basename(live);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new IoError(`${dir}: cannot list the log directory (${describeErr(e)})`);
  }
  const members: SeriesMember[] = [];
  for (const name of names) {
    if (!name.startsWith(base)) continue;
    const m = ROTATED.exec(name);
    if (!m || m[1] !== base) continue;
    members.push({ path: join(dir, name), n: m[2] === undefined ? 0 : Number(m[2]), gzip: m[3] !== undefined });
  }
  return orderSeries(members, live);
}

/** auditd's numbering: a higher N is older; the live file (N = 0) is newest. */
function orderSeries(members: SeriesMember[], series: string): LogInput[] {
  return members
    .filter((m) => isFile(m.path))
    .sort((a, b) => b.n - a.n || Number(b.gzip) - Number(a.gzip))
    .map((m) => ({ path: m.path, gzip: m.gzip, series, listed: true }));
}

/** A listed name counts only when the name itself is a regular file: a symlink is skipped, never followed. */
function isFile(p: string): boolean {
  try {
    return lstatSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Opens a listed file without following a symlink (a swap after the listing), refusing anything but a regular file
 * with one link: a hard link planted in a tenant's directory would make root read a file the tenant cannot.
 */
function openListed(p: string): number {
  return openReadNoFollow(p, 'listed log').fd;
}

/**
 * A directory holds one or more series (the host's audit.log and auxiliary daemons' NAME.log beside it). Each series
 * is read on its own, oldest file first; series are taken in name order so the host log and aux logs, which can carry
 * the same events, are never interleaved into one stream.
 */
export function directoryInputs(dir: string): LogInput[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new IoError(`${dir}: cannot list the directory (${describeErr(e)})`);
  }
  const series = new Map<string, SeriesMember[]>();
  for (const name of names) {
    const m = ROTATED.exec(name);
    if (!m || !m[1]) continue;
    if (!/\.log$/.test(m[1]) && !/^audit/.test(m[1])) continue;
    const p = join(dir, name);
    const list = series.get(m[1]) ?? [];
    list.push({ path: p, n: m[2] === undefined ? 0 : Number(m[2]), gzip: m[3] !== undefined });
    series.set(m[1], list);
  }
  const out: LogInput[] = [];
  for (const key of [...series.keys()].sort()) out.push(...orderSeries(series.get(key)!, join(dir, key)));
  if (out.length === 0)
    throw new IoError(`${dir}: no audit logs in this directory (expected NAME.log, NAME.log.N, NAME.log.N.gz)`);
  return out;
}

/** `-if PATH`: a file (gzip if it ends in .gz), a directory of rotated logs, or '-' for standard input. */
export function inputFromPath(p: string): LogInput[] {
  if (p === '-') return [{ path: '-', gzip: false }];
  let st;
  try {
    st = statSync(p);
  } catch (e) {
    throw new IoError(`${p}: cannot read the log (${describeErr(e)})`);
  }
  if (st.isDirectory()) return directoryInputs(p);
  return [{ path: p, gzip: p.endsWith('.gz') }];
}

/** `--daemon NAME` ('host' or an auxiliary daemon): that daemon's configured log and its rotated predecessors. */
export function inputsForDaemon(name: string, configPath: string | undefined): LogInput[] {
  const cfg = readConfig(configPath);
  let file: string | undefined;
  if (name === 'host') file = cfg.host.log.file;
  else file = cfg.daemons.find((d) => d.name === name)?.log.file;
  if (file === undefined) {
    const known = ['host', ...cfg.daemons.map((d) => d.name)].join(', ');
    throw new UsageError(
      `--daemon ${name}: no such daemon in ${cfg.file ?? 'the built-in defaults'} (known: ${known})`,
    );
  }
  const series = rotationSeries(resolve(file));
  if (series.length === 0) throw new IoError(`${file}: the log of daemon ${name} does not exist`);
  return series;
}

function readConfig(configPath: string | undefined): Config {
  if (configPath !== undefined) return loadConfig(configPath);
  // Without a config file the daemon runs with the defaults, so its logs are where the defaults put them.
  return existsSync(DEFAULT_CONFIG_PATH) ? loadConfig(DEFAULT_CONFIG_PATH) : defaultConfig();
}

/** Reasons a line is not read as a record, reported as file:line. */
export interface LineSink {
  /** A complete line [start, end) of buf; buf may be reused after the call returns unless the callee keeps it. */
  line(buf: Buffer, start: number, end: number, lineNo: number): void;
  /** A line longer than the limit: skipped, but its number still counts. */
  overlong(lineNo: number, bytes: number): void;
}

/** Far above auditd's 8970-byte records plus enrichment; a longer "line" is not audit text and must not grow memory. */
export const MAX_LINE = 1 << 16;
const CHUNK = 1 << 20;

function openStream(input: LogInput): Readable {
  const raw: Readable =
    input.path === '-'
      ? process.stdin
      : input.listed
        ? createReadStream('', { fd: openListed(input.path), highWaterMark: CHUNK })
        : createReadStream(input.path, { highWaterMark: CHUNK });
  if (!input.gzip) return raw;
  const gz = createGunzip({ chunkSize: CHUNK });
  raw.on('error', (e) => gz.destroy(e));
  return raw.pipe(gz);
}

/**
 * Streams one file's lines into sink. The unterminated tail of the file (a live log mid-write) is returned rather
 * than emitted, so the caller decides whether it is a record or a half-written one.
 */
export async function readLines(input: LogInput, sink: LineSink): Promise<{ lines: number; tail: Buffer | null }> {
  const stream = openStream(input);
  let carry: Buffer | null = null;
  let lineNo = 0;
  let skipping = false;
  let skippedBytes = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const buf: Buffer = chunk;
      let pos = 0;
      if (carry) {
        const nl = chunk.indexOf(0x0a);
        if (nl < 0) {
          carry = carry.length + chunk.length > MAX_LINE ? null : Buffer.concat([carry, chunk]);
          if (!carry) {
            skipping = true;
            skippedBytes = MAX_LINE;
          }
          continue;
        }
        // Only the carried line is copied; the rest of the chunk is scanned in place.
        const joined = Buffer.concat([carry, chunk.subarray(0, nl)]);
        carry = null;
        lineNo++;
        if (joined.length > MAX_LINE) sink.overlong(lineNo, joined.length);
        else sink.line(joined, 0, joined.length, lineNo);
        pos = nl + 1;
      } else if (skipping) {
        const nl = chunk.indexOf(0x0a);
        if (nl < 0) {
          skippedBytes += chunk.length;
          continue;
        }
        lineNo++;
        sink.overlong(lineNo, skippedBytes + nl);
        skipping = false;
        pos = nl + 1;
      }
      const n = buf.length;
      while (pos < n) {
        const nl = buf.indexOf(0x0a, pos);
        if (nl < 0) break;
        lineNo++;
        if (nl - pos > MAX_LINE) sink.overlong(lineNo, nl - pos);
        else sink.line(buf, pos, nl, lineNo);
        pos = nl + 1;
      }
      if (pos < n) {
        if (n - pos > MAX_LINE) {
          skipping = true;
          skippedBytes = n - pos;
        } else carry = Buffer.from(buf.subarray(pos));
      }
    }
  } catch (e) {
    // The sink's own refusal (a JSON log: LogFormatError) is not a read error.
    if (e instanceof AuditmuxError) throw e;
    const what = input.gzip ? 'cannot decompress' : 'cannot read';
    throw new IoError(`${input.path}: ${what} the log after line ${lineNo} (${describeErr(e)})`, 'E_IO', { cause: e });
  }
  if (skipping) {
    lineNo++;
    sink.overlong(lineNo, skippedBytes);
  }
  return { lines: lineNo, tail: carry && carry.length > 0 ? carry : null };
}
