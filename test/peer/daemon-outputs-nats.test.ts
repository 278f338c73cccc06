// nats outputs through the daemons: host and auxiliary daemon (inline and process) publish to a real nats-server.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  emitUntaggedAndTagged,
  oneAuxYaml,
  sleep,
  startEmulatedHost,
  syscallSerialCounts,
  withNodeName,
} from '../helpers/emulated-host';
import { natsOutputYaml, streamMessages, until, withFleet } from '../helpers/nats';
import { searchContid } from '../helpers/daemon';

const EXE = '/usr/bin/amtree-nats';
const serials = (text: string, key: string): Set<string> => new Set(syscallSerialCounts(text, key).keys());

describe('nats outputs of the daemons (emulated mainline kernel)', () => {
  for (const isolation of ['inline', 'process'] as const)
    it(`host and auxiliary (${isolation}) publish their own events under their own subjects`, () =>
      withFleet({}, async (f) => {
        const srv = f.srv;
        const natsOut = (name: string): string => `[${natsOutputYaml(`n-${name}`, [srv.url], `{dir}/spool/${name}`)}]`;
        const h = await startEmulatedHost({
          prefix: 'amnats-',
          exe: EXE,
          untaggedPid: 4242425,
          // a node name with a '.' in it
          yaml: withNodeName(
            'ctr.host',
            oneAuxYaml(
              `log: { file: {dir}/a.log, format: RAW }, outputs: ${natsOut('a')}, isolation: ${isolation}`,
              natsOut('host'),
            ),
          ),
        });
        const dir = h.dir;
        try {
          try {
            await emitUntaggedAndTagged(h, 100, 25);
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
          // One node log holds what the host and its auxiliary daemon logged separately (in arrival order).
          const collected = searchContid('100', join(f.dir, 'fleet', 'ctr~2Ehost', 'audit.log'));
          assert.equal(serials(collected.join('\n'), 'tree-a').size, 100);
          assert.deepEqual(collected, searchContid('100', join(dir, 'audit.log'), join(dir, 'a.log')));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }));
});
