// Names planted in a listed log directory (a tenant's own): symlinks and hard links are never read as its logs.
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runSearch } from '../../src/search';

const dir = mkdtempSync(join(tmpdir(), 'amsearch-planted-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const line = (serial: number, key: string): string =>
  `type=SYSCALL msg=audit(${100 * serial}.000:${serial}): arch=c000003e syscall=2 success=yes exit=3 pid=1 uid=0 auid=0 ses=1 comm="x" exe="/bin/x" key="${key}"`;

function capture(): { err: string[]; io: { out(s: string): void; err(s: string): void }; text(): string } {
  const out: string[] = [];
  const err: string[] = [];
  return { err, io: { out: (s) => void out.push(s), err: (s) => void err.push(s) }, text: () => out.join('') };
}

describe('search over a directory holding planted names', () => {
  // Stands for a file the tenant cannot read but root can (/etc/shadow): here, a log outside the directory.
  const secret = join(dir, 'secret');
  mkdirSync(secret);
  writeFileSync(join(secret, 'audit.log'), line(7, 'secret') + '\n');
  const tenant = join(dir, 'tenant');
  mkdirSync(tenant);
  writeFileSync(join(tenant, 't.log'), line(1, 'mine') + '\n');
  symlinkSync(join(secret, 'audit.log'), join(tenant, 't.log.1'));
  const hard = join(secret, 'other.log');
  writeFileSync(hard, line(8, 'secret') + '\n');
  linkSync(hard, join(tenant, 't.log.2'));

  it('reads the real log, skips the symlink and refuses the hard link', async () => {
    const c = capture();
    const code = await runSearch(['-if', tenant, '--raw'], c.io);
    assert.match(c.text(), /key="mine"/);
    assert.doesNotMatch(c.text(), /secret/, 'nothing read through a planted name');
    assert.match(c.err.join(''), /t\.log\.2 has 2 hard links; refusing to read/);
    assert.equal(code, 8, 'an input left unread makes the answer incomplete');
  });

  it('an operator naming a file explicitly still gets it, symlink or not', async () => {
    const c = capture();
    assert.equal(await runSearch(['-if', join(tenant, 't.log.1'), '--raw'], c.io), 0);
    assert.match(c.text(), /key="secret"/);
  });
});
