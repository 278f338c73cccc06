// The collector against a real nats-server: per-node auditd logs equal to the hosts' own, exactly once across kills.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect, headers } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import type { NatsOutputSpec } from '../../src/config/schema';
import { MsgType } from '../../src/kernel/constants';
import { Collector } from '../../src/collect/collector';
import { parseCollectConfig } from '../../src/collect/config';
import { LogWriter } from '../../src/output/logfile';
import { NatsOutput } from '../../src/output/nats/output';
import { NatsServer, until } from '../helpers/nats';

const quiet = { warn: () => undefined, error: () => undefined, info: () => undefined };
const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'auditmux');

function spec(url: string, spoolDir: string, payload: 'text' | 'json', daemon = 'host'): NatsOutputSpec {
  return {
    type: 'nats',
    name: 'n0',
    format: 'RAW',
    spool: { dir: spoolDir, maxBytes: 64 * 1024 * 1024, fullAction: 'syslog', fullExe: null },
    servers: [url],
    tls: null,
    user: null,
    password: null,
    token: null,
    creds: null,
    daemon,
    subject: 'audit.{node}.{daemon}.{contid}',
    stream: 'AUDIT',
    createStream: true,
    streamSubjects: ['audit.>'],
    replicas: 1,
    duplicateWindowMs: 120000,
    payload,
    ackTimeoutMs: 2000,
    maxInFlight: 64,
    networkRetryMs: 200,
    networkFailureAction: 'ignore',
    networkFailureExe: null,
  };
}

function event(i: number): { type: number; payload: Buffer }[] {
  const st = `audit(1700000${String(Math.floor(i / 1000)).padStart(3, '0')}.${String(i % 1000).padStart(3, '0')}:${1000 + i})`;
  return [
    {
      type: MsgType.SYSCALL,
      payload: Buffer.from(
        `${st}: arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffd a2=0 a3=0 items=1 ppid=1 pid=${100 + i} auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm="cat" exe="/usr/bin/cat" key="k${i % 3}"`,
      ),
    },
    { type: MsgType.CWD, payload: Buffer.from(`${st}: cwd="/root"`) },
    {
      type: MsgType.PATH,
      payload: Buffer.from(
        `${st}: item=0 name="/etc/f${i}" inode=${i} dev=08:01 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`,
      ),
    },
    { type: MsgType.PROCTITLE, payload: Buffer.from(`${st}: proctitle=636174002F6574632F66`) },
    { type: MsgType.EOE, payload: Buffer.from(`${st}: `) },
  ];
}

/** A host: its own log (what auditd would have written) and a nats output fed the same records. */
class Host {
  readonly log: string;
  readonly out: NatsOutput;
  private readonly w: LogWriter;
  constructor(
    readonly node: string,
    dir: string,
    url: string,
    payload: 'text' | 'json',
    daemon = 'host',
  ) {
    this.log = path.join(dir, `${node}-${daemon}.log`);
    this.w = new LogWriter({ path: this.log, format: 'RAW', node, maxLogFileMiB: 0 });
    this.w.open();
    this.out = new NatsOutput(spec(url, path.join(dir, `spool-${node}-${daemon}`), payload, daemon), {
      nodeName: node,
      contidKernel: false,
      diag: quiet,
    });
  }
  emit(from: number, to: number): void {
    for (let i = from; i < to; i++) {
      for (const r of event(i)) {
        this.w.writeRecord(r.type, r.payload);
        this.out.writeRecord(r.type, r.payload);
      }
    }
    this.w.flush();
    this.out.flush();
  }
  async close(): Promise<void> {
    this.w.close();
    await this.out.close();
  }
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'auditmux-collect-'));
}

function cfgText(url: string, dir: string, extra = ''): string {
  return `servers: [${url}]\nstream: AUDIT\nconsumer: central\nack_wait: 2\nbatch: 50\ndir: ${dir}\n${extra}`;
}

function lines(file: string): string[] {
  return fs.existsSync(file)
    ? fs
        .readFileSync(file, 'latin1')
        .split('\n')
        .filter((l) => l.length > 0)
    : [];
}

function ausearch(file: string, key: string): string {
  const r = spawnSync('/usr/sbin/ausearch', ['-if', file, '-k', key, '--format', 'raw'], { encoding: 'latin1' });
  return r.stdout;
}

