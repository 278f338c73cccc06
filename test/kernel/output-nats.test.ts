// e2e: a real host daemon ships to a real nats-server (killed and restarted mid-stream); the collector's log answers
// ausearch -k as the host's.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernelSkipReason, withKernel } from '../helpers/kernel';
import { buildSyscallProgram, readText, startDaemon, stopDaemon, syscallSerials } from '../helpers/daemon';
import { streamMessages, until, withFleet } from '../helpers/nats';

describe('nats output from a real host daemon', { skip: kernelSkipReason() }, () => {
  it(
    "every event once in the stream and in the collector's log across a server kill; ausearch -k agrees",
    { timeout: 180000 },
    () =>
      withKernel(() =>
        withFleet({ prefix: 'amnats-' }, async (f) => {
          const { dir, srv } = f;
          const prog = buildSyscallProgram(dir);
          const key = 'am-e2e-nats';
          writeFileSync(join(dir, 'host.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${prog} -k ${key}\n`);
          const conf = join(dir, 'auditmux.yaml');
          writeFileSync(
            conf,
            [
              'host:',
              '  node_name: { format: user, name: e2e-host }',
              '  kernel: { enabled: 1, failure: 1, backlog_limit: 8192, backlog_wait_time: 60000 }',
              `  rules: ${join(dir, 'host.rules')}`,
              `  log: { file: ${join(dir, 'log', 'audit.log')}, format: ENRICHED, max_log_file: 100 }`,
              `  control_socket: ${join(dir, 'control.sock')}`,
              '  outputs:',
              `    - { type: nats, name: fleet, servers: [${srv.url}], create_stream: true, log_format: ENRICHED, network_retry_time: 1, ack_timeout: 2, spool: { dir: ${join(dir, 'spool')} } }`,
            ].join('\n') + '\n',
          );
          const d = await startDaemon(conf);
          const N = 2000;
          try {
            execFileSync(prog, [String(N / 2), '200']);
            await srv.kill();
            execFileSync(prog, [String(N / 2), '200']);
            await srv.startProcess();
            await until(
              async () =>
                syscallSerials(
                  (await streamMessages(srv.url, 'AUDIT').catch(() => []))
                    .map((m) => m.data.toString('latin1'))
                    .join(''),
                  key,
                ).size >= N,
              () => 'stream has every event',
              90000,
            );
          } finally {
            assert.equal(await stopDaemon(d), 0, d.stderr());
          }
          const ms = await streamMessages(srv.url, 'AUDIT');
          assert.equal(new Set(ms.map((m) => m.id)).size, ms.length, 'no id stored twice');
          assert.ok(
            ms.every((m) => m.subject === 'audit.e2e-host.host.none'),
            ms[0]?.subject,
          );
          const c = f.collector();
          await c.start();
          await until(
            () => c.counters.written === ms.length,
            () => JSON.stringify(c.status()),
          );
          const collected = join(dir, 'fleet', 'e2e-host', 'audit.log');
          assert.equal(syscallSerials(readText(collected), key).size, N);
          const ausearch = (f: string): string => {
            const r = spawnSync('ausearch', ['-if', f, '-k', key, '--raw'], { encoding: 'latin1', maxBuffer: 1 << 28 });
            assert.equal(r.status, 0, r.stderr);
            return r.stdout;
          };
          const mine = ausearch(join(dir, 'log', 'audit.log'));
          assert.equal(syscallSerials(mine, key).size, N);
          assert.equal(ausearch(collected), mine, "the collector's log answers ausearch -k exactly as the host's");
        }),
      ),
  );
});
