// Runtime metadata files: docker's config.v2.json and podman's store read bounded and strictly, into discovery; fuzz.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, linkSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DOCKER_CONFIG_MAX,
  RuntimeMetaError,
  RuntimeMetaReader,
  parseDockerConfig,
  parsePodmanContainers,
  parsePodmanImages,
} from '../../src/containers/runtime-meta';
import { conmonStoreDir } from '../../src/containers/metadata';
import { realContainerProc } from '../../src/containers/discovery';
import { Containers } from '../../src/containers/service';
import { ContidTracker } from '../../src/contid/tracker';
import { containerContid } from '../../src/contid/derive';
import { FakeSystem as BaseFakeSystem, v2 } from '../helpers/fake-proc';
import { intBelow, prng } from '../helpers/prng';

const H = 'da5f278a1a4b3688eacf59509797b6c6147335dbdfa5a43b6732f09a2cdc613a';
const H2 = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
const IMG = 'fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210';
const uid = process.getuid?.() ?? 0;

/** docker's config.v2.json as dockerd writes it (trimmed to what matters, plus a few fields it also has). */
function dockerConfig(id: string, o: { name?: unknown; image?: unknown; labels?: unknown } = {}): string {
  return JSON.stringify({
    StreamConfig: {},
    State: { Running: true, Pid: 4242 },
    ID: id,
    Created: '2026-12-01T10:00:00Z',
    Path: 'sh',
    Args: [],
    Config: {
      Hostname: id.slice(0, 12),
      Env: ['PATH=/bin'],
      Cmd: ['sh'],
      Image: o.image ?? 'registry.example/shop/cart:1.4',
      Labels: o.labels === undefined ? { app: 'cart', tier: 'web' } : o.labels,
    },
    Image: `sha256:${IMG}`,
    Name: o.name ?? '/cart-1',
    Driver: 'overlay2',
  });
}

/** containers/storage's containers.json as podman writes it. */
function podmanContainers(entries: Array<{ id: string; name: string; image: string; imageName?: string }>): string {
  return JSON.stringify(
    entries.map((e) => ({
      id: e.id,
      names: [e.name],
      image: e.image,
      layer: H2,
      metadata: JSON.stringify({
        ...(e.imageName ? { 'image-name': e.imageName } : {}),
        'image-id': e.image,
        name: e.name,
        'created-at': 1796193907,
      }),
      created: '2026-12-02T06:45:07.051331636Z',
      flags: { MountLabel: '', ProcessLabel: '' },
    })),
  );
}

function tree(): { dir: string; docker: string; podman: string } {
  const dir = mkdtempSync(join(tmpdir(), 'amrtmeta-'));
  const docker = join(dir, 'docker');
  mkdirSync(join(docker, 'containers', H), { recursive: true });
  writeFileSync(join(docker, 'containers', H, 'config.v2.json'), dockerConfig(H));
  const podman = join(dir, 'storage');
  mkdirSync(join(podman, 'overlay-containers'), { recursive: true });
  mkdirSync(join(podman, 'overlay-images'), { recursive: true });
  writeFileSync(
    join(podman, 'overlay-containers', 'containers.json'),
    podmanContainers([
      { id: H, name: 'web', image: IMG, imageName: 'localhost/web:2' },
      { id: H2, name: 'db', image: IMG },
    ]),
  );
  writeFileSync(
    join(podman, 'overlay-images', 'images.json'),
    JSON.stringify([{ id: IMG, names: ['localhost/base:1', 'localhost/base:latest'], layer: H2 }]),
  );
  return { dir, docker, podman };
}

