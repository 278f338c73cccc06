// A process daemon's events go to its process in batches (a size or a short delay), not one send per kernel batch.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { auxWithDouble, until } from '../helpers/aux-process';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('sending to a process daemon', () => {
  it('small events pumped every 2 ms reach an idle process in one or two reads, all of them, each acknowledged', async () => {
    // Old: every pump (the end of each kernel batch, every 2 ms) wrote what was queued at once, so the process woke,
    // wrote its log and acknowledged (waking the host) once per kernel batch: 8 reads here.
    // The wait for more is 1 s here, not 10 ms: eight pumps 1 ms apart took more than 10 ms on a loaded CI machine and
    // were sent in three reads. A second is more than they can take, and the test is about what waits, not how long.
    const { a, dir } = auxWithDouble('aux-reads.js', 'drop_newest', 1000);
    a.start();
    try {
      await until(() => a.state === 'running', 'the process to be ready');
      for (let i = 1; i <= 8; i++) {
        const tail = i === 8 ? 'last' : 'x';
        a.enqueue([{ type: 1300, payload: Buffer.from(`audit(1700000000.000:${i}): n=${i} ${tail}`) }]);
        a.pump();
        if (i < 8) await sleep(1);
      }
      await until(() => /reads=/.test(a.lastError), 'the process to count its reads');
      const m = /reads=(\d+) events=(\d+)/.exec(a.lastError)!;
      assert.equal(Number(m[2]), 8);
      // Eight pumps well within the delay: one send (two reads at most, should the socket split it).
      assert.ok(Number(m[1]) <= 2, a.lastError);
      await until(() => a.queue.counters.delivered === 8, 'every event to be acknowledged');
      assert.equal(a.queue.size, 0);
    } finally {
      await a.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
