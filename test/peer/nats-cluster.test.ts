// A 3-node JetStream cluster (real nats-servers), stream with 3 replicas, its leader killed and restarted mid-stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsOutputSpec } from '../../src/config/schema';
import { MsgType } from '../../src/kernel/constants';
import { Collector } from '../../src/collect/collector';
import { parseCollectConfig } from '../../src/collect/config';
import { NatsOutput } from '../../src/output/nats/output';
import { LogWriter } from '../../src/output/logfile';
import { freePort, NatsServer, until } from '../helpers/nats';

const quiet = { warn: () => undefined, error: () => undefined, info: () => undefined };

function spec(urls: string[], spoolDir: string, maxInFlight: number): NatsOutputSpec {
  return {
    type: 'nats',
    name: 'n0',
    format: 'RAW',
    spool: { dir: spoolDir, maxBytes: 64 * 1024 * 1024, fullAction: 'syslog', fullExe: null },
    servers: urls,
    tls: null,
    user: null,
    password: null,
    token: null,
    creds: null,
    daemon: 'host',
    subject: 'audit.{node}.{daemon}.{contid}',
    stream: 'AUDIT',
    createStream: true,
    streamSubjects: ['audit.>'],
    replicas: 3,
    duplicateWindowMs: 120000,
    payload: 'text',
    ackTimeoutMs: 2000,
    maxInFlight,
    networkRetryMs: 200,
    networkFailureAction: 'ignore',
    networkFailureExe: null,
  };
}

function records(i: number): { type: number; payload: Buffer }[] {
  const st = `audit(1700001${String(Math.floor(i / 1000)).padStart(3, '0')}.${String(i % 1000).padStart(3, '0')}:${5000 + i})`;
  return [
    {
      type: MsgType.SYSCALL,
      payload: Buffer.from(`${st}: arch=c000003e syscall=110 success=yes exit=1 pid=${i} comm="x" key="c"`),
    },
    { type: MsgType.PROCTITLE, payload: Buffer.from(`${st}: proctitle=78`) },
    { type: MsgType.EOE, payload: Buffer.from(`${st}: `) },
  ];
}

class Host {
  readonly out: NatsOutput;
  readonly log: string;
  private readonly w: LogWriter;
  constructor(node: string, dir: string, urls: string[], maxInFlight: number) {
    this.log = path.join(dir, `${node}.log`);
    this.w = new LogWriter({ path: this.log, format: 'RAW', node, maxLogFileMiB: 0 });
    this.w.open();
    this.out = new NatsOutput(spec(urls, path.join(dir, `spool-${node}`), maxInFlight), {
      nodeName: node,
      contidKernel: false,
      diag: quiet,
    });
  }
  emit(from: number, to: number): void {
    for (let i = from; i < to; i++)
      for (const r of records(i)) {
        this.w.writeRecord(r.type, r.payload);
        this.out.writeRecord(r.type, r.payload);
      }
    this.w.flush();
    this.out.flush();
  }
  async close(): Promise<void> {
    this.w.close();
    await this.out.close();
  }
}

const lines = (f: string): string[] =>
  fs.existsSync(f)
    ? fs
        .readFileSync(f, 'latin1')
        .split('\n')
        .filter((l) => l)
    : [];

test(
  '3-node cluster, R3 stream: leader killed and restarted while two hosts publish; every event collected once',
  { timeout: 240000 },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'auditmux-cluster-'));
    const cports = [await freePort(), await freePort(), await freePort()];
    const servers: NatsServer[] = [];
    let a: Host | null = null;
    let b: Host | null = null;
    let c: Collector | null = null;
    try {
      for (let i = 0; i < 3; i++) {
        const routes = cports
          .filter((_, j) => j !== i)
          .map((p) => `"nats://127.0.0.1:${p}"`)
          .join(', ');
        servers.push(
          await NatsServer.start({
            name: `n${i}`,
            conf: `cluster { name: amc, listen: "127.0.0.1:${cports[i]}", routes: [${routes}] }`,
          }),
        );
      }
      const urls = servers.map((s) => s.url);
      // The meta leader must exist before a replicated stream can be created.
      await until(
        () =>
          servers.some((s) =>
            /JetStream cluster new metadata leader|Self is new JetStream cluster metadata leader/.test(s.log),
          ),
        () => servers.map((s) => s.log.slice(-500)).join('\n'),
        60000,
      );
      a = new Host('hosta', dir, urls, 1);
      b = new Host('hostb', dir, urls, 64);
      a.emit(0, 500);
      b.emit(0, 500);
      await until(
        () => a!.out.stats().pending === 0 && b!.out.stats().pending === 0,
        () => JSON.stringify([a!.out.stats(), b!.out.stats()]),
        60000,
      );
      const nc = await connect({ servers: urls });
      const info = await (await jetstreamManager(nc)).streams.info('AUDIT');
      await nc.close();
      assert.equal(info.config.num_replicas, 3);
      const leader = servers.find((s) => `n${servers.indexOf(s)}` === info.cluster?.leader);
      assert.ok(leader, `leader ${info.cluster?.leader}`);
      a.emit(500, 1000);
      b.emit(500, 1000);
      await leader.kill();
      a.emit(1000, 1500);
      b.emit(1000, 1500);
      await leader.startProcess();
      a.emit(1500, 2000);
      b.emit(1500, 2000);
      await until(
        () => a!.out.stats().pending === 0 && b!.out.stats().pending === 0,
        () => JSON.stringify([a!.out.stats(), b!.out.stats()]),
        120000,
      );
      c = new Collector(
        parseCollectConfig(
          `servers: [${urls.join(', ')}]\nbatch: 100\ndir: ${path.join(dir, 'fleet')}\n`,
          path.join(dir, 'c.yaml'),
        ),
        quiet,
      );
      await c.start();
      await until(
        () => c!.counters.written === 4000,
        () => JSON.stringify(c!.status()),
        120000,
      );
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(c.counters.written, 4000, 'nothing written twice');
      const ga = lines(path.join(dir, 'fleet', 'hosta', 'audit.log'));
      const gb = lines(path.join(dir, 'fleet', 'hostb', 'audit.log'));
      // One message in flight at a time: the stream and the collector's log keep the host's order exactly.
      assert.deepEqual(ga, lines(a.log));
      assert.deepEqual([...gb].sort(), [...lines(b.log)].sort());
      assert.equal(new Set(gb).size, gb.length);
      assert.ok(ga.every((l) => l.startsWith('node=hosta ')) && gb.every((l) => l.startsWith('node=hostb ')));
    } finally {
      await c?.stop();
      await a?.close();
      await b?.close();
      for (const s of servers) await s.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
