// Renders found events: raw log lines, an ausearch -i style interpreted text, or one JSON object per event.
import { escapeFor, type EscapeMode } from './escape';
import { decodeKeys } from '../records/fields';
import { IdNameCache } from '../vocab/accounts';
import { errnoName } from '../vocab/errno';
import { FIELD_KIND, interpretsSaddr, interpretText, K_SOCKADDR, parseHex } from '../vocab/interpret';
import { recordTypeNumber } from '../vocab/msgtypes';
import { AUDIT_UID_UNSET } from '../kernel/constants';
import { fieldString, newHeader, parseHeader, recordTypeName, tokenize, type Field, type LineHeader } from './logline';
import type { SearchEvent } from './scan';

export type OutputFormat = 'raw' | 'text' | 'json';

/** One record split into its parts; shared by the text and JSON forms and the report. */
export interface ParsedRecord {
  type: string;
  fields: Field[];
  /** ENRICHED logs: the NAME=value pairs after 0x1D. */
  enriched: Field[] | null;
}

export function parseRecordLine(line: Buffer, h: LineHeader = newHeader()): ParsedRecord | null {
  if (parseHeader(line, 0, line.length, h) !== null) return null;
  const type = recordTypeName(line, h);
  const fields = tokenize(line.toString('utf8', h.bodyStart, h.bodyEnd));
  const enriched = h.bodyEnd < line.length ? tokenize(line.toString('utf8', h.bodyEnd + 1)) : null;
  return { type, fields, enriched };
}

export function rawEvent(ev: SearchEvent): string {
  let s = '';
  for (const l of ev.lines) s += l.toString('latin1') + '\n';
  return s;
}

const FILE_TYPES: ReadonlyArray<[number, string]> = [
  [0o140000, 'socket'],
  [0o120000, 'link'],
  [0o100000, 'file'],
  [0o060000, 'block-device'],
  [0o040000, 'dir'],
  [0o020000, 'character-device'],
  [0o010000, 'fifo'],
];

const UNSET_TEXT = String(AUDIT_UID_UNSET);

function mode(raw: string): string {
  if (!/^0?[0-7]{1,7}$/.test(raw)) return raw;
  const m = parseInt(raw, 8);
  const t = FILE_TYPES.find(([bits]) => (m & 0o170000) === bits);
  const extra = [m & 0o4000 ? 'suid' : '', m & 0o2000 ? 'sgid' : '', m & 0o1000 ? 'sticky' : ''].filter(Boolean);
  return [t ? t[1] : '', ...extra, (m & 0o777).toString(8).padStart(3, '0')].filter(Boolean).join(',');
}

/** Interprets records as ausearch -i does for the fields people read most; unknown fields pass through decoded. */
export class Interpreter {
  constructor(private readonly ids: IdNameCache = new IdNameCache()) {}

  /** Interpreted [name, value] pairs of a record (keys expanded into one pair each, as ausearch prints them). */
  fields(rec: ParsedRecord): Field[] {
    const out: Field[] = [];
    const arch = rec.fields.find((f) => f[0] === 'arch')?.[1];
    const ctx = { arch: arch === undefined || arch === null ? -1 : parseHex(arch), type: recordTypeNumber(rec.type) };
    for (const [name, raw] of rec.fields) {
      if (raw === null) {
        out.push([name, null]);
        continue;
      }
      if (name === 'key' && raw !== '(null)') {
        // ausearch prints every key of a multi-key rule as its own key= field
        for (const k of decodeKeys(raw)) out.push(['key', k]);
        continue;
      }
      out.push([name, this.value(rec.type, name, raw, ctx)]);
    }
    return out;
  }

