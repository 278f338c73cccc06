// host.metrics: the host daemon (emulated kernel) serves kernel, per-daemon queue, per-output spool and per-container
// metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { oneAuxYaml, sleep, startEmulatedHost, until } from '../helpers/emulated-host';
import { MAX_CONTAINER_SERIES } from '../../src/containers/registry';
import { RETIRE_GRACE_MS } from '../../src/contid/tracker';
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

test('per-container events over HTTP: contid/name labels escaped, retired containers drop out, series capped', async () => {
  const port = await freePort();
  const y = oneAuxYaml('log: { file: {dir}/a.log, format: RAW }');
  const h = await startEmulatedHost({
    prefix: 'am-ctrmetrics-',
    exe: '/usr/bin/am-ctrmetrics',
    untaggedPid: 4242432,
    yaml: [y[0]!, `  metrics: { listen: "127.0.0.1:${port}" }`, ...y.slice(1)],
  });
  const reg = h.daemon.contid.containers.registry;
  try {
    // The tagged process's contid 100 is a container whose name its creator chose: quote, backslash, line feed.
    reg.register({ runtime: 'podman', id: 'a'.repeat(64), contid: 100n, source: 'hook', meta: { name: 'we"b\\1\nx' } });
    reg.register({ runtime: 'runc', id: 'idle', contid: 200n, source: 'cgroup', meta: {} });
    for (let i = 0; i < 25; i++) h.kernel.emitEvent(h.tagged.pid!, 'getppid', 0);
    await until(() => reg.get(100n)!.routed === 25, 'the 25 events counted');
    let m = (await scrape(port)).samples;
    const web = '{contid="100",name="we\\"b\\\\1\\nx"}';
    assert.equal(m.get(`auditmux_container_routed_total${web}`), 25, [...m.keys()].join('\n'));
    assert.equal(m.get(`auditmux_container_dropped_total${web}`), 0);
    assert.equal(m.get(`auditmux_container_host_only_total${web}`), 0);
    assert.equal(m.get('auditmux_container_routed_total{contid="200",name=""}'), 0);
    assert.equal(m.get('auditmux_containers_live'), 2);
    assert.equal(m.get('auditmux_container_series_overflow'), 0);
    // The same counters in `status` (what `auditmux status` prints).
    const st = h.daemon.status() as { containerEvents: { series: Record<string, { routed: number; name: string }> } };
    assert.deepEqual(
      [st.containerEvents.series['100']!.routed, st.containerEvents.series['100']!.name],
      [25, 'we"b\\1\nx'],
    );

    // A retired container keeps its series through its grace (its late events still count), then it disappears;
    // beyond the cap the oldest live ones keep theirs, the rest are counted.
    reg.retire(200n, 'poststop');
    reg.noteEvent(200n, 0, 0);
    m = (await scrape(port)).samples;
    assert.equal(m.get('auditmux_container_host_only_total{contid="200",name=""}'), 1, 'a late event, in the grace');
    assert.equal(m.get('auditmux_containers_live'), 1);
    assert.equal(reg.expire(Date.now() + RETIRE_GRACE_MS + 1), 1);
    for (let i = 0; i < MAX_CONTAINER_SERIES + 5; i++)
      reg.register({
        runtime: 'runc',
        id: `c${i}`,
        contid: BigInt(1000 + i),
        source: 'cgroup',
        meta: { name: `c${i}` },
      });
    m = (await scrape(port)).samples;
    assert.equal(m.has('auditmux_container_routed_total{contid="200",name=""}'), false, 'retired: gone');
    const series = [...m.keys()].filter((k) => k.startsWith('auditmux_container_routed_total{'));
    assert.equal(series.length, MAX_CONTAINER_SERIES);
    assert.ok(series.includes(`auditmux_container_routed_total${web}`), 'the oldest live container keeps its series');
    assert.equal(m.get('auditmux_container_series_overflow'), 6);
    assert.equal(m.get('auditmux_containers_live'), MAX_CONTAINER_SERIES + 6);
  } finally {
    await h.stop();
    rmSync(h.dir, { recursive: true, force: true });
  }
});
