// Containers by name in NATS: containers registered through `auditmux oci-hook` (the control socket's container-hook)
// have their events published to `audit.<node>.<daemon>.<name>` subjects by the host and an inline auxiliary daemon,
// and a JetStream consumer filtering by the name token receives exactly those events, with the `container` object.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { jetstream, jetstreamManager, AckPolicy } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { sleep, startEmulatedHost, syscallSerialCounts } from '../helpers/emulated-host';
import { natsSpec, quiet, streamMessages, syscallEvent, until, withServer } from '../helpers/nats';
import { NatsOutput } from '../../src/output/nats/output';
import { ContainerRegistry } from '../../src/containers/registry';
import { AUDITMUX_CONTAINER_ID, MsgType } from '../../src/kernel/constants';
import { cliPath } from '../helpers/daemon';

const EXE = '/usr/bin/amtree-natsname';

/** Runs the real `auditmux oci-hook` against the daemon's control socket (asynchronously: the daemon is in-process). */
async function ociHook(socket: string, state: Record<string, unknown>): Promise<string> {
  const child = spawn(process.execPath, [cliPath, 'oci-hook', '--fail-closed', '--socket', socket], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end(JSON.stringify(state));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 0, err);
  return err;
}

interface JsonEvent {
  contid: string | null;
  container?: Record<string, string>;
  serial: string;
  records: Array<{ type: string; fields: Record<string, string> }>;
}

