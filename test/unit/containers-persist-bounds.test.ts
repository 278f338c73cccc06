// The container state file within its own limits: the writer keeps to what the reader takes (labels cut to its
// maximum keeping the runtimes' keys, a byte budget below the read limit, what it left out reported), and the reader
// skips a bad entry, naming it, instead of refusing the file: one pod cannot erase every other container's namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContidTracker } from '../../src/contid/tracker';
import { Containers } from '../../src/containers/service';
import { ContainerRegistry } from '../../src/containers/registry';
import { metaFromAnnotations, type ContainerMeta } from '../../src/containers/metadata';
import { parseOciState } from '../../src/containers/oci-state';
import {
  CONTAINER_STATE_FILE,
  LABELS_MAX,
  MAX_PERSISTED,
  MAX_STATE_BYTES,
  encodeState,
  parseState,
} from '../../src/containers/persist';
import { intBelow, prng } from '../helpers/prng';

const BOOT = 'b0000000-0000-4000-8000-000000000002';
const RUNTIME_KEY = /^(?:io\.kubernetes\.|io\.auditmux\.|io\.container\.manager$|nerdctl\/|org\.opencontainers\.)/;

function containers(): Containers {
  return new Containers({ tracker: new ContidTracker({ cgroupMap: [] }), record: () => undefined });
}

