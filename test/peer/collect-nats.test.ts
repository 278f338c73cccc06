// The collector against a real nats-server: per-node auditd logs equal to the hosts' own, exactly once across kills.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { connect, headers } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { fileLines as lines, freePort, killChild, rawPublish, until, withFleet } from '../helpers/nats';
import { cliPath as BIN } from '../helpers/daemon';
import { subjectToken } from '../../src/output/nats/subject';

const CENTRAL = 'consumer: central\nack_wait: 2\nbatch: 50\n';

function ausearch(file: string, key: string): string {
  const r = spawnSync('/usr/sbin/ausearch', ['-if', file, '-k', key, '--format', 'raw'], { encoding: 'latin1' });
  return r.stdout;
}

test("two hosts (text and JSON payloads) collected into per-node logs equal to the hosts' own, ausearch agrees", () =>
  withFleet({}, async (f) => {
    const a = f.host('hosta');
    const b = f.host('hostb', { payload: 'json' });
    const c = f.collector('fleet', CENTRAL + 'prometheus_textfile: collect.prom\n');
    a.emit(0, 200);
    b.emit(0, 150);
    await a.drained();
    await b.drained();
    await c.start();
    await until(
      () => c.counters.written === 350,
      () => JSON.stringify(c.status()),
    );
    assert.deepEqual(lines(path.join(f.dir, 'fleet', 'hosta', 'audit.log')), lines(a.log));
    assert.deepEqual(lines(path.join(f.dir, 'fleet', 'hostb', 'audit.log')), lines(b.log));
    const got = ausearch(path.join(f.dir, 'fleet', 'hosta', 'audit.log'), 'k1');
    assert.ok(got.length > 0);
    assert.equal(got, ausearch(a.log, 'k1'));
    assert.equal(ausearch(path.join(f.dir, 'fleet', 'hostb', 'audit.log'), 'k2'), ausearch(b.log, 'k2'));
    await c.stop();
    // Prometheus text format: HELP/TYPE lines, then one sample per metric with the stream and consumer as labels.
    const prom = fs
      .readFileSync(path.join(f.dir, 'collect.prom'), 'utf8')
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
  }));

test('collector (the CLI) SIGKILLed mid-stream and restarted, NATS server killed and restarted: no gap, no duplicate', () =>
  withFleet({}, async (f) => {
    const a = f.host('hosta');
    const cfgFile = path.join(f.dir, 'collect.yaml');
    const port = await freePort();
    fs.writeFileSync(
      cfgFile,
      f.collectYaml(CENTRAL + `dir: ${path.join(f.dir, 'fleet')}\nmetrics: { listen: "127.0.0.1:${port}" }\n`),
    );
    const collected = path.join(f.dir, 'fleet', 'hosta', 'audit.log');
    const child = f.collectCli(cfgFile);
    a.emit(0, 3000);
    await until(
      () => lines(collected).length >= 1000 * 4,
      () => `${lines(collected).length} lines`,
    );
    await killChild(child);
    a.emit(3000, 4000);
    await f.srv.kill();
    a.emit(4000, 5000);
    await f.srv.startProcess();
    f.collectCli(cfgFile);
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
    // The running CLI serves the same counters to a scraper.
    const m = await scrape(port);
    const l = '{stream="AUDIT",consumer="central"}';
    assert.equal(m.get(`auditmux_collect_written_total${l}`), Number(/^written (\d+)$/m.exec(st.stdout)![1]));
    assert.equal(m.get(`auditmux_collect_lag${l}`), 0);
  }));

test('two collector instances share one durable consumer: every event written by exactly one', () =>
  withFleet({}, async (f) => {
    const a = f.host('hosta');
    const c1 = f.collector('f1', CENTRAL);
    const c2 = f.collector('f2', CENTRAL);
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
      ...lines(path.join(f.dir, 'f1', 'hosta', 'audit.log')),
      ...lines(path.join(f.dir, 'f2', 'hosta', 'audit.log')),
    ];
    assert.equal(new Set(got).size, got.length);
    assert.deepEqual(got.sort(), lines(a.log).sort());
  }));

