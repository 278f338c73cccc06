// A record sink that throws (a bug below the client): the rest of the batch is still handed over, the batch still
// ends, the error is counted and thrown once after the batch, to the daemon's internal-error handler.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { AuditClient } from '../../src/kernel/client';
import type { AuditSocket, BatchHandler } from '../../src/kernel/socket';

/** A transport that only hands batches to the client (no requests are made). */
function fakeSocket(): { socket: AuditSocket; feed: () => BatchHandler } {
  let handler: BatchHandler | null = null;
  const socket = {
    portId: 1,
    send() {},
    start(h: BatchHandler) {
      handler = h;
    },
    stop() {},
    close() {},
  } as unknown as AuditSocket;
  return { socket, feed: () => handler! };
}

/** One batch of `n` records (type 1300 + i) back to back, each a netlink header and a short payload. */
function batch(n: number): { buf: Buffer; lengths: Uint32Array } {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const p = Buffer.from(`audit(1700000000.001:${i}): n=${i}`, 'latin1');
    const h = Buffer.alloc(16);
    h.writeUInt32LE(16 + p.length, 0);
    h.writeUInt16LE(1300 + i, 4);
    parts.push(h, p);
  }
  return {
    buf: Buffer.concat(parts),
    lengths: Uint32Array.from({ length: n }, (_, i) => 16 + parts[2 * i + 1]!.length),
  };
}

describe('AuditClient: a record sink that throws', () => {
  it('the rest of the batch is handed over, the batch ends, then the first error is thrown and counted', async () => {
    const { socket, feed } = fakeSocket();
    const client = await AuditClient.open({ socket });
    const seen: number[] = [];
    let ends = 0;
    client.onRecords(
      (type) => {
        seen.push(type);
        if (type === 1301 || type === 1303) throw new Error(`bug at ${type}`);
      },
      () => ends++,
    );
    const b = batch(5);
    assert.throws(() => feed()(b.buf, b.lengths, 5), /bug at 1301/);
    assert.deepEqual(seen, [1300, 1301, 1302, 1303, 1304], 'every record was handed over');
    assert.equal(ends, 1, 'the batch ended');
    assert.equal(client.counters.sinkErrors, 2);
    assert.equal(client.counters.records, 5);
    // The next batch goes as before.
    feed()(b.buf, b.lengths, 1);
    assert.equal(ends, 2);
    client.close();
  });

  it('a batch end that throws is thrown after it, once', async () => {
    const { socket, feed } = fakeSocket();
    const client = await AuditClient.open({ socket });
    let n = 0;
    client.onRecords(
      () => n++,
      () => {
        throw new Error('end failed');
      },
    );
    const b = batch(3);
    assert.throws(() => feed()(b.buf, b.lengths, 3), /end failed/);
    assert.equal(n, 3);
    assert.equal(client.counters.sinkErrors, 0);
    client.close();
  });
});
