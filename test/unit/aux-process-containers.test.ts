// Process daemons (isolation: process) show the container of their events in a JSON log as inline ones do, from the
// first event on, with updates and labels, and are never sent another tenant's or the host's containers.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { startEmulatedHost, until, type EmulatedHost } from '../helpers/emulated-host';
import { Frame, FrameReader, decodeContainer, decodeForget, encodeFrame } from '../../src/daemon/aux-ipc';
import type { ContainerMeta } from '../../src/containers/metadata';
import { RETIRE_GRACE_MS } from '../../src/contid/tracker';

const EXE = '/usr/bin/amproccont';

const YAML = [
  'host:',
  '  rules: {dir}/host.rules',
  '  log: { file: {dir}/audit.log, format: RAW }',
  '  keep: unrouted',
  'daemons:',
  '  - { name: a, isolation: process, log: { file: {dir}/a.log, format: JSON } }',
  '  - { name: b, isolation: process, log: { file: {dir}/b.log, format: JSON } }',
  'routes:',
  '  - { contid: 100, daemons: [a] }',
  '  - { contid: 200, daemons: [b] }',
];

type Aux = { state: string; queued: number; crashes: number; pid: number; lastError?: string };
type Line = { contid: string | null; container?: Record<string, unknown>; records: Array<{ type: string }> };

function register(h: EmulatedHost, contid: bigint, meta: ContainerMeta): void {
  h.daemon.contid.containers.registry.register({ runtime: 'podman', id: `c${contid}`, contid, source: 'hook', meta });
}

/** Every frame the host writes to daemon `name`'s process from now on, as [kind, body]; `write` passes the tap by. */
function tap(h: EmulatedHost, name: string): { frames: Array<[number, Buffer]>; write: (b: Buffer) => boolean } {
  const frames: Array<[number, Buffer]> = [];
  const reader = new FrameReader((kind, body) => frames.push([kind, Buffer.from(body)]));
  const chan = (h.daemon.daemons.get(name) as unknown as { chan: Socket }).chan;
  const write = chan.write.bind(chan) as (b: Buffer) => boolean;
  (chan as unknown as { write: (b: Buffer) => boolean }).write = (b: Buffer) => {
    reader.push(b);
    return write(b);
  };
  return { frames, write };
}

const status = (h: EmulatedHost, n: string): Aux => (h.daemon.status().aux as Record<string, Aux>)[n]!;

async function drained(h: EmulatedHost, names: string[]): Promise<void> {
  await until(
    () => names.every((n) => status(h, n).state === 'running' && status(h, n).queued === 0),
    `${names.join(', ')} to write their queues`,
  );
}

/**
 * Until daemon `name`'s JSON log holds `n` events of `contid`. An empty host queue is not enough: the emulated kernel
 * may not have delivered the events yet, and a registry change made meanwhile would reach them (flaky under load).
 */
async function logged(h: EmulatedHost, name: string, contid: string, n: number): Promise<void> {
  const f = join(h.dir, `${name}.log`);
  const count = (): number => {
    if (!existsSync(f)) return 0;
    // Whole lines only: the last piece is a line still being written, or empty.
    const lines = readFileSync(f, 'utf8').split('\n').slice(0, -1);
    return lines.filter((l) => (JSON.parse(l) as Line).contid === contid).length;
  };
  await until(() => count() >= n, `${n} events of ${contid} in ${name}`);
}

const jsonLines = (f: string): Line[] =>
  existsSync(f)
    ? readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l)
        .map((l) => JSON.parse(l) as Line)
    : [];

