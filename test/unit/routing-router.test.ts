// The routing table: contid selectors, nesting, narrowing by type and key, continue, netns fan-out.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config';
import { Router } from '../../src/routing/router';

const cfg = parseConfig(
  `
daemons:
  - { name: a, log: { file: /tmp/am-a.log } }
  - { name: b, log: { file: /tmp/am-b.log } }
  - { name: c, log: { file: /tmp/am-c.log } }
routes:
  - { contid: 100, daemons: [a] }
  - { contid: "200^*", daemons: [b], continue: true }
  - { contid: "200-299", types: [EXECVE], daemons: [c] }
  - { contid: unset, keys: [hostkey], daemons: [c] }
`,
  '/tmp/am-router.yaml',
);
const r = new Router(cfg.routes);

describe('router', () => {
  it('routes by exact id, first match wins', () => {
    assert.deepEqual(r.route({ chains: [[100n]], types: [1300], keys: [] }).daemons, ['a']);
    assert.deepEqual(r.route({ chains: [[101n]], types: [1300], keys: [] }).daemons, []);
  });
  it('matches nested containers with ^* and keeps going with continue', () => {
    assert.deepEqual(r.route({ chains: [[201n, 200n]], types: [1300], keys: [] }).daemons, ['b']);
    assert.deepEqual(r.route({ chains: [[250n]], types: [1300, 1309], keys: [] }).daemons.sort(), ['c']);
    assert.deepEqual(r.route({ chains: [[200n]], types: [1309], keys: [] }).daemons.sort(), ['b', 'c']);
  });
  it('narrows by key, and unset matches processes without a contid', () => {
    assert.deepEqual(r.route({ chains: [], types: [1300], keys: ['hostkey'] }).daemons, ['c']);
    assert.deepEqual(r.route({ chains: [], types: [1300], keys: ['other'] }).daemons, []);
  });
  it('a non-ASCII route key matches the bytes an event carries (the kernel keeps the UTF-8 of the rules file)', () => {
    const c = parseConfig(
      `
daemons:
  - { name: a, log: { file: /tmp/am-a.log } }
routes:
  - { contid: unset, keys: [sécret], daemons: [a] }
`,
      '/tmp/am-router-keys.yaml',
    );
    const carried = Buffer.from('sécret', 'utf8').toString('latin1'); // as decodeKeys() gives it
    assert.deepEqual(new Router(c.routes).route({ chains: [], types: [1300], keys: [carried] }).daemons, ['a']);
    assert.deepEqual(new Router(c.routes).route({ chains: [], types: [1300], keys: ['sécret'] }).daemons, []);
  });
  it('fans a network-namespace event out to every listed container', () => {
    const d = r.route({ chains: [[100n], [200n]], types: [1324], keys: [] });
    assert.deepEqual(d.daemons.sort(), ['a', 'b']);
    assert.deepEqual(d.matched, [0, 1]);
  });
});
