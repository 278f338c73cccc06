// Container discovery with the tracker: cgroup tagging, exec joining, hook registration, retirement, records.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ContidTracker } from '../../src/contid/tracker';
import { FakeSystem as BaseFakeSystem } from '../helpers/fake-proc';
import { FULL_SCAN_EVERY } from '../../src/containers/discovery';
import { Containers } from '../../src/containers/service';
import { containerContid } from '../../src/contid/derive';
import { Pipeline } from '../../src/routing/pipeline';
import { Router } from '../../src/routing/router';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeState } from '../../src/containers/persist';
import type { ContainerInfo } from '../../src/containers/registry';

const H = 'da5f278a1a4b3688eacf59509797b6c6147335dbdfa5a43b6732f09a2cdc613a';
const H2 = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';

class FakeSystem extends BaseFakeSystem {
  /** Live processes whose /proc/PID/cgroup read fails. */
  readonly unreadable = new Set<number>();
  /** Called before each cgroup read (a pid reused between a test's stat and its cgroup read). */
  beforeCgroupRead: ((pid: number) => void) | null = null;
  override cgroupText(pid: number): string | null {
    this.beforeCgroupRead?.(pid);
    return this.unreadable.has(pid) ? null : super.cgroupText(pid);
  }
  add(pid: number, ppid: number, cg: string, argv: string[] = ['x'], ns = 'pid:[1]'): void {
    this.put(pid, { ppid, cg, argv, ns });
  }
}

const hybrid = (path: string): string => `9:name=systemd:${path}\n8:pids:${path}\n0::${path}\n`;

function setup(): { sys: FakeSystem; t: ContidTracker; c: Containers; records: string[] } {
  const sys = new FakeSystem();
  sys.add(1, 0, hybrid('/'));
  sys.add(50, 1, hybrid('/libpod_parent/conmon'), ['/usr/bin/conmon', '-c', H, '-n', 'web', '-b', '/b']);
  sys.add(51, 50, hybrid(`/libpod_parent/libpod-${H}`), ['sleep', '300'], 'pid:[9]');
  const t = new ContidTracker({ proc: sys });
  const records: string[] = [];
  const c = new Containers({ tracker: t, proc: sys, record: (b) => records.push(b) });
  t.setContainers(c.discovery);
  return { sys, t, c, records };
}

