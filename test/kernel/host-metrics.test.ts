// host.metrics on the real kernel: the daemon serves the kernel's lost and backlog, its records and its output's lag.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernelSkipReason, withKernel } from '../helpers/kernel';
import { buildSyscallProgram, startDaemon, stopDaemon, syscallSerials, tempDir } from '../helpers/daemon';
import { freePort } from '../helpers/nats';
import { scrape } from '../helpers/metrics';

describe('host metrics (real kernel)', { skip: kernelSkipReason() }, () => {
  it('GET /metrics: kernel lost and backlog, records read, the output lag while its peer is down', () =>
    withKernel(async () => {
      const dir = tempDir('am-kmetrics-');
      try {
        const prog = buildSyscallProgram(dir);
        const key = 'am-kmetrics';
        writeFileSync(join(dir, 'host.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${prog} -k ${key}\n`);
        const port = await freePort();
        const closed = await freePort();
        const conf = join(dir, 'auditmux.yaml');
        writeFileSync(
          conf,
          [
            'host:',
            '  kernel: { enabled: 1, failure: 1, backlog_limit: 8192, backlog_wait_time: 60000 }',
            `  rules: ${join(dir, 'host.rules')}`,
            `  log: { file: ${join(dir, 'log', 'audit.log')}, format: RAW }`,
            `  control_socket: ${join(dir, 'control.sock')}`,
            `  metrics: { listen: "127.0.0.1:${port}" }`,
            `  outputs: [{ type: remote, name: agg, host: 127.0.0.1, port: ${closed}, spool: { dir: ${join(dir, 'sp')} } }]`,
          ].join('\n') + '\n',
        );
        const d = await startDaemon(conf);
        let m: Map<string, number>;
        try {
          execFileSync(prog, ['200']);
          for (let i = 0; i < 100; i++) {
            if (syscallSerials(readFileSync(join(dir, 'log', 'audit.log'), 'latin1'), key).size === 200) break;
            await new Promise((r) => setTimeout(r, 50));
          }
          m = (await scrape(port)).samples;
        } finally {
          assert.equal(await stopDaemon(d), 0, d.stderr());
        }
        const lost = Number(/^lost (\d+)$/m.exec(execFileSync('auditctl', ['-s'], { encoding: 'utf8' }))![1]);
        assert.ok(m.get('auditmux_kernel_lost_total')! <= lost, `${m.get('auditmux_kernel_lost_total')} > ${lost}`);
        assert.ok(m.has('auditmux_kernel_backlog'));
        assert.equal(m.get('auditmux_kernel_enabled'), 1);
        assert.ok(m.get('auditmux_records_total')! >= 400, String(m.get('auditmux_records_total')));
        const accepted = m.get('auditmux_output_accepted_total{output="agg"}')!;
        assert.ok(accepted >= 400, String(accepted));
        assert.equal(m.get('auditmux_output_lag{output="agg"}'), accepted);
        assert.ok(m.get('auditmux_output_spool_bytes{output="agg"}')! > 0);
        assert.equal(m.get('auditmux_output_connected{output="agg"}'), 0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }));
});
