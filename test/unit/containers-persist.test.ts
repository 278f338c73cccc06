// The container registry across host daemon restarts (emulated kernel, the daemon's real state file): names and
// counters come back without a second birth record; a corrupt, foreign or linked state file means a warning and an
// empty registry, never a crash; the state file's parser is checked field by field and fuzzed with a fixed seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmulatedKernel } from '../helpers/emulated-kernel';
import { emulatedHostOptions } from '../helpers/emulated-contid-source';
import { HostDaemon } from '../../src/daemon/host';
import { ContainerRegistry } from '../../src/containers/registry';
import {
  CONTAINER_STATE_FILE,
  ContainerStateError,
  encodeState,
  parseState,
  readState,
} from '../../src/containers/persist';
import { intBelow, prng } from '../helpers/prng';

const BOOT = 'b0000000-0000-4000-8000-000000000001';

interface Run {
  daemon: HostDaemon;
  warnings: string[];
}

/** A host daemon on an emulated kernel with its control socket (and so its state file) in `dir`. */
async function startHost(dir: string): Promise<Run> {
  const warnings: string[] = [];
  const diag = {
    warn: (_o: unknown, m?: string) => void warnings.push(String(m)),
    error: () => undefined,
    info: () => undefined,
    debug: () => undefined,
    fatal: () => undefined,
    trace: () => undefined,
    child: () => diag,
    level: 'info',
  };
  const daemon = new HostDaemon({
    configPath: join(dir, 'auditmux.yaml'),
    diag: diag as never,
    ...emulatedHostOptions(new EmulatedKernel({ ackOrder: 'random' })),
    noControl: false,
  });
  await daemon.start();
  return { daemon, warnings };
}

function setup(): string {
  const dir = mkdtempSync(join(tmpdir(), 'am-ctrstate-'));
  writeFileSync(join(dir, 'host.rules'), '');
  writeFileSync(
    join(dir, 'auditmux.yaml'),
    [
      'host:',
      `  rules: ${dir}/host.rules`,
      `  log: { file: ${dir}/audit.log, format: RAW }`,
      `  control_socket: ${dir}/control.sock`,
    ].join('\n') + '\n',
  );
  return dir;
}

const births = (dir: string): number =>
  (readFileSync(join(dir, 'audit.log'), 'latin1').match(/op=container-birth/g) ?? []).length;