describe('container discovery', () => {
  it('the start scan finds a running container, names it from conmon, and writes its birth', () => {
    const { c, t, records } = setup();
    assert.ok(t.idle, 'no container known yet: lookups skipped');
    const { born } = c.discovery.scan();
    const id = containerContid(H);
    assert.deepEqual(born, [id]);
    assert.ok(!t.idle);
    assert.equal(records.length, 1);
    assert.equal(
      records[0],
      `op=container-birth contid=${id} runtime=podman container="${H}" name="web" image=? pod=? namespace=? source=cgroup opid=51 res=1`,
    );
    assert.deepEqual(t.lookup(51, 50), [id]);
  });

  it('a process inside the container calling itself conmon cannot name it', () => {
    const sys = new FakeSystem();
    sys.add(1, 0, hybrid('/'));
    sys.add(51, 1, hybrid(`/libpod_parent/libpod-${H}`), ['/usr/bin/conmon', '-c', H, '-n', 'admin-db'], 'pid:[9]');
    sys.add(52, 51, hybrid(`/libpod_parent/libpod-${H}`), ['sh'], 'pid:[9]');
    const t = new ContidTracker({ proc: sys });
    const c = new Containers({ tracker: t, proc: sys, record: () => undefined });
    assert.equal(c.discovery.runtimeName(52, H), undefined);
    sys.procs.get(51)!.cg = hybrid('/libpod_parent/conmon');
    assert.equal(c.discovery.runtimeName(52, H), 'admin-db', 'the same argv from the host side is believed');
  });

  it('nor can one moved deep into its delegated cgroup tree', () => {
    // Old: past 256 levels its cgroup classified as no container's, so its argv was believed: named admin-db.
    const sys = new FakeSystem();
    const deep = `/libpod_parent/libpod-${H}/${'n/'.repeat(300)}n`;
    sys.add(1, 0, hybrid('/'));
    sys.add(51, 1, hybrid(`/libpod_parent/libpod-${H}`), ['sh'], 'pid:[9]');
    sys.add(52, 51, hybrid(deep), ['/usr/bin/conmon', '-c', H, '-n', 'admin-db'], 'pid:[9]');
    sys.add(53, 52, hybrid(deep), ['sh'], 'pid:[9]');
    const t = new ContidTracker({ proc: sys });
    const c = new Containers({ tracker: t, proc: sys, record: () => undefined });
    assert.equal(c.discovery.runtimeName(53, H), undefined);
    assert.equal(c.discovery.contidFor(53), containerContid(H), 'its processes are in the container');
  });

  it('an exec into the container (child of another conmon) gets its contid; a short-lived child via its live parent', () => {
    const { sys, c, t } = setup();
    c.discovery.scan();
    const id = containerContid(H);
    sys.add(60, 1, hybrid('/libpod_parent/conmon'), ['/usr/bin/conmon', '-c', H, '-n', 'web']);
    sys.add(61, 60, hybrid(`/libpod_parent/libpod-${H}`), ['sh'], 'pid:[9]');
    // 62 already exited: only its SYSCALL record remains, with ppid 61.
    assert.deepEqual(t.lookup(62, 61), [id]);
    assert.deepEqual(t.lookup(61, 60), [id]);
    // A host process is not in it, and its children neither.
    sys.add(70, 1, hybrid('/'));
    assert.equal(t.lookup(70, 1), null);
    assert.equal(t.lookup(71, 70), null);
  });

  it('a process seen outside before it joined (runc exec) is asked again once the scan sees it in the container', () => {
    const { sys, c, t } = setup();
    c.discovery.scan();
    sys.add(120, 1, hybrid('/libpod_parent/conmon'), ['runc', 'init']);
    assert.equal(t.lookup(120, 1), null, "still in the runtime's cgroup");
    c.discovery.scan();
    sys.procs.get(120)!.cg = hybrid(`/libpod_parent/libpod-${H}`);
    sys.procs.get(120)!.starttime++; // the scan looks at a pid again only as a new process (here: after its exec)
    const reads = sys.cgroupReads;
    assert.equal(t.lookup(120, 1), null, 'the negative answer is cached, at an execve too');
    assert.equal(sys.cgroupReads, reads, 'no /proc read for it');
    // A known pid outside containers is read again in the scan whose slice it is in (pid % FULL_SCAN_EVERY), not at
    // every one.
    while ((c.discovery.counters.scans + 1) % FULL_SCAN_EVERY !== 120 % FULL_SCAN_EVERY) {
      c.discovery.scan();
      assert.equal(t.lookup(120, 1), null, `scan ${c.discovery.counters.scans} does not read pid 120 again`);
    }
    c.discovery.scan();
    assert.deepEqual(t.lookup(120, 1), [containerContid(H)], 'the scan of its slice found it joined');
  });

  it('a scan reads new pids, container members and one slice of the known host processes: each once in FULL_SCAN_EVERY scans', () => {
    const { sys, c } = setup();
    const host = 3000;
    for (let i = 0; i < host; i++) sys.add(3000 + i, 1, hybrid('/'));
    sys.add(400, 1, hybrid(`/libpod_parent/libpod-${H}`), ['sleep']);
    c.discovery.scan();
    const reads = new Map<number, number>();
    const stat = sys.stat.bind(sys);
    sys.stat = (pid: number) => {
      reads.set(pid, (reads.get(pid) ?? 0) + 1);
      return stat(pid);
    };
    let most = 0;
    for (let k = 0; k < FULL_SCAN_EVERY; k++) {
      const before = sys.statReads;
      c.discovery.scan();
      most = Math.max(most, sys.statReads - before);
    }
    // No scan reads them all at once (the loop is held for each /proc read).
    assert.ok(most <= host / FULL_SCAN_EVERY + 5, `the largest scan read ${most} stats`);
    for (let i = 0; i < host; i++) assert.equal(reads.get(3000 + i), 1, `pid ${3000 + i} read once in a cycle`);
    assert.equal(reads.get(400), FULL_SCAN_EVERY, 'the member is read at every scan');
    sys.add(9999, 1, hybrid('/'));
    const before = sys.statReads;
    c.discovery.scan();
    assert.ok(reads.get(9999)! >= 1 && sys.statReads - before <= most + 2, 'a new pid is read at once');
  });

  it('an audited execve of a process seen outside (runc init becoming the command) finds its children at once', () => {
    const { sys, c, t } = setup();
    c.discovery.scan();
    const p = new Pipeline({
      router: new Router([]),
      tracker: t,
      contidKernel: false,
      daemonsWithRules: new Set(),
      keep: 'unrouted',
    });
    sys.add(120, 1, hybrid('/libpod_parent/conmon'), ['runc', 'init']);
    assert.equal(t.lookup(120, 1), null, "still in the runtime's cgroup");
    sys.procs.get(120)!.cg = hybrid(`/libpod_parent/libpod-${H}`);
    // 121 exited before its event was read: only its parent says where it ran, and the parent's answer is cached.
    assert.equal(t.lookup(121, 120), null, 'before the exec: the cached answer');
    const execve = (pid: number, ppid: number, exit: number): { type: number; payload: Buffer } => ({
      type: 1300,
      payload: Buffer.from(
        `audit(1700000000.000:7): arch=c000003e syscall=59 success=${exit ? 'no' : 'yes'} exit=${exit} ppid=${ppid} pid=${pid} auid=0 comm="sh" key=(null)`,
      ),
    });
    p.view([execve(120, 1, -2)]);
    assert.equal(t.lookup(122, 120), null, 'a failed execve changes nothing');
    p.view([execve(120, 1, 0)]);
    assert.deepEqual(t.lookup(123, 120), [containerContid(H)], 'after it: the next child found through its parent');
    assert.deepEqual(t.lookup(120, 1), [containerContid(H)], 'and the process itself');
  });

  it('the scan classifies each new process once', () => {
    const { sys, c } = setup();
    sys.add(91, 1, hybrid('/amtest1'));
    sys.runc.add('amtest1');
    let confirmations = 0;
    const has = sys.runcState.bind(sys);
    sys.runcState = (id: string): boolean => (confirmations++, has(id));
    c.discovery.scan();
    assert.equal(c.registry.get(containerContid('amtest1'))?.runtime, 'runc');
    assert.equal(confirmations, 1, "runc's state is asked once for its one process");
  });

  it('a pid reused by a process of another container after the first one exited is not misattributed', () => {
    const { sys, c, t } = setup();
    c.discovery.scan();
    sys.add(130, 51, hybrid(`/libpod_parent/libpod-${H}`), ['sh'], 'pid:[9]');
    assert.deepEqual(t.lookup(131, 130), [containerContid(H)], 'a short-lived child of the first container');
    // pid 131 comes back as the child of a shell in another container (no exit was seen: no tracking rule).
    sys.add(140, 1, hybrid(`/libpod_parent/libpod-${H2}`), ['sh'], 'pid:[8]');
    sys.add(131, 140, hybrid(`/libpod_parent/libpod-${H2}`), ['echo'], 'pid:[8]');
    assert.deepEqual(t.lookup(131, 140), [containerContid(H2)]);
    assert.ok(t.counters.reuseDetected >= 1);
    // A double fork inside the first container (reparented to its init) stays in it.
    sys.add(132, 130, hybrid(`/libpod_parent/libpod-${H}`), ['x'], 'pid:[9]');
    assert.deepEqual(t.lookup(132, 130), [containerContid(H)]);
    sys.procs.get(132)!.ppid = 51;
    assert.deepEqual(t.lookup(132, 51), [containerContid(H)]);
  });

  it("setsid, double fork and a forged cgroup name inside the container keep the container's contid", () => {
    const { sys, c, t } = setup();
    c.discovery.scan();
    const id = containerContid(H);
    // Double fork: the grandchild is reparented to the container's init (or a subreaper) but stays in the cgroup.
    sys.add(80, 51, hybrid(`/libpod_parent/libpod-${H}/libpod_parent/libpod-${H2}`), ['evil'], 'pid:[9]');
    assert.deepEqual(t.lookup(80, 1), [id]);
    assert.equal(c.registry.get(containerContid(H2)), undefined, 'the forged name made no container');
  });

  it('a process moving into a cgroup it made below its own (delegated), named after another container, keeps its contid', () => {
    const { sys, c, t } = setup();
    c.discovery.scan();
    const id = containerContid(H);
    sys.add(150, 51, hybrid(`/libpod_parent/libpod-${H}`), ['sh'], 'pid:[9]');
    assert.deepEqual(t.lookup(150, 51), [id]);
    sys.procs.get(150)!.cg = hybrid(`/libpod_parent/libpod-${H}/libpod_parent/libpod-${H2}`);
    sys.add(151, 150, hybrid(`/libpod_parent/libpod-${H}/libpod_parent/libpod-${H2}`), ['sh'], 'pid:[9]');
    c.discovery.scan();
    assert.deepEqual(t.lookup(150, 51), [id], 'the move changes nothing');
    assert.deepEqual(t.lookup(151, 150), [id], 'nor for its children');
    assert.deepEqual(t.lookup(152, 151), [id], 'nor for a child gone before its event is read');
    assert.equal(c.registry.get(containerContid(H2)), undefined, 'and makes no container');
  });

  it("a live process whose cgroup cannot be read (a path past PATH_MAX) is its nearest readable ancestor's", () => {
    const { sys, c, t } = setup();
    c.discovery.scan();
    // Kernels that refuse a cgroup path of 4096 bytes or more (ENAMETOOLONG) leave /proc/PID/cgroup unreadable: a
    // container with a delegated cgroup tree could make its processes so, and their events were nobody's.
    const deep = `/libpod_parent/libpod-${H}/${'d'.repeat(250)}`;
    sys.add(300, 51, hybrid(deep), ['sh'], 'pid:[9]');
    sys.add(301, 300, hybrid(deep), ['sh'], 'pid:[9]');
    sys.unreadable.add(300).add(301);
    assert.deepEqual(t.lookup(301, 300), [containerContid(H)]);
    assert.deepEqual(t.lookup(300, 51), [containerContid(H)]);
    // A host process with such a cgroup stays the host's: its ancestors are in no container.
    sys.add(310, 1, hybrid('/'), ['sh']);
    sys.unreadable.add(310);
    assert.equal(t.lookup(310, 1), null);
    // An ancestor whose pid another process (a container's) took between the walk and its cgroup's read answers for
    // nobody.
    sys.add(320, 1, hybrid('/'), ['sh']);
    sys.add(321, 320, hybrid('/'), ['sh']);
    sys.unreadable.add(321);
    sys.beforeCgroupRead = (pid) => {
      if (pid !== 320 || sys.procs.get(320)!.ppid === 51) return;
      sys.add(320, 51, hybrid(`/libpod_parent/libpod-${H}`), ['sh'], 'pid:[9]');
      sys.procs.get(320)!.starttime++; // another process: another start time
    };
    assert.equal(t.lookup(321, 320), null);
  });

  it("a child that exits at once, its pid reused by a host process, is still its container's", () => {
    const { sys, c, t } = setup();
    c.discovery.scan();
    sys.add(160, 51, hybrid(`/libpod_parent/libpod-${H}`), ['sh'], 'pid:[9]');
    // The event says pid 161, parent 160; by the time it is read, 161 is a host process of another parent.
    sys.add(170, 1, hybrid('/'));
    sys.add(161, 170, hybrid('/'));
    assert.deepEqual(t.lookup(161, 160), [containerContid(H)]);
    assert.equal(t.lookup(161, 170), null, 'the host process under that pid is not');
  });

  it("plain runc: /<id> is a container only when runc's state directory has it", () => {
    const { sys, c } = setup();
    sys.add(90, 1, hybrid('/amtest1'));
    c.discovery.scan();
    assert.equal(c.registry.get(containerContid('amtest1')), undefined);
    sys.runc.add('amtest1');
    sys.procs.delete(90);
    sys.add(91, 1, hybrid('/amtest1'));
    c.discovery.scan();
    assert.equal(c.registry.get(containerContid('amtest1'))?.runtime, 'runc');
  });

  it('the hook registers before user code, refuses a pid in another container, and retires at poststop', () => {
    const { sys, c, t, records } = setup();
    sys.add(100, 1, hybrid(`/libpod_parent/libpod-${H2}`), ['runc', 'init'], 'pid:[7]');
    const reg = c.fromHook({
      state: {
        ociVersion: '1.0.2',
        id: H2,
        status: 'creating',
        pid: 100,
        bundle: '/b',
        annotations: { 'io.container.manager': 'libpod' },
      },
      bundleAnnotations: { 'io.auditmux.image': 'localhost/bb:test' },
    });
    const id2 = containerContid(H2);
    assert.equal(reg.contid, id2.toString());
    assert.equal(reg.cgroupKnown, true, 'its cgroup is a podman one: no fork tracking needed');
    assert.deepEqual(t.get(100), [id2], 'the init pid is tagged at once');
    assert.equal(c.registry.get(id2)?.meta.image, 'localhost/bb:test');
    assert.throws(
      () => c.fromHook({ state: { id: H, status: 'creating', pid: 100 } }),
      /E_CONTAINER_MISMATCH|is in container/,
    );
    // A pid whose cgroup no pattern knows joins by sharing the registered init's pid namespace.
    sys.add(101, 1, hybrid('/custom/path'), ['x'], 'pid:[7]');
    sys.add(102, 1, hybrid('/custom/path'), ['x'], 'pid:[1]');
    sys.procs.get(100)!.cg = hybrid('/custom/path');
    assert.ok(c.discovery.sameContainer(101, id2));
    assert.ok(!c.discovery.sameContainer(102, id2), 'the host pid namespace is no container');
    const out = c.fromHook({ state: { id: H2, status: 'stopped', pid: 0 } });
    assert.equal(out.retired, true);
    assert.equal(t.get(100), null, 'retired with a process under its pid in /proc: that one is not the container');
    assert.match(
      records.at(-1)!,
      new RegExp(`^op=container-retire contid=${id2} runtime=podman .* reason=poststop routed=0 dropped=0 res=1$`),
    );
    assert.equal(c.list().find((r) => r.id === H2)?.state, 'retired');
  });

  it('contid set may join a container only for a process inside it', () => {
    const { sys, c, t } = setup();
    c.discovery.scan();
    const id = containerContid(H);
    sys.add(110, 1, hybrid(`/libpod_parent/libpod-${H}`), ['sh'], 'pid:[9]');
    assert.ok(c.discovery.sameContainer(110, id));
    assert.deepEqual(t.set(110, id, { setterPid: 1, join: true }).chain, [id]);
    sys.add(111, 1, hybrid('/'));
    assert.ok(!c.discovery.sameContainer(111, id));
  });

  it('a container whose processes are all gone is retired by the next scan; a hooked one after a grace period', () => {
    const { sys, c, records } = setup();
    c.discovery.scan();
    sys.procs.delete(51);
    const { retired } = c.discovery.scan();
    assert.deepEqual(retired, [containerContid(H)]);
    assert.match(records.at(-1)!, /op=container-retire .* reason=gone/);
    sys.add(100, 1, hybrid(`/libpod_parent/libpod-${H2}`), ['runc', 'init']);
    c.fromHook({ state: { id: H2, status: 'creating', pid: 100, annotations: { 'io.container.manager': 'libpod' } } });
    c.discovery.scan();
    sys.procs.delete(100);
    assert.deepEqual(c.discovery.scan().retired, [], 'its poststop hook may still come');
    c.discovery.graceMs = 0;
    assert.deepEqual(c.discovery.scan().retired, [containerContid(H2)]);
  });

  it('a process joining a hooked container whose cgroup no pattern knows (runc exec) gets its contid by pid namespace', () => {
    const { sys, c, t } = setup();
    const id = 'amcustom';
    // The hook registers the init of a runc container with cgroupsPath /auditmux-test/amcustom (no pattern knows it).
    sys.add(200, 1, hybrid(`/auditmux-test/${id}`), ['runc', 'init'], 'pid:[77]');
    const reg = c.fromHook({ state: { id, status: 'creating', pid: 200 } });
    assert.equal(reg.cgroupKnown, false);
    const contid = containerContid(id);
    // `runc exec`: runc (a host process) starts a process that joins the container's cgroup and pid namespace.
    sys.add(210, 1, hybrid('/'), ['runc', 'exec']);
    sys.add(211, 210, hybrid(`/auditmux-test/${id}`), ['sh'], 'pid:[77]');
    sys.add(212, 211, hybrid(`/auditmux-test/${id}`), ['echo'], 'pid:[77]');
    assert.deepEqual(t.lookup(211, 210), [contid], "the exec'd process");
    assert.deepEqual(t.lookup(212, 211), [contid], 'its child');
    assert.deepEqual(t.lookup(213, 211), [contid], 'a child gone before its event is read');
    assert.equal(t.lookup(210, 1), null, 'runc itself is a host process');
    assert.ok(c.discovery.counters.nsJoined >= 1);
    // Another process in a pid namespace of its own, and one in the host's, are not in it.
    sys.add(220, 1, hybrid(`/auditmux-test/${id}`), ['x'], 'pid:[78]');
    assert.equal(t.lookup(220, 1), null);
    // The init gone (its namespace's inode may be reused): nobody joins it any more.
    sys.procs.delete(200);
    sys.add(230, 1, hybrid('/other'), ['x'], 'pid:[77]');
    assert.equal(t.lookup(230, 1), null);
  });

  it("a pid namespace two hooked containers share (a pod) is nobody's; a known cgroup is never looked up by it", () => {
    const { sys, c, t } = setup();
    sys.add(300, 1, hybrid('/custom/a'), ['x'], 'pid:[88]');
    sys.add(301, 1, hybrid('/custom/b'), ['x'], 'pid:[88]');
    c.fromHook({ state: { id: 'ama', status: 'creating', pid: 300 } });
    c.fromHook({ state: { id: 'amb', status: 'creating', pid: 301 } });
    sys.add(310, 1, hybrid('/custom/c'), ['x'], 'pid:[88]');
    assert.equal(t.lookup(310, 1), null);
    // The podman container's init (pid namespace 9) is found by its cgroup: its namespace is not indexed.
    c.discovery.scan();
    sys.add(320, 1, hybrid('/custom/d'), ['x'], 'pid:[9]');
    assert.equal(t.lookup(320, 1), null);
  });

  it('after a restart, a restored container with no pid and no process left is retired by the first full scan', () => {
    const dir = mkdtempSync(join(tmpdir(), 'amrestore-'));
    try {
      const saved = (id: string, pid: number | null): ContainerInfo => ({
        contid: containerContid(id),
        runtime: 'podman',
        id,
        meta: { name: id.slice(0, 4) },
        source: 'cgroup',
        pid,
        pidStart: null,
        firstSeen: 1,
        lastSeen: 2,
        retired: null,
        retireReason: null,
        routed: 5,
        dropped: 0,
        hostOnly: 0,
        seenInBatch: -1,
      });
      const file = join(dir, 'containers.state');
      // H is still running (pid 51 in its cgroup) but was saved without a pid; H2 is gone; 'amgone' had a pid.
      writeFileSync(file, encodeState('boot1', [saved(H, null), saved(H2, null), saved('amgone', 9999)]).text);
      const { c, records } = setup();
      assert.equal(
        c.restore(file, (m) => assert.fail(m), 'boot1'),
        3,
      );
      const { retired } = c.discovery.scan();
      assert.deepEqual(new Set(retired), new Set([containerContid(H2), containerContid('amgone')]));
      assert.ok(c.registry.get(containerContid(H)), 'the running one stays');
      assert.match(
        records.find((r) => r.includes(`container="${H2}"`)) ?? '',
        new RegExp(
          `^op=container-retire contid=${containerContid(H2)} runtime=podman .* reason=gone routed=5 dropped=0 res=1$`,
        ),
      );
      assert.equal(records.filter((r) => r.startsWith('op=container-birth')).length, 0, 'no second birth');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('after a restart, an entry saved with a pid but no start time gives its contid to nobody (the pid may be reused)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'amrestore-'));
    try {
      const file = join(dir, 'containers.state');
      const entry = (pidStart: number | null): ContainerInfo => ({
        contid: containerContid('amgone'),
        runtime: 'podman',
        id: 'amgone',
        meta: {},
        source: 'cgroup',
        pid: 60,
        pidStart,
        firstSeen: 1,
        lastSeen: 2,
        retired: null,
        retireReason: null,
        routed: 0,
        dropped: 0,
        hostOnly: 0,
        seenInBatch: -1,
      });
      writeFileSync(file, encodeState('boot1', [entry(null)]).text);
      const { sys, c, t } = setup();
      // Pid 60 is now a host shell, outside every container.
      sys.add(60, 1, hybrid('/user.slice/user-0.slice/session-1.scope'), ['bash']);
      assert.equal(
        c.restore(file, (m) => assert.fail(m), 'boot1'),
        1,
      );
      assert.equal(t.lookup(60, 1), null, 'the host shell does not take the container\u2019s contid');
      // Saved with the start time of the process that holds the pid now: the same process, adopted.
      const st = sys.stat(60)!.starttime;
      writeFileSync(file, encodeState('boot1', [entry(st)]).text);
      const again = setup();
      again.sys.add(60, 1, hybrid('/user.slice/user-0.slice/session-1.scope'), ['bash']);
      assert.equal(
        again.c.restore(file, (m) => assert.fail(m), 'boot1'),
        1,
      );
      assert.deepEqual(again.t.lookup(60, 1), [containerContid('amgone')]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a hooked container without a pid that no full scan found goes after the grace period', () => {
    const { c } = setup();
    c.fromHook({ state: { id: 'amnopid', status: 'creating', pid: 0 } });
    c.discovery.graceMs = 60000;
    assert.deepEqual(c.discovery.scan().retired, [], 'its poststop hook may still come');
    c.discovery.graceMs = 0;
    assert.deepEqual(c.discovery.scan().retired, [containerContid('amnopid')]);
  });
});
