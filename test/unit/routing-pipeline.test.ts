// The host's per-event routing: contid from kernel records or the tracker, owner tags, key rewriting, host keep modes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config';
import { Router } from '../../src/routing/router';
import { ContidTracker } from '../../src/contid/tracker';
import { Pipeline, OWNER_TAG_PREFIX, TRACK_KEY } from '../../src/routing/pipeline';
import {
  appendBytes,
  decodeKeys,
  encodeKeys,
  fieldInt,
  fieldText,
  replaceField,
  stampEnd,
} from '../../src/records/fields';
import type { ProcReader } from '../../src/contid/proc';
import { AUDITMUX_CONTAINER_ID } from '../../src/kernel/constants';
import { intBelow, prng } from '../helpers/prng';

const cfg = parseConfig(
  `
daemons:
  - { name: a, rules: /dev/null, log: { file: /tmp/am-pa.log } }
  - { name: b, log: { file: /tmp/am-pb.log } }
routes:
  - { contid: 100, daemons: [a] }
  - { contid: 200, daemons: [b] }
`,
  '/tmp/am-pipe.yaml',
);

const noProc: ProcReader = {
  stat: (pid) => (pid === 1000 ? { ppid: 1, starttime: 5, threads: 1 } : null),
  children: () => [],
  cgroupText: () => null,
};

function sys(
  serial: number,
  pid: number,
  ppid: number,
  key: string,
  syscall = 110,
  exit = 0,
): { type: number; payload: Buffer } {
  return {
    type: 1300,
    payload: Buffer.from(
      `audit(1700000000.000:${serial}): arch=c000003e syscall=${syscall} success=yes exit=${exit} ppid=${ppid} pid=${pid} auid=0 comm="x" key=${key}`,
    ),
  };
}
const title = (serial: number): { type: number; payload: Buffer } => ({
  type: 1327,
  payload: Buffer.from(`audit(1700000000.000:${serial}): proctitle=78`),
});

function pipeline(contidKernel = false, keep: 'all' | 'unrouted' = 'unrouted'): { p: Pipeline; t: ContidTracker } {
  const t = new ContidTracker({ proc: noProc });
  return {
    t,
    p: new Pipeline({
      router: new Router(cfg.routes),
      tracker: t,
      contidKernel,
      daemonsWithRules: new Set(['a']),
      keep,
    }),
  };
}

describe('event fields', () => {
  it('reads fields at boundaries only, decodes and encodes keys like the kernel', () => {
    const p = Buffer.from('audit(1.000:1): pid=5 ppid=4 key="k" exe="/a b"');
    assert.equal(fieldInt(p, 'pid'), 5);
    assert.equal(fieldInt(p, 'ppid'), 4);
    assert.equal(fieldText(p, 'exe'), '"/a b"');
    assert.deepEqual(decodeKeys('"k"'), ['k']);
    assert.deepEqual(decodeKeys('(null)'), []);
    assert.deepEqual(decodeKeys(encodeKeys(['a', 'b'])), ['a', 'b']);
    assert.equal(encodeKeys(['a', 'b']), '610162');
    assert.equal(replaceField(p, 'key', '(null)').toString(), 'audit(1.000:1): pid=5 ppid=4 key=(null) exe="/a b"');
  });
  it('reads and replaces fields of 2000 generated records as a key=value split of the text does', () => {
    const next = prng(0x5eed);
    const names = ['pid', 'ppid', 'key', 'exe', 'syscall', 'exit', 'a0', 'comm', 'auid'];
    const value = (): string => {
      switch (intBelow(next, 4)) {
        case 0:
          return String(intBelow(next, 100000) - 50);
        case 1:
          return `"${'ab /x'.slice(0, 1 + intBelow(next, 5))}"`;
        case 2:
          return '(null)';
        default:
          return 'DEADBEEF'.slice(0, 2 + 2 * intBelow(next, 3));
      }
    };
    for (let n = 0; n < 2000; n++) {
      const fields: Array<[string, string]> = [];
      const used = new Set<string>();
      for (let k = 0; k < 1 + intBelow(next, 8); k++) {
        const name = names[intBelow(next, names.length)]!;
        if (used.has(name)) continue;
        used.add(name);
        fields.push([name, value()]);
      }
      const stamp = `audit(1700000000.${String(intBelow(next, 1000)).padStart(3, '0')}:${n}): `;
      const join = (fs: Array<[string, string]>): string => stamp + fs.map(([k, v]) => `${k}=${v}`).join(' ');
      const text = join(fields);
      const p = Buffer.from(text, 'latin1');
      for (const name of names) {
        const f = fields.find(([k]) => k === name);
        assert.equal(fieldText(p, name), f?.[1], `${text} ${name}`);
        assert.equal(fieldInt(p, name), f && /^-?\d+$/.test(f[1]) ? Number(f[1]) : undefined, `${text} ${name}`);
        const nv = value();
        const expected = join(fields.map(([k, v]) => [k, k === name ? nv : v]));
        assert.equal(replaceField(p, name, nv).toString('latin1'), expected, `${text} ${name}`);
      }
    }
  });
});

