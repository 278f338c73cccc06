// Container discovery while a pid changes hands between its reads: each record is one process's, never the next's.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ContidTracker } from '../../src/contid/tracker';
import { ContainerDiscovery } from '../../src/containers/discovery';
import { ContainerRegistry } from '../../src/containers/registry';
import type { ContainerMeta } from '../../src/containers/metadata';
import { containerContid } from '../../src/contid/derive';
import { FakeSystem, v2 } from '../helpers/fake-proc';

const ID = 'c'.repeat(64);
const IN_CONTAINER = v2(`/system.slice/docker-${ID}.scope`);
const HOST_SESSION = v2('/user.slice/user-1000.slice/session-3.scope');

/** A FakeSystem whose docker metadata read of ID runs `during` first (what happens on the host while it reads). */
class SlowMetaSystem extends FakeSystem {
  during: (() => void) | null = null;
  dockerMeta(id: string): ContainerMeta | null {
    const f = id === ID ? this.during : null;
    if (f) this.during = null;
    f?.();
    return { name: 'web' };
  }
}

/** A FakeSystem running `beforeCgroupRead` before each cgroup read (a pid changing hands between the scan's reads). */
class HandoverSystem extends FakeSystem {
  beforeCgroupRead: ((pid: number) => void) | null = null;
  override cgroupText(pid: number): string | null {
    this.beforeCgroupRead?.(pid);
    return super.cgroupText(pid);
  }
}

/**
 * pid P, a container process, exits during the metadata read and a host user's process takes the pid: its
 * `unshare -Urp --fork` (pid namespace 777) also holds VICTIM there.
 */
function system(): SlowMetaSystem {
  const sys = new SlowMetaSystem();
  sys.put(1, { ppid: 0, cg: v2('/') });
  sys.put(100, { ppid: 1, cg: v2('/system.slice/containerd.service') });
  sys.put(4000, { ppid: 100, cg: IN_CONTAINER });
  sys.put(4242, { ppid: 4000, cg: IN_CONTAINER });
  sys.during = () => {
    sys.procs.set(4242, {
      ppid: 1,
      starttime: 999_999,
      threads: 1,
      cg: HOST_SESSION,
      argv: ['unshare'],
      ns: 'pid:[777]',
    });
    sys.put(9000, { ppid: 4242, cg: HOST_SESSION, ns: 'pid:[777]' });
  };
  return sys;
}

describe('container discovery: a pid reused during the metadata read', () => {
  it("the scan's registration keeps the classified process or none, never the next holder", () => {
    // Old: registered with pid 4242 and the host process's start time 999999; its pid namespace became the tenant's.
    const sys = system();
    sys.procs.delete(4000); // P is the first of the container's processes the scan reads
    const reg = new ContainerRegistry({});
    const d = new ContainerDiscovery(reg, sys);
    d.scan();
    const c = reg.get(containerContid(ID));
    assert.ok(c, 'the container is registered');
    assert.ok(c.pidStart === null || c.pidStart === 42420, `pidStart ${c.pidStart}`);
    assert.ok(c.pid === null || c.pidStart === 42420);
    assert.equal(d.contidFor(9000), null, "a host user's process in the next holder's pid namespace");
  });

  it("a first sighting through the tracker's lookup keeps the classified process or none", () => {
    const sys = system();
    const reg = new ContainerRegistry({});
    const d = new ContainerDiscovery(reg, sys);
    const t = new ContidTracker({ proc: sys, containers: d });
    // Another container already known: the tracker looks processes up.
    const OTHER = 'd'.repeat(64);
    sys.put(5000, { ppid: 100, cg: v2(`/system.slice/docker-${OTHER}.scope`) });
    assert.equal(d.contidFor(5000), containerContid(OTHER));
    assert.deepEqual(t.lookup(4242, 4000), [containerContid(ID)]);
    const c = reg.get(containerContid(ID));
    assert.ok(c);
    assert.ok(c.pidStart === null || c.pidStart === 42420, `pidStart ${c.pidStart}`);
    assert.equal(d.contidFor(9000), null);
    assert.equal(t.lookup(9000, 4242), null);
  });

  it('without a reuse the classified process is the registered one', () => {
    const sys = system();
    sys.during = null;
    const reg = new ContainerRegistry({});
    new ContainerDiscovery(reg, sys).scan();
    const c = reg.get(containerContid(ID));
    assert.ok(c && c.pid !== null);
    assert.equal(c.pidStart, c.pid * 10);
  });
});

describe("container discovery: a pid that changes hands between the scan's reads", () => {
  it("the scan never pairs one process's parent and start time with another's container", () => {
    // Old: pid 7777 was recorded with the host shell 300 as parent and the container's contid, so the host shell's
    // command's late records (the process gone from /proc) were routed to the tenant by lastSeenIn.
    const sys = new HandoverSystem();
    sys.put(1, { ppid: 0, cg: v2('/') });
    sys.put(300, { ppid: 1, cg: HOST_SESSION });
    sys.put(4000, { ppid: 100, cg: IN_CONTAINER });
    sys.put(7777, { ppid: 300, cg: HOST_SESSION });
    sys.beforeCgroupRead = (pid) => {
      if (pid !== 7777) return;
      sys.beforeCgroupRead = null;
      sys.procs.set(7777, {
        ppid: 4000,
        starttime: 999_999,
        threads: 1,
        cg: IN_CONTAINER,
        argv: ['sh'],
        ns: 'pid:[9]',
      });
    };
    const d = new ContainerDiscovery(new ContainerRegistry({}), sys);
    d.scan();
    assert.ok(d.owns(containerContid(ID)), 'the container is known (its init was scanned)');
    assert.equal(d.lastSeenIn(7777, 300), null);
    // The next scan reads the pid's new holder whole.
    d.scan();
    assert.equal(d.lastSeenIn(7777, 4000), containerContid(ID));
    assert.equal(d.lastSeenIn(7777, 300), null);
  });
});
