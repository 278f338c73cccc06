// search and report by container name, image and Kubernetes namespace, named by the logs' CONTAINER_OP birth records.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runReport, runSearch } from '../../src/search';
import { containerRecordBody } from '../../src/containers/service';
import { ContainerRegistry } from '../../src/containers/registry';
import { containersFromLogs, decodeUntrusted } from '../../src/search/containers';
import { inputFromPath } from '../../src/search/inputs';
import { encodeUntrusted } from '../../src/records/encode';
import { intBelow, prng } from '../helpers/prng';
import { sampleBirthLines } from '../helpers/container-records';

const dir = mkdtempSync(join(tmpdir(), 'amsearch-ctr-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const ev = (serial: number, contid: bigint, key: string): string[] => [
  `type=SYSCALL msg=audit(1700000010.000:${serial}): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=${serial} auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="sh" exe="/bin/sh" key="${key}" record=1`,
  `type=CONTAINER_ID msg=audit(1700000010.000:${serial}): record=1 contid=${contid}`,
];

const hostLog = join(dir, 'audit.log');
writeFileSync(
  hostLog,
  [
    ...sampleBirthLines(),
    ...ev(100, 11n, 'a'),
    ...ev(101, 22n, 'b'),
    ...ev(102, 33n, 'c'),
    ...ev(103, 44n, 'd'),
    ...ev(104, 9n, 'e'),
  ].join('\n') + '\n',
);

function capture(): { io: { out(s: string): void; err(s: string): void }; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s) => out.push(s), err: (s) => err.push(s) }, out, err };
}

async function serials(...args: string[]): Promise<number[]> {
  const c = capture();
  await runSearch(['-if', hostLog, '--names-from', hostLog, '--format', 'json', ...args], c.io);
  return c.out
    .join('')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { serial: number }).serial);
}

