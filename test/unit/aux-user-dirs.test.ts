// aux add with --user (emulated kernel): the host's log directory is never handed over; a fresh own directory is.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError, IoError } from '../../src/errors';
import { oneAuxYaml, startEmulatedHost, until } from '../helpers/emulated-host';

const isRoot = process.geteuid?.() === 0;
const NOBODY = 65534;

describe(
  'aux add: log directories of daemons with a user (emulated kernel)',
  { skip: isRoot ? false : 'needs root (chown, setuid)' },
  () => {
    it('refuses the host log directory and existing directories, gives a new daemon its own', async () => {
      const h = await startEmulatedHost({
        prefix: 'amauxuser-',
        exe: '/usr/bin/amauxuser',
        untaggedPid: 4343435,
        yaml: oneAuxYaml('log: { file: {dir}/a.log, format: RAW }'),
      });
      const { dir, daemon } = h;
      try {
        const names = (): string[] =>
          daemon.daemons
            .configs()
            .map((d) => d.name)
            .sort();
        // The attack: --log next to the host's audit.log would have made `nobody` the owner of the host's log
        // directory.
        await assert.rejects(
          daemon.auxAdd({ name: 'b', contid: ['200'], user: 'nobody', log: join(dir, 'b.log') }),
          (e: unknown) =>
            e instanceof UsageError &&
            /daemon "b" runs as user "nobody" .*which is the host's log directory/.test(e.message),
        );
        // The equivalent of --log /var/log/x.log: the directory above the host's.
        await assert.rejects(
          daemon.auxAdd({ name: 'b', contid: ['200'], user: 'nobody', log: join(dir, '..', 'x.log') }),
          (e: unknown) => e instanceof UsageError && /contains the host's log directory/.test(e.message),
        );
        // Any existing directory that is not already the user's: refused, not chowned.
        mkdirSync(join(dir, 'existing'), { mode: 0o700 });
        await assert.rejects(
          daemon.auxAdd({ name: 'b', contid: ['200'], user: 'nobody', log: join(dir, 'existing', 'b.log') }),
          (e: unknown) => e instanceof IoError && /existing is owned by uid 0, expected uid 65534/.test(e.message),
        );
        assert.equal(statSync(dir).uid, 0, "host log directory still root's");
        assert.equal(statSync(join(dir, 'existing')).uid, 0);
        assert.deepEqual(names(), ['a'], 'no refused daemon was left behind');

        // Without --log: <host log dir>/b/b.log, in a directory auditmux made and handed to nobody.
        const st = (await daemon.auxAdd({ name: 'b', contid: ['200'], user: 'nobody' })) as {
          log: string;
          isolation: string;
        };
        assert.equal(st.log, join(dir, 'b', 'b.log'));
        assert.equal(st.isolation, 'process');
        const bDir = statSync(join(dir, 'b'));
        assert.deepEqual([bDir.uid, bDir.mode & 0o777], [NOBODY, 0o700]);
        assert.equal(statSync(dir).uid, 0);
        const aux = daemon.daemons.get('b')!;
        await until(() => (aux.status() as { state: string }).state === 'running', 'b to run');
        // No daemon may then write inside b's directory.
        await assert.rejects(
          daemon.auxAdd({ name: 'c', contid: ['300'], log: join(dir, 'b', 'c.log') }),
          (e: unknown) =>
            e instanceof UsageError &&
            /inside .*\/b, the directory of daemon "b" which user "nobody" owns/.test(e.message),
        );
        // Nor may a reloaded config put one there.
        const yaml = oneAuxYaml('log: { file: {dir}/a.log, format: RAW }');
        yaml.splice(yaml.indexOf('routes:'), 0, '  - { name: c, log: { file: {dir}/b/c.log } }');
        writeFileSync(join(dir, 'auditmux.yaml'), yaml.map((l) => l.replaceAll('{dir}', dir)).join('\n') + '\n');
        const r = await daemon.reload();
        assert.equal(r.ok, false);
        assert.match(
          r.error ?? '',
          /daemon "b" runs as user "nobody" and would own .*\/b, which holds the log of daemon "c" .*added at run time/,
        );
        assert.deepEqual(names(), ['a', 'b']);
      } finally {
        await h.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
