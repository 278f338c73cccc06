// Outputs through the daemons: the host and an auxiliary daemon each feed an auditd plugin besides their logs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import pino from 'pino';
import { EmulatedKernel } from '../../src/kernel/emulated-kernel';
import { HostDaemon } from '../../src/daemon/host';

const EXE = '/usr/bin/amtree-outputs';

function serials(text: string, key: string): Set<string> {
  const out = new Set<string>();
  for (const l of text.split('\n')) if (l.includes('type=SYSCALL ') && l.includes(`key="${key}"`)) out.add(/audit\(\d+\.\d+:(\d+)\)/.exec(l)![1]!);
  return out;
}

describe('daemon outputs (emulated mainline kernel)', () => {
  for (const isolation of ['inline', 'process'] as const) it(`host and auxiliary (${isolation}) plugins get the same events as the logs, EOE included`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amout-'));
    const plugin = join(dir, 'plugin.sh');
    // An auditd plugin in string format: whatever arrives on stdin is appended to a file.
    writeFileSync(plugin, '#!/bin/sh\nexec cat >> "$1"\n');
    chmodSync(plugin, 0o755);
    writeFileSync(join(dir, 'host.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${EXE} -k host-k\n`);
    writeFileSync(join(dir, 'a.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${EXE} -k tree-a\n`);
    const pluginOut = (name: string): string =>
      `[{ type: plugin, name: p-${name}, path: ${plugin}, args: [${join(dir, `${name}.plugin`)}], format: string, log_format: RAW, spool: { dir: ${join(dir, 'spool', name)} } }]`;
    writeFileSync(join(dir, 'auditmux.yaml'), [
      'host:',
      `  rules: ${join(dir, 'host.rules')}`,
      `  log: { file: ${join(dir, 'audit.log')}, format: RAW }`,
      '  keep: unrouted',
      `  outputs: ${pluginOut('host')}`,
      'daemons:',
      `  - { name: a, rules: ${join(dir, 'a.rules')}, log: { file: ${join(dir, 'a.log')}, format: RAW }, outputs: ${pluginOut('a')}, isolation: ${isolation} }`,
      'routes:',
      '  - { contid: 100, daemons: [a] }',
    ].join('\n') + '\n');
    const kernel = new EmulatedKernel({ ackOrder: 'random' });
    const daemon = new HostDaemon({ configPath: join(dir, 'auditmux.yaml'), diag: pino({ level: 'silent' }), socket: kernel.socket(), emulated: kernel, noControl: true });
    // On mainline the tracker checks /proc: the tagged process must really exist, without children.
    const tagged = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await daemon.start();
      kernel.spawn(1, 0);
      kernel.spawn(tagged.pid!, 1, { exe: EXE });
      kernel.spawn(4242424, 1, { exe: EXE });
      daemon.contidSet(tagged.pid!, '100', false, { pid: process.pid, uid: 0, gid: 0 });
      for (let i = 0; i < 200; i++) {
        kernel.emitEvent(4242424, 'getppid', 0);
        if (i % 2 === 0) kernel.emitEvent(tagged.pid!, 'getppid', 0);
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await daemon.stop();
      tagged.kill();
    }
    try {
      const log = readFileSync(join(dir, 'audit.log'), 'utf8');
      const hostPlugin = existsSync(join(dir, 'host.plugin')) ? readFileSync(join(dir, 'host.plugin'), 'utf8') : '';
      assert.equal(serials(log, 'host-k').size, 200, 'host log');
      assert.deepEqual([...serials(hostPlugin, 'host-k')].sort(), [...serials(log, 'host-k')].sort(), 'the host plugin got the same events');
      assert.match(hostPlugin, /^type=EOE msg=audit\(/m, 'plugins get EOE, the log does not');
      assert.doesNotMatch(log, /type=EOE/);
      const aLog = readFileSync(join(dir, 'a.log'), 'utf8');
      const aPlugin = existsSync(join(dir, 'a.plugin')) ? readFileSync(join(dir, 'a.plugin'), 'utf8') : '';
      assert.equal(serials(aLog, 'tree-a').size, 100, 'the auxiliary log holds the tagged process');
      assert.deepEqual([...serials(aPlugin, 'tree-a')].sort(), [...serials(aLog, 'tree-a')].sort(), 'its plugin got the same');
      assert.match(aPlugin, /^type=CONTAINER_ID msg=audit\([^)]*\): record=1 contid=100$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
