// Real ausearch against auditmux's records and options: it reads the CONTAINER_OP birth records the host writes, and
// search -m accepts the record types ausearch -m accepts and finds the same events (auditmux's additions named).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runSearch } from '../../src/search';
import { sampleBirthLines } from '../helpers/container-records';

const hasAusearch = spawnSync('ausearch', ['-v']).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'amsearch-peer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ausearch 3.0.9 and auditmux records', { skip: !hasAusearch && 'ausearch is not installed' }, () => {
  it('real ausearch reads a log with the host birth records and finds every one', () => {
    const lines = sampleBirthLines();
    lines.push(
      'type=SYSCALL msg=audit(1700000010.000:100): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=100 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="sh" exe="/bin/sh" key="a" record=1',
      'type=CONTAINER_ID msg=audit(1700000010.000:100): record=1 contid=11',
    );
    const log = join(dir, 'births.log');
    writeFileSync(log, lines.join('\n') + '\n');
    const res = spawnSync('ausearch', ['-if', log, '--raw'], { encoding: 'utf8' });
    assert.equal((res.stdout.match(/op=container-birth/g) ?? []).length, 4);
  });

  it('search -m accepts what ausearch -m accepts and finds the same events', async () => {
    const log = join(dir, 'types.log');
    writeFileSync(
      log,
      [
        'type=SYSCALL msg=audit(1700000001.200:11): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=0 ppid=1 pid=2 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="sh" exe="/bin/sh" key=(null)',
        'type=UNKNOWN[1999] msg=audit(1700000002.200:12): foo=1',
        'type=USER_LOGIN msg=audit(1700000003.200:13): pid=300 uid=0 auid=1000 ses=3 msg=\'op=login id=1000 exe="/usr/sbin/sshd" hostname=? addr=10.0.0.1 terminal=ssh res=failed\'',
      ].join('\n') + '\n',
    );
    // ausearch says "Valid message types are: ..." for a type it refuses, and exits 1 as it does for no match.
    const theirs = (m: string): { refused: boolean; stamps: string[] } => {
      const res = spawnSync('ausearch', ['-if', log, '-m', m, '--raw'], { encoding: 'utf8' });
      return {
        refused: /Valid message types/.test(res.stdout + res.stderr),
        stamps: [...res.stdout.matchAll(/msg=audit\(([0-9.:]+)\)/g)].map((x) => x[1]!).sort(),
      };
    };
    const ours = async (m: string): Promise<{ refused: boolean; stamps: string[] }> => {
      const out: string[] = [];
      const code = await runSearch(['-if', log, '-m', m, '--raw'], { out: (s) => out.push(s), err: () => undefined });
      return {
        refused: code === 2,
        stamps: [...out.join('').matchAll(/msg=audit\(([0-9.:]+)\)/g)].map((x) => x[1]!).sort(),
      };
    };
    const same = ['SYSCALL', 'syscall', 'Syscall', '1300', 'user_login', 'SYSCALL,user_login', 'ALL', 'all', '1999'];
    same.push('UNKNOWN[1999]', 'SYSCALL,', 'NOT_A_TYPE', 'SYSCALL,nope', 'ALL,nope', '', 'URINGOP', 'avc');
    for (const m of same) assert.deepEqual(await ours(m), theirs(m), `-m ${JSON.stringify(m)}`);
    // auditmux's own names and the spellings it is lenient about; ausearch refuses them.
    for (const m of ['CONTAINER_OP', 'container_id', 'unknown[1999]', ' SYSCALL']) {
      assert.equal(theirs(m).refused, true, `ausearch -m ${JSON.stringify(m)}`);
      assert.equal((await ours(m)).refused, false, `search -m ${JSON.stringify(m)}`);
    }
    // Numbers no record can have: ausearch takes them and finds nothing; auditmux says so at once.
    for (const m of ['0', '70000']) {
      assert.deepEqual(theirs(m), { refused: false, stamps: [] }, `ausearch -m ${m}`);
      assert.equal((await ours(m)).refused, true, `search -m ${m}`);
    }
  });
});
