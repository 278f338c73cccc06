// The mainline contid tracker: the patch set's set rules, inheritance, pid reuse, cgroup mapping, chain text.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ContidTracker, RETIRE_GRACE_MS, SWEEP_GRACE_MS } from '../../src/contid/tracker';
import { ContidError } from '../../src/contid/errors';
import { formatChain, parseChain, parseChains, parseChainsAt } from '../../src/contid/chain';
import type { ProcReader, ProcStat } from '../../src/contid/proc';
import { parseProcStat } from '../../src/contid/proc';
import { AUDIT_CID_UNSET } from '../../src/kernel/constants';
import { compileCgroupGlob } from '../../src/contid/cgroup-glob';
import { intBelow, prng } from '../helpers/prng';

class FakeProc implements ProcReader {
  procs = new Map<number, ProcStat & { cgroup?: string }>();
  /** Every /proc read, by kind, to count what a lookup costs. */
  reads = { stat: 0, cgroup: 0 };
  add(pid: number, ppid: number, extra: Partial<ProcStat & { cgroup: string }> = {}): void {
    this.procs.set(pid, {
      ppid,
      starttime: extra.starttime ?? pid * 10,
      threads: extra.threads ?? 1,
      ...(extra.cgroup ? { cgroup: extra.cgroup } : {}),
    });
  }
  stat(pid: number): ProcStat | null {
    this.reads.stat++;
    return this.procs.get(pid) ?? null;
  }
  children(pid: number): number[] {
    return [...this.procs].filter(([, s]) => s.ppid === pid).map(([p]) => p);
  }
  /** The path alone: what older trackers read besides the text (kept so the cost tests compare like with like). */
  cgroup(pid: number): string | null {
    this.reads.cgroup++;
    return this.procs.get(pid)?.cgroup ?? '/';
  }
  cgroupText(pid: number): string | null {
    this.reads.cgroup++;
    const p = this.procs.get(pid);
    return p ? `5:pids:/v1-only\n0::${p.cgroup ?? '/'}\n` : null;
  }
}

function setup(): { proc: FakeProc; t: ContidTracker; now: { v: number } } {
  const proc = new FakeProc();
  const now = { v: 1000 };
  proc.add(1, 0);
  proc.add(100, 1); // orchestrator
  proc.add(200, 100);
  proc.add(300, 100);
  return { proc, t: new ContidTracker({ proc, now: () => now.v }), now };
}

const code = (e: unknown): string => (e as ContidError).errnoName;

describe('contid tracker: setting an id follows the patch set', () => {
  it('sets, and refuses unset, self, busy, already-set and non-unique ids with the patch set errno', () => {
    const { proc, t } = setup();
    assert.deepEqual(t.set(200, 7n, { setterPid: 100 }).chain, [7n]);
    assert.throws(
      () => t.set(300, AUDIT_CID_UNSET, { setterPid: 100 }),
      (e) => code(e) === 'EINVAL',
    );
    assert.throws(
      () => t.set(100, 8n, { setterPid: 100 }),
      (e) => code(e) === 'EXDEV',
    );
    assert.throws(
      () => t.set(100, 8n, { setterPid: 1 }),
      (e) => code(e) === 'EBUSY',
    ); // has children
    proc.add(400, 1, { threads: 3 });
    assert.throws(
      () => t.set(400, 8n, { setterPid: 1 }),
      (e) => code(e) === 'EBUSY',
    ); // threads
    assert.throws(
      () => t.set(200, 9n, { setterPid: 100 }),
      (e) => code(e) === 'EEXIST',
    );
    assert.throws(
      () => t.set(300, 7n, { setterPid: 100 }),
      (e) => code(e) === 'ENOTUNIQ',
    );
    assert.throws(
      () => t.set(999, 5n, { setterPid: 100 }),
      (e) => code(e) === 'ESRCH',
    );
  });

  it('nests: a second id on a tagged process makes the chain child,^parent', () => {
    const { t } = setup();
    t.set(200, 7n, { setterPid: 100 });
    const r = t.set(200, 70n, { setterPid: 100, nested: true });
    assert.deepEqual(r.old, [7n]);
    assert.deepEqual(r.chain, [70n, 7n]);
    assert.equal(formatChain(r.chain), '70,^7');
  });
});