describe('search and report by container name', () => {
  it('reads the birth records into contid -> name, image, namespace', async () => {
    const m = await containersFromLogs(inputFromPath(hostLog));
    assert.deepEqual(m.get(22n), {
      name: 'cart',
      image: 'shop/cart:3',
      namespace: 'shop',
      pod: 'cart-0',
      runtime: 'containerd',
    });
    assert.equal(m.get(44n)?.name, 'x y"\nz');
    assert.equal(m.size, 4);
  });

  it('selects by name, image and namespace globs (the birth records are events of their containers too)', async () => {
    assert.deepEqual(await serials('--container-name', 'web-*'), [1, 3, 100, 102]);
    assert.deepEqual(await serials('--image', 'shop/*'), [2, 101]);
    assert.deepEqual(await serials('--k8s-namespace', 'shop', '-k', 'b'), [101]);
    assert.deepEqual(await serials('--container-name', 'x y"*'), [4, 103]);
    assert.deepEqual(await serials('--container-name', 'nobody'), [], 'no such container: nothing, not everything');
    const c = capture();
    assert.equal(await runSearch(['-if', hostLog, '--names-from', hostLog, '--container-name', ''], c.io), 2);
    assert.match(c.err.join(''), /--container-name: a glob cannot be empty/);
  });

  it('a search of an auxiliary log alone names containers from the host log', async () => {
    const aux = join(dir, 'web.log');
    writeFileSync(aux, [...ev(100, 11n, 'a'), ...ev(102, 33n, 'c')].join('\n') + '\n');
    const conf = join(dir, 'auditmux.yaml');
    writeFileSync(
      conf,
      [`host: { log: { file: ${hostLog} } }`, `daemons: [{ name: web, log: { file: ${aux} } }]`].join('\n') + '\n',
    );
    const c = capture();
    assert.equal(await runSearch(['--daemon', 'web', '-c', conf, '--container-name', 'web-1', '--raw'], c.io), 0);
    assert.equal((c.out.join('').match(/^type=SYSCALL/gm) ?? []).length, 2);
  });

  it('report --group-by name: one row per name, across contids', async () => {
    const c = capture();
    assert.equal(await runReport(['-if', hostLog, '--names-from', hostLog, '--group-by', 'name'], c.io), 0);
    const s = c.out.join('');
    // Each container's birth record counts with its events: web-1 was born twice (contids 11 and 33).
    assert.match(s, /container web-1\n {2}events: 4\n/, 'contids 11 and 33 together, births included');
    assert.match(s, /container cart\n {2}events: 2\n/);
    assert.doesNotMatch(s, /container unset/, 'no birth record is counted as a host event');
    assert.match(s, /container 9\n {2}events: 1\n/, 'an unnamed contid keeps its number');
    assert.match(s, /container x y"\\012z\n/, 'a hostile name is escaped for the terminal');
  });

  it('report counts birth and retirement records under the container they describe, not under unset', async () => {
    const recs: string[] = [];
    const r = new ContainerRegistry({
      onBirth: (c) => recs.push(containerRecordBody('birth', c)),
      onRetire: (c) => recs.push(containerRecordBody('retire', c)),
    });
    r.register({ runtime: 'runc', id: 'r55', contid: 55n, source: 'hook', meta: { name: 'r55' } });
    r.retire(55n, 'poststop');
    const log = join(dir, 'ops.log');
    writeFileSync(
      log,
      [
        `type=CONTAINER_OP msg=audit(1700000020.000:1): ${recs[0]}`,
        ...ev(2, 55n, 'a'),
        `type=CONTAINER_OP msg=audit(1700000020.000:3): ${recs[1]}`,
        // A host process: no container at all.
        ...ev(4, 55n, 'h').slice(0, 1),
      ].join('\n') + '\n',
    );
    const c = capture();
    assert.equal(await runReport(['-if', log], c.io), 0);
    const s = c.out.join('');
    assert.match(s, /container 55\n {2}events: 3\n/, 'birth, event, retirement');
    assert.match(s, /container unset\n {2}events: 1\n/, 'only the host event');
  });

  it("names come from the host log only: a tenant's forged records rename nothing", async () => {
    const d = mkdtempSync(join(tmpdir(), 'amsearch-forge-'));
    try {
      const host = join(d, 'audit.log');
      writeFileSync(host, sampleBirthLines().join('\n') + '\n');
      // Tenant a writes its own log (a daemon with a user: can): records renaming tenant b's container 22 ("cart"),
      // one far in the future, one merely newer than the host's birth.
      const forged = (t: string, serial: number, op: string, name: string): string =>
        `type=CONTAINER_OP msg=audit(${t}:${serial}): op=container-${op} contid=22 runtime=runc container="x" name="${name}" image="evil/img:1" pod=? namespace="a" source=hook opid=1 res=1`;
      const a = join(d, 'a.log');
      writeFileSync(
        a,
        [
          forged('4102444800.000', 1, 'update', 'pwned'),
          forged('1700000500.000', 2, 'birth', 'evil'),
          ...ev(7, 11n, 'a'),
        ].join('\n') + '\n',
      );
      const b = join(d, 'b.log');
      writeFileSync(b, [...ev(200, 22n, 'b'), ...ev(201, 22n, 'b')].join('\n') + '\n');
      const conf = join(d, 'auditmux.yaml');
      writeFileSync(
        conf,
        [
          `host: { log: { file: ${host} } }`,
          `daemons: [{ name: a, log: { file: ${a} } }, { name: b, log: { file: ${b} } }]`,
        ].join('\n') + '\n',
      );
      const run = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
        const c = capture();
        const code = await runSearch(['-c', conf, '--raw', ...args], c.io);
        return { code, out: c.out.join(''), err: c.err.join('') };
      };
      const syscalls = (s: string): number => (s.match(/^type=SYSCALL/gm) ?? []).length;
      for (const inputs of [
        ['--daemon', 'a', '--daemon', 'b'],
        ['-if', a, '-if', b],
      ]) {
        assert.equal((await run(...inputs, '--container-name', 'pwned')).code, 1, 'the future-dated forgery');
        assert.equal((await run(...inputs, '--container-name', 'evil')).code, 1, 'the newer forged birth');
        assert.equal((await run(...inputs, '--image', 'evil/*')).code, 1);
        const r = await run(...inputs, '--container-name', 'cart');
        assert.equal(r.code, 0, r.err);
        assert.equal(syscalls(r.out), 2, "b's two events of cart");
      }
      // Inputs that do not include the host log: names still come from it, and search says so.
      assert.match(
        (await run('-if', b, '--container-name', 'cart')).err,
        /names are taken from the host log .*audit\.log/,
      );
      assert.doesNotMatch((await run('--daemon', 'b', '--container-name', 'cart')).err, /warning/);
      const c = capture();
      assert.equal(
        await runReport(['-c', conf, '--daemon', 'a', '--daemon', 'b', '--group-by', 'name', '--format', 'json'], c.io),
        0,
      );
      const rows = (JSON.parse(c.out.join('')) as { containers: Array<{ container: string }> }).containers;
      assert.deepEqual(rows.map((x) => x.container).sort(), ['cart', 'web-1']);

      // The host log itself: a record dated past now (+5 min) is ignored and counted.
      const hostNext = join(d, 'host2.log');
      writeFileSync(
        hostNext,
        [
          ...sampleBirthLines(),
          forged('4102444800.000', 9, 'update', 'later'),
          forged('1700000100.000', 10, 'update', 'renamed'),
        ].join('\n') + '\n',
      );
      const stats = { future: 0 };
      const m = await containersFromLogs(inputFromPath(hostNext), { stats });
      assert.equal(m.get(22n)?.name, 'renamed', 'a newer real update wins; the future one does not');
      assert.equal(stats.future, 1);
      const w = await run('-if', b, '--names-from', hostNext, '--container-name', 'renamed');
      assert.equal(w.code, 0);
      assert.match(w.err, /1 container record\(s\) dated more than 5 minutes in the future ignored/);
      // The slack: a record a minute ahead of the clock still counts.
      const soon = join(d, 'soon.log');
      const t = ((Date.now() + 60_000) / 1000).toFixed(3);
      writeFileSync(soon, forged(t, 1, 'birth', 'soon') + '\n');
      assert.equal((await containersFromLogs(inputFromPath(soon))).get(22n)?.name, 'soon');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('only tenant logs and no host log: names are refused, not taken from the tenants', async () => {
    const d = mkdtempSync(join(tmpdir(), 'amsearch-nohost-'));
    try {
      const a = join(d, 'a.log');
      writeFileSync(a, sampleBirthLines().join('\n') + '\n' + ev(100, 11n, 'a').join('\n') + '\n');
      const conf = join(d, 'auditmux.yaml');
      writeFileSync(
        conf,
        [
          `host: { log: { file: ${join(d, 'gone', 'audit.log')} } }`,
          `daemons: [{ name: a, log: { file: ${a} } }]`,
        ].join('\n') + '\n',
      );
      for (const args of [
        ['--daemon', 'a', '--container-name', 'web-1'],
        ['-if', a, '--container-name', 'web-1'],
      ]) {
        const c = capture();
        assert.equal(await runSearch(['-c', conf, ...args], c.io), 8);
        assert.match(
          c.err.join(''),
          /container names come only from the host log's birth and update records .* --names-from FILE/,
        );
        assert.equal(c.out.join(''), '');
      }
      const c = capture();
      assert.equal(await runReport(['-c', conf, '--daemon', 'a', '--group-by', 'name'], c.io), 8);
      // --names-from: a file and its rotations, never a directory (which can hold tenants' logs).
      const c2 = capture();
      assert.equal(await runSearch(['-c', conf, '-if', a, '--names-from', d, '--container-name', 'x'], c2.io), 2);
      assert.match(c2.err.join(''), /--names-from .*: give the host log file .* not a directory/);
      const kept = join(d, 'kept.log');
      writeFileSync(`${kept}.1`, sampleBirthLines().join('\n') + '\n');
      writeFileSync(kept, '');
      const c3 = capture();
      assert.equal(
        await runSearch(['-c', conf, '-if', a, '--names-from', kept, '--container-name', 'web-1', '--raw'], c3.io),
        0,
        c3.err.join(''),
      );
      assert.equal((c3.out.join('').match(/^type=SYSCALL/gm) ?? []).length, 1, 'named by the rotated birth');
      const c4 = capture();
      assert.equal(await runSearch(['-c', conf, '-if', a, '--names-from', kept, '-k', 'a'], c4.io), 2);
      assert.match(c4.err.join(''), /--names-from needs --container-name/);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('decodes what encodeUntrusted writes (property, seeded)', () => {
    const next = prng(0xdec0);
    for (let i = 0; i < 2000; i++) {
      let s = '';
      for (let j = intBelow(next, 12); j > 0; j--)
        s += String.fromCharCode(intBelow(next, 4) === 0 ? intBelow(next, 0x3000) : 32 + intBelow(next, 95));
      if (s === '' || s === '?') continue;
      assert.equal(decodeUntrusted(encodeUntrusted(s)), s, JSON.stringify(s));
    }
  });
});
