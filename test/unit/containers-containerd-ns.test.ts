// containerd namespaces: same-named containers in two namespaces get two contids, hook and cgroup scan agree on them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ContidTracker } from '../../src/contid/tracker';
import { FakeSystem as BaseFakeSystem, v2 } from '../helpers/fake-proc';
import { Containers } from '../../src/containers/service';
import { containerContid, containerKey } from '../../src/contid/derive';
import { CONTAINERD_TASK_DIR, containerdBundleNamespace } from '../../src/containers/metadata';
import { formatContainers } from '../../src/cli/oci-hook';
import { encodeState, parseState } from '../../src/containers/persist';
import { intBelow, prng } from '../helpers/prng';

const H = 'da5f278a1a4b3688eacf59509797b6c6147335dbdfa5a43b6732f09a2cdc613a';
const POD = '1234abcd-0000-1111-2222-333344445555';

/** /proc, runc's state (/run/runc/<id>) and containerd's runc state (/run/containerd/runc/<ns>/<id>) as sets. */
class FakeSystem extends BaseFakeSystem {
  add(pid: number, cg: string, ns = `pid:[${pid}]`): void {
    this.put(pid, { cg: v2(cg), ns });
  }
}

function setup(): { sys: FakeSystem; c: Containers; t: ContidTracker; records: string[] } {
  const sys = new FakeSystem();
  sys.add(1, '/', 'pid:[1]');
  const t = new ContidTracker({ proc: sys });
  const records: string[] = [];
  const c = new Containers({ tracker: t, proc: sys, record: (b) => records.push(b) });
  t.setContainers(c.discovery);
  return { sys, c, t, records };
}

const bundle = (ns: string, id: string): string => `${CONTAINERD_TASK_DIR}/${ns}/${id}`;
const nsKey = (ns: string, id: string): bigint => containerContid(containerKey('containerd', id, ns));

