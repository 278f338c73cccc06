// The nats output against a real nats-server on loopback: one message per event, ids, outages, restarts, no doubles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { AUDITMUX_CONTAINER_ID, MsgType } from '../../src/kernel/constants';
import type { NatsOutput } from '../../src/output/nats/output';
import { decodeBody } from '../../src/output/nats/payload';
import { readBootId } from '../../src/output/nats/subject';
import { idCounts, natsOutput, streamMessages, until, withServer } from '../helpers/nats';

/** The records of syscall event i, as the host hands them to outputs (EOE last). */
function event(i: number, contid?: string): { type: number; payload: Buffer }[] {
  const st = `audit(1700000000.${String(i % 1000).padStart(3, '0')}:${1000 + i})`;
  const recs: { type: number; payload: Buffer }[] = [
    {
      type: MsgType.SYSCALL,
      payload: Buffer.from(
        `${st}: arch=c000003e syscall=257 success=yes exit=3 pid=${100 + i} uid=0 comm="cat" key="k${i % 3}"`,
      ),
    },
    { type: MsgType.CWD, payload: Buffer.from(`${st}: cwd="/root"`) },
    { type: MsgType.PATH, payload: Buffer.from(`${st}: item=0 name="/etc/f${i}" inode=${i} nametype=NORMAL`) },
  ];
  if (contid) recs.push({ type: AUDITMUX_CONTAINER_ID, payload: Buffer.from(`${st}: record=1 contid=${contid}`) });
  recs.push({ type: MsgType.EOE, payload: Buffer.from(`${st}: `) });
  return recs;
}

function feed(o: NatsOutput, from: number, to: number): void {
  for (let i = from; i < to; i++) for (const r of event(i)) o.writeRecord(r.type, r.payload);
  o.flush();
}

const P = 'auditmux-natsout-';

