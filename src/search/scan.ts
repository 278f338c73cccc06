// Groups streamed records into whole events within a bounded window and applies the criteria record by record.
import { Buffer } from 'node:buffer';
import type { Criteria } from './criteria';
import { contidOfRecord } from './criteria';
import { IoError, LogFormatError } from '../errors';
import { AUDIT_CID_UNSET } from '../kernel/constants';
import { readLines, type LogInput } from './inputs';
import { eventKey, newHeader, parseHeader, recordTypeName, type LineHeader } from './logline';

/** How every line of a JSON log (log.format: json, src/output/event-json.ts) starts; no auditd-format line does. */
const JSON_LOG_LINE = Buffer.from('{"v":1,"id":"');

function isJsonLogLine(b: Buffer, start: number, end: number): boolean {
  return (
    end - start > JSON_LOG_LINE.length &&
    b.compare(JSON_LOG_LINE, 0, JSON_LOG_LINE.length, start, start + JSON_LOG_LINE.length) === 0
  );
}

/** A JSON log is refused at its first line, by name, rather than read as thousands of malformed records. */
function refuseJson(file: string, line: number): never {
  throw new LogFormatError(
    { file, line },
    'this is a JSON log (log.format: json): search and report read the auditd text format (RAW or ENRICHED); ' +
      'read JSON logs with a JSON tool such as jq',
  );
}

/** A complete event as found in the log: its lines (without newline) in log order. */
export interface SearchEvent {
  node: string | null;
  sec: number;
  ms: number;
  serial: number;
  lines: Buffer[];
  file: string;
  /** Line number of the event's first record in `file`. */
  line: number;
}

export interface ScanOptions {
  /** An event is complete once this many lines followed its first record... */
  windowLines?: number;
  /** ...or once a record this much later (audit time) was read. auditd's end_of_event_timeout is 2 s. */
  windowMs?: number;
  /** Malformed-line messages printed per file before only counting them. */
  maxWarningsPerFile?: number;
}

export interface ScanStats {
  files: number;
  lines: number;
  records: number;
  matched: number;
  malformed: number;
  /** Unterminated last lines that were not records (a live log mid-write): ignored, not errors. */
  partialTails: number;
  /**
   * Files that could not be read to their end (a corrupt or truncated .gz, a file gone or unreadable): their
   * messages. The lines read before the error count, the scan goes on with the other files, and the caller reports
   * the search as incomplete.
   */
  unreadable: string[];
}

interface Open {
  key: string;
  ev: SearchEvent;
  mask: number;
  hasContid: boolean;
  seq: number;
  timeMs: number;
  /** Its node's name ('' for none): its time is measured against that node's records only (see `clocks`). */
  node: string;
}

/** Node clocks kept at most (past it, those of nodes with no open event go): node names are the peers' to choose. */
const MAX_CLOCKS = 4096;

const DEFAULT_WINDOW_LINES = 4096;
const DEFAULT_WINDOW_MS = 2000;

/**
 * Scans inputs in order; calls onEvent for every matching event (in order of first record), onWarning for bad lines.
 */