describe('containerd namespaces', () => {
  it('ctr run img web in two namespaces: the hook and the scan give each its own contid, the same one both ways', () => {
    const { sys, c, t, records } = setup();
    // createRuntime: the init is in its cgroup, containerd's runc state for it is not written yet.
    sys.add(100, '/default/web');
    sys.add(200, '/tenant-b/web');
    const a = c.fromHook({ state: { id: 'web', status: 'creating', pid: 100, bundle: bundle('default', 'web') } });
    const b = c.fromHook({ state: { id: 'web', status: 'creating', pid: 200, bundle: bundle('tenant-b', 'web') } });
    assert.equal(a.contid, nsKey('default', 'web').toString());
    assert.equal(b.contid, nsKey('tenant-b', 'web').toString());
    assert.notEqual(a.contid, b.contid);
    assert.notEqual(a.contid, containerContid('web').toString(), 'not the contid of a runc container called web');
    assert.equal(a.cgroupKnown, true, 'its `/<namespace>/<id>` cgroup, confirmed by the hook itself');
    assert.equal(c.registry.liveCount, 2);
    assert.deepEqual(t.get(100), [nsKey('default', 'web')]);
    assert.deepEqual(t.get(200), [nsKey('tenant-b', 'web')]);
    // Once runc wrote containerd's state, the scan finds both (and a process each joined later) under the same contids.
    sys.containerd.add('default/web').add('tenant-b/web');
    sys.add(101, '/default/web/sub');
    sys.add(201, '/tenant-b/web');
    assert.deepEqual(c.discovery.scan().born, [], 'no second birth: the scan and the hook agree');
    assert.equal(c.discovery.contidFor(101), nsKey('default', 'web'));
    assert.equal(c.discovery.contidFor(201), nsKey('tenant-b', 'web'));
    assert.equal(c.registry.liveCount, 2);
    const rows = c.list();
    assert.deepEqual(
      rows.map((r) => [r.id, r.containerdNamespace, r.name]),
      [
        ['web', 'default', 'web'],
        ['web', 'tenant-b', 'web'],
      ],
    );
    const table = formatContainers(rows);
    assert.match(table, / default\/web /);
    assert.match(table, / tenant-b\/web /);
    // poststop (no pid, the same bundle) retires each one, not the other.
    const out = c.fromHook({ state: { id: 'web', status: 'stopped', pid: 0, bundle: bundle('tenant-b', 'web') } });
    assert.deepEqual([out.contid, out.retired], [nsKey('tenant-b', 'web').toString(), true]);
    assert.ok(c.registry.get(nsKey('default', 'web')), 'default/web lives on');
    const births = records.filter((r) => r.startsWith('op=container-birth'));
    assert.equal(births.length, 2);
    // The birth records say which namespace each is in (encoded as every value a runtime chose).
    assert.match(births[0]!, / container="web" containerd-ns="default" name=/);
    assert.match(births[1]!, / container="web" containerd-ns="tenant-b" name=/);
    // A restarted daemon takes the namespace back with the container.
    const saved = parseState(encodeState('boot', c.registry.liveContainers()).text, 'boot').containers;
    assert.deepEqual(
      saved.map((x) => [x.contid, x.meta.containerdNamespace]),
      [[nsKey('default', 'web'), 'default']],
    );
  });

  it('the scan first, then the hook: still one container per namespace', () => {
    const { sys, c } = setup();
    sys.containerd.add('a/web').add('b/web');
    sys.add(100, '/a/web');
    sys.add(200, '/b/web');
    const { born } = c.discovery.scan();
    assert.deepEqual(new Set(born), new Set([nsKey('a', 'web'), nsKey('b', 'web')]));
    const r = c.fromHook({ state: { id: 'web', status: 'creating', pid: 200, bundle: bundle('b', 'web') } });
    assert.equal(r.new, false);
    assert.equal(r.contid, nsKey('b', 'web').toString());
    assert.equal(c.registry.get(nsKey('b', 'web'))?.source, 'hook');
    assert.equal(c.registry.get(nsKey('a', 'web'))?.source, 'cgroup');
  });

  it('a runc container named `default` keeps its own processes and takes none of containerd default/<id>', () => {
    const { sys, c } = setup();
    sys.runc.add('default');
    sys.add(50, '/default');
    sys.add(51, '/default/sub', 'pid:[50]');
    assert.deepEqual(c.discovery.scan().born, [containerContid('default')]);
    // containerd's default/web starts: its hook is not refused as "in container default", nor is it merged into it.
    sys.add(100, '/default/web');
    const r = c.fromHook({ state: { id: 'web', status: 'creating', pid: 100, bundle: bundle('default', 'web') } });
    assert.equal(r.contid, nsKey('default', 'web').toString());
    sys.containerd.add('default/web');
    sys.add(101, '/default/web');
    c.discovery.scan();
    assert.equal(c.discovery.contidFor(101), nsKey('default', 'web'));
    assert.equal(c.discovery.contidFor(50), containerContid('default'));
    assert.equal(c.discovery.contidFor(51), containerContid('default'), 'its own delegated child cgroup');
    assert.equal(c.registry.get(containerContid('default'))?.runtime, 'runc');
  });

  it('a hook whose pid is in another namespace’s container is refused', () => {
    const { sys, c } = setup();
    sys.containerd.add('a/web');
    sys.add(100, '/a/web');
    assert.throws(
      () => c.fromHook({ state: { id: 'web', status: 'creating', pid: 100, bundle: bundle('b', 'web') } }),
      (e: Error & { code?: string }) => e.code === 'E_CONTAINER_MISMATCH' && /a\/web .*not b\/web/.test(e.message),
    );
    assert.equal(c.registry.liveCount, 0);
  });

  it('CRI containers (kubepods, cri-containerd scopes) keep the contid of their ID; poststop finds them by it', () => {
    const { sys, c } = setup();
    const cg = `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD.replace(/-/g, '_')}.slice/cri-containerd-${H}.scope`;
    sys.add(100, cg);
    const annotations = { 'io.kubernetes.cri.sandbox-namespace': 'shop', 'io.kubernetes.cri.container-name': 'cart' };
    const r = c.fromHook({ state: { id: H, status: 'creating', pid: 100, bundle: bundle('k8s.io', H), annotations } });
    assert.equal(r.contid, containerContid(H).toString());
    assert.equal(c.registry.get(containerContid(H))?.meta.containerdNamespace, 'k8s.io');
    assert.equal(c.registry.get(containerContid(H))?.meta.podNamespace, 'shop', 'the Kubernetes namespace apart');
    // poststop of the same ID in another containerd namespace does not retire it; its own does.
    const other = c.fromHook({ state: { id: H, status: 'stopped', pid: 0, bundle: bundle('default', H) } });
    assert.equal(other.retired, false);
    const own = c.fromHook({ state: { id: H, status: 'stopped', pid: 0, bundle: bundle('k8s.io', H), annotations } });
    assert.deepEqual([own.contid, own.retired], [containerContid(H).toString(), true]);
  });

  it("a CRI-O pod's own annotation of containerd's prefix does not make its container containerd's", () => {
    const { sys, c } = setup();
    sys.add(100, `/kubepods.slice/kubepods-pod${POD.replace(/-/g, '_')}.slice/crio-${H}.scope`);
    // CRI-O copies a pod's annotations into the OCI state: `io.kubernetes.cri.x` is the pod author's to set.
    const annotations = { 'io.kubernetes.cri-o.ContainerName': 'cart', 'io.kubernetes.cri.x': 'y' };
    const r = c.fromHook({ state: { id: H, status: 'creating', pid: 100, bundle: `/run/crio/${H}`, annotations } });
    assert.equal(r.contid, containerContid(H).toString());
    assert.equal(c.registry.get(containerContid(H))?.runtime, 'cri-o');
  });

  it("a kubepods container (any CRI runtime) with a pod's libpod annotation is not podman's", () => {
    const { sys, c } = setup();
    sys.add(100, `/kubepods/besteffort/pod${POD}/${H}`);
    const annotations = { 'io.container.manager': 'libpod', 'io.kubernetes.cri.container-name': 'cart' };
    c.fromHook({ state: { id: H, status: 'creating', pid: 100, bundle: `/run/x/${H}`, annotations } });
    assert.equal(c.registry.get(containerContid(H))?.runtime, 'containerd');
  });

  it('annotations never name the namespace, and only a canonical bundle path does (seeded mutations)', () => {
    const { sys, c } = setup();
    sys.add(100, '/custom/place');
    const r = c.fromHook({
      state: {
        id: 'web',
        status: 'creating',
        pid: 100,
        bundle: '/tmp/bundles/web',
        annotations: { 'io.containerd.namespace': 'tenant-b', 'nerdctl/namespace': 'tenant-b' },
      },
    });
    assert.equal(r.contid, containerContid('web').toString());
    assert.equal(c.registry.get(containerContid('web'))?.meta.containerdNamespace, undefined);
    assert.equal(containerdBundleNamespace(bundle('tenant-b', 'web'), 'web'), 'tenant-b');
    for (const bad of [
      `${CONTAINERD_TASK_DIR}/tenant-b/web/`,
      `${CONTAINERD_TASK_DIR}//tenant-b/web`,
      `${CONTAINERD_TASK_DIR}/tenant-b/../web`,
      `${CONTAINERD_TASK_DIR}/../tenant-b/web`,
      `${CONTAINERD_TASK_DIR}/tenant-b/other`,
      `${CONTAINERD_TASK_DIR}/a/b/web`,
      `${CONTAINERD_TASK_DIR}/-x/web`,
      `${CONTAINERD_TASK_DIR}/a..b/web`,
      `/var${CONTAINERD_TASK_DIR}/tenant-b/web`,
      `${CONTAINERD_TASK_DIR}x/tenant-b/web`,
      `/run/containerd/io.containerd.runtime.v1.linux/tenant-b/web`,
    ])
      assert.equal(containerdBundleNamespace(bad, 'web'), undefined, bad);
    const rnd = prng(7311);
    const good = bundle('tenant-b', 'web');
    for (let i = 0; i < 5000; i++) {
      let s = good;
      for (let n = 1 + intBelow(rnd, 3); n > 0; n--) {
        const k = intBelow(rnd, s.length + 1);
        const ch = '/.-_aZ9\0\n '[intBelow(rnd, 11)]!;
        s = rnd() < 0.5 ? s.slice(0, k) + ch + s.slice(k) : s.slice(0, k) + s.slice(k + 1);
      }
      const ns = containerdBundleNamespace(s, 'web');
      if (ns === undefined) continue;
      // Whatever is accepted is exactly the canonical form for some valid namespace.
      assert.equal(s, bundle(ns, 'web'));
      assert.match(ns, /^[A-Za-z0-9]+([._-][A-Za-z0-9]+)*$/);
    }
  });
});
