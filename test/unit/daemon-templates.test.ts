// Daemon templates on the emulated kernel: one daemon per container metadata value, made on the first event with no
// event lost while it is made, stopped when idle and made again, capped, sanitised, and reloaded.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEmulatedHost, syscallSerialCounts, until, type EmulatedHost } from '../helpers/emulated-host';
import type { ContainerMeta } from '../../src/containers/metadata';
import { templateDaemonName } from '../../src/config/templates';
import { routeTest } from '../../src/routing/route-test';
import { formatAuxRows } from '../../src/cli/status';

const EXE = '/usr/bin/amtemplates';

function yaml(template: string[]): string[] {
  return [
    'host:',
    '  rules: {dir}/host.rules',
    '  log: { file: {dir}/audit.log, format: RAW }',
    '  keep: unrouted',
    'daemon_templates:',
    ...template,
  ];
}

const TENANT = [
  '  - name: tenant',
  '    key: namespace',
  '    max: 3',
  '    log: { file: "{dir}/tenants/{value}/audit.log", format: RAW }',
];

interface Tenant {
  contid: bigint;
  proc: ChildProcess;
}

/** A real process (the tracker checks /proc) in a registered container of namespace `ns`, tagged with `contid`. */
function container(h: EmulatedHost, contid: bigint, meta: ContainerMeta, procs: ChildProcess[]): Tenant {
  const proc = spawn('sleep', ['30'], { stdio: 'ignore' });
  procs.push(proc);
  h.kernel.spawn(proc.pid!, 1, { exe: EXE });
  h.daemon.contid.set(proc.pid!, String(contid), false, { pid: process.pid, uid: 0, gid: 0 });
  h.daemon.contid.containers.registry.register({ runtime: 'podman', id: `c${contid}`, contid, source: 'hook', meta });
  return { contid, proc };
}

function storm(h: EmulatedHost, t: Tenant, n: number): void {
  for (let i = 0; i < n; i++) h.kernel.emitEvent(t.proc.pid!, 'getppid', 0);
}

const read = (f: string): string => (existsSync(f) ? readFileSync(f, 'utf8') : '');
type Status = { templates: Record<string, Record<string, unknown>>; aux: Record<string, Record<string, unknown>> };
const status = (h: EmulatedHost): Status => h.daemon.status() as unknown as Status;

async function drained(h: EmulatedHost, names: string[]): Promise<void> {
  await until(
    () =>
      names.every((n) => {
        const s = h.daemon.daemons.get(n)?.status() as { state: string; queued: number } | undefined;
        return s !== undefined && s.state === 'running' && s.queued === 0;
      }),
    `daemons ${names.join(', ')} to drain`,
  );
  await h.daemon.daemons.templates.settle();
}

