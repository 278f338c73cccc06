// cgroup_map against cgroups containers and users name themselves: discovery's container first, the map's outermost.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ContidTracker } from '../../src/contid/tracker';
import { ContainerDiscovery } from '../../src/containers/discovery';
import { ContainerRegistry } from '../../src/containers/registry';
import { compileCgroupGlob, type CgroupGlobEntry } from '../../src/contid/cgroup-glob';
import { containerContid } from '../../src/contid/derive';
import { parseConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';
import { FakeSystem, v2 } from '../helpers/fake-proc';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const USER_SCOPE = '/user.slice/user-1000.slice/user@1000.service/app.slice/docker-x.scope';
const SHIPPED = join(__dirname, '..', '..', '..', 'config', 'auditmux.yaml');

function entry(pattern: string, contid: bigint): CgroupGlobEntry {
  const g = compileCgroupGlob(pattern);
  assert.ok(typeof g !== 'string', `${pattern}: ${String(g)}`);
  return { ...g, contid };
}

function tracker(sys: FakeSystem, cgroupMap: readonly CgroupGlobEntry[]): ContidTracker {
  const containers = new ContainerDiscovery(new ContainerRegistry({}), sys);
  return new ContidTracker({ proc: sys, containers, cgroupMap });
}

/** The cgroup_map example in the shipped config's comments, as config. */
function shippedExample(): string[] {
  const text = readFileSync(SHIPPED, 'utf8');
  const block = text.slice(text.indexOf('#   cgroup_map:'), text.indexOf('\ncontid:'));
  const lines = block
    .split('\n')
    .filter((l) => /^# {5}[- ] /.test(l))
    .map((l) => l.slice(1).replace(/#.*$/, ''));
  assert.ok(lines.length >= 2, 'the shipped config shows a cgroup_map example');
  return ['contid:', '  cgroup_map:', ...lines];
}

describe('cgroup_map and nesting', () => {
  it('a cgroup a container makes below its own, named after a mapped container, stays its container', () => {
    // Old: the map was asked first and answered for the whole path: [100n], container A's tenant.
    const sys = new FakeSystem();
    sys.put(1, { ppid: 0, cg: v2('/') });
    sys.put(10, { ppid: 1, cg: v2(`/system.slice/docker-${B}.scope`) });
    sys.put(11, { ppid: 10, cg: v2(`/system.slice/docker-${B}.scope/docker-${A}.scope`) });
    const map = [entry(`/system.slice/**/docker-${A}.scope`, 100n), entry(`/system.slice/**/docker-${B}.scope`, 200n)];
    const t = tracker(sys, map);
    assert.deepEqual(t.lookup(11, 10), [containerContid(B)], 'no tracked parent: the process by its own cgroup');
    assert.deepEqual(t.lookup(10, 1), [containerContid(B)]);
  });

  it('without a container discovery knows, the outermost mapped cgroup answers', () => {
    // Old: the first entry matching the whole path: [100n] for a process under job-b's cgroup.
    const sys = new FakeSystem();
    sys.put(1, { ppid: 0, cg: v2('/') });
    sys.put(20, { ppid: 1, cg: v2('/srv.slice/job-b.scope/job-a.scope') });
    sys.put(21, { ppid: 1, cg: v2('/srv.slice/job-b.scope/x/y/job-a.scope/z') });
    sys.put(22, { ppid: 1, cg: v2('/srv.slice/job-a.scope/job-b.scope') });
    const t = tracker(sys, [entry('/srv.slice/**/job-a.scope', 100n), entry('/srv.slice/**/job-b.scope', 200n)]);
    assert.deepEqual(t.lookup(20, 1), [200n]);
    assert.deepEqual(t.lookup(21, 1), [200n]);
    assert.deepEqual(t.lookup(22, 1), [100n]);
  });

  it("no pattern the config accepts gives a host user's own scope called docker-x a contid", () => {
    // `systemd-run --user --scope --unit=docker-x`. Old: the shipped example's `docker-*.scope` (and `/**/…`)
    // were accepted and mapped it: the user's events went to a tenant, not the host log.
    const forms = [
      shippedExample(),
      ...['docker-*.scope', '/**/docker-*.scope', '/*/**/docker-*.scope', '/system.slice/docker-*.scope'].map((p) => [
        'contid:',
        '  cgroup_map:',
        `    - { pattern: "${p}", contid: 300 }`,
      ]),
    ];
    let accepted = 0;
    for (const lines of forms) {
      let map: readonly CgroupGlobEntry[];
      try {
        map = parseConfig(lines.join('\n'), '/etc/auditmux/test.yaml').contid.cgroupMap;
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        continue;
      }
      accepted++;
      const sys = new FakeSystem();
      sys.put(1, { ppid: 0, cg: v2('/') });
      sys.put(1000, { ppid: 1, cg: v2('/user.slice/user-1000.slice/user@1000.service/init.scope') });
      sys.put(1001, { ppid: 1000, cg: v2(USER_SCOPE) });
      assert.equal(tracker(sys, map).lookup(1001, 1000), null, lines.join('\n'));
    }
    assert.equal(accepted, 2, 'the shipped example and the rooted form parse');
  });
});
