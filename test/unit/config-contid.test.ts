// Unit tests for contid selectors, the route contid matcher and the ReDoS-free cgroup glob matcher.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AUDIT_CID_UNSET } from '../../src/kernel/constants';
import {
  cgroupGlobMatches,
  compileCgroupGlob,
  contidForCgroup,
  contidPatternMatches,
  contidSelectorsMatch,
  parseContidSelector,
  parseContidValue,
  recordTypeNumber,
  type CgroupMapEntry,
  type CompiledGlob,
  type ContidPattern,
} from '../../src/config';

function sel(t: string): ContidPattern {
  const p = parseContidSelector(t);
  assert.notEqual(typeof p, 'string', `${t}: ${String(p)}`);
  return p as ContidPattern;
}

function glob(p: string): CompiledGlob {
  const g = compileCgroupGlob(p);
  assert.notEqual(typeof g, 'string', `${p}: ${String(g)}`);
  return g as CompiledGlob;
}

describe('config: contid values', () => {
  it('decimal, hex and the bounds', () => {
    assert.equal(parseContidValue('0'), 0n);
    assert.equal(parseContidValue('0x0'), 0n);
    assert.equal(parseContidValue('0XfF'), 255n);
    assert.equal(parseContidValue('18446744073709551614'), AUDIT_CID_UNSET - 1n);
    assert.match(String(parseContidValue('18446744073709551615')), /unset/);
    assert.match(String(parseContidValue('0xffffffffffffffff')), /unset/);
    assert.match(String(parseContidValue('18446744073709551616')), /above the u64 range/);
    assert.match(String(parseContidValue('0x10000000000000000')), /above the u64 range/);
    assert.match(String(parseContidValue('9'.repeat(100))), /above the u64 range/);
    assert.match(String(parseContidValue('-5')), /unsigned/);
    assert.match(String(parseContidValue('1.0')), /not a contid/);
    assert.match(String(parseContidValue('')), /not a contid/);
  });
});

describe('config: contid selectors', () => {
  it('parses every form', () => {
    assert.deepEqual(sel('5'), { kind: 'range', lo: 5n, hi: 5n, nested: false, text: '5' });
    assert.deepEqual(sel(' 5 - 9 '), { kind: 'range', lo: 5n, hi: 9n, nested: false, text: '5 - 9' });
    assert.deepEqual(sel('0x10^*'), { kind: 'range', lo: 16n, hi: 16n, nested: true, text: '0x10^*' });
    assert.deepEqual(sel('UNSET'), {
      kind: 'unset',
      lo: AUDIT_CID_UNSET,
      hi: AUDIT_CID_UNSET,
      nested: false,
      text: 'UNSET',
    });
  });
  it('rejects malformed selectors', () => {
    for (const t of [
      '',
      '-',
      '1-',
      '-1-2',
      '1--2',
      '^*',
      '1^',
      '1*',
      '1,2',
      '1 2',
      'unset^*',
      '5-4',
      'x'.repeat(200),
    ]) {
      assert.equal(typeof parseContidSelector(t), 'string', t);
    }
  });
  it('matches own ids, ranges, nesting and unset', () => {
    const chain = [40n, 20n, 10n];
    assert.equal(contidPatternMatches(sel('40'), chain), true);
    assert.equal(contidPatternMatches(sel('20'), chain), false);
    assert.equal(contidPatternMatches(sel('20^*'), chain), true);
    assert.equal(contidPatternMatches(sel('10^*'), chain), true);
    assert.equal(contidPatternMatches(sel('30-50'), chain), true);
    assert.equal(contidPatternMatches(sel('11-19^*'), chain), false);
    assert.equal(contidPatternMatches(sel('unset'), chain), false);
    assert.equal(contidPatternMatches(sel('unset'), []), true);
    assert.equal(contidPatternMatches(sel('unset'), null), true);
    assert.equal(contidPatternMatches(sel('unset'), [AUDIT_CID_UNSET]), true);
    assert.equal(contidPatternMatches(sel('0-18446744073709551614^*'), null), false);
    assert.equal(contidSelectorsMatch([sel('1'), sel('unset')], null), true);
    assert.equal(contidSelectorsMatch([sel('1'), sel('2')], [3n]), false);
    assert.equal(contidSelectorsMatch([], [3n]), false);
  });
});

