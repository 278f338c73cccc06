// A reload that removes a process daemon and routes a container to a new one: every event of the container is logged
// somewhere (the new daemon's log, or the host's while the daemon is not there yet), none written nowhere.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEmulatedHost, syscallSerialCounts } from '../helpers/emulated-host';

const yaml = (body: string[]): string[] => [
  'host:',
  '  rules: {dir}/host.rules',
  '  log: { file: {dir}/audit.log, format: RAW }',
  '  keep: unrouted',
  'daemons:',
  ...body,
];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('reload: routes to a daemon not started yet', () => {
  it('no event is lost while the new route waits for its daemon', async () => {
    const h = await startEmulatedHost({
      prefix: 'amreroute-',
      exe: '/usr/bin/amreroute',
      untaggedPid: 4242431,
      yaml: yaml([
        // A process daemon takes a while to stop: the reload waits for it before starting `b`.
        '  - { name: old, isolation: process, log: { file: {dir}/old.log, format: RAW } }',
        '  - { name: keep, log: { file: {dir}/keep.log, format: RAW } }',
        'routes:',
        '  - { contid: 300, daemons: [old] }',
        '  - { contid: 999, daemons: [keep] }',
      ]),
    });
    const { dir, kernel, daemon, tagged } = h;
    let emitted = 0;
    try {
      const next = yaml([
        '  - { name: keep, log: { file: {dir}/keep.log, format: RAW } }',
        '  - { name: b, log: { file: {dir}/b.log, format: RAW } }',
        'routes:',
        '  - { contid: 100, daemons: [b] }',
        '  - { contid: 999, daemons: [keep] }',
      ]);
      writeFileSync(join(dir, 'auditmux.yaml'), next.map((l) => l.replaceAll('{dir}', dir)).join('\n') + '\n');
      let emitting = true;
      const pump = (async () => {
        while (emitting) {
          kernel.emitEvent(tagged.pid!, 'getppid', 0);
          emitted++;
          await new Promise((r) => setImmediate(r));
        }
      })();
      await sleep(50);
      assert.deepEqual(await daemon.reload(), { ok: true });
      await sleep(50);
      emitting = false;
      await pump;
    } finally {
      await h.stop();
    }
    try {
      const read = (f: string): string => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'latin1') : '');
      const host = syscallSerialCounts(read('audit.log'), 'host-k');
      const b = syscallSerialCounts(read('b.log'), 'host-k');
      for (const s of b.keys()) assert.ok(!host.has(s), `event ${s} in both logs`);
      // Old: about two thirds of the events routed to `b` while `old` stopped were written nowhere.
      assert.equal(host.size + b.size, emitted, `host ${host.size} + b ${b.size} of ${emitted} events`);
      assert.ok(b.size > 0, 'b got the events once it ran');
      const st = (daemon.status() as { counters?: { noDaemon?: number } }).counters;
      if (host.size > 0 && st) assert.ok((st.noDaemon ?? 0) > 0, 'counted');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