describe('event fields: the stamp and an appended field, byte for byte (fixed seed)', () => {
  it('stampEnd and appendBytes give what the text forms give on 3000 generated payloads', () => {
    const next = prng(0xc0de);
    const pieces = ['audit(', 'audit(1700000000.123:45)', ': ', 'pid=5', ')', 'x', '\u00e9', ' key="k"', '\0'];
    for (let n = 0; n < 3000; n++) {
      let text = intBelow(next, 4) === 0 ? '' : 'audit(1700000000.000:1): arch=c000003e';
      for (let k = intBelow(next, 6); k > 0; k--) text += pieces[intBelow(next, pieces.length)]!;
      const p = Buffer.from(text, 'latin1');
      // The text forms: the stamp is everything up to the first ')' of a payload that begins `audit(`.
      const close = text.indexOf(')');
      const stamp = text.startsWith('audit(') && close >= 0 ? text.slice(0, close + 1) : undefined;
      const end = stampEnd(p);
      assert.equal(end < 0 ? undefined : p.toString('latin1', 0, end), stamp, JSON.stringify(text));
      const field = intBelow(next, 2) === 0 ? 'record=1' : 'x=\u00ff';
      const expected = `${text.replace(/\0+$/, '')} ${field}`;
      assert.equal(
        appendBytes(p, Buffer.from(` ${field}`, 'latin1')).toString('latin1'),
        expected,
        JSON.stringify(text),
      );
    }
  });
});

