// The nats output's publish window against a real nats-server: the server killed or hung with a full window of
// publishes outstanding loses nothing and stores nothing twice; the spool only moves past acknowledged prefixes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { NatsOutput } from '../../src/output/nats/output';
import { idCounts, natsOutput, streamMessages, syscallEvent, until, withServer } from '../helpers/nats';

const P = 'auditmux-natswin-';
const WINDOW = 128;

function feed(o: NatsOutput, from: number, to: number): void {
  for (let i = from; i < to; i++) for (const r of syscallEvent(i)) o.writeRecord(r.type, r.payload);
  o.flush();
}

const stats = (o: NatsOutput) => (): string => JSON.stringify(o.stats());

test('server killed with a full window in flight: after its restart every event is stored exactly once', () =>
  withServer(P, async (srv, dir) => {
    const sp = path.join(dir, 'spool');
    const o = natsOutput([srv.url], sp, 'w1', { maxInFlight: WINDOW, ackTimeoutMs: 1000 });
    try {
      feed(o, 0, 300);
      await until(() => o.stats().delivered === 300, stats(o));
      // Hung first, so the window fills deterministically: WINDOW publishes sent, none acknowledged.
      await srv.pause();
      feed(o, 300, 1000);
      await until(() => o.stats().inFlight === WINDOW, stats(o));
      assert.equal(o.stats().delivered, 300, 'nothing past the window is committed without its ack');
      assert.equal(o.stats().pending, 700, 'every unacknowledged event is still in the spool');
      // Killed while hung: the publishes in its socket were never read, so they must be sent again.
      await srv.kill();
      await until(() => (o.stats().publishErrors as number) > 0, stats(o));
      assert.equal(o.stats().delivered, 300, 'a failed window commits nothing it was not acknowledged for');
      await srv.startProcess();
      feed(o, 1000, 1200);
      await until(() => o.stats().pending === 0 && o.stats().delivered === 1200, stats(o), 60000);
      const ms = await streamMessages(srv.url, 'AUDIT');
      assert.equal(idCounts(ms).size, 1200, 'no event lost');
      assert.equal(ms.length, 1200, 'no event stored twice');
    } finally {
      await o.close();
    }
  }));

test('server hung until the acks time out, then resumed: the window is resent and the stream drops the copies', () =>
  withServer(P, async (srv, dir) => {
    const o = natsOutput([srv.url], path.join(dir, 'spool'), 'w2', { maxInFlight: WINDOW, ackTimeoutMs: 1000 });
    try {
      feed(o, 0, 50);
      await until(() => o.stats().delivered === 50, stats(o));
      await srv.pause();
      feed(o, 50, 600);
      await until(() => o.stats().inFlight === WINDOW, stats(o));
      // The acks time out while the publishes sit unread in the server's socket: stored later, acknowledged never.
      await until(() => (o.stats().publishErrors as number) >= WINDOW, stats(o));
      assert.equal(o.stats().delivered, 50);
      srv.resume();
      await until(() => o.stats().pending === 0 && o.stats().delivered === 600, stats(o), 60000);
      assert.ok((o.stats().duplicates as number) > 0, `the resent window was answered duplicate: ${stats(o)()}`);
      const ms = await streamMessages(srv.url, 'AUDIT');
      assert.equal(idCounts(ms).size, 600, 'no event lost');
      assert.equal(ms.length, 600, 'no event stored twice');
    } finally {
      await o.close();
    }
  }));

test('restart of the output with a window in flight: the spool resumes at the first unacknowledged event', () =>
  withServer(P, async (srv, dir) => {
    const sp = path.join(dir, 'spool');
    let o = natsOutput([srv.url], sp, 'w3', { maxInFlight: WINDOW, ackTimeoutMs: 1000 });
    try {
      feed(o, 0, 100);
      await until(() => o.stats().delivered === 100, stats(o));
      await srv.pause();
      feed(o, 100, 400);
      await until(() => o.stats().inFlight === WINDOW, stats(o));
      // Closed with WINDOW publishes outstanding (the shutdown grace passes unanswered): 300 stay spooled.
      await o.close();
      srv.resume();
      o = natsOutput([srv.url], sp, 'w3', { maxInFlight: WINDOW, ackTimeoutMs: 1000 });
      assert.equal(o.stats().pending, 300, 'the spool kept every event after the last acknowledged prefix');
      await until(() => o.stats().pending === 0, stats(o), 60000);
      const ms = await streamMessages(srv.url, 'AUDIT');
      assert.equal(idCounts(ms).size, 400, 'no event lost');
      assert.equal(ms.length, 400, 'the window published before the restart was not stored again');
    } finally {
      await o.close();
    }
  }));