describe('runtime metadata files', () => {
  it('docker: name, image and labels from config.v2.json under the data root; every malformed file refused', () => {
    const m = parseDockerConfig(dockerConfig(H), H);
    assert.deepEqual(
      { name: m.name, image: m.image, labels: { ...m.labels } },
      { name: 'cart-1', image: 'registry.example/shop/cart:1.4', labels: { app: 'cart', tier: 'web' } },
    );
    assert.equal(parseDockerConfig(dockerConfig(H, { labels: null }), H).labels, undefined);
    const bad: Array<[string, RegExp]> = [
      [dockerConfig(H2), /not this container's/],
      [dockerConfig(H, { name: 'no-slash' }), /not a docker name/],
      [dockerConfig(H, { name: '/a b' }), /not a docker name/],
      [dockerConfig(H, { name: 7 }), /"Name"/],
      [dockerConfig(H, { image: '' }), /Config.Image/],
      [dockerConfig(H, { image: 'x\ny' }), /Config.Image/],
      [dockerConfig(H, { labels: ['a'] }), /Labels/],
      [dockerConfig(H, { labels: { a: 1 } }), /labels must be short strings/],
      // The hook refuses control characters in annotations; docker's labels are held to the same rule.
      [dockerConfig(H, { labels: { app: 'cart\u001b]0;x\u0007' } }), /without control characters/],
      [dockerConfig(H, { labels: { 'a\nb': 'v' } }), /without control characters/],
      [dockerConfig(H, { labels: { a: 'v\u007f' } }), /without control characters/],
      [dockerConfig(H, { labels: { '': 'v' } }), /labels must be short strings/],
      [dockerConfig(H, { labels: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, 'v'])) }), /over/],
      ['[]', /must be an object/],
      ['{', /not JSON/],
    ];
    for (const [text, re] of bad) {
      const e = (() => {
        try {
          parseDockerConfig(text, H);
        } catch (x) {
          return x;
        }
        return null;
      })();
      assert.ok(e instanceof RuntimeMetaError, text.slice(0, 60));
      assert.equal(e.code, 'E_RUNTIME_META');
      assert.match(e.message, re);
    }
  });

  it("the real /proc reader shares its metadata reader's counters (status: metaFilesRead, metaFilesRefused)", () => {
    const t = tree();
    try {
      const proc = realContainerProc({ dockerRoots: [t.docker], podmanRoots: [], uid });
      assert.equal(proc.dockerMeta?.(H)?.name, 'cart-1');
      assert.deepEqual({ ...proc.metaCounters }, { reads: 1, refused: 0 });
      // A second name for the file (a hard link) could be a file of someone else's choosing: refused, and counted.
      linkSync(join(t.docker, 'containers', H, 'config.v2.json'), join(t.dir, 'second-name'));
      assert.equal(proc.dockerMeta?.(H), null);
      assert.deepEqual({ ...proc.metaCounters }, { reads: 1, refused: 1 });
    } finally {
      rmSync(t.dir, { recursive: true, force: true });
    }
  });

  it('docker reader: regular files of the right owner only, no link anywhere on the path, size-bounded', () => {
    const t = tree();
    try {
      const r = new RuntimeMetaReader({ dockerRoots: ['/nonexistent-docker', t.docker], uid });
      assert.deepEqual(r.docker(H)?.name, 'cart-1');
      assert.equal(r.docker(H2), null, 'no such container: nothing, and nothing refused');
      assert.equal(r.docker('../etc'), null);
      assert.equal(r.counters.refused, 0);
      // Another owner than the one the runtime runs as.
      assert.equal(new RuntimeMetaReader({ dockerRoots: [t.docker], uid: uid + 1 }).docker(H), null);
      // A link as the file, or as a directory on its way, chooses another file: refused.
      const cfg = join(t.docker, 'containers', H, 'config.v2.json');
      writeFileSync(join(t.dir, 'elsewhere.json'), dockerConfig(H, { name: '/planted' }));
      rmSync(cfg);
      symlinkSync(join(t.dir, 'elsewhere.json'), cfg);
      assert.equal(r.docker(H), null);
      rmSync(join(t.docker, 'containers', H), { recursive: true });
      mkdirSync(join(t.dir, 'planted', H), { recursive: true });
      writeFileSync(join(t.dir, 'planted', H, 'config.v2.json'), dockerConfig(H, { name: '/planted' }));
      symlinkSync(join(t.dir, 'planted', H), join(t.docker, 'containers', H));
      assert.equal(r.docker(H), null);
      rmSync(join(t.docker, 'containers', H));
      // A FIFO never blocks, a huge file is not read whole.
      mkdirSync(join(t.docker, 'containers', H));
      execFileSync('mkfifo', [cfg]);
      assert.equal(r.docker(H), null);
      rmSync(cfg);
      writeFileSync(cfg, ' '.repeat(DOCKER_CONFIG_MAX + 1));
      assert.equal(r.docker(H), null);
      assert.equal(r.counters.refused, 4);
    } finally {
      rmSync(t.dir, { recursive: true, force: true });
    }
  });

  it('every directory from / down is trusted, the file has one link; a symlinked root is resolved at start only', () => {
    const t = tree();
    try {
      const cfg = join(t.docker, 'containers', H, 'config.v2.json');
      // A relocated data root that is itself a symlink works: it is resolved when the reader is made.
      symlinkSync(t.docker, join(t.dir, 'docker-link'));
      const viaLink = new RuntimeMetaReader({ dockerRoots: [join(t.dir, 'docker-link')], podmanRoots: [], uid });
      assert.equal(viaLink.docker(H)?.name, 'cart-1');
      const r = new RuntimeMetaReader({ dockerRoots: [t.docker], podmanRoots: [], uid });
      assert.equal(r.docker(H)?.name, 'cart-1');
      // A group-writable directory on the way (inside the root, or above it) lets others swap what is below: refused.
      for (const d of [join(t.docker, 'containers'), join(t.docker, 'containers', H), t.docker, t.dir]) {
        chmodSync(d, 0o775);
        assert.equal(r.docker(H), null, `${d} group-writable`);
        chmodSync(d, 0o757);
        assert.equal(r.docker(H), null, `${d} writable by others`);
        chmodSync(d, 0o755);
        assert.equal(r.docker(H)?.name, 'cart-1', `${d} safe again`);
      }
      // A hard link: the same file is also somewhere else, under a name someone else may control.
      linkSync(cfg, join(t.dir, 'second-name.json'));
      assert.equal(r.docker(H), null, 'two links');
      rmSync(join(t.dir, 'second-name.json'));
      assert.equal(r.docker(H)?.name, 'cart-1');
      // The root replaced by a symlink after start (to a planted tree): refused, not followed.
      mkdirSync(join(t.dir, 'planted', 'containers', H), { recursive: true });
      writeFileSync(join(t.dir, 'planted', 'containers', H, 'config.v2.json'), dockerConfig(H, { name: '/planted' }));
      renameSync(t.docker, join(t.dir, 'docker-real'));
      symlinkSync(join(t.dir, 'planted'), t.docker);
      assert.equal(r.docker(H), null, 'a link where the root was');
      // The link-configured reader resolved its root at start: it still reads the real tree, wherever the link points.
      rmSync(join(t.dir, 'docker-link'));
      symlinkSync(join(t.dir, 'planted'), join(t.dir, 'docker-link'));
      assert.equal(viaLink.docker(H), null, 'the resolved root is gone (renamed), and the new link is not followed');
      assert.equal(r.counters.refused, 10);
    } finally {
      rmSync(t.dir, { recursive: true, force: true });
    }
  });

  it("podman: the store's name and image (as created, else images.json's name, else the ID); conmon's -b finds it", () => {
    const t = tree();
    try {
      const store = join(t.podman, 'overlay-containers');
      // Through the directory conmon names, with no configured root.
      const r = new RuntimeMetaReader({ podmanRoots: [], uid });
      assert.deepEqual(r.podman(H, store), { name: 'web', image: 'localhost/web:2' });
      assert.deepEqual(r.podman(H2, store), { name: 'db', image: 'localhost/base:1' }, 'from images.json');
      assert.equal(r.podman(H), null, 'no store known');
      // Through a configured root.
      const r2 = new RuntimeMetaReader({ podmanRoots: [t.podman], uid });
      assert.deepEqual(r2.podman(H, null), { name: 'web', image: 'localhost/web:2' });
      // An unchanged store is parsed once for any number of containers.
      const reads = r2.counters.reads;
      r2.podman(H2, null);
      r2.podman(H, null);
      assert.equal(r2.counters.reads, reads + 1, 'images.json once; containers.json from the cache');
      // A changed one is read again.
      writeFileSync(join(store, 'containers.json'), podmanContainers([{ id: H, name: 'web2', image: H2 }]));
      assert.deepEqual(r2.podman(H, null), { name: 'web2', image: H2 }, 'an image images.json lacks: its ID');
      // A store that is not a `<driver>-containers` directory, or another owner's, is not read.
      assert.equal(r.podman(H, t.podman), null);
      assert.equal(new RuntimeMetaReader({ podmanRoots: [t.podman], uid: uid + 1 }).podman(H, null), null);
      writeFileSync(join(store, 'containers.json'), '{"not":"a list"}');
      assert.equal(r2.podman(H, null), null);
      assert.ok(r2.counters.refused >= 1);
    } finally {
      rmSync(t.dir, { recursive: true, force: true });
    }
  });

  it("conmon's -b names the store only as this container's canonical userdata directory", () => {
    const argv = (b: string, c = H): string[] => ['/usr/bin/conmon', '--api-version', '1', '-c', c, '-b', b, '-n', 'x'];
    const ok = `/var/lib/containers/storage/overlay-containers/${H}/userdata`;
    assert.equal(conmonStoreDir(argv(ok), H), '/var/lib/containers/storage/overlay-containers');
    assert.equal(conmonStoreDir(argv(ok, H2), H), null, '-c is another container');
    assert.equal(conmonStoreDir(argv(ok), H2), null);
    for (const b of [
      `/var/lib/containers/storage/overlay-containers/${H2}/userdata`,
      `/var/lib/containers/storage/../../etc/overlay-containers/${H}/userdata`,
      `var/lib/containers/storage/overlay-containers/${H}/userdata`,
      `/var/lib/containers/storage/overlay-containers/${H}/userdata/`,
      `/var/lib/containers/storage/etc/${H}/userdata`,
      `/var/lib/containers/storage/overlay-containers/${H}/other`,
    ])
      assert.equal(conmonStoreDir(argv(b), H), null, b);
  });

  it('store parsers refuse what containers/storage never writes', () => {
    assert.equal(parsePodmanContainers('[]').size, 0);
    for (const bad of [
      '{}',
      '[1]',
      '[{"id":"x"}]',
      `[{"id":"${H}","names":"web"}]`,
      `[{"id":"${H}","names":["a\\u0000b"]}]`,
      `[{"id":"${H}","image":"latest"}]`,
      `[{"id":"${H}","metadata":"{"}]`,
      `[{"id":"${H}","metadata":"{\\"image-name\\":5}"}]`,
    ])
      assert.throws(() => parsePodmanContainers(bad), RuntimeMetaError, bad);
    assert.throws(() => parsePodmanImages('[{"id":"sha256:x"}]'), RuntimeMetaError);
    assert.deepEqual([...parsePodmanImages(`[{"id":"${IMG}"}]`)], [[IMG, []]]);
  });

  it('fuzz (seed 5150): mutated runtime files never throw anything but RuntimeMetaError, and stay bounded', () => {
    const r = prng(5150);
    const seeds = [
      dockerConfig(H),
      podmanContainers([{ id: H, name: 'web', image: IMG, imageName: 'localhost/web:2' }]),
      JSON.stringify([{ id: IMG, names: ['localhost/base:1'] }]),
    ];
    for (let i = 0; i < 6000; i++) {
      let s = seeds[i % 3]!;
      for (let k = intBelow(r, 6); k >= 0; k--) {
        const at = intBelow(r, s.length + 1);
        const op = intBelow(r, 3);
        if (op === 0) s = s.slice(0, at) + s.slice(at + 1 + intBelow(r, 8));
        else if (op === 1) s = s.slice(0, at) + String.fromCharCode(intBelow(r, 128)) + s.slice(at);
        else
          s =
            s.slice(0, at) +
            ['"', '{', '}', '[', ']', ',', ':', 'null', '1e999', '\\u0000'][intBelow(r, 10)] +
            s.slice(at);
      }
      for (const parse of [
        (): unknown => parseDockerConfig(s, H),
        (): unknown => parsePodmanContainers(s),
        (): unknown => parsePodmanImages(s),
      ]) {
        try {
          const v = parse();
          if (v instanceof Map) for (const [id] of v) assert.match(id, /^[0-9a-f]{64}$/);
          else {
            const m = v as { name?: string; image?: string };
            assert.ok((m.name?.length ?? 0) <= 253 && (m.image?.length ?? 0) <= 4096);
          }
        } catch (e) {
          assert.ok(e instanceof RuntimeMetaError, `${String(e)} from ${JSON.stringify(s).slice(0, 120)}`);
        }
      }
    }
  });
});