/** Saves `fill`'s registry to a state file and restores it in a fresh service, as a daemon restart does. */
function restart(fill: (c: Containers) => void): { back: Containers; n: number; warnings: string[]; size: number } {
  const dir = mkdtempSync(join(tmpdir(), 'am-ctrbounds-'));
  try {
    const file = join(dir, CONTAINER_STATE_FILE);
    const warnings: string[] = [];
    const warn = (m: string): void => void warnings.push(m);
    const before = containers();
    before.restore(file, warn, BOOT);
    fill(before);
    before.save(file, warn, BOOT);
    const size = statSync(file).size;
    const back = containers();
    const n = back.restore(file, warn, BOOT);
    return { back, n, warnings, size };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A CRI-O pod's container as its hook registers it: `own` annotations of the pod (half in the state, half only in the
 * bundle's config.json, each within the hook's 64 KiB), `labels` pod labels.
 */
function crioMeta(ns: string, pod: string, own: number, labels: number, value = 'v'): ContainerMeta {
  const annotations: Record<string, string> = {
    'io.kubernetes.cri-o.Namespace': ns,
    'io.kubernetes.pod.namespace': ns,
    'io.kubernetes.pod.name': pod,
    'io.kubernetes.container.name': 'app',
  };
  const l: Record<string, string> = {};
  for (let i = 0; i < labels; i++) l[`team.example/l${String(i).padStart(3, '0')}`] = 'yes';
  annotations['io.kubernetes.cri-o.Labels'] = JSON.stringify(l);
  const bundle: Record<string, string> = {};
  for (let i = 0; i < own; i++)
    (i % 2 ? bundle : annotations)[`example.com/note-${String(i).padStart(3, '0')}`] = value;
  const doc = (a: Record<string, string>): string =>
    JSON.stringify({ ociVersion: '1.0.2', id: 'c', status: 'creating', pid: 0, annotations: a });
  // As Containers.fromHook merges them: the state's first, the bundle's where the state has none.
  const merged = { ...parseOciState(doc(annotations)).annotations };
  for (const [k, v] of Object.entries(parseOciState(doc(bundle)).annotations)) if (!(k in merged)) merged[k] = v;
  return metaFromAnnotations(merged);
}

test('a CRI-O pod with 200 annotations and 100 labels is taken back with 256 labels, the others with it', () => {
  const big = crioMeta('tenant-a', 'web-0', 195, 100);
  assert.equal(Object.keys(big.labels!).length, 300, 'over the reader maximum (256) in memory');
  const r = restart((c) => {
    c.registry.register({ runtime: 'podman', id: 'a'.repeat(64), contid: 11n, source: 'hook', meta: { name: 'db' } });
    c.registry.register({ runtime: 'cri-o', id: 'b'.repeat(64), contid: 12n, source: 'hook', meta: big });
  });
  assert.equal(r.n, 2, r.warnings.join('\n'));
  assert.equal(r.back.registry.get(11n)?.meta.name, 'db');
  const m = r.back.registry.get(12n)!.meta;
  assert.deepEqual([m.podNamespace, m.podName, m.containerName], ['tenant-a', 'web-0', 'app']);
  // Cut deterministically: every runtime/kubelet key, then the others by key.
  const keys = Object.keys(big.labels!);
  const runtimeKeys = keys.filter((k) => RUNTIME_KEY.test(k));
  const others = keys.filter((k) => !RUNTIME_KEY.test(k)).sort();
  assert.deepEqual(
    Object.keys(m.labels!).sort(),
    [...runtimeKeys, ...others.slice(0, 256 - runtimeKeys.length)].sort(),
  );
  assert.match(r.warnings.join('\n'), /written trimmed: 1 container\(s\) with labels cut to 256/);
  assert.equal(r.warnings.length, 1, r.warnings.join('\n'));
});

test('80 containers with maximal annotations: the file stays under the read limit and every one comes back', () => {
  // ~115 KiB each in the file: some 73 of them passed MAX_STATE_BYTES and the whole file was refused.
  const N = 80;
  const r = restart((c) => {
    for (let i = 0; i < N; i++)
      c.registry.register({
        runtime: 'cri-o',
        id: i.toString(16).padStart(64, '0'),
        contid: BigInt(1000 + i),
        source: 'hook',
        meta: crioMeta(`tenant-${i}`, `pod-${i}`, 240, 0, 'x'.repeat(450)),
      });
  });
  assert.equal(r.n, N, r.warnings.join('\n'));
  assert.ok(r.size <= MAX_STATE_BYTES, `${r.size} bytes`);
  let withLabels = 0;
  for (let i = 0; i < N; i++) {
    const m = r.back.registry.get(BigInt(1000 + i))!.meta;
    assert.equal(m.podNamespace, `tenant-${i}`, 'the namespace templates and routes select by survives');
    if (m.labels) withLabels++;
  }
  // Labels left out only as far as needed, and said so.
  assert.ok(withLabels >= 60 && withLabels < N, `${withLabels} with labels`);
  assert.match(r.warnings.join('\n'), new RegExp(`written trimmed: ${N - withLabels} without labels \\(file size\\)`));
});

/** A planted entry the reader must skip, and the reason it names. */
const BAD: Array<[(good: Record<string, unknown>) => unknown, RegExp]> = [
  [() => null, /must be an object/],
  [() => [1], /must be an object/],
  [(g) => ({ ...g, contid: '0' }), /is not a contid/],
  [(g) => ({ ...g, contid: '18446744073709551615' }), /is not a contid/],
  [(g) => ({ ...g, source: 'forged' }), /source must be hook or cgroup/],
  [(g) => ({ ...g, pid: -1 }), /pid must be a non-negative integer/],
  [(g) => ({ ...g, routed: 1.5 }), /routed must be a non-negative integer/],
  [(g) => ({ ...g, meta: 'x' }), /meta must be an object/],
  [(g) => ({ ...g, meta: { podNamespace: 'x'.repeat(4097) } }), /meta\.podNamespace must be a short string/],
  [
    (g) => ({ ...g, meta: { labels: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`k${i}`, 'v'])) } }),
    /over 256 labels/,
  ],
  [(g) => ({ ...g, meta: { labels: { a: null } } }), /short string keys and values only/],
  [(g) => ({ ...g, id: 7 }), /id must be a short string/],
];

