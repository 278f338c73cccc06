// Container metadata for process daemons: the host's feed sends only containers of events routed to the daemon, once,
// then updates and retirements, bounded; the process's mirror; CONTAINER/FORGET frames refused cleanly when bad
// (fixed-seed fuzz); labels in the JSON container object within their caps.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ContainerRegistry } from '../../src/containers/registry';
import { RETIRE_GRACE_MS } from '../../src/contid/tracker';
import { AUDITMUX_CONTAINER_ID, CONTID_CONTAINER_ID, MsgType } from '../../src/kernel/constants';
import {
  AuxFrameError,
  Frame,
  FrameReader,
  decodeContainer,
  decodeForget,
  encodeContainer,
  encodeEvent,
  encodeForget,
  encodeFrame,
} from '../../src/daemon/aux-ipc';
import { ContainerFeed, ContainerMirror, routedContidOf } from '../../src/daemon/aux-containers';
import {
  ContainerCache,
  MAX_CONTAINER_JSON,
  MAX_LABELS,
  MAX_LABEL_KEY,
  MAX_LABEL_VALUE,
  containerEntry,
  parseContainerJson,
} from '../../src/output/container-fields';
import { encodeEventJson } from '../../src/output/event-json';
import { intBelow, prng } from '../helpers/prng';

const SEED = Number(process.env.AUDITMUX_FUZZ_SEED ?? 0xc0de14);
const STAMP = 'audit(1700000000.123:42):';

const rec = (type: number, body: string) => ({ type, payload: Buffer.from(`${STAMP} ${body}`, 'latin1') });

/** An event frame as the host queues it: SYSCALL, and the CONTAINER_ID record routing adds on mainline kernels. */
function eventFrame(contid: string | null, type = AUDITMUX_CONTAINER_ID, extra: string[] = []): Buffer {
  const records = [rec(MsgType.SYSCALL, 'arch=c000003e syscall=110 success=yes exit=1 pid=5')];
  if (contid !== null) records.unshift(rec(type, `record=1 contid=${contid}`));
  for (const e of extra) records.push(rec(1107, e));
  return encodeEvent(1, records);
}

type Sent = { kind: 'container'; contid: string; json: string } | { kind: 'forget'; contid: string };

/** The frames a feed wrote, decoded as the process decodes them (and applied to a mirror when one is given). */
function decodeAll(out: Buffer[], mirror?: ContainerMirror): Sent[] {
  const got: Sent[] = [];
  const r = new FrameReader((kind, body) => {
    if (kind === Frame.CONTAINER) {
      const { contid, entry } = decodeContainer(body);
      mirror?.set(contid, entry);
      got.push({ kind: 'container', contid, json: entry.json });
    } else if (kind === Frame.FORGET) {
      const contid = decodeForget(body);
      mirror?.forget(contid);
      got.push({ kind: 'forget', contid });
    } else assert.equal(kind, Frame.EVENT);
  });
  for (const b of out) r.push(b);
  return got;
}

/** Runs event frames through a feed as AuxDaemon.pump does: the feed's frames, the event, then a sweep. */
function pump(feed: ContainerFeed, frames: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const f of frames) {
    feed.before(f, out);
    out.push(f);
  }
  feed.sweep(out);
  return out;
}

function registry(now?: () => number): ContainerRegistry {
  const r = new ContainerRegistry(now ? { now } : {});
  r.register({ runtime: 'podman', id: 'a', contid: 7n, source: 'hook', meta: { name: 'web', podNamespace: 'shop' } });
  r.register({ runtime: 'podman', id: 'b', contid: 8n, source: 'hook', meta: { name: 'bank-db' } });
  r.register({ runtime: 'runc', id: 'h', contid: 9n, source: 'cgroup', meta: { name: 'host-agent' } });
  return r;
}