describe('contid tracker: inheritance and pid reuse', () => {
  it('children inherit through fork records, SYSCALL ppid, and /proc ancestry', () => {
    const { proc, t } = setup();
    t.set(200, 7n, { setterPid: 100 });
    t.onFork(200, 201);
    assert.deepEqual(t.lookup(201, 200), [7n]);
    assert.deepEqual(t.lookup(202, 200), [7n], 'ppid of the SYSCALL record');
    proc.add(210, 200);
    proc.add(211, 210);
    assert.deepEqual(t.lookup(211, 210), [7n], 'grandchild found through /proc');
    assert.equal(t.lookup(300, 100), null);
  });

  it('an exit or a different start time under the same pid drops the id', () => {
    const { proc, t } = setup();
    t.set(200, 7n, { setterPid: 100 });
    t.onExit(200);
    assert.equal(t.get(200), null);
    t.set(300, 8n, { setterPid: 100 });
    proc.add(300, 1, { starttime: 99999 }); // reused pid
    assert.equal(t.sweep(), 1);
    assert.equal(t.get(300), null);
    assert.equal(t.counters.reuseDetected, 1);
  });

  it('a process gone from /proc keeps its id for SWEEP_GRACE_MS: its last records, read late, are still routed', () => {
    const { proc, t, now } = setup();
    proc.add(400, 100);
    t.set(400, 9n, { setterPid: 100 });
    t.onFork(400, 401);
    proc.procs.delete(400); // exited; its last events (and its children's) are still in the kernel's backlog
    proc.procs.delete(401);
    assert.equal(t.sweep(), 0);
    now.v += SWEEP_GRACE_MS - 1;
    assert.equal(t.sweep(), 0);
    assert.deepEqual(t.lookup(400, 100), [9n], 'a late event of the gone process keeps its contid');
    assert.deepEqual(t.lookup(401, 400), [9n]);
    now.v += 1;
    assert.equal(t.sweep(), 2, 'dropped once gone for the whole grace');
    assert.equal(t.get(400), null);
    // A pid seen gone and then reused within the grace is another process: its entry goes, even one without a start
    // time (inherited by fork), which would otherwise take the new process's.
    t.set(200, 10n, { setterPid: 100 });
    t.onFork(200, 402);
    assert.equal(t.sweep(), 0);
    proc.add(402, 1);
    assert.equal(t.sweep(), 1);
    assert.equal(t.get(402), null);
  });

  it('without the sweep, the scan pid list bounds the entries: gone ones go after the grace, reused ones at once', () => {
    const { proc, t, now } = setup();
    // A long-lived process and 2000 short-lived children, each with an entry (as a container's, from their events).
    t.set(200, 7n, { setterPid: 100 });
    for (let pid = 1000; pid < 3000; pid++) t.onFork(200, pid);
    assert.equal(t.size, 2001);
    const alive = (): Set<number> => new Set(proc.procs.keys());
    let reads = proc.reads.stat;
    assert.equal(t.sweepGone(alive()), 0, 'gone, but within the grace: their late records still route');
    assert.equal(proc.reads.stat, reads, 'no /proc read: the scan already listed every pid');
    assert.deepEqual(t.lookup(1500, 200), [7n]);
    now.v += SWEEP_GRACE_MS;
    reads = proc.reads.stat;
    assert.equal(t.sweepGone(alive()), 2000);
    assert.equal(proc.reads.stat, reads);
    assert.equal(t.size, 1, 'the live process keeps its entry');
    assert.deepEqual(t.get(200), [7n]);
    // Seen gone, then listed again within the grace: another process under the reused pid.
    t.onFork(200, 3001);
    assert.equal(t.sweepGone(alive()), 0);
    proc.add(3001, 1);
    assert.equal(t.sweepGone(alive()), 1);
    assert.equal(t.get(3001), null);
    assert.equal(t.counters.reuseDetected, 1);
  });

  it('a pid found gone and in /proc again is another process at once: no contid for it or its children', () => {
    const { proc, t, now } = setup();
    t.set(200, 7n, { setterPid: 100 });
    t.onFork(200, 601);
    t.onFork(200, 602);
    t.onFork(200, 603);
    t.sweepGone(new Set([1, 100, 200, 300])); // 601-603 exited: marked gone, their late records still route
    assert.deepEqual(t.lookup(601, 200), [7n]);
    // Before any tick, the pids are reused by host processes (parent 1 and 300, and 603 under the same parent).
    proc.add(601, 1);
    proc.add(602, 300);
    proc.add(603, 200);
    assert.equal(t.lookup(601, 1), null, 'the reuser, whatever its parent');
    assert.equal(t.lookup(700, 602), null, "a reuser's child, by its record's parent");
    t.onFork(603, 701);
    assert.equal(t.get(701), null, "a reuser's clone record makes no entry");
    assert.equal(t.lookup(701, 603), null);
    assert.equal(t.counters.reuseDetected, 3);
    // A clock stepped back ends the grace instead of holding the entries until it catches up.
    t.onFork(200, 604);
    t.sweepGone(new Set([1, 100, 200, 300]));
    now.v -= 3_600_000;
    assert.equal(t.sweepGone(new Set([1, 100, 200, 300])), 1);
    assert.equal(t.get(604), null);
  });

  it("a retired container's gone processes keep their entries until its grace ends; one in /proc goes at once", () => {
    const { proc, t, now } = setup();
    proc.add(600, 100);
    t.adopt(600, 9n, 6000);
    t.onFork(600, 601);
    assert.deepEqual(t.lookup(602, 601), [9n]);
    t.adopt(300, 9n, 3000); // still in /proc at its retirement: left behind, or its pid is another process's already
    t.set(200, 9n, { setterPid: 100 }); // `contid set` ids are not the container's to retire
    proc.procs.delete(600);
    const retiredAt = now.v;
    t.retireContid(9n, retiredAt);
    assert.equal(t.get(300), null);
    assert.deepEqual(t.get(200), [9n]);
    for (const pid of [600, 601, 602]) assert.deepEqual(t.get(pid), [9n], `pid ${pid}`);
    // A late fork record of one of them: the child is the container's, gone too.
    t.onFork(602, 603);
    assert.deepEqual(t.lookup(604, 603), [9n]);
    // The same contid live again (a restart): its new processes' entries are not the old life's.
    now.v += 1000;
    proc.add(700, 100);
    t.adopt(700, 9n, 7000);
    t.onFork(700, 701);
    assert.equal(t.checkRetired(), 0, 'all gone: nothing to drop');
    now.v = retiredAt + RETIRE_GRACE_MS;
    t.endRetirements(new Map([[9n, { live: true, retiredAt }]]));
    for (const pid of [600, 601, 602, 603, 604]) assert.equal(t.get(pid), null, `pid ${pid} of the old life`);
    assert.deepEqual([t.get(700), t.get(701), t.get(200)], [[9n], [9n], [9n]]);
    // Retired for good: every entry of the container goes, never a `contid set` one.
    t.retireContid(9n, now.v);
    t.endRetirements(new Map([[9n, { live: false, retiredAt: now.v }]]));
    assert.deepEqual([t.get(700), t.get(701), t.get(200)], [null, null, [9n]]);
  });

  it("a retired container's entries: the sweep keeps them as long, and a pid back in /proc is another process", () => {
    const { proc, t, now } = setup();
    proc.add(600, 100);
    t.adopt(600, 9n, 6000);
    t.onFork(600, 601); // no start time: only its absence from /proc at the retirement says it was the container's
    t.onFork(600, 602);
    proc.procs.delete(600);
    t.retireContid(9n, now.v);
    now.v += RETIRE_GRACE_MS - 1;
    assert.equal(t.sweep(), 0);
    // 601 comes back as another process, child of a host process: checkRetired (every tick) drops its entry.
    proc.add(601, 100);
    const reuse = t.counters.reuseDetected;
    assert.equal(t.checkRetired(), 1);
    assert.equal(t.counters.reuseDetected, reuse + 1);
    assert.equal(t.lookup(601, 100), null);
    // 602 comes back too, and before any tick a grandchild of it has an event: the /proc walk meets the entry of a
    // process found gone under a pid /proc shows again, and does not take it.
    proc.add(602, 100);
    proc.add(610, 602);
    proc.add(611, 610);
    assert.equal(t.lookup(611, 610), null);
    assert.equal(t.counters.reuseDetected, reuse + 2);
    now.v += 1;
    assert.equal(t.sweep(), 1, 'the sweep drops the rest at the same grace');
    assert.equal(t.size, 0);
  });

  it('caches "not in a container" answers briefly, then asks /proc again', () => {
    const { proc, t, now } = setup();
    t.set(200, 7n, { setterPid: 100 });
    proc.add(500, 1);
    assert.equal(t.lookup(500, 1), null);
    const lookups = t.counters.procLookups;
    assert.equal(t.lookup(500, 1), null);
    assert.equal(t.counters.procLookups, lookups, 'cached');
    now.v += 5000;
    proc.add(500, 200); // pid 500 now a child of the tagged process
    assert.deepEqual(t.lookup(500, 999), [7n]);
  });

  it('maps cgroups to ids for processes never tagged', () => {
    const proc = new FakeProc();
    proc.add(1, 0);
    proc.add(600, 1, { cgroup: '/system.slice/docker-abc.scope' });
    const g = compileCgroupGlob('/system.slice/docker-*.scope');
    assert.ok(typeof g !== 'string');
    const t = new ContidTracker({
      proc,
      cgroupMap: [{ ...g, contid: 42n }],
    });
    assert.deepEqual(t.lookup(600, 1), [42n]);
  });

  it('a miss on a live process walks /proc once and reads its cgroup once (not again through its parent)', () => {
    const proc = new FakeProc();
    proc.add(1, 0);
    proc.add(10, 1);
    proc.add(11, 10);
    proc.add(12, 11);
    const g = compileCgroupGlob('/nomatch');
    assert.ok(typeof g !== 'string');
    // A live container somewhere (not this process's): lookups are on.
    const containers = {
      active: true,
      contidFor: (): bigint | null => null,
      owns: (): boolean => false,
      lastSeenIn: (): bigint | null => null,
    };
    const t = new ContidTracker({ proc, containers, cgroupMap: [{ ...g, contid: 42n }] });
    proc.reads = { stat: 0, cgroup: 0 };
    assert.equal(t.lookup(12, 11), null);
    assert.deepEqual(proc.reads, { stat: 4, cgroup: 1 }, 'stat of 12, 11, 10; cgroup of 12, then 12 again');
  });

  it('a pid that changed hands between its stat and its cgroup read gets no contid from that read', () => {
    const proc = new FakeProc();
    proc.add(1, 0);
    proc.add(10, 1);
    proc.add(12, 10, { starttime: 100 });
    const g = compileCgroupGlob('/system.slice/tenant.scope');
    assert.ok(typeof g !== 'string');
    // The process asked about (a host process, start 100) exits while it is looked up; the pid's next holder is in
    // the tenant's cgroup: its cgroup text must not be given to the event of the first.
    const cgroupText = proc.cgroupText.bind(proc);
    proc.cgroupText = (pid: number): string | null => {
      if (pid === 12) proc.add(12, 10, { starttime: 200 });
      return pid === 12 ? '0::/system.slice/tenant.scope\n' : cgroupText(pid);
    };
    const t = new ContidTracker({ proc, cgroupMap: [{ ...g, contid: 42n }] });
    assert.equal(t.lookup(12, 10), null);
  });

  it('a negative answer holds only for the same parent: a reused pid is asked again', () => {
    const proc = new FakeProc();
    proc.add(1, 0);
    proc.add(500, 1);
    const g = compileCgroupGlob('/ctr');
    assert.ok(typeof g !== 'string');
    const t = new ContidTracker({ proc, cgroupMap: [{ ...g, contid: 42n }] });
    assert.equal(t.lookup(500, 1), null);
    proc.add(600, 1, { cgroup: '/ctr' });
    proc.add(500, 600, { cgroup: '/ctr' }); // the pid came back in the container, as a child of its shell
    assert.deepEqual(t.lookup(500, 600), [42n]);
  });
});

