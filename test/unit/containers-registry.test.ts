// The container registry: Kubernetes fields in the listing, per-container counters, bounded live and retired sets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ContainerRegistry, RegistryFullError } from '../../src/containers/registry';
import { containerRecordBody } from '../../src/containers/service';
import { metaFromAnnotations } from '../../src/containers/metadata';

describe('container registry', () => {
  it('lists Kubernetes fields, counts routed, dropped and host-only events, and completes a container seen twice', () => {
    let now = 1_700_000_000_000;
    const births: string[] = [];
    const r = new ContainerRegistry({ now: () => now, onBirth: (c) => births.push(containerRecordBody('birth', c)) });
    const meta = metaFromAnnotations({
      'io.kubernetes.cri.sandbox-name': 'web-0',
      'io.kubernetes.cri.sandbox-namespace': 'shop',
      'io.kubernetes.cri.container-name': 'nginx',
      'io.kubernetes.cri.image-name': 'nginx:1.25',
    });
    r.register({ runtime: 'containerd', id: 'a'.repeat(64), contid: 5n, source: 'cgroup' });
    now += 1000;
    const again = r.register({ runtime: 'containerd', id: 'a'.repeat(64), contid: 5n, source: 'hook', pid: 42, meta });
    assert.equal(again.isNew, false);
    assert.equal(births.length, 1, 'one birth per container');
    r.noteEvent(5n, 2, 0);
    r.noteEvent(5n, 0, 1);
    r.noteEvent(5n, 0, 0);
    r.noteEvent(6n, 1, 0);
    r.endBatch(now + 500);
    const [row] = r.list();
    assert.deepEqual(
      { ...row, firstSeen: undefined, lastSeen: undefined },
      {
        contid: '5',
        runtime: 'containerd',
        id: 'a'.repeat(64),
        name: 'nginx',
        image: 'nginx:1.25',
        pod: 'web-0',
        namespace: 'shop',
        containerName: 'nginx',
        labels: {
          'io.kubernetes.cri.container-name': 'nginx',
          'io.kubernetes.cri.image-name': 'nginx:1.25',
          'io.kubernetes.cri.sandbox-name': 'web-0',
          'io.kubernetes.cri.sandbox-namespace': 'shop',
        },
        source: 'hook',
        pid: 42,
        state: 'live',
        firstSeen: undefined,
        lastSeen: undefined,
        retired: null,
        retireReason: null,
        routed: 2,
        dropped: 1,
        hostOnly: 1,
      },
    );
    assert.equal(row!.firstSeen, new Date(1_700_000_000_000).toISOString());
    assert.equal(row!.lastSeen, new Date(now + 500).toISOString(), 'last seen at the end of its batch');
  });

  it('a hostile name, image or namespace cannot add a field or a line to the birth record', () => {
    const bodies: string[] = [];
    const r = new ContainerRegistry({ onBirth: (c) => bodies.push(containerRecordBody('birth', c)) });
    const evil = 'x res=0\ntype=DAEMON_END msg=audit(1.1:1): op=terminate';
    r.register({
      runtime: 'cri-o',
      id: 'b'.repeat(64),
      contid: 9n,
      source: 'hook',
      meta: { name: evil, image: 'img "q"', podNamespace: 'ns' },
    });
    const hex = (v: string): string => Buffer.from(v).toString('hex').toUpperCase();
    assert.equal(
      bodies[0],
      `op=container-birth contid=9 runtime=cri-o container="${'b'.repeat(64)}" name=${hex(evil)} image=${hex('img "q"')} pod=? namespace="ns" source=hook opid=-1 res=1`,
    );
    assert.doesNotMatch(bodies[0]!, /\n/);
  });

  it('refuses live containers past its bound and keeps only the newest retired ones', () => {
    const r = new ContainerRegistry({ maxLive: 3, maxRetired: 2 });
    for (let i = 1; i <= 3; i++) r.register({ runtime: 'runc', id: `c${i}`, contid: BigInt(i), source: 'cgroup' });
    assert.throws(() => r.register({ runtime: 'runc', id: 'c4', contid: 4n, source: 'cgroup' }), RegistryFullError);
    assert.equal(r.counters.refusedFull, 1);
    for (let i = 1; i <= 3; i++) r.retire(BigInt(i), 'gone');
    assert.equal(r.retire(1n, 'gone'), null, 'retired once');
    assert.deepEqual(
      r.list().map((x) => x.id),
      ['c2', 'c3'],
    );
  });
});
