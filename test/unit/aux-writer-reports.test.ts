// A failing log of an auxiliary daemon reports a bounded number of messages: never the host's ERROR-frame limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { AuxWriter, REPORT_WINDOW_MS, ReportLimiter } from '../../src/daemon/aux-writer';
import { parseConfig } from '../../src/config';
import type { FreeSpaceReader } from '../../src/output/diskspace';
import { captureDiag, tmpDir } from '../helpers/peers';

/** A file system with plenty of room: only the failing writes matter here. */
const roomy: FreeSpaceReader = () => ({ bsize: 4096, blocks: 1 << 20, bavail: 1 << 19 });

const record = (i: number): { type: number; payload: Buffer } => ({
  type: 1300,
  payload: Buffer.from(`audit(1700000000.${String(i % 1000).padStart(3, '0')}:${i}): arch=c000003e n=${i}`),
});

/** The counts the summaries of `reports` give. */
const summarized = (reports: readonly string[]): number =>
  reports.reduce((n, r) => n + Number(/^(\d+) more log error message\(s\) not sent/.exec(r)?.[1] ?? 0), 0);

test('a log whose writes fail 5000 times reports far fewer than 1000 messages, with the count held back', async () => {
  const dir = tmpDir('auxreports');
  const cfg = parseConfig(
    [
      'host:',
      `  log: { file: ${join(dir, 'audit.log')} }`,
      'daemons:',
      '  - { name: a, isolation: inline, log: { format: RAW, flush: none, disk_error_action: syslog } }',
      '',
    ].join('\n'),
    join(dir, 'auditmux.yaml'),
  ).daemons[0]!;
  const reports: string[] = [];
  let clock = 1_000_000;
  const w = new AuxWriter(
    { name: cfg.name, log: cfg.log, outputs: [], nodeName: null, contidKernel: false },
    (m) => void reports.push(m),
    captureDiag(),
    cfg.log.file,
    roomy,
    () => clock,
  );
  w.open();
  // A read-only descriptor in place of the log's: every write fails (EBADF), as a dying or full disk's would.
  const file = (w as unknown as { sink: { log: { file: { fd: number } } } }).sink.log.file;
  const rw = file.fd;
  file.fd = fs.openSync(cfg.log.file, 'r');
  const N = 5000;
  for (let i = 1; i <= N; i++) {
    w.write([record(i)]);
    w.flush();
    clock += 10; // 50 s of batches in all
  }
  fs.closeSync(file.fd);
  file.fd = rw;
  await w.close();
  const failures = reports.filter((r) => /^log write failed: /.test(r));
  assert.ok(reports.length < 100, `${reports.length} messages`);
  assert.ok(failures.length >= 1, reports.join('\n'));
  // Every failure is either sent or counted in a summary: none disappears.
  assert.equal(failures.length + summarized(reports), N, reports.join('\n'));
  assert.equal(w.suppressedReports, N - failures.length);
  assert.match(
    reports.at(-1)!,
    /^\d+ more log error message\(s\) not sent in the last \d+ s; the latest: log write failed/,
  );
});

test('ReportLimiter: distinct messages in a window are capped too, and the summary comes with the next message', () => {
  const sent: string[] = [];
  let clock = 0;
  const l = new ReportLimiter(
    (m) => void sent.push(m),
    () => clock,
  );
  for (let i = 0; i < 100; i++) l.say(`error ${i}`);
  assert.equal(sent.length, 20, 'at most 20 distinct messages a window');
  clock += REPORT_WINDOW_MS;
  l.say('error 0');
  assert.deepEqual(sent.slice(20), [
    '80 more log error message(s) not sent in the last 10 s; the latest: error 99',
    'error 0',
  ]);
  assert.equal(l.suppressed, 80);
});
