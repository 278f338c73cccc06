// The one rule for "is this a safe auditd log line", applied to lines auditmux did not format itself: what the
// aggregator takes from a peer and what a NATS collector takes from a message.
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

/**
 * Whether `line` (latin1, one byte a character, no newline) may go into an auditd log as it is: not empty, within
 * auditd's line length, no control byte but at most one ENRICHED separator, auditd's header. The reason, or null.
 */
export function lineProblem(line: string): string | null {
  if (line.length === 0) return 'empty line';
  if (line.length > MAX_AUDIT_LINE) return `line longer than ${MAX_AUDIT_LINE} bytes`;
  const bad = CONTROL_RE.exec(line);
  if (bad) return `control byte 0x${bad[0].charCodeAt(0).toString(16).padStart(2, '0')} at offset ${bad.index}`;
  if (line.indexOf(SEP) !== line.lastIndexOf(SEP)) return 'more than one ENRICHED separator';
  if (!AUDIT_LINE_RE.test(line)) return 'not an audit record (node=NAME type=TYPE msg=audit(SEC.MS:SERIAL): ...)';
  return null;
}
