// Process daemons (isolation: process) publish to NATS with their containers' names in the subject and the `container`
// object (labels included) in the JSON payload, as inline ones do, and never another tenant's container.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { startEmulatedHost } from '../helpers/emulated-host';
import { streamMessages, until, withServer, type StoredMessage } from '../helpers/nats';

const EXE = '/usr/bin/amtree-natsproc';

interface JsonEvent {
  daemon: string;
  contid: string | null;
  container?: Record<string, unknown>;
}

describe('nats output of process daemons (emulated mainline kernel, real nats-server)', () => {
  it("subjects and JSON payloads carry the daemon's own containers, and no other tenant's", () =>
    withServer('amnatsproc-', async (srv) => {
      const nats = (name: string): string =>
        `[{ type: nats, name: n-${name}, servers: [${srv.url}], create_stream: true, payload: json, ` +
        `subject: "audit.{node}.{daemon}.{namespace}.{name}", stream_subjects: ["audit.>"], network_retry_time: 1, ` +
        `spool: { dir: {dir}/spool/${name} } }]`;
      const procs: ChildProcess[] = [];
      const h = await startEmulatedHost({
        prefix: 'amnatsproc-',
        exe: EXE,
        untaggedPid: 4242441,
        yaml: [
          'host:',
          '  node_name: { format: user, name: n1 }',
          '  rules: {dir}/host.rules',
          '  log: { file: {dir}/audit.log, format: RAW }',
          '  keep: unrouted',
          'daemons:',
          `  - { name: a, isolation: process, log: { file: {dir}/a.log }, outputs: ${nats('a')} }`,
          `  - { name: b, isolation: process, log: { file: {dir}/b.log }, outputs: ${nats('b')} }`,
          'routes:',
          '  - { contid: 100, daemons: [a] }',
          '  - { contid: 200, daemons: [b] }',
        ],
      });
      const N = 40;
      let all: StoredMessage[] = [];
      try {
        try {
          const other = spawn('sleep', ['60'], { stdio: 'ignore' });
          procs.push(other);
          h.kernel.spawn(other.pid!, 1, { exe: EXE });
          h.daemon.contid.set(other.pid!, '200', false, { pid: process.pid, uid: 0, gid: 0 });
          const reg = h.daemon.contid.containers.registry;
          reg.register({
            runtime: 'podman',
            id: 'c100',
            contid: 100n,
            source: 'hook',
            meta: { name: 'web.1', podNamespace: 'shop', labels: { app: 'web' } },
          });
          reg.register({
            runtime: 'podman',
            id: 'c200',
            contid: 200n,
            source: 'hook',
            meta: { name: 'vault', podNamespace: 'bank', labels: { secret: 'b-only' } },
          });
          for (let i = 0; i < N; i++) {
            h.kernel.emitEvent(h.tagged.pid!, 'getppid', 0);
            h.kernel.emitEvent(other.pid!, 'getppid', 0);
            if (i % 10 === 0) await new Promise((r) => setImmediate(r));
          }
          await until(
            async () => {
              all = await streamMessages(srv.url, 'AUDIT').catch(() => []);
              return all.length >= 2 * N;
            },
            () => `${2 * N} events in the stream: ${all.length} ${JSON.stringify(h.daemon.status().aux)}`,
          );
        } finally {
          await h.stop();
          for (const p of procs) p.kill();
        }
        all = await streamMessages(srv.url, 'AUDIT');
        const a = all.filter((m) => m.subject.startsWith('audit.n1.a.'));
        const b = all.filter((m) => m.subject.startsWith('audit.n1.b.'));
        assert.equal(a.length, N, JSON.stringify([...new Set(all.map((m) => m.subject))]));
        assert.equal(b.length, N);
        for (const m of a) {
          assert.equal(m.subject, 'audit.n1.a.shop.web~2E1');
          const ev = JSON.parse(m.data.toString('utf8')) as JsonEvent;
          assert.equal(ev.contid, '100');
          assert.deepEqual(ev.container, {
            name: 'web.1',
            runtime: 'podman',
            namespace: 'shop',
            labels: { app: 'web' },
          });
          assert.ok(!m.data.toString('utf8').includes('vault'));
        }
        for (const m of b) {
          assert.equal(m.subject, 'audit.n1.b.bank.vault');
          const ev = JSON.parse(m.data.toString('utf8')) as JsonEvent;
          assert.deepEqual(ev.container, {
            name: 'vault',
            runtime: 'podman',
            namespace: 'bank',
            labels: { secret: 'b-only' },
          });
        }
      } finally {
        rmSync(h.dir, { recursive: true, force: true });
      }
    }));
});
