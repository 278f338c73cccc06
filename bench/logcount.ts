// Counts benchmark events in an audit log by streaming it: files reach hundreds of MB, too big to read whole.
import { createReadStream } from 'node:fs';

export interface LogCount {
  /** Distinct serials of SYSCALL records carrying the bench key. */
  events: number;
  /** SYSCALL records with the key, duplicates included (a daemon writing an event twice shows here). */
  syscallRecords: number;
  bytes: number;
  /** SYSCALL records without the bench key: other activity on the host (another session's tests, auditctl). */
  foreignSyscalls: number;
}

const SYSCALL = Buffer.from('type=SYSCALL ');
const MSG = Buffer.from('msg=audit(');

/**
 * Works on Buffers, not strings: decoding every line of a large log would cost more than the search. Lines may start
 * with `node=NAME ` when a name_format is set, so the type is searched for, not expected at column 0. `from`: the byte
 * offset to start at (the log's size after the warm-up, whose events are not counted).
 */
export async function countEvents(file: string, key: string, from = 0): Promise<LogCount> {
  const keyField = Buffer.from(`key="${key}"`);
  const serials = new Set<number>();
  let syscallRecords = 0;
  let foreignSyscalls = 0;
  let bytes = 0;
  let carry: Buffer = Buffer.alloc(0);

  const scanLine = (buf: Buffer, start: number, end: number): void => {
    const t = buf.indexOf(SYSCALL, start);
    if (t < 0 || t >= end || t > start + 256) return;
    const k = buf.indexOf(keyField, t);
    // In ENRICHED logs the raw fields come before 0x1D; a key text after it would be an interpreted value.
    const gs = buf.indexOf(0x1d, t);
    if (k < 0 || k >= end || (gs >= 0 && gs < k)) {
      foreignSyscalls++;
      return;
    }
    syscallRecords++;
    const m = buf.indexOf(MSG, t);
    if (m < 0 || m >= end) return;
    const colon = buf.indexOf(0x3a, m); // ':' before the serial
    const close = buf.indexOf(0x29, colon); // ')'
    if (colon < 0 || close < 0 || close >= end) return;
    serials.add(Number(buf.toString('latin1', colon + 1, close)));
  };

  for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20, start: from }) as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    const buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl < 0) break;
      scanLine(buf, start, nl);
      start = nl + 1;
    }
    carry = Buffer.from(buf.subarray(start));
  }
  if (carry.length) scanLine(carry, 0, carry.length);
  return { events: serials.size, syscallRecords, bytes, foreignSyscalls };
}
