// The control socket's bounds: backpressure for clients that never read, request size, idle timeout, connection cap,
// shutdown.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlServer, controlRequest, type ControlLimits, type ControlStats } from '../../src/daemon/control';

const uid = process.getuid!();
/** Fails the test instead of hanging it when the code under test never gets there (old code: never). */
const GUARD_MS = 20_000;

function eventually<T>(p: Promise<T>, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  const guard = new Promise<never>(
    (_, rej) => (t = setTimeout(() => rej(new Error(`never happened: ${what}`)), GUARD_MS)),
  );
  return Promise.race([p, guard]).finally(() => clearTimeout(t));
}

async function until(cond: () => boolean, what: string): Promise<void> {
  await eventually(
    (async () => {
      while (!cond()) await new Promise((r) => setTimeout(r, 10));
    })(),
    what,
  );
}

interface Harness {
  path: string;
  server: ControlServer;
  handled: () => number;
  close: () => Promise<void>;
}

async function harness(
  limits: Partial<ControlLimits>,
  handler?: (cmd: string, args: Record<string, unknown>) => Promise<unknown>,
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'amctl-'));
  const path = join(dir, 'control.sock');
  let n = 0;
  const server = new ControlServer(
    path,
    async (cmd, args) => {
      n++;
      if (handler) return handler(cmd, args);
      return { cmd, args };
    },
    uid,
    limits,
  );
  await server.listen();
  return {
    path,
    server,
    handled: () => n,
    close: async () => {
      await eventually(server.close(), 'server.close()');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path, () => resolve(s));
    s.once('error', reject);
  });
}

/** Collects what the server sends until it closes the connection. */
function drain(s: Socket): Promise<string> {
  let out = '';
  s.setEncoding('utf8');
  s.on('data', (d: string) => (out += d));
  s.on('error', () => undefined);
  return new Promise((resolve) => s.once('close', () => resolve(out)));
}

const stats = (h: Harness): ControlStats => h.server.stats();

