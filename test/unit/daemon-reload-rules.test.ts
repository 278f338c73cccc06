// A host rules file that starts with -D (as most do), reloaded: the kernel holds the host's and the tenants' rules
// again afterwards, not none; a tenant file rewritten to something refused keeps that daemon's accepted rules loaded.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { oneAuxYaml, startEmulatedHost, until } from '../helpers/emulated-host';
import { decodeRule } from '../../src/rules/codec';
import type { KernelSession } from '../../src/daemon/kernel-session';

const EXE = '/usr/bin/amreload-test';

describe('reloading rules (emulated kernel)', () => {
  it('-D in the host rules file at a reload: every rule is loaded again', async () => {
    const h = await startEmulatedHost({
      prefix: 'amreloadrules-',
      exe: EXE,
      untaggedPid: 4343001,
      yaml: oneAuxYaml('log: { file: {dir}/a.log, format: RAW }'),
    });
    try {
      const keys = (): string[] => h.kernel.rules.map((b) => decodeRule(b).keys.join(',')).sort();
      // The fork/exit tracking rules (two: 64- and 32-bit) follow the contid the host set just after its start.
      for (let i = 0; keys().filter((k) => k === 'auditmux-contid-track').length < 2; i++) {
        if (i > 250) throw new Error(`tracking rules never loaded: ${keys().join(' | ')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const before = keys();
      assert.equal(before.length, 3, before.join(' | '));
      const host = join(h.dir, 'host.rules');
      writeFileSync(host, `-D\n${readFileSync(host, 'utf8')}`);
      assert.deepEqual(await h.daemon.reload(), { ok: true });
      assert.deepEqual(keys(), before, 'the same rules after -D and the reload');
      // The tenant rewrites its file after it was accepted: the host's next sync keeps what was accepted.
      writeFileSync(join(h.dir, 'a.rules'), '-e 0\n');
      writeFileSync(
        host,
        readFileSync(host, 'utf8') + `-a always,exit -F arch=b64 -S getpid -F exe=${EXE} -k host-2\n`,
      );
      await h.daemon.reload().catch(() => undefined);
      assert.ok(
        keys().some((k) => k.includes('tree-a')),
        `a's rules stay loaded: ${keys().join(' | ')}`,
      );
    } finally {
      await h.stop();
    }
  });

  it("a tenant's rule identical to the host's, with long keys on both: one group tag, each log its own keys", async () => {
    const h = await startEmulatedHost({
      prefix: 'amreloadgroup-',
      exe: EXE,
      untaggedPid: 4343002,
      yaml: oneAuxYaml('log: { file: {dir}/a.log, format: RAW }'),
    });
    try {
      // 200 + 200 bytes of keys and the owner tag pass the kernel's 256: the sync of every rule failed on this.
      const hk = 'h'.repeat(200);
      const ak = 'a'.repeat(200);
      const rule = (k: string): string => `-a always,exit -F arch=b64 -S getppid -F exe=${EXE} -k ${k}\n`;
      writeFileSync(join(h.dir, 'host.rules'), rule(hk));
      writeFileSync(join(h.dir, 'a.rules'), rule(ak));
      assert.deepEqual(await h.daemon.reload(), { ok: true });
      const keys = h.kernel.rules.map((b) => decodeRule(b).keys.join(','));
      assert.ok(
        keys.some((k) => /^auditmux-group:[0-9a-f]{32}$/.test(k)),
        keys.join(' | '),
      );
      h.kernel.emitEvent(h.untaggedPid, 'getppid', 0);
      h.kernel.emitEvent(h.tagged.pid!, 'getppid', 0);
      const read = (f: string): string => readFileSync(join(h.dir, f), 'utf8');
      await until(() => read('a.log').includes('type=SYSCALL'), "the tagged process's event in a's log");
      await until(() => read('audit.log').includes(`key="${hk}"`), "the host's event in its log");
      const aSys = read('a.log')
        .split('\n')
        .filter((l) => l.includes('type=SYSCALL'));
      assert.equal(aSys.length, 1);
      assert.match(aSys[0]!, new RegExp(` pid=${h.tagged.pid!} .* key="${ak}"`));
      assert.doesNotMatch(read('audit.log'), /auditmux-group|aaaa/);
      // The tenant changes its key: a new group, a new tag. Events of the old rule read after the sync (a backlog)
      // still carry the old tag: it still names its owners and keys.
      const session = (h.daemon as unknown as { session: KernelSession }).session;
      const oldTag = keys.find((k) => k.startsWith('auditmux-group:'))!;
      writeFileSync(join(h.dir, 'a.rules'), rule('b'.repeat(200)));
      assert.deepEqual(await h.daemon.reload(), { ok: true });
      const now = h.kernel.rules.map((b) => decodeRule(b).keys.join(','));
      assert.ok(!now.includes(oldTag), now.join(' | '));
      assert.deepEqual(session.keyGroup(oldTag)?.owners, ['a']);
      assert.deepEqual(session.keysFor('a', [oldTag]), [ak]);
      assert.deepEqual(session.keysFor(null, [oldTag]), [hk]);
    } finally {
      await h.stop();
    }
  });
});