test('forged messages are refused, not written: bad id, a NUL, mixed nodes, id naming another event', () =>
  withFleet({}, async (f) => {
    const a = f.host('hosta');
    const c = f.collector('fleet', CENTRAL);
    a.emit(0, 1); // creates the stream
    await a.drained();
    const nc = await connect({ servers: f.urls });
    f.defer(() => nc.close());
    const js = jetstream(nc);
    const boot = '0'.repeat(32);
    const good = 'node=evil type=USER_LOGIN msg=audit(1700000001.000:5): pid=1 uid=0 res=success';
    const bad: [string, string][] = [
      ['../../etc:x:1700000001.000:5', good],
      // (control bytes in a record's text are written escaped: test/unit/collect-escape.test.ts; a NUL is in no record)
      [`evil:${boot}:1700000001.000:5`, `${good}\nnode=evil type=USER_LOGIN msg=audit(1700000001.000:5): pid=1\0`],
      [`evil:${boot}:1700000001.000:5`, `${good}\nnode=other type=USER_LOGIN msg=audit(1700000001.000:5): pid=1`],
      [`evil:${boot}:1700000009.000:9`, good],
      [`evil:${boot}:1700000001.000:5`, `${good}\ntype=SYSCALL msg=audit(1700000001.000:5): a=1\nforged line`],
      [`evil:${boot}:1700000001.000:5`, `{"records":[{"line":"${good}\\ntype=X msg=audit(1.000:1): x"}]}`],
    ];
    // Distinct part suffixes: the stream would drop a repeated id before the collector ever saw it.
    for (const [i, [id, body]] of bad.entries()) {
      const mid = id.startsWith('evil:') ? `${id}:p${i + 1}` : id;
      await js.publish('audit.evil.host.none', Buffer.from(body.startsWith('{') ? body : body + '\n', 'latin1'), {
        msgID: mid,
        headers: headers(),
      });
    }
    await c.start();
    await until(
      () => c.counters.rejected === bad.length && c.counters.written === 1,
      () => JSON.stringify(c.status()),
    );
    assert.equal(fs.existsSync(path.join(f.dir, 'fleet', 'evil')), false, 'no log for the forged node');
    assert.deepEqual(
      fs.readdirSync(path.join(f.dir, 'fleet')).filter((n) => !n.startsWith('collect.') && !n.startsWith('.')),
      ['hosta'],
    );
  }));

test('a message whose headers the client cannot decode is refused, and the events around it are written', () =>
  withFleet({}, async (f) => {
    const a = f.host('hosta');
    const c = f.collector('fleet', CENTRAL);
    a.emit(0, 1); // creates the stream
    await a.drained();
    // Raw HPUBs: header names with a space and a non-ASCII byte, which nats.js throws on when the headers are read
    // (lazily); before, the whole batch failed, the message was never terminated and came back for good.
    const body = Buffer.from('node=hosta type=USER_LOGIN msg=audit(1700000001.000:5): pid=1 res=success\n', 'latin1');
    await rawPublish(f.srv.port, 'audit.hosta.host.none', 'NATS/1.0\r\nBad Key: x\r\n\r\n', body);
    await rawPublish(f.srv.port, 'audit.hosta.host.none', 'NATS/1.0\r\nK\xe9y: x\r\n\r\n', body);
    a.emit(1, 21);
    await a.drained();
    await c.start();
    await until(
      () => c.counters.written === 21 && c.counters.rejected === 2,
      () => JSON.stringify(c.status()),
      15000,
    );
    assert.deepEqual(lines(path.join(f.dir, 'fleet', 'hosta', 'audit.log')), lines(a.log));
    assert.equal(c.counters.errors, 0, JSON.stringify(c.status()));
    // Terminated, not left for redelivery: nothing is pending on the consumer after ack_wait (2 s).
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(c.counters.rejected, 2, 'not redelivered');
    await c.stop();
    const nc = await connect({ servers: f.urls });
    f.defer(() => nc.close());
    const info = await (await jetstreamManager(nc)).consumers.info('AUDIT', 'central');
    assert.deepEqual([info.num_pending, info.num_ack_pending, info.num_redelivered], [0, 0, 0]);
  }));

