// Container metadata in nats subjects ({name}, {image}, {runtime}, {pod}, {namespace}) and in the JSON `container`
// object of nats payloads and JSON logs: the registry lookup and its cache, `none` when unknown, config validation,
// and a fixed-seed property test that no name can split a subject token or forge a JSON line.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeConfig, parseConfig } from '../../src/config';
import { natsTemplateError } from '../../src/config/outputs';
import {
  ContainerCache,
  parseContainerJson,
  type ContainerDirectory,
  type ContainerFields,
} from '../../src/output/container-fields';
import { contidOf, encodeEventJson } from '../../src/output/event-json';
import { LogWriter } from '../../src/output/logfile';
import { contidOfBuffers } from '../../src/output/nats/output';
import { decodeBody, encodeBody } from '../../src/output/nats/payload';
import {
  buildSubject,
  subjectFor,
  subjectTokenValue,
  valueToken,
  VALUE_TOKEN_MAX,
} from '../../src/output/nats/subject';
import { ContainerRegistry } from '../../src/containers/registry';
import { RETIRE_GRACE_MS } from '../../src/contid/tracker';
import { MsgType } from '../../src/kernel/constants';
import type { ContainerFacts } from '../../src/contid/meta-selector';
import { intBelow, prng } from '../helpers/prng';

const SEED = Number(process.env.AUDITMUX_FUZZ_SEED ?? 0x5c0b);
const LINE = 'type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59 success=yes';
const CLINE = 'type=CONTAINER_ID msg=audit(1700000000.123:42): record=1 contid=';

/** A directory over a plain map that counts its lookups. */
function directory(m: Map<bigint, ContainerFacts>): ContainerDirectory & { lookups: number; version: number } {
  const d = {
    version: 1,
    lookups: 0,
    facts(c: bigint): ContainerFacts | undefined {
      d.lookups++;
      return m.get(c);
    },
  };
  return d;
}

describe('container lookup for outputs', () => {
  it('looks a contid up once per registry version; unknown contids are cached as none; bounded', () => {
    const m = new Map<bigint, ContainerFacts>([[7n, { name: 'web', image: 'busybox', runtime: 'podman', labels: {} }]]);
    const d = directory(m);
    const c = new ContainerCache(d, 4);
    assert.equal(c.lookup(null), null);
    const e = c.lookup('7');
    assert.deepEqual(e?.fields, { name: 'web', image: 'busybox', runtime: 'podman' });
    assert.equal(e?.json, '{"name":"web","image":"busybox","runtime":"podman"}');
    assert.equal(c.lookup('7'), e, 'the same entry, no new object');
    assert.equal(c.lookup('8'), null);
    assert.equal(c.lookup('8'), null);
    assert.equal(d.lookups, 2);
    // A nesting chain: the first id is the container's.
    assert.deepEqual(c.lookup('7,^9')?.fields.name, 'web');
    assert.equal(c.lookup('x7'), null);
    assert.equal(c.lookup('-1'), null);
    // The registry changed (a hook completed the entry): looked up again.
    m.set(7n, { name: 'web', image: 'busybox', runtime: 'podman', pod: 'p1', namespace: 'ns1' });
    d.version++;
    assert.deepEqual(c.lookup('7')?.fields, {
      name: 'web',
      image: 'busybox',
      runtime: 'podman',
      pod: 'p1',
      namespace: 'ns1',
    });
    for (let i = 100; i < 120; i++) c.lookup(String(i));
    assert.ok((c as unknown as { cache: Map<string, unknown> }).cache.size <= 4);
    assert.equal(new ContainerCache(undefined).lookup('7'), null);
  });

  it('the real registry: live containers are found, retired ones during their grace only', () => {
    const clock = { now: 5_000_000 };
    const r = new ContainerRegistry({ now: () => clock.now });
    r.register({ runtime: 'runc', id: 'c1', contid: 11n, source: 'hook', meta: { name: 'db', podNamespace: 'prod' } });
    const c = new ContainerCache(r);
    assert.deepEqual(c.lookup('11')?.fields, { name: 'db', runtime: 'runc', namespace: 'prod' });
    r.retire(11n, 'poststop');
    assert.equal(c.lookup('11')?.fields.name, 'db', 'its late events still carry it');
    clock.now += RETIRE_GRACE_MS;
    r.expire();
    assert.equal(c.lookup('11'), null);
  });

  it('the spool form of the container is read back strictly', () => {
    assert.deepEqual(parseContainerJson('{"name":"a","pod":"p"}')?.fields, { name: 'a', pod: 'p' });
    assert.deepEqual(parseContainerJson('{"name":"a","evil":"x","image":3}')?.fields, { name: 'a' });
    for (const bad of ['', '[]', 'null', '"x"', '{', '{"image":1}', `{"name":"${'a'.repeat(9000)}"}`])
      assert.equal(parseContainerJson(bad), null, bad);
  });
});