describe('pipeline on a mainline kernel (tracker)', () => {
  it('routes a tagged tree to its daemon with a CONTAINER_ID record and without the owner tag', () => {
    const { p, t } = pipeline();
    t.set(1000, 100n, { setterPid: 1 });
    const tagged = encodeKeys(['mykey', `${OWNER_TAG_PREFIX}a`]);
    const routed = p.route([sys(5, 1000, 1, tagged), title(5)]);
    // The chain comes back with the destinations (per-container counters), not through a field read afterwards.
    assert.deepEqual(routed.chain, [100n]);
    assert.equal(p.route([sys(6, 1001, 1, '"x"')]).chain, null, 'an untagged process has no chain');
    const out = routed.destinations;
    assert.deepEqual(
      out.map((d) => d.daemon),
      ['a'],
    );
    const recs = out[0]!.records;
    assert.equal(recs[0]!.type, AUDITMUX_CONTAINER_ID);
    assert.equal(recs[0]!.payload.toString(), 'audit(1700000000.000:5): record=1 contid=100');
    assert.match(recs[1]!.payload.toString(), / key="mykey" record=1$/);
    assert.equal(recs.length, 3);
  });

  it('a daemon with rules gets only events its rules produced; one without rules gets everything routed', () => {
    const { p, t } = pipeline();
    t.set(1000, 100n, { setterPid: 1 });
    assert.deepEqual(
      p.route([sys(6, 1000, 1, '"hostkey"')]).destinations.map((d) => d.daemon),
      [null],
      'no tag for a: host keeps it',
    );
    t.set(1000, 200n, { setterPid: 1, nested: true });
    const out = p.route([sys(7, 1000, 1, '"x"')]).destinations;
    assert.deepEqual(
      out.map((d) => d.daemon),
      ['b'],
      'chain 200,^100: route 200 matches, and b has no rule set',
    );
  });

  it('children inherit through fork records; exits drop the id; tracking-only events are not logged', () => {
    const { p, t } = pipeline();
    t.set(1000, 200n, { setterPid: 1 });
    const fork = p.route([sys(8, 1000, 1, `"${TRACK_KEY}"`, 56, 1234)]).destinations;
    assert.deepEqual(
      fork.map((d) => d.daemon),
      ['b'],
      'routed to b, not written to the host log',
    );
    assert.deepEqual(t.get(1234), [200n]);
    p.route([sys(9, 1234, 1000, `"${TRACK_KEY}"`, 231, 0)]);
    assert.equal(t.get(1234), null);
    assert.equal(p.counters.trackingOnly, 2);
  });

  it('a route that throws part-way counts nothing; the same event routed again is counted once', () => {
    const { p, t } = pipeline(false, 'all');
    t.set(1000, 200n, { setterPid: 1 });
    // Owner-tagged keys are rewritten per destination: the host's keys are asked for after b's event was shaped.
    const ev = [sys(12, 1000, 1, encodeKeys(['k', `${OWNER_TAG_PREFIX}b`])), title(12)];
    const before = { ...p.counters };
    assert.throws(
      () =>
        p.route(ev, (owner, full) => {
          if (owner === null) throw new Error('injected fault');
          return full.filter((k) => !k.startsWith(OWNER_TAG_PREFIX));
        }),
      /injected fault/,
    );
    assert.deepEqual(p.counters, before, 'nothing counted for the route that threw');
    const routed = p.route(ev, (_owner, full) => full.filter((k) => !k.startsWith(OWNER_TAG_PREFIX)));
    assert.deepEqual(routed.destinations.map((d) => d.daemon).sort(), [null, 'b'].sort());
    assert.deepEqual(p.counters, { ...before, events: 1, routed: 1, withContid: 1 });
  });

  it('keep=all writes everything to the host log too', () => {
    const { p, t } = pipeline(false, 'all');
    t.set(1000, 200n, { setterPid: 1 });
    assert.deepEqual(
      p
        .route([sys(10, 1000, 1, '"k"')])
        .destinations.map((d) => d.daemon)
        .sort(),
      [null, 'b'].sort(),
    );
  });

  it('destinations without a key of their own share one shaped event; owner tags still give each its own keys', () => {
    const { p, t } = pipeline(false, 'all');
    t.set(1000, 200n, { setterPid: 1 });
    const out = p.route([sys(11, 1000, 1, '"k"'), title(11)]).destinations;
    assert.deepEqual(
      out.map((d) => d.daemon),
      ['b', null],
    );
    // One CONTAINER_ID record and one SYSCALL copy for both: the same array, not two equal ones.
    assert.equal(out[0]!.records, out[1]!.records);
    const recs = out[0]!.records.map((r) => r.payload.toString());
    assert.deepEqual(recs, [
      'audit(1700000000.000:11): record=1 contid=200',
      'audit(1700000000.000:11): arch=c000003e syscall=110 success=yes exit=0 ppid=1 pid=1000 auid=0 comm="x" key="k" record=1',
      'audit(1700000000.000:11): proctitle=78',
    ]);
    // Owner tags: the daemon's copy and the host's differ (each sees the keys it may see), so each is shaped apart.
    t.set(1000, 100n, { setterPid: 1, nested: true });
    const tagged = encodeKeys(['mykey', `${OWNER_TAG_PREFIX}a`]);
    const own = p.route([sys(12, 1000, 1, tagged)], (owner) =>
      owner === 'a' ? ['mykey'] : ['mykey', 'hostonly'],
    ).destinations;
    assert.deepEqual(
      own.map((d) => d.daemon),
      ['a', null],
    );
    assert.notEqual(own[0]!.records, own[1]!.records);
    assert.match(own[0]!.records[1]!.payload.toString(), / key="mykey" record=1$/);
    assert.match(
      own[1]!.records[1]!.payload.toString(),
      new RegExp(` key=${encodeKeys(['mykey', 'hostonly'])} record=1$`),
    );
  });
});