test('a log left by a collector killed inside a write: torn line cut, the event completed once, not doubled', () =>
  withFleet({}, async (f) => {
    const a = f.host('hosta');
    const c = f.collector('fleet', CENTRAL);
    a.emit(0, 3);
    await a.drained();
    const want = lines(a.log);
    // Event 0 whole, event 1's first two lines, then half of its third line: what a SIGKILL mid-write can leave.
    const ev1 = want.filter((l) => l.includes(':1001)'));
    const torn = [...want.filter((l) => l.includes(':1000)')), ev1[0], ev1[1]].join('\n') + '\n' + ev1[2]!.slice(0, 30);
    fs.mkdirSync(path.join(f.dir, 'fleet', 'hosta'), { recursive: true });
    fs.writeFileSync(path.join(f.dir, 'fleet', 'hosta', 'audit.log'), torn);
    await c.start();
    await until(
      () => c.counters.received === 3,
      () => JSON.stringify(c.status()),
    );
    await c.stop();
    assert.deepEqual(lines(path.join(f.dir, 'fleet', 'hosta', 'audit.log')), want);
    assert.equal(c.counters.duplicates, 1, 'event 0 recognised in the tail');
  }));

test("a symlink planted as a node directory is refused; other nodes go on, the node's events wait for redelivery", () =>
  withFleet({}, async (f) => {
    const a = f.host('hosta');
    const b = f.host('hostb');
    const c = f.collector('fleet', CENTRAL);
    const elsewhere = path.join(f.dir, 'elsewhere');
    fs.mkdirSync(path.join(f.dir, 'fleet'));
    fs.mkdirSync(elsewhere);
    fs.symlinkSync(elsewhere, path.join(f.dir, 'fleet', 'hosta'));
    a.emit(0, 5);
    await a.drained();
    b.emit(0, 5);
    await b.drained();
    await c.start();
    await until(
      () => c.counters.written === 5,
      () => JSON.stringify(c.status()),
    );
    assert.deepEqual(lines(path.join(f.dir, 'fleet', 'hostb', 'audit.log')), lines(b.log));
    assert.deepEqual(fs.readdirSync(elsewhere), [], 'nothing written through the symlink');
    assert.match(String(c.status().lastError), /not a directory \(refused\)/);
    fs.unlinkSync(path.join(f.dir, 'fleet', 'hosta'));
    await until(
      () => c.counters.written === 10,
      () => JSON.stringify(c.status()),
    );
    assert.deepEqual(lines(path.join(f.dir, 'fleet', 'hosta', 'audit.log')), lines(a.log));
  }));

test('per_daemon: one log per node and daemon (tenant), from the Auditmux-Daemon header', () =>
  withFleet({}, async (f) => {
    const h = f.host('hosta', { daemon: 'host' });
    const t = f.host('hosta', { daemon: 'tenant.a', payload: 'json' });
    const c = f.collector('fleet', CENTRAL + 'per_daemon: true\n');
    h.emit(0, 20);
    t.emit(100, 130);
    await h.drained();
    await t.drained();
    await c.start();
    await until(
      () => c.counters.written === 50,
      () => JSON.stringify(c.status()),
    );
    assert.deepEqual(lines(path.join(f.dir, 'fleet', 'hosta', 'host', 'audit.log')), lines(h.log));
    // The daemon name's '.' is escaped: one directory, never a path of two.
    assert.deepEqual(lines(path.join(f.dir, 'fleet', 'hosta', 'tenant~2Ea', 'audit.log')), lines(t.log));
  }));