class FakeSystem extends BaseFakeSystem {
  constructor(private readonly meta: RuntimeMetaReader) {
    super();
  }
  add(pid: number, ppid: number, cg: string, argv: string[] = ['x']): void {
    this.put(pid, { ppid, cg: v2(cg), argv });
  }
  // Discovery here finds members by their cgroups alone.
  override children(): number[] {
    return [];
  }
  dockerMeta(id: string): ReturnType<RuntimeMetaReader['docker']> {
    return this.meta.docker(id);
  }
  podmanMeta(id: string, dir: string | null): ReturnType<RuntimeMetaReader['podman']> {
    return this.meta.podman(id, dir);
  }
}

describe('discovery with the runtime files', () => {
  it('a docker container found by its cgroup is born with its name, image and labels', () => {
    const t = tree();
    try {
      const sys = new FakeSystem(new RuntimeMetaReader({ dockerRoots: [t.docker], podmanRoots: [], uid }));
      sys.add(1, 0, '/');
      sys.add(40, 1, `/docker/${H}`, ['sh']);
      sys.add(41, 1, `/system.slice/docker-${H2}.scope`, ['sh']);
      const records: string[] = [];
      const c = new Containers({
        tracker: new ContidTracker({ proc: sys }),
        proc: sys,
        record: (b) => records.push(b),
      });
      c.discovery.scan();
      const born = records.find((b) => b.includes(`container="${H}"`));
      assert.match(
        born ?? '',
        / runtime=docker container="[0-9a-f]+" name="cart-1" image="registry.example\/shop\/cart:1.4" /,
      );
      assert.deepEqual({ ...c.registry.get(containerContid(H))!.meta.labels }, { app: 'cart', tier: 'web' });
      assert.match(records.find((b) => b.includes(H2)) ?? '', /name=\? image=\?/, 'no config.v2.json: nothing made up');
    } finally {
      rmSync(t.dir, { recursive: true, force: true });
    }
  });

  it('a podman container gets its image from the store its conmon names; a hooked one has it in its birth record', () => {
    const t = tree();
    try {
      const store = join(t.podman, 'overlay-containers');
      const sys = new FakeSystem(new RuntimeMetaReader({ dockerRoots: [], podmanRoots: [], uid }));
      const conmon = (id: string, name: string): string[] => [
        '/usr/bin/conmon',
        '-c',
        id,
        '-n',
        name,
        '-b',
        join(store, id, 'userdata'),
      ];
      sys.add(1, 0, '/');
      sys.add(50, 1, '/libpod_parent/conmon', conmon(H, 'web'));
      sys.add(51, 50, `/libpod_parent/libpod-${H}`, ['sleep']);
      const records: string[] = [];
      const c = new Containers({
        tracker: new ContidTracker({ proc: sys }),
        proc: sys,
        record: (b) => records.push(b),
      });
      // H2 is registered by its hook first (podman's annotations carry neither name nor image).
      sys.add(60, 1, '/libpod_parent/conmon', conmon(H2, 'db'));
      sys.add(61, 60, `/libpod_parent/libpod-${H2}`, ['runc', 'init']);
      c.fromHook({
        state: { id: H2, status: 'creating', pid: 61, annotations: { 'io.container.manager': 'libpod' } },
      });
      // The hook registered it first: its birth record already has the image from podman's store (and the name).
      assert.match(
        records.find((b) => b.includes(`op=container-birth`) && b.includes(H2)) ?? '',
        / name="db" image="localhost\/base:1" .*source=hook /,
      );
      const v = c.registry.version;
      c.discovery.scan();
      assert.match(records.find((b) => b.includes(`container="${H}"`)) ?? '', / name="web" image="localhost\/web:2" /);
      assert.deepEqual(
        [c.registry.get(containerContid(H2))?.meta.name, c.registry.get(containerContid(H2))?.meta.image],
        ['db', 'localhost/base:1'],
      );
      assert.ok(c.registry.version > v, 'routers see the completed metadata');
      assert.equal(c.registry.get(containerContid(H2))?.source, 'hook');
      assert.equal(c.registry.counters.hookRegistrations, 1);
      assert.ok(!records.some((b) => b.includes('op=container-update') && b.includes(H2)), 'nothing left to update');
    } finally {
      rmSync(t.dir, { recursive: true, force: true });
    }
  });

  it('a docker container its hook registers first is born with the name, image and labels of its config.v2.json', () => {
    const t = tree();
    try {
      const sys = new FakeSystem(new RuntimeMetaReader({ dockerRoots: [t.docker], podmanRoots: [], uid }));
      sys.add(1, 0, '/');
      sys.add(40, 1, `/docker/${H}`, ['runc', 'init']);
      const records: string[] = [];
      const c = new Containers({
        tracker: new ContidTracker({ proc: sys }),
        proc: sys,
        record: (b) => records.push(b),
      });
      // docker's annotations carry nothing auditmux reads as a name or image.
      c.fromHook({
        state: {
          id: H,
          status: 'creating',
          pid: 40,
          bundle: `/run/containerd/io.containerd.runtime.v2.task/moby/${H}`,
        },
      });
      assert.equal(records.length, 1);
      assert.match(
        records[0]!,
        /^op=container-birth contid=\d+ runtime=docker container="[0-9a-f]+" name="cart-1" image="registry.example\/shop\/cart:1.4" .*source=hook /,
      );
      const info = c.registry.get(containerContid(H))!;
      assert.deepEqual({ ...info.meta.labels }, { app: 'cart', tier: 'web' });
      // dockerd runs containers through containerd (namespace moby); a docker cgroup keeps the contid of the ID alone.
      assert.equal(info.meta.containerdNamespace, 'moby');
    } finally {
      rmSync(t.dir, { recursive: true, force: true });
    }
  });
});
