// An auxiliary daemon honours its own log's disk-space settings (space_left, admin_space_left, disk_full and
// disk_error actions), inline and in its own process, as the host does for its log.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { AuxDaemon } from '../../src/daemon/aux-daemon';
import { AuxWriter } from '../../src/daemon/aux-writer';
import { parseConfig, type DaemonConfig } from '../../src/config';
import type { FreeSpaceReader } from '../../src/output/diskspace';
import { captureDiag } from '../helpers/peers';

const MiB = 1024 * 1024;

/** A host log directory and one daemon `a` whose `log:` mapping carries `logKeys` (YAML flow-mapping entries). */
function daemonConfig(logKeys: string, isolation: 'inline' | 'process'): { dir: string; cfg: DaemonConfig } {
  const dir = fs.mkdtempSync(join(tmpdir(), 'amauxdisk-'));
  const c = parseConfig(
    [
      'host:',
      `  log: { file: ${join(dir, 'audit.log')} }`,
      'daemons:',
      `  - { name: a, isolation: ${isolation}, log: { format: RAW, flush: none, ${logKeys} } }`,
      '',
    ].join('\n'),
    join(dir, 'auditmux.yaml'),
  );
  return { dir, cfg: c.daemons[0]! };
}

/** A file system of 1000 MiB whose free space the test sets. */
function fakeDisk(): { statfs: FreeSpaceReader; setFreeMiB(n: number): void } {
  let free = 1000;
  return {
    statfs: () => ({ bsize: 4096, blocks: (1000 * MiB) / 4096, bavail: Math.floor((free * MiB) / 4096) }),
    setFreeMiB: (n) => void (free = n),
  };
}

const record = (i: number): { type: number; payload: Buffer } => ({
  type: 1300,
  payload: Buffer.from(`audit(1700000000.${String(i % 1000).padStart(3, '0')}:${i}): arch=c000003e syscall=59 n=${i}`),
});

function writer(
  cfg: DaemonConfig,
  statfs: FreeSpaceReader,
): { w: AuxWriter; diag: ReturnType<typeof captureDiag>; reports: string[] } {
  const diag = captureDiag();
  const reports: string[] = [];
  const w = new AuxWriter(
    { name: cfg.name, log: cfg.log, outputs: cfg.outputs ?? [], nodeName: null, contidKernel: false },
    (m) => void reports.push(m),
    diag,
    cfg.log.file,
    statfs,
  );
  w.open();
  return { w, diag, reports };
}

const logLines = (file: string): string[] =>
  fs
    .readFileSync(file, 'latin1')
    .split('\n')
    .filter((l) => l !== '');

