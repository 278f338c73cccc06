// The one rule for "is this a safe auditd log line", applied to lines auditmux did not format itself: what the
// aggregator takes from a peer and what a NATS collector takes from a message.
import { octalByte } from '../records/encode';
import { INTERP_SEPARATOR, MAX_LINE_BYTES } from './format';

/**
 * The header auditd writes on every line: `[node=NAME ]type=TYPE msg=audit(SEC.MS:SERIAL): `, where TYPE is a libaudit
 * name or `UNKNOWN[n]` (how auditd, and auditmux's writer, name a type libaudit does not know). Groups: node, type,
 * time (SEC.MS), serial. The node holds no 0x1D: ausearch would take the rest of the line, header included, for the
 * ENRICHED interpretations.
 */
export const AUDIT_LINE_RE =
  /^(?:node=([^ \x1d]{1,255}) )?type=([A-Z0-9_]{1,40}|UNKNOWN\[[0-9]{1,10}\]) msg=audit\(([0-9]{1,12}\.[0-9]{3}):([0-9]{1,20})\): /;

/** The longest line auditd writes (without its newline). */
export const MAX_AUDIT_LINE = MAX_LINE_BYTES - 1;

const SEP = String.fromCharCode(INTERP_SEPARATOR);
/** Every byte below 0x20 but the ENRICHED separator (0x1d), and DEL: no second line, no terminal escape. */
const CONTROL_RE = /[\x00-\x1c\x1e\x1f\x7f]/;
const CONTROL_G = /[\x00-\x1c\x1e\x1f\x7f]/g;
/**
 * Bytes no record line holds: auditd (and auditmux's writer) write a newline in record text as a space, and the
 * kernel ends a user message's text at a NUL. A line with one was not written by an audit daemon.
 */
const NEVER_RE = /[\x00\x0a]/;

/**
 * Whether `line` (latin1, one byte a character, no newline) may go into an auditd log as it is: not empty, within
 * auditd's line length, no control byte but at most one ENRICHED separator, auditd's header. The reason, or null.
 */
export function lineProblem(line: string): string | null {
  if (line.length === 0) return 'empty line';
  if (line.length > MAX_AUDIT_LINE) return `line longer than ${MAX_AUDIT_LINE} bytes`;
  const bad = CONTROL_RE.exec(line);
  if (bad) return `control byte 0x${hex(bad[0])} at offset ${bad.index}`;
  if (line.indexOf(SEP) !== line.lastIndexOf(SEP)) return 'more than one ENRICHED separator';
  if (!AUDIT_LINE_RE.test(line)) return 'not an audit record (node=NAME type=TYPE msg=audit(SEC.MS:SERIAL): ...)';
  return null;
}

/** A received line as it is written (`escaped` bytes written `\ooo`), or why it is refused. */
export type VettedLine = { line: string; escaped: number } | { problem: string };

/**
 * What a line from another host (latin1, no newline) is written as. A record's text after auditd's header may hold
 * control bytes the host kept in its own log (a user message's TAB, CR, ESC, DEL: the kernel copies `msg='...'` as
 * sent, and auditd writes it so): each byte below 0x20 but the one ENRICHED separator, and DEL, is written as the
 * octal escape `\ooo` (`\011`, `\033`; auparse's tty form), so the record reaches the central log, on one line, with
 * nothing a terminal acts on; a line the escapes make longer than auditd's limit is cut at a whole escape. Refused,
 * as no audit daemon writes them: an empty or over-long line, a newline or NUL, more than one separator, a header
 * that is not auditd's or holds a control byte.
 */
export function vetAuditLine(line: string): VettedLine {
  if (line.length === 0) return { problem: 'empty line' };
  if (line.length > MAX_AUDIT_LINE) return { problem: `line longer than ${MAX_AUDIT_LINE} bytes` };
  const never = NEVER_RE.exec(line);
  if (never) {
    const what = never[0] === '\n' ? 'newline' : 'NUL';
    return { problem: `${what} (byte 0x${hex(never[0])}) at offset ${never.index}: no audit record holds one` };
  }
  if (line.indexOf(SEP) !== line.lastIndexOf(SEP)) return { problem: 'more than one ENRICHED separator' };
  const m = AUDIT_LINE_RE.exec(line);
  if (!m) return { problem: 'not an audit record (node=NAME type=TYPE msg=audit(SEC.MS:SERIAL): ...)' };
  const head = m[0];
  const bad = CONTROL_RE.exec(head);
  if (bad) return { problem: `control byte 0x${hex(bad[0])} at offset ${bad.index} in the header` };
  if (!CONTROL_RE.test(line)) return { line, escaped: 0 };
  let escaped = 0;
  let out = head + line.slice(head.length).replace(CONTROL_G, (c) => (escaped++, octalByte(c.charCodeAt(0))));
  if (out.length > MAX_AUDIT_LINE) {
    out = out.slice(0, MAX_AUDIT_LINE);
    // An escape cut in two would leave a backslash and digits that read as another byte.
    const bs = out.lastIndexOf('\\', MAX_AUDIT_LINE - 1);
    if (bs >= MAX_AUDIT_LINE - 3 && /^\\[0-7]{0,2}$/.test(out.slice(bs))) out = out.slice(0, bs);
  }
  return { line: out, escaped };
}

function hex(c: string): string {
  return c.charCodeAt(0).toString(16).padStart(2, '0');
}
