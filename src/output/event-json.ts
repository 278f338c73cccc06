// One audit event as one JSON object (records with their fields, interpreted values beside raw ones, contid and the
// container at the top): the nats output's `payload: json` and `log.format: json` both encode events with it.
import { Buffer } from 'node:buffer';
import { AUDIT_LINE_RE } from './audit-line';
import type { ContainerFields } from './container-fields';

const SEP = '\x1d';
const C_SPACE = 0x20;
const C_EQ = 0x3d;

export interface EventJson {
  v: 1;
  /** What identifies the event across outputs and restarts (the nats output's Nats-Msg-Id). */
  id: string;
  node: string;
  daemon: string;
  contid: string | null;
  /**
   * The container of `contid` as the host's registry knows it (name, image..., `labels` within the caps of
   * container-fields.ts); absent when unknown or none.
   */
  container?: ContainerFields;
  time: string;
  serial: string;
  records: RecordJson[];
}

export interface RecordJson {
  type: string;
  /** The auditd log line, byte for byte (latin1), as an auditd-format log has it. */
  line: string;
  fields: Record<string, string>;
  /** ENRICHED only: the interpreted values auditd appends after 0x1d (UID="root", ARCH=x86_64, ...). */
  interpreted?: Record<string, string>;
}

/** `audit(SEC.MS:SERIAL)` of a formatted line (after an optional node= prefix), or null. */
const STAMP_RE = /msg=audit\(([0-9]{1,12}\.[0-9]{3}):([0-9]{1,20})\)/;

export function lineStamp(line: Buffer | string): { time: string; serial: string } | null {
  const head = typeof line === 'string' ? line.slice(0, 400) : line.toString('latin1', 0, Math.min(line.length, 400));
  const m = STAMP_RE.exec(head);
  return m ? { time: m[1] as string, serial: m[2] as string } : null;
}

/**
 * A line of a CONTAINER_ID record, or of a CONTAINER_OP record (a container's birth, update or retirement, which names
 * it), after auditd's optional node= prefix: types only the kernel or auditmux write.
 */
export const CONTAINER_LINE_RE = /^(?:node=[^ ]{1,255} )?type=CONTAINER_(?:ID|OP) msg=/;
const CONTID_RE = / contid=([^ \x1d]{1,200})/;
/**
 * The contid of an event's lines: the `contid=` field of its CONTAINER_ID record (routing's on mainline kernels, the
 * kernel's with the contid patch set) or of its CONTAINER_OP record (every other value there is encoded). Never one
 * found in another record: an audited process writes its own text into a user message (`msg='... contid=42'`), which
 * must not attribute the event to another container.
 */
export function contidOf(lines: readonly string[]): string | null {
  for (const l of lines) {
    if (!CONTAINER_LINE_RE.test(l)) continue;
    const m = CONTID_RE.exec(l);
    if (m) return (m[1] as string).replace(/^"|"$/g, '');
  }
  return null;
}

/**
 * Splits `k=v k="v w" msg='...' SADDR={ ... }` into fields; a value keeps its quotes off, a repeated key keeps its
 * first value. Two values hold text a process chose, with no escaping of spaces, `=` or quotes, and are read as
 * auparse reads them: a user message's `msg='...'` (the kernel quotes the sender's text as it is) runs to the last
 * `'`, and an interpreted `SADDR={ ... }` (a socket path, e.g. `/tmp/x UID="root"`) to the last ` }`. Cut at the first
 * quote or space, either would let that text add fields to the record.
 */
export function splitFields(text: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && text.charCodeAt(i) === C_SPACE) i++;
    // The word's end first, then its '=' within it: an indexOf('=') from each word ran to the next '=' however far
    // (a line of 4400 words and one field at its end cost 4400 scans of the line).
    const sp = text.indexOf(' ', i);
    const wordEnd = sp < 0 ? n : sp;
    let eq = i;
    while (eq < wordEnd && text.charCodeAt(eq) !== C_EQ) eq++;
    if (eq === wordEnd) {
      i = wordEnd + 1; // a word without '=' (auditd writes none, a forged line might)
      continue;
    }
    const key = text.slice(i, eq);
    let j = eq + 1;
    let value: string;
    const q = text[j];
    if (q === "'" && key === 'msg') {
      const close = text.lastIndexOf(q);
      value = text.slice(j + 1, close > j ? close : n);
      j = close > j ? close + 1 : n;
    } else if (q === '{') {
      const close = text.lastIndexOf(' }');
      value = text.slice(j, close >= j ? close + 2 : n);
      j = close >= j ? close + 2 : n;
    } else if (q === '"' || q === "'") {
      const close = text.indexOf(q, j + 1);
      const end = close < 0 ? n : close;
      value = text.slice(j + 1, end);
      j = close < 0 ? n : close + 1;
    } else {
      const e = text.indexOf(' ', j);
      const end = e < 0 ? n : e;
      value = text.slice(j, end);
      j = end;
    }
    if (!(key in out)) out[key] = value;
    i = j;
  }
  return out;
}

/**
 * One JSON object for an event's lines (latin1 strings without newline); `container`, when the event's container is
 * known, and `contid` when the caller already read it from the lines.
 */
export function eventJson(
  id: string,
  node: string,
  daemon: string,
  lines: readonly string[],
  container?: Readonly<ContainerFields> | null,
  contid: string | null = contidOf(lines),
): EventJson {
  const first = lines[0] ?? '';
  const st = lineStamp(first);
  const records: RecordJson[] = lines.map((line) => {
    const m = AUDIT_LINE_RE.exec(line);
    const body = m ? line.slice(m[0].length) : line;
    const cut = body.indexOf(SEP);
    const r: RecordJson = {
      type: m ? (m[2] as string) : 'UNKNOWN',
      line,
      fields: splitFields(cut < 0 ? body : body.slice(0, cut)),
    };
    if (cut >= 0) r.interpreted = splitFields(body.slice(cut + 1));
    return r;
  });
  return {
    v: 1,
    id,
    node,
    daemon,
    contid,
    ...(container ? { container: { ...container } } : {}),
    time: st?.time ?? '',
    serial: st?.serial ?? '',
    records,
  };
}

/**
 * The event as UTF-8 JSON text without a newline. The lines are latin1 strings, so every byte is one code point up
 * to U+00FF: JSON.stringify escapes control characters (a newline in a value is `\n`, never a line break), quotes
 * and backslashes, and the UTF-8 of U+0080..U+00FF is always valid, whatever bytes the record carried. Container
 * fields and labels (keys and values) are JS strings from the registry: JSON.stringify escapes them the same way (a
 * lone surrogate as `\udXXX`).
 */
export function encodeEventJson(
  id: string,
  node: string,
  daemon: string,
  lines: readonly string[],
  container?: Readonly<ContainerFields> | null,
  contid?: string | null,
): Buffer {
  const ev = eventJson(id, node, daemon, lines, container, contid === undefined ? contidOf(lines) : contid);
  return Buffer.from(JSON.stringify(ev), 'utf8');
}
