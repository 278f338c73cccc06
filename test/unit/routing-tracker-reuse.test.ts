// On a mainline kernel the tracker attributes events by pid: a number from another pid namespace, or a pid a
// container's process left for a host process, must never give a host process (and its session) a tenant's contid.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ContidTracker, type ContainerLookup } from '../../src/contid/tracker';
import type { ProcReader, ProcStat } from '../../src/contid/proc';
import { Pipeline } from '../../src/routing/pipeline';
import { Router } from '../../src/routing/router';
import { parseContidSelector, type ContidPattern } from '../../src/contid/selectors';
import type { EventRecord } from '../../src/records/event';

const C = 0xc0ffeen;

interface Proc extends ProcStat {
  cg: string;
}

function world(): { procs: Map<number, Proc>; pipe: Pipeline; tracker: ContidTracker } {
  const procs = new Map<number, Proc>();
  const proc: ProcReader = {
    stat: (p) => procs.get(p) ?? null,
    children: () => [],
    cgroupText: (p) => (procs.has(p) ? `0::${procs.get(p)!.cg}\n` : null),
  };
  const containers: ContainerLookup = {
    active: true,
    contidFor: (_pid, text) => (text.includes('/tenant-a') ? C : null),
    owns: (id) => id === C,
    lastSeenIn: () => null,
  };
  const tracker = new ContidTracker({ proc, containers, now: () => 1000 });
  const routes = [
    {
      index: 0,
      contid: [parseContidSelector(String(C)) as ContidPattern],
      types: null,
      keys: null,
      daemons: ['a'],
      continue: false,
      pos: { file: '<test>', line: 1 },
    },
  ];
  const pipe = new Pipeline({
    router: new Router(routes),
    tracker,
    contidKernel: false,
    daemonsWithRules: new Set(),
    keep: 'unrouted',
  });
  return { procs, pipe, tracker };
}

const syscall = (s: number, nr: number, exit: number, ppid: number, pid: number): EventRecord[] => [
  {
    type: 1300,
    payload: Buffer.from(
      `audit(${s}.000:${s}): arch=c000003e syscall=${nr} success=yes exit=${exit} a0=0 a1=0 a2=0 a3=0 items=0 ` +
        `ppid=${ppid} pid=${pid} auid=0 uid=0 comm="x" exe="/x" key="k"`,
    ),
  },
];
const user = (s: number, type: number, pid: number): EventRecord[] => [
  { type, payload: Buffer.from(`audit(${s}.000:${s}): pid=${pid} uid=0 auid=0 ses=3 msg='op=login res=success'`) },
];
const where = (pipe: Pipeline, records: EventRecord[]): string[] =>
  pipe.route(records, (_o, full) => full).destinations.map((d) => d.daemon ?? 'host');

describe('tracker: numbers that are not the process they name', () => {
  it("a container's clone exit= (its own pid namespace's number) never tags the host process of that number", () => {
    const { procs, pipe, tracker } = world();
    procs.set(400, { ppid: 1, starttime: 1, threads: 1, cg: '/system.slice/conmon' });
    procs.set(5000, { ppid: 400, starttime: 2, threads: 1, cg: '/tenant-a/ctr' });
    procs.set(812, { ppid: 1, starttime: 3, threads: 1, cg: '/system.slice/sshd.service' });
    assert.deepEqual(where(pipe, syscall(1, 59, 0, 400, 5000)), ['a'], "the container's own event");
    assert.deepEqual(where(pipe, syscall(2, 56, 812, 400, 5000)), ['a'], 'its clone, exit=812 in its namespace');
    // Old: an entry {812: tenant-a} from the clone record, and sshd's session then went to the tenant.
    assert.equal(tracker.get(812), null, 'no entry for the host sshd');
    assert.equal(tracker.counters.forkUnverified, 1);
    procs.set(9000, { ppid: 812, starttime: 4, threads: 1, cg: '/system.slice/sshd.service' });
    assert.deepEqual(where(pipe, syscall(3, 56, 9000, 1, 812)), ['host'], "sshd's clone");
    assert.deepEqual(where(pipe, syscall(4, 59, 0, 812, 9000)), ['host'], "the session's execve");
    assert.deepEqual(where(pipe, user(5, 1112, 9000)), ['host'], "the session's USER_LOGIN");
    // A real child of the container process, under its host pid, still inherits.
    procs.set(5001, { ppid: 5000, starttime: 5, threads: 1, cg: '/tenant-a/ctr' });
    where(pipe, syscall(6, 56, 5001, 400, 5000));
    assert.deepEqual(tracker.get(5001), [C]);
  });

  it("a pid a container's process left and a host process took: its user messages and its children are the host's", () => {
    const { procs, pipe, tracker } = world();
    procs.set(400, { ppid: 1, starttime: 4000, threads: 1, cg: '/system.slice/conmon' });
    procs.set(500, { ppid: 400, starttime: 5000, threads: 1, cg: '/tenant-a/x' });
    assert.deepEqual(where(pipe, syscall(1, 59, 0, 400, 500)), ['a']);
    // It exits; a host sudo under a host shell takes pid 500 before the next container scan.
    procs.set(900, { ppid: 1, starttime: 9000, threads: 1, cg: '/user.slice/session-1.scope' });
    procs.set(500, { ppid: 900, starttime: 9999, threads: 1, cg: '/user.slice/session-1.scope' });
    assert.equal(tracker.sweepGone(new Set([1, 400, 500, 900])), 0, 'the scan sees pid 500 alive');
    // Old: the host's USER_CMD went to the tenant (looked up with no parent, so the stale entry held).
    assert.deepEqual(where(pipe, user(2, 1123, 500)), ['host'], "sudo's USER_CMD");
    assert.deepEqual(where(pipe, syscall(3, 59, 0, 900, 500)), ['host'], "sudo's own SYSCALL");
    // Children of a reuser: sshd's session child takes a container process's pid; its shell and that shell's child.
    procs.set(600, { ppid: 400, starttime: 6000, threads: 1, cg: '/tenant-a/x' });
    assert.deepEqual(where(pipe, syscall(4, 59, 0, 400, 600)), ['a']);
    procs.set(800, { ppid: 1, starttime: 8000, threads: 1, cg: '/system.slice/sshd.service' });
    procs.set(600, { ppid: 800, starttime: 60001, threads: 1, cg: '/system.slice/sshd.service' });
    procs.set(601, { ppid: 600, starttime: 60002, threads: 1, cg: '/user.slice/session-2.scope' });
    tracker.sweepGone(new Set(procs.keys()));
    // Old: both went to the tenant, inheriting the stale entry of pid 600.
    assert.deepEqual(where(pipe, syscall(5, 59, 0, 600, 601)), ['host'], "the admin's shell");
    procs.set(602, { ppid: 601, starttime: 60003, threads: 1, cg: '/user.slice/session-2.scope' });
    assert.deepEqual(where(pipe, syscall(6, 59, 0, 601, 602)), ['host'], "the shell's cat");
  });
});