test('per_daemon: an event the host and a tenant both publish (routes with keep: all) reaches both logs', () =>
  withFleet({}, async (f) => {
    // One node, one boot, the same events: before, both copies had one Nats-Msg-Id and the stream kept the first.
    const h = f.host('hosta', { daemon: 'host' });
    const t = f.host('hosta', { daemon: 'tenant-a' });
    const c = f.collector('fleet', CENTRAL + 'per_daemon: true\n');
    h.emit(0, 20);
    await h.drained();
    t.emit(0, 20);
    await t.drained();
    assert.equal(t.out.stats().duplicates, 0, "the stream kept the tenant's copies");
    await c.start();
    await until(
      () => c.counters.written === 40,
      () => JSON.stringify(c.status()),
      15000,
    );
    assert.deepEqual(lines(path.join(f.dir, 'fleet', 'hosta', 'host', 'audit.log')), lines(h.log));
    assert.deepEqual(lines(path.join(f.dir, 'fleet', 'hosta', 'tenant-a', 'audit.log')), lines(t.log));
    assert.equal(c.counters.rejected, 0);
  }));

test('hosts named with a space, a backslash or non-ASCII bytes are collected (node= escaped, ids as tokens)', () =>
  withFleet({}, async (f) => {
    const names = ['web server', 'caf\u00e9', 'a\\b'];
    const hosts = names.map((n) => f.host(n));
    const c = f.collector('fleet', CENTRAL);
    for (const h of hosts) h.emit(0, 5);
    for (const h of hosts) await h.drained();
    await c.start();
    await until(
      () => c.counters.written === 15,
      () => JSON.stringify(c.status()),
      15000,
    );
    for (const h of hosts)
      assert.deepEqual(lines(path.join(f.dir, 'fleet', subjectToken(h.node), 'audit.log')), lines(h.log));
    assert.equal(c.counters.rejected, 0);
  }));

/** GET http://127.0.0.1:PORT/metrics, the samples as "name{labels}" -> value. */
function scrape(port: number): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
          const m = new Map<string, number>();
          for (const l of body.split('\n'))
            if (l && !l.startsWith('#')) m.set(l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1)));
          resolve(m);
        });
      })
      .once('error', reject);
  });
}

test('metrics: { listen } serves the counters over HTTP (received, written, duplicates, redeliveries, lag)', () =>
  withFleet({}, async (f) => {
    const a = f.host('hosta');
    a.emit(0, 120);
    await a.drained();
    // Events 0-19 already in the log (written before a crash): recognised as duplicates, not written again.
    fs.mkdirSync(path.join(f.dir, 'fleet', 'hosta'), { recursive: true });
    fs.writeFileSync(
      path.join(f.dir, 'fleet', 'hosta', 'audit.log'),
      lines(a.log)
        .slice(0, 20 * 4)
        .join('\n') + '\n',
    );
    const c = f.collector('fleet', CENTRAL + 'metrics: { listen: "127.0.0.1:0" }\n');
    await c.start();
    await until(
      () => c.counters.received === 120,
      () => JSON.stringify(c.status()),
    );
    const m = await scrape(c.metricsAddress()!.port);
    const l = '{stream="AUDIT",consumer="central"}';
    assert.equal(m.get(`auditmux_collect_received_total${l}`), 120);
    assert.equal(m.get(`auditmux_collect_written_total${l}`), 100);
    assert.equal(m.get(`auditmux_collect_duplicates_total${l}`), 20);
    assert.equal(m.get(`auditmux_collect_redeliveries_total${l}`), 0);
    assert.equal(m.get(`auditmux_collect_lag${l}`), 0);
    assert.equal(m.get(`auditmux_collect_nodes${l}`), 1);
    assert.deepEqual(lines(path.join(f.dir, 'fleet', 'hosta', 'audit.log')), lines(a.log));
  }));
