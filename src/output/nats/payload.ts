// Message bodies of the nats output (auditd text lines, or one JSON object per event as src/output/event-json.ts
// encodes it for logs too) and their strict decoding.
import { Buffer } from 'node:buffer';
import { AUDIT_LINE_RE as TYPE_RE, vetAuditLine } from '../audit-line';
import { encodeEventJson } from '../event-json';
import type { ContainerEntry } from '../container-fields';

/** A NATS server's default max_payload is 1 MiB; a body past it is not ours, whatever it claims. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** More records than any real event; bounds what a decoded body can make the collector hold. */
export const MAX_EVENT_RECORDS = 4096;

export function encodeBody(
  kind: 'text' | 'json',
  id: string,
  node: string,
  daemon: string,
  lines: readonly string[],
  container?: ContainerEntry | null,
  contid?: string | null,
): Buffer {
  if (kind === 'text') return Buffer.from(lines.join('\n') + '\n', 'latin1');
  return encodeEventJson(id, node, daemon, lines, container?.fields ?? null, contid);
}

export class PayloadError extends Error {}

export interface DecodedEvent {
  /** The lines as they are written: control bytes of a record's text escaped (vetAuditLine). */
  lines: string[];
  /** How many of them had bytes escaped. */
  escaped: number;
  /** node= of the lines (all the same), or null when they carry none. */
  node: string | null;
  time: string;
  serial: string;
}

/**
 * Decodes a message body as a collector receives it from anyone allowed to publish on the subject: text lines or the
 * JSON form, strictly. Every line must pass vetAuditLine (the control bytes a host keeps in a user message's text are
 * escaped, not refused: the record reached the host's log and must reach the central one), belong to one event
 * (same stamp) and one node.
 */
export function decodeBody(body: Uint8Array): DecodedEvent {
  if (body.length === 0) throw new PayloadError('empty message');
  if (body.length > MAX_MESSAGE_BYTES)
    throw new PayloadError(`message of ${body.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  const buf = Buffer.from(body.buffer, body.byteOffset, body.length);
  let lines: string[];
  if (buf[0] === 0x7b) {
    let o: unknown;
    try {
      o = JSON.parse(buf.toString('utf8'));
    } catch (e) {
      throw new PayloadError(`invalid JSON: ${String((e as Error).message).slice(0, 80)}`);
    }
    const recs = (o as { records?: unknown } | null)?.records;
    if (typeof o !== 'object' || o === null || Array.isArray(o) || !Array.isArray(recs))
      throw new PayloadError('JSON body needs a records array');
    if (recs.length === 0 || recs.length > MAX_EVENT_RECORDS)
      throw new PayloadError(`JSON body has ${recs.length} records (1-${MAX_EVENT_RECORDS})`);
    lines = recs.map((r, i) => {
      const l = (r as { line?: unknown } | null)?.line;
      if (typeof l !== 'string') throw new PayloadError(`records[${i}].line is not a string`);
      // The line went out as latin1 text: a character above 0xff was not written by auditmux.
      if (/[^\x00-\xff]/.test(l)) throw new PayloadError(`records[${i}].line has a character above U+00FF`);
      return l;
    });
  } else {
    const text = buf.toString('latin1');
    if (!text.endsWith('\n')) throw new PayloadError('text body does not end with a newline');
    lines = text.slice(0, -1).split('\n');
    if (lines.length > MAX_EVENT_RECORDS) throw new PayloadError(`text body has more than ${MAX_EVENT_RECORDS} lines`);
  }
  let node: string | null | undefined;
  let stamp = '';
  let escaped = 0;
  for (let i = 0; i < lines.length; i++) {
    const v = vetAuditLine(lines[i] as string);
    if ('problem' in v) throw new PayloadError(`line ${i + 1}: ${v.problem}`);
    const l = v.line;
    lines[i] = l;
    if (v.escaped > 0) escaped++;
    const m = TYPE_RE.exec(l) as RegExpExecArray;
    const n = m[1] ?? null;
    const s = `${m[3]}:${m[4]}`;
    if (node === undefined) {
      node = n;
      stamp = s;
    } else if (n !== node) throw new PayloadError(`line ${i + 1}: node differs from the first line's`);
    else if (s !== stamp) throw new PayloadError(`line ${i + 1}: event stamp differs from the first line's`);
  }
  const [time, serial] = stamp.split(':') as [string, string];
  return { lines, escaped, node: node ?? null, time, serial };
}
