// A host stopped while an aux process is still starting: everything queued for that daemon still reaches its log.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { oneAuxYaml, startEmulatedHost, syscallSerialCounts } from '../helpers/emulated-host';

type AuxStatus = { state: string; queued: number };

describe('stop while an auxiliary process is starting (emulated mainline kernel)', () => {
  it('every event queued for it is in its log after the stop', async () => {
    const h = await startEmulatedHost({
      prefix: 'amauxstop-',
      exe: '/usr/bin/amauxstop',
      untaggedPid: 4747474,
      yaml: oneAuxYaml('log: { file: {dir}/a.log, format: RAW }, isolation: process'),
    });
    const aux = (): AuxStatus => (h.daemon.status().aux as Record<string, AuxStatus>).a!;
    try {
      // The node process behind `a` takes far longer to start than this loop takes to run.
      assert.equal(aux().state, 'starting', 'precondition: the aux process is not up yet');
      for (let i = 0; i < 100; i++) h.kernel.emitEvent(h.tagged.pid!, 'getppid', 0);
      await new Promise((r) => setImmediate(r));
      assert.equal(aux().queued, 100, 'the host holds the events for a');
    } finally {
      await h.stop();
    }
    try {
      const counts = syscallSerialCounts(readFileSync(join(h.dir, 'a.log'), 'utf8'), 'tree-a');
      assert.equal(counts.size, 100, 'every queued event reached the log of a');
    } finally {
      rmSync(h.dir, { recursive: true, force: true });
    }
  });
});
