// Inline auxiliary daemons (written by the host process): a failure inside one is a crash that loses nothing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import pino from 'pino';
import { EmulatedKernel } from '../../src/kernel/emulated-kernel';
import { HostDaemon } from '../../src/daemon/host';
import type { AuxDaemon } from '../../src/daemon/aux-daemon';

const EXE = '/usr/bin/amtree-inline';

function serialCounts(text: string, key: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const l of text.split('\n')) {
    if (!l.includes('type=SYSCALL ') || !l.includes(`key="${key}"`)) continue;
    const s = /audit\(\d+\.\d+:(\d+)\)/.exec(l)![1]!;
    out.set(s, (out.get(s) ?? 0) + 1);
  }
  return out;
}

const until = async (f: () => boolean, what: string): Promise<void> => {
  const end = Date.now() + 10_000;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('inline auxiliary daemon (emulated mainline kernel)', () => {
  it('a write that throws mid-run: the daemon is reopened, its queue written, no event lost or twice, the host unaffected', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aminline-'));
    writeFileSync(join(dir, 'host.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${EXE} -k host-k\n`);
    writeFileSync(join(dir, 'a.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${EXE} -k tree-a\n`);
    writeFileSync(join(dir, 'auditmux.yaml'), [
      'host:',
      `  rules: ${join(dir, 'host.rules')}`,
      `  log: { file: ${join(dir, 'audit.log')}, format: RAW }`,
      '  keep: unrouted',
      'daemons:',
      `  - { name: a, rules: ${join(dir, 'a.rules')}, log: { file: ${join(dir, 'a', 'a.log')}, format: RAW }, queue: { depth: 100000 } }`,
      'routes:',
      '  - { contid: 100, daemons: [a] }',
    ].join('\n') + '\n');
    const kernel = new EmulatedKernel({ ackOrder: 'random' });
    const daemon = new HostDaemon({ configPath: join(dir, 'auditmux.yaml'), diag: pino({ level: 'silent' }), socket: kernel.socket(), emulated: kernel, noControl: true });
    const tagged = spawn('sleep', ['30'], { stdio: 'ignore' });
    const N = 400;
    try {
      await daemon.start();
      const a = (daemon as unknown as { auxes: Map<string, AuxDaemon> }).auxes.get('a')!;
      const st = a.status();
      assert.equal(st.isolation, 'inline');
      assert.equal(st.pid, 0, 'no process of its own');
      kernel.spawn(1, 0);
      kernel.spawn(tagged.pid!, 1, { exe: EXE });
      kernel.spawn(4343434, 1, { exe: EXE });
      daemon.contidSet(tagged.pid!, '100', false, { pid: process.pid, uid: 0, gid: 0 });
      let injected = 0;
      for (let i = 0; i < N; i++) {
        kernel.emitEvent(tagged.pid!, 'getppid', 0);
        kernel.emitEvent(4343434, 'getppid', 0);
        if (i === N / 2) {
          // Fault injection: the writer's next write throws after writing half of the event's records.
          const w = (a as unknown as { writer: { write: (r: unknown[]) => void } }).writer;
          const orig = w.write.bind(w);
          w.write = (records: unknown[]) => {
            if (injected++ === 0) {
              orig(records.slice(0, 1));
              throw new Error('injected write failure');
            }
            orig(records);
          };
        }
        if (i % 20 === 0) await new Promise((r) => setImmediate(r));
      }
      await until(() => {
        const s = a.status() as { state: string; queued: number; crashes: number };
        return s.state === 'running' && s.queued === 0 && s.crashes === 1;
      }, 'the inline daemon to be reopened and drained');
      assert.equal(injected, 1, 'the failure hit exactly one write');
    } finally {
      await daemon.stop();
      tagged.kill();
    }
    try {
      const aLog = readFileSync(join(dir, 'a', 'a.log'), 'utf8');
      const counts = serialCounts(aLog, 'tree-a');
      assert.equal(counts.size, N, 'every tagged event is in the auxiliary log');
      assert.deepEqual([...counts.values()].filter((c) => c !== 1), [], 'none twice: the half-written event was recognised on reopen');
      const hLog = readFileSync(join(dir, 'audit.log'), 'utf8');
      assert.equal(serialCounts(hLog, 'host-k').size, N, 'the host log has every untagged event');
      assert.equal(serialCounts(hLog, 'tree-a').size, 0, 'and none of the daemon\'s');
      assert.match(hLog, /op=aux-crash daemon=a error="injected write failure" res=failed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
