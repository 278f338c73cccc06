// A sink's log replaced on reload (path, format, disk-space settings): the outputs run on untouched, the new guard
// watches the new file system; the host daemon's log is such a sink (reload keeps its plugin process).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSink } from '../../src/output/sinks';
import { defaultDiskSpace } from '../../src/config/schema';
import type { FreeSpaceReader } from '../../src/output/diskspace';
import { MsgType } from '../../src/kernel/constants';
import { captureDiag } from '../helpers/peers';
import { startEmulatedHost, syscallSerialCounts, until } from '../helpers/emulated-host';

const MiB = 1024 * 1024;
const rec = (i: number): Buffer => Buffer.from(`audit(1700000000.000:${i}): arch=c000003e syscall=59 n=${i}`);
const lines = (f: string): string[] => readFileSync(f, 'latin1').split('\n').filter(Boolean);

describe('sink: replaceLog', () => {
  it('writes to the new log in its format, keeps the outputs, and the new guard checks the new path', async () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'amsinkrep-')));
    const free = new Map<string, number>([
      [join(dir, 'a.log'), 1000],
      [join(dir, 'b.log'), 60], // below space_left (75 MiB), above admin_space_left (50 MiB)
    ]);
    // The guard measures through the open log's descriptor (/proc/self/fd/N): staged by the file it leads to.
    const statfs: FreeSpaceReader = (p) => ({
      bsize: 4096,
      blocks: (1000 * MiB) / 4096,
      bavail: Math.floor(((free.get(p.startsWith('/proc/self/fd/') ? readlinkSync(p) : p) ?? 1000) * MiB) / 4096),
    });
    const diag = captureDiag();
    try {
      const sink = createSink(
        { log: { path: join(dir, 'a.log'), format: 'RAW', flush: 'none' }, diskSpace: defaultDiskSpace() },
        { contidKernel: false, diag, statfs, now: () => 5_000 },
      );
      const outputs = sink.outputs;
      sink.writeRecord(MsgType.SYSCALL, rec(1));
      sink.flush();
      assert.equal(sink.checkSpace(), 'ok');
      const firstLog = sink.log;
      sink.replaceLog({
        log: { path: join(dir, 'b.log'), format: 'ENRICHED', flush: 'none' },
        diskSpace: defaultDiskSpace(),
      });
      assert.notEqual(sink.log, firstLog, 'a new writer');
      assert.equal(firstLog.isOpen, false, 'the old log is closed');
      assert.equal(sink.outputs, outputs, 'the same outputs');
      sink.writeRecord(MsgType.SYSCALL, rec(2));
      sink.flush();
      // The clock did not move: only a guard that is new (and checks at once) sees b.log's file system.
      assert.equal(sink.checkSpace(), 'space_left');
      await sink.close();
      assert.deepEqual(
        lines(join(dir, 'a.log')).map((l) => /:(\d+)\)/.exec(l)![1]),
        ['1'],
      );
      const b = lines(join(dir, 'b.log'));
      assert.equal(b.length, 1);
      assert.match(
        b[0]!,
        /^type=SYSCALL msg=audit\(1700000000\.000:2\): arch=c000003e syscall=59 n=2\x1dARCH=x86_64 SYSCALL=execve$/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a new log that cannot be opened leaves the old one in place', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amsinkrep-'));
    try {
      const sink = createSink(
        { log: { path: join(dir, 'a.log'), format: 'RAW', flush: 'none' } },
        { contidKernel: false, diag: captureDiag() },
      );
      const log = sink.log;
      assert.throws(() =>
        sink.replaceLog({ log: { path: join(dir, 'missing-dir', 'b.log'), format: 'RAW', flush: 'none' } }),
      );
      assert.equal(sink.log, log);
      sink.writeRecord(MsgType.SYSCALL, rec(3));
      await sink.close();
      assert.equal(lines(join(dir, 'a.log')).length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('host daemon: the host log is a sink', () => {
  it('a reload with a new log path and format keeps the host plugin running (one process, every event)', async () => {
    const plugin =
      '[{ type: plugin, name: p-host, path: {dir}/plugin.sh, args: [{dir}/host.plugin], format: string, ' +
      'log_format: RAW, spool: { dir: {dir}/spool/host } }]';
    const yaml = (log: string): string[] => [
      'host:',
      '  rules: {dir}/host.rules',
      `  log: ${log}`,
      `  outputs: ${plugin}`,
    ];
    const h = await startEmulatedHost({
      prefix: 'amhostsink-',
      exe: '/usr/bin/amhostsink',
      untaggedPid: 4343434,
      // An auditd plugin in string format that notes each start: a rebuilt output would start it again.
      prepare: (dir) => {
        writeFileSync(join(dir, 'plugin.sh'), '#!/bin/sh\necho start >> "$1.starts"\nexec cat >> "$1"\n');
        chmodSync(join(dir, 'plugin.sh'), 0o755);
      },
      yaml: yaml('{ file: {dir}/audit.log, format: RAW }'),
    });
    const dir = h.dir;
    const pluginKeys = (): number => {
      try {
        return syscallSerialCounts(readFileSync(join(dir, 'host.plugin'), 'latin1'), 'host-k').size;
      } catch {
        return 0;
      }
    };
    // The plugin is fed after the log, from the same call: once it holds n events, so does the log.
    const emit = async (n: number, total: number): Promise<void> => {
      for (let i = 0; i < n; i++) h.kernel.emitEvent(h.untaggedPid, 'getppid', 0);
      await until(() => pluginKeys() === total, `the plugin got ${total} events`);
    };
    try {
      await emit(20, 20);
      const text = yaml('{ file: {dir}/new/b.log, format: ENRICHED }').map((l) => l.replaceAll('{dir}', dir));
      writeFileSync(join(dir, 'auditmux.yaml'), text.join('\n') + '\n');
      assert.deepEqual(await h.daemon.reload(), { ok: true });
      await emit(30, 50);
    } finally {
      await h.stop();
    }
    try {
      const a = readFileSync(join(dir, 'audit.log'), 'latin1');
      const b = readFileSync(join(dir, 'new', 'b.log'), 'latin1');
      assert.equal(syscallSerialCounts(a, 'host-k').size, 20, 'events before the reload in the old log');
      assert.equal(syscallSerialCounts(b, 'host-k').size, 30, 'events after it in the new log');
      assert.match(a, /^type=DAEMON_START /m);
      assert.doesNotMatch(a, /type=DAEMON_END/, 'the old log is closed without an end record, as auditd does');
      assert.match(b, /^type=DAEMON_CONFIG msg=audit\([^)]*\): op=reconfigure state=changed /m);
      assert.match(b, /^type=DAEMON_END /m, "the stop goes through the sink's (new) log");
      assert.match(b, /\x1dARCH=x86_64 SYSCALL=getppid/, 'the new log is ENRICHED');
      assert.equal(readFileSync(join(dir, 'host.plugin.starts'), 'latin1'), 'start\n', 'one plugin process');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
