// A 3-node JetStream cluster (real nats-servers), stream with 3 replicas, its leader killed and restarted mid-stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Collector, jetStreamUnavailable } from '../../src/collect/collector';
import { parseCollectConfig } from '../../src/collect/config';
import {
  fileLines as lines,
  quiet,
  streamLeader,
  streamMessages,
  syscallEvent,
  until,
  withFleet,
} from '../helpers/nats';

test(
  '3-node cluster, R3 stream: leader killed and restarted while two hosts publish; every event collected once',
  { timeout: 240000 },
  (t) =>
    withFleet({ cluster: 3, prefix: 'auditmux-cluster-' }, async (f) => {
      const ev = (i: number): ReturnType<typeof syscallEvent> => syscallEvent(i, 1700001000, 5000);
      const a = f.host('hosta', { replicas: 3, maxInFlight: 64 }, ev);
      const b = f.host('hostb', { replicas: 3, maxInFlight: 256 }, ev);
      a.emit(0, 500);
      b.emit(0, 500);
      await a.drained();
      await b.drained();
      const nc = await connect({ servers: f.urls });
      const info = await (await jetstreamManager(nc)).streams.info('AUDIT');
      await nc.close();
      assert.equal(info.config.num_replicas, 3);
      const leader = await streamLeader(f.servers);
      a.emit(500, 1000);
      b.emit(500, 1000);
      await leader.kill();
      a.emit(1000, 1500);
      b.emit(1000, 1500);
      await leader.startProcess();
      a.emit(1500, 2000);
      b.emit(1500, 2000);
      await a.drained(120000);
      await b.drained(120000);
      const c = f.collector('fleet', 'batch: 100\n');
      await c.start();
      await until(
        () => c.counters.written === 4000,
        () => JSON.stringify(c.status()),
        120000,
      );
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(c.counters.written, 4000, 'nothing written twice');
      const ga = lines(path.join(f.dir, 'fleet', 'hosta', 'audit.log'));
      const gb = lines(path.join(f.dir, 'fleet', 'hostb', 'audit.log'));
      // A window of publishes, whatever the stream's order after the kill: the log keeps each host's order exactly.
      assert.deepEqual(ga, lines(a.log));
      assert.deepEqual(gb, lines(b.log));
      assert.equal(c.counters.gaps, 0);
      assert.equal(c.counters.late, 0);
      // Whether the kill reordered the stream this time (it depends on timing; nats-order.test.ts forces it).
      const stored = await streamMessages(f.srv.url, 'AUDIT').catch(() => []);
      let inversions = 0;
      const last = new Map<string, number>();
      for (const m of stored) {
        const [node, , , serial] = m.id.split(':');
        if (Number(serial) < (last.get(node!) ?? -1)) inversions++;
        last.set(node!, Math.max(last.get(node!) ?? -1, Number(serial)));
      }
      t.diagnostic(`stream messages stored before an earlier one of their host: ${inversions}`);
      assert.ok(ga.every((l) => l.startsWith('node=hosta ')) && gb.every((l) => l.startsWith('node=hostb ')));
    }),
);

/** Waits until the JetStream API at `url` stops answering (a cluster server that lost its quorum). */
async function jetStreamGone(url: string): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 1000, checkAPI: false });
    await until(
      () =>
        jsm.getAccountInfo().then(
          () => false,
          (e: unknown) => jetStreamUnavailable(e),
        ),
      () => 'JetStream still answering without its quorum',
      60000,
    );
  } finally {
    await nc.close();
  }
}

test(
  'a collector started while the cluster has no quorum waits for JetStream (start_wait), then collects every event',
  { timeout: 180000 },
  () =>
    withFleet({ cluster: 3, prefix: 'auditmux-cluster-' }, async (f) => {
      const a = f.host('hosta', { replicas: 3 });
      a.emit(0, 200);
      await a.drained();
      // Two of three servers gone: once the last one sees it has no quorum, JetStream's API cannot answer.
      await f.servers[1]!.kill();
      await f.servers[2]!.kill();
      await jetStreamGone(f.srv.url);
      const warned: string[] = [];
      const c = new Collector(
        parseCollectConfig(
          `${f.collectYaml('batch: 50\nstart_wait: 120\n')}\ndir: ${path.join(f.dir, 'fleet')}\n`,
          path.join(f.dir, 'c.yaml'),
        ),
        { ...quiet, warn: (_o: object, m: string) => warned.push(m) },
      );
      f.defer(() => c.stop());
      let settled: string | null = null;
      const started = c.start().then(
        () => (settled = 'started'),
        (e: Error) => (settled = `failed: ${e.name}: ${e.message}`),
      );
      // Past the client's 5 s request timeout: without waiting, start has failed by now.
      await new Promise((r) => setTimeout(r, 7000));
      assert.equal(settled, null, 'start still waiting for JetStream');
      assert.ok(
        warned.some((m) => /JetStream not answering; waiting to open the consumer/.test(m)),
        `a warning says why it waits: ${JSON.stringify(warned)}`,
      );
      await f.servers[1]!.startProcess();
      await started;
      assert.equal(settled, 'started');
      await until(
        () => c.counters.written === 200,
        () => JSON.stringify(c.status()),
        60000,
      );
      assert.deepEqual(lines(path.join(f.dir, 'fleet', 'hosta', 'audit.log')), lines(a.log));
    }),
);

test('a collector whose JetStream never answers fails after start_wait with the client error', { timeout: 90000 }, () =>
  withFleet({ cluster: 3, prefix: 'auditmux-cluster-' }, async (f) => {
    await f.servers[1]!.kill();
    await f.servers[2]!.kill();
    await jetStreamGone(f.srv.url);
    const c = new Collector(
      parseCollectConfig(
        `${f.collectYaml('start_wait: 2\n')}\ndir: ${path.join(f.dir, 'fleet')}\n`,
        path.join(f.dir, 'c.yaml'),
      ),
      quiet,
    );
    f.defer(() => c.stop());
    await assert.rejects(c.start(), (e: Error) => jetStreamUnavailable(e));
  }),
);
