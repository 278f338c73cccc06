// The nats output's order tag (Auditmux-Seq header, `s=EPOCH.N` in spool entries): formatting and strict parsing.
import { AuditmuxError } from '../../errors';

/** Header carrying OUTPUT:EPOCH.N: the publishing output, its numbering's epoch and the entry's place in it. */
export const SEQ_HEADER = 'Auditmux-Seq';
/** Longest header value accepted; a real one is under 100 bytes. */
export const MAX_SEQ_HEADER = 128;

export interface SeqTag {
  /** The output's name as a subject token ([A-Za-z0-9_~-]). */
  output: string;
  /** Digits: milliseconds since 1970 when the output started with an empty spool; compared for equality only. */
  epoch: string;
  /** 1, 2, 3... per spool entry in spool order. */
  n: number;
}

/** A header value that is not OUTPUT:EPOCH.N: counted by the collector, the event is still written (unordered). */
export class SeqHeaderError extends AuditmuxError {
  constructor(reason: string) {
    super('E_SEQ_HEADER', reason);
  }
}

const EPOCH_RE = /^[0-9]{1,16}$/;
const N_RE = /^[1-9][0-9]{0,15}$/;
const OUTPUT_RE = /^[A-Za-z0-9_~-]{1,200}$/;

export function formatSeqHeader(output: string, epoch: string, n: number): string {
  return `${output}:${epoch}.${n}`;
}

/** Parses an `s=EPOCH.N` token's value (EPOCH.N); null when it is not one. */
function parseEpochN(v: string): { epoch: string; n: number } | null {
  const dot = v.indexOf('.');
  if (dot < 0) return null;
  const epoch = v.slice(0, dot);
  const ns = v.slice(dot + 1);
  if (!EPOCH_RE.test(epoch) || !N_RE.test(ns)) return null;
  const n = Number(ns);
  return Number.isSafeInteger(n) ? { epoch, n } : null;
}

/**
 * Parses a header value from whoever published on the stream: strictly OUTPUT:EPOCH.N, bounded in length, N a safe
 * integer of at least 1. Anything else throws SeqHeaderError with a reason that never quotes the value.
 */
export function parseSeqHeader(value: string): SeqTag {
  if (value.length > MAX_SEQ_HEADER) throw new SeqHeaderError(`${SEQ_HEADER} longer than ${MAX_SEQ_HEADER} bytes`);
  const colon = value.lastIndexOf(':');
  if (colon <= 0) throw new SeqHeaderError(`${SEQ_HEADER} is not OUTPUT:EPOCH.N`);
  const output = value.slice(0, colon);
  if (!OUTPUT_RE.test(output)) throw new SeqHeaderError(`${SEQ_HEADER} output is not a subject token`);
  const en = parseEpochN(value.slice(colon + 1));
  if (!en) throw new SeqHeaderError(`${SEQ_HEADER} is not OUTPUT:EPOCH.N with N a positive integer`);
  return { output, ...en };
}

export interface EntryHead {
  id: string;
  seq: { epoch: string; n: number } | null;
  /** The container's JSON text, or null. */
  json: string | null;
}

/**
 * The first line of a spool entry: `MSGID`, `MSGID {json}` (older versions), `MSGID s=EPOCH.N` or
 * `MSGID s=EPOCH.N {json}`. A damaged `s=` token reads as no tag (the entry is still sent, without the header).
 */
export function parseEntryHead(head: string): EntryHead {
  const sp = head.indexOf(' ');
  if (sp < 0) return { id: head, seq: null, json: null };
  const id = head.slice(0, sp);
  let rest = head.slice(sp + 1);
  let seq: EntryHead['seq'] = null;
  if (rest.startsWith('s=')) {
    const end = rest.indexOf(' ');
    seq = parseEpochN(rest.slice(2, end < 0 ? rest.length : end));
    rest = end < 0 ? '' : rest.slice(end + 1);
  }
  return { id, seq, json: rest.length ? rest : null };
}
