// End-to-end: auditmux search -k KEY --raw finds the same events, with the same lines, as Debian's ausearch on
// generated logs.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runSearch } from '../../src/search';
import { writeLog, type GenOptions } from '../fixtures/search/gen';

const hasAusearch = spawnSync('ausearch', ['-v']).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'amsearch-e2e-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Event stamp -> sorted lines: ausearch prints events in completion order, auditmux in log order. */
function byEvent(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const s = /msg=audit\(([0-9.:]+)\)/.exec(line)?.[1] ?? '?';
    const l = m.get(s) ?? [];
    l.push(line);
    m.set(s, l);
  }
  for (const l of m.values()) l.sort();
  return m;
}

async function compare(name: string, events: number, opts: GenOptions, keys: string[]): Promise<void> {
  const log = join(dir, `${name}.log`);
  await writeLog(log, events, opts);
  for (const key of keys) {
    const r = spawnSync('ausearch', ['-if', log, '-k', key, '--raw'], { maxBuffer: 1 << 30, encoding: 'latin1' });
    const out: string[] = [];
    const code = await runSearch(['-if', log, '-k', key, '--raw'], { out: (s) => out.push(s), err: () => undefined });
    assert.equal(code, r.status, `${name} -k ${key}: exit codes`);
    const ours = byEvent(out.join(''));
    const theirs = byEvent(r.stdout);
    assert.ok(theirs.size > 0 || key === 'no-such-key', `${name} -k ${key}: ausearch found nothing`);
    assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort(), `${name} -k ${key}: same events`);
    for (const [stamp, lines] of theirs) assert.deepEqual(ours.get(stamp), lines, `${name} -k ${key}: event ${stamp}`);
  }
}

describe('search vs ausearch 3.0.9', { skip: !hasAusearch && 'ausearch is not installed' }, () => {
  it('RAW log, dense load with partial events and interleaving, 1336 contid records', async () => {
    await compare('raw', 30000, { seed: 11, partial: 0.02, interleave: 0.03, unknown1336: true }, [
      'ambench',
      'amtest',
      'k-1',
      'auditmux-aux:a',
      'no-such-key',
    ]);
  });
  it('ENRICHED log', async () => {
    await compare('enriched', 20000, { seed: 12, enriched: true, dense: 0.5, unknown1336: true }, [
      'ambench',
      'net',
      'files',
    ]);
  });
  it('CONTAINER_ID records by name: same events; ausearch drops the records it has no name for', async () => {
    const log = join(dir, 'named.log');
    await writeLog(log, 5000, { seed: 13, dense: 0.3 });
    const theirs = byEvent(
      execFileSync('ausearch', ['-if', log, '-k', 'amtest', '--raw'], { maxBuffer: 1 << 30, encoding: 'latin1' }),
    );
    const out: string[] = [];
    await runSearch(['-if', log, '-k', 'amtest', '--raw'], { out: (s) => out.push(s), err: () => undefined });
    const ours = byEvent(out.join(''));
    assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort());
    for (const [stamp, lines] of ours)
      assert.deepEqual(
        lines.filter((l) => !l.startsWith('type=CONTAINER_ID ')),
        theirs.get(stamp),
      );
  });
});