describe('container metadata in process daemons (emulated mainline kernel)', () => {
  it("JSON logs carry their own container (labels, later updates); no other tenant's container is ever sent", async () => {
    const procs: ChildProcess[] = [];
    const h = await startEmulatedHost({ prefix: 'amproccont-', exe: EXE, untaggedPid: 4646461, yaml: YAML });
    const N = 50;
    try {
      const other = spawn('sleep', ['30'], { stdio: 'ignore' });
      procs.push(other);
      h.kernel.spawn(other.pid!, 1, { exe: EXE });
      h.daemon.contid.set(other.pid!, '200', false, { pid: process.pid, uid: 0, gid: 0 });
      register(h, 100n, { name: 'web', podNamespace: 'shop', labels: { app: 'web', 'line\nbreak': 'q"uote' } });
      register(h, 200n, { name: 'bank-db', labels: { secret: 'b-only' } });
      register(h, 300n, { name: 'host-agent' });
      const { frames: toA, write: rawWriteA } = tap(h, 'a');
      const emit = (n: number): void => {
        for (let i = 0; i < n; i++) {
          h.kernel.emitEvent(h.tagged.pid!, 'getppid', 0);
          h.kernel.emitEvent(other.pid!, 'getppid', 0);
          h.kernel.emitEvent(h.untaggedPid, 'getppid', 0);
        }
      };
      emit(N);
      await drained(h, ['a', 'b']);
      await logged(h, 'a', '100', N);
      // The registry learns the image later: the process is told, and the next events show it.
      register(h, 100n, { image: 'busybox:1' });
      emit(N);
      await drained(h, ['a', 'b']);
      await logged(h, 'a', '100', 2 * N);
      // A bad frame is reported and skipped; the process goes on.
      const pid = status(h, 'a').pid;
      rawWriteA(encodeFrame(Frame.CONTAINER, Buffer.from('1 {"name":')));
      await until(() => /E_AUX_FRAME/.test(status(h, 'a').lastError ?? ''), 'the bad frame reported');
      emit(5);
      await drained(h, ['a', 'b']);
      await logged(h, 'a', '100', 2 * N + 5);
      assert.equal(status(h, 'a').pid, pid, 'the same process');
      assert.equal(status(h, 'a').crashes, 0);
      // Retired: its late events (routed after the retirement) still carry it in the process, for the grace.
      const reg = h.daemon.contid.containers.registry;
      reg.retire(100n, 'poststop');
      emit(5);
      await drained(h, ['a', 'b']);
      await logged(h, 'a', '100', 2 * N + 10);
      assert.ok(!toA.some(([k]) => k === Frame.FORGET), 'not forgotten during the grace');
      // Its grace over (as the housekeeping tick ends it): forgotten by the process at the next pump.
      reg.expire(Date.now() + RETIRE_GRACE_MS);
      emit(1);
      await until(() => toA.some(([k]) => k === Frame.FORGET), 'FORGET sent to a');

      const sent = toA
        .filter(([k]) => k === Frame.CONTAINER || k === Frame.FORGET)
        .map(([k, b]) => (k === Frame.FORGET ? `forget:${decodeForget(b)}` : `container:${decodeContainer(b).contid}`));
      // Only container 100, once, then its update, then its retirement.
      assert.deepEqual(sent, ['container:100', 'container:100', 'forget:100']);
      const bytes = Buffer.concat(toA.map(([, b]) => b)).toString('latin1');
      for (const secret of ['bank-db', 'b-only', 'host-agent']) assert.ok(!bytes.includes(secret), secret);
    } finally {
      await h.stop();
      for (const p of procs) p.kill();
    }
    try {
      const a = jsonLines(join(h.dir, 'a.log')).filter((l) => l.contid !== null);
      const b = jsonLines(join(h.dir, 'b.log')).filter((l) => l.contid !== null);
      assert.ok(a.length >= 2 * N + 10, `a logged ${a.length}`);
      assert.ok(b.length >= 2 * N + 10, `b logged ${b.length}`);
      assert.deepEqual(new Set(a.map((l) => l.contid)), new Set(['100']));
      assert.deepEqual(new Set(b.map((l) => l.contid)), new Set(['200']));
      const labels = { app: 'web', 'line\nbreak': 'q"uote' };
      // Every event of the first storm, the very first included, has its container.
      assert.deepEqual(a[0]!.container, { name: 'web', runtime: 'podman', namespace: 'shop', labels });
      for (const l of a.slice(0, N))
        assert.deepEqual(l.container, { name: 'web', runtime: 'podman', namespace: 'shop', labels });
      for (const l of a.slice(N, 2 * N + 10))
        assert.deepEqual(l.container, {
          name: 'web',
          image: 'busybox:1',
          runtime: 'podman',
          namespace: 'shop',
          labels,
        });
      for (const l of b)
        assert.deepEqual(l.container, { name: 'bank-db', runtime: 'podman', labels: { secret: 'b-only' } });
      const aText = readFileSync(join(h.dir, 'a.log'), 'utf8');
      for (const secret of ['bank-db', 'b-only', 'host-agent']) assert.ok(!aText.includes(secret), secret);
    } finally {
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('a restarted process is sent its containers again (it starts knowing none)', async () => {
    const h = await startEmulatedHost({ prefix: 'amproccont-', exe: EXE, untaggedPid: 4646462, yaml: YAML });
    const N = 20;
    try {
      register(h, 100n, { name: 'web' });
      const emit = (n: number): void => {
        for (let i = 0; i < n; i++) h.kernel.emitEvent(h.tagged.pid!, 'getppid', 0);
      };
      emit(N);
      await drained(h, ['a']);
      const pid = status(h, 'a').pid;
      process.kill(pid, 'SIGKILL');
      await until(() => status(h, 'a').crashes === 1, 'the crash noticed');
      emit(N);
      await until(() => status(h, 'a').pid !== pid && status(h, 'a').pid !== 0, 'a restarted');
      await drained(h, ['a']);
    } finally {
      await h.stop();
    }
    try {
      const a = jsonLines(join(h.dir, 'a.log')).filter((l) => l.contid !== null);
      assert.equal(a.length, 2 * N);
      for (const l of a) assert.deepEqual(l.container, { name: 'web', runtime: 'podman' });
    } finally {
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it("template daemons (one process per namespace) get their own namespace's containers, held events included", async () => {
    const procs: ChildProcess[] = [];
    const h = await startEmulatedHost({
      prefix: 'amproccont-',
      exe: EXE,
      untaggedPid: 4646463,
      yaml: [
        'host:',
        '  rules: {dir}/host.rules',
        '  log: { file: {dir}/audit.log, format: RAW }',
        '  keep: unrouted',
        'daemon_templates:',
        '  - name: t',
        '    key: namespace',
        '    isolation: process',
        '    log: { file: "{dir}/tenants/{value}/audit.log", format: JSON }',
      ],
    });
    const N = 30;
    try {
      const tenant = (contid: bigint, meta: ContainerMeta): ChildProcess => {
        const p = spawn('sleep', ['30'], { stdio: 'ignore' });
        procs.push(p);
        h.kernel.spawn(p.pid!, 1, { exe: EXE });
        h.daemon.contid.set(p.pid!, String(contid), false, { pid: process.pid, uid: 0, gid: 0 });
        register(h, contid, meta);
        return p;
      };
      const shop = tenant(201n, { podNamespace: 'shop', name: 'web' });
      const bank = tenant(202n, { podNamespace: 'bank', name: 'vault' });
      // Emitted at once: the daemons are made after, so most of these events are held and delivered later.
      for (let i = 0; i < N; i++) {
        h.kernel.emitEvent(shop.pid!, 'getppid', 0);
        h.kernel.emitEvent(bank.pid!, 'getppid', 0);
      }
      await until(() => h.daemon.daemons.has('t-shop') && h.daemon.daemons.has('t-bank'), 'two tenants');
      await drained(h, ['t-shop', 't-bank']);
      assert.equal(status(h, 't-shop').pid > 0, true, 'a process of its own');
    } finally {
      await h.stop();
      for (const p of procs) p.kill();
    }
    try {
      const shop = jsonLines(join(h.dir, 'tenants', 'shop', 'audit.log')).filter((l) => l.contid !== null);
      const bank = jsonLines(join(h.dir, 'tenants', 'bank', 'audit.log')).filter((l) => l.contid !== null);
      assert.equal(shop.length, N);
      assert.equal(bank.length, N);
      for (const l of shop) assert.deepEqual(l.container, { name: 'web', runtime: 'podman', namespace: 'shop' });
      for (const l of bank) assert.deepEqual(l.container, { name: 'vault', runtime: 'podman', namespace: 'bank' });
    } finally {
      rmSync(h.dir, { recursive: true, force: true });
    }
  });
});