describe('pipeline: a host with nothing to track', () => {
  it('reads no field for contids while the tracker is quiet, and does as soon as a process has an id', () => {
    const { p, t } = pipeline();
    const calls: string[] = [];
    for (const m of ['onFork', 'noteExec', 'lookup', 'onExit'] as const) {
      const orig = t[m].bind(t) as (...a: number[]) => unknown;
      (t as unknown as Record<string, unknown>)[m] = (...a: number[]) => {
        calls.push(`${m} ${a.join(' ')}`);
        return orig(...a);
      };
    }
    assert.equal(t.quiet, true);
    // A fork, an exit and a plain event of an untracked process: nothing to learn, nothing asked.
    p.route([sys(20, 1000, 1, '"k"', 56, 1234)]);
    p.route([sys(21, 1234, 1000, '"k"', 231, 0)]);
    assert.deepEqual(p.route([sys(22, 1000, 1, '"k"')]).destinations[0]!.records.length, 1);
    assert.deepEqual(calls, []);
    t.set(1000, 100n, { setterPid: 1 });
    assert.equal(t.quiet, false);
    calls.length = 0;
    const routed = p.route([sys(23, 1000, 1, '"k"', 56, 1235)]);
    assert.deepEqual(calls, ['onFork 1000 1235', 'lookup 1000 1']);
    assert.deepEqual(routed.chain, [100n]);
    assert.deepEqual(t.get(1235), [100n], 'the fork was seen');
  });
});

describe('pipeline: the cost of a host process while containers are live', () => {
  it('events of a process already found outside every container read no /proc until the answer expires or it execs', () => {
    let stats = 0;
    const proc: ProcReader = {
      stat: (pid) => (stats++, pid === 1000 ? { ppid: 1, starttime: 5, threads: 1 } : null),
      children: () => [],
      cgroupText: () => '0::/user.slice\n',
    };
    const containers = {
      active: true,
      contidFor: (): bigint | null => null,
      owns: (): boolean => false,
      lastSeenIn: (): bigint | null => null,
    };
    const t = new ContidTracker({ proc, containers });
    const p = new Pipeline({
      router: new Router(cfg.routes),
      tracker: t,
      contidKernel: false,
      daemonsWithRules: new Set(['a']),
      keep: 'unrouted',
    });
    p.route([sys(20, 1000, 1, '"k"', 59)]);
    const after = stats;
    assert.ok(after > 0);
    for (let i = 0; i < 5; i++) p.route([sys(21 + i, 1000, 1, '"k"', 110)]);
    assert.equal(stats, after, 'five more events, no /proc read');
    // An execve may follow a join (runc exec's init joins the container's cgroup, then execs): asked once more.
    p.route([sys(26, 1000, 1, '"k"', 59)]);
    assert.ok(stats > after, 'an execve asks again');
    const again = stats;
    p.route([sys(27, 1000, 1, '"k"', 110)]);
    assert.equal(stats, again, 'and is cached again');
  });
});

describe('pipeline on a kernel with the contid patch set', () => {
  it('takes chains from CONTAINER_ID records and fans netns events out', () => {
    const { p } = pipeline(true);
    const cid = { type: 1336, payload: Buffer.from('audit(1700000000.000:11): record=1 contid=100,200') };
    const pkt = {
      type: 1324,
      payload: Buffer.from('audit(1700000000.000:11): mark=0x1 saddr=127.0.0.1 daddr=127.0.0.1 proto=1 record=1'),
    };
    const out = p.route([cid, pkt]).destinations;
    assert.deepEqual(out.map((d) => d.daemon).sort(), ['b'], 'a has rules and no tag here; b gets it');
    assert.equal(out[0]!.records.length, 2, 'kernel records passed through unchanged');
  });
});

