// What the host takes from an aux process that may be a tenant's: frames split anywhere, bounded, joined once; one
// READY per process; its errors and stderr rate-limited in the host's diagnostics.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { AuxDaemon } from '../../src/daemon/aux-daemon';
import { DaemonRegistry } from '../../src/daemon/daemon-registry';
import { FrameReader, MAX_AUX_FRAME, encodeFrame } from '../../src/daemon/aux-ipc';
import { parseConfig } from '../../src/config';
import { captureDiag } from '../helpers/peers';
import { auxWithDouble as misbehaving, until } from '../helpers/aux-process';
import { intBelow, prng } from '../helpers/prng';

describe('FrameReader', () => {
  it('property (seed 0xf4a3): frames cut at random places come out whole and in order', () => {
    const next = prng(0xf4a3);
    for (let round = 0; round < 300; round++) {
      const frames = Array.from({ length: 1 + intBelow(next, 8) }, (_, i) => {
        const body = Buffer.alloc(intBelow(next, 300), 0x41 + (i % 26));
        return { kind: 1 + intBelow(next, 20), body };
      });
      const stream = Buffer.concat(frames.map((f) => encodeFrame(f.kind, f.body)));
      const got: Array<{ kind: number; body: Buffer }> = [];
      const r = new FrameReader((kind, body) => got.push({ kind, body: Buffer.from(body) }));
      for (let at = 0; at < stream.length;) {
        const n = 1 + intBelow(next, 40);
        r.push(stream.subarray(at, at + n));
        at += n;
      }
      assert.deepEqual(got, frames);
    }
  });

  it('a frame trickled in small chunks is joined once, not at every chunk', () => {
    const body = Buffer.alloc(4 * 1024 * 1024, 7);
    const stream = encodeFrame(13, body);
    let copied = 0;
    const concat = Buffer.concat;
    Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
      const b = concat(list, total);
      copied += b.length;
      return b;
    }) as typeof Buffer.concat;
    let frames = 0;
    try {
      const r = new FrameReader(() => frames++);
      for (let at = 0; at < stream.length; at += 4096) r.push(stream.subarray(at, at + 4096));
    } finally {
      Buffer.concat = concat;
    }
    assert.equal(frames, 1);
    assert.ok(copied <= 2 * stream.length, `${copied} bytes copied for a frame of ${stream.length}`);
  });

  it('a frame trickled a byte at a time from its first byte: the pieces are walked a bounded number of times', () => {
    // Old: with a first piece under 4 bytes, every later piece joined the whole list again to read the length:
    // quadratic (a 64 KiB frame took 108 s of the host's event loop). Counted as pieces walked by Buffer.concat.
    const stream = encodeFrame(13, Buffer.alloc(16 * 1024, 7));
    let walked = 0;
    const concat = Buffer.concat;
    Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
      walked += list.length;
      return concat(list, total);
    }) as typeof Buffer.concat;
    let frames = 0;
    try {
      const r = new FrameReader(() => frames++);
      for (let at = 0; at < stream.length; at++) r.push(stream.subarray(at, at + 1));
    } finally {
      Buffer.concat = concat;
    }
    assert.equal(frames, 1);
    assert.ok(walked <= 2 * stream.length, `${walked} pieces walked for a frame of ${stream.length} bytes`);
  });

  it('a frame over the limit is refused before it is gathered, and nothing after a refusal is read', () => {
    const seen: number[] = [];
    const r = new FrameReader((kind) => seen.push(kind), MAX_AUX_FRAME);
    const head = Buffer.alloc(4);
    head.writeUInt32LE(MAX_AUX_FRAME + 1, 0);
    assert.throws(() => r.push(head), /bad frame length/);
    r.push(encodeFrame(10, Buffer.alloc(0)));
    assert.deepEqual(seen, []);
    // A handler that throws: the frames after it in the same chunk and later ones are not handled, none twice.
    const again: number[] = [];
    const r2 = new FrameReader((kind) => {
      again.push(kind);
      if (kind === 2) throw new Error('refused');
    });
    const two = Buffer.concat([1, 2, 3].map((k) => encodeFrame(k, Buffer.alloc(1))));
    assert.throws(() => r2.push(two), /refused/);
    r2.push(encodeFrame(4, Buffer.alloc(1)));
    assert.deepEqual(again, [1, 2]);
  });
});

