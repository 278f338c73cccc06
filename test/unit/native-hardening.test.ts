// The built addon carries the hardening of a Debian package: full RELRO (BIND_NOW), stack protector, no exec stack.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = join(__dirname, '..', '..', '..');
const ADDON = join(ROOT, 'build', 'Release', 'auditmux_netlink.node');
const skip = spawnSync('readelf', ['--version']).status === 0 ? undefined : 'readelf (binutils) is not installed';

function readelf(...args: string[]): string {
  const r = spawnSync('readelf', ['-W', ...args, ADDON], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('native addon hardening (hardening-check style, read from the ELF)', { skip }, () => {
  it('is built', () => {
    assert.ok(existsSync(ADDON), `${ADDON}: run npm run build`);
  });
  it('full RELRO: a GNU_RELRO segment and BIND_NOW, so the GOT is read-only after load (-z relro -z now)', () => {
    assert.match(readelf('-l'), /^\s*GNU_RELRO\s/m);
    const dyn = readelf('-d');
    assert.match(dyn, /\(FLAGS\)\s+.*\bBIND_NOW\b/);
    assert.match(dyn, /\(FLAGS_1\)\s+Flags:.*\bNOW\b/);
  });
  it('stack protector: functions with buffers check a canary (-fstack-protector-strong imports __stack_chk_fail)', () => {
    assert.match(readelf('--dyn-syms'), /\bUND\s+__stack_chk_fail\b/);
  });
  it('a non-executable stack (GNU_STACK RW, not RWE)', () => {
    const stack = readelf('-l')
      .split('\n')
      .find((l) => /^\s*GNU_STACK\s/.test(l));
    assert.ok(stack, 'GNU_STACK header');
    assert.match(stack, /\sRW\s/);
  });
  it('any fortifiable libc call goes through its checked __*_chk variant (-D_FORTIFY_SOURCE=2)', () => {
    // The source has no call whose object size gcc knows, so today no __*_chk import is expected; the source refuses
    // to compile without _FORTIFY_SOURCE >= 2 and __SSP_STRONG__, and this catches an unchecked call added later.
    const src = readFileSync(join(ROOT, 'native', 'audit_netlink.cc'), 'utf8');
    assert.match(
      src,
      /#if !defined\(__OPTIMIZE__\) \|\| !defined\(_FORTIFY_SOURCE\) \|\| _FORTIFY_SOURCE < 2 \|\| !defined\(__SSP_STRONG__\)\n#error/,
    );
    const unchecked = ['sprintf', 'vsprintf', 'strcpy', 'strcat', 'gets', 'stpcpy'];
    const imports = readelf('--dyn-syms')
      .split('\n')
      .filter((l) => /\bUND\b/.test(l))
      .map((l) => (l.trim().split(/\s+/)[7] ?? '').replace(/@.*/, ''));
    for (const f of unchecked) assert.ok(!imports.includes(f), `${f} is imported unchecked`);
  });
});
