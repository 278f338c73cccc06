// Netlink lengths the client cannot trust: a reply datagram whose nlmsg_len is shorter than a header, past the
// datagram's end, or near 2^32 (a step of 0 or a negative one in 32-bit arithmetic) is dropped and counted, without a
// hang or a throw, and the next datagram is still read. Also the bounded helpers (nlAlign, decodeSignalInfo2).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { KernelError } from '../../src/errors';
import { decodeSignalInfo2, nlAlign } from '../../src/kernel/wire';

/**
 * Runs in a worker, so that a client looping for ever can be stopped: a fake transport hands the client one batch of
 * three datagrams (the bad one, then a genuine AUDIT_GET reply and its ACK for the pending request).
 */
const FEED = `
const { parentPort, workerData } = require('node:worker_threads');
const { AuditClient } = require(workerData.client);
let onBatch;
const socket = { portId: 1, send() {}, start(b) { onBatch = b; }, stop() {}, close() {} };
function msg(len, type, seq, payload) {
  const b = Buffer.alloc(16 + payload.length);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt32LE(seq, 8);
  payload.copy(b, 16);
  return b;
}
(async () => {
  const c = await AuditClient.open({ socket, timeoutMs: 2000 });
  const status = c.getStatus();
  const seq = c.seq;
  const bad = msg(workerData.len, workerData.type, seq, Buffer.alloc(16, 0x41));
  const st = Buffer.alloc(44);
  st.writeUInt32LE(77, 12);
  const reply = msg(16 + 44, 1000, seq, st);
  const ack = msg(36, 2, seq, Buffer.alloc(20));
  let thrown = null;
  try {
    onBatch(Buffer.concat([bad, reply, ack]), Uint32Array.of(bad.length, reply.length, ack.length), 3);
  } catch (e) {
    thrown = String((e && e.code) || e);
  }
  let pid = null;
  try {
    pid = (await status).pid;
  } catch (e) {
    pid = String((e && e.code) || e);
  }
  parentPort.postMessage({ thrown, pid, counters: { ...c.counters } });
})().catch((e) => parentPort.postMessage({ failed: String(e) }));
`;

interface Result {
  thrown?: string | null;
  pid?: number | string | null;
  counters?: Record<string, number>;
  failed?: string;
}

async function feed(len: number, type: number): Promise<Result> {
  const client = join(__dirname, '..', '..', 'src', 'kernel', 'client.js');
  const w = new Worker(FEED, { eval: true, workerData: { client, len, type } });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<Result>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`nlmsg_len 0x${len.toString(16)}: the client hung (5 s)`)), 5000);
      w.once('message', (m: Result) => resolve(m));
      w.once('error', reject);
    });
  } finally {
    clearTimeout(timer);
    await w.terminate();
  }
}

const NLMSG_ERROR = 2;
const AUDIT_GET = 1000;

describe('kernel client: netlink lengths in reply datagrams', () => {
  const cases: Array<[string, number]> = [
    ['0xffffffff (step 0)', 0xffffffff],
    ['0xfffffffe (step 0)', 0xfffffffe],
    ['0xfffffffd (step 0)', 0xfffffffd],
    ['0xfffffffc (step -4)', 0xfffffffc],
    ['0x80000000 (step -2^31)', 0x80000000],
    ['0x7fffffff (past the end)', 0x7fffffff],
    ['33 (one byte past the end)', 33],
    ['0 (shorter than a header)', 0],
    ['15 (shorter than a header)', 15],
  ];
  for (const [name, len] of cases) {
    for (const type of [NLMSG_ERROR, AUDIT_GET]) {
      it(`nlmsg_len ${name}, type ${type}: dropped and counted, no hang, no throw, the next reply read`, async () => {
        const r = await feed(len, type);
        assert.equal(r.failed, undefined);
        assert.equal(r.thrown, null, 'the batch handler threw');
        assert.equal(r.pid, 77, 'the pending request was answered by the genuine reply that followed');
        assert.equal(r.counters?.malformed, 1);
        assert.equal(r.counters?.strayReplies, 0);
      });
    }
  }

  it('a datagram shorter than a netlink header is counted too', async () => {
    const { AuditClient } = await import('../../src/kernel/client');
    let onBatch: ((b: Buffer, l: Uint32Array, n?: number) => void) | undefined;
    const c = await AuditClient.open({
      socket: { portId: 1, send() {}, start: (b) => (onBatch = b), stop() {}, close() {} },
    });
    onBatch!(Buffer.alloc(10), Uint32Array.of(10), 1);
    assert.equal(c.counters.malformed, 1);
    assert.equal(c.counters.records, 0);
    c.close();
  });
});

describe('wire helpers with lengths near 2^32', () => {
  it('nlAlign rounds up to 4 without 32-bit wrap-around', () => {
    assert.equal(nlAlign(0), 0);
    assert.equal(nlAlign(17), 20);
    assert.equal(nlAlign(0x7ffffffd), 0x80000000);
    assert.equal(nlAlign(0xfffffffd), 0x100000000);
    assert.equal(nlAlign(0xffffffff), 0x100000000);
  });

  it('a SIGNAL_INFO2 reply shorter than its 12 fixed bytes is a KernelError EPROTO, not a bare RangeError', () => {
    for (const n of [0, 4, 8, 11]) {
      assert.throws(
        () => decodeSignalInfo2(Buffer.alloc(n)),
        (e: unknown) =>
          e instanceof KernelError && e.code === 'EPROTO' && e.syscall === 'AUDIT_SIGNAL_INFO2' && /12/.test(e.message),
      );
    }
    const ok = Buffer.alloc(12);
    ok.writeUInt32LE(5, 0);
    assert.deepEqual(decodeSignalInfo2(ok), { uid: 5, pid: 0, ctx: '' });
  });
});