describe('auxiliary daemon disk-space guard (staged free space)', () => {
  it('space_left_action suspend: records after the check are lost; resume writes again', async () => {
    const { cfg } = daemonConfig('space_left: 50%, space_left_action: suspend, admin_space_left: 10%', 'inline');
    const disk = fakeDisk();
    const { w, diag } = writer(cfg, disk.statfs);
    w.write([record(1)]);
    w.flush();
    assert.equal(logLines(cfg.log.file).length, 1, 'plenty of space: written, no action');
    assert.equal(diag.lines.length, 0);
    const { w: w2, diag: diag2 } = writer(cfg, disk.statfs);
    await w.close();
    disk.setFreeMiB(300);
    w2.write([record(2)]);
    w2.flush();
    assert.ok(
      diag2.lines.some((l) => l.level === 'error' && /low on disk space.*suspending/.test(String(l.m))),
      JSON.stringify(diag2.lines),
    );
    w2.write([record(3)]);
    w2.flush();
    assert.deepEqual(
      logLines(cfg.log.file).map((l) => /:(\d+)\)/.exec(l)![1]),
      ['1', '2'],
      'nothing written while suspended',
    );
    w2.resume();
    w2.write([record(4)]);
    await w2.close();
    assert.deepEqual(
      logLines(cfg.log.file).map((l) => /:(\d+)\)/.exec(l)![1]),
      ['1', '2', '4'],
    );
  });

  it('admin_space_left_action rotate and disk_full_action suspend act on their own levels', async () => {
    const { cfg } = daemonConfig(
      'space_left: 200, space_left_action: ignore, admin_space_left: 100, admin_space_left_action: rotate, ' +
        'disk_full_action: suspend, num_logs: 3',
      'inline',
    );
    const disk = fakeDisk();
    disk.setFreeMiB(50);
    const { w, diag } = writer(cfg, disk.statfs);
    w.write([record(1)]);
    w.flush();
    assert.ok(fs.existsSync(`${cfg.log.file}.1`), 'admin_space_left rotated the log');
    assert.match(logLines(cfg.log.file)[0]!, /type=DAEMON_ROTATE .*op=rotate-logs/);
    assert.ok(diag.lines.some((l) => /rotating log files/.test(String(l.m))));
    await w.close();
    disk.setFreeMiB(0);
    const { w: w2, diag: diag2 } = writer(cfg, disk.statfs);
    w2.write([record(2)]);
    w2.flush();
    assert.ok(
      diag2.lines.some((l) => l.level === 'error' && /no space left.*suspending/.test(String(l.m))),
      JSON.stringify(diag2.lines),
    );
    w2.write([record(3)]);
    await w2.close();
    assert.equal(logLines(cfg.log.file).filter((l) => / n=3$/.test(l)).length, 0, 'suspended by disk_full_action');
  });

  it('disk_error_action suspend on a failed write', async () => {
    const { cfg } = daemonConfig('disk_error_action: suspend', 'inline');
    const { w, diag, reports } = writer(cfg, fakeDisk().statfs);
    w.write([record(1)]);
    w.flush();
    // A read-only descriptor in place of the log's: the next write fails (EBADF) as a dying disk's would (EIO).
    const file = (w as unknown as { sink: { log: { file: { fd: number } } } }).sink.log.file;
    const rw = file.fd;
    file.fd = fs.openSync(cfg.log.file, 'r');
    w.write([record(2)]);
    w.flush();
    fs.closeSync(file.fd);
    file.fd = rw;
    assert.ok(
      reports.some((r) => /log write failed/.test(r)),
      reports.join('; '),
    );
    assert.ok(
      diag.lines.some((l) => l.level === 'error' && /error writing an event to disk.*suspending/.test(String(l.m))),
      JSON.stringify(diag.lines),
    );
    w.write([record(3)]);
    await w.close();
    assert.equal(logLines(cfg.log.file).length, 1, 'suspended by disk_error_action');
  });
});

describe('auxiliary daemon disk-space guard (a real file system, both isolations)', () => {
  for (const isolation of ['inline', 'process'] as const) {
    it(`isolation ${isolation}: space_left above the free space rotates the daemon's log (space_left_action)`, async () => {
      // 999999999 MiB is more than any disk here has free: the first check after a write crosses the level.
      const { cfg } = daemonConfig(
        'space_left: 999999999, space_left_action: rotate, admin_space_left: 0, num_logs: 3',
        isolation,
      );
      const reports: string[] = [];
      const diag = captureDiag();
      const a = new AuxDaemon(cfg, {
        diag: diag as never,
        nodeName: null,
        report: (event, detail) => void reports.push(`${event} ${detail}`),
        backpressure: () => undefined,
        contidKernel: false,
      });
      a.start();
      try {
        await until(() => a.status().state === 'running', `the daemon to run (${reports.join('; ')})`);
        a.enqueue([record(1)]);
        a.pump();
        await until(() => fs.existsSync(`${cfg.log.file}.1`), `the log rotated (${reports.join('; ')})`);
        await until(() => (a.status() as { queued: number }).queued === 0, 'the record taken');
      } finally {
        await a.stop();
      }
      // The process checks at its first flush (the empty log may rotate before the record comes): either way the
      // record is in one of the logs, and the live one starts with the rotation.
      assert.match(rotated(cfg.log.file) + fs.readFileSync(cfg.log.file, 'latin1'), /msg=audit\(1700000000\.001:1\)/);
      assert.match(fs.readFileSync(cfg.log.file, 'latin1'), /type=DAEMON_ROTATE .*op=rotate-logs/);
    });
  }
});

/** The text of every rotated log of `file` (.1, .2, ...). */
function rotated(file: string): string {
  let text = '';
  for (let i = 1; fs.existsSync(`${file}.${i}`); i++) text += fs.readFileSync(`${file}.${i}`, 'latin1');
  return text;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > 500) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
