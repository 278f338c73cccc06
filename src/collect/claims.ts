// Cross-instance claims: which collector instance writes an event, kept in a JetStream stream with compare-and-set.
import { performance } from 'node:perf_hooks';
import { DiscardPolicy, JetStreamApiError, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';

/** What the claim of one event id says. */
export type ClaimResult =
  | { kind: 'own'; seq: number; at: number; tookOverFrom?: string }
  | { kind: 'written' }
  | { kind: 'wait'; ms: number }
  | { kind: 'lost' };

export interface ClaimsSpec {
  stream: string;
  /** How long a claim protects the instance that made it (ms). */
  leaseMs: number;
  /** How long a claim is kept at all (ms): the stream's max_age. */
  maxAgeMs: number;
  replicas: number;
  /** This instance's name: [A-Za-z0-9_-]; stable across restarts of one collector with one directory. */
  instance: string;
}

/** The server's "wrong last sequence" answer to a compare-and-set publish. */
const WRONG_LAST_SEQUENCE = 10071;
/** Other instances' claims first seen by this one: bounded like the recent ids. */
const MAX_SEEN = 100000;

const isCasFailure = (e: unknown): boolean =>
  e instanceof JetStreamApiError
    ? e.apiError().err_code === WRONG_LAST_SEQUENCE
    : /wrong last sequence/i.test(String((e as Error).message));

/**
 * One subject per event id (the id's '.' written '_', which no other part of an id holds, so ids never share a
 * subject), one message kept per subject: `c INSTANCE` (claimed) or `w INSTANCE` (written). Every change is a
 * publish that names the subject's last sequence, so of two instances racing only one wins.
 *
 * The rules that bound duplicates: an instance writes an event only within lease/2 of its claim (measured from before
 * the claim request, on its own monotonic clock); another instance takes a claim over only after seeing the same claim
 * unchanged for a whole lease on its own clock. So two instances write one event only if one of them stalls for more
 * than lease/2 inside one batch's synchronous write and flush, or dies between its flush and its `w` mark.
 */
export class ClaimStore {
  private readonly seen = new Map<string, { seq: number; since: number }>();
  private readonly subjectPrefix: string;

  constructor(
    private readonly spec: ClaimsSpec,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    consumer: string,
  ) {
    this.subjectPrefix = `amclaim.${consumer}.`;
  }

  /** Creates the claims stream when missing (several instances may race: the same config wins either way). */
  async ensure(): Promise<void> {
    try {
      await this.jsm.streams.info(this.spec.stream);
      return;
    } catch (e) {
      if (!/stream not found/i.test(String((e as Error).message))) throw e;
    }
    await this.jsm.streams
      .add({
        name: this.spec.stream,
        subjects: [`amclaim.>`],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        max_msgs_per_subject: 1,
        max_age: nanos(this.spec.maxAgeMs),
        num_replicas: this.spec.replicas,
      })
      .catch((e: Error) => {
        if (!/already in use|already exists/i.test(e.message)) throw e;
      });
  }

  private subject(id: string): string {
    return this.subjectPrefix + id.replace(/\./g, '_');
  }

  private async publish(id: string, state: 'c' | 'w', lastSeq: number): Promise<number | null> {
    try {
      const ack = await this.js.publish(this.subject(id), `${state} ${this.spec.instance}`, {
        expect: { lastSubjectSequence: lastSeq },
      });
      return ack.seq;
    } catch (e) {
      if (isCasFailure(e)) return null;
      throw e;
    }
  }

  /** Claims `id` for this instance, or says it was written, or how long to wait before another try. */
  async acquire(id: string): Promise<ClaimResult> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const at = performance.now();
      const seq = await this.publish(id, 'c', 0);
      if (seq !== null) return { kind: 'own', seq, at };
      const last = await this.jsm.streams.getMessage(this.spec.stream, { last_by_subj: this.subject(id) });
      if (!last) continue; // expired between the two requests: try again
      const [state, owner] = last.string().split(' ');
      if (state === 'w') return { kind: 'written' };
      const now = performance.now();
      // Its own claim (this instance restarted, or nak'ed the event) is renewed at once; another's only when stale.
      if (owner !== this.spec.instance) {
        const s = this.seen.get(id);
        if (!s || s.seq !== last.seq) {
          this.remember(id, last.seq, now);
          return { kind: 'wait', ms: this.spec.leaseMs };
        }
        if (now - s.since < this.spec.leaseMs)
          return { kind: 'wait', ms: Math.ceil(this.spec.leaseMs - (now - s.since)) };
      }
      const took = await this.publish(id, 'c', last.seq);
      if (took !== null) {
        this.seen.delete(id);
        return owner === this.spec.instance
          ? { kind: 'own', seq: took, at: now }
          : { kind: 'own', seq: took, at: now, tookOverFrom: owner ?? '' };
      }
    }
    return { kind: 'wait', ms: this.spec.leaseMs };
  }

  /** Whether a claim made at `at` still allows writing now. */
  mayWrite(c: { at: number }): boolean {
    return performance.now() - c.at <= this.spec.leaseMs / 2;
  }

  /** Marks `id` written; false when the claim was taken over meanwhile (this instance overran its lease). */
  async markWritten(id: string, seq: number): Promise<boolean> {
    return (await this.publish(id, 'w', seq)) !== null;
  }

  private remember(id: string, seq: number, since: number): void {
    this.seen.delete(id);
    this.seen.set(id, { seq, since });
    if (this.seen.size > MAX_SEEN) this.seen.delete(this.seen.keys().next().value as string);
  }
}
