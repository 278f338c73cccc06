// The host and auxiliary daemons (inline and in their own process) with `log.format: json`: whole events, one object
// per line, each owner named, every event once (emulated mainline kernel).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startEmulatedHost, until } from '../helpers/emulated-host';

interface Obj {
  daemon: string;
  serial: string;
  records: { type: string; fields: Record<string, string>; interpreted?: Record<string, string> }[];
}

const objects = (file: string): Obj[] => {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  // Read while the daemon writes: a last line without its newline is not written yet.
  return text
    .split('\n')
    .slice(0, -1)
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Obj);
};
const keyed = (objs: Obj[], key: string): Obj[] =>
  objs.filter((o) => o.records.find((r) => r.type === 'SYSCALL')?.fields.key === key);

describe('daemons with log.format: json (emulated mainline kernel)', () => {
  for (const isolation of ['inline', 'process'] as const)
    it(`host and auxiliary (${isolation}) logs hold one object per event`, async () => {
      const h = await startEmulatedHost({
        prefix: 'amjsond-',
        exe: '/usr/bin/amjson',
        untaggedPid: 4545454,
        yaml: [
          'host:',
          '  rules: {dir}/host.rules',
          '  log: { file: {dir}/audit.log, format: json }',
          '  keep: unrouted',
          'daemons:',
          `  - { name: a, rules: {dir}/a.rules, log: { file: {dir}/a.log, format: json }, isolation: ${isolation} }`,
          'routes:',
          '  - { contid: 100, daemons: [a] }',
        ],
      });
      const dir = h.dir;
      try {
        assert.equal((h.daemon.status().daemon as { mode: string }).mode, 'events', 'a JSON host log needs events');
        for (let i = 0; i < 100; i++) {
          h.kernel.emitEvent(h.untaggedPid, 'getppid', 0);
          if (i % 2 === 0) h.kernel.emitEvent(h.tagged.pid!, 'getppid', 0);
        }
        await until(
          () =>
            keyed(objects(join(dir, 'audit.log')), 'host-k').length === 100 &&
            keyed(objects(join(dir, 'a.log')), 'tree-a').length === 50,
          'every event in its log',
        );
      } finally {
        await h.stop();
      }
      try {
        const host = objects(join(dir, 'audit.log'));
        const a = objects(join(dir, 'a.log'));
        const hostEvents = keyed(host, 'host-k');
        const aEvents = keyed(a, 'tree-a');
        assert.equal(new Set(hostEvents.map((o) => o.serial)).size, 100, 'each host event once');
        assert.equal(new Set(aEvents.map((o) => o.serial)).size, 50, 'each routed event once');
        for (const o of hostEvents) {
          assert.equal(o.daemon, 'host');
          assert.equal(o.records[0]!.type, 'SYSCALL');
          assert.equal(o.records[0]!.interpreted!.SYSCALL, 'getppid');
          assert.ok(o.records.length > 1, 'the whole event: SYSCALL and what follows it');
        }
        for (const o of aEvents) {
          assert.equal(o.daemon, 'a');
          assert.deepEqual(
            o.records.map((r) => r.type),
            ['CONTAINER_ID', 'SYSCALL', 'PROCTITLE'],
          );
        }
        const types = host.map((o) => o.records[0]!.type);
        assert.equal(types[0], 'DAEMON_START');
        assert.match(JSON.stringify(host[0]), /format=json/);
        assert.equal(types.at(-1), 'DAEMON_END');
        assert.ok(!types.includes('EOE'));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
});
