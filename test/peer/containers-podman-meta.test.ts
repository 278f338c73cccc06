// Real podman, no audit kernel: discovery names a running container and its image from podman's own store files.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/daemon';
import { BUSYBOX, containerLab, prepareLab, removeLab } from '../helpers/containers';
import { isRoot } from '../helpers/peers';
import { realContainerProc } from '../../src/containers/discovery';
import { Containers } from '../../src/containers/service';
import { ContidTracker } from '../../src/contid/tracker';
import { containerContid } from '../../src/contid/derive';

function skipReason(): string | undefined {
  if (!isRoot()) return 'needs root (podman with cgroupfs)';
  for (const t of ['/usr/bin/podman', '/usr/sbin/runc', BUSYBOX]) if (!existsSync(t)) return `${t} missing`;
  return undefined;
}

describe('podman metadata from its store (real podman)', { skip: skipReason() }, () => {
  it("a container is born with podman's name and image from the store its conmon names, found by cgroup or hook", () => {
    const lab = containerLab(tempDir('ampodmeta-'), 'localhost/ammeta:3', { k: 1, waitMs: 20000 });
    try {
      prepareLab(lab, ['sh', 'sleep'], []);
      // No hook here: the container is found by its cgroup alone, as one started before auditmux.
      rmSync(join(lab.dir, 'hooks.d', 'auditmux.json'));
      const name = `ammeta-${process.pid}`;
      const id = lab.podman('run', '-d', '--name', name, ...lab.runArgs, lab.image, 'sleep', '600').stdout.trim();
      assert.match(id, /^[0-9a-f]{64}$/);

      // The lab's private store is nowhere in the defaults: only its conmon's -b leads there.
      const records: string[] = [];
      const proc = realContainerProc({ podmanRoots: [] });
      const c = new Containers({ tracker: new ContidTracker(), proc, record: (b) => records.push(b) });
      c.discovery.scan();
      const info = c.registry.get(containerContid(id));
      assert.ok(info, 'found by its cgroup');
      assert.deepEqual([info.runtime, info.meta.name, info.meta.image], ['podman', name, lab.image]);
      assert.match(
        records.find((r) => r.includes(`container="${id}"`)) ?? '',
        new RegExp(
          `^op=container-birth contid=${info.contid} runtime=podman container="${id}" name="${name}" image="localhost/ammeta:3" `,
        ),
      );

      // The configured root gives the same without any conmon.
      const byRoot = realContainerProc({ podmanRoots: [join(lab.dir, 'pod-root')] });
      assert.deepEqual(byRoot.podmanMeta?.(id, null), { name, image: lab.image });
      assert.equal(realContainerProc({ podmanRoots: [] }).podmanMeta?.(id, null), null);

      // Registered by its hook first (podman's annotations carry neither name nor image): the birth record has both.
      const pid = Number(lab.podman('inspect', '--format', '{{.State.Pid}}', id).stdout.trim());
      assert.ok(pid > 1);
      const hooked: string[] = [];
      const h = new Containers({ tracker: new ContidTracker(), proc, record: (b) => hooked.push(b) });
      h.fromHook({ state: { id, status: 'running', pid, annotations: { 'io.container.manager': 'libpod' } } });
      assert.match(
        hooked[0] ?? '',
        new RegExp(
          `^op=container-birth contid=${info.contid} runtime=podman container="${id}" name="${name}" image="localhost/ammeta:3" .*source=hook `,
        ),
      );
    } finally {
      removeLab(lab, []);
    }
  });
});
