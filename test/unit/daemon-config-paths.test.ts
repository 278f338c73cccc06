// A daemon is the same whichever way it is made: the config file, `aux add` and the control socket share one builder
// (defaults) and one queue-depth check.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../src/cli/main';
import { controlRequest } from '../../src/daemon/control';
import { oneAuxYaml, startEmulatedHost, until } from '../helpers/emulated-host';

const EXE = '/usr/bin/amtree-paths';
const SEP = '\x1d';

describe('one daemon config for the config file, aux add and the control socket', () => {
  it('a daemon added at run time gets the same default log format as one from the file (ENRICHED, host RAW)', async () => {
    const yaml = oneAuxYaml('log: { file: {dir}/a.log }');
    yaml.splice(1, 0, '  control_socket: {dir}/c.sock');
    const h = await startEmulatedHost({ prefix: 'ampaths-', exe: EXE, untaggedPid: 4545454, yaml, control: true });
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    const sock = join(h.dir, 'c.sock');
    try {
      await controlRequest(sock, 'aux-add', { name: 'b', contid: ['200'] });
      h.kernel.spawn(other.pid!, 1, { exe: EXE });
      h.daemon.contid.set(other.pid!, '200', false, { pid: process.pid, uid: 0, gid: 0 });
      const syscalls = (f: string): string[] => {
        try {
          return readFileSync(join(h.dir, f), 'utf8')
            .split('\n')
            .filter((l) => l.startsWith('type=SYSCALL '));
        } catch {
          return [];
        }
      };
      await until(() => {
        h.kernel.emitEvent(h.tagged.pid!, 'getppid', 0);
        h.kernel.emitEvent(other.pid!, 'getppid', 0);
        return syscalls('a.log').length > 0 && syscalls('b.log').length > 0;
      }, 'events in both auxiliary logs');
      assert.ok(
        syscalls('audit.log').every((l) => !l.includes(SEP)),
        'the host log is RAW',
      );
      assert.ok(syscalls('a.log')[0]!.includes(SEP), 'the daemon from the file logs ENRICHED');
      assert.ok(syscalls('b.log')[0]!.includes(SEP), 'the daemon from aux add logs ENRICHED too');
    } finally {
      other.kill();
      await h.stop();
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('the control socket refuses the queue depths the config file refuses', async () => {
    const yaml = oneAuxYaml('log: { file: {dir}/a.log }');
    yaml.splice(1, 0, '  control_socket: {dir}/c.sock');
    const h = await startEmulatedHost({ prefix: 'ampaths-', exe: EXE, untaggedPid: 4545455, yaml, control: true });
    const sock = join(h.dir, 'c.sock');
    try {
      for (const [i, queue] of [0, 1.5, 10_000_001, -3, '100'].entries()) {
        await assert.rejects(
          controlRequest(sock, 'aux-add', { name: `q${i}`, contid: [String(300 + i)], queue }),
          (e: Error & { code?: string }) => e.code === 'E_USAGE' && /queue/.test(e.message),
          `queue ${queue} refused`,
        );
      }
      const ok = (await controlRequest(sock, 'aux-add', { name: 'q', contid: ['400'], queue: 10_000_000 })) as {
        queueDepth: number;
      };
      assert.equal(ok.queueDepth, 10_000_000);
      const names = ((await controlRequest(sock, 'aux-list')) as Array<{ name: string }>).map((a) => a.name);
      assert.deepEqual(names.sort(), ['a', 'q'], 'no refused daemon was added');
    } finally {
      await h.stop();
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('aux add --queue is checked against the same bounds before any connection', async () => {
    const run = async (queue: string): Promise<unknown> => {
      const program = buildProgram({ out: () => undefined, err: () => undefined }, () => undefined);
      const argv = ['aux', 'add', 'x', '--contid', '1', '--queue', queue, '-c', '/nonexistent/auditmux.yaml'];
      return program.parseAsync(argv, { from: 'user' });
    };
    for (const q of ['0', '10000001', '1.5', 'x']) {
      await assert.rejects(run(q), /--queue must be an integer between 1 and 10000000/, `--queue ${q}`);
    }
    // In bounds: the parse passes, and the command stops at the missing config file instead.
    await assert.rejects(run('10000000'), /config file \/nonexistent\/auditmux.yaml does not exist/);
  });
});
