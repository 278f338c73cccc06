// Routes by container metadata: config parsing with positions, glob matching, per-container answers, route test.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';
import { Router } from '../../src/routing/router';
import { routeTest } from '../../src/routing/route-test';
import { globMatch } from '../../src/contid/cgroup-glob';
import type { ContainerDirectory, ContainerFacts } from '../../src/contid/meta-selector';
import { ContainerRegistry } from '../../src/containers/registry';
import { metaFromAnnotations } from '../../src/containers/metadata';
import { RETIRE_GRACE_MS } from '../../src/contid/tracker';
import { intBelow, prng } from '../helpers/prng';

const FILE = '/etc/auditmux/sel.yaml';
const DAEMONS = [
  'daemons:',
  '  - { name: web, log: { file: /tmp/am-w.log } }',
  '  - { name: shop, log: { file: /tmp/am-s.log } }',
  '  - { name: raw, log: { file: /tmp/am-r.log } }',
];

const cfg = parseConfig(
  [
    ...DAEMONS,
    'routes:',
    '  - { container: { name: "web-*", image: ["nginx:*", "httpd:*"] }, daemons: [web] }',
    '  - { container: { namespace: shop, label: { app: "cart*" } }, daemons: [shop] }',
    '  - { contid: 7, container: { runtime: runc }, daemons: [raw] }',
    '  - { contid: 9, daemons: [raw] }',
  ].join('\n'),
  FILE,
);

class Dir implements ContainerDirectory {
  version = 0;
  asked = 0;
  constructor(readonly map: Map<bigint, ContainerFacts>) {}
  facts(contid: bigint): ContainerFacts | undefined {
    this.asked++;
    return this.map.get(contid);
  }
}

const ev = (id: bigint | null): { chains: bigint[][]; types: number[]; keys: string[] } => ({
  chains: id === null ? [] : [[id]],
  types: [1300],
  keys: [],
});

