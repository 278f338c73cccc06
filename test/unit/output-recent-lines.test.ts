// Logs of the same line style copy each other's line of a shared record instead of formatting it again: every log's
// bytes stay what its own formatter makes, whatever the order of writes, flushes, batches and styles (fixed-seed
// property).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { LogWriter, recentLines, type LogWriterOptions } from '../../src/output/logfile';
import { LineFormatter } from '../../src/output/format';
import { intBelow, prng } from '../helpers/prng';

const dir = (): string => fs.mkdtempSync(join(tmpdir(), 'amshare-'));

/** Records as the kernel writes them, a user message with bytes a log line must not keep, and one past the line cap. */
function payloadOf(next: () => number, serial: number): Buffer {
  const stamp = `audit(1700000000.${String(serial % 1000).padStart(3, '0')}:${serial}): `;
  switch (intBelow(next, 5)) {
    case 0:
      return Buffer.from(
        `${stamp}arch=c000003e syscall=${intBelow(next, 300)} success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=0 ppid=1 ` +
          `pid=${intBelow(next, 5000)} auid=${intBelow(next, 3) === 0 ? 4294967295 : 0} uid=0 gid=0 euid=0 suid=0 ` +
          `fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="x" exe="/usr/bin/x" key="k${intBelow(next, 3)}"`,
        'latin1',
      );
    case 1:
      return Buffer.from(`${stamp}proctitle=2F62696E2F7368002D63`, 'latin1');
    case 2:
      return Buffer.from(
        `${stamp}pid=1 uid=0 auid=0 ses=1 msg='op=login\nacct="root" \x1d exe=x res=success'`,
        'latin1',
      );
    case 3:
      return Buffer.from(`${stamp}cwd="/root" ${'n=1 '.repeat(intBelow(next, 3000))}`, 'latin1');
    default:
      return Buffer.from(stamp, 'latin1');
  }
}

const TYPES = [1300, 1327, 1112, 1307, 1320];

test('property (seed 0x5a4e): shared and formatted lines are byte for byte each log own formatter lines', () => {
  const d = dir();
  const styles: Array<Omit<LogWriterOptions, 'path'>> = [
    { format: 'RAW' },
    { format: 'RAW' },
    { format: 'RAW', node: 'n1' },
    { format: 'ENRICHED' },
    { format: 'ENRICHED' },
    { format: 'ENRICHED', node: 'n1' },
    { format: 'RAW', contidKernel: true },
  ];
  const writers = styles.map((o, i) => {
    const w = new LogWriter({ path: join(d, `w${i}.log`), flush: 'none', maxLogFileMiB: 0, ...o });
    w.open();
    return w;
  });
  const expected = styles.map(() => [] as string[]);
  const formatters = styles.map(
    (o) => new LineFormatter({ format: o.format as 'RAW' | 'ENRICHED', node: o.node, contidKernel: o.contidKernel }),
  );
  const copiedBefore = recentLines.copied;
  const next = prng(0x5a4e);
  let pool: Array<{ type: number; payload: Buffer; at: number }> = [];
  let serial = 1;
  // The kernel's receive buffer: one object, filled again for every batch once every log wrote its buffer out.
  const batch = Buffer.alloc(64 * 1024);
  for (let op = 0; op < 6000; op++) {
    const k = intBelow(next, 20);
    if (k === 0 || pool.length === 0) {
      // A new batch: the record path ends the last one; some logs write out, others still hold lines (as a log that
      // wrote less often than every batch would); then new record objects (an event's records,
      // views of the batch or copies), their bytes also where they lie in the batch buffer: half the time records
      // of the same types and lengths at the same places as the last batch's, their bytes not the same.
      recentLines.endBatch();
      for (const w of writers) if (intBelow(next, 2) === 0) w.flush();
      if (pool.length !== 0 && intBelow(next, 2) === 0) {
        pool = pool.map((r) => {
          const payload = Buffer.from(r.payload);
          // The last digit of the serial, changed (a digit XOR 1 is a digit).
          payload[payload.indexOf(0x29) - 1]! ^= 1;
          payload.copy(batch, r.at);
          return { type: r.type, payload, at: r.at };
        });
      } else {
        let at = intBelow(next, 8);
        pool = Array.from({ length: 1 + intBelow(next, 6) }, () => {
          const payload = payloadOf(next, serial++);
          const start = at;
          payload.copy(batch, start);
          at += payload.length + intBelow(next, 8);
          return { type: TYPES[intBelow(next, TYPES.length)]!, payload, at: start };
        });
      }
    } else if (k === 1) {
      writers[intBelow(next, writers.length)]!.flush();
    } else {
      const r = pool[intBelow(next, pool.length)]!;
      const wi = intBelow(next, writers.length);
      if (k === 2) {
        // A record read where it lies in a buffer of its own (not its payload object): never taken for another's.
        const wide = Buffer.concat([Buffer.from('xx'), r.payload, Buffer.from('yy')]);
        writers[wi]!.writeRecordAt(r.type, wide, 2, 2 + r.payload.length);
      } else if (k < 8) {
        // A record read where it lies in the batch (an event passed through): shared by its place in the batch.
        writers[wi]!.writeRecordAt(r.type, batch, r.at, r.at + r.payload.length);
      } else writers[wi]!.writeRecord(r.type, r.payload);
      if (r.type !== 1320) expected[wi]!.push(formatters[wi]!.formatRecord(r));
    }
  }
  for (const w of writers) w.close();
  writers.forEach((_, i) => {
    const got = fs.readFileSync(join(d, `w${i}.log`), 'latin1');
    assert.equal(got, expected[i]!.map((l) => `${l}\n`).join(''), `log ${i} (${JSON.stringify(styles[i])})`);
  });
  // Lines were shared (two logs of each of two styles), so the property above covers the copies.
  assert.ok(recentLines.copied - copiedBefore > 500, `copied ${recentLines.copied - copiedBefore}`);
  fs.rmSync(d, { recursive: true, force: true });
});

