// The routing suite against an emulated kernel with the contid patch set: kernel CONTAINER_ID records, contid rule
// fields.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { EmulatedKernel } from '../helpers/emulated-kernel';
import { emulatedHostOptions } from '../helpers/emulated-contid-source';
import { HostDaemon } from '../../src/daemon/host';
import { PermissionError } from '../../src/errors';
import { decodeRule } from '../../src/rules';
import { Field } from '../../src/kernel/constants';

const EXE = '/usr/bin/amtree-emulated';
const peer = { pid: 50, uid: 0, gid: 0 };

function syscallSerials(text: string, key: string): string[] {
  const out: string[] = [];
  for (const l of text.split('\n')) {
    if (!l.startsWith('type=SYSCALL ') || !l.includes(`key="${key}"`)) continue;
    out.push(/msg=audit\(\d+\.\d+:(\d+)\)/.exec(l)![1]!);
  }
  return out;
}

async function until(cond: () => boolean, what: string, ms = 15000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('routing on a kernel with the contid patch set (emulated)', () => {
  it('A gets exactly tree 100, B exactly tree 200, the host the rest; kill -9 of A loses nothing; host-wide rules refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amemu-'));
    const kernel = new EmulatedKernel({ contid: true, ackOrder: 'random' });
    const rule = (key: string): string => `-a always,exit -F arch=b64 -S getppid -F exe=${EXE} -k ${key}\n`;
    writeFileSync(join(dir, 'host.rules'), rule('host-k'));
    writeFileSync(join(dir, 'a.rules'), rule('tree-a'));
    writeFileSync(join(dir, 'b.rules'), rule('tree-b'));
    const conf = join(dir, 'auditmux.yaml');
    writeFileSync(
      conf,
      [
        'host:',
        `  rules: ${join(dir, 'host.rules')}`,
        `  log: { file: ${join(dir, 'audit.log')}, format: RAW, max_log_file: 100 }`,
        '  keep: unrouted',
        'daemons:',
        `  - { name: a, rules: ${join(dir, 'a.rules')}, log: { file: ${join(dir, 'a.log')}, format: RAW }, queue: { depth: 100000 }, isolation: process }`,
        'routes:',
        '  - { contid: 100, daemons: [a] }',
      ].join('\n') + '\n',
    );
    const daemon = new HostDaemon({
      configPath: conf,
      diag: pino({ level: 'silent' }),
      ...emulatedHostOptions(kernel),
      noControl: true,
    });
    try {
      await daemon.start();
      // B runs as an unprivileged user, in a log directory of its own that the host prepares for it.
      await daemon.auxAdd({
        name: 'b',
        rules: join(dir, 'b.rules'),
        contid: ['200'],
        log: join(dir, 'b', 'b.log'),
        queue: 100000,
        user: 'nobody',
      });
      await until(() => (daemon.status().aux as Record<string, { state: string }>).b?.state === 'running', 'B running');
      const bPid = (daemon.status().aux as Record<string, { pid: number }>).b!.pid;
      assert.match(readFileSync(`/proc/${bPid}/status`, 'utf8'), /^Uid:\s+65534\s/m, 'B runs as nobody');
      // A daemon added at run time survives a reload of the configuration file.
      assert.deepEqual(await daemon.reload(), { ok: true });
      assert.equal((daemon.status().aux as Record<string, { pid: number }>).b!.pid, bPid, 'B untouched by the reload');
      // The kernel filters by contid itself: A's and B's rules carry the contid field.
      const withContid = kernel.rules
        .map((b) => decodeRule(b))
        .filter((r) => r.fields.some((f) => f.field === Field.contid));
      assert.deepEqual(withContid.map((r) => r.fields.find((f) => f.field === Field.contid)!.u64).sort(), [100n, 200n]);

      const rulesBefore = kernel.rules.map((b) => b.toString('hex'));
      for (const bad of ['-e 0', '-D', '-b 1']) {
        writeFileSync(join(dir, 'c.rules'), `${rule('tree-c')}${bad}\n`);
        await assert.rejects(
          daemon.auxAdd({ name: 'c', rules: join(dir, 'c.rules'), contid: ['300'] }),
          (e: unknown) => e instanceof PermissionError && /c\.rules:2/.test(e.message),
        );
        assert.deepEqual(
          kernel.rules.map((b) => b.toString('hex')),
          rulesBefore,
          `${bad}: kernel unchanged`,
        );
      }

      kernel.spawn(1, 0);
      kernel.spawn(50, 1);
      const roots = { 100: 1000, 200: 2000, unset: 3000 };
      for (const root of Object.values(roots)) kernel.spawn(root, 50, { exe: EXE });
      daemon.contid.set(roots[100], '100', false, peer);
      daemon.contid.set(roots[200], '200', false, peer);
      assert.throws(() => daemon.contid.set(roots[200], '300', false, peer), /EEXIST/);
      for (const root of Object.values(roots)) for (let i = 1; i <= 3; i++) kernel.spawn(root + i, root, { exe: EXE });
      const EACH = 250;
      const pids = Object.values(roots).flatMap((r) => [r, r + 1, r + 2, r + 3]);
      for (let round = 0; round < EACH; round++) {
        for (const pid of pids) kernel.emitEvent(pid, 'getppid', 0);
        if (round === EACH / 2) {
          const a = (daemon.status().aux as Record<string, { pid: number }>).a!;
          assert.ok(a.pid > 0, 'A has a process of its own');
          process.kill(a.pid, 'SIGKILL');
        }
        if (round % 25 === 0) await new Promise((r) => setImmediate(r));
      }
      await until(() => {
        const a = (daemon.status().aux as Record<string, { queued: number; state: string; restarts: number }>).a!;
        return a.restarts === 1 && a.state === 'running' && a.queued === 0;
      }, 'A restarted and drained');
    } finally {
      await daemon.stop();
    }
    try {
      const PER_TREE = 4 * 250;
      const aLog = readFileSync(join(dir, 'a.log'), 'utf8');
      const bLog = readFileSync(join(dir, 'b', 'b.log'), 'utf8');
      const hLog = readFileSync(join(dir, 'audit.log'), 'utf8');
      const a = syscallSerials(aLog, 'tree-a');
      const b = syscallSerials(bLog, 'tree-b');
      assert.equal(new Set(a).size, PER_TREE, 'A: every event of tree 100');
      assert.equal(a.length, PER_TREE, 'A: none twice');
      assert.equal(new Set(b).size, PER_TREE);
      assert.equal(b.length, PER_TREE);
      assert.equal(syscallSerials(hLog, 'host-k').length, PER_TREE, 'host: the untagged tree');
      assert.equal(syscallSerials(aLog, 'host-k').length + syscallSerials(aLog, 'tree-b').length, 0);
      assert.match(aLog, /^type=CONTAINER_ID msg=audit\([^)]*\): record=1 contid=100$/m);
      assert.match(aLog, /^type=SYSCALL .* key="tree-a" record=1$/m);
      assert.doesNotMatch(aLog + bLog + hLog, /auditmux-aux:/);
      // the reason holds the tenant's rule text: hex-encoded as the kernel encodes untrusted strings
      const reason = /op=refused reason=([0-9A-F]+) daemon=c /.exec(hLog);
      assert.ok(reason, 'refusal record');
      assert.match(Buffer.from(reason[1]!, 'hex').toString('utf8'), /host-wide/);
      assert.equal(kernel.rules.length, 0, 'rules removed at stop');
      assert.equal(kernel.status.pid, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