test('one bad entry cannot erase the others: random state files, some entries bad, the good ones come back (seeded)', () => {
  const next = prng(0xb0a7d5);
  const dir = mkdtempSync(join(tmpdir(), 'am-ctrbounds-'));
  try {
    const file = join(dir, CONTAINER_STATE_FILE);
    for (let iter = 0; iter < 150; iter++) {
      const entries: unknown[] = [];
      const good = new Map<bigint, string>();
      const bad: number[] = [];
      const n = 1 + intBelow(next, 20);
      for (let i = 0; i < n; i++) {
        const contid = BigInt(1 + intBelow(next, 1 << 30)) * 4096n + BigInt(i);
        const g: Record<string, unknown> = {
          contid: contid.toString(),
          runtime: 'cri-o',
          id: `c${i}`,
          meta: { podNamespace: `ns-${iter}-${i}`, labels: { app: `a${i}` } },
          source: 'hook',
          pid: null,
          pidStart: null,
          firstSeen: 1,
          lastSeen: 2,
          routed: intBelow(next, 100),
          dropped: 0,
          hostOnly: 0,
        };
        const k = intBelow(next, BAD.length + 4);
        if (k < BAD.length) {
          entries.push(BAD[k]![0](g));
          bad.push(i);
        } else if (k === BAD.length && good.size) {
          // Another entry's contid again: the later one is skipped, the first keeps its own metadata.
          entries.push({ ...g, contid: [...good.keys()][0]!.toString(), meta: { podNamespace: 'thief' } });
          bad.push(i);
        } else {
          entries.push(g);
          good.set(contid, `ns-${iter}-${i}`);
        }
      }
      writeFileSync(file, JSON.stringify({ version: 1, boot: BOOT, containers: entries }));
      const warnings: string[] = [];
      const c = containers();
      assert.equal(
        c.restore(file, (m) => warnings.push(m), BOOT),
        good.size,
        `iteration ${iter}: ${warnings.join('\n')}`,
      );
      for (const [contid, ns] of good) assert.equal(c.registry.get(contid)?.meta.podNamespace, ns);
      // Each bad entry named by its index (the first 8), the rest counted.
      const named = warnings.filter((w) => / entry \d+ skipped \(containers\[\d+\]/.test(w));
      assert.deepEqual(
        named.map((w) => Number(/ entry (\d+) skipped/.exec(w)![1])),
        bad.slice(0, 8),
      );
      if (bad.length > 8) assert.match(warnings.at(-1)!, new RegExp(`: ${bad.length - 8} more entries skipped$`));
      assert.equal(warnings.length, Math.min(bad.length, 9));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writer: whatever the metadata and budget, the file is read back whole and what was left out is counted', () => {
  const next = prng(0x7a1b5);
  const text = (max: number): string => 'x'.repeat(intBelow(next, max + 1));
  for (let iter = 0; iter < 120; iter++) {
    const reg = new ContainerRegistry();
    const n = 1 + intBelow(next, 12);
    const runtimeKeys = new Map<bigint, string[]>();
    for (let i = 0; i < n; i++) {
      const labels: Record<string, string> = Object.create(null) as Record<string, string>;
      for (let j = intBelow(next, 400); j > 0; j--) {
        const base = intBelow(next, 10) === 0 ? `io.kubernetes.k${intBelow(next, 50)}` : `z${intBelow(next, 1000)}`;
        // Now and then a key or value longer than the reader takes.
        const k = intBelow(next, 60) === 0 ? `${base}${'k'.repeat(4100)}` : base;
        labels[k] = intBelow(next, 60) === 0 ? text(5000) : text(300);
      }
      const contid = BigInt(1 + i);
      // The runtime keys the reader can take: each must be kept.
      runtimeKeys.set(
        contid,
        Object.keys(labels).filter((k) => RUNTIME_KEY.test(k) && k.length <= 4096 && labels[k]!.length <= 4096),
      );
      reg.register({
        runtime: 'runc',
        id: `c${i}`,
        contid,
        source: 'cgroup',
        meta: { podNamespace: `ns${i}`, name: intBelow(next, 8) === 0 ? text(5000) : text(40), labels },
      });
    }
    const budget = 2000 + intBelow(next, 600_000);
    const { text: file, trim } = encodeState(BOOT, reg.liveContainers(), budget);
    assert.ok(Buffer.byteLength(file) <= budget, `iteration ${iter}: ${Buffer.byteLength(file)} > ${budget}`);
    const back = parseState(file, BOOT);
    assert.deepEqual(back.skipped, [], 'nothing the writer wrote is refused');
    assert.equal(back.containers.length + trim.entriesDropped, n, 'every container written or counted');
    for (const c of back.containers) {
      const labels = c.meta.labels;
      if (labels === undefined) continue;
      assert.ok(Object.keys(labels).length <= LABELS_MAX);
      // The runtimes' keys survive a cut (fewer than the maximum of them here).
      for (const k of runtimeKeys.get(c.contid)!) assert.ok(k in labels, `iteration ${iter}: ${k} kept`);
    }
  }
});

test('writer: past MAX_PERSISTED containers, the rest is counted, not silently lost', () => {
  const reg = new ContainerRegistry({ maxLive: MAX_PERSISTED + 10 });
  for (let i = 0; i < MAX_PERSISTED + 4; i++)
    reg.register({ runtime: 'runc', id: `c${i}`, contid: BigInt(1 + i), source: 'cgroup' });
  const { text, trim } = encodeState(BOOT, reg.liveContainers());
  assert.equal(parseState(text, BOOT).containers.length, MAX_PERSISTED);
  assert.equal(trim.entriesDropped, 4);
});
