// What the remote output takes from its server: replies bounded as auditd's client bounds them and parsed at linear
// cost however they are split, their text cut and escaped before it is kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import * as fs from 'node:fs';
import {
  FrameParser,
  HEADER_SIZE,
  MAX_FRAME,
  RMW,
  frame,
  replyKind,
  type ParsedItem,
} from '../../src/output/remote/protocol';
import type { RemoteOutput } from '../../src/output/remote/client';
import { payload, tmpDir, waitFor } from '../helpers/peers';
import { remoteClient } from '../helpers/remote';

const USER = 1005;

/** Bytes Buffer.concat produced while `fn` ran (the parser's joins). */
function concatBytes(fn: () => void): number {
  const real = Buffer.concat;
  let bytes = 0;
  Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
    const b = real(list, total);
    bytes += b.length;
    return b;
  }) as typeof Buffer.concat;
  try {
    fn();
  } finally {
    Buffer.concat = real;
  }
  return bytes;
}

function trickle(p: FrameParser, stream: Buffer, step: number): ParsedItem[] {
  const out: ParsedItem[] = [];
  for (let i = 0; i < stream.length; i += step) out.push(...p.push(stream.subarray(i, i + step)));
  return out;
}

test('parser: a largest frame and a longest line sent a byte at a time are joined once, not once per byte', () => {
  const big = frame(RMW.ACK, 7, Buffer.alloc(MAX_FRAME - HEADER_SIZE, 0x41));
  const line = Buffer.concat([Buffer.alloc(MAX_FRAME - 1, 0x42), Buffer.from('\n')]);
  for (const [what, stream] of [
    ['frame', big],
    ['line', line],
    ['both', Buffer.concat([line, big, big, line])],
  ] as const) {
    let items: ParsedItem[] = [];
    const copied = concatBytes(() => {
      items = trickle(new FrameParser(), stream, 1);
    });
    assert.ok(
      items.every((i) => i.kind !== 'error'),
      `${what}: ${JSON.stringify(items.find((i) => i.kind === 'error'))}`,
    );
    assert.equal(items.length, what === 'both' ? 4 : 1);
    // Joining at every chunk copied the whole buffer each time: about n^2/2 bytes (40 MB for one frame).
    assert.ok(copied <= 2 * stream.length, `${what}: ${copied} bytes copied for ${stream.length} trickled`);
  }
});

test('parser: the same items whatever the chunk sizes', () => {
  const stream = Buffer.concat([
    frame(RMW.ACK, 1, 'ok'),
    Buffer.from('type=X msg=ascii line\n'),
    frame(RMW.DISKLOW, 2),
    frame(RMW.MESSAGE, 3, Buffer.alloc(5000, 0x0a)),
    Buffer.from('\n'),
    Buffer.from('x'.repeat(3000) + '\n'),
  ]);
  const show = (items: ParsedItem[]): string[] =>
    items.map((i) =>
      i.kind === 'frame' ? `f${i.header.type}/${i.header.seq}/${i.payload.length}` : `${i.kind}${JSON.stringify(i)}`,
    );
  const whole = show(new FrameParser().push(stream));
  assert.equal(whole.length, 6);
  for (const step of [1, 2, 3, 15, 16, 17, 100, 4096, 7000]) {
    assert.deepEqual(show(trickle(new FrameParser(), stream, step)), whole, `chunks of ${step}`);
  }
});

