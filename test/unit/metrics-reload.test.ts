// host.metrics across SIGHUP reloads (emulated kernel): the listener moves, a textfile replaces it and goes away, and a
// new address that cannot open is a failed reload with the old listener still serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { oneAuxYaml, startEmulatedHost } from '../helpers/emulated-host';
import { freePort } from '../helpers/nats';
import { scrape } from '../helpers/metrics';

test('metrics.listen and textfile changed on reload: old listener closed, new one open, old textfile removed', async () => {
  const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
  const y = oneAuxYaml('log: { file: {dir}/a.log, format: RAW }');
  const withMetrics = (line: string): string[] => [y[0]!, line, ...y.slice(1)];
  const h = await startEmulatedHost({
    prefix: 'am-metricsreload-',
    exe: '/usr/bin/am-metricsreload',
    untaggedPid: 4242433,
    yaml: withMetrics(`  metrics: { listen: "127.0.0.1:${p1}" }`),
  });
  const conf = join(h.dir, 'auditmux.yaml');
  const reloadTo = async (line: string | null): Promise<{ ok: boolean; error?: string }> => {
    writeFileSync(conf, (line ? withMetrics(line) : y).map((l) => l.replaceAll('{dir}', h.dir)).join('\n') + '\n');
    return h.daemon.reload();
  };
  let blocker: net.Server | null = null;
  try {
    assert.equal((await scrape(p1)).status, 200);

    assert.deepEqual(await reloadTo(`  metrics: { listen: "127.0.0.1:${p2}" }`), { ok: true });
    assert.equal((await scrape(p2)).samples.get('auditmux_kernel_lost_total'), 0, 'the new address serves');
    await assert.rejects(scrape(p1), /ECONNREFUSED/, 'the old address is closed');

    // Same port, another address: the old one must close before the new one can open.
    assert.deepEqual(await reloadTo(`  metrics: { listen: "127.0.0.2:${p2}" }`), { ok: true });
    await assert.rejects(scrape(p2), /ECONNREFUSED/);
    assert.equal(h.daemon.metrics.current.address?.host, '127.0.0.2');

    const prom = join(h.dir, 'host.prom');
    assert.deepEqual(await reloadTo(`  metrics: { textfile: ${prom} }`), { ok: true });
    assert.match(readFileSync(prom, 'utf8'), /^auditmux_kernel_lost_total 0$/m);
    assert.equal(h.daemon.metrics.current.address, null, 'no listener once metrics go to a textfile');

    // An address already taken: the reload fails and the running exporter (the textfile) carries on.
    blocker = net.createServer();
    await new Promise<void>((r) => blocker!.listen(p3, '127.0.0.1', r));
    const bad = await reloadTo(`  metrics: { listen: "127.0.0.1:${p3}" }`);
    assert.equal(bad.ok, false);
    assert.match(bad.error ?? '', /metrics cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/);
    assert.ok(existsSync(prom), 'the textfile exporter still runs');
    await new Promise<void>((r) => blocker!.close(() => r()));
    blocker = null;

    assert.deepEqual(await reloadTo(`  metrics: { listen: "127.0.0.1:${p3}" }`), { ok: true });
    assert.equal((await scrape(p3)).status, 200);
    assert.equal(existsSync(prom), false, 'a textfile the host no longer writes is removed');

    assert.deepEqual(await reloadTo(null), { ok: true });
    await assert.rejects(scrape(p3), /ECONNREFUSED/, 'metrics removed from the config: the listener closes');
  } finally {
    if (blocker) await new Promise<void>((r) => blocker!.close(() => r()));
    await h.stop();
    rmSync(h.dir, { recursive: true, force: true });
  }
});