test('a restarted host daemon knows the names and images of containers born while it ran, with no second birth', async () => {
  const dir = setup();
  try {
    let r = await startHost(dir);
    const reg = r.daemon.contid.containers.registry;
    reg.register({
      runtime: 'podman',
      id: 'a'.repeat(64),
      contid: 100n,
      source: 'hook',
      meta: { name: 'web-1', image: 'nginx:1', labels: { app: 'web' } },
    });
    reg.register({ runtime: 'runc', id: 'gone', contid: 200n, source: 'cgroup', meta: { name: 'old' } });
    reg.retire(200n, 'poststop');
    reg.noteEvent(100n, 2, 1);
    await r.daemon.stop();
    assert.equal(births(dir), 2);
    r = await startHost(dir);
    try {
      const rows = r.daemon.contid.containers.list();
      assert.deepEqual(
        rows.map((c) => [c.contid, c.name, c.image, c.labels, c.state, c.routed, c.dropped]),
        [['100', 'web-1', 'nginx:1', { app: 'web' }, 'live', 2, 1]],
        'the live one is back with its metadata and counters; the retired one is not',
      );
      assert.equal(r.daemon.contid.containers.registry.facts(100n)?.name, 'web-1', 'route selectors see its name');
      assert.deepEqual(r.warnings, []);
    } finally {
      await r.daemon.stop();
    }
    assert.equal(births(dir), 2, 'no birth record for a container the host already knew');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a corrupt or linked state file: a warning, an empty registry, the daemon runs; the link target is untouched', async () => {
  const dir = setup();
  const state = join(dir, CONTAINER_STATE_FILE);
  try {
    writeFileSync(state, '{"version": 1, "boot": ');
    let r = await startHost(dir);
    assert.equal(r.daemon.contid.containers.registry.liveCount, 0);
    assert.match(r.warnings.join('\n'), /container state .*containers\.state not used: not JSON/);
    await r.daemon.stop();

    const target = join(dir, 'precious');
    writeFileSync(target, 'precious\n');
    rmSync(state, { force: true });
    symlinkSync(target, state);
    r = await startHost(dir);
    assert.match(r.warnings.join('\n'), /containers\.state is a symlink \(refused\)/);
    r.daemon.contid.containers.registry.register({ runtime: 'runc', id: 'x', contid: 7n, source: 'cgroup' });
    await r.daemon.stop();
    assert.equal(readFileSync(target, 'utf8'), 'precious\n', 'the write replaced the link, not what it points to');
    assert.match(readFileSync(state, 'utf8'), /"contid":"7"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('state file parser: field checks with clear errors; another boot is refused; a bad entry is skipped', () => {
  const reg = new ContainerRegistry();
  reg.register({ runtime: 'podman', id: 'i', contid: 5n, source: 'hook', pid: 42, meta: { name: 'n' } });
  const good = encodeState(BOOT, reg.liveContainers()).text;
  assert.equal(parseState(good, BOOT).containers[0]!.meta.name, 'n');
  const doc = (): { containers: Record<string, unknown>[] } & Record<string, unknown> => JSON.parse(good);
  const bad = (d: unknown, re: RegExp, boot = BOOT): void =>
    assert.throws(
      () => parseState(typeof d === 'string' ? d : JSON.stringify(d), boot),
      (e: unknown) => e instanceof ContainerStateError && e.code === 'E_CONTAINER_STATE' && re.test(e.message),
    );
  bad(good, /written during another boot/, 'other-boot');
  bad('[]', /not an object/);
  bad({ ...doc(), version: 2 }, /version 2, expected 1/);
  // A bad entry is skipped and named; the file's other entries are used (see containers-persist-bounds).
  const field = (k: string, v: unknown, re: RegExp): void => {
    const d = doc();
    d.containers[0]![k] = v;
    const r = parseState(JSON.stringify(d), BOOT);
    assert.deepEqual(r.containers, []);
    assert.equal(r.skipped.length, 1);
    assert.equal(r.skipped[0]!.index, 0);
    assert.match(r.skipped[0]!.reason, re);
  };
  field('contid', '18446744073709551615', /containers\[0\]\.contid .* is not a contid/);
  field('contid', '-1', /is not a contid/);
  field('contid', 5, /containers\[0\]\.contid must be a short string/);
  field('source', 'forged', /source must be hook or cgroup/);
  field('pid', -3, /containers\[0\]\.pid must be a non-negative integer/);
  field('meta', { name: 7 }, /containers\[0\]\.meta\.name must be a short string/);
  field('meta', { labels: { a: 1 } }, /meta\.labels: short string keys and values only/);
  field('runtime', undefined, /containers\[0\]\.runtime must be a short string/);
  field('runtime', 'x res=success', /containers\[0\]\.runtime "x res=success" is not a runtime name/);
  const twice = doc();
  twice.containers.push(twice.containers[0]!);
  const r = parseState(JSON.stringify(twice), BOOT);
  assert.deepEqual(
    [r.containers.map((c) => c.contid), r.skipped],
    [[5n], [{ index: 1, reason: 'containers[1].contid 5 appears twice' }]],
  );
  const dir = mkdtempSync(join(tmpdir(), 'am-ctrstate-big-'));
  try {
    const f = join(dir, 'big');
    writeFileSync(f, Buffer.alloc(9 * 1024 * 1024, 0x20));
    assert.throws(() => readState(f, BOOT), /over the 8388608-byte limit/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('state file parser: round trip and mutated files never throw anything but ContainerStateError (seeded)', () => {
  const next = prng(0x57a7e);
  const text = (n: number): string => {
    let s = '';
    for (let j = intBelow(next, n); j > 0; j--)
      s += String.fromCharCode(intBelow(next, 5) === 0 ? intBelow(next, 0x3000) : 32 + intBelow(next, 95));
    return s;
  };
  for (let i = 0; i < 300; i++) {
    const reg = new ContainerRegistry();
    const k = intBelow(next, 5);
    for (let j = 0; j < k; j++)
      reg.register({
        runtime: ['docker', 'podman', 'cri-o', 'containerd', 'runc', 'oci'][intBelow(next, 6)]!,
        id: text(70),
        contid: BigInt(1 + intBelow(next, 1 << 30)) * BigInt(1 + j),
        source: intBelow(next, 2) ? 'hook' : 'cgroup',
        pid: intBelow(next, 2) ? intBelow(next, 1 << 22) : null,
        meta: { name: text(12), image: text(20), labels: { [text(6)]: text(6) } },
      });
    const enc = encodeState(BOOT, reg.liveContainers()).text;
    const back = parseState(enc, BOOT).containers;
    assert.deepEqual(
      back.map((c) => [c.contid, c.id, c.meta.name, { ...c.meta.labels }]),
      [...reg.liveContainers()].map((c) => [c.contid, c.id, c.meta.name, c.meta.labels]),
    );
    // Mutations: a byte changed, a cut, a byte inserted.
    for (let m = 0; m < 20; m++) {
      const b = Buffer.from(enc);
      const at = intBelow(next, b.length);
      const mutated =
        m % 3 === 0
          ? (b.writeUInt8(intBelow(next, 256), at), b.toString('latin1'))
          : m % 3 === 1
            ? enc.slice(0, at)
            : enc.slice(0, at) + String.fromCharCode(intBelow(next, 128)) + enc.slice(at);
      try {
        parseState(mutated, BOOT);
      } catch (e) {
        assert.ok(e instanceof ContainerStateError, `${String(e)} for ${JSON.stringify(mutated.slice(0, 200))}`);
      }
    }
  }
});