describe('daemon templates (emulated mainline kernel)', () => {
  it('one daemon per namespace, made on the first event: every event of a storm in its own log, none elsewhere, none twice', async () => {
    const procs: ChildProcess[] = [];
    const h = await startEmulatedHost({ prefix: 'amtpl-', exe: EXE, untaggedPid: 4242001, yaml: yaml(TENANT) });
    const N = 300;
    try {
      const shop = container(h, 201n, { podNamespace: 'shop', name: 'web' }, procs);
      const bank = container(h, 202n, { podNamespace: 'bank', name: 'db' }, procs);
      // Emitted synchronously: the daemons cannot exist before the storms end, so every event but the first few is
      // held while its daemon is made.
      storm(h, shop, N);
      storm(h, bank, N);
      storm(h, shop, N);
      await until(() => h.daemon.daemons.has('tenant-shop') && h.daemon.daemons.has('tenant-bank'), 'two tenants');
      await drained(h, ['tenant-shop', 'tenant-bank']);
      const st = status(h).templates.tenant!;
      assert.equal(st.created, 2);
      assert.ok((st.heldEvents as number) > 0, 'events were held while the daemons were made');
      assert.equal(st.heldDropped, 0);
      const aux = status(h).aux;
      assert.equal(aux['tenant-shop']!.template, 'tenant');
      assert.equal(aux['tenant-shop']!.templateValue, 'shop');
      const rows = h.daemon.daemons.list();
      assert.deepEqual(rows.map((r) => r.name).sort(), ['tenant-bank', 'tenant-shop']);
    } finally {
      await h.stop();
      for (const p of procs) p.kill();
    }
    try {
      const shopLog = read(join(h.dir, 'tenants', 'shop', 'audit.log'));
      const bankLog = read(join(h.dir, 'tenants', 'bank', 'audit.log'));
      const shopCounts = syscallSerialCounts(shopLog, 'host-k');
      const bankCounts = syscallSerialCounts(bankLog, 'host-k');
      assert.equal(shopCounts.size, 2 * N, 'every shop event in the shop log');
      assert.equal(bankCounts.size, N, 'every bank event in the bank log');
      assert.deepEqual(
        [...shopCounts.values(), ...bankCounts.values()].filter((c) => c !== 1),
        [],
        'none twice',
      );
      for (const s of shopCounts.keys()) assert.ok(!bankCounts.has(s), `event ${s} in both logs`);
      const pidOf = (log: string): Set<string> =>
        new Set([...log.matchAll(/type=SYSCALL .* pid=(\d+) /g)].map((m) => m[1]!));
      assert.equal(pidOf(shopLog).size, 1, 'one container in the shop log');
      assert.equal(shopLog.match(/type=CONTAINER_ID .* contid=201\n/g)?.length, 2 * N, 'each with its CONTAINER_ID');
      assert.equal(bankLog.match(/type=CONTAINER_ID .* contid=202\n/g)?.length, N);
      const hostLog = read(join(h.dir, 'audit.log'));
      assert.equal(syscallSerialCounts(hostLog, 'host-k').size, 0, 'keep: unrouted: none in the host log');
      assert.match(hostLog, /op=template-add template=tenant key="namespace" value="shop" daemon=tenant-shop /);
    } finally {
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('a value that is a path (../x, a/b) gets an encoded daemon inside the tenants directory; past max, events go on to the host log, counted', async () => {
    const procs: ChildProcess[] = [];
    const h = await startEmulatedHost({ prefix: 'amtpl-', exe: EXE, untaggedPid: 4242002, yaml: yaml(TENANT) });
    const N = 50;
    try {
      const evil = container(h, 301n, { podNamespace: '../../escape' }, procs);
      const slash = container(h, 302n, { podNamespace: 'a/b' }, procs);
      const ok = container(h, 303n, { podNamespace: 'ok' }, procs);
      const over = container(h, 304n, { podNamespace: 'fourth' }, procs);
      storm(h, evil, N);
      storm(h, slash, N);
      storm(h, ok, N);
      storm(h, over, N);
      const names = ['../../escape', 'a/b', 'ok'].map((v) => templateDaemonName('tenant', v)!);
      await until(() => names.every((n) => h.daemon.daemons.has(n)), 'three tenants');
      await drained(h, names);
      const st = status(h).templates.tenant!;
      assert.equal(st.active, 3);
      assert.equal(st.unroutedEvents, N, 'every event of the fourth namespace counted');
      assert.equal(st.overCapValues, 1);
    } finally {
      await h.stop();
      for (const p of procs) p.kill();
    }
    try {
      const dirs = readdirSync(join(h.dir, 'tenants')).sort();
      assert.equal(dirs.length, 3);
      for (const d of dirs) assert.match(d, /^[a-z0-9][a-z0-9_-]*$/);
      assert.ok(dirs.includes('ok'));
      assert.ok(!existsSync(join(h.dir, 'escape')) && !existsSync(join(h.dir, '..', 'escape')), 'nothing escaped');
      for (const d of dirs) {
        const counts = syscallSerialCounts(read(join(h.dir, 'tenants', d, 'audit.log')), 'host-k');
        assert.equal(counts.size, N, `tenant ${d}: every event once`);
      }
      const hostLog = read(join(h.dir, 'audit.log'));
      assert.equal(syscallSerialCounts(hostLog, 'host-k').size, N, 'the fourth namespace went to the host log');
      assert.match(hostLog, /op=template-refuse template=tenant value="fourth" reason=over-max max=3 res=failed/);
      assert.equal(hostLog.match(/op=template-refuse/g)!.length, 1, 'recorded once, not per event');
      assert.match(
        hostLog,
        /op=template-add template=tenant key="namespace" value="\.\.\/\.\.\/escape" daemon=tenant-escape-[0-9a-f]{8} /,
      );
    } finally {
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('idle: stop — the daemon stops after its idle time and comes back on the next event; events during the stop are held, none lost', async () => {
    const procs: ChildProcess[] = [];
    const tpl = [...TENANT, '    idle: { after: 1s, action: stop }'];
    const h = await startEmulatedHost({ prefix: 'amtpl-', exe: EXE, untaggedPid: 4242003, yaml: yaml(tpl) });
    const N = 100;
    try {
      const shop = container(h, 401n, { podNamespace: 'shop' }, procs);
      storm(h, shop, N);
      await until(() => h.daemon.daemons.has('tenant-shop'), 'the tenant');
      await drained(h, ['tenant-shop']);
      await until(() => !h.daemon.daemons.has('tenant-shop'), 'the idle tenant to stop');
      await h.daemon.daemons.templates.settle();
      const row = h.daemon.daemons.list().find((r) => r.name === 'tenant-shop')!;
      assert.equal(row.state, 'stopped', 'aux list still shows it, stopped');
      assert.equal(status(h).templates.tenant!.stoppedIdle, 1);
      // Back on the next event.
      storm(h, shop, N);
      await until(() => h.daemon.daemons.has('tenant-shop'), 'the tenant again');
      await drained(h, ['tenant-shop']);
      // Events while it stops: the stop is begun, then a storm arrives before it has finished.
      await until(() => !h.daemon.daemons.has('tenant-shop'), 'idle again');
      await h.daemon.daemons.templates.settle();
      storm(h, shop, 1);
      await until(() => h.daemon.daemons.has('tenant-shop'), 'the tenant a third time');
      await until(() => h.daemon.daemons.list().some((r) => r.name === 'tenant-shop' && r.state === 'running'), 'run');
      // Force a stop now and storm straight after it (the same turn): every event is held, then delivered.
      h.daemon.daemons.tick();
      (h.daemon.daemons.templates as unknown as { tick(now: number): void }).tick(Date.now() + 3_600_000);
      storm(h, shop, N);
      await h.daemon.daemons.templates.settle();
      await drained(h, ['tenant-shop']);
      assert.ok((status(h).templates.tenant!.created as number) >= 4, 'made again after each stop');
    } finally {
      await h.stop();
      for (const p of procs) p.kill();
    }
    try {
      const counts = syscallSerialCounts(read(join(h.dir, 'tenants', 'shop', 'audit.log')), 'host-k');
      assert.equal(counts.size, 3 * N + 1, 'every event of every storm, across stops and new daemons');
      assert.deepEqual(
        [...counts.values()].filter((c) => c !== 1),
        [],
      );
      const hostLog = read(join(h.dir, 'audit.log'));
      assert.equal(syscallSerialCounts(hostLog, 'host-k').size, 0);
      assert.match(hostLog, /op=template-stop template=tenant daemon=tenant-shop reason=idle/);
    } finally {
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('route test names the daemon a value would get without making it; a label key and a container selector narrow a template', async () => {
    const tpl = [
      '  - name: team',
      '    key: label.team',
      '    container: { runtime: podman }',
      '    log: { file: "{dir}/teams/{value}.log", format: RAW }',
    ];
    const procs: ChildProcess[] = [];
    const h = await startEmulatedHost({ prefix: 'amtpl-', exe: EXE, untaggedPid: 4242004, yaml: yaml(tpl) });
    try {
      const routes = h.daemon.daemons.allRoutes();
      const given = routeTest(routes, h.daemon.contid.containers.registry, false, {
        container: { runtime: 'podman', labels: { team: 'red' } },
      }) as { daemons: string[] };
      assert.deepEqual(given.daemons, ['team-red']);
      assert.ok(!h.daemon.daemons.has('team-red'), 'route test made nothing');
      const red = container(h, 501n, { labels: { team: 'red' } }, procs);
      storm(h, red, 10);
      await until(() => h.daemon.daemons.has('team-red'), 'team-red');
      await drained(h, ['team-red']);
    } finally {
      await h.stop();
      for (const p of procs) p.kill();
    }
    try {
      assert.equal(syscallSerialCounts(read(join(h.dir, 'teams', 'red.log')), 'host-k').size, 10);
    } finally {
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('reload: an unchanged template keeps its daemons; a removed one stops them and its values go to the host log', async () => {
    const procs: ChildProcess[] = [];
    const h = await startEmulatedHost({ prefix: 'amtpl-', exe: EXE, untaggedPid: 4242005, yaml: yaml(TENANT) });
    const N = 40;
    try {
      const shop = container(h, 601n, { podNamespace: 'shop' }, procs);
      storm(h, shop, N);
      await until(() => h.daemon.daemons.has('tenant-shop'), 'tenant');
      await drained(h, ['tenant-shop']);
      const before = h.daemon.daemons.get('tenant-shop');
      assert.deepEqual(await h.daemon.reload(), { ok: true });
      assert.equal(h.daemon.daemons.get('tenant-shop'), before, 'unchanged: the same daemon');
      const cfg = join(h.dir, 'auditmux.yaml');
      writeFileSync(cfg, readFileSync(cfg, 'utf8').replace(/daemon_templates:[\s\S]*$/, ''));
      assert.deepEqual(await h.daemon.reload(), { ok: true });
      assert.ok(!h.daemon.daemons.has('tenant-shop'), 'removed with its template');
      storm(h, shop, N);
    } finally {
      await h.stop();
      for (const p of procs) p.kill();
    }
    try {
      assert.equal(syscallSerialCounts(read(join(h.dir, 'tenants', 'shop', 'audit.log')), 'host-k').size, N);
      assert.equal(syscallSerialCounts(read(join(h.dir, 'audit.log')), 'host-k').size, N);
      assert.match(
        read(join(h.dir, 'audit.log')),
        /op=template-stop template=tenant daemon=tenant-shop reason=removed/,
      );
    } finally {
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('a stopped daemon frees its place under max: a value refused before gets its daemon on its next event', async () => {
    const procs: ChildProcess[] = [];
    const tpl = [
      '  - name: tenant',
      '    key: namespace',
      '    max: 1',
      '    idle: { after: 1s, action: stop }',
      '    log: { file: "{dir}/tenants/{value}/audit.log", format: RAW }',
    ];
    const h = await startEmulatedHost({ prefix: 'amtpl-', exe: EXE, untaggedPid: 4242006, yaml: yaml(tpl) });
    const N = 30;
    try {
      const a = container(h, 701n, { podNamespace: 'a' }, procs);
      const b = container(h, 702n, { podNamespace: 'b' }, procs);
      storm(h, a, N);
      storm(h, b, N);
      await until(() => h.daemon.daemons.has('tenant-a'), 'tenant-a');
      await drained(h, ['tenant-a']);
      assert.ok(!h.daemon.daemons.has('tenant-b'), 'b is over max');
      await until(() => !h.daemon.daemons.has('tenant-a'), 'tenant-a to stop when idle');
      await h.daemon.daemons.templates.settle();
      storm(h, b, N);
      await until(() => h.daemon.daemons.has('tenant-b'), 'tenant-b once a has stopped');
      await drained(h, ['tenant-b']);
      assert.equal(status(h).templates.tenant!.unroutedEvents, N);
    } finally {
      await h.stop();
      for (const p of procs) p.kill();
    }
    try {
      assert.equal(syscallSerialCounts(read(join(h.dir, 'tenants', 'a', 'audit.log')), 'host-k').size, N);
      assert.equal(syscallSerialCounts(read(join(h.dir, 'tenants', 'b', 'audit.log')), 'host-k').size, N);
      assert.equal(syscallSerialCounts(read(join(h.dir, 'audit.log')), 'host-k').size, N, "b's refused storm");
    } finally {
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('a daemon that cannot be made (its rules are refused): the events held for it go to the host log, none lost', async () => {
    const procs: ChildProcess[] = [];
    const tpl = [...TENANT, '    rules: "{dir}/bad.rules"'];
    const h = await startEmulatedHost({
      prefix: 'amtpl-',
      exe: EXE,
      untaggedPid: 4242007,
      yaml: yaml(tpl),
      prepare: (dir) => writeFileSync(join(dir, 'bad.rules'), '-e 0\n'),
    });
    const N = 60;
    try {
      const shop = container(h, 801n, { podNamespace: 'shop' }, procs);
      storm(h, shop, N);
      // Rules are loaded when the daemon is made: refused then, with the file and line.
      await until(() => status(h).templates.tenant!.failures === 1, 'the refusal');
      await h.daemon.daemons.templates.settle();
      const st = status(h).templates.tenant!;
      assert.equal(st.failures, 1);
      assert.ok(!h.daemon.daemons.has('tenant-shop'));
      const row = h.daemon.daemons.list().find((r) => r.name === 'tenant-shop')!;
      assert.equal(row.state, 'failed');
      assert.match(String(row.lastError), /host-wide/);
      storm(h, shop, N);
      await until(() => (status(h).templates.tenant!.unroutedEvents as number) >= N, 'the second storm refused');
      // Fixed and reloaded: the daemon is made on the next event, with its own rules (it gets what they produce).
      writeFileSync(join(h.dir, 'bad.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${EXE} -k tenant-k\n`);
      assert.deepEqual(await h.daemon.reload(), { ok: true });
      storm(h, shop, 1);
      await until(() => h.daemon.daemons.has('tenant-shop'), 'the tenant after the reload');
      await drained(h, ['tenant-shop']);
      storm(h, shop, N);
      await drained(h, ['tenant-shop']);
      await until(
        () => syscallSerialCounts(read(join(h.dir, 'tenants', 'shop', 'audit.log')), 'tenant-k').size >= N,
        'the tenant rules events',
      );
    } finally {
      await h.stop();
      for (const p of procs) p.kill();
    }
    try {
      const hostLog = read(join(h.dir, 'audit.log'));
      const counts = syscallSerialCounts(hostLog, 'host-k');
      // The held storm, the refused one, and the event that made the daemon after the reload: produced before its
      // rules were in the kernel, so not its own (a daemon with rules gets only what its rules produce).
      assert.equal(counts.size, 2 * N + 1, 'the held storm and the later ones, in the host log');
      const tenant = syscallSerialCounts(read(join(h.dir, 'tenants', 'shop', 'audit.log')), 'tenant-k');
      assert.equal(tenant.size, N, "after the reload, every event its rules produced (the first one's came before)");
      assert.deepEqual(
        [...counts.values()].filter((c) => c !== 1),
        [],
      );
      assert.match(hostLog, /op=template-add template=tenant value="shop" daemon=tenant-shop reason=.* res=failed/);
    } finally {
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('reload: a changed template stops its daemons, which come back from the new definition on their next event', async () => {
    const procs: ChildProcess[] = [];
    const h = await startEmulatedHost({ prefix: 'amtpl-', exe: EXE, untaggedPid: 4242008, yaml: yaml(TENANT) });
    const N = 40;
    try {
      const shop = container(h, 901n, { podNamespace: 'shop' }, procs);
      storm(h, shop, N);
      await until(() => h.daemon.daemons.has('tenant-shop'), 'tenant');
      await drained(h, ['tenant-shop']);
      const cfg = join(h.dir, 'auditmux.yaml');
      writeFileSync(
        cfg,
        readFileSync(cfg, 'utf8').replace('audit.log", format: RAW }', 'audit.log", format: ENRICHED }'),
      );
      assert.deepEqual(await h.daemon.reload(), { ok: true });
      assert.ok(!h.daemon.daemons.has('tenant-shop'), 'stopped by the reload');
      storm(h, shop, N);
      await until(() => h.daemon.daemons.has('tenant-shop'), 'tenant again');
      await drained(h, ['tenant-shop']);
      assert.equal(h.daemon.daemons.get('tenant-shop')!.config.log.format, 'ENRICHED');
      // aux list, as the CLI prints it: the template and value in their own column.
      const table = formatAuxRows(h.daemon.daemons.list());
      assert.match(table.split('\n')[1]!, /^tenant-shop +running +inline +- .* tenant=shop +\//);
    } finally {
      await h.stop();
      for (const p of procs) p.kill();
    }
    try {
      const counts = syscallSerialCounts(read(join(h.dir, 'tenants', 'shop', 'audit.log')), 'host-k');
      assert.equal(counts.size, 2 * N, 'both storms, before and after the reload, in the one log');
      assert.match(
        read(join(h.dir, 'audit.log')),
        /op=template-stop template=tenant daemon=tenant-shop reason=changed/,
      );
    } finally {
      rmSync(h.dir, { recursive: true, force: true });
    }
  });
  it("a stopped tenant keeps its log: another template's value that names the same file is refused, and aux add cannot take its name", async () => {
    // `ns` logs by default beside the host log ({dir}/ns-NAME.log); `team` logs at {dir}/{value}.log. A label
    // team=ns-payments names ns-payments' file. Old: once ns-payments stopped (idle), team-ns-payments was made onto
    // its file and wrote into that namespace's trail; and `aux add ns-payments` took the stopped tenant's name.
    const tpl = [
      '  - name: ns',
      '    key: namespace',
      '    idle: { after: 1s, action: stop }',
      '    log: { format: RAW }',
      '  - name: team',
      '    key: label.team',
      '    log: { file: "{dir}/{value}.log", format: RAW }',
    ];
    const procs: ChildProcess[] = [];
    const h = await startEmulatedHost({ prefix: 'amtpl-', exe: EXE, untaggedPid: 4242009, yaml: yaml(tpl) });
    try {
      const victim = container(h, 901n, { podNamespace: 'payments' }, procs);
      storm(h, victim, 5);
      await until(() => h.daemon.daemons.has('ns-payments'), 'ns-payments');
      await drained(h, ['ns-payments']);
      await until(() => !h.daemon.daemons.has('ns-payments'), 'ns-payments to stop when idle');
      await h.daemon.daemons.templates.settle();
      const squatter = container(h, 902n, { labels: { team: 'ns-payments' } }, procs);
      storm(h, squatter, 5);
      await until(() => (status(h).templates.team?.failures as number) >= 1, 'the squatting daemon to be refused');
      assert.ok(!h.daemon.daemons.has('team-ns-payments'), 'never made');
      await assert.rejects(
        h.daemon.auxAdd({ name: 'ns-payments', contid: ['903'] }, { pid: 1, uid: 0, gid: 0 }),
        /belongs to a daemon template/,
      );
      // The victim comes back to its own log.
      storm(h, victim, 5);
      await until(() => h.daemon.daemons.has('ns-payments'), 'ns-payments again');
      await drained(h, ['ns-payments']);
    } finally {
      await h.stop();
      for (const p of procs) p.kill();
    }
    try {
      const log = read(join(h.dir, 'ns-payments.log'));
      assert.equal(syscallSerialCounts(log, 'host-k').size, 10, "only the namespace's own events in its log");
      assert.match(read(join(h.dir, 'audit.log')), /op=template-add template=team .*res=failed/);
    } finally {
      rmSync(h.dir, { recursive: true, force: true });
    }
  });
});
