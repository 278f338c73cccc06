// Escaping of log text printed to a terminal or a shell: auparse's escape modes (ausearch --escape), tty by default.
import { Buffer } from 'node:buffer';
import { octalByte } from '../records/encode';

export type EscapeMode = 'raw' | 'tty' | 'shell' | 'shell_quote';
export const ESCAPE_MODES: readonly EscapeMode[] = ['raw', 'tty', 'shell', 'shell_quote'];

/** auparse sh_set and quote_set: the characters shell and shell_quote put a backslash before. */
const SH_SET = new Set('"\'`$\\!()| ');
const QUOTE_SET = new Set('"\'`$\\!()| ;#&*?[]<>{}');

/**
 * Characters a terminal acts on: C0 controls (ESC starts sequences, \r and \b rewrite what was printed, \n fakes a
 * record), DEL, and the C1 controls U+0080-U+009F (U+009B is a CSI on terminals that honour 8-bit controls).
 * auparse's tty escape covers only bytes below 0x20; DEL and C1 are escaped here as well.
 */
function isControl(c: number): boolean {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/** `\ooo` of every UTF-8 byte of code point c, the form auparse prints for a control byte. */
function octal(c: number): string {
  let out = '';
  for (const b of Buffer.from(String.fromCharCode(c), 'utf8')) out += octalByte(b);
  return out;
}

/** A value as ausearch --escape MODE prints it (tty is ausearch -i's default). */
export function escapeFor(s: string, mode: EscapeMode): string {
  if (mode === 'raw') return s;
  const set = mode === 'shell' ? SH_SET : mode === 'shell_quote' ? QUOTE_SET : null;
  let i = 0;
  const n = s.length;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (isControl(c) || (set !== null && set.has(s[i]!))) break;
  }
  if (i === n) return s;
  let out = s.slice(0, i);
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (isControl(c)) out += octal(c);
    else if (set !== null && set.has(s[i]!)) out += '\\' + s[i];
    else out += s[i];
  }
  return out;
}

/** Terminal-safe text for the text report: controls escaped as ausearch -i does. */
export function ttyEscape(s: string): string {
  return escapeFor(s, 'tty');
}

/**
 * A message for the operator's terminal (the CLI's errors): controls escaped as ttyEscape does, except the newlines
 * that separate its lines. An error quotes a tenant's rule text and file names, which may hold ESC sequences.
 */
export function messageEscape(s: string): string {
  return s
    .split('\n')
    .map((l) => ttyEscape(l))
    .join('\n');
}

/**
 * JSON text with the C1 controls (U+0080-U+009F) and DEL escaped too: JSON.stringify leaves them as they are, and
 * printed to a terminal U+009B is CSI to some. A value from the log (a decoded key, a hex field) holds any byte.
 */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
