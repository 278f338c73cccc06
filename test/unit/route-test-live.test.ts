// `auditmux route test --name` against a running host daemon (emulated kernel, real control socket): the name is
// looked up among its live containers; with no daemon the configuration's routes answer, with a note saying so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startEmulatedHost } from '../helpers/emulated-host';
import { runRouteTest } from '../../src/cli/route-test';

test('route test --name: the daemon routes each live container of that name as itself; no daemon: a clear note', async () => {
  const h = await startEmulatedHost({
    prefix: 'am-routetest-',
    exe: '/usr/bin/am-routetest',
    untaggedPid: 4242434,
    control: true,
    yaml: [
      'host:',
      '  rules: {dir}/host.rules',
      '  log: { file: {dir}/audit.log, format: RAW }',
      '  control_socket: {dir}/control.sock',
      '  keep: unrouted',
      'daemons:',
      '  - { name: a, rules: {dir}/a.rules, log: { file: {dir}/a.log, format: RAW } }',
      '  - { name: shop, log: { file: {dir}/shop.log, format: RAW } }',
      'routes:',
      // By number only: a name reaches daemon a only through a live container that has the number.
      '  - { contid: 100, daemons: [a] }',
      '  - { container: { image: "shop/*" }, daemons: [shop] }',
    ],
  });
  const conf = join(h.dir, 'auditmux.yaml');
  const reg = h.daemon.contid.containers.registry;
  try {
    reg.register({
      runtime: 'podman',
      id: 'a'.repeat(64),
      contid: 100n,
      source: 'hook',
      meta: { name: 'web-1', image: 'nginx:1' },
    });
    reg.register({
      runtime: 'containerd',
      id: 'b'.repeat(64),
      contid: 200n,
      source: 'hook',
      meta: { name: 'cart\x1b]0;x', image: 'shop/cart:3' },
    });
    assert.equal(
      await runRouteTest(conf, { container: { name: 'web-1' } }),
      ['daemons: a', 'routes: 0', 'host log: no', 'live container web-1: contid 100 (podman) -> a'].join('\n'),
    );
    // The live container's image routes it; its name is shown escaped.
    const cart = await runRouteTest(conf, { container: { name: 'cart\x1b]0;x' } });
    assert.match(cart, /^daemons: shop\n/);
    assert.match(cart, /live container cart\\033\]0;x: contid 200 \(containerd\) -> shop$/m);
    assert.doesNotMatch(cart, /\x1b/);
    assert.equal(
      await runRouteTest(conf, { container: { name: 'nobody' } }),
      [
        'daemons: (none)',
        'routes: (none)',
        'host log: yes',
        'live containers named nobody: none (routed by the options given)',
      ].join('\n'),
    );
    // Given --contid, the name is not looked up: the options are the container's metadata.
    assert.doesNotMatch(await runRouteTest(conf, { contid: '300', container: { name: 'web-1' } }), /live container/);
  } finally {
    await h.stop();
  }
  try {
    const offline = await runRouteTest(conf, { container: { name: 'web-1' } });
    assert.equal(
      offline,
      [
        'daemons: (none)',
        'routes: (none)',
        'host log: yes',
        `note: no auditmux daemon answers on ${join(h.dir, 'control.sock')}: routes from ${conf} only; live containers were not looked up`,
      ].join('\n'),
    );
    assert.match(await runRouteTest(conf, { contid: '100' }), /^daemons: a\n[^]*note: no auditmux daemon answers/);
  } finally {
    rmSync(h.dir, { recursive: true, force: true });
  }
});
