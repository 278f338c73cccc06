// Waits for a recovered spool's background count (Spool.uncounted) to finish, a turn of the event loop at a time.
import type { RecordQueue } from '../../src/output/transport/spool';

/** Resolves once `q` counts every record it holds; throws when the count stops short (it must never stall). */
export async function counted(q: RecordQueue, maxTurns = 100_000): Promise<void> {
  for (let i = 0; i < maxTurns && q.uncounted > 0; i++) await new Promise<void>((r) => setImmediate(r));
  if (q.uncounted > 0) throw new Error(`the spool's count stalled with ${q.uncounted} bytes not counted`);
}
