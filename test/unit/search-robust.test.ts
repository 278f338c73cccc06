// Hostile logs: a corrupt rotated .gz does not end a search, and crafted distinct values do not grow a report's memory.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, describe, it } from 'node:test';
import { runReport, runSearch } from '../../src/search';
import { ReportBuilder, TopCounter, MinuteSeries, OTHER_CONTAINERS } from '../../src/search/report';
import type { SearchEvent } from '../../src/search/scan';
import { intBelow, prng } from '../helpers/prng';

const dir = mkdtempSync(join(tmpdir(), 'amsearch-robust-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const line = (serial: number, key = 'r'): string =>
  `type=SYSCALL msg=audit(${100 * serial}.000:${serial}): arch=c000003e syscall=2 success=yes exit=3 pid=1 uid=0 auid=0 ses=1 comm="x" exe="/bin/x" key="${key}"`;

function capture(): {
  out: string[];
  err: string[];
  io: { out(s: string): void; err(s: string): void };
  text(): string;
} {
  const c = {
    out: [] as string[],
    err: [] as string[],
    io: { out: (s: string) => void c.out.push(s), err: (s: string) => void c.err.push(s) },
    text: () => c.out.join(''),
  };
  return c;
}

describe('a corrupt .gz among rotated logs', () => {
  const d = join(dir, 'rot');
  mkdirSync(d);
  writeFileSync(join(d, 'audit.log.3'), line(1) + '\n');
  // The first event is readable, then the stream breaks: a truncated member followed by garbage.
  const gz = gzipSync(line(2) + '\n' + (line(9) + '\n').repeat(2000));
  writeFileSync(
    join(d, 'audit.log.2.gz'),
    Buffer.concat([gz.subarray(0, Math.floor(gz.length / 2)), Buffer.from('garbage')]),
  );
  writeFileSync(join(d, 'audit.log.1'), line(3) + '\n');
  writeFileSync(join(d, 'audit.log'), line(4) + '\n');

  it('search: the file is reported on stderr, every other log is still searched, exit 8', async () => {
    const c = capture();
    assert.equal(await runSearch(['-if', d, '-k', 'r', '--raw'], c.io), 8);
    const serials = [...c.text().matchAll(/:(\d+)\): /g)].map((m) => Number(m[1]));
    assert.deepEqual(
      serials.filter((s) => s !== 9),
      [1, 2, 3, 4],
      'the logs after the corrupt one are searched too',
    );
    assert.match(
      c.err.join(''),
      /audit\.log\.2\.gz: cannot decompress the log after line \d+ .*other logs are still searched/,
    );
    assert.match(c.err.join(''), /1 log file\(s\) could not be read completely/);
  });

  it('report: covers the other logs, says so, exit 8', async () => {
    const c = capture();
    assert.equal(await runReport(['-if', d, '--format', 'json'], c.io), 8);
    const j = JSON.parse(c.text()) as { events: number };
    assert.ok(j.events >= 4, `events from every readable log: ${j.events}`);
    assert.match(c.err.join(''), /audit\.log\.2\.gz: cannot decompress/);
  });

  it('nothing found but a file unreadable is still exit 8, not "not found"', async () => {
    const c = capture();
    assert.equal(await runSearch(['-if', d, '-k', 'nothing-has-this'], c.io), 8);
  });
});

function event(serial: number, o: { key?: string; exe?: string; contid?: string; minute?: number } = {}): SearchEvent {
  const sec = (o.minute ?? serial) * 60;
  const lines = [
    `type=SYSCALL msg=audit(${sec}.000:${serial}): arch=c000003e syscall=2 success=no exit=-2 pid=1 uid=0 auid=0 ses=1 comm="x" exe="${o.exe ?? '/bin/x'}" key="${o.key ?? 'k'}"`,
  ];
  if (o.contid) lines.push(`type=CONTAINER_ID msg=audit(${sec}.000:${serial}): record=1 contid=${o.contid}`);
  return { node: null, sec, ms: 0, serial, lines: lines.map((l) => Buffer.from(l)), file: 'x', line: serial };
}

describe('report memory is bounded (top-K)', () => {
  it('distinct keys, executables and minutes beyond the caps do not grow the tables; a frequent key survives', () => {
    const r = new ReportBuilder({ table: 32, minuteBins: 64, keyBins: 8, containers: 4 });
    const rand = prng(99);
    for (let i = 0; i < 20000; i++) {
      // one key in ten is the heavy hitter, the rest are all distinct, as a crafted log would make them
      const heavy = intBelow(rand, 10) === 0;
      r.add(event(i, { key: heavy ? 'heavy' : `k${i}`, exe: heavy ? '/bin/heavy' : `/tmp/e${i}`, minute: i * 7 }));
    }
    const s = r.containers.get('unset')!;
    assert.ok(s.keys.size <= 32 && s.exes.size <= 32, `${s.keys.size} keys, ${s.exes.size} exes`);
    assert.ok(s.perMinute.size <= 64, `${s.perMinute.size} minute bins`);
    assert.ok(s.keysPerMinute.size <= 32, `${s.keysPerMinute.size} per-key series`);
    for (const km of s.keysPerMinute.values()) assert.ok(km.size <= 8);
    assert.ok(s.keys.has('heavy') && s.exes.has('/bin/heavy'));
    const heavyCount = s.keys.get('heavy')!;
    assert.ok(heavyCount >= 1900 && heavyCount - s.keys.error('heavy') <= 2100, String(heavyCount));
    let total = 0;
    for (const [, c] of s.perMinute) total += c;
    assert.equal(total, 20000, 'widening the bins keeps every event');
  });

  it('containers beyond the cap are counted under (other), events counted once', () => {
    const r = new ReportBuilder({ containers: 3 });
    for (let i = 0; i < 100; i++) r.add(event(i, { contid: `${1000 + i}` }));
    r.add(event(100, {}));
    assert.equal(r.containers.size, 5, [...r.containers.keys()].join(' '));
    assert.equal(r.containers.get(OTHER_CONTAINERS)!.events, 97);
    assert.equal(r.containers.get('unset')!.events, 1);
  });

  it('TopCounter: fixed-seed property against exact counts (Space-Saving guarantees)', () => {
    const rand = prng(7);
    for (let round = 0; round < 50; round++) {
      const cap = 1 + intBelow(rand, 20);
      const t = new TopCounter(cap);
      const exact = new Map<string, number>();
      const n = intBelow(rand, 2000);
      const alphabet = 1 + intBelow(rand, 100);
      for (let i = 0; i < n; i++) {
        const k = `v${Math.floor(Math.pow(rand(), 2) * alphabet)}`;
        exact.set(k, (exact.get(k) ?? 0) + 1);
        t.add(k);
      }
      assert.ok(t.size <= cap);
      let sum = 0;
      for (const [k, c] of t) {
        sum += c;
        assert.ok(c >= exact.get(k)! && c - t.error(k) <= exact.get(k)!, `${k}: ${c} vs ${exact.get(k)}`);
      }
      assert.equal(sum, n, 'Space-Saving counts sum to the stream length');
      for (const [k, c] of exact)
        if (c > n / cap) assert.ok(t.has(k), `frequent ${k} (${c}/${n}) kept with cap ${cap}`);
      if (exact.size <= cap) for (const [k, c] of exact) assert.equal(t.get(k), c, 'exact below the cap');
    }
  });

  it('MinuteSeries keeps every count while widening', () => {
    const m = new MinuteSeries(4);
    for (let i = 0; i < 100; i++) m.add(i * 13);
    assert.ok(m.size <= 4);
    assert.equal(
      [...m].reduce((a, [, c]) => a + c, 0),
      100,
    );
  });
});
