// Container metadata for a process-isolated auxiliary daemon: what the host sends (only containers of events routed to
// that daemon) and the bounded copy the daemon's process keeps of it for its outputs and JSON log.
import { Buffer } from 'node:buffer';
import { AUDITMUX_CONTAINER_ID, CONTID_CONTAINER_ID } from '../kernel/constants';
import { u16le, u32le } from '../bytes';
import type { ContainerDirectory, ContainerFacts } from '../contid/meta-selector';
import { containerEntry, type ContainerEntry, type ContainerFields } from '../output/container-fields';
import { encodeContainer, encodeForget } from './aux-ipc';

/**
 * Containers one process daemon holds at once. The host decides what the process keeps (least recently routed first
 * out, with a FORGET); the process enforces the same cap on its own so a wrong host cannot grow it. An entry's JSON is
 * at most MAX_CONTAINER_JSON (8 KiB), so at most 8 MiB per process, a few hundred bytes per container in practice.
 */
export const AUX_CONTAINERS_MAX = 1024;

/** What the host remembers of a container it sent: the registry's facts it was made from, not its JSON. */
interface Sent {
  /** The registry version these facts were last compared at. */
  version: number;
  facts: ContainerFacts;
  /** When an event of it was last sent (a counter): the least recent one is forgotten when the cap is reached. */
  used: number;
}

/** Where the last digitsOf found the contid's digits in its frame: [digitsFrom, digitsTo). No allocation per event. */
let digitsFrom = 0;
let digitsTo = 0;

/**
 * Finds the contid of an event frame (`u32 len | u8 kind | f64 seq | u16 nrec | (u16 type | u32 len | bytes)*`) as
 * routing decided it: read only from the CONTAINER_ID record, which the host's routing wrote (mainline) or the kernel
 * did (the contid patch set), never from text an audited process could put in a user message. The first id of the
 * chain: true with its digits at [digitsFrom, digitsTo), false when there is none. Byte compares, no string, no native
 * call: this runs for every event sent to a process daemon.
 */
function digitsOf(frame: Buffer, contidKernel: boolean): boolean {
  if (frame.length < 15) return false;
  const n = u16le(frame, 13);
  let off = 15;
  for (let i = 0; i < n && off + 6 <= frame.length; i++) {
    const type = u16le(frame, off);
    const start = off + 6;
    off = start + u32le(frame, off + 2);
    if (type !== AUDITMUX_CONTAINER_ID && !(contidKernel && type === CONTID_CONTAINER_ID)) continue;
    const end = Math.min(off, frame.length);
    // ` contid=`: the field, not the tail of another field's name.
    for (let p = start + 1; p + 7 < end; p++) {
      if (
        frame[p] !== 0x63 ||
        frame[p + 1] !== 0x6f ||
        frame[p + 2] !== 0x6e ||
        frame[p + 3] !== 0x74 ||
        frame[p + 4] !== 0x69 ||
        frame[p + 5] !== 0x64 ||
        frame[p + 6] !== 0x3d ||
        frame[p - 1] !== 0x20
      )
        continue;
      let from = p + 7;
      if (frame[from] === 0x22) from++; // a quoted value
      let to = from;
      while (to < end && to - from <= 20 && frame[to]! >= 0x30 && frame[to]! <= 0x39) to++;
      if (to === from || to - from > 20) return false;
      digitsFrom = from;
      digitsTo = to;
      return true;
    }
    return false;
  }
  return false;
}

/** The contid routing decided for an event frame, as digits; null when there is none (see digitsOf). */
export function routedContidOf(frame: Buffer, contidKernel: boolean): string | null {
  return digitsOf(frame, contidKernel) ? frame.toString('latin1', digitsFrom, digitsTo) : null;
}

/** Whether the facts an entry shows changed: by value, labels by reference (the registry replaces them, not edits). */
function sameFacts(a: ContainerFacts, b: ContainerFacts): boolean {
  return (
    a.name === b.name &&
    a.image === b.image &&
    a.runtime === b.runtime &&
    a.pod === b.pod &&
    a.namespace === b.namespace &&
    a.labels === b.labels
  );
}

/**
 * Host side, one per process of a daemon: which containers that process has been told about. Before an event frame
 * goes out, `before` adds a CONTAINER frame when the process lacks its container (or holds an older form of it);
 * `sweep` tells updates and retirements after a registry change. A retired container is forgotten only when the
 * registry's grace for it ends (RETIRE_GRACE_MS): its late events, routed after its retirement, still carry it. A
 * container is only ever sent because an event of it was routed to this daemon: a tenant learns nothing of the host's
 * or another tenant's containers. Per event: one frame walk to the CONTAINER_ID record and, while the contid and the
 * registry version stay the same, nothing else.
 */
