// The one bounded /proc reader and the cgroup path cgroup_map globs see, against a plain split of generated texts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { primaryCgroupPath, readProcText, realProc } from '../../src/contid/proc';
import { intBelow, prng } from '../helpers/prng';

/** What the tracker read before: the v2 line, else the first non-empty line, path after the second colon. */
function reference(text: string): string | null {
  const lines = text.split('\n');
  const v2 = lines.find((l) => l.startsWith('0::'));
  const line = v2 ?? lines.find((l) => l.length > 0 && l.indexOf(':', l.indexOf(':') + 1) >= 0);
  return line ? line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1) : null;
}

describe('contid /proc reader', () => {
  it('reads /proc/self/cgroup and stat as the kernel wrote them', () => {
    assert.equal(realProc.cgroupText(process.pid), readFileSync('/proc/self/cgroup', 'latin1'));
    assert.equal(realProc.stat(process.pid)?.ppid, process.ppid);
    assert.equal(realProc.cgroupText(0x7ffffff0), null, 'no such process');
  });

  it('never returns more than its limit, cut at the last whole line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'amproc-'));
    try {
      const f = join(dir, 'big');
      writeFileSync(f, '1:a:/x\n2:b:/yy\n3:c:/zzz\n');
      assert.equal(readProcText(f, 16), '1:a:/x\n2:b:/yy\n');
      assert.equal(readProcText(f, 1000), '1:a:/x\n2:b:/yy\n3:c:/zzz\n');
      assert.equal(readProcText(join(dir, 'missing'), 100), null);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('picks the path cgroup_map matches like a split of the lines does (property, seeded)', () => {
    const next = prng(0xc67);
    const pieces = ['0', '1', '12', ':', '::', '/', '/a', 'name=systemd', 'pids', '\n', '0::/', ':/x', 'cpu,cpuacct'];
    for (let i = 0; i < 3000; i++) {
      let t = '';
      const n = intBelow(next, 12);
      for (let j = 0; j < n; j++) t += pieces[intBelow(next, pieces.length)];
      assert.equal(primaryCgroupPath(t), reference(t), JSON.stringify(t));
    }
    assert.equal(primaryCgroupPath('12:pids:/a\n0::/b\n'), '/b');
    assert.equal(primaryCgroupPath('12:pids:/a\n1:name=systemd:/c\n'), '/a');
  });
});
