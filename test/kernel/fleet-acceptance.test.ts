// Issue #14 acceptance: a real host daemon and an emulated-kernel host publish into an R3 stream on a 3-node cluster
// while the stream leader is killed and another server restarted; the collector's logs hold every event once, in order
// per host, with the right node=, and answer ausearch -k and auditmux search --contid as the hosts' own logs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { kernelSkipReason, withKernel } from '../helpers/kernel';
import { buildSyscallProgram, readText, searchContid, startDaemon, stopDaemon } from '../helpers/daemon';
import {
  emitUntaggedAndTagged,
  oneAuxYaml,
  startEmulatedHost,
  syscallSerialCounts,
  withNodeName,
} from '../helpers/emulated-host';
import { fileLines, natsOutputYaml, streamLeader, until, withFleet } from '../helpers/nats';

/** Serials of SYSCALL lines with `key`, in log order (a repeat shows twice). */
const serialSeq = (text: string, key: string): string[] =>
  text
    .split('\n')
    .filter((l) => l.includes('type=SYSCALL ') && l.includes(`key="${key}"`))
    .map((l) => /audit\(\d+\.\d+:(\d+)\)/.exec(l)![1]!);

describe('fleet acceptance (issue #14)', { skip: kernelSkipReason() }, () => {
  it(
    'R3 stream on 3 servers, leader killed and another restarted: every event once, in order, same answers',
    { timeout: 420000 },
    () =>
      withKernel(() =>
        withFleet({ cluster: 3, prefix: 'amfleet-' }, async (f) => {
          const natsOut = (name: string, spool: string, fmt = 'RAW'): string =>
            natsOutputYaml(name, f.urls, spool, `replicas: 3, log_format: ${fmt}, ack_timeout: 2`);
          // Host 1: the real daemon on this kernel.
          const prog = buildSyscallProgram(f.dir);
          const key = 'am-fleet-acc';
          writeFileSync(join(f.dir, 'host.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${prog} -k ${key}\n`);
          const conf = join(f.dir, 'auditmux.yaml');
          const hostLog = join(f.dir, 'log', 'audit.log');
          writeFileSync(
            conf,
            [
              'host:',
              '  node_name: { format: user, name: real-host }',
              '  kernel: { enabled: 1, failure: 1, backlog_limit: 8192, backlog_wait_time: 60000 }',
              `  rules: ${join(f.dir, 'host.rules')}`,
              `  log: { file: ${hostLog}, format: ENRICHED, max_log_file: 100 }`,
              `  control_socket: ${join(f.dir, 'control.sock')}`,
              `  outputs: [${natsOut('fleet', join(f.dir, 'spool'), 'ENRICHED')}]`,
            ].join('\n') + '\n',
          );
          const d = await startDaemon(conf);
          f.defer(() => stopDaemon(d));
          // Host 2: an emulated-kernel host daemon with an auxiliary daemon for contid 100, each with its own output.
          const emu = await startEmulatedHost({
            prefix: 'amfleet-emu-',
            exe: '/usr/bin/amfleet-emu',
            untaggedPid: 4242427,
            yaml: withNodeName(
              'emu-host',
              oneAuxYaml(
                `log: { file: {dir}/a.log, format: RAW }, outputs: [${natsOut('n-a', '{dir}/spool-a')}]`,
                `[${natsOut('n-host', '{dir}/spool-host')}]`,
              ),
            ),
          });
          f.defer(async () => {
            await emu.stop();
            execFileSync('rm', ['-rf', emu.dir]);
          });
          // The collector consumes throughout the failures.
          await until(
            async () => {
              const nc = await connect({ servers: f.urls });
              const ok = await (await jetstreamManager(nc)).streams.info('AUDIT').then(
                () => true,
                () => false,
              );
              await nc.close();
              return ok;
            },
            () => 'the hosts created the stream',
            60000,
          );
          const c = f.collector('fleet', 'ack_wait: 2\nbatch: 100\n');
          await c.start();
          const N = 2000;
          const E = 200;
          const phase = async (): Promise<void> => {
            execFileSync(prog, [String(N / 4), '200']);
            await emitUntaggedAndTagged(emu, E / 4, 10);
          };
          await phase();
          const leader = await streamLeader(f.servers);
          await leader.kill();
          await phase();
          const other = f.servers.find((s) => s !== leader)!;
          await other.restart();
          await phase();
          await leader.startProcess();
          await phase();
          const collected = join(f.dir, 'fleet', 'real-host', 'audit.log');
          const emuCollected = join(f.dir, 'fleet', 'emu-host', 'audit.log');
          await until(
            () =>
              syscallSerialCounts(readText(collected), key).size === N &&
              syscallSerialCounts(readText(emuCollected), 'host-k').size === E &&
              syscallSerialCounts(readText(emuCollected), 'tree-a').size === E,
            () => JSON.stringify(c.status()),
            240000,
          );
          assert.equal(await stopDaemon(d), 0, d.stderr());
          // Past ack_wait: a redelivery would have arrived by now; it must not be written again.
          await new Promise((r) => setTimeout(r, 3000));
          const got = readText(collected);
          const emuGot = readText(emuCollected);
          // Exactly once.
          for (const [text, k, n] of [
            [got, key, N],
            [emuGot, 'host-k', E],
            [emuGot, 'tree-a', E],
          ] as const) {
            const counts = syscallSerialCounts(text, k);
            assert.equal(counts.size, n, k);
            assert.ok(
              [...counts.values()].every((x) => x === 1),
              `${k}: an event written twice`,
            );
          }
          // In order per host (per daemon for the emulated host's two outputs), with the right node=.
          assert.deepEqual(serialSeq(got, key), serialSeq(readText(hostLog), key));
          assert.deepEqual(serialSeq(emuGot, 'host-k'), serialSeq(readText(join(emu.dir, 'audit.log')), 'host-k'));
          assert.deepEqual(serialSeq(emuGot, 'tree-a'), serialSeq(readText(join(emu.dir, 'a.log')), 'tree-a'));
          assert.ok(fileLines(collected).every((l) => l.startsWith('node=real-host ')));
          assert.ok(fileLines(emuCollected).every((l) => l.startsWith('node=emu-host ')));
          // The same answers as the hosts' own logs.
          const ausearch = (k: string, ...files: string[]): string => {
            const r = spawnSync('ausearch', [...files.flatMap((x) => ['-if', x]), '-k', k, '--raw'], {
              encoding: 'latin1',
              maxBuffer: 1 << 28,
            });
            assert.equal(r.status, 0, r.stderr);
            return r.stdout;
          };
          assert.equal(ausearch(key, collected), ausearch(key, hostLog));
          assert.equal(ausearch('tree-a', emuCollected), ausearch('tree-a', join(emu.dir, 'a.log')));
          const bySearch = searchContid('100', emuCollected);
          assert.equal(syscallSerialCounts(bySearch.join('\n'), 'tree-a').size, E);
          assert.deepEqual(bySearch, searchContid('100', join(emu.dir, 'audit.log'), join(emu.dir, 'a.log')));
          assert.equal(c.counters.rejected, 0);
          // Order came from the tags, with the default window, and no hole had to be given up on.
          assert.equal(c.counters.seqErrors, 0);
          assert.equal(c.counters.gaps, 0, JSON.stringify(c.status()));
          assert.equal(c.counters.late, 0, JSON.stringify(c.status()));
        }),
      ),
  );
});
