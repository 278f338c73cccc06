// host.metrics: the host daemon (emulated kernel) serves kernel, per-daemon queue and per-output spool metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { oneAuxYaml, sleep, startEmulatedHost } from '../helpers/emulated-host';
import { freePort } from '../helpers/nats';
import { scrape } from '../helpers/metrics';

test('host.metrics listen: kernel, per-daemon queue, per-output lag and spool, scraped over HTTP', async () => {
  const port = await freePort();
  const closed = await freePort();
  const y = oneAuxYaml(
    'log: { file: {dir}/a.log, format: RAW }, queue: { depth: 500 }',
    `[{ type: remote, name: agg, host: 127.0.0.1, port: ${closed}, spool: { dir: {dir}/spool } }]`,
  );
  const h = await startEmulatedHost({
    prefix: 'am-hostmetrics-',
    exe: '/usr/bin/am-metrics',
    untaggedPid: 4242431,
    yaml: [y[0]!, `  metrics: { listen: "127.0.0.1:${port}" }`, ...y.slice(1)],
  });
  try {
    for (let i = 0; i < 30; i++) {
      h.kernel.emitEvent(h.untaggedPid, 'getppid', 0);
      h.kernel.emitEvent(h.tagged.pid!, 'getppid', 0);
    }
    await sleep(500);
    const { status, samples: m } = await scrape(port);
    assert.equal(status, 200);
    assert.equal(m.get('auditmux_kernel_lost_total'), 0);
    assert.equal(m.get('auditmux_kernel_backlog'), 0);
    assert.ok(m.get('auditmux_records_total')! >= 60 * 2, String(m.get('auditmux_records_total')));
    assert.equal(m.get('auditmux_events_with_contid_total'), 30);
    assert.equal(m.get('auditmux_daemon_delivered_total{daemon="a"}'), 30);
    assert.equal(m.get('auditmux_daemon_dropped_total{daemon="a"}'), 0);
    assert.equal(m.get('auditmux_daemon_queue_depth{daemon="a"}'), 0);
    assert.equal(m.get('auditmux_daemon_queue_capacity{daemon="a"}'), 500);
    // The aggregator is down: everything the output took waits in its spool.
    const accepted = m.get('auditmux_output_accepted_total{output="agg"}')!;
    assert.ok(accepted > 0);
    assert.equal(m.get('auditmux_output_lag{output="agg"}'), accepted);
    assert.ok(m.get('auditmux_output_spool_bytes{output="agg"}')! > 0);
    assert.equal(m.get('auditmux_output_connected{output="agg"}'), 0);
    assert.equal(m.get('auditmux_output_delivered_total{output="agg"}'), 0);
    assert.equal((await scrape(port, '/status')).status, 404);
  } finally {
    await h.stop();
    rmSync(h.dir, { recursive: true, force: true });
  }
  await assert.rejects(scrape(port), /ECONNREFUSED/, 'the listener closes with the daemon');
});