function fail(...lines: string[]): ConfigError {
  try {
    parseConfig([...DAEMONS, 'routes:', ...lines].join('\n'), FILE);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

describe('routes by container metadata', () => {
  it('parses name, image, runtime, namespace and label globs beside contid', () => {
    assert.deepEqual(cfg.routes[0]!.contid, []);
    assert.deepEqual(cfg.routes[0]!.container?.fields, [
      { field: 'name', globs: ['web-*'] },
      { field: 'image', globs: ['nginx:*', 'httpd:*'] },
    ]);
    assert.deepEqual(cfg.routes[1]!.container?.labels, [{ key: 'app', globs: ['cart*'] }]);
    assert.equal(cfg.routes[2]!.contid.length, 1);
    assert.equal(cfg.routes[3]!.container, undefined);
  });

  it('refuses bad selectors at their line and column', () => {
    let e = fail('  - { container: { nmae: web }, daemons: [web] }');
    assert.deepEqual([e.pos.line, e.pos.col], [6, 20]);
    assert.match(e.reason, /unknown key "nmae".*did you mean "name"/);
    e = fail('  - { container: { name: "" }, daemons: [web] }');
    assert.deepEqual([e.pos.line, e.pos.col], [6, 26]);
    assert.match(e.reason, /routes\[0\]\.container\.name: a glob cannot be empty/);
    e = fail('  - { container: { label: [app] }, daemons: [web] }');
    assert.match(e.reason, /container\.label must be a mapping/);
    e = fail('  - { container: { label: { "a b": x } }, daemons: [web] }');
    assert.match(e.reason, /a label name is/);
    e = fail('  - { container: {}, daemons: [web] }');
    assert.match(e.reason, /names nothing to match/);
    e = fail('  - { daemons: [web] }');
    assert.match(e.reason, /needs a contid selector or a container selector/);
    e = fail('  - { container: { name: [] }, daemons: [web] }');
    assert.match(e.reason, /empty list/);
  });

  it('routes by the container behind the contid, exactly, asking the directory once per container', () => {
    const dir = new Dir(
      new Map<bigint, ContainerFacts>([
        [1n, { name: 'web-1', image: 'nginx:1.25', runtime: 'podman' }],
        [2n, { name: 'web-2', image: 'redis:7' }],
        [3n, { name: 'cart', namespace: 'shop', labels: { app: 'cart-api' } }],
        [4n, { name: 'cart', namespace: 'shop', labels: { tier: 'cart' } }],
        [7n, { name: 'r', runtime: 'runc' }],
        [8n, { name: 'r', runtime: 'runc' }],
      ]),
    );
    const r = new Router(cfg.routes, dir);
    const where = (id: bigint | null): string[] => r.route(ev(id)).daemons;
    for (let i = 0; i < 100; i++) {
      assert.deepEqual(where(1n), ['web']);
      assert.deepEqual(where(2n), [], 'the image does not match');
      assert.deepEqual(where(3n), ['shop']);
      assert.deepEqual(where(4n), [], 'no app label');
      assert.deepEqual(where(7n), ['raw'], 'contid and runtime both hold');
      assert.deepEqual(where(8n), [], 'runtime alone is not enough when the route names a contid');
      assert.deepEqual(where(9n), ['raw'], 'unknown to the directory: contid routes still apply');
      assert.deepEqual(where(null), [], 'no contid, no container');
    }
    assert.equal(dir.asked, 7, 'one question per contid, not per event');
    // The directory changed (a rename, a retirement): the answers are computed again.
    dir.map.set(2n, { name: 'web-2', image: 'httpd:2.4' });
    dir.version++;
    assert.deepEqual(where(2n), ['web']);
    dir.map.delete(1n);
    dir.version++;
    assert.deepEqual(where(1n), []);
  });

  it('the registry is a directory: labels from annotations and CRI-O labels, a new version on each change', () => {
    const reg = new ContainerRegistry();
    const meta = metaFromAnnotations({
      'io.kubernetes.cri-o.Labels': '{"app":"cart-7","io.kubernetes.pod.namespace":"shop"}',
      'io.kubernetes.cri-o.Namespace': 'shop',
      'io.kubernetes.cri-o.Name': 'k8s_cart',
      'io.kubernetes.cri-o.ImageName': 'cart:3',
      __proto__: 'x',
    });
    const v0 = reg.version;
    reg.register({ runtime: 'cri-o', id: 'c'.repeat(64), contid: 3n, source: 'hook', meta });
    assert.notEqual(reg.version, v0);
    const r = new Router(cfg.routes, reg);
    assert.deepEqual(r.route(ev(3n)).daemons, ['shop']);
    assert.equal(reg.facts(3n)?.labels?.app, 'cart-7');
    const v1 = reg.version;
    reg.retire(3n, 'poststop');
    assert.notEqual(reg.version, v1);
    assert.deepEqual(r.route(ev(3n)).daemons, ['shop'], 'retired: its late events still route by its metadata');
    const v2 = reg.version;
    reg.expire(Date.now() + RETIRE_GRACE_MS);
    assert.notEqual(reg.version, v2);
    assert.deepEqual(r.route(ev(3n)).daemons, [], 'its grace over: no metadata any more');
  });

  it('route test takes the metadata as given, or the directory’s for the contid', () => {
    const dir = new Dir(new Map([[1n, { name: 'web-1', image: 'nginx:1' }]]));
    assert.deepEqual(routeTest(cfg.routes, dir, false, { contid: '1' }), {
      daemons: ['web'],
      routes: [0],
      host: false,
    });
    assert.deepEqual(routeTest(cfg.routes, dir, false, { container: { name: 'web-9', image: 'httpd:2' } }).daemons, [
      'web',
    ]);
    assert.deepEqual(
      routeTest(cfg.routes, dir, false, { container: { namespace: 'shop', labels: { app: 'cart' } } }).daemons,
      ['shop'],
    );
    assert.throws(() => routeTest(cfg.routes, dir, false, { container: { nme: 'x' } }), /unknown container field/);
    assert.throws(() => routeTest(cfg.routes, dir, false, { container: { name: 5 } }), /short string/);
    assert.deepEqual(routeTest(cfg.routes, dir, false, { types: ['CONTAINER_OP'], contid: '1' }).daemons, ['web']);
  });

  it('a directory change refreshes selector and template answers alike, whichever is asked first', () => {
    // A name selector route before a template keyed by name: the selector's cache is asked first in every event.
    const routes = [
      { ...cfg.routes[0]!, continue: true },
      {
        index: 9,
        contid: [],
        types: null,
        keys: null,
        daemons: [],
        continue: true,
        pos: cfg.routes[0]!.pos,
        template: { name: 'tenant', key: { field: 'name' as const }, resolve: (v: string) => `tenant-${v}` },
      },
    ];
    const dir = new Dir(new Map([[5n, { name: 'web-1', image: 'nginx:1' }]]));
    const r = new Router(routes, dir);
    assert.deepEqual(r.route(ev(5n)).daemons, ['web', 'tenant-web-1']);
    // The runtime's metadata renames it (a name learned after the cgroup was seen): both answers follow.
    dir.map.set(5n, { name: 'db-1', image: 'nginx:1' });
    dir.version++;
    assert.deepEqual(r.route(ev(5n)).daemons, ['tenant-db-1']);
  });

  it('globs match like a shell pattern over the whole value, * across any character (property, seeded)', () => {
    const next = prng(0x91ab);
    const alpha = ['a', 'b', '/', ':', '.', '*', '?'];
    const toRe = (p: string): RegExp =>
      new RegExp(
        `^${[...p].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.\\/]/g, '\\$&'))).join('')}$`,
        's',
      );
    for (let i = 0; i < 5000; i++) {
      let p = '';
      let s = '';
      for (let j = intBelow(next, 7); j > 0; j--) p += alpha[intBelow(next, alpha.length)];
      for (let j = intBelow(next, 9); j > 0; j--) s += alpha[intBelow(next, 4)];
      assert.equal(globMatch(p, s), toRe(p).test(s), `${p} vs ${s}`);
    }
  });

  it('any generated container selector parses or fails with a position, never a crash (fuzz, seeded)', () => {
    const next = prng(0x5e1ec7);
    const keys = ['name', 'image', 'runtime', 'pod', 'namespace', 'label', 'nmae', '<<', ''];
    const vals = [
      'web-*',
      '"a\\x01"',
      '[]',
      '[a, "b*"]',
      '{}',
      '{ app: x }',
      '{ "a b": 1 }',
      '~',
      '*',
      '"' + 'x'.repeat(300) + '"',
      '&a x',
      '*a',
      '5',
      '[[x]]',
    ];
    for (let i = 0; i < 1500; i++) {
      const parts: string[] = [];
      for (let j = intBelow(next, 4); j > 0; j--)
        parts.push(`${keys[intBelow(next, keys.length)]}: ${vals[intBelow(next, vals.length)]}`);
      const text = [...DAEMONS, 'routes:', `  - { container: { ${parts.join(', ')} }, daemons: [web] }`].join('\n');
      try {
        const c = parseConfig(text, FILE);
        const sel = c.routes[0]!.container!;
        assert.ok(sel.fields.length + sel.labels.length > 0, text);
        for (const f of sel.fields) assert.ok(f.globs.length > 0, text);
      } catch (e) {
        if (!(e instanceof ConfigError)) throw new Error(`${(e as Error).message} for ${text}`, { cause: e });
        assert.ok(e.pos.line >= 1, text);
      }
    }
  });
});
