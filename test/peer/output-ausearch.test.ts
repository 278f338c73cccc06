// e2e: logs written by LogWriter from captured kernel records are read by real ausearch/aureport exactly like auditd's
// own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { LogWriter } from '../../src/output/logfile';
import { Reassembler } from '../../src/records/reassembler';
import { msgTypeByName } from '../../src/vocab/msgtypes';

const FIX = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'records');
const KEY = 'amtest';
const haveTools = spawnSync('ausearch', ['-v']).status === 0 && spawnSync('aureport', ['-v']).status === 0;

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'latin1', env: { ...process.env, TZ: 'UTC', LC_ALL: 'C' } });
  return r.stdout;
}

/** The kernel records auditd logged (by type+stamp), in arrival order, plus auditd's own DAEMON_* records in place. */
function inputsFor(fmt: string): { type: number; payload: Buffer }[] {
  const logLines = fs
    .readFileSync(join(FIX, `auditd-${fmt}.log`), 'latin1')
    .split('\n')
    .filter((l) => l !== '');
  const keyOf = (l: string): string => /^type=(\S+) msg=(audit\([^)]*\))/.exec(l)!.slice(1).join(' ');
  const logged = new Set(logLines.map(keyOf));
  const kernel = fs
    .readFileSync(join(FIX, `kernel-${fmt}.jsonl`), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { type: number; payload: string })
    .map((j) => ({ type: j.type, payload: Buffer.from(j.payload, 'base64') }));
  const byKey = new Map<string, { type: number; payload: Buffer }>();
  for (const k of kernel) {
    const m = /^(audit\([^)]*\))/.exec(k.payload.toString('latin1'));
    if (m) byKey.set(`${k.type} ${m[1]}`, k);
  }
  const out: { type: number; payload: Buffer }[] = [];
  for (const l of logLines) {
    const [name, stamp] = keyOf(l).split(' ') as [string, string];
    const type = msgTypeByName(name)!;
    const k = byKey.get(`${type} ${stamp}`);
    if (k !== undefined) out.push(k);
    else {
      // auditd's own record: its payload is the text after msg= (before the enrichment separator)
      const body = l.slice(l.indexOf('msg=') + 4).split('\x1d')[0]!;
      out.push({ type, payload: Buffer.from(body, 'latin1') });
    }
    assert.ok(logged.has(keyOf(l)));
  }
  return out;
}

for (const fmt of ['RAW', 'ENRICHED'] as const) {
  test(
    `${fmt}: our log is byte-identical to auditd's and ausearch/aureport agree`,
    { skip: !haveTools && 'ausearch/aureport not installed' },
    () => {
      const dir = fs.mkdtempSync(join(tmpdir(), 'ame2e-'));
      const ours = join(dir, 'audit.log');
      const w = new LogWriter({ path: ours, format: fmt, flush: 'none' });
      w.open();
      const inputs = inputsFor(fmt);
      for (const i of inputs) w.writeRecord(i.type, i.payload);
      w.close();
      const theirs = join(FIX, `auditd-${fmt}.log`);
      assert.equal(fs.readFileSync(ours, 'latin1'), fs.readFileSync(theirs, 'latin1'));
      for (const args of [['-k', KEY, '--raw'], ['-k', KEY, '-i'], ['-i']]) {
        const a = run('ausearch', ['-if', ours, ...args]);
        const b = run('ausearch', ['-if', theirs, ...args]);
        assert.ok(a.length > 0, `ausearch ${args.join(' ')} found nothing`);
        assert.equal(a, b, `ausearch ${args.join(' ')}`);
      }
      const ra = run('aureport', ['-if', ours, '--summary']);
      assert.match(ra, /Number of events/);
      assert.equal(ra, run('aureport', ['-if', theirs, '--summary']));
    },
  );

  test(
    `${fmt}: reassembled, event-ordered output finds the same ${KEY} events`,
    { skip: !haveTools && 'ausearch not installed' },
    () => {
      const dir = fs.mkdtempSync(join(tmpdir(), 'ame2e-'));
      const ours = join(dir, 'audit.log');
      const w = new LogWriter({ path: ours, format: fmt, flush: 'incremental', freq: 7 });
      w.open();
      const r = new Reassembler((ev) => w.writeEvent(ev.records));
      // EOEs were not in auditd's log; feed the kernel's too so events complete on them
      const kernel = fs
        .readFileSync(join(FIX, `kernel-${fmt}.jsonl`), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { type: number; payload: string });
      for (const k of kernel) r.push(k.type, Buffer.from(k.payload, 'base64'));
      r.flush();
      w.close();
      assert.equal(r.counters.malformed, 0);
      const count = (f: string): number =>
        run('ausearch', ['-if', f, '-k', KEY, '--raw'])
          .split('\n')
          .filter((l) => l !== '').length;
      const stamps = (f: string): string[] =>
        [...new Set(run('ausearch', ['-if', f, '-k', KEY, '--raw']).match(/audit\([^)]*\)/g) ?? [])].sort();
      const theirs = join(FIX, `auditd-${fmt}.log`);
      const mine = stamps(ours);
      const want = stamps(theirs);
      // ours saw the kernel stream for longer (the listener ran before and after auditd), so it is a superset
      for (const s of want) assert.ok(mine.includes(s), `missing event ${s}`);
      assert.ok(count(ours) >= count(theirs));
    },
  );
}