export async function scanEvents(
  inputs: readonly LogInput[],
  criteria: Criteria,
  onEvent: (ev: SearchEvent) => void,
  onWarning: (msg: string) => void,
  opts: ScanOptions = {},
): Promise<ScanStats> {
  const windowLines = opts.windowLines ?? DEFAULT_WINDOW_LINES;
  const windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
  const maxWarnings = opts.maxWarningsPerFile ?? 20;
  const stats: ScanStats = {
    files: 0,
    lines: 0,
    records: 0,
    matched: 0,
    malformed: 0,
    partialTails: 0,
    unreadable: [],
  };
  const open = new Map<string, Open>();
  // Insertion-ordered queue of open events; head advances as they are flushed, compacted now and then.
  let queue: Open[] = [];
  let head = 0;
  let seq = 0;
  const full = criteria.count >= 31 ? -1 : (1 << criteria.count) - 1;
  const { tests, prefilters, contid, contidIndex } = criteria;
  const h: LineHeader = newHeader();

  const finish = (o: Open): void => {
    open.delete(o.key);
    let mask = o.mask;
    // "unset" matches events without any CONTAINER_ID record at all, which only the whole event can tell.
    if (contid && contid.wantsUnset && !o.hasContid) mask |= 1 << contidIndex;
    if (mask === full) {
      stats.matched++;
      onEvent(o.ev);
    }
  };
  // The latest time read from each node. An event ends when a record of its own node is windowMs later: a peer's
  // line dated far ahead (an aggregator writes peers' lines between the host's) ended every open local event and
  // split it, so criteria spread over its records no longer matched, and `--contid unset` matched a container's.
  const clocks = new Map<string, number>();
  const tick = (node: string, timeMs: number): void => {
    const c = clocks.get(node);
    if (c === undefined && clocks.size >= MAX_CLOCKS) {
      const live = new Set<string>();
      for (let i = head; i < queue.length; i++) live.add(queue[i]!.node);
      for (const n of clocks.keys()) if (!live.has(n)) clocks.delete(n);
    }
    if (c === undefined || timeMs > c) clocks.set(node, timeMs);
  };
  const flushUntil = (curSeq: number): void => {
    while (head < queue.length) {
      const o = queue[head]!;
      if (curSeq - o.seq <= windowLines && (clocks.get(o.node) ?? o.timeMs) - o.timeMs <= windowMs) break;
      queue[head] = undefined as unknown as Open;
      head++;
      finish(o);
    }
    if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
  };
  const flushAll = (): void => {
    while (head < queue.length) finish(queue[head++]!);
    queue = [];
    head = 0;
  };

  // Each line is a view of its chunk: searches then stop at the line's end instead of running on through the chunk.
  const record = (buf: Buffer, file: string, lineNo: number): string | null => {
    const end = buf.length;
    const err = parseHeader(buf, 0, end, h);
    if (err) return err;
    stats.records++;
    seq++;
    const timeMs = h.sec * 1000 + h.ms;
    const node = h.nodeStart < 0 ? '' : buf.toString('latin1', h.nodeStart, h.nodeEnd);
    tick(node, timeMs);
    if (!criteria.stamp(h.sec, h.ms, h.serial)) {
      flushUntil(seq);
      return null;
    }
    const key = eventKey(buf, h);
    let o = open.get(key);
    if (!o) {
      o = {
        key,
        ev: {
          node: h.nodeStart < 0 ? null : node,
          sec: h.sec,
          ms: h.ms,
          serial: h.serial,
          lines: [],
          file,
          line: lineNo,
        },
        mask: 0,
        hasContid: false,
        seq,
        timeMs,
        node,
      };
      open.set(key, o);
      queue.push(o);
    }
    o.ev.lines.push(buf);
    if (o.mask !== full) {
      for (let i = 0; i < tests.length; i++) {
        if (o.mask & (1 << i)) continue;
        const pf = prefilters[i];
        if (pf) {
          let hit = false;
          for (const n of pf) {
            const at = buf.indexOf(n, h.bodyStart - 1);
            if (at >= 0 && at < end) {
              hit = true;
              break;
            }
          }
          if (!hit) continue;
        }
        if (tests[i]!(buf, h)) o.mask |= 1 << i;
      }
    }
    if (contid && contid.wantsUnset && !o.hasContid) {
      const t = recordTypeName(buf, h);
      if (t === 'CONTAINER_ID') {
        const chains = contidOfRecord(buf, h, t);
        if (chains && chains.some((c) => c.length > 0 && c[0] !== AUDIT_CID_UNSET)) o.hasContid = true;
      }
    }
    flushUntil(seq);
    return null;
  };

  let lastSeries: string | undefined;
  for (const input of inputs) {
    // Different series (host log, an aux log) may hold copies of the same events: never merge across them.
    const series = input.series ?? '';
    if (lastSeries !== undefined && series !== lastSeries) flushAll();
    lastSeries = series;
    // Each file's own times: a tenant's log dated ahead must not end the events of the next file read.
    clocks.clear();
    stats.files++;
    let warned = 0;
    const file = input.path === '-' ? '(stdin)' : input.path;
    const bad = (lineNo: number, reason: string): void => {
      stats.malformed++;
      warned++;
      if (warned <= maxWarnings) onWarning(`${file}:${lineNo}: ${reason}; line skipped`);
    };
    let r: Awaited<ReturnType<typeof readLines>>;
    // A JSON log is told by its first line; a JSON-looking line further on (in a log whose writer a tenant controls)
    // is one malformed line, not the end of a search over every log.
    let first = true;
    try {
      r = await readLines(input, {
        line: (buf, start, end, lineNo) => {
          if (end === start) return;
          if (buf[start] === 0x7b && isJsonLogLine(buf, start, end)) {
            if (first) refuseJson(file, lineNo);
            bad(lineNo, 'a JSON log line in an auditd-format log');
            return;
          }
          first = false;
          const err = record(buf.subarray(start, end), file, lineNo);
          if (err) bad(lineNo, err);
        },
        overlong: (lineNo, bytes) => bad(lineNo, `line of ${bytes} bytes is longer than any audit record`),
      });
    } catch (e) {
      // One bad rotated file must not hide every other log from a search: report it and go on.
      if (!(e instanceof IoError)) throw e;
      stats.unreadable.push(e.message);
      onWarning(`${e.message}; the rest of this file is skipped, the other logs are still searched`);
      if (warned > maxWarnings) onWarning(`${file}: ${warned - maxWarnings} more malformed lines skipped`);
      continue;
    }
    stats.lines += r.lines;
    if (r.tail) {
      // A complete record without its newline is still a record; anything else is a write in progress.
      if (isJsonLogLine(r.tail, 0, r.tail.length) && first) refuseJson(file, r.lines + 1);
      const probe = newHeader();
      if (parseHeader(r.tail, 0, r.tail.length, probe) === null) {
        stats.lines++;
        record(r.tail, file, r.lines + 1);
      } else stats.partialTails++;
    }
    if (warned > maxWarnings) onWarning(`${file}: ${warned - maxWarnings} more malformed lines skipped`);
  }
  flushAll();
  return stats;
}
