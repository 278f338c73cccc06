// Metadata learned after the birth record (the hook after the cgroup scan): an op=container-update record, and search
// and report by name, image and Kubernetes namespace use the newest metadata per contid.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeSystem, v2 } from '../helpers/fake-proc';
import { ContainerRegistry } from '../../src/containers/registry';
import { Containers, containerRecordBody } from '../../src/containers/service';
import { ContidTracker } from '../../src/contid/tracker';
import { containersFromLogs } from '../../src/search/containers';
import { inputFromPath } from '../../src/search/inputs';
import { runReport, runSearch } from '../../src/search';
import { encodeUntrusted } from '../../src/records/encode';
import { tempDir } from '../helpers/daemon';
import { intBelow, prng } from '../helpers/prng';

const H = 'da5f278a1a4b3688eacf59509797b6c6147335dbdfa5a43b6732f09a2cdc613a';
const POD_UID = '0b7c1d9e_3f2a_4e5b_9c8d_112233445566';
const KUBE = `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD_UID}.slice/cri-containerd-${H}.scope`;

/** Enough of /proc for discovery: pids with a parent, a start time and a cgroup; every process a pod's pause. */
class FakeProc extends FakeSystem {
  add(pid: number, ppid: number, path: string): void {
    this.put(pid, { ppid, cg: v2(path), argv: ['pause'], ns: 'pid:[9]' });
  }
}

const CRI = {
  'io.kubernetes.cri.sandbox-name': 'shop-0',
  'io.kubernetes.cri.sandbox-namespace': 'shop',
  'io.kubernetes.cri.container-name': 'cart',
  'io.kubernetes.cri.image-name': 'registry.local/shop/cart:3',
};

function kubeNode(): { c: Containers; records: string[] } {
  const sys = new FakeProc();
  sys.add(1, 0, '/');
  sys.add(51, 1, KUBE);
  const t = new ContidTracker({ proc: sys });
  const records: string[] = [];
  const c = new Containers({ tracker: t, proc: sys, record: (b) => records.push(b) });
  t.setContainers(c.discovery);
  return { c, records };
}

describe('container update records', () => {
  it('the hook after the scan: one update record with the name, image, pod and namespace it brought', () => {
    const { c, records } = kubeNode();
    const { born } = c.discovery.scan();
    assert.equal(born.length, 1);
    assert.match(records[0]!, /^op=container-birth .* name=\? image=\? pod=\? namespace=\? source=cgroup /);
    const state = { ociVersion: '1.0.2', id: H, status: 'creating', pid: 51, bundle: '', annotations: CRI };
    c.fromHook({ state });
    assert.equal(records.length, 2);
    assert.equal(
      records[1],
      `op=container-update contid=${born[0]} runtime=containerd container="${H}" name="cart" image="registry.local/shop/cart:3" pod="shop-0" namespace="shop" source=hook opid=51 changed=podName,podNamespace,containerName,image,name,labels res=1`,
    );
    // The same hook again (a retry) or a later scan changes nothing: no more records.
    c.fromHook({ state });
    c.discovery.scan();
    assert.equal(records.length, 2);
    assert.equal(c.registry.counters.updates, 1);
  });

  it('a field that changes: the first hook replaces what the scan guessed; otherwise only gaps are filled', () => {
    const updates: string[] = [];
    const r = new ContainerRegistry({ onUpdate: (c, ch) => updates.push(containerRecordBody('update', c, ch)) });
    r.register({ runtime: 'oci', id: 'r1', contid: 7n, source: 'cgroup', meta: { name: 'guess' } });
    r.register({ runtime: 'oci', id: 'r1', contid: 7n, source: 'cgroup', meta: { name: 'other', podUid: 'u1' } });
    assert.equal(r.get(7n)!.meta.name, 'guess');
    r.register({ runtime: 'runc', id: 'r1', contid: 7n, source: 'hook', meta: { name: 'real', labels: { a: 'b' } } });
    assert.equal(r.get(7n)!.meta.name, 'real');
    // A retried hook, and the scan, can no longer rename it; an unchanged repeat writes nothing.
    r.register({ runtime: 'runc', id: 'r1', contid: 7n, source: 'hook', meta: { name: 'again', image: 'img' } });
    r.register({ runtime: 'runc', id: 'r1', contid: 7n, source: 'cgroup', meta: { name: 'scan' } });
    r.register({ runtime: 'runc', id: 'r1', contid: 7n, source: 'hook', meta: { name: 'real', labels: { a: 'b' } } });
    assert.equal(r.get(7n)!.meta.name, 'real');
    assert.deepEqual(
      updates.map((u) => /changed=(\S+)/.exec(u)![1]),
      ['podUid', 'name,labels,runtime', 'image'],
      'a gap filled; the name from the hook and the runtime; a gap filled by a retried hook',
    );
    // A hostile name from the hook cannot add a field or a line to the update record.
    const evil = 'x changed=forged res=0\ntype=SYSCALL';
    r.register({ runtime: 'runc', id: 'r2', contid: 8n, source: 'cgroup', meta: { name: 'r2' } });
    r.register({ runtime: 'runc', id: 'r2', contid: 8n, source: 'hook', meta: { name: evil } });
    const last = updates.at(-1)!;
    assert.ok(last.includes(`name=${encodeUntrusted(evil)} `));
    assert.equal(last.split('\n').length, 1);
    assert.equal((last.match(/ changed=/g) ?? []).length, 1);
    assert.match(last, / changed=name res=1$/);
  });
});