/** A server that answers each MESSAGE frame with `answer(seq)` (nothing when it returns null). */
function server(answer: (seq: number) => Buffer | null): Promise<net.Server> {
  return new Promise((resolve) => {
    const srv = net.createServer((s) => {
      const p = new FrameParser();
      s.on('data', (d: Buffer) => {
        for (const it of p.push(d)) {
          if (it.kind !== 'frame') continue;
          const r = answer(it.header.seq);
          if (r) s.write(r);
        }
      });
      s.on('error', () => undefined);
    });
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

async function oneRecord(
  answer: (seq: number) => Buffer | null,
  check: (st: Record<string, unknown>) => void,
): Promise<void> {
  const dir = tmpDir('amreplies');
  const srv = await server(answer);
  let out: RemoteOutput | null = null;
  try {
    // No reconnect during the test: lastError is the first connection's.
    out = remoteClient((srv.address() as net.AddressInfo).port, path.join(dir, 'spool'), { networkRetryMs: 600000 });
    out.writeRecord(USER, payload(0));
    out.flush();
    const o = out;
    await waitFor(
      () => (o.stats().errors as number) > 0 || (o.stats().delivered as number) > 0,
      10000,
      'a reply handled',
    );
    check(out.stats());
  } finally {
    await out?.close();
    srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('remote output: a reply longer than auditd allows (MAX_AUDIT_MESSAGE_LENGTH) is a protocol error, not an ack', async () => {
  await oneRecord(
    (seq) => frame(RMW.ACK, seq, Buffer.alloc(9000, 0x20)),
    (st) => {
      assert.equal(st.delivered, 0);
      assert.equal(st.pending, 1);
      assert.match(String(st.lastError), new RegExp(`frame of ${9000 + HEADER_SIZE} bytes exceeds ${MAX_FRAME}`));
    },
  );
});

test('remote output: reply text is kept cut to 512 bytes and escaped', async () => {
  const text = Buffer.concat([Buffer.from('disk full \x1b[2J\x1b]0;owned\x07\n'), Buffer.alloc(8000, 0x78)]);
  await oneRecord(
    (seq) => frame(RMW.DISKFULL, seq, text),
    (st) => {
      const e = String(st.lastError);
      assert.equal(st.delivered, 0);
      assert.ok(e.length < 700, `lastError of ${e.length} characters`);
      assert.ok(e.startsWith('remote disk-full: disk full \\033[2J\\033]0;owned\\007\\012xxx'), e.slice(0, 80));
      assert.ok(!/[\x00-\x1f\x7f]/.test(e), 'no control byte kept');
      assert.ok(e.endsWith(`... (${text.length} bytes)`), e.slice(-40));
    },
  );
});

test('replyKind: only ACK and replies with the warning bit commit; anything but auditd reply types is invalid', () => {
  assert.equal(replyKind(RMW.ACK), 'ack');
  assert.equal(replyKind(RMW.DISKLOW), 'warning');
  assert.equal(replyKind(RMW.REPLY_MASK | RMW.WARN_MASK | 7), 'warning');
  assert.equal(replyKind(RMW.DISKFULL), 'cannot-log');
  assert.equal(replyKind(RMW.DISKERROR), 'cannot-log');
  assert.equal(replyKind(RMW.REPLY_MASK | RMW.FATAL_MASK | RMW.WARN_MASK | 3), 'cannot-log');
  assert.equal(replyKind(RMW.ENDING), 'ending');
  for (const t of [RMW.MESSAGE, RMW.HEARTBEAT, 0x40000002, 0xc0000000, 0x40100000, 0x20000001, 0x10000001, 0xffffffff])
    assert.equal(replyKind(t), 'invalid', `0x${t.toString(16)}`);
});

test('remote output: an echo server (our MESSAGE frames sent back, seq and all) commits nothing', async () => {
  const dir = tmpDir('amecho');
  const srv = net.createServer((s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  let out: RemoteOutput | null = null;
  try {
    out = remoteClient((srv.address() as net.AddressInfo).port, path.join(dir, 'spool'), {
      networkRetryMs: 600000,
      window: 32,
    });
    for (let i = 0; i < 100; i++) out.writeRecord(USER, payload(i));
    out.flush();
    const o = out;
    await waitFor(
      () => (o.stats().errors as number) > 0 || (o.stats().delivered as number) > 0,
      10000,
      'a protocol error (or a commit)',
    );
    const st = out.stats();
    assert.equal(st.delivered, 0);
    assert.equal(st.pending, 100);
    assert.equal(st.acks, 0);
    assert.match(String(st.lastError), /unexpected reply type 0x0 \(message\) to seq 1/);
  } finally {
    await out?.close();
    srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('remote output: a reply of another header version, or a reply type auditd does not send, commits nothing', async () => {
  const v1 = (seq: number): Buffer => {
    const f = frame(RMW.ACK, seq);
    f[4] = 1;
    return f;
  };
  await oneRecord(v1, (st) => {
    assert.equal(st.delivered, 0);
    assert.match(String(st.lastError), /reply with header version 1/);
  });
  await oneRecord(
    (seq) => frame(0x40000002, seq),
    (st) => {
      assert.equal(st.delivered, 0);
      assert.match(String(st.lastError), /unexpected reply type 0x40000002/);
    },
  );
  await oneRecord(
    (seq) => frame(RMW.HEARTBEAT, seq),
    (st) => {
      assert.equal(st.delivered, 0);
      assert.match(String(st.lastError), /unexpected reply type 0x1 \(heartbeat\)/);
    },
  );
  // A warning reply other than DISKLOW still means logged, as audisp-remote takes it.
  await oneRecord(
    (seq) => frame(RMW.REPLY_MASK | RMW.WARN_MASK | 2, seq, 'quota near'),
    (st) => {
      assert.equal(st.delivered, 1);
      assert.equal(st.errors, 0);
    },
  );
});
