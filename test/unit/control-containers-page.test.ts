// `containers` in pages: a list of any size passes the control socket's per-client reply limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONTAINERS_PAGE_BYTES, containersPage } from '../../src/daemon/control-commands';
import { allContainers } from '../../src/cli/main';

/** `n` containers whose annotations (chosen by whoever starts a container) take `size` bytes each. */
function rows(n: number, size: number): Array<Record<string, unknown>> {
  return Array.from({ length: n }, (_, i) => ({
    contid: String(1000 + i),
    runtime: 'podman',
    id: `c${i}`,
    name: `n${i}`,
    annotations: { big: 'a'.repeat(size) },
    labels: { app: 'x' },
  }));
}

test('80 containers with 57 KiB of annotations each (4.5 MiB) come in pages of at most 1 MiB, none lost', async () => {
  const all = rows(80, 57 * 1024);
  assert.ok(JSON.stringify(all).length > 4 << 20, 'the whole list passes the 4 MiB reply limit');
  const sizes: number[] = [];
  const got = await allContainers((offset) => {
    const p = containersPage(all, offset);
    sizes.push(JSON.stringify(p).length);
    return Promise.resolve(JSON.parse(JSON.stringify(p)) as unknown);
  });
  assert.deepEqual(got, all);
  assert.ok(sizes.length >= 5, `pages: ${sizes.length}`);
  for (const s of sizes) assert.ok(s <= CONTAINERS_PAGE_BYTES + 100, `page of ${s} bytes`);
});

test('a row larger than a page alone is sent without its labels and annotations, marked truncated', () => {
  const all = rows(3, CONTAINERS_PAGE_BYTES + 10);
  const p = containersPage(all, 1);
  assert.deepEqual(p.rows, [
    { contid: '1001', runtime: 'podman', id: 'c1', name: 'n1', truncated: true },
    { contid: '1002', runtime: 'podman', id: 'c2', name: 'n2', truncated: true },
  ]);
  assert.equal(p.next, null);
  assert.equal(p.total, 3);
  assert.deepEqual(containersPage(all, 3), { rows: [], total: 3, next: null });
});

test('a daemon whose pages do not move on ends the reading instead of looping', async () => {
  let calls = 0;
  const got = await allContainers(() => {
    calls++;
    return Promise.resolve({ rows: [{ contid: '1' }], next: 0 });
  });
  assert.equal(calls, 1);
  assert.equal(got.length, 1);
  await assert.rejects(
    allContainers(() => Promise.resolve([{ contid: '1' }])),
    (e: Error & { code?: string }) => e.code === 'E_CONTROL_PROTOCOL',
  );
});
