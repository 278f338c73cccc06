// Where `aux add --log` may put a daemon's log: inside the host's log directory, resolved through links, never a
// name another log rotates to. The orchestrator may pass a tenant's choice on; an existing file is never taken.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auxLogProblem } from '../../src/config/aux-paths';
import { oneAuxYaml, startEmulatedHost } from '../helpers/emulated-host';

describe('aux add --log placement', () => {
  it('refuses a file outside the host log directory, a rotation of another log, a link into the host log', async () => {
    const h = await startEmulatedHost({
      prefix: 'amlogplace-',
      exe: '/usr/bin/amtree-logplace',
      yaml: oneAuxYaml('log: { file: {dir}/a.log }'),
      untaggedPid: 4343431,
    });
    const outside = mkdtempSync(join(tmpdir(), 'amlogvictim-'));
    try {
      // A file that is not the trail's (old: accepted, chmod 0600 and appended to).
      const victim = join(outside, 'passwd');
      writeFileSync(victim, 'root:x:0:0:root:/root:/bin/bash\n', { mode: 0o644 });
      const add = (name: string, log: string): Promise<unknown> =>
        h.daemon.auxAdd({ name, contid: ['900'], log }, { pid: 1, uid: 0, gid: 0 });
      await assert.rejects(add('v', victim), /outside the host's log directory/);
      assert.equal(statSync(victim).mode & 0o777, 0o644, 'the file was not touched');
      // The host's sealed rotation and another daemon's (old: accepted).
      await assert.rejects(add('r', join(h.dir, 'audit.log.1')), /is a rotated name of the host's log/);
      await assert.rejects(add('s', join(h.dir, 'a.log.3.gz')), /is a rotated name of the log of daemon "a"/);
      // A directory inside the log directory that links back to it: `l/audit.log` is the host's live log.
      symlinkSync('.', join(h.dir, 'l'));
      await assert.rejects(add('t', join(h.dir, 'l', 'audit.log')), /log file .*l\/audit.log is the host.s log/);
      // And one that links out of it.
      symlinkSync(outside, join(h.dir, 'out'));
      await assert.rejects(add('u', join(h.dir, 'out', 'passwd')), /outside the host's log directory/);
      // A daemon's own directory below the log directory is still fine.
      mkdirSync(join(h.dir, 'tenants'));
      const ok = (await add('w', join(h.dir, 'tenants', 'w.log'))) as { name: string };
      assert.equal(ok.name, 'w');
      assert.deepEqual(
        h.daemon.daemons.list().map((r) => r.name),
        ['a', 'w'],
      );
    } finally {
      await h.stop();
      rmSync(h.dir, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('the config file may not name a log that rotates over another, either', () => {
    const host = '/var/log/auditmux/audit.log';
    const a = { name: 'a', user: null, file: '/var/log/auditmux/a.log' };
    assert.match(
      auxLogProblem({ name: 'b', user: null, file: '/var/log/auditmux/a.log.1' }, host, [a])!,
      /is a rotated name of the log of daemon "a"/,
    );
    assert.match(
      auxLogProblem({ name: 'c', user: null, file: '/var/log/auditmux/audit.log.12' }, host, [a])!,
      /is a rotated name of the host's log/,
    );
    assert.match(
      auxLogProblem({ name: 'd', user: null, file: '/var/log/auditmux/x' }, host, [
        { name: 'e', user: null, file: '/var/log/auditmux/x.2.gz' },
      ])!,
      /has a rotated name that is the log of daemon "e"/,
    );
    assert.equal(auxLogProblem({ name: 'f', user: null, file: '/var/log/auditmux/a.log.old' }, host, [a]), null);
  });
});
