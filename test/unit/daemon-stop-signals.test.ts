// A reload, rotate or resume that comes while the host stops (a SIGHUP, USR1 or USR2 in stop's waits) or after it
// stopped does nothing: no rule sync after the kernel was restored, no auxiliary process after they were stopped.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEmulatedHost } from '../helpers/emulated-host';

const EXE = '/usr/bin/amstopsig-test';

/** A config naming a process-isolated daemon `a`, its rules and a route: what a reload would start. */
function withDaemon(dir: string): string {
  return [
    'host:',
    `  rules: ${dir}/host.rules`,
    `  log: { file: ${dir}/audit.log, format: RAW }`,
    '  keep: unrouted',
    'daemons:',
    `  - { name: a, rules: ${dir}/a.rules, log: { file: ${dir}/a.log, format: RAW }, isolation: process }`,
    'routes:',
    '  - { contid: 100, daemons: [a] }',
  ].join('\n');
}

async function hostOnly(prefix: string): Promise<Awaited<ReturnType<typeof startEmulatedHost>>> {
  return startEmulatedHost({
    prefix,
    exe: EXE,
    untaggedPid: 4848001,
    yaml: ['host:', '  rules: {dir}/host.rules', '  log: { file: {dir}/audit.log, format: RAW }', '  keep: unrouted'],
  });
}

describe('signals while the host stops (emulated kernel)', () => {
  for (const when of ['during', 'after'] as const)
    it(`a reload ${when} the stop loads no rules and starts no daemon`, async () => {
      const h = await hostOnly('amstopsig-');
      try {
        assert.ok(h.kernel.rules.length > 0, 'precondition: the host rule is loaded');
        writeFileSync(join(h.dir, 'auditmux.yaml'), withDaemon(h.dir) + '\n');
        let reloaded: Promise<unknown>;
        if (when === 'during') {
          const stopped = h.stop();
          reloaded = h.daemon.reload();
          await stopped;
        } else {
          await h.stop();
          reloaded = h.daemon.reload();
        }
        const r = (await reloaded) as { ok: boolean; error?: string };
        assert.equal(h.kernel.rules.length, 0, 'the kernel keeps the rules it was found with (none)');
        assert.deepEqual(h.daemon.status().aux ?? {}, {}, 'no auxiliary daemon');
        assert.equal(h.daemon.daemons.isDaemonProcess(process.pid), false);
        assert.ok(!existsSync(join(h.dir, 'a.log')), "a's log was never opened");
        assert.deepEqual(r, { ok: false, error: 'the daemon is stopping' });
      } finally {
        rmSync(h.dir, { recursive: true, force: true });
      }
    });

  for (const when of ['during', 'after'] as const)
    it(`a rotate or resume ${when} the stop leaves the log as the stop wrote it`, async () => {
      const h = await hostOnly('amstopsig2-');
      try {
        if (when === 'during') {
          const stopped = h.stop();
          const signalled = [h.daemon.rotate(), h.daemon.resume()];
          await stopped;
          await Promise.all(signalled);
        } else {
          await h.stop();
          await h.daemon.rotate();
          await h.daemon.resume();
        }
        const log = readFileSync(join(h.dir, 'audit.log'), 'utf8').trimEnd().split('\n');
        assert.match(log.at(-1) ?? '', /type=DAEMON_END /, "the stop's record is the last");
        assert.equal(log.filter((l) => / type=DAEMON_(ROTATE|RESUME) /.test(l)).length, 0);
        assert.ok(!existsSync(join(h.dir, 'audit.log.1')), 'not rotated');
      } finally {
        rmSync(h.dir, { recursive: true, force: true });
      }
    });
});