describe('config: cgroup globs', () => {
  it('compiles', () => {
    assert.deepEqual(glob('docker-*.scope'), { segments: ['docker-*.scope'], basename: true });
    assert.deepEqual(glob('/a//b/'), { segments: ['a', 'b'], basename: false });
    for (const bad of ['', 'a/b', '/a**', '**', '/', `${'x'.repeat(600)}`, 'a\nb', '*'.repeat(17)]) {
      assert.equal(typeof compileCgroupGlob(bad), 'string', JSON.stringify(bad));
    }
  });
  it('basename patterns match the last component only', () => {
    const g = glob('docker-*.scope');
    assert.equal(cgroupGlobMatches(g, '/system.slice/docker-abc123.scope'), true);
    assert.equal(cgroupGlobMatches(g, 'docker-.scope'), true);
    assert.equal(cgroupGlobMatches(g, '/system.slice/docker-abc123.scope/init'), false);
    assert.equal(cgroupGlobMatches(g, '/'), false);
    assert.equal(cgroupGlobMatches(glob('x?'), '/x1'), true);
    assert.equal(cgroupGlobMatches(glob('x?'), '/x'), false);
  });
  it('path patterns: * stays within a component, ** spans components', () => {
    const g = glob('/kubepods.slice/**/cri-containerd-*.scope');
    assert.equal(cgroupGlobMatches(g, '/kubepods.slice/cri-containerd-1.scope'), true);
    assert.equal(cgroupGlobMatches(g, '/kubepods.slice/a/b/c/cri-containerd-1.scope'), true);
    assert.equal(cgroupGlobMatches(g, '/other.slice/cri-containerd-1.scope'), false);
    assert.equal(cgroupGlobMatches(glob('/a/*'), '/a/b/c'), false);
    assert.equal(cgroupGlobMatches(glob('/a/*'), '/a/b'), true);
    assert.equal(cgroupGlobMatches(glob('/a/**'), '/a'), true);
    assert.equal(cgroupGlobMatches(glob('/**/z'), '/z'), true);
  });
  // An exponential matcher would hang here; the test's timeout, not a timed assertion, catches that.
  it('answers on adversarial names (no backtracking blow-up)', { timeout: 30000 }, () => {
    const g = glob('*a*a*a*a*a*a*a*a*b');
    const path = `/${'a'.repeat(4000)}`;
    const gp = glob('/**/**/**/**/**/**/x*y');
    const deep = `/${Array.from({ length: 1500 }, () => 'xx').join('/')}`;
    assert.equal(cgroupGlobMatches(g, path), false);
    assert.equal(cgroupGlobMatches(gp, deep), false);
  });
  it('first cgroup_map entry wins', () => {
    const entry = (pattern: string, contid: bigint): CgroupMapEntry => ({
      pattern,
      ...glob(pattern),
      contid,
      pos: { file: 'f', line: 1, col: 1 },
    });
    const map = [entry('/a/**', 1n), entry('*', 2n)];
    assert.equal(contidForCgroup(map, '/a/b'), 1n);
    assert.equal(contidForCgroup(map, '/c/d'), 2n);
    assert.equal(contidForCgroup([], '/c/d'), undefined);
  });
});

describe('config: record type names', () => {
  it('names, UNKNOWN[n] and the contid alias', () => {
    assert.equal(recordTypeNumber('SYSCALL'), 1300);
    assert.equal(recordTypeNumber('CONTAINER_ID'), 1336);
    assert.equal(recordTypeNumber('UNKNOWN[1999]'), 1999);
    assert.equal(recordTypeNumber('UNKNOWN[0]'), undefined);
    assert.equal(recordTypeNumber('toString'), undefined);
    // One lookup with `route test -m`: any case, as both have always upper-cased what they were given.
    assert.equal(recordTypeNumber('syscall'), 1300);
    assert.equal(recordTypeNumber('CONTAINER_OP'), 1020);
  });
});
