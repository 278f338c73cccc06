// The NATS collector and records whose text holds control bytes: a USER record with a TAB and an ESC in its message
// (which the host kept in its own log, as auditd does) is written centrally with them as \011 and \033, counted
// `escaped`; it used to terminate the message, and the record the host logged never reached the central trail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { JsMsg } from '@nats-io/jetstream';
import { Collector } from '../../src/collect/collector';
import { parseCollectConfig } from '../../src/collect/config';
import { decodeBody } from '../../src/output/nats/payload';
import { quiet } from '../helpers/nats';

const STAMP = '1700000000.000:77';
const RAW = `node=h1 type=USER msg=audit(${STAMP}): pid=1 uid=0 auid=1000 ses=1 msg='op=note text="a\tb\x1b[2Jc" res=success'`;
const WRITTEN = `node=h1 type=USER msg=audit(${STAMP}): pid=1 uid=0 auid=1000 ses=1 msg='op=note text="a\\011b\\033[2Jc" res=success'`;

interface State {
  acked: number;
  termed: number;
  naked: number;
}

function msg(body: Buffer, st: State, seq: number, redelivered = false): JsMsg {
  const h = new Map([
    ['Nats-Msg-Id', `h1:noboot:${STAMP}:dhost`],
    ['Auditmux-Daemon', 'host'],
  ]);
  const m = {
    data: body,
    subject: 'audit.h1.host.none',
    ack: () => st.acked++,
    nak: () => st.naked++,
    term: () => st.termed++,
    working: () => undefined,
  };
  Object.defineProperty(m, 'headers', { get: () => ({ get: (k: string) => h.get(k) }) });
  Object.defineProperty(m, 'info', {
    get: () => ({ redelivered, pending: 0, timestampNanos: Date.now() * 1e6 }),
  });
  Object.defineProperty(m, 'seq', { get: () => seq });
  return m as unknown as JsMsg;
}

test('decodeBody: text and JSON bodies give the record with TAB and ESC escaped; NUL and newlines still refuse', () => {
  for (const body of [
    Buffer.from(`${RAW}\n`, 'latin1'),
    Buffer.from(JSON.stringify({ records: [{ line: RAW }] }), 'utf8'),
  ]) {
    const d = decodeBody(body);
    assert.deepEqual(d.lines, [WRITTEN]);
    assert.equal(d.escaped, 1);
  }
  assert.throws(() => decodeBody(Buffer.from(`${RAW}\0x\n`, 'latin1')), /NUL \(byte 0x00\)/);
  assert.throws(
    () => decodeBody(Buffer.from(JSON.stringify({ records: [{ line: `${RAW}\nforged` }] }), 'utf8')),
    /newline \(byte 0x0a\)/,
  );
});

test('collector: the record is written with \\011 and \\033, counted escaped; its redelivery is a duplicate', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'auditmux-cesc-'));
  const c = new Collector(
    parseCollectConfig(`servers: [nats://127.0.0.1:1]\nreorder_wait: 0\ndir: ${dir}\n`, `${dir}/c.yaml`),
    quiet,
  );
  try {
    const st: State = { acked: 0, termed: 0, naked: 0 };
    await c.handle([msg(Buffer.from(`${RAW}\n`, 'latin1'), st, 1)]);
    assert.deepEqual(st, { acked: 1, termed: 0, naked: 0 });
    assert.equal(c.counters.rejected, 0);
    assert.equal(c.counters.written, 1);
    assert.equal(c.counters.escaped, 1);
    const log = fs.readFileSync(path.join(dir, 'h1', 'audit.log'), 'latin1');
    assert.equal(log, `${WRITTEN}\n`);
    // Redelivered (the ack was lost): recognised as already written, not written twice.
    await c.handle([msg(Buffer.from(`${RAW}\n`, 'latin1'), st, 2, true)]);
    assert.equal(c.counters.duplicates, 1);
    assert.equal(fs.readFileSync(path.join(dir, 'h1', 'audit.log'), 'latin1'), `${WRITTEN}\n`);
    assert.ok(c.prometheus().includes('auditmux_collect_escaped_total{'), 'exported as a metric');
  } finally {
    await c.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
