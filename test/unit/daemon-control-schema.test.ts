// Every control request's arguments are checked against one schema before anything runs: a wrong type, a missing or
// unknown argument is an E_USAGE answer naming it, never a default silently taken instead.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { controlRequest } from '../../src/daemon/control';
import { buildDaemonConfig } from '../../src/config/daemon-config';
import { oneAuxYaml, startEmulatedHost } from '../helpers/emulated-host';

const EXE = '/usr/bin/amtree-schema';

/** One request line as is (one a client library could not make) and its parsed answer. */
function rawRequest(path: string, line: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path, () => s.write(line + '\n'));
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        s.destroy();
        resolve(JSON.parse(out.slice(0, nl)));
      }
    });
    s.on('error', reject);
  });
}

describe('control commands: one schema for every request', () => {
  it('refuses wrong types, missing and unknown arguments; nothing is added', async () => {
    const yaml = oneAuxYaml('log: { file: {dir}/a.log }');
    yaml.splice(1, 0, '  control_socket: {dir}/c.sock');
    const h = await startEmulatedHost({ prefix: 'amschema-', exe: EXE, untaggedPid: 4646464, yaml, control: true });
    const sock = join(h.dir, 'c.sock');
    const usage = (re: RegExp) => (e: Error & { code?: string }) => e.code === 'E_USAGE' && re.test(e.message);
    try {
      // Old: a bare string for the list was read as no selector at all, and unknown arguments were ignored.
      await assert.rejects(
        controlRequest(sock, 'aux-add', { name: 'x', contid: '100' }),
        usage(/aux-add: argument "contid" must be a list of strings/),
      );
      await assert.rejects(
        controlRequest(sock, 'aux-add', { name: 'x', contid: ['100'], qeue: 5 }),
        usage(/aux-add: unknown argument "qeue"/),
      );
      await assert.rejects(
        controlRequest(sock, 'aux-add', { name: 'x', contid: ['100'], overflow: 'explode' }),
        usage(/aux-add: argument "overflow" must be one of block, drop_newest, drop_oldest/),
      );
      // Old: a pid given as text became pid 0.
      await assert.rejects(
        controlRequest(sock, 'contid-set', { pid: '12', contid: '5' }),
        usage(/contid-set: argument "pid" must be a number/),
      );
      await assert.rejects(controlRequest(sock, 'contid-set', { contid: '5' }), usage(/argument "pid" is required/));
      await assert.rejects(controlRequest(sock, 'frobnicate'), usage(/unknown control command "frobnicate"/));
      // Old: names on Object.prototype passed the unknown-command check and failed with a TypeError (E_INTERNAL).
      for (const cmd of ['constructor', '__proto__', 'toString', 'hasOwnProperty'])
        await assert.rejects(controlRequest(sock, cmd), usage(/unknown control command/), cmd);
      // Old: any finite number was a pid, and a failed set wrote `opid=1.5` (or -7, 1e+21) into the host log.
      for (const pid of [1.5, -7, 0, 1e21, 4194305]) {
        await assert.rejects(
          controlRequest(sock, 'contid-set', { pid, contid: '5' }),
          usage(/contid-set: argument "pid" must be a whole number in 1\.\.4194304/),
          String(pid),
        );
        await assert.rejects(controlRequest(sock, 'contid-get', { pid }), usage(/contid-get: argument "pid"/));
      }
      const names = ((await controlRequest(sock, 'aux-list')) as Array<{ name: string }>).map((a) => a.name);
      assert.deepEqual(names, ['a'], 'no refused request added a daemon');
      // Host-wide changes stay refused whatever their arguments, and recorded.
      await assert.rejects(
        controlRequest(sock, 'kernel-set', { enabled: 0 }),
        (e: Error & { code?: string }) => e.code === 'E_HOST_WIDE',
      );
      // Arguments nested deeper than JSON.stringify's stack: old, an E_INTERNAL answer and no refusal recorded.
      const deep = '{"a":'.repeat(6000) + '1' + '}'.repeat(6000);
      const answer = await rawRequest(sock, `{"id":1,"cmd":"kernel-set","args":${deep}}`);
      assert.equal((answer as { error: { code: string } }).error.code, 'E_HOST_WIDE');
      assert.match(readFileSync(join(h.dir, 'audit.log'), 'latin1'), /op=refused.*args="\(unprintable\)"/);
    } finally {
      await h.stop();
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('the registry adds and removes a daemon at run time through its own API (templates will call it)', async () => {
    const h = await startEmulatedHost({
      prefix: 'amschema-',
      exe: EXE,
      untaggedPid: 4646465,
      yaml: oneAuxYaml('log: { file: {dir}/a.log }'),
    });
    try {
      const reg = h.daemon.daemons;
      const pos = { file: '<template>', line: 1 };
      const cfg = buildDaemonConfig({ name: 't1', pos }, h.daemon.config.host.log.file);
      const contid = [{ kind: 'range' as const, lo: 700n, hi: 700n, nested: false, text: '700' }];
      const route = { index: 0, contid, types: null, keys: null, daemons: ['t1'], continue: true, pos };
      const a = await reg.addRuntimeDaemon(cfg, [route]);
      assert.equal(a.name, 't1');
      assert.deepEqual(
        reg.configs().map((d) => d.name),
        ['a', 't1'],
      );
      assert.deepEqual((h.daemon.routeTest({ contid: '700' }) as { daemons: string[] }).daemons, ['t1']);
      await assert.rejects(reg.removeDaemon('a'), /comes from the configuration file/);
      await reg.removeDaemon('t1');
      assert.deepEqual(
        reg.configs().map((d) => d.name),
        ['a'],
      );
      assert.deepEqual((h.daemon.routeTest({ contid: '700' }) as { daemons: string[] }).daemons, []);
      // Removed while its rules load: old, the add started it anyway, running with no config and no route, listed
      // by `aux list` while `aux remove` said it did not exist.
      const cfg2 = buildDaemonConfig({ name: 't2', pos }, h.daemon.config.host.log.file);
      const adding = reg.addRuntimeDaemon(cfg2, [{ ...route, daemons: ['t2'] }]);
      await reg.removeDaemon('t2');
      await assert.rejects(adding, /daemon "t2" was removed while it was being added/);
      assert.deepEqual(
        reg.list().map((r) => r.name),
        ['a'],
      );
      await assert.rejects(reg.removeDaemon('t2'), /no auxiliary daemon "t2"/);
    } finally {
      await h.stop();
      rmSync(h.dir, { recursive: true, force: true });
    }
  });
});
