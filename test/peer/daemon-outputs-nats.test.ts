// nats outputs through the daemons: host and auxiliary daemon (inline and process) publish to a real nats-server.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { oneAuxYaml, sleep, startEmulatedHost, syscallSerialCounts } from '../helpers/emulated-host';
import { spawnSync } from 'node:child_process';
import { streamMessages, until, withFleet } from '../helpers/nats';
import { cliPath } from '../helpers/daemon';

const EXE = '/usr/bin/amtree-nats';
/** A node name with a '.' in it, right under `host:`. */
const withNode = (y: string[]): string[] => [y[0]!, '  node_name: { format: user, name: ctr.host }', ...y.slice(1)];
const serials = (text: string, key: string): Set<string> => new Set(syscallSerialCounts(text, key).keys());

describe('nats outputs of the daemons (emulated mainline kernel)', () => {
  for (const isolation of ['inline', 'process'] as const)
    it(`host and auxiliary (${isolation}) publish their own events under their own subjects`, () =>
      withFleet({}, async (f) => {
        const srv = f.srv;
        const natsOut = (name: string): string =>
          `[{ type: nats, name: n-${name}, servers: [${srv.url}], create_stream: true, network_retry_time: 1, spool: { dir: {dir}/spool/${name} } }]`;
        const h = await startEmulatedHost({
          prefix: 'amnats-',
          exe: EXE,
          untaggedPid: 4242425,
          yaml: withNode(
            oneAuxYaml(
              `log: { file: {dir}/a.log, format: RAW }, outputs: ${natsOut('a')}, isolation: ${isolation}`,
              natsOut('host'),
            ),
          ),
        });
        const dir = h.dir;
        try {
          try {
            for (let i = 0; i < 100; i++) {
              h.kernel.emitEvent(h.untaggedPid, 'getppid', 0);
              h.kernel.emitEvent(h.tagged.pid!, 'getppid', 0);
              if (i % 25 === 0) await new Promise((r) => setImmediate(r));
            }
            await until(
              async () => {
                const ms = await streamMessages(srv.url, 'AUDIT').catch(() => []);
                const text = ms.map((m) => m.data.toString('latin1')).join('');
                return serials(text, 'host-k').size === 100 && serials(text, 'tree-a').size === 100;
              },
              () => "stream has both daemons' events",
              30000,
            );
            await sleep(300);
          } finally {
            await h.stop();
          }
          const ms = await streamMessages(srv.url, 'AUDIT');
          const bySubject = (re: RegExp): string =>
            ms
              .filter((m) => re.test(m.subject))
              .map((m) => m.data.toString('latin1'))
              .join('');
          // The node name's '.' is escaped inside its token; {daemon} and {contid} come from the daemon and the event.
          const host = bySubject(/^audit\.ctr~2Ehost\.host\.none$/);
          const aux = bySubject(/^audit\.ctr~2Ehost\.a\.100$/);
          assert.deepEqual(
            [...serials(host, 'host-k')].sort(),
            [...serials(readFileSync(join(dir, 'audit.log'), 'utf8'), 'host-k')].sort(),
          );
          assert.deepEqual(
            [...serials(aux, 'tree-a')].sort(),
            [...serials(readFileSync(join(dir, 'a.log'), 'utf8'), 'tree-a')].sort(),
          );
          assert.equal(serials(aux, 'tree-a').size, 100);
          assert.equal(new Set(ms.map((m) => m.id)).size, ms.length, 'no id stored twice');
          // The collector's node log answers `auditmux search --contid` as the auxiliary daemon's own log does.
          const c = f.collector();
          await c.start();
          await until(
            () => c.counters.written === ms.length,
            () => JSON.stringify(c.status()),
          );
          await c.stop();
          const search = (...files: string[]): string[] => {
            const r = spawnSync(
              process.execPath,
              [cliPath, 'search', ...files.flatMap((f) => ['-if', f]), '--contid', '100', '--raw'],
              { encoding: 'latin1', maxBuffer: 1 << 26 },
            );
            assert.equal(r.status, 0, r.stderr);
            return r.stdout
              .split('\n')
              .filter((l) => l)
              .sort();
          };
          // One node log holds what the host and its auxiliary daemon logged separately (in arrival order).
          const collected = search(join(f.dir, 'fleet', 'ctr~2Ehost', 'audit.log'));
          assert.equal(serials(collected.join('\n'), 'tree-a').size, 100);
          assert.deepEqual(collected, search(join(dir, 'audit.log'), join(dir, 'a.log')));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }));
});