describe('container feed to a process daemon (host side)', () => {
  it('sends only the containers of events routed to it, each once while unchanged', () => {
    const r = registry();
    const feed = new ContainerFeed(r, false);
    const out = pump(feed, [eventFrame('7'), eventFrame('7'), eventFrame(null), eventFrame('7,^9'), eventFrame('7')]);
    const sent = decodeAll(out);
    assert.deepEqual(sent, [
      { kind: 'container', contid: '7', json: '{"name":"web","runtime":"podman","namespace":"shop"}' },
    ]);
    // The CONTAINER frame goes before the first event of its container.
    assert.equal(out[0]!.readUInt8(4), Frame.CONTAINER);
    assert.equal(out.filter((b) => b.readUInt8(4) === Frame.EVENT).length, 5);
    // Registry changes elsewhere (another tenant's containers born and retired) send nothing.
    r.register({ runtime: 'podman', id: 'c', contid: 10n, source: 'hook', meta: { name: 'other' } });
    r.retire(8n, 'poststop');
    assert.deepEqual(decodeAll(pump(feed, [eventFrame('7')])), []);
    assert.equal(feed.size, 1);
  });

  it('reads the contid routing decided, never text an audited process wrote', () => {
    const r = registry();
    const feed = new ContainerFeed(r, false);
    // A user message whose text says contid=8, in an event of no container, and of container 7.
    const forged = ["msg='op=x contid=8 res=1'", 'contid=9'];
    assert.deepEqual(decodeAll(pump(feed, [eventFrame(null, AUDITMUX_CONTAINER_ID, forged)])), []);
    assert.deepEqual(
      decodeAll(pump(feed, [eventFrame('7', AUDITMUX_CONTAINER_ID, forged)])).map((s) => s.contid),
      ['7'],
    );
    // Type 1336 is the kernel's CONTAINER_ID only on a kernel with the contid patch set.
    assert.equal(routedContidOf(eventFrame('8', CONTID_CONTAINER_ID), false), null);
    assert.equal(routedContidOf(eventFrame('8', CONTID_CONTAINER_ID), true), '8');
    assert.equal(routedContidOf(eventFrame('"8"'), false), '8');
    assert.equal(routedContidOf(eventFrame('-1'), false), null);
    assert.equal(routedContidOf(eventFrame('1'.repeat(21)), false), null);
    assert.equal(routedContidOf(Buffer.alloc(3), false), null);
  });

  it('sends an update when the registry learns more, and FORGET once the retirement grace is over', () => {
    const clock = { now: 1_000_000 };
    const r = registry(() => clock.now);
    const feed = new ContainerFeed(r, false);
    const mirror = new ContainerMirror();
    decodeAll(pump(feed, [eventFrame('7')]), mirror);
    assert.deepEqual(mirror.facts(7n), { name: 'web', runtime: 'podman', namespace: 'shop' });
    // The hook completes the entry (image and labels learnt later): told without waiting for an event.
    r.register({
      runtime: 'podman',
      id: 'a',
      contid: 7n,
      source: 'hook',
      meta: { image: 'busybox', labels: { app: 'web', 'io.k8s/x': 'a"b' } },
    });
    const upd = decodeAll(pump(feed, []), mirror);
    assert.deepEqual(upd, [
      {
        kind: 'container',
        contid: '7',
        json: '{"name":"web","image":"busybox","runtime":"podman","namespace":"shop","labels":{"app":"web","io.k8s/x":"a\\"b"}}',
      },
    ]);
    assert.equal(mirror.facts(7n)?.image, 'busybox');
    // A registration that changes nothing sends nothing (one comparison per sent container).
    r.register({ runtime: 'podman', id: 'a', contid: 7n, source: 'hook', meta: { name: 'ignored' } });
    assert.deepEqual(decodeAll(pump(feed, [eventFrame('7')]), mirror), []);
    r.retire(7n, 'poststop');
    // Its late events (made before, routed after its retirement) still find it in the process.
    assert.deepEqual(decodeAll(pump(feed, [eventFrame('7')]), mirror), []);
    assert.equal(mirror.facts(7n)?.image, 'busybox');
    clock.now += RETIRE_GRACE_MS - 1;
    assert.equal(r.expire(), 0);
    assert.deepEqual(decodeAll(pump(feed, [eventFrame('7')]), mirror), []);
    clock.now += 1;
    assert.equal(r.expire(), 1);
    assert.deepEqual(decodeAll(pump(feed, []), mirror), [{ kind: 'forget', contid: '7' }]);
    assert.equal(mirror.facts(7n), undefined);
    assert.equal(mirror.size, 0);
    assert.equal(feed.size, 0);
    // Events after the grace (the registry has none of it) send nothing.
    assert.deepEqual(decodeAll(pump(feed, [eventFrame('7')]), mirror), []);
    assert.deepEqual(feed.counters, { sent: 1, updated: 1, forgotten: 1 });
  });

  it('an unknown contid is sent once it is registered', () => {
    const r = registry();
    const feed = new ContainerFeed(r, false);
    assert.deepEqual(decodeAll(pump(feed, [eventFrame('42'), eventFrame('42')])), []);
    r.register({ runtime: 'crio', id: 'n', contid: 42n, source: 'cgroup', meta: {} });
    assert.deepEqual(
      decodeAll(pump(feed, [eventFrame('42')])).map((s) => [s.kind, s.contid]),
      [['container', '42']],
    );
  });

  it('bounded: the least recently routed container is forgotten first; the mirror keeps the same ones', () => {
    const r = new ContainerRegistry();
    for (let i = 1; i <= 6; i++)
      r.register({ runtime: 'runc', id: `c${i}`, contid: BigInt(i), source: 'cgroup', meta: { name: `n${i}` } });
    const feed = new ContainerFeed(r, false, 3);
    const mirror = new ContainerMirror(3);
    const sent = decodeAll(
      pump(
        feed,
        ['1', '2', '3', '1', '4', '5'].map((c) => eventFrame(c)),
      ),
      mirror,
    );
    assert.deepEqual(
      sent.map((s) => `${s.kind}:${s.contid}`),
      ['container:1', 'container:2', 'container:3', 'forget:2', 'container:4', 'forget:3', 'container:5'],
    );
    assert.equal(feed.size, 3);
    assert.deepEqual(
      [1n, 2n, 3n, 4n, 5n].map((c) => mirror.facts(c)?.name ?? null),
      ['n1', null, null, 'n4', 'n5'],
    );
    // Sent again when routed again.
    assert.deepEqual(
      decodeAll(pump(feed, [eventFrame('2')]), mirror).map((s) => `${s.kind}:${s.contid}`),
      ['forget:1', 'container:2'],
    );
    // Whatever a host sends, the process holds at most its cap.
    const m = new ContainerMirror(2);
    for (let i = 0; i < 10; i++) m.set(String(i), containerEntry({ name: `x${i}` })!);
    assert.equal(m.size, 2);
    assert.equal(m.facts(9n)?.name, 'x9');
    const v = m.version;
    m.forget('12345');
    assert.equal(m.version, v, 'forgetting what it does not hold changes nothing');
  });

  it("the process's outputs look contids up in the mirror as inline ones do in the registry", () => {
    const r = registry();
    const mirror = new ContainerMirror();
    decodeAll(pump(new ContainerFeed(r, false), [eventFrame('7')]), mirror);
    const inline = new ContainerCache(r).lookup('7,^2');
    const proc = new ContainerCache(mirror).lookup('7,^2');
    assert.ok(inline && proc);
    assert.deepEqual(proc.fields, inline.fields);
    assert.equal(proc.json, inline.json);
    assert.equal(new ContainerCache(mirror).lookup('8'), null, "another tenant's container is unknown here");
  });
});

