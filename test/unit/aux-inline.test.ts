// Inline auxiliary daemons (written by the host process): a failure inside one is a crash that loses nothing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { oneAuxYaml, startEmulatedHost, syscallSerialCounts as serialCounts, until } from '../helpers/emulated-host';

const EXE = '/usr/bin/amtree-inline';

describe('inline auxiliary daemon (emulated mainline kernel)', () => {
  it('a write that throws mid-run: the daemon is reopened, its queue written, no event lost or twice, the host unaffected', async () => {
    const h = await startEmulatedHost({
      prefix: 'aminline-',
      exe: EXE,
      untaggedPid: 4343434,
      yaml: oneAuxYaml('log: { file: {dir}/a/a.log, format: RAW }, queue: { depth: 100000 }'),
    });
    const { dir, kernel, daemon, tagged } = h;
    const N = 400;
    try {
      const a = daemon.daemons.get('a')!;
      const st = a.status();
      assert.equal(st.isolation, 'inline');
      assert.equal(st.pid, 0, 'no process of its own');
      let injected = 0;
      for (let i = 0; i < N; i++) {
        kernel.emitEvent(tagged.pid!, 'getppid', 0);
        kernel.emitEvent(h.untaggedPid, 'getppid', 0);
        if (i === N / 2) {
          // Fault injection: the writer's next event throws after half of its records were written, whether the event
          // came whole (write) or record by record as the kernel's records came (writeRecordAt, a streamed event).
          const w = (
            a as unknown as {
              writer: {
                write: (r: unknown[]) => void;
                writeRecordAt: (t: number, b: Buffer, s: number, e: number) => void;
              };
            }
          ).writer;
          const orig = w.write.bind(w);
          w.write = (records: unknown[]) => {
            if (injected++ === 0) {
              orig(records.slice(0, 1));
              throw new Error('injected write failure');
            }
            orig(records);
          };
          const origAt = w.writeRecordAt.bind(w);
          w.writeRecordAt = (t, b, s, e) => {
            // The SYSCALL went; its PROCTITLE fails.
            if (t === 1327 && injected++ === 0) throw new Error('injected write failure');
            origAt(t, b, s, e);
          };
        }
        if (i % 20 === 0) await new Promise((r) => setImmediate(r));
      }
      await until(() => {
        const s = a.status() as { state: string; queued: number; crashes: number };
        return s.state === 'running' && s.queued === 0 && s.crashes === 1;
      }, 'the inline daemon to be reopened and drained');
      assert.equal(injected, 1, 'the failure hit exactly one write');
      const r = (daemon.status() as { reassembly: { passed: number; events: number } }).reassembly;
      assert.ok(r.passed > N, `the events passed through, record by record (${r.passed} of ${r.events})`);
    } finally {
      await h.stop();
    }
    try {
      const aLog = readFileSync(join(dir, 'a', 'a.log'), 'utf8');
      const counts = serialCounts(aLog, 'tree-a');
      assert.equal(counts.size, N, 'every tagged event is in the auxiliary log');
      assert.deepEqual(
        [...counts.values()].filter((c) => c !== 1),
        [],
        'none twice: the half-written event was recognised on reopen',
      );
      // Whole too: each event has as many lines as the others (the failed one's records after the failure included).
      const lines = new Map<string, number>();
      for (const m of aLog.matchAll(/msg=audit\(\d+\.\d+:(\d+)\)/g)) lines.set(m[1]!, (lines.get(m[1]!) ?? 0) + 1);
      const sizes = new Set([...counts.keys()].map((s) => lines.get(s)));
      assert.equal(sizes.size, 1, `every event has all its records: ${[...sizes].join(', ')} lines per event`);
      const hLog = readFileSync(join(dir, 'audit.log'), 'utf8');
      assert.equal(serialCounts(hLog, 'host-k').size, N, 'the host log has every untagged event');
      assert.equal(serialCounts(hLog, 'tree-a').size, 0, "and none of the daemon's");
      assert.match(
        hLog,
        new RegExp(
          `op=aux-crash daemon=a error=${Buffer.from('injected write failure').toString('hex').toUpperCase()} res=failed`,
        ),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