describe('an aux process that misbehaves', () => {
  it('counts one start, is stopped at its second READY, and its 50 errors reach the diagnostics 20 at most', async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'amauxtenant-'));
    const cfg = parseConfig(
      [
        'host:',
        `  log: { file: ${join(dir, 'audit.log')} }`,
        'daemons:',
        '  - { name: t, isolation: process, log: { format: RAW, flush: none } }',
        '',
      ].join('\n'),
      join(dir, 'auditmux.yaml'),
    ).daemons[0]!;
    const reports: string[] = [];
    const diag = captureDiag();
    const a = new AuxDaemon(cfg, {
      diag,
      program: join(__dirname, '..', 'helpers', 'aux-double.js'),
      nodeName: null,
      report: (event, detail) => void reports.push(`${event} ${detail}`),
      backpressure: () => undefined,
      contidKernel: false,
    });
    a.start();
    try {
      for (let i = 0; !reports.some((r) => r.startsWith('crash')); i++) {
        if (i > 500) throw new Error(`no crash reported: ${reports.join('; ')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await a.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(reports.filter((r) => r.startsWith('start')).length, 1, reports.join('; '));
    const errors = diag.lines.filter((l) => l.m === 'aux daemon reported an error');
    assert.equal(errors.length, 20);
    assert.ok(diag.lines.some((l) => l.m === 'aux protocol error'));
  });
});

describe('an aux process that spends the host loop', () => {
  it('a flood of ACKs of nothing is a protocol error: the process is stopped, not served', async () => {
    // Old: every empty ACK walked the queue and pumped (20 M in 3 s, a whole core of the host's loop), for good.
    const { a, dir, reports, diag } = misbehaving('aux-empty-acks.js');
    a.start();
    try {
      await until(() => reports.some((r) => r.startsWith('crash')), 'the flooding process to be stopped');
      assert.ok(diag.lines.some((l) => l.m === 'aux protocol error' && /ACK of nothing/.test(JSON.stringify(l.o))));
    } finally {
      await a.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a gone process's channel, held by a process it started, says nothing to the next one and is closed", async () => {
    // Old: the grandchild's READY on the old channel reached the host (a protocol error against the restarted
    // process, or its READY taken for the new one), and the host kept the old pipe open.
    const { a, dir, reports, diag } = misbehaving('aux-linger.js');
    a.start();
    try {
      await until(() => reports.some((r) => r.startsWith('start')), 'the restarted process to be ready');
      await new Promise((r) => setTimeout(r, 1200)); // the lingering process has written its READY by now
      assert.deepEqual(
        diag.lines.filter((l) => l.m === 'aux protocol error').map((l) => JSON.stringify(l.o)),
        [],
        'nothing read from the old channel',
      );
      assert.equal(reports.filter((r) => r.startsWith('crash')).length, 1, reports.join('; '));
    } finally {
      await a.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stopping a daemon that paused the kernel intake (overflow: block) resumes it', async () => {
    const { a, dir, pauses } = misbehaving('aux-empty-acks.js', 'block');
    try {
      // Not started: every event stays queued, so the block policy pauses the intake at depth.
      for (let i = 0; i < 12; i++) a.enqueue([{ type: 1300, payload: Buffer.from(`audit(1.000:${i}): x=1`) }]);
      assert.deepEqual(pauses, [true]);
      await a.stop();
      // Old: the pause stayed (only the block timer was cleared), and the host read no kernel record again.
      assert.deepEqual(pauses, [true, false]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('stopping the host', () => {
  it('stops every auxiliary daemon at once: each one that never acknowledges waits out its own deadline in parallel', async () => {
    const started: string[] = [];
    const finish: Array<() => void> = [];
    const fake = (name: string): unknown => ({
      stop: () =>
        new Promise<void>((resolve) => {
          started.push(name);
          finish.push(resolve);
        }),
    });
    const reg = Object.create(DaemonRegistry.prototype) as DaemonRegistry;
    Object.assign(reg, {
      templates: { close: () => Promise.resolve() },
      auxes: new Map(['a', 'b', 'c'].map((n) => [n, fake(n)])),
    });
    const done = reg.stopAll();
    for (let i = 0; i < 5; i++) await Promise.resolve();
    assert.deepEqual(started, ['a', 'b', 'c'], 'all three asked to stop before any has stopped');
    for (const f of finish) f();
    await done;
  });
});
