// OCI hook state parsing (untrusted stdin): real podman state, every refusal, escaping, and a fixed-seed fuzz.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  OCI_STATE_MAX,
  OciStateError,
  fitHookRequest,
  parseBundleAnnotations,
  parseOciState,
} from '../../src/containers/oci-state';
import { encodeUntrusted } from '../../src/records/encode';
import { conmonName, metaFromAnnotations } from '../../src/containers/metadata';
import { intBelow, prng } from '../helpers/prng';

// What podman 4.3 wrote to a createRuntime hook on this machine.
const PODMAN =
  '{"ociVersion":"1.0.2-dev","id":"da5f278a1a4b3688eacf59509797b6c6147335dbdfa5a43b6732f09a2cdc613a","status":"creating","pid":10879,' +
  '"bundle":"/tmp/cpod.J2dz/root/overlay-containers/da5f/userdata","annotations":{"io.container.manager":"libpod","io.kubernetes.cri-o.Created":"2026-12-01T20:16:26.254768128Z",' +
  '"io.kubernetes.cri-o.TTY":"false","io.podman.annotations.autoremove":"FALSE","org.opencontainers.image.stopSignal":"15"}}';

describe('OCI state', () => {
  it('parses what podman sends', () => {
    const s = parseOciState(Buffer.from(PODMAN));
    assert.equal(s.status, 'creating');
    assert.equal(s.pid, 10879);
    assert.equal(s.annotations['io.container.manager'], 'libpod');
    assert.equal(parseOciState('{"ociVersion":"1.0.2","id":"x","status":"stopped","bundle":"/b"}').pid, 0);
  });

  it('refuses bad documents with the reason', () => {
    const bad: Array<[string, RegExp]> = [
      ['', /not JSON/],
      ['{"id":"x"', /not JSON.*position|not JSON/],
      ['[]', /JSON object/],
      ['null', /JSON object/],
      ['{"status":"creating"}', /"id" must be a string/],
      ['{"id":"../etc","status":"creating"}', /not an OCI container ID/],
      ['{"id":"a b","status":"creating"}', /not an OCI container ID/],
      ['{"id":"..","status":"creating"}', /not an OCI container ID/],
      ['{"id":"x","status":"exploded"}', /"status"/],
      ['{"id":"x","status":"creating","pid":-1}', /"pid"/],
      ['{"id":"x","status":"creating","pid":1.5}', /"pid"/],
      ['{"id":"x","status":"creating","pid":99999999999}', /"pid"/],
      ['{"id":"x","status":"creating","bundle":"rel/path"}', /absolute/],
      ['{"id":"x","status":"creating","annotations":[]}', /annotations/],
    ];
    for (const [text, re] of bad)
      assert.throws(
        () => parseOciState(text),
        (e: unknown) => e instanceof OciStateError && re.test(e.message),
        text.slice(0, 60),
      );
    assert.throws(() => parseOciState(Buffer.alloc(OCI_STATE_MAX + 1, 0x20)), /over the 65536-byte limit/);
  });

  it('state annotations: a bad one is left out, not the container; past 256 only the runtimes\u2019 keys are kept', () => {
    const s = parseOciState(
      JSON.stringify({
        id: 'x',
        status: 'creating',
        annotations: {
          a: 1,
          ctl: 'line\nbreak',
          'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(5000),
          ...Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, 'v'])),
          'io.kubernetes.pod.namespace': 'team-a',
        },
      }),
    );
    assert.equal(s.annotations['io.kubernetes.pod.namespace'], 'team-a', 'written last, kept past the cap');
    assert.equal(Object.keys(s.annotations).length, 257);
    assert.equal(s.skippedAnnotations, 3 + 44);
    assert.equal(s.annotations.a, undefined);
  });

  it('bundle config.json annotations: bad entries skipped, never thrown on', () => {
    const b = parseBundleAnnotations(
      Buffer.from(
        '{"hostname":"h1","annotations":{"io.kubernetes.cri.sandbox-namespace":"team-a","bad":7,"ctl":"a\\u0001b"}}',
      ),
    );
    assert.deepEqual({ ...b.annotations }, { 'io.kubernetes.cri.sandbox-namespace': 'team-a' });
    assert.equal(b.hostname, 'h1');
    assert.throws(() => parseBundleAnnotations(Buffer.from('{')), OciStateError);
  });

  it('bundle annotations past 256 keep the runtimes\u2019 keys (Go writes keys sorted: a0..a255 come first)', () => {
    const a: Record<string, string> = {};
    for (let i = 0; i < 300; i++) a[`a${String(i).padStart(3, '0')}`] = 'x';
    a['io.kubernetes.pod.namespace'] = 'shop';
    const b = parseBundleAnnotations(Buffer.from(JSON.stringify({ annotations: a })));
    assert.equal(b.annotations['io.kubernetes.pod.namespace'], 'shop');
    assert.equal(Object.keys(b.annotations).length, 257);
  });

  it("a hook's request fits the control socket: no annotation twice, the largest others left out first", () => {
    // A CRI-O pod's own annotations, copied into the state and into config.json: 2 x 16 of 3.5 KiB.
    const annotations: Record<string, string> = { 'io.kubernetes.pod.namespace': 'shop' };
    for (let i = 0; i < 16; i++) annotations[`team.example/${i}`] = 'v'.repeat(3500 + i);
    const state = parseOciState(JSON.stringify({ id: 'abc', status: 'creating', pid: 9, annotations }));
    const bundle = { ...annotations, 'io.kubernetes.container.name': 'cart' };
    const size = (f: ReturnType<typeof fitHookRequest>): number =>
      Buffer.byteLength(JSON.stringify({ state: f.state, bundleAnnotations: f.bundleAnnotations }));
    // Sent twice, the 56 KiB of annotations passed the daemon's 64 KiB request line; once, they fit.
    const once = fitHookRequest(state, bundle, 60 * 1024);
    assert.deepEqual([once.dropped, once.bundleAnnotations], [0, { 'io.kubernetes.container.name': 'cart' }]);
    assert.ok(size(once) <= 60 * 1024, `${size(once)} bytes`);
    // A tighter budget: the largest non-runtime annotations go first.
    const fit = fitHookRequest(state, bundle, 40 * 1024);
    assert.ok(size(fit) <= 40 * 1024, `${size(fit)} bytes`);
    assert.deepEqual(fit.bundleAnnotations, { 'io.kubernetes.container.name': 'cart' });
    assert.equal(fit.state.annotations['io.kubernetes.pod.namespace'], 'shop');
    assert.ok(fit.dropped > 0 && fit.dropped < 16, String(fit.dropped));
    assert.ok(!('team.example/15' in fit.state.annotations), 'the largest went first');
    // What fits is sent as it is.
    const small = fitHookRequest(state, undefined, 1 << 20);
    assert.deepEqual([small.dropped, small.state.annotations], [0, { ...state.annotations }]);
  });

  it('names and Kubernetes fields from CRI, CRI-O and kubelet annotations; podman names from conmon', () => {
    const { labels, ...m } = metaFromAnnotations({
      'io.kubernetes.cri.sandbox-name': 'web-0',
      'io.kubernetes.cri.sandbox-namespace': 'shop',
      'io.kubernetes.cri.sandbox-uid': 'u1',
      'io.kubernetes.cri.container-name': 'nginx',
      'io.kubernetes.cri.image-name': 'docker.io/library/nginx:1.25',
    });
    assert.deepEqual(m, {
      podName: 'web-0',
      podNamespace: 'shop',
      podUid: 'u1',
      containerName: 'nginx',
      image: 'docker.io/library/nginx:1.25',
      name: 'nginx',
    });
    assert.equal(labels?.['io.kubernetes.cri.sandbox-uid'], 'u1', 'route selectors see every annotation as a label');
    assert.equal(
      metaFromAnnotations({ 'io.kubernetes.cri-o.Namespace': 'ns2', 'io.kubernetes.pod.name': 'p' }).podNamespace,
      'ns2',
    );
    // CRI-O copies a pod's own annotations into its containers: a pod in tenant-a that adds containerd's keys saying
    // tenant-b gets no namespace (nor pod, nor uid) rather than another tenant's; the runtime's own key disagrees.
    const forged = metaFromAnnotations({
      'io.kubernetes.cri.sandbox-namespace': 'tenant-b',
      'io.kubernetes.cri.sandbox-name': 'victim',
      'io.kubernetes.cri.sandbox-uid': 'u-victim',
      'io.kubernetes.cri-o.Namespace': 'tenant-a',
      'io.kubernetes.pod.namespace': 'tenant-a',
      'io.kubernetes.pod.name': 'mine',
      'io.kubernetes.pod.uid': 'u-mine',
      'io.kubernetes.cri-o.SandboxName': 'k8s_POD_mine_tenant-a_u-mine_0',
    });
    assert.deepEqual([forged.podNamespace, forged.podName, forged.podUid], [undefined, undefined, undefined]);
    const crio = metaFromAnnotations({
      'io.kubernetes.cri-o.Namespace': 'tenant-a',
      'io.kubernetes.pod.namespace': 'tenant-a',
      'io.kubernetes.pod.name': 'mine',
      'io.kubernetes.cri-o.SandboxName': 'k8s_POD_mine_tenant-a_u-mine_0',
    });
    assert.deepEqual([crio.podNamespace, crio.podName], ['tenant-a', 'mine'], 'CRI-O as it writes them: agreed');
    const argv = ['/usr/bin/conmon', '--api-version', '1', '-c', 'abc', '-u', 'abc', '-n', 'c1', '--exit-dir', '/x'];
    assert.equal(conmonName(argv, 'abc'), 'c1');
    assert.equal(conmonName(argv, 'other'), undefined, "another container's monitor never names this one");
  });

  it('untrusted strings are quoted when plain, hex otherwise: no value can add a field or a line', () => {
    assert.equal(encodeUntrusted('c1'), '"c1"');
    assert.equal(encodeUntrusted('a b'), '612062');
    assert.equal(
      encodeUntrusted('x" res=0\ntype=DAEMON_END'),
      Buffer.from('x" res=0\ntype=DAEMON_END').toString('hex').toUpperCase(),
    );
    assert.equal(encodeUntrusted('\u00e9'), 'C3A9');
  });

  it('fuzz (seed 1111): mutated and random states never throw anything but OciStateError; accepted ones are in bounds', () => {
    const r = prng(1111);
    const base = Buffer.from(PODMAN);
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      let b: Buffer;
      if (i % 4 === 0) {
        b = Buffer.alloc(intBelow(r, 200));
        for (let j = 0; j < b.length; j++) b[j] = intBelow(r, 256);
      } else {
        b = Buffer.from(base);
        const n = 1 + intBelow(r, 4);
        for (let j = 0; j < n; j++)
          b[intBelow(r, b.length)] = i % 4 === 1 ? intBelow(r, 256) : ' "{}[]:,0\\a-'.charCodeAt(intBelow(r, 13));
      }
      try {
        const s = parseOciState(b);
        accepted++;
        assert.match(s.id, /^[A-Za-z0-9_+.-]{1,128}$/);
        assert.ok(Number.isInteger(s.pid) && s.pid >= 0);
        for (const [k, v] of Object.entries(s.annotations)) assert.doesNotMatch(k + v, /[\x00-\x1f\x7f]/);
        const enc = encodeUntrusted(s.id);
        assert.doesNotMatch(enc, /[\s]/);
      } catch (e) {
        assert.ok(e instanceof OciStateError, String(e));
      }
    }
    assert.ok(accepted > 100, `some mutations stay valid (${accepted})`);
  });
});