describe('CONTAINER and FORGET frames (process side)', () => {
  const body = (f: Buffer): Buffer => f.subarray(5);
  it('round trip, and bad frames refused with E_AUX_FRAME', () => {
    const json = containerEntry({ name: 'web', labels: { a: 'b' } })!.json;
    assert.deepEqual(decodeContainer(body(encodeContainer('18446744073709551615', json))), {
      contid: '18446744073709551615',
      entry: parseContainerJson(json),
    });
    assert.equal(decodeForget(body(encodeForget('0'))), '0');
    const bad: Array<[Buffer, RegExp]> = [
      [Buffer.from('{"name":"x"}'), /no contid/],
      [Buffer.from(' {"name":"x"}'), /contid of 0 bytes/],
      [Buffer.from('07 {"name":"x"}'), /leading zero/],
      [Buffer.from('7a {"name":"x"}'), /byte 0x61/],
      [Buffer.from('18446744073709551616 {"name":"x"}'), /above 2\^64-1/],
      [Buffer.from('7 {"name":'), /not a container object/],
      [Buffer.from('7 []'), /not a container object/],
      [Buffer.from('7 {"evil":"x"}'), /not a container object/],
      [Buffer.concat([Buffer.from('7 {"name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), /not UTF-8/],
      [Buffer.alloc(22 + MAX_CONTAINER_JSON, 0x20), /exceeds/],
    ];
    for (const [b, re] of bad)
      assert.throws(
        () => decodeContainer(b),
        (e: unknown) => e instanceof AuxFrameError && e.code === 'E_AUX_FRAME' && re.test(e.message),
        b.toString('latin1', 0, 40),
      );
    for (const b of ['', '7 ', 'x', '1'.repeat(21)])
      assert.throws(
        () => decodeForget(Buffer.from(b)),
        (e: unknown) => e instanceof AuxFrameError,
        b,
      );
  });

  it('fuzz (fixed seed): any body is a valid container within its caps or an AuxFrameError, never another throw', () => {
    const next = prng(SEED);
    const seeds = [
      encodeContainer(
        '7',
        containerEntry({ name: 'web', image: 'i', labels: { 'app.k/x': 'v', __proto__x: 'y' } })!.json,
      ),
      encodeContainer('123', '{"name":"a","labels":{"__proto__":"p","k":"v"}}'),
      encodeForget('99'),
    ].map(body);
    const pieces = ['{', '}', '"', ':', ',', '"labels"', '"name"', '\\u0000', '\\ud800', '[', '7 ', ' ', '\n', '0'];
    let ok = 0;
    for (let i = 0; i < 20000; i++) {
      let b: Buffer;
      const r = next();
      if (r < 0.5) {
        b = Buffer.from(seeds[intBelow(next, seeds.length)]!);
        for (let k = 1 + intBelow(next, 4); k > 0 && b.length; k--) b[intBelow(next, b.length)] = intBelow(next, 256);
        if (next() < 0.2) b = b.subarray(0, intBelow(next, b.length + 1));
      } else if (r < 0.8) {
        let s = String(intBelow(next, 1000)) + (next() < 0.9 ? ' ' : '');
        for (let k = intBelow(next, 12); k > 0; k--) s += pieces[intBelow(next, pieces.length)];
        b = Buffer.from(s, 'utf8');
      } else b = Buffer.from(Array.from({ length: intBelow(next, 64) }, () => intBelow(next, 256)));
      for (const decode of [decodeContainer, decodeForget]) {
        try {
          const v = decode(b);
          const contid = typeof v === 'string' ? v : v.contid;
          assert.match(contid, /^(0|[1-9][0-9]{0,19})$/);
          if (typeof v !== 'string') {
            ok++;
            assert.ok(Buffer.byteLength(v.entry.json) <= MAX_CONTAINER_JSON);
            assert.equal(JSON.stringify(v.entry.fields), v.entry.json);
            for (const [k, x] of Object.entries(v.entry.fields))
              if (k === 'labels') for (const y of Object.values(x as object)) assert.equal(typeof y, 'string');
              else assert.equal(typeof x, 'string');
            // What the process keeps, sent again, is read back the same.
            assert.deepEqual(decodeContainer(body(encodeContainer(contid, v.entry.json))).entry.json, v.entry.json);
          }
        } catch (e) {
          if (!(e instanceof AuxFrameError)) throw new Error(`${b.toString('hex')}: ${String(e)}`, { cause: e });
        }
      }
    }
    assert.ok(ok > 100, `some mutated frames are still valid (${ok})`);
    // And through the frame reader: a frame of any kind with a bad body never breaks the stream for the next frame.
    const frames: number[] = [];
    const reader = new FrameReader((kind, b) => {
      try {
        if (kind === Frame.CONTAINER) decodeContainer(b);
      } catch (e) {
        assert.ok(e instanceof AuxFrameError);
      }
      frames.push(kind);
    });
    reader.push(Buffer.concat([encodeFrame(Frame.CONTAINER, Buffer.from('zz')), encodeForget('1')]));
    assert.deepEqual(frames, [Frame.CONTAINER, Frame.FORGET]);
  });
});

describe('labels in the JSON container object', () => {
  it('bounded (count, key and value length, total bytes), sorted, escaped, `__proto__` a label like any other', () => {
    const labels: Record<string, string> = Object.create(null) as Record<string, string>;
    for (let i = 0; i < 200; i++) labels[`k${String(i).padStart(3, '0')}`] = `v${i}`;
    labels['__proto__'] = 'p';
    labels['long-key'.padEnd(MAX_LABEL_KEY + 1, 'x')] = 'v';
    labels['a-long-value'] = 'v'.repeat(MAX_LABEL_VALUE + 1);
    labels['a\n"quote'] = 'line\nbreak\u2028"\\';
    const e = containerEntry({ name: 'web', labels })!;
    const l = e.fields.labels!;
    const keys = Object.keys(l);
    assert.equal(keys.length, MAX_LABELS);
    assert.deepEqual(keys, [...keys].sort());
    assert.equal(l['__proto__'], 'p');
    assert.equal(Object.getPrototypeOf(l), null);
    assert.ok(!keys.some((k) => k.length > MAX_LABEL_KEY || l[k]!.length > MAX_LABEL_VALUE));
    assert.equal(l['a\n"quote'], 'line\nbreak\u2028"\\');
    // Byte budget: many large values are cut by MAX_CONTAINER_JSON, the fields kept.
    const big: Record<string, string> = {};
    for (let i = 0; i < 60; i++) big[`k${i}`] = '\x01'.repeat(MAX_LABEL_VALUE);
    const b = containerEntry({ name: 'n', image: 'i', labels: big })!;
    assert.ok(Buffer.byteLength(b.json) <= MAX_CONTAINER_JSON, String(Buffer.byteLength(b.json)));
    assert.ok(Object.keys(b.fields.labels!).length >= 1);
    assert.equal(b.fields.name, 'n');
    // Fields whose escaped form alone would pass the budget are cut harder, and the JSON stays within it.
    const nasty = '\x01'.repeat(5000);
    const f = containerEntry({ name: nasty, image: nasty, runtime: nasty, pod: nasty, namespace: nasty })!;
    assert.ok(Buffer.byteLength(f.json) <= MAX_CONTAINER_JSON);
    assert.equal(f.fields.name!.length, 256);
    // No labels, or only unusable ones: no `labels` key at all.
    assert.equal(containerEntry({ name: 'x', labels: {} })!.json, '{"name":"x"}');
    assert.equal(containerEntry({ name: 'x', labels: { '': 'v' } })!.json, '{"name":"x"}');
    // Read back from a spool entry as written.
    assert.equal(parseContainerJson(e.json)!.json, e.json);
    // One JSON line, labels escaped like every other value.
    const line = encodeEventJson('id', 'h', 'd', ['type=SYSCALL msg=audit(1.000:1): contid=7'], e.fields);
    assert.equal(line.indexOf(0x0a), -1);
    const o = JSON.parse(line.toString('utf8')) as { container: { labels: Record<string, string> } };
    assert.equal(o.container.labels['a\n"quote'], 'line\nbreak\u2028"\\');
    assert.equal(Object.keys(o.container.labels).length, MAX_LABELS);
  });

  it('the registry keeps labels (OCI annotations, CRI-O labels) and the lookup shows them', () => {
    const r = new ContainerRegistry();
    r.register({
      runtime: 'crio',
      id: 'x',
      contid: 3n,
      source: 'hook',
      meta: { name: 'api', labels: { 'app.kubernetes.io/name': 'api', tier: 'be' } },
    });
    assert.deepEqual(
      { ...new ContainerCache(r).lookup('3')!.fields.labels },
      { 'app.kubernetes.io/name': 'api', tier: 'be' },
    );
  });
});