/** Every message a filtered durable consumer delivers (acknowledged), with its subject and decoded JSON body. */
async function consume(url: string, filter: string): Promise<Array<{ subject: string; ev: JsonEvent }>> {
  const nc = await connect({ servers: [url] });
  try {
    const jsm = await jetstreamManager(nc);
    const name = `by-${filter.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    await jsm.consumers.add('AUDIT', { durable_name: name, filter_subject: filter, ack_policy: AckPolicy.Explicit });
    const c = await jetstream(nc).consumers.get('AUDIT', name);
    const pending = (await c.info()).num_pending;
    const out: Array<{ subject: string; ev: JsonEvent }> = [];
    while (out.length < pending) {
      const it = await c.fetch({ max_messages: 500, expires: 3000 });
      let got = 0;
      for await (const m of it) {
        got++;
        out.push({ subject: m.subject, ev: JSON.parse(Buffer.from(m.data).toString('utf8')) as JsonEvent });
        m.ack();
      }
      if (got === 0) throw new Error(`consumer ${filter}: ${out.length} of ${pending}`);
    }
    // Nothing more than what was pending when it was made.
    assert.equal((await c.info()).num_pending, 0);
    return out;
  } finally {
    await nc.close();
  }
}

const countBy = (xs: string[]): Record<string, number> => {
  const o: Record<string, number> = {};
  for (const x of xs) o[x] = (o[x] ?? 0) + 1;
  return o;
};

const keyOf = (e: JsonEvent): string => e.records.find((r) => r.type === 'SYSCALL')?.fields.key ?? '';

describe('nats subjects by container name (emulated mainline kernel, real nats-server, real oci-hook)', () => {
  it('host and inline daemon publish by name; a consumer on the name wildcard gets exactly those events', () =>
    withServer('amnatsname-', async (srv) => {
      const nats = (name: string, subject: string): string =>
        `[{ type: nats, name: n-${name}, servers: [${srv.url}], create_stream: true, payload: json, ` +
        `subject: "${subject}", stream_subjects: ["audit.>"], network_retry_time: 1, spool: { dir: {dir}/spool/${name} } }]`;
      const procs: ChildProcess[] = [];
      const h = await startEmulatedHost({
        prefix: 'amnatsname-',
        exe: EXE,
        untaggedPid: 4242431,
        control: true,
        yaml: [
          'host:',
          '  node_name: { format: user, name: n1 }',
          '  control_socket: {dir}/ctl.sock',
          '  rules: {dir}/host.rules',
          '  log: { file: {dir}/audit.log, format: RAW }',
          '  keep: unrouted',
          `  outputs: ${nats('host', 'audit.{node}.{daemon}.{name}')}`,
          'daemons:',
          `  - { name: a, rules: {dir}/a.rules, log: { file: {dir}/a.log, format: JSON }, isolation: inline, outputs: ${nats('a', 'audit.{node}.{daemon}.{name}')} }`,
          'routes:',
          '  - { contid: 100, daemons: [a] }',
          '  - { container: { name: "web.*" }, daemons: [a] }',
        ],
      });
      const dir = h.dir;
      try {
        try {
          // Two containers: `web.1` (routed to daemon a by its name) and `db` (no route: the host keeps its events).
          const ctr = (name: string, extra: Record<string, string>) => {
            const p = spawn('sleep', ['60'], { stdio: 'ignore' });
            procs.push(p);
            h.kernel.spawn(p.pid!, 1, { exe: EXE });
            return {
              pid: p.pid!,
              state: {
                ociVersion: '1.0.2',
                id: `ctr-${name.replace('.', '-')}`,
                status: 'created',
                pid: p.pid!,
                annotations: { 'io.auditmux.name': name, ...extra },
              },
            };
          };
          const web = ctr('web.1', { 'io.auditmux.image': 'busybox:1', 'io.kubernetes.pod.namespace': 'prod' });
          const db = ctr('db', {});
          const sock = join(dir, 'ctl.sock');
          await ociHook(sock, web.state);
          await ociHook(sock, db.state);
          for (let i = 0; i < 60; i++) {
            h.kernel.emitEvent(web.pid, 'getppid', 0);
            if (i < 20) h.kernel.emitEvent(db.pid, 'getppid', 0);
            if (i < 30) h.kernel.emitEvent(h.tagged.pid!, 'getppid', 0);
            if (i < 40) h.kernel.emitEvent(h.untaggedPid, 'getppid', 0);
            if (i % 20 === 0) await new Promise((r) => setImmediate(r));
          }
          let seen: string[] = [];
          await until(
            async () => {
              seen = (await streamMessages(srv.url, 'AUDIT').catch(() => [])).map((m) => m.subject);
              // 150 syscall events, DAEMON_START, the aux-start record and the two containers' birth records.
              return seen.length >= 154;
            },
            () => `all 154 events in the stream: ${JSON.stringify(countBy(seen))} ${JSON.stringify(h.daemon.status())}`,
          );
          await sleep(300);
        } finally {
          await h.stop();
        }
        const all = await streamMessages(srv.url, 'AUDIT');
        assert.equal(all.length, 154);
        assert.equal(new Set(all.map((m) => m.id)).size, 154, 'no id stored twice');
        const birth = (e: JsonEvent): string | undefined => e.records[0]?.fields.op;

        // The name wildcard: any node, any daemon, container `web.1` (its '.' escaped inside the token).
        // Its birth record (the host's CONTAINER_OP) names it too, published by the host under the same name.
        const webAll = await consume(srv.url, 'audit.*.*.web~2E1');
        assert.equal(webAll.length, 61);
        const webBirth = webAll.filter((m) => birth(m.ev) === 'container-birth');
        assert.equal(webBirth.length, 1);
        assert.equal(webBirth[0]!.subject, 'audit.n1.host.web~2E1');
        assert.equal(webBirth[0]!.ev.container?.name, 'web.1');
        const web = webAll.filter((m) => birth(m.ev) !== 'container-birth');
        assert.equal(web.length, 60);
        const webContid = web[0]!.ev.contid;
        assert.equal(webBirth[0]!.ev.contid, webContid);
        for (const { subject, ev } of web) {
          assert.equal(subject, 'audit.n1.a.web~2E1');
          assert.equal(keyOf(ev), 'tree-a');
          assert.equal(ev.contid, webContid);
          // Labels: the container's OCI annotations (src/containers/metadata.ts).
          assert.deepEqual(ev.container, {
            name: 'web.1',
            image: 'busybox:1',
            runtime: 'oci',
            namespace: 'prod',
            labels: {
              'io.auditmux.image': 'busybox:1',
              'io.auditmux.name': 'web.1',
              'io.kubernetes.pod.namespace': 'prod',
            },
          });
        }
        assert.equal(new Set(web.map((m) => m.ev.serial)).size, 60);
        // The same events, in the inline daemon's JSON log, carry the same container object.
        const alog = readFileSync(join(dir, 'a.log'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as JsonEvent)
          .filter((e) => keyOf(e) === 'tree-a');
        const named = alog.filter((e) => e.contid === webContid);
        assert.equal(named.length, 60);
        for (const e of named) assert.equal(e.container?.name, 'web.1');
        assert.deepEqual(new Set(named.map((e) => e.serial)), new Set(web.map((m) => m.ev.serial)));

        // The host's own container, by name.
        const dbAll = await consume(srv.url, 'audit.*.*.db');
        assert.equal(dbAll.length, 21);
        assert.equal(dbAll.filter((m) => birth(m.ev) === 'container-birth').length, 1);
        const db = dbAll.filter((m) => birth(m.ev) !== 'container-birth');
        assert.equal(db.length, 20);
        for (const { subject, ev } of db) {
          assert.equal(subject, 'audit.n1.host.db');
          assert.equal(keyOf(ev), 'host-k');
          assert.deepEqual(ev.container, { name: 'db', runtime: 'oci', labels: { 'io.auditmux.name': 'db' } });
        }
        const hostSerials = new Set(syscallSerialCounts(readFileSync(join(dir, 'audit.log'), 'utf8'), 'host-k').keys());
        for (const { ev } of db) assert.ok(hostSerials.has(ev.serial));

        // No container known: `none`, and no container object (contid 100 was set by hand, the rest is untagged).
        const none = await consume(srv.url, 'audit.n1.*.none');
        assert.equal(none.length, 72);
        assert.equal(none.filter((m) => m.subject === 'audit.n1.a.none' && keyOf(m.ev) === 'tree-a').length, 30);
        assert.equal(none.filter((m) => m.subject === 'audit.n1.host.none' && keyOf(m.ev) === 'host-k').length, 40);
        for (const { ev } of none) assert.equal('container' in ev, false);
      } finally {
        for (const p of procs) p.kill();
        rmSync(dir, { recursive: true, force: true });
      }
    }));

  it('the name is looked up when the event is spooled: an outage, a restart and the retirement do not lose it', () =>
    withServer('amnatsname2-', async (srv, dir) => {
      await srv.kill();
      const reg = new ContainerRegistry();
      reg.register({ runtime: 'runc', id: 'c9', contid: 9n, source: 'hook', meta: { name: 'job 7*', image: 'x' } });
      const spec = natsSpec([srv.url], join(dir, 'spool'), {
        subject: 'audit.{node}.{name}.{image}.{pod}',
        payload: 'json',
      });
      const make = () => new NatsOutput(spec, { nodeName: 'n2', contidKernel: false, diag: quiet, containers: reg });
      let out = make();
      for (let i = 0; i < 25; i++)
        for (const r of syscallEvent(i)) {
          // The container's events carry its contid as the routing pipeline writes it on a mainline kernel.
          if (r.type !== MsgType.SYSCALL && i % 5 !== 0) continue;
          const st = r.payload.toString('latin1').slice(0, r.payload.indexOf('): ') + 1);
          if (r.type === MsgType.SYSCALL && i % 5 !== 0)
            out.writeRecord(AUDITMUX_CONTAINER_ID, Buffer.from(`${st}: record=1 contid=9`, 'latin1'));
          out.writeRecord(r.type, r.payload);
        }
      out.flush();
      // The daemon restarts during the outage, and the container is gone from the registry meanwhile.
      await out.close();
      assert.ok(reg.retire(9n, 'poststop'));
      out = make();
      await srv.startProcess();
      try {
        await until(
          () => out.stats().pending === 0 && (out.stats().acked as number) > 0,
          () => JSON.stringify(out.stats()),
        );
      } finally {
        await out.close();
      }
      const ms = await streamMessages(srv.url, 'AUDIT');
      assert.equal(ms.length, 25);
      const named = ms.filter((m) => m.subject === 'audit.n2.job~207~2A.x.none');
      assert.equal(named.length, 20);
      for (const m of named)
        assert.deepEqual((JSON.parse(m.data.toString('utf8')) as JsonEvent).container, {
          name: 'job 7*',
          image: 'x',
          runtime: 'runc',
        });
      const rest = ms.filter((m) => m.subject === 'audit.n2.none.none.none');
      assert.equal(rest.length, 5);
      for (const m of rest) assert.equal('container' in (JSON.parse(m.data.toString('utf8')) as JsonEvent), false);
    }));
});
