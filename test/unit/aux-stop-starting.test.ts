// A process daemon stopped before it has said READY still writes what was routed to it: nothing accepted is lost.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { oneAuxYaml, startEmulatedHost, syscallSerialCounts } from '../helpers/emulated-host';

it('events routed to a process daemon that is still starting are written when the host stops at once', async () => {
  const h = await startEmulatedHost({
    prefix: 'amstart-',
    exe: '/usr/bin/amtree-start',
    untaggedPid: 4242425,
    yaml: oneAuxYaml('log: { file: {dir}/a.log, format: RAW }, isolation: process'),
  });
  const dir = h.dir;
  try {
    // No wait for the child's READY: the host stops while the events are still queued for it.
    for (let i = 0; i < 50; i++) h.kernel.emitEvent(h.tagged.pid!, 'getppid', 0);
  } finally {
    await h.stop();
  }
  try {
    const aLog = readFileSync(join(dir, 'a.log'), 'utf8');
    assert.equal(syscallSerialCounts(aLog, 'tree-a').size, 50, 'every queued event reached the daemon log');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
