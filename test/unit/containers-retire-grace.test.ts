// A retired container's late events (made before its retirement, read after it) still reach its tenant for
// RETIRE_GRACE_MS, by contid and by name routes, whether poststop or the scan retired it; then they no longer do. A
// container live again keeps its new processes' entries; a pid reused meanwhile inherits nothing past a tick.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config';
import { ContidTracker, RETIRE_GRACE_MS, SWEEP_GRACE_MS } from '../../src/contid/tracker';
import { containerContid } from '../../src/contid/derive';
import { Containers } from '../../src/containers/service';
import { ContainerRegistry, type ContainerInfo } from '../../src/containers/registry';
import { Pipeline } from '../../src/routing/pipeline';
import { Router } from '../../src/routing/router';
import { FakeSystem as BaseFakeSystem } from '../helpers/fake-proc';
import { ContidCommands } from '../../src/daemon/contid-commands';
import { captureDiag } from '../helpers/peers';

const H = 'da5f278a1a4b3688eacf59509797b6c6147335dbdfa5a43b6732f09a2cdc613a';
const ID = containerContid(H);

class FakeSystem extends BaseFakeSystem {
  add(pid: number, ppid: number, cg: string, argv: string[] = ['x'], ns = 'pid:[1]'): void {
    this.put(pid, { ppid, cg, argv, ns });
  }
}

const hybrid = (path: string): string => `9:name=systemd:${path}\n8:pids:${path}\n0::${path}\n`;
const IN_H = hybrid(`/libpod_parent/libpod-${H}`);

const cfg = parseConfig(
  [
    'daemons:',
    '  - { name: byname, log: { file: /tmp/am-rg-n.log } }',
    '  - { name: bycontid, log: { file: /tmp/am-rg-c.log } }',
    'routes:',
    '  - { container: { name: web }, daemons: [byname], continue: true }',
    `  - { contid: ${ID}, daemons: [bycontid] }`,
  ].join('\n'),
  '/tmp/am-rg.yaml',
);

let serial = 0;
/** A SYSCALL record of `pid` (parent `ppid`) as the kernel writes it; fork/clone when `child` is given. */
function syscall(pid: number, ppid: number, child = 0): { type: number; payload: Buffer } {
  const nr = child ? 56 : 110;
  return {
    type: 1300,
    payload: Buffer.from(
      `audit(1700000000.000:${++serial}): arch=c000003e syscall=${nr} success=yes exit=${child || 1} ppid=${ppid} pid=${pid} auid=0 comm="sh" key=(null)`,
    ),
  };
}

interface World {
  sys: FakeSystem;
  t: ContidTracker;
  c: Containers;
  clock: { now: number };
  records: string[];
  /** The daemons an event of `pid` (parent `ppid`) goes to; [] when only the host log gets it. */
  where: (pid: number, ppid: number, child?: number) => string[];
}

/** podman's container "web" (conmon 50, its init 51) found by the start scan; tracker and registry on one clock. */
function world(): World {
  const clock = { now: 1_700_000_000_000 };
  const sys = new FakeSystem();
  sys.add(1, 0, hybrid('/'));
  sys.add(50, 1, hybrid('/libpod_parent/conmon'), ['/usr/bin/conmon', '-c', H, '-n', 'web', '-b', '/b']);
  sys.add(51, 50, IN_H, ['sh'], 'pid:[9]');
  const t = new ContidTracker({ proc: sys, now: () => clock.now });
  const records: string[] = [];
  const c = new Containers({ tracker: t, proc: sys, record: (b) => records.push(b), now: () => clock.now });
  t.setContainers(c.discovery);
  const p = new Pipeline({
    router: new Router(cfg.routes, c.registry),
    tracker: t,
    contidKernel: false,
    daemonsWithRules: new Set(),
    keep: 'unrouted',
  });
  const where = (pid: number, ppid: number, child = 0): string[] =>
    p
      .route([syscall(pid, ppid, child)])
      .destinations.map((d) => d.daemon)
      .filter((d): d is string => d !== null);
  assert.deepEqual(c.discovery.scan().born, [ID]);
  return { sys, t, c, clock, records, where };
}

