// The ENRICHED writer's uid and gid names follow passwd and group: a user added after the start is named in its
// events once the files change (looked at once a second at most, by a clock read per record, not a stat).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mock } from 'node:test';
import * as safefs from '../../src/safefs';
import { ACCOUNTS_RECHECK_MS, IdNameCache } from '../../src/vocab/accounts';
import { LineFormatter } from '../../src/output/format';

const login = (id: number): { type: number; payload: Buffer } => ({
  type: 1112,
  payload: Buffer.from(`audit(1700000000.000:5): pid=1 uid=${id} auid=${id} ses=1 msg='op=x'`),
});

function files(): { dir: string; passwd: string; group: string } {
  const dir = mkdtempSync(join(tmpdir(), 'am-ids-'));
  const passwd = join(dir, 'passwd');
  const group = join(dir, 'group');
  writeFileSync(passwd, 'root:x:0:0::/root:/bin/sh\n');
  writeFileSync(group, 'root:x:0:\n');
  return { dir, passwd, group };
}

test('useradd after the start: the new uid is named once passwd changed and the clock moved on', () => {
  const { passwd, group } = files();
  let now = 5000;
  const f = new LineFormatter({ format: 'ENRICHED', ids: new IdNameCache(passwd, group, { now: () => now }) });
  assert.match(f.formatRecord(login(1001)), /\x1dUID="unknown\(1001\)" AUID="unknown\(1001\)"$/);
  appendFileSync(passwd, 'bob:x:1001:1001::/home/bob:/bin/sh\n');
  utimesSync(passwd, new Date(1_800_000_000_000), new Date(1_800_000_000_000));
  // Within the second: the files are not looked at again (no stat per record).
  now += ACCOUNTS_RECHECK_MS / 2;
  assert.match(f.formatRecord(login(1001)), /UID="unknown\(1001\)"/);
  now += ACCOUNTS_RECHECK_MS;
  assert.match(f.formatRecord(login(1001)), /\x1dUID="bob" AUID="bob"$/);
});

test('a passwd replaced by rename (new inode) is read again; an unchanged one is not, whatever the clock', () => {
  const { dir, passwd, group } = files();
  let now = 0;
  const ids = new IdNameCache(passwd, group, { now: () => now });
  const f = new LineFormatter({ format: 'ENRICHED', ids });
  f.formatRecord(login(0));
  const reads = mock.method(safefs, 'readBounded');
  try {
    for (let i = 0; i < 50; i++) {
      now += ACCOUNTS_RECHECK_MS;
      assert.match(f.formatRecord(login(0)), /UID="root"/);
    }
    assert.equal(reads.mock.callCount(), 0, 'unchanged files are stat-ed, never read again');
    const gen = ids.generation;
    writeFileSync(join(dir, 'passwd.new'), 'toor:x:0:0::/root:/bin/sh\n');
    renameSync(join(dir, 'passwd.new'), passwd);
    now += ACCOUNTS_RECHECK_MS;
    assert.match(f.formatRecord(login(0)), /\x1dUID="toor" AUID="toor"$/);
    assert.equal(ids.generation, gen + 1);
  } finally {
    reads.mock.restore();
  }
});