test('a line is not copied from a log that has written its buffer out since, nor across styles or batches', () => {
  const d = dir();
  const mk = (name: string, o: Partial<LogWriterOptions> = {}): LogWriter => {
    const w = new LogWriter({ path: join(d, name), format: 'RAW', flush: 'none', ...o });
    w.open();
    return w;
  };
  const a = mk('a.log');
  const b = mk('b.log');
  const c = mk('c.log', { node: 'other' });
  const p = Buffer.from('audit(1.000:1): a=1');
  a.writeRecord(1300, p);
  const before = recentLines.copied;
  b.writeRecord(1300, p);
  assert.equal(recentLines.copied, before + 1, 'same style, line still in a buffer: copied');
  c.writeRecord(1300, p);
  assert.equal(recentLines.copied, before + 1, 'another style: formatted');
  // The batch is over (its buffer refilled next): a line still held in a's buffer is not copied any more.
  recentLines.endBatch();
  const e = mk('e.log');
  e.writeRecord(1300, p);
  assert.equal(recentLines.copied, before + 1, 'noted in a batch that ended: formatted');
  e.close();
  a.flush();
  b.flush();
  const d2 = mk('d.log');
  d2.writeRecord(1300, p);
  assert.equal(recentLines.copied, before + 1, 'the logs holding the line wrote it out: formatted');
  for (const w of [a, b, c, d2]) w.close();
  assert.equal(fs.readFileSync(join(d, 'b.log'), 'latin1'), 'type=SYSCALL msg=audit(1.000:1): a=1\n');
  assert.equal(fs.readFileSync(join(d, 'c.log'), 'latin1'), 'node=other type=SYSCALL msg=audit(1.000:1): a=1\n');
  assert.equal(fs.readFileSync(join(d, 'd.log'), 'latin1'), 'type=SYSCALL msg=audit(1.000:1): a=1\n');
  fs.rmSync(d, { recursive: true, force: true });
});

test('a log that fails to open leaves its style: a lone log of that style neither notes nor looks up', () => {
  const d = dir();
  const opts = { format: 'RAW' as const, flush: 'none' as const, node: 'lonely-open' };
  const style = new LineFormatter({ format: 'RAW', node: 'lonely-open', contidKernel: false }).style;
  assert.equal(style.logs, 0);
  // A log path that is a symlink is refused (never followed).
  fs.symlinkSync(join(d, 'elsewhere.log'), join(d, 'planted.log'));
  assert.throws(() => new LogWriter({ path: join(d, 'planted.log'), ...opts }).open());
  assert.equal(style.logs, 0, 'the writer that failed to open is not counted');
  const w = new LogWriter({ path: join(d, 'a.log'), ...opts });
  w.open();
  assert.equal(style.logs, 1);
  assert.equal(recentLines.shares(style), false);
  w.close();
  assert.equal(style.logs, 0);
  fs.rmSync(d, { recursive: true, force: true });
});
