// Outputs through the daemons: the host and an auxiliary daemon each feed an auditd plugin besides their logs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { oneAuxYaml, startEmulatedHost, syscallSerialCounts, until } from '../helpers/emulated-host';

const EXE = '/usr/bin/amtree-outputs';
const serials = (text: string, key: string): Set<string> => new Set(syscallSerialCounts(text, key).keys());

describe('daemon outputs (emulated mainline kernel)', () => {
  for (const isolation of ['inline', 'process'] as const)
    it(`host and auxiliary (${isolation}) plugins get the same events as the logs, EOE included`, async () => {
      const pluginOut = (name: string): string =>
        `[{ type: plugin, name: p-${name}, path: {dir}/plugin.sh, args: [{dir}/${name}.plugin], format: string, log_format: RAW, spool: { dir: {dir}/spool/${name} } }]`;
      const h = await startEmulatedHost({
        prefix: 'amout-',
        exe: EXE,
        untaggedPid: 4242424,
        // An auditd plugin in string format: whatever arrives on stdin is appended to a file.
        prepare: (dir) => {
          writeFileSync(join(dir, 'plugin.sh'), '#!/bin/sh\nexec cat >> "$1"\n');
          chmodSync(join(dir, 'plugin.sh'), 0o755);
        },
        yaml: oneAuxYaml(
          `log: { file: {dir}/a.log, format: RAW }, outputs: ${pluginOut('a')}, isolation: ${isolation}`,
          pluginOut('host'),
        ),
      });
      const dir = h.dir;
      try {
        for (let i = 0; i < 200; i++) {
          h.kernel.emitEvent(h.untaggedPid, 'getppid', 0);
          if (i % 2 === 0) h.kernel.emitEvent(h.tagged.pid!, 'getppid', 0);
          if (i % 50 === 0) await new Promise((r) => setImmediate(r));
        }
        // Wait for what the host accepted, not for a fixed time: stop() must then drain the rest everywhere.
        const hostLog = join(dir, 'audit.log');
        await until(
          () => existsSync(hostLog) && serials(readFileSync(hostLog, 'utf8'), 'host-k').size === 200,
          'the host log holds all 200 host events',
        );
      } finally {
        await h.stop();
      }
      try {
        const log = readFileSync(join(dir, 'audit.log'), 'utf8');
        const hostPlugin = existsSync(join(dir, 'host.plugin')) ? readFileSync(join(dir, 'host.plugin'), 'utf8') : '';
        assert.equal(serials(log, 'host-k').size, 200, 'host log');
        assert.deepEqual(
          [...serials(hostPlugin, 'host-k')].sort(),
          [...serials(log, 'host-k')].sort(),
          'the host plugin got the same events',
        );
        assert.match(hostPlugin, /^type=EOE msg=audit\(/m, 'plugins get EOE, the log does not');
        assert.doesNotMatch(log, /type=EOE/);
        assert.match(
          hostPlugin,
          /^type=DAEMON_START msg=audit\([^)]*\): op=aux-start daemon=a /m,
          'the host daemon records reach its plugin, as auditd dispatches them',
        );
        const aLog = readFileSync(join(dir, 'a.log'), 'utf8');
        const aPlugin = existsSync(join(dir, 'a.plugin')) ? readFileSync(join(dir, 'a.plugin'), 'utf8') : '';
        assert.equal(serials(aLog, 'tree-a').size, 100, 'the auxiliary log holds the tagged process');
        assert.deepEqual(
          [...serials(aPlugin, 'tree-a')].sort(),
          [...serials(aLog, 'tree-a')].sort(),
          'its plugin got the same',
        );
        assert.match(aPlugin, /^type=CONTAINER_ID msg=audit\([^)]*\): record=1 contid=100$/m);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
});