describe('nats subjects with container metadata', () => {
  const entry = (f: ContainerFields) => ({ fields: f, json: JSON.stringify(f) });
  it('fills {name} {image} {runtime} {pod} {namespace}, `none` for no container or an unknown field', () => {
    const t = 'audit.{node}.{daemon}.{namespace}.{pod}.{name}.{image}.{runtime}.{contid}';
    const s = subjectFor(t, 'h1.example', 'tenant a');
    const full = entry({ name: 'web.1', image: 'reg/x:1', runtime: 'podman', pod: 'p*', namespace: 'ns>' });
    assert.equal(s('7', full), 'audit.h1~2Eexample.tenant~20a.ns~3E.p~2A.web~2E1.reg~2Fx~3A1.podman.7');
    assert.equal(s('7', entry({ name: 'web' })), 'audit.h1~2Eexample.tenant~20a.none.none.web.none.none.7');
    assert.equal(s('7', null), 'audit.h1~2Eexample.tenant~20a.none.none.none.none.none.7');
    assert.equal(s(null, null), 'audit.h1~2Eexample.tenant~20a.none.none.none.none.none.none');
    // A container really named `none` is not the absence of a name.
    assert.equal(s('7', entry({ name: 'none' })).split('.')[5], '~6Eone');
    assert.equal(subjectTokenValue('~6Eone'), 'none');
    assert.equal(subjectFor('a.b', 'n', 'd')('7', full), 'a.b');
    assert.equal(buildSubject('x.{name}', { node: 'n', daemon: 'd', contid: '1', container: full }), 'x.web~2E1');
    assert.equal(buildSubject('x.{name}', { node: 'n', daemon: 'd', contid: '1' }), 'x.none');
  });

  it('config: metadata placeholders accepted, unknown ones refused with file:line:col', () => {
    for (const t of ['audit.{node}.{namespace}.{name}', '{image}.{runtime}.{pod}', 'a.{contid}.{daemon}'])
      assert.equal(natsTemplateError(t, false), null, t);
    assert.match(natsTemplateError('a.{label}', false) ?? '', /\{namespace\}/);
    assert.match(natsTemplateError('a.{name}', true) ?? '', /cannot use \{name\}/);
    const c = parseConfig(
      'host:\n  outputs:\n    - { type: nats, servers: [n:4222], subject: "audit.{node}.{name}" }\n',
      '/etc/auditmux/a.yaml',
    );
    const o = c.host.outputs[0];
    assert.ok(o?.type === 'nats');
    assert.deepEqual([o.subject, o.streamSubjects], ['audit.{node}.{name}', ['audit.*.*']]);
    const errs = analyzeConfig(
      'host:\n  outputs:\n    - { type: nats, servers: [n:4222], subject: "audit.{labels}" }\n',
      '/etc/auditmux/a.yaml',
    ).errors;
    assert.equal(errs.length, 1);
    assert.match(errs[0]!.message, /^\/etc\/auditmux\/a\.yaml:3:\d+: .*subject token "\{labels\}"/);
  });
});