test("two hosts (text and JSON payloads) collected into per-node logs equal to the hosts' own, ausearch agrees", async () => {
  const srv = await NatsServer.start();
  const dir = tmp();
  const a = new Host('hosta', dir, srv.url, 'text');
  const b = new Host('hostb', dir, srv.url, 'json');
  const c = new Collector(
    parseCollectConfig(
      cfgText(srv.url, path.join(dir, 'fleet'), 'prometheus_textfile: collect.prom\n'),
      path.join(dir, 'c.yaml'),
    ),
    quiet,
  );
  try {
    a.emit(0, 200);
    b.emit(0, 150);
    await until(
      () => a.out.stats().pending === 0 && b.out.stats().pending === 0,
      () => JSON.stringify([a.out.stats(), b.out.stats()]),
    );
    await c.start();
    await until(
      () => c.counters.written === 350,
      () => JSON.stringify(c.status()),
    );
    assert.deepEqual(lines(path.join(dir, 'fleet', 'hosta', 'audit.log')), lines(a.log));
    assert.deepEqual(lines(path.join(dir, 'fleet', 'hostb', 'audit.log')), lines(b.log));
    const got = ausearch(path.join(dir, 'fleet', 'hosta', 'audit.log'), 'k1');
    assert.ok(got.length > 0);
    assert.equal(got, ausearch(a.log, 'k1'));
    assert.equal(ausearch(path.join(dir, 'fleet', 'hostb', 'audit.log'), 'k2'), ausearch(b.log, 'k2'));
    await c.stop();
    // Prometheus text format: HELP/TYPE lines, then one sample per metric with the stream and consumer as labels.
    const prom = fs
      .readFileSync(path.join(dir, 'collect.prom'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    const sample = (n: string): number =>
      Number(prom.find((l) => l.startsWith(`${n}{stream="AUDIT",consumer="central"} `))?.split(' ')[1]);
    assert.equal(sample('auditmux_collect_written_total'), 350);
    assert.equal(sample('auditmux_collect_lines_total'), 350 * 4);
    assert.equal(sample('auditmux_collect_lag'), 0);
    assert.equal(sample('auditmux_collect_nodes'), 2);
    assert.ok(
      prom.every((l) => /^auditmux_collect_[a-z_]+\{stream="AUDIT",consumer="central"\} \d+$/.test(l)),
      prom.join('\n'),
    );
  } finally {
    await c.stop();
    await a.close();
    await b.close();
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function startCli(cfgFile: string): ChildProcess {
  return spawn(process.execPath, [BIN, 'collect', '--config', cfgFile], { stdio: ['ignore', 'ignore', 'pipe'] });
}

test('collector (the CLI) SIGKILLed mid-stream and restarted, NATS server killed and restarted: no gap, no duplicate', async () => {
  const srv = await NatsServer.start();
  const dir = tmp();
  const a = new Host('hosta', dir, srv.url, 'text');
  const cfgFile = path.join(dir, 'collect.yaml');
  fs.writeFileSync(cfgFile, cfgText(srv.url, path.join(dir, 'fleet')));
  const collected = path.join(dir, 'fleet', 'hosta', 'audit.log');
  let child: ChildProcess | null = startCli(cfgFile);
  try {
    a.emit(0, 3000);
    await until(
      () => lines(collected).length >= 1000 * 4,
      () => `${lines(collected).length} lines`,
    );
    const dead = new Promise((r) => child!.once('exit', r));
    child.kill('SIGKILL');
    await dead;
    a.emit(3000, 4000);
    await srv.kill();
    a.emit(4000, 5000);
    await srv.startProcess();
    child = startCli(cfgFile);
    a.emit(5000, 6000);
    await until(
      () => lines(collected).length >= 6000 * 4,
      () => `${lines(collected).length} lines, host ${JSON.stringify(a.out.stats())}`,
      90000,
    );
    // Let any redelivery (ack_wait 2 s) arrive: it must be recognised, not written again.
    await new Promise((r) => setTimeout(r, 3000));
    const got = lines(collected);
    const want = lines(a.log);
    assert.equal(new Set(got).size, got.length, 'no line written twice');
    assert.deepEqual([...got].sort(), [...want].sort(), 'every event of the host, once');
    const st = spawnSync(process.execPath, [BIN, 'collect', '--config', cfgFile, '--status'], { encoding: 'utf8' });
    assert.equal(st.status, 0, st.stderr);
    assert.match(st.stdout, /^written \d+$/m);
    assert.match(st.stdout, /^duplicates \d+$/m);
  } finally {
    if (child && child.exitCode === null) {
      const dead = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await dead;
    }
    await a.close();
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('two collector instances share one durable consumer: every event written by exactly one', async () => {
  const srv = await NatsServer.start();
  const dir = tmp();
  const a = new Host('hosta', dir, srv.url, 'text');
  const c1 = new Collector(parseCollectConfig(cfgText(srv.url, path.join(dir, 'f1')), path.join(dir, 'c.yaml')), quiet);
  const c2 = new Collector(parseCollectConfig(cfgText(srv.url, path.join(dir, 'f2')), path.join(dir, 'c.yaml')), quiet);
  try {
    // The host's output creates the stream; the collectors need it to exist.
    await until(
      () => a.out.stats().connected === true,
      () => JSON.stringify(a.out.stats()),
    );
    await c1.start();
    await c2.start();
    a.emit(0, 2000);
    await until(
      () => c1.counters.written + c2.counters.written === 2000,
      () => JSON.stringify([c1.status(), c2.status()]),
    );
    assert.ok(c1.counters.written > 0 && c2.counters.written > 0, 'both instances took work');
    const got = [
      ...lines(path.join(dir, 'f1', 'hosta', 'audit.log')),
      ...lines(path.join(dir, 'f2', 'hosta', 'audit.log')),
    ];
    assert.equal(new Set(got).size, got.length);
    assert.deepEqual(got.sort(), lines(a.log).sort());
  } finally {
    await c1.stop();
    await c2.stop();
    await a.close();
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('forged messages are refused, not written: bad id, control bytes, mixed nodes, id naming another event', async () => {
  const srv = await NatsServer.start();
  const dir = tmp();
  const a = new Host('hosta', dir, srv.url, 'text');
  const c = new Collector(
    parseCollectConfig(cfgText(srv.url, path.join(dir, 'fleet')), path.join(dir, 'c.yaml')),
    quiet,
  );
  try {
    a.emit(0, 1); // creates the stream
    await until(
      () => a.out.stats().pending === 0,
      () => JSON.stringify(a.out.stats()),
    );
    const nc = await connect({ servers: [srv.url] });
    const js = jetstream(nc);
    const boot = '0'.repeat(32);
    const good = 'node=evil type=USER_LOGIN msg=audit(1700000001.000:5): pid=1 uid=0 res=success';
    const bad: [string, string][] = [
      ['../../etc:x:1700000001.000:5', good],
      [`evil:${boot}:1700000001.000:5`, `${good}\nnode=evil type=USER_LOGIN msg=audit(1700000001.000:5): pid=1\x1b[2J`],
      [`evil:${boot}:1700000001.000:5`, `${good}\nnode=other type=USER_LOGIN msg=audit(1700000001.000:5): pid=1`],
      [`evil:${boot}:1700000009.000:9`, good],
      [`evil:${boot}:1700000001.000:5`, `${good}\ntype=SYSCALL msg=audit(1700000001.000:5): a=1\nforged line`],
      [`evil:${boot}:1700000001.000:5`, `{"records":[{"line":"${good}\\ntype=X msg=audit(1.000:1): x"}]}`],
    ];
    // Distinct part suffixes: the stream would drop a repeated id before the collector ever saw it.
    for (const [i, [id, body]] of bad.entries()) {
      const h = headers();
      const mid = id.startsWith('evil:') ? `${id}:p${i + 1}` : id;
      await js.publish('audit.evil.host.none', Buffer.from(body.startsWith('{') ? body : body + '\n', 'latin1'), {
        msgID: mid,
        headers: h,
      });
    }
    await c.start();
    await until(
      () => c.counters.rejected === bad.length && c.counters.written === 1,
      () => JSON.stringify(c.status()),
    );
    await nc.close();
    assert.equal(fs.existsSync(path.join(dir, 'fleet', 'evil')), false, 'no log for the forged node');
    assert.deepEqual(
      fs.readdirSync(path.join(dir, 'fleet')).filter((n) => !n.startsWith('collect.status')),
      ['hosta'],
    );
  } finally {
    await c.stop();
    await a.close();
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a log left by a collector killed inside a write: torn line cut, the event completed once, not doubled', async () => {
  const srv = await NatsServer.start();
  const dir = tmp();
  const a = new Host('hosta', dir, srv.url, 'text');
  const c = new Collector(
    parseCollectConfig(cfgText(srv.url, path.join(dir, 'fleet')), path.join(dir, 'c.yaml')),
    quiet,
  );
  try {
    a.emit(0, 3);
    await until(
      () => a.out.stats().pending === 0,
      () => JSON.stringify(a.out.stats()),
    );
    const want = lines(a.log);
    // Event 0 whole, event 1's first two lines, then half of its third line: what a SIGKILL mid-write can leave.
    const ev1 = want.filter((l) => l.includes(':1001)'));
    const torn = [...want.filter((l) => l.includes(':1000)')), ev1[0], ev1[1]].join('\n') + '\n' + ev1[2]!.slice(0, 30);
    fs.mkdirSync(path.join(dir, 'fleet', 'hosta'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'fleet', 'hosta', 'audit.log'), torn);
    await c.start();
    await until(
      () => c.counters.received === 3,
      () => JSON.stringify(c.status()),
    );
    await c.stop();
    assert.deepEqual(lines(path.join(dir, 'fleet', 'hosta', 'audit.log')), want);
    assert.equal(c.counters.duplicates, 1, 'event 0 recognised in the tail');
  } finally {
    await c.stop();
    await a.close();
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a symlink planted as a node directory is refused; other nodes go on, the node's events wait for redelivery", async () => {
  const srv = await NatsServer.start();
  const dir = tmp();
  const a = new Host('hosta', dir, srv.url, 'text');
  const b = new Host('hostb', dir, srv.url, 'text');
  const c = new Collector(
    parseCollectConfig(cfgText(srv.url, path.join(dir, 'fleet')), path.join(dir, 'c.yaml')),
    quiet,
  );
  const elsewhere = path.join(dir, 'elsewhere');
  try {
    fs.mkdirSync(path.join(dir, 'fleet'));
    fs.mkdirSync(elsewhere);
    fs.symlinkSync(elsewhere, path.join(dir, 'fleet', 'hosta'));
    a.emit(0, 5);
    await until(
      () => a.out.stats().pending === 0,
      () => JSON.stringify(a.out.stats()),
    );
    b.emit(0, 5);
    await until(
      () => b.out.stats().pending === 0,
      () => JSON.stringify(b.out.stats()),
    );
    await c.start();
    await until(
      () => c.counters.written === 5,
      () => JSON.stringify(c.status()),
    );
    assert.deepEqual(lines(path.join(dir, 'fleet', 'hostb', 'audit.log')), lines(b.log));
    assert.deepEqual(fs.readdirSync(elsewhere), [], 'nothing written through the symlink');
    assert.match(String(c.status().lastError), /not a directory \(refused\)/);
    fs.unlinkSync(path.join(dir, 'fleet', 'hosta'));
    await until(
      () => c.counters.written === 10,
      () => JSON.stringify(c.status()),
    );
    assert.deepEqual(lines(path.join(dir, 'fleet', 'hosta', 'audit.log')), lines(a.log));
  } finally {
    await c.stop();
    await a.close();
    await b.close();
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('per_daemon: one log per node and daemon (tenant), from the Auditmux-Daemon header', async () => {
  const srv = await NatsServer.start();
  const dir = tmp();
  const h = new Host('hosta', dir, srv.url, 'text', 'host');
  const t = new Host('hosta', dir, srv.url, 'json', 'tenant.a');
  const c = new Collector(
    parseCollectConfig(cfgText(srv.url, path.join(dir, 'fleet'), 'per_daemon: true\n'), path.join(dir, 'c.yaml')),
    quiet,
  );
  try {
    h.emit(0, 20);
    t.emit(100, 130);
    await until(
      () => h.out.stats().pending === 0 && t.out.stats().pending === 0,
      () => JSON.stringify([h.out.stats(), t.out.stats()]),
    );
    await c.start();
    await until(
      () => c.counters.written === 50,
      () => JSON.stringify(c.status()),
    );
    assert.deepEqual(lines(path.join(dir, 'fleet', 'hosta', 'host', 'audit.log')), lines(h.log));
    // The daemon name's '.' is escaped: one directory, never a path of two.
    assert.deepEqual(lines(path.join(dir, 'fleet', 'hosta', 'tenant~2Ea', 'audit.log')), lines(t.log));
  } finally {
    await c.stop();
    await h.close();
    await t.close();
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