describe('view: fields read in the kernel order give what a search of each field gives (fixed seed)', () => {
  it('tracker calls and keys equal those from fieldInt/fieldHex/decodeKeys on 3000 generated SYSCALL records', () => {
    const next = prng(0x5ca11);
    const calls: string[] = [];
    const recording = {
      idle: false,
      onFork: (pid: number, child: number) => calls.push(`fork ${pid} ${child}`),
      lookup: (pid: number, ppid: number) => (calls.push(`lookup ${pid} ${ppid}`), null),
      onExit: (pid: number) => calls.push(`exit ${pid}`),
    } as unknown as ContidTracker;
    const p = new Pipeline({
      router: new Router(cfg.routes),
      tracker: recording,
      contidKernel: false,
      daemonsWithRules: new Set(),
      keep: 'unrouted',
    });
    const keyChoices = ['"k"', '(null)', '"a-b_c"', encodeKeys(['x', `${OWNER_TAG_PREFIX}a`]), encodeKeys([TRACK_KEY])];
    for (let i = 0; i < 3000; i++) {
      const nr = [56, 57, 231, 60, 110, 2, 120, 252][intBelow(next, 8)]!;
      const fields: [string, string][] = [
        ['arch', intBelow(next, 3) === 0 ? '40000003' : 'c000003e'],
        ['syscall', String(nr)],
        ['success', intBelow(next, 2) ? 'yes' : 'no'],
        ['exit', String(intBelow(next, 3) === 0 ? -intBelow(next, 40) : intBelow(next, 70000))],
        ['a0', (intBelow(next, 1 << 30) >>> 0).toString(16)],
        ['a1', '0'],
        ['a2', '7ffd'],
        ['a3', '0'],
        ['items', String(intBelow(next, 3))],
        ['ppid', String(intBelow(next, 70000))],
        ['pid', String(intBelow(next, 70000))],
        ['auid', '4294967295'],
        ['uid', '0'],
        ['comm', intBelow(next, 2) ? '"getppid"' : '6120622063'],
        ['exe', '"/usr/bin/x"'],
        ['subj', 'unconfined'],
        ['key', keyChoices[intBelow(next, keyChoices.length)]!],
      ];
      // Fields the kernel may leave out or that other kernels add, so the walk also meets its fallbacks.
      const kept = fields.filter(([k]) => k === 'key' || intBelow(next, 12) !== 0);
      if (intBelow(next, 6) === 0) kept.splice(1 + intBelow(next, kept.length - 1), 0, ['extra', '"q r"']);
      const body = kept.map(([k, v]) => `${k}=${v}`).join(' ');
      const payload = Buffer.from(`audit(1700000000.${String(i % 1000).padStart(3, '0')}:${i}): ${body}`);
      calls.length = 0;
      const v = p.view([{ type: 1300, payload }]);
      const got = [...calls];
      // The reference: each field searched on its own, as the pipeline did before reading in the kernel's order.
      calls.length = 0;
      const i386 = (fieldInt(payload, 'arch') ?? 0) >= 0 && /arch=40000003/.test(payload.toString('latin1'));
      const rnr = fieldInt(payload, 'syscall') ?? -1;
      const exit = fieldInt(payload, 'exit') ?? -1;
      const ppid = fieldInt(payload, 'ppid') ?? 0;
      const pid = fieldInt(payload, 'pid') ?? 0;
      const forks = i386 ? [120, 2, 190, 435] : [56, 57, 58, 435];
      const exits = i386 ? [252, 1] : [231, 60];
      const want: string[] = [];
      if (forks.includes(rnr) && exit > 0) want.push(`fork ${pid} ${exit}`);
      want.push(`lookup ${pid} ${ppid}`);
      if (exits.includes(rnr)) want.push(`exit ${pid}`);
      assert.deepEqual(got, want, payload.toString('latin1'));
      assert.deepEqual(v.fullKeys, decodeKeys(fieldText(payload, 'key')), payload.toString('latin1'));
    }
  });
});