test('one message per event: every record, the event id in Nats-Msg-Id, subject by node/daemon/contid', () =>
  withServer(P, async (srv, dir) => {
    const o = natsOutput([srv.url], path.join(dir, 'spool'), 'web.1 *>');
    try {
      feed(o, 0, 50);
      for (const r of event(50, '77')) o.writeRecord(r.type, r.payload);
      o.flush();
      await until(
        () => o.stats().delivered === 51,
        () => JSON.stringify(o.stats()),
      );
      const ms = await streamMessages(srv.url, 'AUDIT');
      assert.equal(ms.length, 51);
      const boot = readBootId();
      assert.match(boot, /^[0-9a-f]{32}$/);
      for (let i = 0; i < 51; i++) {
        const m = ms[i]!;
        assert.equal(
          m.id,
          `web~2E1~20~2A~3E:${boot}:1700000000.${String(i % 1000).padStart(3, '0')}:${1000 + i}:dhost`,
        );
        const d = decodeBody(m.data);
        assert.equal(d.lines.length, i === 50 ? 4 : 3, 'all records of the event, no EOE');
        assert.match(d.lines[0]!, /type=SYSCALL msg=audit\(/);
        // The node name's '.', ' ', '*' and '>' never reach the subject as separators or wildcards.
        assert.equal(m.subject, `audit.web~2E1~20~2A~3E.host.${i === 50 ? '77' : 'none'}`);
      }
    } finally {
      await o.close();
    }
  }));

test('a connection the client closed for good (as after repeated authorization errors) is opened again: nothing lost', () =>
  withServer(P, async (srv, dir) => {
    const o = natsOutput([srv.url], path.join(dir, 'spool'), 'h1');
    try {
      feed(o, 0, 100);
      await until(
        () => o.stats().delivered === 100,
        () => JSON.stringify(o.stats()),
      );
      // The client's own close, which it does by itself after two authorization errors in a row.
      await (o as unknown as { nc: { close(): Promise<void> } }).nc.close();
      feed(o, 100, 200);
      await until(
        () => o.stats().delivered === 200 && o.stats().pending === 0,
        () => JSON.stringify(o.stats()),
        30000,
      );
      assert.equal(idCounts(await streamMessages(srv.url, 'AUDIT')).size, 200);
    } finally {
      await o.close();
    }
  }));

test('server killed mid-stream and restarted: every event stored once', () =>
  withServer(P, async (srv, dir) => {
    const o = natsOutput([srv.url], path.join(dir, 'spool'), 'h1');
    try {
      feed(o, 0, 300);
      await until(
        () => (o.stats().delivered as number) >= 100,
        () => JSON.stringify(o.stats()),
      );
      await srv.kill();
      feed(o, 300, 600);
      // Nothing can be acknowledged while the server is down: the events wait in the spool.
      await new Promise((r) => setTimeout(r, 500));
      assert.ok((o.stats().pending as number) > 0, JSON.stringify(o.stats()));
      await srv.startProcess();
      feed(o, 600, 700);
      await until(
        () => o.stats().delivered === 700 && o.stats().pending === 0,
        () => JSON.stringify(o.stats()),
        60000,
      );
      const ms = await streamMessages(srv.url, 'AUDIT');
      const counts = idCounts(ms);
      assert.equal(counts.size, 700, 'every event stored');
      assert.equal(ms.length, 700, 'none stored twice');
    } finally {
      await o.close();
    }
  }));

test('unacked events survive an output restart in the spool and are sent once', () =>
  withServer(P, async (srv, dir) => {
    const sp = path.join(dir, 'spool');
    let o = natsOutput([srv.url], sp, 'h2');
    try {
      feed(o, 0, 100);
      await until(
        () => o.stats().delivered === 100,
        () => JSON.stringify(o.stats()),
      );
      await srv.kill();
      feed(o, 100, 250);
      await o.close();
      await srv.startProcess();
      o = natsOutput([srv.url], sp, 'h2');
      assert.equal(o.stats().pending, 150, 'the spool kept the unsent events');
      await until(
        () => o.stats().pending === 0,
        () => JSON.stringify(o.stats()),
      );
      await o.close();
      const ms = await streamMessages(srv.url, 'AUDIT');
      assert.equal(idCounts(ms).size, 250);
      assert.equal(ms.length, 250);
    } finally {
      await o.close();
    }
  }));

test('a resend of acknowledged events (spool cursor lost) is deduplicated by Nats-Msg-Id', () =>
  withServer(P, async (srv, dir) => {
    const sp = path.join(dir, 'spool');
    let o = natsOutput([srv.url], sp, 'h3');
    try {
      feed(o, 0, 80);
      await until(
        () => o.stats().delivered === 80,
        () => JSON.stringify(o.stats()),
      );
      // A publisher crash between publish and ack: the same entries are sent again by a fresh process.
      const segs = fs
        .readdirSync(sp)
        .filter((n) => n.startsWith('seg-'))
        .map((n) => [n, fs.readFileSync(path.join(sp, n))] as const);
      await o.close();
      fs.rmSync(sp, { recursive: true, force: true });
      fs.mkdirSync(sp);
      for (const [n, b] of segs) fs.writeFileSync(path.join(sp, n), b);
      o = natsOutput([srv.url], sp, 'h3');
      assert.equal(o.stats().pending, 80);
      await until(
        () => o.stats().pending === 0,
        () => JSON.stringify(o.stats()),
      );
      assert.equal(o.stats().duplicates, 80, 'the stream answered duplicate for each');
      await o.close();
      assert.equal((await streamMessages(srv.url, 'AUDIT')).length, 80);
    } finally {
      await o.close();
    }
  }));

test('missing stream with create_stream off: a clear error, events kept, sent once the stream exists', () =>
  withServer(P, async (srv, dir) => {
    const o = natsOutput([srv.url], path.join(dir, 'spool'), 'h4', { createStream: false });
    try {
      feed(o, 0, 20);
      await until(
        () => /does not exist and create_stream is off/.test(String(o.stats().lastError)),
        () => JSON.stringify(o.stats()),
      );
      assert.equal(o.stats().pending, 20);
      assert.equal(o.stats().streamMissing, true);
      const nc = await connect({ servers: [srv.url] });
      await (await jetstreamManager(nc)).streams.add({ name: 'AUDIT', subjects: ['audit.>'] });
      await nc.close();
      await until(
        () => o.stats().pending === 0,
        () => JSON.stringify(o.stats()),
      );
      assert.equal((await streamMessages(srv.url, 'AUDIT')).length, 20);
    } finally {
      await o.close();
    }
  }));

test('another stream capturing the subject: its ack does not commit, the events wait until the configured stream', () =>
  withServer(P, async (srv, dir) => {
    // AUDIT exists but captures other subjects; SHADOW captures the output's: before, SHADOW's acks committed every
    // entry and AUDIT (what the collector reads) never saw one.
    const nc = await connect({ servers: [srv.url] });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'AUDIT', subjects: ['elsewhere.>'] });
    await jsm.streams.add({ name: 'SHADOW', subjects: ['audit.>'] });
    const o = natsOutput([srv.url], path.join(dir, 'spool'), 'h5', { createStream: false });
    try {
      feed(o, 0, 10);
      await until(
        () => Number(o.stats().publishErrors) >= 2,
        () => JSON.stringify(o.stats()),
      );
      assert.equal(o.stats().pending, 10, 'nothing committed');
      assert.equal(o.stats().delivered, 0);
      assert.match(String(o.stats().lastError), /expected stream|not AUDIT/i);
      assert.equal((await jsm.streams.info('SHADOW')).state.messages, 0, 'refused by the other stream');
      // The setup corrected: the same entries go to AUDIT, once each.
      await jsm.streams.delete('SHADOW');
      await jsm.streams.update('AUDIT', { subjects: ['audit.>'] });
      await until(
        () => o.stats().pending === 0,
        () => JSON.stringify(o.stats()),
      );
      assert.equal(idCounts(await streamMessages(srv.url, 'AUDIT')).size, 10);
      assert.equal((await jsm.streams.info('AUDIT')).state.messages, 10);
    } finally {
      await o.close();
      await nc.close();
    }
  }));