describe('contid text forms', () => {
  it('parses task chains and netns lists; formats unset as -1', () => {
    assert.deepEqual(parseChain('4,^2,^1'), [4n, 2n, 1n]);
    assert.equal(parseChain('4,2'), null);
    assert.deepEqual(parseChains('2,^1,3,^1'), [
      [2n, 1n],
      [3n, 1n],
    ]);
    assert.deepEqual(parseChains('123452,123451'), [[123452n], [123451n]]);
    assert.equal(parseChains('^1'), null);
    assert.equal(formatChain([AUDIT_CID_UNSET]), '-1');
    assert.equal(formatChain([18446744073709551614n, 1n]), '18446744073709551614,^1');
  });

  it('never throws on generated chain text (property)', () => {
    const next = prng(12345);
    const rnd = (n: number): number => intBelow(next, n);
    const alphabet = ['0', '1', '9', ',', '^', '-', 'x', ' ', '18446744073709551615'];
    for (let i = 0; i < 5000; i++) {
      let s = '';
      for (let j = rnd(12); j >= 0; j--) s += alphabet[rnd(alphabet.length)];
      const chains = parseChains(s);
      if (chains) for (const c of chains) assert.ok(c.length >= 1 && c.every((v) => typeof v === 'bigint'));
      const one = parseChain(s);
      if (one) assert.equal(parseChain(formatChain(one))?.join(), one.join());
    }
  });

  it('refuses ids above 2^64-1 with the position of the bad one; 2^64-1 itself is accepted', () => {
    assert.deepEqual(parseChains('18446744073709551615'), [[AUDIT_CID_UNSET]]);
    assert.equal(parseChains('18446744073709551616'), null);
    assert.equal(parseChains('99999999999999999999,^1'), null);
    assert.equal(parseChain('4,^18446744073709551616'), null);
    assert.deepEqual(parseChainsAt('4,^2,^18446744073709551616'), {
      offset: 6,
      reason: 'contid 18446744073709551616 is above 2^64-1',
    });
    assert.deepEqual(parseChainsAt('2,^1,99999999999999999999,^1'), {
      offset: 5,
      reason: 'contid 99999999999999999999 is above 2^64-1',
    });
    assert.deepEqual(parseChainsAt('^1'), { offset: 0, reason: '"^" (nested in) needs a contid before it' });
  });

  it('property: a generated list parses iff every id is at most 2^64-1, and the offset names the first bad id (seeded)', () => {
    const next = prng(0xc0471d);
    const rnd = (n: number): number => intBelow(next, n);
    const u64 = (): bigint => (BigInt(rnd(2 ** 32)) << 32n) | BigInt(rnd(2 ** 32));
    for (let i = 0; i < 5000; i++) {
      const ids: bigint[] = [];
      const parts: string[] = [];
      for (let j = rnd(6); j >= 0; j--) {
        // Mostly valid ids, some just above the u64 range, some far above (still at most 20 digits).
        const k = rnd(10);
        const v = k < 7 ? u64() : k < 9 ? AUDIT_CID_UNSET + 1n + BigInt(rnd(1000)) : 10n ** 19n * BigInt(2 + rnd(8));
        ids.push(v);
        parts.push((j === 0 || parts.length === 0 || rnd(2) ? '' : '^') + v.toString());
      }
      const text = parts.join(',');
      const firstBad = ids.findIndex((v) => v > AUDIT_CID_UNSET);
      const r = parseChainsAt(text);
      if (firstBad < 0) {
        assert.ok('chains' in r, text);
        assert.deepEqual(r.chains.flat(), ids, text);
        assert.deepEqual(parseChains(formatChain(r.chains[0]!)), [r.chains[0]!.map((v) => v)], text);
      } else {
        assert.ok(!('chains' in r), `${text}: accepted ${ids[firstBad]}`);
        assert.ok(text.slice(r.offset).startsWith(ids[firstBad]!.toString()), `${text}: offset ${r.offset}`);
        assert.equal(parseChains(text), null);
      }
    }
  });

  it('reads /proc/PID/stat even when comm holds spaces and parentheses', () => {
    const st = parseProcStat('1234 (a (b) c) S 77 1234 1234 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 3 0 5555 0 0');
    assert.deepEqual(st, { ppid: 77, threads: 3, starttime: 5555 });
  });
});