describe('search and report use the newest metadata per contid', () => {
  const dir = tempDir('amupd-');
  const log = join(dir, 'audit.log');
  const old = join(dir, 'audit.log.1');
  const ev = (serial: number, contid: bigint, key: string): string[] => [
    `type=SYSCALL msg=audit(1700000010.000:${serial}): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=${serial} auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="sh" exe="/bin/sh" key="${key}" record=1`,
    `type=CONTAINER_ID msg=audit(1700000010.000:${serial}): record=1 contid=${contid}`,
  ];

  /** The records the host writes for: 31 found by its cgroup then named by its hook, 32 a plain container. */
  function writeLogs(): { late: bigint; plain: bigint } {
    const { c, records } = kubeNode();
    const late = c.discovery.scan().born[0]!;
    c.fromHook({
      state: { ociVersion: '1.0.2', id: H, status: 'creating', pid: 51, bundle: '', annotations: CRI },
    });
    const r = new ContainerRegistry({ onBirth: (x) => records.push(containerRecordBody('birth', x)) });
    r.register({ runtime: 'podman', id: 'p1', contid: 32n, source: 'hook', meta: { name: 'plain' } });
    const line = (t: string, i: number, body: string): string => `type=CONTAINER_OP msg=audit(${t}:${i + 1}): ${body}`;
    // The rotated file holds the birth, the current one the update and the events: read newest first, as the
    // inputs of a directory are, the update must still win over the older birth.
    writeFileSync(old, line('1700000000.000', 0, records[0]!) + '\n');
    writeFileSync(
      log,
      [
        line('1700000001.000', 1, records[1]!),
        line('1700000001.000', 2, records[2]!),
        ...ev(100, late, 'k'),
        ...ev(101, 32n, 'p'),
      ].join('\n') + '\n',
    );
    return { late, plain: 32n };
  }
  const { late } = writeLogs();

  const capture = (): { io: { out(s: string): void; err(s: string): void }; out: string[] } => {
    const out: string[] = [];
    return { io: { out: (s) => out.push(s), err: () => undefined }, out };
  };
  async function serials(...args: string[]): Promise<number[]> {
    const c = capture();
    await runSearch(['-if', log, '-if', old, '--names-from', log, '--format', 'json', ...args], c.io);
    return c.out
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { serial: number }).serial)
      .sort((a, b) => a - b);
  }

  it('the names map merges birth and update, newest per field, whatever order the files are read in', async () => {
    for (const order of [
      [log, old],
      [old, log],
    ]) {
      const m = await containersFromLogs(order.flatMap((f) => inputFromPath(f)));
      assert.deepEqual(m.get(late), {
        name: 'cart',
        image: 'registry.local/shop/cart:3',
        namespace: 'shop',
        pod: 'shop-0',
        runtime: 'containerd',
      });
      assert.equal(m.get(32n)?.name, 'plain');
    }
  });

  it('--container-name, --image and --k8s-namespace find a container whose name came late', async () => {
    // Its birth (1), its update (2) and its event (100).
    assert.deepEqual(await serials('--container-name', 'cart'), [1, 2, 100]);
    assert.deepEqual(await serials('--image', 'registry.local/shop/*'), [1, 2, 100]);
    assert.deepEqual(await serials('--k8s-namespace', 'shop', '-k', 'k'), [100]);
    assert.deepEqual(await serials('--container-name', 'plain'), [3, 101]);
  });

  it('report --group-by image and namespace: one row each, containers without one share a row', async () => {
    const rows = async (by: string): Promise<Array<[string, number]>> => {
      const c = capture();
      assert.equal(
        await runReport(['-if', log, '-if', old, '--names-from', log, '--group-by', by, '--format', 'json'], c.io),
        0,
      );
      const j = JSON.parse(c.out.join('')) as { containers: Array<{ container: string; events: number }> };
      return j.containers.map((x) => [x.container, x.events]);
    };
    assert.deepEqual(await rows('namespace'), [
      ['shop', 3],
      ['(no namespace)', 2],
    ]);
    assert.deepEqual(await rows('image'), [
      ['registry.local/shop/cart:3', 3],
      ['(no image)', 2],
    ]);
    assert.deepEqual(await rows('name'), [
      ['cart', 3],
      ['plain', 2],
    ]);
    const c = capture();
    let err = '';
    assert.equal(await runReport(['-if', log, '--group-by', 'pod'], { out: c.io.out, err: (s) => (err += s) }), 2);
    assert.match(err, /--group-by: expected contid, name, image or namespace, got "pod"/);
  });

  it('the text and HTML headings name what the report groups by', async () => {
    const report = async (...args: string[]): Promise<string> => {
      const c = capture();
      // Grouping by contid needs no names (and --names-from without a use is refused).
      const names = args[1] === 'contid' ? [] : ['--names-from', log];
      assert.equal(await runReport(['-if', log, '-if', old, ...names, ...args], c.io), 0);
      return c.out.join('');
    };
    for (const [by, kind] of [
      ['image', 'image'],
      ['namespace', 'namespace'],
      ['name', 'container'],
      ['contid', 'container'],
    ] as const) {
      const t = await report('--group-by', by);
      assert.match(t, new RegExp(`^auditmux report: 5 events, 2 ${kind}s\n`), by);
      assert.equal((t.match(new RegExp(`^${kind} `, 'gm')) ?? []).length, 2, by);
      if (kind !== 'container') assert.doesNotMatch(t, /container/, by);
      const h = await report('--group-by', by, '--html');
      assert.match(h, new RegExp(`; ${kind}s: <span id="total-containers">2</span>`), by);
      assert.match(h, new RegExp(`<thead><tr><th>${kind}</th><th>events</th>`), by);
      assert.match(h, new RegExp(`Events per ${kind} over time`), by);
      assert.match(h, new RegExp(`Events by key and ${kind}`), by);
    }
    assert.match(await report('--group-by', 'image'), /^image registry\.local\/shop\/cart:3\n {2}events: 3\n/m);
  });

  it('update records with random values: the newest always wins (seeded)', async () => {
    const next = prng(0x0dda7e);
    const text = (): string => {
      let s = '';
      for (let j = 1 + intBelow(next, 10); j > 0; j--)
        s += String.fromCharCode(intBelow(next, 4) === 0 ? 1 + intBelow(next, 0x3000) : 32 + intBelow(next, 95));
      return s === '?' ? 'q' : s;
    };
    const f = join(dir, 'fuzz.log');
    for (let round = 0; round < 40; round++) {
      const want = new Map<bigint, string>();
      const lines: string[] = [];
      for (let i = 0; i < 30; i++) {
        const id = BigInt(1 + intBelow(next, 5));
        const name = text();
        want.set(id, name);
        lines.push(
          `type=CONTAINER_OP msg=audit(17000000${String(10 + i).padStart(2, '0')}.000:${i + 1}): op=container-${intBelow(next, 2) ? 'birth' : 'update'} contid=${id} runtime=runc container="c" name=${encodeUntrusted(name)} image=? pod=? namespace=? source=hook opid=1 res=1`,
        );
      }
      // Shuffled: the record times decide, not the order of the lines.
      for (let i = lines.length - 1; i > 0; i--) {
        const j = intBelow(next, i + 1);
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      }
      writeFileSync(f, lines.join('\n') + '\n');
      const m = await containersFromLogs(inputFromPath(f));
      for (const [id, name] of want) assert.equal(m.get(id)?.name, name, `round ${round} contid ${id}`);
    }
  });

  it('cleans up', () => rmSync(dir, { recursive: true, force: true }));
});