export class ContainerFeed {
  private readonly sent = new Map<string, Sent>();
  private clock = 0;
  /** The digits of the last event's contid and the registry version then: a run of its events costs no more. */
  private readonly lastDigits = Buffer.alloc(20);
  private lastLength = 0;
  private lastVersion = -1;
  private sweptVersion: number;
  readonly counters = { sent: 0, updated: 0, forgotten: 0 };

  constructor(
    private readonly directory: ContainerDirectory,
    private readonly contidKernel: boolean,
    private readonly max = AUX_CONTAINERS_MAX,
  ) {
    this.sweptVersion = directory.version;
  }

  /** Containers the process holds now. */
  get size(): number {
    return this.sent.size;
  }

  /** Pushes onto `out` what must reach the process before `frame` (an EVENT frame). */
  before(frame: Buffer, out: Buffer[]): void {
    if (!digitsOf(frame, this.contidKernel)) return;
    const version = this.directory.version;
    const len = digitsTo - digitsFrom;
    let same = version === this.lastVersion && len === this.lastLength;
    for (let i = 0; same && i < len; i++) same = frame[digitsFrom + i] === this.lastDigits[i];
    if (same) return;
    frame.copy(this.lastDigits, 0, digitsFrom, digitsTo);
    this.lastLength = len;
    this.lastVersion = version;
    // The text without leading zeros the process keys by (the kernel and routing write none).
    let contid = frame.toString('latin1', digitsFrom, digitsTo);
    if (len > 1 && contid.charCodeAt(0) === 0x30) contid = BigInt(contid).toString();
    const cur = this.sent.get(contid);
    if (cur) {
      cur.used = ++this.clock;
      if (cur.version === version) return;
    }
    this.refresh(contid, cur, version, out);
  }

  /** After a registry change: containers that changed are sent again, those retired past their grace forgotten. */
  sweep(out: Buffer[]): void {
    const version = this.directory.version;
    if (version === this.sweptVersion) return;
    this.sweptVersion = version;
    for (const [contid, cur] of [...this.sent]) {
      if (cur.version === version) continue;
      this.refresh(contid, cur, version, out);
    }
  }

  private refresh(contid: string, cur: Sent | undefined, version: number, out: Buffer[]): void {
    const facts = this.directory.facts(BigInt(contid));
    if (cur && facts && sameFacts(cur.facts, facts)) {
      cur.version = version;
      return;
    }
    const entry = containerEntry(facts);
    if (!facts || !entry) {
      // Retired, and its grace over: the process forgets what it was told. Never known: nothing to tell (a Map lookup
      // per event of it when its events are mixed with others', none in a run of them).
      if (cur) {
        this.sent.delete(contid);
        out.push(encodeForget(contid));
        this.counters.forgotten++;
      }
      return;
    }
    if (cur) {
      this.counters.updated++;
      cur.version = version;
      cur.facts = facts;
    } else {
      this.counters.sent++;
      this.remember(contid, { version, facts, used: ++this.clock }, out);
    }
    out.push(encodeContainer(contid, entry.json));
  }

  /**
   * Adds an entry, first forgetting the least recently used one when at the cap: the FORGET frame goes before the new
   * CONTAINER frame, so the process (which enforces the same cap) never has to evict anything on its own. A scan of
   * the entries, only when a daemon's containers pass the cap; an event of a known container costs a counter write.
   */
  private remember(contid: string, s: Sent, out: Buffer[]): void {
    while (this.sent.size >= this.max) {
      let oldest = '';
      let min = Infinity;
      for (const [c, e] of this.sent)
        if (e.used < min) {
          min = e.used;
          oldest = c;
        }
      this.sent.delete(oldest);
      out.push(encodeForget(oldest));
      this.counters.forgotten++;
    }
    this.sent.set(contid, s);
  }
}

/**
 * Process side: the containers the host sent, as the directory the outputs and the JSON log look contids up in. Its
 * version changes with every CONTAINER or FORGET frame, so the outputs' caches start over then. Bounded by `max`
 * whatever the host sends: the oldest entry goes first.
 */
export class ContainerMirror implements ContainerDirectory {
  private readonly entries = new Map<string, ContainerEntry>();
  version = 0;

  constructor(private readonly max = AUX_CONTAINERS_MAX) {}

  get size(): number {
    return this.entries.size;
  }

  set(contid: string, entry: ContainerEntry): void {
    this.entries.delete(contid);
    this.entries.set(contid, entry);
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
    this.version++;
  }

  forget(contid: string): void {
    if (this.entries.delete(contid)) this.version++;
  }

  facts(contid: bigint): Readonly<ContainerFields> | undefined {
    return this.entries.get(contid.toString())?.fields;
  }
}