describe('JSON events with a container object', () => {
  it('nats payload: container at the top beside contid, absent when unknown; text payload unchanged', () => {
    const lines = [LINE, `${CLINE}7`];
    const f = { name: 'web', namespace: 'prod' };
    const c = { fields: f, json: JSON.stringify(f) };
    const o = JSON.parse(encodeBody('json', 'id1', 'h', 'd', lines, c, '7').toString('utf8')) as Record<
      string,
      unknown
    >;
    assert.deepEqual(Object.keys(o).slice(0, 6), ['v', 'id', 'node', 'daemon', 'contid', 'container']);
    assert.deepEqual(o.container, f);
    const none = JSON.parse(encodeBody('json', 'id1', 'h', 'd', lines, null).toString('utf8')) as Record<
      string,
      unknown
    >;
    assert.equal('container' in none, false);
    assert.equal(none.contid, '7');
    assert.equal(encodeBody('text', 'id1', 'h', 'd', lines, c).toString('latin1'), lines.join('\n') + '\n');
    // The collector decodes it as before.
    assert.deepEqual(decodeBody(encodeBody('json', 'id1', 'h', 'd', lines, c)).lines, lines);
  });

  it('log.format: json gets the container from the lookup it is given, and none without one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'amcont-'));
    try {
      const d = directory(new Map([[5n, { name: 'api', image: 'busybox', runtime: 'runc' }]]));
      const rec = (type: number, body: string) => ({
        type,
        payload: Buffer.from(`audit(1700000000.123:42): ${body}`),
      });
      const ev = [rec(MsgType.SYSCALL, 'arch=c000003e syscall=59'), rec(1336, 'record=1 contid=5')];
      const read = (f: string) =>
        readFileSync(f, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>);
      const w = new LogWriter({
        path: join(dir, 'a.log'),
        format: 'JSON',
        flush: 'none',
        contidKernel: true,
        containers: d,
      });
      w.open();
      w.writeEvent(ev);
      w.writeEvent([rec(1336, 'record=1 contid=6')]);
      // A process writes its own text into a user message (root in a container has CAP_AUDIT_WRITE): ` contid=5`
      // there is not the event's container, whatever record comes after it.
      w.writeEvent([rec(MsgType.USER, "pid=9 uid=0 auid=0 ses=1 msg='x contid=5 '"), rec(MsgType.SYSCALL, 'contid=5')]);
      // An aggregator peer's line: its contid names a container of the peer's host, not this registry's 5.
      w.writeLine(Buffer.from('node=peer type=CONTAINER_ID msg=audit(1700000000.123:43): record=1 contid=5'));
      w.close();
      const [a, b, forged, peer] = read(join(dir, 'a.log'));
      assert.deepEqual([a!.contid, a!.container], ['5', { name: 'api', image: 'busybox', runtime: 'runc' }]);
      assert.deepEqual([b!.contid, 'container' in b!], ['6', false]);
      assert.deepEqual([forged!.contid, 'container' in forged!], [null, false]);
      assert.deepEqual([peer!.contid, 'container' in peer!], ['5', false]);
      const w2 = new LogWriter({ path: join(dir, 'b.log'), format: 'JSON', flush: 'none', contidKernel: true });
      w2.open();
      w2.writeEvent(ev);
      w2.close();
      assert.equal('container' in read(join(dir, 'b.log'))[0]!, false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Names a runtime or an annotation could carry: separators, wildcards, spaces, newlines, quotes, non-UTF-8. */
const NASTY = ['.', '*', '>', ' ', '\n', '\r', '\t', '"', '\\', '\x00', '\x1d', '\x7f', '\u2028', '\ud800', '\udfff'];
const NASTY_MORE = ['~', '{', '}', 'none', 'é', '\u{1F600}', 'contid=1', '\n{"v":1}\n', 'a.b.c', '>.*'];

function nastyString(next: () => number): string {
  const n = intBelow(next, 12);
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = next();
    if (r < 0.4) s += NASTY[intBelow(next, NASTY.length)];
    else if (r < 0.6) s += NASTY_MORE[intBelow(next, NASTY_MORE.length)];
    else if (r < 0.8) s += String.fromCharCode(intBelow(next, 256));
    else s += String.fromCharCode(intBelow(next, 0x10000));
  }
  return s;
}

describe('long container values', () => {
  it('are cut at a whole escape and hashed: a subject of 16 placeholders stays within a NATS control line', () => {
    const name = 'é'.repeat(1024); // 2 KiB of UTF-8, 6 KiB escaped
    const dir = directory(
      new Map([
        [9n, { name, image: 'x'.repeat(1000) + 'y', runtime: 'runc' }],
        [10n, { name: name.slice(0, -1) + 'e', image: 'x'.repeat(1000) + 'z', runtime: 'runc' }],
      ]),
    );
    const t = Array.from({ length: 8 }, () => '{name}.{image}').join('.');
    const subject = subjectFor(t, 'h', 'd');
    const cache = new ContainerCache(dir);
    const [a, b] = [subject('9', cache.lookup('9')), subject('10', cache.lookup('10'))];
    for (const s of [a, b]) {
      assert.ok(s.length < 2048, `${s.length} bytes`);
      assert.equal(s.split('.').length, 16);
      for (const tok of s.split('.')) assert.match(tok, /^(?:[A-Za-z0-9_-]|~[0-9A-F]{2})*~~[0-9a-f]{32}$/);
    }
    const [ta, tb] = [a.split('.'), b.split('.')];
    assert.equal(ta[0]!.slice(0, ta[0]!.indexOf('~~')), '~C3~A9'.repeat(10) + '~C3', 'the cut keeps whole escapes');
    assert.notEqual(ta[0], tb[0], 'names that differ only past the cut get different tokens');
    assert.notEqual(ta[1], tb[1]);
    assert.equal(valueToken('x'.repeat(VALUE_TOKEN_MAX)), 'x'.repeat(VALUE_TOKEN_MAX), 'up to the limit: whole');
  });
});

describe('property: container names never split a token nor forge a JSON line (fixed seed)', () => {
  it('subjects keep their token count, each token escaped and reversible; JSON is one valid UTF-8 line', () => {
    const next = prng(SEED);
    const t = 'audit.{node}.{daemon}.{name}.{image}.{runtime}.{pod}.{namespace}.{contid}';
    const subject = subjectFor(t, 'h', 'd');
    const keys = ['name', 'image', 'runtime', 'pod', 'namespace'] as const;
    const seen = new Map<string, string>();
    for (let i = 0; i < 5000; i++) {
      const facts: ContainerFacts = {};
      for (const k of keys) if (next() < 0.8) facts[k] = nastyString(next);
      const dir = directory(new Map([[9n, facts]]));
      const e = new ContainerCache(dir).lookup('9');
      const s = subject('9', e);
      const toks = s.split('.');
      assert.equal(toks.length, 9, s);
      for (const tok of toks) assert.match(tok, /^[A-Za-z0-9_~-]+$/, s);
      keys.forEach((k, j) => {
        const v = e?.fields[k];
        const tok = toks[3 + j] as string;
        if (v === undefined) assert.equal(tok, 'none');
        else {
          // Reversible up to what UTF-8 can carry (a lone surrogate is U+FFFD in bytes), unless cut and hashed.
          if (tok.includes('~~')) assert.equal(tok.length, tok.indexOf('~~') + 34, s);
          else assert.equal(subjectTokenValue(tok), Buffer.from(v, 'utf8').toString('utf8'));
          assert.ok(tok.length <= VALUE_TOKEN_MAX + 34, s);
          assert.notEqual(tok, 'none');
          const prev = seen.get(tok);
          const norm = Buffer.from(v, 'utf8').toString('utf8');
          if (prev !== undefined) assert.equal(prev, norm, 'two values, one token');
          seen.set(tok, norm);
        }
      });
      // The same event as a JSON line (nats payload and JSON log share the encoder).
      const lines = [LINE, `${CLINE}9`];
      const buf = encodeEventJson('id', 'h', 'd', lines, e?.fields ?? null);
      assert.equal(buf.indexOf(0x0a), -1, 'no newline in the line');
      assert.equal(buf.indexOf(0x0d), -1);
      assert.ok(Buffer.from(buf.toString('utf8'), 'utf8').equals(buf), 'valid UTF-8');
      const o = JSON.parse(buf.toString('utf8')) as { container?: ContainerFields; records: unknown[]; contid: string };
      assert.equal(o.records.length, 2);
      assert.equal(o.contid, '9');
      assert.deepEqual(o.container, e ? { ...e.fields } : undefined);
      // And through the spool entry's first line (UTF-8 JSON text) and back.
      if (e) {
        const head = Buffer.from(`id ${e.json}\n`, 'utf8');
        assert.equal(head.indexOf(0x0a), head.length - 1);
        assert.deepEqual(parseContainerJson(head.toString('utf8', 3, head.length - 1))?.fields, e.fields);
      }
    }
  });

  it('the contid is read from the CONTAINER_ID (or CONTAINER_OP) record only, never from text a process wrote', () => {
    const user = "type=USER msg=audit(1.000:1): pid=9 uid=0 msg='op=x contid=42 '";
    assert.equal(contidOf([user]), null);
    assert.equal(contidOf(['type=CONTAINER_OP msg=audit(1.000:1): op=container-birth contid=9 runtime=podman']), '9');
    assert.equal(contidOf([LINE + ' contid=42', `${CLINE}7`]), '7', 'the SYSCALL record before it says nothing');
    assert.equal(contidOf([`node=h ${CLINE}"7,^3"`]), '7,^3');
    assert.equal(contidOfBuffers([Buffer.from(user)]), null);
    assert.equal(contidOfBuffers([Buffer.from(LINE + ' contid=42'), Buffer.from(`node=h ${CLINE}7`)]), '7');
  });

  it('contidOfBuffers reads what contidOf reads from the same lines', () => {
    const next = prng(SEED + 1);
    const parts = [' contid=', '7', '12', ',^3', ' ', '\x1d', '"', 'x', 'contid=', 'a=b'];
    const heads = [
      'type=SYSCALL',
      'type=CONTAINER_ID',
      'node=h type=CONTAINER_ID',
      'type=USER',
      'node=contid=1 type=X',
    ];
    for (let i = 0; i < 5000; i++) {
      const lines: string[] = [];
      for (let n = 1 + intBelow(next, 3); n > 0; n--) {
        let l = `${heads[intBelow(next, heads.length)]!} msg=audit(1.000:1):`;
        for (let k = intBelow(next, 8); k > 0; k--) l += parts[intBelow(next, parts.length)];
        lines.push(l);
      }
      assert.equal(contidOfBuffers(lines.map((l) => Buffer.from(l, 'latin1'))), contidOf(lines), JSON.stringify(lines));
    }
  });
});