  private value(type: string, name: string, raw: string, ctx: { arch: number; type: number | undefined }): string {
    // The fields the log writer interprets (ENRICHED), by the same rules and texts.
    const kind = FIELD_KIND.get(name);
    if (kind !== undefined && (kind !== K_SOCKADDR || ctx.type === undefined || interpretsSaddr(ctx.type)))
      return interpretText(this.ids, kind, raw, ctx.arch);
    switch (name) {
      case 'exit': {
        const n = Number(raw);
        return type === 'SYSCALL' && Number.isInteger(n) && n < 0 ? (errnoName(-n) ?? raw) : raw;
      }
      case 'ses':
        return raw === UNSET_TEXT ? 'unset' : raw;
      case 'res':
        return raw === '1' || raw === 'success' ? 'yes' : raw === '0' || raw === 'failed' ? 'no' : raw;
      case 'mode':
        return mode(raw);
      case 'contid':
      case 'old-contid':
        return raw === '-1' || raw === '18446744073709551615' ? 'unset' : raw;
    }
    if (type === 'SYSCALL' && /^a[0-3]$/.test(name) && /^[0-9a-f]+$/.test(raw)) return '0x' + raw;
    return fieldString(type, name, raw);
  }
}

function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

/** ausearch -i's time: %x %T in the C locale (MM/DD/YY HH:MM:SS), local time, then .mmm:serial. */
export function interpretedStamp(ev: { sec: number; ms: number; serial: number }): string {
  const d = new Date(ev.sec * 1000);
  const date = `${pad2(d.getMonth() + 1)}/${pad2(d.getDate())}/${pad2(d.getFullYear() % 100)}`;
  const time = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  return `${date} ${time}.${String(ev.ms).padStart(3, '0')}:${ev.serial}`;
}

/**
 * ausearch -i's text. Every piece taken from the log (node, type, names, decoded values) is escaped for the
 * terminal (`mode`, tty by default as in ausearch): a decoded exe= or an AF_UNIX path must not move the cursor,
 * clear the screen or print a line that looks like another record.
 */
export function textEvent(ev: SearchEvent, interp: Interpreter, mode: EscapeMode = 'tty'): string {
  let s = '----\n';
  const h = newHeader();
  const stamp = interpretedStamp(ev);
  const e = (t: string): string => escapeFor(t, mode);
  for (const line of ev.lines) {
    const rec = parseRecordLine(line, h);
    if (!rec) continue;
    s += (ev.node !== null ? `node=${e(ev.node)} ` : '') + `type=${e(rec.type)} msg=audit(${stamp}) : `;
    for (const [k, v] of interp.fields(rec)) s += v === null ? e(k) + ' ' : `${e(k)}=${e(v)} `;
    s += '\n';
  }
  return s;
}

/** Decoded (unquoted, hex-decoded, keys split) pairs for machines: raw numbers stay numbers-as-text. */
export function decodedFields(rec: ParsedRecord): Field[] {
  const out: Field[] = [];
  for (const [name, raw] of rec.fields) {
    if (raw === null) out.push([name, null]);
    else if (name === 'key' && raw !== '(null)') for (const k of decodeKeys(raw)) out.push(['key', k]);
    else out.push([name, fieldString(rec.type, name, raw)]);
  }
  return out;
}

export interface JsonEvent {
  time: string;
  sec: number;
  ms: number;
  serial: number;
  node: string | null;
  file: string;
  line: number;
  /** Every contid chain named by the event's CONTAINER_ID records, as written (`4,^2,^1`); empty when none. */
  contid: string[];
  records: Array<{ type: string; fields: Field[]; enriched?: Field[] }>;
}

export function jsonEvent(ev: SearchEvent): JsonEvent {
  const h = newHeader();
  const records: JsonEvent['records'] = [];
  const contid: string[] = [];
  for (const line of ev.lines) {
    const rec = parseRecordLine(line, h);
    if (!rec) continue;
    const fields = decodedFields(rec);
    if (rec.type === 'CONTAINER_ID') for (const [k, v] of fields) if (k === 'contid' && v !== null) contid.push(v);
    records.push(rec.enriched ? { type: rec.type, fields, enriched: rec.enriched } : { type: rec.type, fields });
  }
  return {
    time: new Date(ev.sec * 1000 + ev.ms).toISOString(),
    sec: ev.sec,
    ms: ev.ms,
    serial: ev.serial,
    node: ev.node,
    file: ev.file,
    line: ev.line,
    contid,
    records,
  };
}
