// A nats spool entry whose container carries labels still fits the spool's record limit: the event's lines leave room
// for the container's JSON at its cap (MAX_CONTAINER_JSON), however large the event.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsOutput } from '../../src/output/nats/output';
import { MAX_CONTAINER_JSON, containerEntry } from '../../src/output/container-fields';
import { MAX_SPOOL_RECORD } from '../../src/output/transport/spool';
import { MsgType } from '../../src/kernel/constants';
import type { ContainerFacts } from '../../src/contid/meta-selector';
import { natsSpec, quiet } from '../helpers/nats';

describe('nats spool entries with container labels', () => {
  it('an event of many large records, of a container with labels at the JSON cap, is spooled without error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amnatslabels-'));
    const labels: Record<string, string> = {};
    for (let i = 0; i < 64; i++) labels[`example.com/label-${i}`] = 'v'.repeat(200);
    const facts: ContainerFacts = { name: 'web', image: 'registry/app:1', runtime: 'podman', labels };
    const json = containerEntry(facts)!.json;
    // Precondition: the container's JSON is near its cap, far beyond the 1024 bytes left for the entry's first line.
    assert.ok(Buffer.byteLength(json) > MAX_CONTAINER_JSON - 512, String(Buffer.byteLength(json)));
    // Nothing listens on port 1: the entries stay in the spool.
    const o = new NatsOutput(natsSpec(['127.0.0.1:1'], join(dir, 'spool'), { payload: 'json' }), {
      nodeName: 'h',
      contidKernel: false,
      diag: quiet,
      containers: { version: 1, facts: (c) => (c === 7n ? facts : undefined) },
    });
    try {
      const stamp = 'audit(1700000000.123:42):';
      o.writeRecord(0xfffe, Buffer.from(`${stamp} record=1 contid=7`));
      o.writeRecord(MsgType.SYSCALL, Buffer.from(`${stamp} arch=c000003e syscall=59 success=yes exit=0`));
      let bytes = 0;
      for (let i = 0; bytes < 3 * MAX_SPOOL_RECORD; i++) {
        const p = Buffer.from(`${stamp} argc=1 a${i}="${'x'.repeat(7000)}"`);
        o.writeRecord(MsgType.EXECVE, p);
        bytes += p.length;
      }
      o.writeRecord(MsgType.EOE, Buffer.from(stamp));
      const st = o.stats() as { pending: number; lost: number };
      assert.ok(st.pending >= 4, `the event in several parts (${st.pending})`);
      assert.equal(st.lost, 0);
    } finally {
      await o.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