describe('control socket bounds', () => {
  it('a client that sends many requests and never reads is stalled by backpressure, not buffered, and closed when idle', async () => {
    // Each reply is ~8 KiB. The old server read every request and queued every reply (the reported 96 -> 698 MiB).
    const h = await harness({ idleMs: 300 }, async () => ({ pad: 'x'.repeat(8192) }));
    try {
      const N = 5000;
      const s = await connect(h.path);
      s.pause(); // never reads: the kernel's socket buffer fills, then the server's writes would queue
      s.on('error', () => undefined);
      s.write(`${JSON.stringify({ id: 1, cmd: 'echo' })}\n`.repeat(N));
      // A paused client does not notice the close itself: watch the server's side. The old server never closed it
      // and handled all N requests, so that is the other way out of the wait.
      await until(
        () => h.server.stats?.().closedIdle === 1 || h.handled() >= N,
        'the server to close the client or answer everything',
      );
      const st = stats(h);
      assert.ok(h.handled() < N / 10, `handled ${h.handled()} of ${N} requests for a client that reads nothing`);
      // Unread replies held by the daemon: about one reply past the socket's high-water mark, never the whole stream.
      assert.ok(st.maxQueuedBytes < 64 << 10, `queued ${st.maxQueuedBytes} bytes`);
      assert.equal(st.closedIdle, 1);
      await until(() => stats(h).connections === 0, 'the connection to be gone');
      s.destroy();
    } finally {
      await h.close();
    }
  });

  it('a client whose unread replies exceed maxQueuedBytes is closed', async () => {
    const h = await harness({ maxQueuedBytes: 256 << 10 }, async () => ({ pad: 'y'.repeat(1 << 20) }));
    try {
      const s = await connect(h.path);
      s.pause();
      s.on('error', () => undefined);
      s.write(`${JSON.stringify({ id: 1, cmd: 'big' })}\n`);
      await until(() => stats(h).closedBacklog === 1, 'the client to be closed for its backlog');
      await until(() => stats(h).connections === 0, 'the connection to be gone');
      s.destroy();
    } finally {
      await h.close();
    }
  });

  it('pipelined requests are answered one at a time, in order; a reader gets every answer', async () => {
    const h = await harness({});
    try {
      const s = await connect(h.path);
      const out = drain(s);
      for (let i = 0; i < 200; i++) s.write(JSON.stringify({ id: i, cmd: 'echo', args: { i } }) + '\n');
      s.write('{bad\n');
      s.end();
      const lines = (await eventually(out, 'answers'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { id: number; ok: boolean; result?: { args: { i: number } } });
      assert.equal(lines.length, 201);
      lines.slice(0, 200).forEach((l, i) => assert.deepEqual([l.id, l.ok, l.result?.args.i], [i, true, i]));
      assert.equal(lines[200]?.ok, false);
    } finally {
      await h.close();
    }
  });

  it('a request line over the size limit gets an error and the connection is closed, the rest dropped unparsed', async () => {
    const h = await harness({});
    try {
      // 70 KiB: under the old 1 MiB limit, so the old server parsed it and kept the connection open.
      const s = await connect(h.path);
      const out = drain(s);
      s.write(JSON.stringify({ id: 1, cmd: 'echo', args: { pad: 'z'.repeat(70 << 10) } }) + '\n');
      const text = await eventually(out, 'the oversized request to be refused and the connection closed');
      assert.match(
        text,
        /^\{"id":null,"ok":false,"error":\{"code":"E_USAGE","message":"request too large \(over 65536 bytes\)"\}\}\n$/,
      );
      assert.equal(h.handled(), 0);
      assert.equal(stats(h).closedOversize, 1);
      // The same without any newline: refused once the buffered bytes pass the limit.
      const s2 = await connect(h.path);
      const out2 = drain(s2);
      s2.write('q'.repeat((64 << 10) + 1));
      assert.match(await eventually(out2, 'the unterminated request to be refused'), /request too large/);
      assert.equal(stats(h).closedOversize, 2);
    } finally {
      await h.close();
    }
  });

  it('an idle client is closed after the idle timeout', async () => {
    const h = await harness({ idleMs: 200 });
    try {
      const s = await connect(h.path);
      await eventually(drain(s), 'the idle client to be closed');
      assert.equal(stats(h).closedIdle, 1);
      // A request in progress is not idleness: a slow handler still gets its answer through.
      const slow = await harness({ idleMs: 100 }, async () => {
        await new Promise((r) => setTimeout(r, 400));
        return 'done';
      });
      try {
        assert.equal(await eventually(controlRequest(slow.path, 'slow'), 'the slow answer'), 'done');
      } finally {
        await slow.close();
      }
    } finally {
      await h.close();
    }
  });

  it('a failed accept after the start (EMFILE) is counted; the socket keeps answering', async () => {
    const h = await harness({});
    try {
      // What Node does when accept() fails: an 'error' on the server, which had no listener left after listen().
      const server = (h.server as unknown as { server: import('node:net').Server }).server;
      server.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' }));
      assert.equal(stats(h).acceptErrors, 1);
      assert.deepEqual(await controlRequest(h.path, 'echo', { a: 1 }), { cmd: 'echo', args: { a: 1 } });
    } finally {
      await h.close();
    }
  });

  it('connections past the cap are refused with E_BUSY; a slot freed is usable again', async () => {
    const h = await harness({ maxConnections: 3 });
    try {
      const held = await Promise.all([connect(h.path), connect(h.path), connect(h.path)]);
      await until(() => stats(h).connections === 3, 'three connections');
      const extra = await connect(h.path);
      const out = drain(extra);
      extra.write(JSON.stringify({ id: 1, cmd: 'echo' }) + '\n');
      const text = await eventually(out, 'the fourth connection to be refused');
      assert.match(text, /"ok":false,"error":\{"code":"E_BUSY","message":"control socket: too many connections \(3\)"/);
      assert.equal(stats(h).refusedBusy, 1);
      assert.equal(h.handled(), 0);
      held[0]!.destroy();
      await until(() => stats(h).connections === 2, 'a freed slot');
      assert.deepEqual(await controlRequest(h.path, 'echo', { a: 1 }), { cmd: 'echo', args: { a: 1 } });
      for (const s of held) s.destroy();
    } finally {
      await h.close();
    }
  });

  it('close() does not wait for idle clients, lets a request in progress answer, then destroys what is left', async () => {
    let release!: () => void;
    const h = await harness({ closeGraceMs: 500 }, async (cmd) => {
      if (cmd === 'slow') await new Promise<void>((r) => (release = r));
      return cmd;
    });
    const idle = await connect(h.path);
    const idleClosed = drain(idle);
    const busy = await connect(h.path);
    const busyOut = drain(busy);
    busy.write(JSON.stringify({ id: 7, cmd: 'slow' }) + '\n');
    await until(() => h.handled() === 1, 'the slow request to start');
    const closing = h.server.close();
    await eventually(idleClosed, 'the idle client to be closed at shutdown');
    release();
    assert.match(
      await eventually(busyOut, 'the busy client to get its answer and be closed'),
      /^\{"id":7,"ok":true,"result":"slow"\}\n$/,
    );
    await eventually(closing, 'close() to resolve');
    // A client that reads nothing and never answers the FIN is destroyed after the grace period.
    const h2 = await harness({ closeGraceMs: 100 });
    const stuck = await connect(h2.path);
    stuck.pause();
    stuck.on('error', () => undefined);
    await until(() => stats(h2).connections === 1, 'the stuck client');
    await h2.close();
    await until(() => stats(h2).connections === 0, 'the stuck client to be destroyed');
    stuck.destroy();
    await h.close();
  });
  it('a request whose id cannot be echoed is answered, and its connection is free again', async () => {
    // An id nested 6000 deep: JSON.stringify of the answer overflowed the stack, outside the handler's try; the old
    // server never answered and kept the connection busy (no idle timeout) for good.
    const h = await harness({ idleMs: 300 });
    try {
      const s = await connect(h.path);
      const out: string[] = [];
      s.setEncoding('utf8');
      s.on('data', (d: string) => out.push(d));
      const deep = '['.repeat(6000) + ']'.repeat(6000);
      s.write(`{"id":${deep},"cmd":"echo"}\n`);
      s.write(JSON.stringify({ id: 'next', cmd: 'echo' }) + '\n');
      await until(() => out.join('').split('\n').length >= 3, 'both answers');
      const [first, second] = out
        .join('')
        .split('\n')
        .slice(0, 2)
        .map((l) => JSON.parse(l) as { id: unknown; ok: boolean });
      assert.equal(first!.id, null);
      assert.equal(first!.ok, true);
      assert.deepEqual(second, { id: 'next', ok: true, result: { cmd: 'echo', args: {} } });
      s.destroy();
    } finally {
      await h.close();
    }
  });
});
