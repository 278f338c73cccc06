// Several collector instances on one durable consumer: claims (compare-and-set in a JetStream stream) keep every
// event written by one instance, also when an instance stalls past ack_wait and its messages go to another.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { ClaimStore } from '../../src/collect/claims';
import { fileLines as lines, until, withFleet, type Fleet } from '../helpers/nats';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A ClaimStore of a pretend instance, to plant the claims a stalled or dead instance leaves. */
async function plantedStore(f: Fleet, instance: string): Promise<ClaimStore> {
  const nc = await connect({ servers: f.urls });
  f.defer(() => nc.close());
  const s = new ClaimStore(
    { stream: 'AUDITMUX_CLAIMS', leaseMs: 2000, maxAgeMs: 3600_000, replicas: 1, instance },
    jetstream(nc),
    await jetstreamManager(nc),
    'central',
  );
  await s.ensure();
  return s;
}

const CLAIMS = 'consumer: central\nack_wait: 2\nbatch: 50\nclaims: { lease: 2 }\n';

/**
 * What the collector claims for each event a host published, in order (from the stream): its msg id without the
 * daemon (`:dDAEMON`), as without per_daemon one node log takes one copy of an event whichever daemon sent it.
 */
async function ids(f: Fleet): Promise<string[]> {
  const { streamMessages } = await import('../helpers/nats');
  return (await streamMessages(f.srv.url, 'AUDIT')).map((m) => m.id.replace(/:d[A-Za-z0-9_~-]+$/, ''));
}

test('claims: an event another instance marked written is acknowledged, not written; a live claim is waited for', () =>
  withFleet({}, async (f) => {
    const a = f.host('hosta');
    a.emit(0, 4);
    await a.drained();
    const [id0, id1] = await ids(f);
    const other = await plantedStore(f, 'other');
    // Event 0: written by the other instance (it has not acknowledged yet). Event 1: claimed by it, still writing.
    const c0 = await other.acquire(id0!);
    assert.equal(c0.kind, 'own');
    assert.ok(await other.markWritten(id0!, (c0 as { seq: number }).seq));
    assert.equal((await other.acquire(id1!)).kind, 'own');
    const c = f.collector('fleet', CLAIMS);
    await c.start();
    await until(
      () => c.counters.written === 2 && c.counters.duplicates === 1 && c.counters.claimWaits >= 1,
      () => JSON.stringify(c.status()),
    );
    const want = lines(a.log);
    const got = () => lines(path.join(f.dir, 'fleet', 'hosta', 'audit.log'));
    assert.deepEqual(
      got(),
      want.filter((l) => /:100[23]\)/.test(l)),
    );
    // Event 1's claim goes stale (nobody marks it for a whole lease): taken over, written once.
    await until(
      () => c.counters.written === 3,
      () => JSON.stringify(c.status()),
    );
    assert.equal(c.counters.claimTakeovers, 1);
    assert.deepEqual(got().sort(), want.filter((l) => !l.includes(':1000)')).sort());
    // The stalled instance wakes: its claim is gone, it may not write; the store says so.
    assert.equal(await other.markWritten(id1!, 2), false);
    assert.equal((await other.acquire(id1!)).kind, 'written');
  }));

/** The counters a CLI instance last wrote to its status file. */
const statusOf = (f: Fleet, n: string): Record<string, number> =>
  JSON.parse(fs.readFileSync(path.join(f.dir, n, 'collect.status'), 'utf8')) as Record<string, number>;

/** The same, or null while the file is not there (or is being replaced). */
function statusOrNull(f: Fleet, n: string): Record<string, number> | null {
  try {
    return statusOf(f, n);
  } catch {
    return null;
  }
}

// Instance 1 freezes (SIGSTOP) for 2.5 s holding messages, longer than ack_wait (1 s): they are redelivered to
// instance 2 while instance 1 may be anywhere in its batch. With a lease (6 s) above twice the stall, no event is
// written twice; with a lease below the stall, any event written twice is one an instance counted as a claim overrun.
for (const lease of [6, 1])
  test(`two CLI instances, one frozen past ack_wait again and again, claims lease ${lease} s: the bound holds`, () =>
    withFleet({}, async (f) => {
      const a = f.host('hosta');
      a.emit(0, 1);
      await a.drained();
      const cfg = (n: string): string => {
        const file = path.join(f.dir, `${n}.yaml`);
        fs.writeFileSync(
          file,
          f.collectYaml(
            `consumer: central\nack_wait: 1\nbatch: 20\ndir: ${path.join(f.dir, n)}\nclaims: { lease: ${lease} }\n`,
          ),
        );
        return file;
      };
      const c1 = f.collectCli(cfg('f1'));
      const c2 = f.collectCli(cfg('f2'));
      const all = (): string[] => [
        ...lines(path.join(f.dir, 'f1', 'hosta', 'audit.log')),
        ...lines(path.join(f.dir, 'f2', 'hosta', 'audit.log')),
      ];
      await until(
        () => all().length === 4,
        () => `${all().length} lines`,
      );
      // Whether instance 1 holds messages when it freezes depends on timing (a fast machine may have acknowledged all
      // 300 in the pause before the freeze): the pause varies, and rounds go on (at least 6) until instance 2 has
      // reported a redelivery, which the status file it writes every second shows.
      const pauses = [150, 20, 60, 0, 100, 40];
      let round = 0;
      for (; round < 6 || (round < 30 && !((statusOrNull(f, 'f2')?.redeliveries ?? 0) > 0)); round++) {
        a.emit(1 + round * 300, 1 + (round + 1) * 300);
        await sleep(pauses[round % pauses.length]!);
        c1.kill('SIGSTOP');
        await sleep(2500);
        c1.kill('SIGCONT');
        await sleep(1300);
      }
      const events = 1 + round * 300;
      await until(
        () => new Set(all()).size === events * 4,
        () => `${new Set(all()).size} distinct lines of ${events * 4}`,
        90000,
      );
      await sleep(lease * 1000 + 2000);
      for (const c of [c1, c2]) {
        const dead = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        await dead;
      }
      const got = all();
      const twice = (got.length - new Set(got).size) / 4;
      const s1 = statusOf(f, 'f1');
      const s2 = statusOf(f, 'f2');
      assert.ok(s1.written! > 0 && s2.written! > 0, 'both instances wrote');
      assert.ok(s2.redeliveries! > 0, "instance 2 got instance 1's messages");
      if (lease === 6) assert.equal(twice, 0, 'events written twice');
      else assert.ok(twice <= s1.claimOverruns! + s2.claimOverruns!, `${twice} twice, ${JSON.stringify([s1, s2])}`);
      assert.deepEqual([...new Set(got)].sort(), [...new Set(lines(a.log))].sort());
    }));
