// Container cgroup patterns: every runtime's real layout, v1/v2/hybrid files, forged names, and a fixed-seed fuzz.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyCgroupCandidates,
  classifyCgroupPath,
  classifyProcCgroup,
  parseProcCgroup,
  type CgroupMatch,
} from '../../src/contid/cgroup-patterns';
import { containerContid, containerKey } from '../../src/contid/derive';
import { intBelow, prng } from '../helpers/prng';

const H = 'da5f278a1a4b3688eacf59509797b6c6147335dbdfa5a43b6732f09a2cdc613a';
const H2 = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
const UID = '4a7e2c3b-1111-2222-3333-444455556666';

const TABLE: Array<[string, Partial<CgroupMatch> | null]> = [
  [`/docker/${H}`, { runtime: 'docker', id: H, base: `/docker/${H}` }],
  [`/system.slice/docker-${H}.scope`, { runtime: 'docker', id: H }],
  [
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${H}.scope`,
    { runtime: 'containerd', id: H, podUid: UID },
  ],
  [
    `/kubepods.slice/kubepods-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${H}.scope`,
    { runtime: 'containerd', id: H, podUid: UID },
  ],
  [
    `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID.replace(/-/g, '_')}.slice/crio-${H}.scope`,
    { runtime: 'cri-o', id: H, podUid: UID },
  ],
  [`/kubepods/burstable/pod${UID}/${H}`, { runtime: 'kubernetes', id: H, podUid: UID }],
  [`/kubepods/pod${UID}/${H}`, { runtime: 'kubernetes', id: H, podUid: UID }],
  [`/kubepods/besteffort/pod${UID}/crio-${H}`, { runtime: 'cri-o', id: H, podUid: UID }],
  [`/system.slice/crio-${H}.scope`, { runtime: 'cri-o', id: H }],
  [`/system.slice/cri-containerd-${H}.scope`, { runtime: 'containerd', id: H }],
  // nerdctl, systemd driver (`system.slice:nerdctl:<id>`).
  [`/system.slice/nerdctl-${H}.scope`, { runtime: 'containerd', id: H, base: `/system.slice/nerdctl-${H}.scope` }],
  [`/machine.slice/libpod-${H}.scope`, { runtime: 'podman', id: H, base: `/machine.slice/libpod-${H}.scope` }],
  [
    `/machine.slice/libpod-${H}.scope/container`,
    { runtime: 'podman', id: H, base: `/machine.slice/libpod-${H}.scope` },
  ],
  [`/libpod_parent/libpod-${H}`, { runtime: 'podman', id: H }],
  [`/libpod_parent/libpod-${H}/sub`, { runtime: 'podman', id: H }],
  ['/machine.slice/machine-web1.scope', { runtime: 'nspawn', id: 'web1' }],
  ['/machine.slice/machine-lxc\\x2d1234\\x2dguest.scope', { runtime: 'lxc', id: 'lxc\\x2d1234\\x2dguest' }],
  ['/lxc.payload.guest1', { runtime: 'lxc', id: 'guest1' }],
  ['/lxc/guest2', { runtime: 'lxc', id: 'guest2' }],
  ['/mybox', { runtime: 'runc', id: 'mybox', verify: 'runc-state' }],
  ['/mybox/inner', { runtime: 'runc', id: 'mybox', base: '/mybox' }],
  // Not containers.
  ['/', null],
  ['/system.slice/ssh.service', null],
  ['/user.slice/user-1000.slice/session-3.scope', null],
  ['/init.scope', null],
  ['/libpod_parent/conmon', null],
  [`/docker/${H.slice(1)}`, null],
  [`/docker/${H.toUpperCase()}`, null],
  [`/system.slice/docker-${H}`, null],
  [`/kubepods/burstable/${H}`, null],
  // Forged names below someone else's cgroup never count: a user's delegated subtree is not a runtime's place.
  [`/user.slice/user-1000.slice/user@1000.service/app.slice/docker-${H}.scope`, null],
  [`/user.slice/user-1000.slice/user@1000.service/libpod_parent/libpod-${H}`, null],
  // A system service given cgroup delegation (Delegate=yes) naming its children like a runtime's: still nothing.
  [`/system.slice/myapp.service/docker-${H}.scope`, null],
  [`/system.slice/myapp.service/libpod-${H}.scope`, null],
  [`/init.scope/docker-${H}.scope`, null],
  [`/system.slice/myapp.service/nerdctl-${H}.scope`, null],
  [`/user.slice/user-1000.slice/user@1000.service/app.slice/nerdctl-${H}.scope`, null],
  [`/system.slice/nerdctl-${H}`, null],
  [`/machine.slice/nerdctl-${H}.scope`, null],
  // A machine's own delegated subtree naming a podman container: the machine it is.
  [`/machine.slice/machine-web1.scope/libpod-${H}.scope`, { runtime: 'nspawn', id: 'web1' }],
];

describe('container cgroup patterns', () => {
  it('recognise each runtime layout, and nothing else', () => {
    for (const [path, want] of TABLE) {
      const got = classifyCgroupPath(path);
      if (want === null) assert.equal(got, null, path);
      else {
        assert.ok(got, `${path} should match`);
        for (const [k, v] of Object.entries(want))
          assert.equal((got as unknown as Record<string, unknown>)[k], v, `${path}: ${k}`);
      }
    }
  });

  it('plain containerd (ctr, nerdctl, cgroupfs driver): /<namespace>/<id>, confirmed by its runc state only', () => {
    // What containerd's state directory (/run/containerd/runc/<namespace>/<id>) holds, and runc's (/run/runc/<id>).
    const containerd = new Set([`default/${H}`, 'k8s.io/mybox', `amrunc/${H2}`, `system/${H}`, `docker/${H}`]);
    const runc = new Set(['amrunc']);
    const verify = (m: CgroupMatch): boolean =>
      m.verify === 'runc-state' ? runc.has(m.id) : containerd.has(`${m.namespace}/${m.id}`);
    const cls = (path: string): CgroupMatch | null => classifyProcCgroup(`0::${path}\n`, verify);
    const rows: Array<[string, Partial<CgroupMatch> | null]> = [
      [`/default/${H}`, { runtime: 'containerd', id: H, namespace: 'default', base: `/default/${H}` }],
      [`/default/${H}/sub`, { runtime: 'containerd', id: H, namespace: 'default', base: `/default/${H}` }],
      ['/k8s.io/mybox', { runtime: 'containerd', id: 'mybox', namespace: 'k8s.io' }],
      // Not in containerd's state: a root-made `/<name>/<hex>` that is no container.
      [`/default/${H2}`, null],
      [`/other/${H}`, null],
      // A runc container at /amrunc that made /amrunc/<name> in its delegated cgroup stays the runc container...
      ['/amrunc/sub', { runtime: 'runc', id: 'amrunc', base: '/amrunc' }],
      [`/amrunc/${H}`, { runtime: 'runc', id: 'amrunc', base: '/amrunc' }],
      ['/amrunc', { runtime: 'runc', id: 'amrunc', base: '/amrunc' }],
      // ...but where containerd's root-owned state holds `<namespace>/<id>`, that is containerd's container even when
      // a runc container is called like the namespace (one named `default` must not take containerd's default).
      [`/amrunc/${H2}`, { runtime: 'containerd', id: H2, namespace: 'amrunc', base: `/amrunc/${H2}` }],
      // Runtimes' and systemd's own tops are never a containerd namespace.
      [`/system/${H}`, null],
      [`/docker/x/${H}`, null],
      [`/libpod_parent/${H}`, null],
      [`/system.slice/${H}`, null],
      [`/user.slice/${H}`, null],
      [`/kubepods/${H}`, null],
      // Not containerd identifiers.
      [`/a..b/${H}`, null],
      [`/-x/${H}`, null],
      [`/default/${'a'.repeat(129)}`, null],
    ];
    for (const [path, want] of rows) {
      const got = cls(path);
      if (want === null) assert.equal(got, null, path);
      else {
        assert.ok(got, `${path} should match`);
        for (const [k, v] of Object.entries(want))
          assert.equal((got as unknown as Record<string, unknown>)[k], v, `${path}: ${k}`);
      }
    }
    // Unconfirmed, the same paths are nothing.
    assert.equal(classifyProcCgroup(`0::/default/${H}\n`), null);
    assert.deepEqual(
      classifyCgroupCandidates(`/default/${H}`).map((m) => [m.runtime, m.id, m.verify]),
      [
        ['containerd', H, 'containerd-state'],
        ['runc', 'default', 'runc-state'],
      ],
    );
  });

  it('a container naming a cgroup inside its own delegated subtree after another container stays itself', () => {
    const m = classifyCgroupPath(`/libpod_parent/libpod-${H}/libpod_parent/libpod-${H2}`)!;
    assert.equal(m.id, H);
    const d = classifyCgroupPath(`/docker/${H}/docker/${H2}`)!;
    assert.equal(d.id, H);
    const k = classifyCgroupPath(`/system.slice/docker-${H}.scope/system.slice/docker-${H2}.scope`)!;
    assert.equal(k.id, H);
  });

  it('reads v1, v2 and hybrid /proc/PID/cgroup files; plain runc needs runc to confirm it', () => {
    const hybridPod =
      [1, 2, 3]
        .map((n) => `${n}:cpu:/libpod_parent/libpod-${H}`)
        .concat([`0::/libpod_parent/libpod-${H}`])
        .join('\n') + '\n';
    assert.equal(classifyProcCgroup(hybridPod)?.runtime, 'podman');
    // This machine's own test processes: v2 and name=systemd at /, the memory controller in a sandbox cgroup.
    const sandbox = '9:name=systemd:/\n8:pids:/\n4:memory:/process_api/df0022b2798368571403e0bb21886f77\n0::/\n';
    assert.equal(classifyProcCgroup(sandbox), null);
    assert.equal(
      classifyProcCgroup(sandbox, (m) => m.verify === 'runc-state')?.id,
      'process_api',
      'only runc state would make it one',
    );
    const v1only = `12:pids:/docker/${H}\n11:memory:/docker/${H}\n1:name=systemd:/docker/${H}\n`;
    assert.equal(classifyProcCgroup(v1only)?.runtime, 'docker');
    const v2only = `0::/system.slice/docker-${H}.scope\n`;
    assert.equal(classifyProcCgroup(v2only)?.id, H);
    const runc = '9:name=systemd:/amrunc1\n8:pids:/amrunc1\n0::/amrunc1\n';
    assert.equal(classifyProcCgroup(runc), null);
    assert.equal(classifyProcCgroup(runc, (m) => m.id === 'amrunc1')?.runtime, 'runc');
    // The v2 line wins over a v1 line that says something else.
    assert.equal(classifyProcCgroup(`4:memory:/docker/${H2}\n0::/docker/${H}\n`)?.id, H);
    assert.deepEqual(parseProcCgroup('garbage\n1:x\nfoo:bar:/x\n0::relative\n').v1, []);
  });

  it('containerd IDs are per namespace: a/web, b/web and runc web are three contids; a runc `default` takes none', () => {
    const k = (runtime: string, id: string, ns?: string): bigint => containerContid(containerKey(runtime, id, ns));
    const rows: Array<[string, bigint]> = [
      ['containerd a/web', k('containerd', 'web', 'a')],
      ['containerd b/web', k('containerd', 'web', 'b')],
      ['containerd default/web', k('containerd', 'web', 'default')],
      ['containerd tenant-b/web', k('containerd', 'web', 'tenant-b')],
      ['runc web', k('runc', 'web')],
      ['containerd a/b.web', k('containerd', 'b.web', 'a')],
      ['containerd a.b/web', k('containerd', 'web', 'a.b')],
      ['nspawn web', k('nspawn', 'web')],
    ];
    const seen = new Map<bigint, string>();
    for (const [what, c] of rows) {
      assert.ok(!seen.has(c), `${what} shares contid ${c} with ${seen.get(c)}`);
      seen.set(c, what);
    }
    // Unchanged for every runtime keyed by its ID (persisted registries and logs hold these numbers).
    assert.equal(k('runc', 'web'), containerContid('web'));
    assert.equal(k('containerd', H), containerContid(H));
    assert.equal(k('podman', H), containerContid(H));
    assert.equal(k('docker', H, 'moby'), containerContid(H), 'only containerd is keyed by a namespace');
    // Through the cgroup: the same paths with containerd's state for a/web and b/web and runc's for web and default.
    const containerd = new Set(['a/web', 'b/web', 'default/web']);
    const runc = new Set(['web', 'default']);
    const verify = (m: CgroupMatch): boolean =>
      m.verify === 'runc-state' ? runc.has(m.id) : containerd.has(`${m.namespace}/${m.id}`);
    const contidOf = (path: string): bigint | null => {
      const m = classifyProcCgroup(`0::${path}\n`, verify);
      return m && containerContid(containerKey(m.runtime, m.id, m.namespace));
    };
    assert.equal(contidOf('/a/web'), k('containerd', 'web', 'a'));
    assert.equal(contidOf('/b/web/sub'), k('containerd', 'web', 'b'));
    assert.equal(contidOf('/web'), k('runc', 'web'));
    assert.equal(
      contidOf('/default/web'),
      k('containerd', 'web', 'default'),
      "containerd's default/web, not runc default",
    );
    assert.equal(contidOf('/default'), k('runc', 'default'));
    assert.equal(contidOf('/default/other'), k('runc', 'default'), 'not in containerd state: the runc container below');
  });

  it('an nspawn machine and an LXC container of the same name are two containers', () => {
    // Old: both were keyed `machine:<name>`, one contid for two tenants' containers.
    const contidOf = (path: string): bigint | null => {
      const m = classifyProcCgroup(`0::${path}\n`);
      return m && containerContid(containerKey(m.runtime, m.id, m.namespace));
    };
    assert.notEqual(contidOf('/lxc.payload.guest1'), null);
    assert.notEqual(containerKey('nspawn', 'guest1'), containerKey('lxc', 'guest1'));
    assert.notEqual(contidOf('/machine.slice/machine-guest1.scope'), contidOf('/lxc.payload.guest1'));
    assert.notEqual(contidOf('/machine.slice/machine-guest2.scope'), contidOf('/lxc/guest2'));
  });

  it('derived contids: stable, 63-bit, never 0 or (u64)-1, distinct per container, machines apart from IDs', () => {
    const a = containerContid(containerKey('podman', H));
    assert.equal(a, containerContid(containerKey('docker', H)), 'the ID alone decides: a hook and the cgroup agree');
    assert.ok(a > 0n && a < 2n ** 63n);
    assert.notEqual(containerContid(containerKey('nspawn', H)), a);
    // nspawn keys stay as they were (their contids in logs and saved registries); LXC's differ from them.
    assert.equal(containerKey('nspawn', 'web1'), 'machine:web1');
    const seen = new Set<bigint>();
    const r = prng(11);
    for (let i = 0; i < 20000; i++) {
      const id = Array.from({ length: 64 }, () => '0123456789abcdef'[intBelow(r, 16)]).join('');
      const c = containerContid(id);
      assert.ok(c > 0n && c <= 0x7fffffffffffffffn);
      seen.add(c);
    }
    assert.equal(seen.size, 20000);
  });

  it('fuzz (seed 4242): random and mutated paths never throw, stay bounded, and a match is always the outermost', () => {
    const r = prng(4242);
    const atoms = [
      'docker',
      'system.slice',
      'machine.slice',
      'kubepods',
      'kubepods.slice',
      'libpod_parent',
      `libpod-${H}`,
      `libpod-${H}.scope`,
      `docker-${H}.scope`,
      H,
      H2,
      `pod${UID}`,
      'burstable',
      `crio-${H}`,
      `cri-containerd-${H2}.scope`,
      `nerdctl-${H}.scope`,
      'default',
      'k8s.io',
      'lxc',
      'lxc.payload.x',
      'machine-a.scope',
      '..',
      '.',
      '',
      'x\ny',
      '\u00e9',
      '*',
    ];
    for (let i = 0; i < 20000; i++) {
      const n = intBelow(r, 8);
      let path = '';
      for (let j = 0; j < n; j++) {
        let a = atoms[intBelow(r, atoms.length)]!;
        if (r() < 0.2 && a.length) {
          const k = intBelow(r, a.length);
          a = a.slice(0, k) + String.fromCharCode(intBelow(r, 128)) + a.slice(k + 1);
        }
        path += '/' + a;
      }
      if (r() < 0.05) path = path.slice(1);
      const m = classifyCgroupPath(path);
      if (m) {
        assert.ok(path.startsWith(m.base), `${JSON.stringify(path)} base ${m.base}`);
        assert.ok(m.id.length > 0 && m.id.length <= 256);
        assert.doesNotMatch(m.id, /[/\n]/);
        // Anything appended below the container's own cgroup keeps the same container.
        const below = classifyCgroupPath(`${m.base}/docker/${H2}/libpod-${H2}.scope`);
        assert.equal(below?.id, m.id, path);
      }
      // Every reading keeps its place when anything is appended below it, and never has a base outside the path.
      for (const c of classifyCgroupCandidates(path)) {
        assert.ok(path === c.base || path.startsWith(c.base + '/'), `${JSON.stringify(path)} candidate ${c.base}`);
        assert.ok(
          classifyCgroupCandidates(`${c.base}/default/${H2}`).some((b) => b.id === c.id && b.base === c.base),
          path,
        );
      }
      const text = `${intBelow(r, 13)}:${r() < 0.5 ? 'pids' : ''}:${path}\n0::${path}\n`;
      classifyProcCgroup(text, () => r() < 0.5);
    }
    assert.equal(classifyCgroupPath('/' + 'a/'.repeat(5000)), null, 'over PATH_MAX');
    assert.equal(classifyProcCgroup('0::/docker/x\n'.repeat(20000)), null);
  });
  it('a container nests its own cgroups as deep as PATH_MAX allows and stays the container', () => {
    // Old: a path of more than 256 components (about 520 characters inside a delegated subtree) was nobody's.
    const B = `/system.slice/docker-${H}.scope`;
    const deep = `${B}/${'a/'.repeat(300)}a`;
    assert.equal(classifyProcCgroup(`0::${deep}\n`)?.id, H);
    assert.equal(classifyProcCgroup(`0::${deep}\n`)?.base, B);
    const deepest = `${B}/${'a/'.repeat(2000)}a`;
    assert.ok(deepest.length <= 4096);
    assert.equal(classifyCgroupPath(deepest)?.id, H);
    const pod = `/kubepods/burstable/pod${UID}/${H2}`;
    assert.equal(classifyCgroupPath(`${pod}/${'x/'.repeat(1000)}x`)?.id, H2);
    // Still only canonical paths, at any depth.
    for (const bad of [`${deep}/../x`, `${deep}/./x`, `${deep}//x`, `${deep}/`, `${deep}/..`])
      assert.equal(classifyCgroupPath(bad), null, bad.slice(-8));
    assert.equal(classifyCgroupPath(`${B}/${'a/'.repeat(2100)}a`), null, 'over PATH_MAX');
  });
});
