// A container's runtime in the state file and in CONTAINER_OP records: the records carry it bare (`runtime=cri-o`),
// so a planted state entry whose runtime is `x res=success op=forged` is refused on read, and a runtime name that is
// not one of the daemon's own words is encoded like any value from outside: it never becomes fields of a record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContidTracker } from '../../src/contid/tracker';
import { Containers, containerRecordBody } from '../../src/containers/service';
import { ContainerRegistry } from '../../src/containers/registry';
import { CONTAINER_STATE_FILE } from '../../src/containers/persist';

const BOOT = 'b0000000-0000-4000-8000-000000000003';
const FORGED = 'x res=success op=forged';

/** A record body's fields, by name: a name given twice means a field was forged. */
function fields(body: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const w of body.split(' ')) {
    const eq = w.indexOf('=');
    const k = eq < 0 ? w : w.slice(0, eq);
    out.set(k, [...(out.get(k) ?? []), w.slice(eq + 1)]);
  }
  return out;
}

function entry(contid: number, runtime: string): Record<string, unknown> {
  return {
    contid: String(contid),
    runtime,
    id: `c${contid}`,
    meta: { name: `n${contid}` },
    source: 'hook',
    pid: null,
    pidStart: null,
    firstSeen: 1,
    lastSeen: 2,
    routed: 0,
    dropped: 0,
    hostOnly: 0,
  };
}

test('a planted state entry with runtime "x res=success op=forged" never reaches a record as fields', () => {
  const dir = mkdtempSync(join(tmpdir(), 'am-ctrruntime-'));
  try {
    const file = join(dir, CONTAINER_STATE_FILE);
    writeFileSync(file, JSON.stringify({ version: 1, boot: BOOT, containers: [entry(7, FORGED), entry(8, 'cri-o')] }));
    const records: string[] = [];
    const warnings: string[] = [];
    const c = new Containers({ tracker: new ContidTracker({ cgroupMap: [] }), record: (b) => records.push(b) });
    c.restore(file, (m) => warnings.push(m), BOOT);
    // Whatever was taken back retires (the scan finds it gone): each retirement is a record.
    for (const contid of [7n, 8n]) c.registry.retire(contid, 'gone');
    assert.ok(records.length >= 1, 'the good entry came back and retired');
    for (const r of records) {
      const f = fields(r);
      assert.deepEqual(f.get('res'), ['1'], r);
      assert.deepEqual(f.get('op'), ['container-retire'], r);
      assert.equal(f.get('runtime')!.length, 1, r);
    }
    assert.equal(records.length, 1, 'the forged entry is not taken back');
    assert.match(warnings.join('\n'), /entry 0 skipped \(containers\[0\]\.runtime "x res=success op=forged" is not a/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a record encodes a runtime that is not a runtime name; the daemon names stay bare', () => {
  const reg = new ContainerRegistry();
  const forged = reg.register({ runtime: FORGED, id: 'c1', contid: 1n, source: 'hook' }).info;
  const body = containerRecordBody('birth', forged);
  const f = fields(body);
  assert.deepEqual([f.get('op'), f.get('res')], [['container-birth'], ['1']], body);
  assert.deepEqual(f.get('runtime'), [Buffer.from(FORGED).toString('hex').toUpperCase()]);
  const names = ['docker', 'podman', 'cri-o', 'containerd', 'kubernetes', 'runc', 'nspawn', 'lxc', 'oci'];
  names.forEach((name, i) => {
    const c = reg.register({ runtime: name, id: `id-${name}`, contid: BigInt(100 + i), source: 'cgroup' }).info;
    assert.match(containerRecordBody('birth', c), new RegExp(` runtime=${name} container=`));
  });
});