const TENANT = ['byname', 'bycontid'];

/** The container's processes run and are seen: init 51, its child 52 (seen alive), 52's child 53 (a fork record). */
function runAndExit(w: World): void {
  w.sys.add(52, 51, IN_H, ['sh'], 'pid:[9]');
  assert.deepEqual(w.where(51, 50), TENANT);
  assert.deepEqual(w.where(52, 51, 53), TENANT);
  // Everything exits; none of its exit_group records has been read yet.
  for (const pid of [51, 52, 53]) w.sys.procs.delete(pid);
}

/** Late events: the three processes', and one of a child 54 of 53 nobody saw (its parent's entry answers). */
function lateEvents(w: World): string[][] {
  return [w.where(51, 50), w.where(52, 51), w.where(53, 52), w.where(54, 53)];
}

/** The host's contid commands without the tracking rule (its housekeeping is what is tested); the real /proc. */
function housekeeper(discover: boolean, changed: () => void): ContidCommands {
  return new ContidCommands({
    diag: captureDiag(),
    cgroupMap: [],
    discover,
    record: () => undefined,
    setTracking: () => Promise.resolve(false),
    tracking: () => false,
    changed,
    controlSocket: null,
  });
}

describe('retired containers: the grace for late events', () => {
  for (const how of ['poststop', 'scan'] as const) {
    it(`retired by ${how}: late events reach the tenant (contid and name routes) for RETIRE_GRACE_MS, then not`, () => {
      const w = world();
      runAndExit(w);
      if (how === 'poststop') {
        const out = w.c.fromHook({ state: { id: H, status: 'stopped', pid: 0 } });
        assert.equal(out.retired, true);
      } else assert.deepEqual(w.c.discovery.scan().retired, [ID]);
      // The record and the listing at once.
      assert.match(
        w.records.at(-1)!,
        new RegExp(`^op=container-retire contid=${ID} .* reason=${how === 'scan' ? 'gone' : 'poststop'} `),
      );
      assert.equal(w.c.list().find((r) => r.id === H)?.state, 'retired');
      assert.equal(w.c.registry.get(ID), undefined);
      // Routing still knows it.
      assert.deepEqual(lateEvents(w), [TENANT, TENANT, TENANT, TENANT]);
      assert.equal(w.c.registry.facts(ID)?.name, 'web');
      w.clock.now += 2000;
      assert.equal(w.c.tick(), 0);
      w.clock.now += RETIRE_GRACE_MS - 2001;
      assert.equal(w.c.tick(), 0, 'a grace of RETIRE_GRACE_MS');
      assert.deepEqual(lateEvents(w), [TENANT, TENANT, TENANT, TENANT]);
      assert.equal(w.c.registry.retiringCount, 1);
      // The tick after the grace: its entries and its metadata go.
      w.clock.now += 1;
      assert.equal(w.c.tick(), 1);
      assert.equal(w.c.registry.retiringCount, 0);
      assert.equal(w.c.registry.facts(ID), undefined);
      for (const pid of [51, 52, 53, 54]) assert.equal(w.t.get(pid), null, `pid ${pid}`);
      assert.deepEqual(lateEvents(w), [[], [], [], []]);
      assert.equal(w.t.size, 0, 'nothing left behind');
    });
  }

  it('exit_group still removes an entry in order during the grace', () => {
    const w = world();
    runAndExit(w);
    w.c.fromHook({ state: { id: H, status: 'stopped', pid: 0 } });
    assert.deepEqual(w.where(52, 51), TENANT);
    w.t.onExit(52);
    assert.equal(w.t.get(52), null);
    assert.deepEqual(w.t.get(51), [ID]);
  });

  it('a container live again within the grace (podman restart: the same contid) keeps its new entries', () => {
    const w = world();
    runAndExit(w);
    w.c.fromHook({ state: { id: H, status: 'stopped', pid: 0 } });
    const retiredAt = w.clock.now;
    // 3 s later the same container runs again: the hook registers its new init 60; the scan finds 61.
    w.clock.now += 3000;
    w.sys.add(60, 50, IN_H, ['sh'], 'pid:[10]');
    w.sys.add(61, 60, IN_H, ['sh'], 'pid:[10]');
    const reg = w.c.fromHook({
      state: { id: H, status: 'creating', pid: 60, annotations: { 'io.container.manager': 'libpod' } },
    });
    assert.equal(reg.new, true, 'a new birth');
    w.c.discovery.scan();
    assert.deepEqual(w.where(61, 60), TENANT);
    assert.deepEqual(w.where(61, 60, 62), TENANT, 'its fork record');
    // The previous life's late events still route.
    assert.deepEqual(lateEvents(w), [TENANT, TENANT, TENANT, TENANT]);
    // The grace of the previous life ends: its entries go, the new life's stay (62 exited a moment ago: gone, kept).
    w.clock.now = retiredAt + RETIRE_GRACE_MS;
    assert.equal(w.c.tick(), 1);
    for (const pid of [51, 52, 53, 54]) assert.equal(w.t.get(pid), null, `pid ${pid} of the previous life`);
    for (const pid of [60, 61, 62]) assert.deepEqual(w.t.get(pid), [ID], `pid ${pid} of the new life`);
    assert.deepEqual(w.where(61, 60), TENANT);
    assert.equal(w.c.registry.facts(ID)?.name, 'web', 'live: its metadata stays');
    // Stopped again later: its own grace, from then.
    w.clock.now += 5000;
    for (const pid of [60, 61]) w.sys.procs.delete(pid);
    w.c.fromHook({ state: { id: H, status: 'stopped', pid: 0 } });
    w.clock.now += RETIRE_GRACE_MS - 1;
    w.c.tick();
    assert.deepEqual(w.where(61, 60), TENANT);
    w.clock.now += 1;
    w.c.tick();
    assert.deepEqual(w.where(61, 60), []);
    assert.equal(w.t.size, 0);
  });

  it('restarted and stopped again within the grace: one grace from the last retirement covers both lives', () => {
    const w = world();
    runAndExit(w);
    w.c.fromHook({ state: { id: H, status: 'stopped', pid: 0 } });
    w.clock.now += 1000;
    w.sys.add(70, 50, IN_H, ['sh'], 'pid:[11]');
    w.c.discovery.scan();
    assert.deepEqual(w.where(70, 50), TENANT);
    w.clock.now += 1000;
    w.sys.procs.delete(70);
    w.c.fromHook({ state: { id: H, status: 'stopped', pid: 0 } });
    const second = w.clock.now;
    w.clock.now = second + RETIRE_GRACE_MS - 1;
    assert.equal(w.c.tick(), 0, "the first retirement's grace no longer ends anything");
    assert.deepEqual([...lateEvents(w), w.where(70, 50)], [TENANT, TENANT, TENANT, TENANT, TENANT]);
    w.clock.now = second + RETIRE_GRACE_MS;
    assert.equal(w.c.tick(), 1);
    assert.deepEqual([...lateEvents(w), w.where(70, 50)], [[], [], [], [], []]);
  });

  it('a pid reused during the grace inherits nothing past the next tick; one reused before the retirement, nothing', () => {
    const w = world();
    // A hooked container: its init's entry (adopted, no parent recorded) is trusted whatever the record's parent.
    const R = '1111111111111111111111111111111111111111111111111111111111111111';
    const IN_R = hybrid(`/libpod_parent/libpod-${R}`);
    const rid = containerContid(R);
    w.sys.add(100, 50, IN_R, ['sh'], 'pid:[12]');
    w.sys.add(101, 100, IN_R, ['sh'], 'pid:[12]');
    w.c.fromHook({
      state: { id: R, status: 'creating', pid: 100, annotations: { 'io.container.manager': 'libpod' } },
    });
    assert.deepEqual(w.t.lookup(100, 50), [rid]);
    assert.deepEqual(w.t.lookup(101, 100), [rid]);
    for (const pid of [100, 101]) w.sys.procs.delete(pid);
    // 101 is already another (host) process when poststop comes: its entry goes at once.
    w.sys.add(101, 1, hybrid('/'));
    w.c.fromHook({ state: { id: R, status: 'stopped', pid: 0 } });
    assert.equal(w.t.get(101), null);
    assert.equal(w.t.lookup(101, 1), null);
    assert.deepEqual(w.t.lookup(100, 50), [rid], "the init's late event");
    // 100 comes back as a host process: its first event finds a process under a pid found gone, before any tick.
    w.sys.add(100, 1, hybrid('/'));
    const reuse = w.t.counters.reuseDetected;
    assert.equal(w.t.lookup(100, 1), null, 'the host process under the pid');
    assert.equal(w.t.counters.reuseDetected, reuse + 1);
    w.clock.now += 2000;
    w.c.tick();
    assert.equal(w.t.lookup(100, 1), null);
    // A host child of it, looked up through /proc ancestry, is not the container's either.
    w.sys.add(102, 100, hybrid('/'));
    assert.equal(w.t.lookup(102, 100), null);
  });

  it("a retired process's pid reused by a host process with another parent: no contid for it or its child", () => {
    const w = world();
    runAndExit(w);
    w.c.registry.retire(ID, 'gone');
    assert.deepEqual(lateEvents(w)[1], TENANT, "52's late event");
    w.sys.add(52, 1, hybrid('/'));
    assert.deepEqual(w.where(52, 1), [], 'the reuser, before any tick');
    assert.deepEqual(w.where(60, 52), [], "the reuser's child");
    assert.deepEqual(w.where(53, 52), TENANT, "53's own late event: its own entry, still gone, still answers");
  });

  it('a process gone with its parent before its records were read, never met by the tracker: the scan saw it', () => {
    const w = world();
    // A short-lived shell and its command, seen by a scan, both gone before any of their records is read.
    w.sys.add(60, 51, IN_H, ['sh'], 'pid:[9]');
    w.sys.add(61, 60, IN_H, ['true'], 'pid:[9]');
    w.c.discovery.scan();
    for (const pid of [60, 61]) w.sys.procs.delete(pid);
    assert.deepEqual(w.where(61, 60), TENANT, 'its own pid, under the parent the scan saw');
    assert.equal(w.t.counters.fromScan, 1);
    // A child of the gone shell that no scan saw (and whose parent the tracker never met): no answer by the parent's
    // scan entry, which would answer for anything a reuser of the parent's pid forked.
    assert.deepEqual(w.where(63, 60), []);
    // Marked gone at once: a process found under the pid later is another one.
    w.sys.add(61, 1, hybrid('/'));
    assert.deepEqual(w.where(61, 1), []);
    // A host process gone as fast is nobody's.
    w.sys.add(70, 1, hybrid('/'));
    w.c.discovery.scan();
    w.sys.procs.delete(70);
    assert.deepEqual(w.where(70, 1), []);
  });

  it("a pid the scan saw in a container, reused by a host command that is gone too: the host's, by its parent", () => {
    const w = world();
    w.sys.add(60, 51, IN_H, ['sh'], 'pid:[9]');
    w.c.discovery.scan();
    w.sys.procs.delete(60);
    // Before the next scan, a live host shell (1000) runs a command that gets pid 60 and exits before its record is
    // read; and a gone host process under another parent.
    w.sys.add(1000, 1, hybrid('/'));
    assert.deepEqual(w.where(60, 1000), [], 'a live host parent');
    assert.deepEqual(w.where(60, 1000), [], 'the parent held in the negative cache');
    assert.deepEqual(w.where(60, 4242), [], 'a gone parent the scan never saw it under');
    assert.equal(w.t.counters.fromScan, 0);
  });

  it("a retired container's late events count in its row during the grace, not after", () => {
    const clock = { v: 1000 };
    const r = new ContainerRegistry({ now: () => clock.v });
    r.register({ runtime: 'runc', id: 'c1', contid: 1n, source: 'cgroup' });
    r.noteEvent(1n, 2, 0);
    r.retire(1n, 'gone');
    r.noteEvent(1n, 2, 1);
    r.noteEvent(1n, 0, 0);
    const row = (): Record<string, unknown> => r.list().find((x) => x.id === 'c1')!;
    assert.deepEqual([row().routed, row().dropped, row().hostOnly], [4, 1, 1]);
    r.expire(1000 + RETIRE_GRACE_MS);
    r.noteEvent(1n, 5, 0);
    assert.equal(row().routed, 4);
  });

  it('graces end in order of retirement, a container retired again goes behind; a clock stepped back ends them', () => {
    const clock = { v: 1000 };
    const r = new ContainerRegistry({ now: () => clock.v });
    for (let i = 1; i <= 2; i++) r.register({ runtime: 'runc', id: `c${i}`, contid: BigInt(i), source: 'cgroup' });
    r.retire(1n, 'gone');
    r.retire(2n, 'gone');
    // 1 restarted (the same contid) and stopped again later: its grace counts from then, behind 2's.
    r.register({ runtime: 'runc', id: 'c1', contid: 1n, source: 'cgroup' });
    clock.v = 5000;
    r.retire(1n, 'gone');
    assert.equal(r.expire(1000 + RETIRE_GRACE_MS), 1, "2's grace ends, 1's is still on");
    assert.ok(r.known(1n) && !r.known(2n));
    assert.equal(r.expire(0), 1, 'a clock stepped back before the retirement ends the grace');
    assert.equal(r.retiringCount, 0);
  });

  it("the host's 2 s housekeeping ends the graces, with discovery or without", async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_700_000_000_000 });
    let changed = 0;
    const cmds = housekeeper(false, () => changed++);
    const reg = cmds.containers.registry;
    reg.register({ runtime: 'runc', id: 'web', contid: 5n, source: 'hook', meta: { name: 'web' } });
    reg.retire(5n, 'poststop');
    const retiring = (): unknown => (cmds.status() as { containers: { retiring: number } }).containers.retiring;
    t.mock.timers.tick(2000);
    await cmds.housekeep();
    assert.equal(reg.facts(5n)?.name, 'web');
    assert.equal(retiring(), 1);
    assert.equal(changed, 0);
    t.mock.timers.tick(RETIRE_GRACE_MS - 2000);
    await cmds.housekeep();
    assert.equal(reg.facts(5n), undefined);
    assert.equal(retiring(), 0);
    assert.equal(changed, 1, 'the daemon re-evaluates what it needs (the tracker may be idle now)');
  });

  it("without the tracking rule, the housekeeping's scan bounds the tracker: a gone process's entry goes after the grace", async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_700_000_000_000 });
    const cmds = housekeeper(true, () => undefined);
    // A container's process that made events and exited (no exit_group record without the tracking rule), beside
    // this live one: pid_max is at most 2^22, so the first pid exists nowhere.
    cmds.tracker.adopt(1 << 23, 5n, 1);
    cmds.tracker.adopt(process.pid, 5n, 1);
    await cmds.housekeep();
    assert.equal(cmds.tracker.size, 2, 'within the grace its late events still route');
    t.mock.timers.tick(SWEEP_GRACE_MS);
    await cmds.housekeep();
    assert.equal(cmds.tracker.get(1 << 23), null);
    assert.deepEqual(cmds.tracker.get(process.pid), [5n]);
  });

  it('bounded: past maxRetired in their grace, the oldest grace ends at once', () => {
    const ended: Array<[bigint, boolean]> = [];
    const r = new ContainerRegistry({
      maxRetired: 2,
      now: () => 1000,
      onRetireEnd: (c: ContainerInfo, live) => ended.push([c.contid, live]),
    });
    for (let i = 1; i <= 4; i++) r.register({ runtime: 'runc', id: `c${i}`, contid: BigInt(i), source: 'cgroup' });
    for (let i = 1; i <= 3; i++) r.retire(BigInt(i), 'gone');
    assert.equal(r.retiringCount, 2);
    assert.deepEqual(ended, [[1n, false]]);
    assert.equal(r.facts(1n), undefined);
    assert.ok(r.facts(2n) && r.facts(3n) && r.facts(4n));
    assert.ok(!r.known(1n) && r.known(2n) && r.known(4n));
    assert.equal(r.expire(1000 + RETIRE_GRACE_MS), 2);
    assert.deepEqual(ended, [
      [1n, false],
      [2n, false],
      [3n, false],
    ]);
    assert.equal(r.list().length, 3, 'the listing: the live one and the two newest retired (its own bound)');
  });
});
