// auditd plugin outputs: string and binary dispatcher formats, restart after crashes up to max_restarts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PluginOutput } from '../../src/output/plugin';
import type { PluginOutputSpec } from '../../src/config/schema';
import { MsgType } from '../../src/kernel/constants';
import { captureDiag, checkDelivery, payload, seqs, tmpDir, waitFor } from '../helpers/peers';

const RECORDER = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'outputs', 'plugin-recorder.js');
const USER = 1005;

function spec(dir: string, args: string[], over: Partial<PluginOutputSpec> = {}): PluginOutputSpec {
  return {
    type: 'plugin',
    name: 'rec',
    format: 'RAW',
    spool: { dir: path.join(dir, 'spool'), maxBytes: 16 * 1024 * 1024, fullAction: 'syslog', fullExe: null },
    path: process.execPath,
    args: [RECORDER, ...args],
    pluginFormat: 'string',
    maxRestarts: 3,
    ...over,
  };
}

function read(p: string): string[] {
  try {
    return fs
      .readFileSync(p, 'latin1')
      .split('\n')
      .filter((l) => l.length > 0);
  } catch {
    return [];
  }
}

test('plugin, string format: log lines with node= on stdin, EOE included, EOF on close', async () => {
  const dir = tmpDir('plug-s');
  const outFile = path.join(dir, 'got.txt');
  const p = new PluginOutput(spec(dir, [outFile, 'string']), {
    nodeName: 'h1',
    contidKernel: false,
    diag: captureDiag(),
  });
  try {
    for (let i = 0; i < 500; i++) p.writeRecord(USER, payload(i));
    p.writeRecord(MsgType.EOE, Buffer.from('audit(1700000000.000:1): '));
    p.flush();
    await waitFor(() => read(outFile).length >= 501, 10000, 'plugin got every line');
    const lines = read(outFile);
    assert.equal(lines[0], `node=h1 type=USER msg=${payload(0).toString()}`);
    assert.deepEqual(
      seqs(lines),
      Array.from({ length: 500 }, (_, i) => i),
    );
    assert.match(lines[500] as string, /^node=h1 type=EOE msg=audit\(1700000000\.000:1\): ?$/);
    await p.close();
    assert.equal(read(outFile).at(-1), 'EOF');
  } finally {
    await p.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('plugin, binary format: audit_dispatcher_header ver 0 with the kernel payload (RAW, no node name)', async () => {
  const dir = tmpDir('plug-b');
  const outFile = path.join(dir, 'got.txt');
  const p = new PluginOutput(spec(dir, [outFile, 'binary'], { pluginFormat: 'binary' }), {
    contidKernel: false,
    diag: captureDiag(),
  });
  try {
    for (let i = 0; i < 100; i++) p.writeRecord(USER, payload(i));
    p.flush();
    await waitFor(() => read(outFile).length >= 100, 10000, 'plugin got every frame');
    const first = payload(0).toString();
    assert.equal(read(outFile)[0], `0 ${USER} ${first.length}|${first}`);
  } finally {
    await p.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // With a node name the frame is version 1 carrying the formatted line, as auditd sends it.
  const dir2 = tmpDir('plug-b2');
  const out2 = path.join(dir2, 'got.txt');
  const p2 = new PluginOutput(spec(dir2, [out2, 'binary'], { pluginFormat: 'binary' }), {
    nodeName: 'h2',
    contidKernel: false,
    diag: captureDiag(),
  });
  try {
    p2.writeRecord(USER, payload(5));
    p2.flush();
    await waitFor(() => read(out2).length >= 1, 10000, 'frame');
    const line = `node=h2 type=USER msg=${payload(5).toString()}`;
    assert.equal(read(out2)[0], `1 ${USER} ${line.length}|${line}`);
  } finally {
    await p2.close();
    fs.rmSync(dir2, { recursive: true, force: true });
  }
});

test(
  'plugin crash: the restarted plugin gets what the dead one may have lost; nothing missing, order kept',
  { timeout: 30000 },
  async () => {
    const dir = tmpDir('plug-crash1');
    const outFile = path.join(dir, 'got.txt');
    const diag = captureDiag();
    // dies once, after reading 300 records, with more still in its pipe
    const p = new PluginOutput(spec(dir, [outFile, 'string', '300', 'once']), { contidKernel: false, diag });
    try {
      for (let i = 0; i < 1000; i++) {
        p.writeRecord(USER, payload(i));
        if (i % 10 === 9) p.flush();
      }
      p.flush();
      await waitFor(() => new Set(seqs(read(outFile))).size >= 1000, 20000, 'every record reached a plugin');
      const d = checkDelivery(seqs(read(outFile)), 1000);
      assert.deepEqual(d.missing, []);
      assert.equal(d.inOrder, true);
      assert.equal(p.stats().restarts, 1);
      assert.ok(diag.lines.some((l) => String(l.m).includes('restarting')));
    } finally {
      await p.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'plugin crash loop: restarted up to max_restarts, then given up with records still spooled',
  { timeout: 30000 },
  async () => {
    const dir = tmpDir('plug-crash');
    const outFile = path.join(dir, 'got.txt');
    const diag = captureDiag();
    const p = new PluginOutput(spec(dir, [outFile, 'string', '100'], { maxRestarts: 3 }), {
      contidKernel: false,
      diag,
    });
    try {
      for (let i = 0; i < 1000; i++) p.writeRecord(USER, payload(i));
      p.flush();
      await waitFor(() => p.stats().gaveUp === true, 20000, 'plugin given up');
      const st = p.stats();
      assert.equal(st.restarts, 3);
      assert.equal(st.starts, 4);
      assert.ok((st.pending as number) > 0, 'undelivered records remain spooled');
      assert.ok(diag.lines.some((l) => String(l.m).includes('max_restarts')));
      // What the plugin saw is a gap-free prefix of the stream.
      const got = [...new Set(seqs(read(outFile)))].sort((a, b) => a - b);
      assert.deepEqual(
        got,
        Array.from({ length: got.length }, (_, i) => i),
      );
    } finally {
      await p.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'plugin that never reads and exits 0 only when signalled at shutdown: what it was given is sent to the next one',
  { timeout: 30000 },
  async () => {
    const dir = tmpDir('plug-stall');
    const stall = path.join(dir, 'stall.js');
    // Never reads stdin; exits 0 on SIGTERM, as many audisp plugins do.
    fs.writeFileSync(stall, "process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000);\n");
    const outFile = path.join(dir, 'got.txt');
    try {
      const p = new PluginOutput(spec(dir, [], { args: [stall] }), { contidKernel: false, diag: captureDiag() });
      for (let i = 0; i < 1000; i++) p.writeRecord(USER, payload(i));
      p.flush();
      await p.close();
      const q = new PluginOutput(spec(dir, [outFile, 'string']), { contidKernel: false, diag: captureDiag() });
      try {
        await waitFor(() => new Set(seqs(read(outFile))).size >= 1000, 20000, 'every record reached the next plugin');
        assert.deepEqual(checkDelivery(seqs(read(outFile)), 1000).missing, []);
      } finally {
        await q.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('a spool on a full file system: writeRecord never throws, the records it could not keep are counted lost', async () => {
  const dir = tmpDir('plug-full');
  const outFile = path.join(dir, 'got.txt');
  const p = new PluginOutput(spec(dir, [outFile, 'string']), { contidKernel: false, diag: captureDiag() });
  try {
    const spool = (p as unknown as { queue: { wfd: number } }).queue;
    const good = spool.wfd;
    const full = fs.openSync('/dev/full', 'w');
    spool.wfd = full;
    try {
      // 64 KiB of buffer fills within a few hundred records: the appends after it fail with ENOSPC.
      for (let i = 0; i < 2000; i++) assert.doesNotThrow(() => p.writeRecord(USER, payload(i, ' '.repeat(100))));
    } finally {
      spool.wfd = good;
      fs.closeSync(full);
    }
    const st = p.stats() as { lost: number; accepted: number; errors: number };
    assert.ok(st.lost > 0 && st.errors > 0, JSON.stringify(st));
    assert.equal(st.accepted + st.lost, 2000);
    p.flush();
    await waitFor(() => new Set(seqs(read(outFile))).size >= st.accepted, 20000, 'the kept records reached the plugin');
  } finally {
    await p.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
