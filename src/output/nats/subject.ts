// NATS subject tokens, message ids and event stamps for the nats output: every untrusted value (node, daemon, contid,
// container name, image, runtime, pod, namespace) is escaped into one token.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import { readBounded } from '../../safefs';
import { CONTAINER_FIELDS, type ContainerEntry, type ContainerField } from '../container-fields';

/**
 * One subject token from an untrusted value: bytes outside [A-Za-z0-9_-] (so '.', '*', '>', whitespace, '~' and every
 * control or non-ASCII byte) become `~XX` (hex). The mapping is injective, so two values never share a token, and the
 * result never splits into two tokens nor acts as a wildcard. The empty value is `~`.
 */
export function subjectToken(value: string): string {
  return value.length === 0 ? '~' : bytesToken(Buffer.from(value, 'utf8'));
}

/** subjectToken of a value given as its bytes (a name read back from a log line, which is not UTF-8 decoded). */
export function bytesToken(b: Buffer): string {
  if (b.length === 0) return '~';
  let out = '';
  for (const c of b) {
    const ok =
      (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x2d;
    out += ok ? String.fromCharCode(c) : `~${c.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Inverse of subjectToken for tokens it produced (the collector shows node names as they were). */
export function subjectTokenValue(token: string): string {
  if (token === '~') return '';
  return Buffer.from(
    token.replace(/~([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  ).toString('utf8');
}

export interface SubjectValues {
  node: string;
  daemon: string;
  /** null: the event has no container id. */
  contid: string | null;
  /** The event's container as the registry knows it; null or absent: unknown (its placeholders are `none`). */
  container?: ContainerEntry | null;
}

/** Fills a validated template (config/outputs.ts natsTemplateError): each placeholder becomes one escaped token. */
export function buildSubject(template: string, v: SubjectValues): string {
  return subjectFor(template, v.node, v.daemon)(v.contid, v.container ?? null);
}

/** What a placeholder is filled with when the event has no container, or the container lacks that field. */
export const NO_VALUE_TOKEN = 'none';

/** The longest container-field token written whole (a longer one is cut and hashed: valueToken). */
export const VALUE_TOKEN_MAX = 64;

/**
 * A container field's token: subjectToken, except that a container really named `none` becomes `~6Eone` (its first
 * byte escaped, which subjectToken never does to a letter), so it is told apart from "no value" and stays injective.
 * A token longer than VALUE_TOKEN_MAX is cut at a whole escape and ends in `~~` and 128 bits of the token's SHA-256
 * (capToken): still one token per value (no escaped value holds `~~`: a `~` is always followed by two hex digits),
 * and a subject stays far below a NATS control line (4 KiB by default; the server closes the connection past it, and
 * the entry would be sent again and again) however long a container's name or image (annotations reach 4 KiB, 12 KiB
 * escaped).
 */
export function valueToken(v: string): string {
  return v === NO_VALUE_TOKEN ? '~6Eone' : capToken(subjectToken(v), VALUE_TOKEN_MAX, VALUE_TOKEN_MAX);
}

/**
 * A token longer than `max` as its first `keep` characters, cut at a whole `~XX` escape, then `~~` and 32 hex digits
 * of its SHA-256: still one token per value (no escaped token holds `~~`), of at most keep + 34 characters.
 */
export function capToken(t: string, max: number, keep: number): string {
  if (t.length <= max) return t;
  let cut = keep;
  if (t[cut - 1] === '~') cut -= 1;
  else if (t[cut - 2] === '~') cut -= 2;
  return `${t.slice(0, cut)}~~${createHash('sha256').update(t).digest('hex').slice(0, 32)}`;
}

const isMeta = (t: string): ContainerField | null => {
  const f = t.length > 2 && t[0] === '{' && t[t.length - 1] === '}' ? t.slice(1, -1) : '';
  return (CONTAINER_FIELDS as readonly string[]).includes(f) ? (f as ContainerField) : null;
};

/**
 * The template with node and daemon, which never change for an output, escaped once: what is left per event is the
 * contid token and the container's tokens. Those are escaped once per container too: a bounded cache keyed by the
 * container's JSON text (what the spool entry carries) holds them.
 */
export function subjectFor(
  template: string,
  node: string,
  daemon: string,
): (contid: string | null, container?: ContainerEntry | null) => string {
  const parts = template
    .split('.')
    .map((t) => (t === '{node}' ? subjectToken(node) : t === '{daemon}' ? subjectToken(daemon) : t));
  const at = parts.indexOf('{contid}');
  const meta: Array<{ at: number; field: ContainerField }> = [];
  parts.forEach((t, i) => {
    const f = isMeta(t);
    if (f) meta.push({ at: i, field: f });
  });
  if (at < 0 && meta.length === 0) {
    const fixed = parts.join('.');
    return () => fixed;
  }
  const tokens = new Map<string, string[]>();
  const none = meta.map(() => NO_VALUE_TOKEN);
  const tokensOf = (c: ContainerEntry | null | undefined): string[] => {
    if (!c) return none;
    let t = tokens.get(c.json);
    if (!t) {
      t = meta.map((m) => {
        const v = c.fields[m.field];
        return v === undefined ? NO_VALUE_TOKEN : valueToken(v);
      });
      if (tokens.size >= SUBJECT_CACHE_MAX) tokens.clear();
      tokens.set(c.json, t);
    }
    return t;
  };
  return (contid, container) => {
    if (at >= 0) parts[at] = contid === null ? NO_VALUE_TOKEN : subjectToken(contid);
    if (meta.length) {
      const t = tokensOf(container);
      for (let i = 0; i < meta.length; i++) parts[(meta[i] as { at: number }).at] = t[i] as string;
    }
    return parts.join('.');
  };
}

/** Containers whose escaped tokens one output keeps; the cache starts over when full. */
const SUBJECT_CACHE_MAX = 1024;

/**
 * `Nats-Msg-Id`: node, boot id, event time, serial (and a part number when one event needed several messages), then
 * `:d` and the daemon's token. The kernel's serial restarts at boot, so the boot id keeps ids of two boots apart even
 * with a clock set back. The daemon keeps the host's and a tenant's copy of one event apart: JetStream deduplicates by
 * id across the whole stream, so with the same id the second copy was dropped as a duplicate of the first.
 */
export function messageId(
  node: string,
  bootId: string,
  time: string,
  serial: string,
  part: number,
  daemon: string,
): string {
  return `${subjectToken(node)}:${bootId}:${time}:${serial}${part > 0 ? `:p${part}` : ''}:d${subjectToken(daemon)}`;
}

/** /proc/sys/kernel/random/boot_id without dashes; `noboot` where /proc lacks it. */
export function readBootId(path = '/proc/sys/kernel/random/boot_id'): string {
  try {
    const t = readBounded(path, { limit: 128, what: 'boot id' }).data.toString('latin1').trim();
    const h = t.replace(/-/g, '');
    return /^[0-9a-f]{32}$/.test(h) ? h : 'noboot';
  } catch {
    return 'noboot';
  }
}

/** The node name used in subjects and ids when the daemon has no name_format: the host name. */
export function defaultNode(nodeName: string | undefined): string {
  return nodeName ?? os.hostname();
}
