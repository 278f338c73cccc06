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
    assert.deepEqual(glob('/a//b/'), { segments: ['a', 'b'] });
    assert.deepEqual(glob('/system.slice/docker-*.scope'), {
      segments: ['system.slice', 'docker-*.scope'],
    });
    for (const bad of ['', 'a/b', '/a**', '**', '/', `${'x'.repeat(600)}`, 'a\nb', '/a/' + '*'.repeat(17)]) {
      assert.equal(typeof compileCgroupGlob(bad), 'string', JSON.stringify(bad));
    }
  });
  it('refuses patterns a user or a delegated subtree could match: not rooted, or a wildcard first component', () => {
    // Old: `docker-*.scope` matched the last component of any path, `/**/…` and `/*/**/…` any depth from the root:
    // a host user's `systemd-run --user --scope --unit=docker-x` got the map's contid.
    for (const bad of ['docker-*.scope', 'x?', '/**/docker-*.scope', '/*/**/x', '/*.slice/a', '/?ser.slice/x', '/**']) {
      const r = compileCgroupGlob(bad);
      assert.equal(typeof r, 'string', JSON.stringify(bad));
      assert.match(r as string, /absolute cgroup path|first component .* must be a literal name/, bad);
    }
    // A hand-built entry that bypassed the check matches nothing (defence in depth).
    const user = '/user.slice/user-1000.slice/user@1000.service/app.slice/docker-x.scope';
    assert.equal(cgroupGlobMatches({ segments: ['docker-*.scope'] }, user), false);
    assert.equal(cgroupGlobMatches({ segments: ['**', 'docker-*.scope'] }, user), false);
    assert.equal(contidForCgroup([{ segments: ['**', 'docker-*.scope'], contid: 3n }], user), undefined);
  });
  it('path patterns: * stays within a component, ** spans components', () => {
    const g = glob('/kubepods.slice/**/cri-containerd-*.scope');
    assert.equal(cgroupGlobMatches(g, '/kubepods.slice/cri-containerd-1.scope'), true);
    assert.equal(cgroupGlobMatches(g, '/kubepods.slice/a/b/c/cri-containerd-1.scope'), true);
    assert.equal(cgroupGlobMatches(g, '/other.slice/cri-containerd-1.scope'), false);
    assert.equal(cgroupGlobMatches(glob('/a/*'), '/a/b/c'), false);
    assert.equal(cgroupGlobMatches(glob('/a/*'), '/a/b'), true);
    assert.equal(cgroupGlobMatches(glob('/a/**'), '/a'), true);
    assert.equal(cgroupGlobMatches(glob('/a/x?'), '/a/x1'), true);
    assert.equal(cgroupGlobMatches(glob('/a/x?'), '/a/x'), false);
  });
  // An exponential matcher would hang here; the test's timeout, not a timed assertion, catches that.
  it('answers on adversarial names (no backtracking blow-up)', { timeout: 30000 }, () => {
    const g = glob('/a/*a*a*a*a*a*a*a*a*b');
    const path = `/a/${'a'.repeat(4000)}`;
    const gp = glob('/x/**/**/**/**/**/**/x*y');
    const deep = `/${Array.from({ length: 1500 }, () => 'xx').join('/')}`;
    const deepX = `/x/${Array.from({ length: 1500 }, () => 'xx').join('/')}`;
    assert.equal(cgroupGlobMatches(g, path), false);
    assert.equal(cgroupGlobMatches(gp, deep), false);
    assert.equal(cgroupGlobMatches(gp, deepX), false);
    const map = [
      { ...g, contid: 1n },
      { ...gp, contid: 2n },
    ];
    assert.equal(contidForCgroup(map, path), undefined);
    assert.equal(contidForCgroup(map, deepX), undefined);
  });
  it('the outermost matching prefix decides; the first entry among those matching it', () => {
    const entry = (pattern: string, contid: bigint): CgroupMapEntry => ({
      pattern,
      ...glob(pattern),
      contid,
      pos: { file: 'f', line: 1, col: 1 },
    });
    const map = [entry('/a/**', 1n), entry('/c/*', 2n), entry('/c/d', 3n)];
    assert.equal(contidForCgroup(map, '/a/b'), 1n);
    assert.equal(contidForCgroup(map, '/a'), 1n);
    assert.equal(contidForCgroup(map, '/c/d'), 2n);
    assert.equal(contidForCgroup(map, '/c'), undefined);
    assert.equal(contidForCgroup([], '/c/d'), undefined);
    // Old: the first entry matching the WHOLE path, so a cgroup made below a mapped one could pick its contid.
    const A = 'a'.repeat(64);
    const B = 'b'.repeat(64);
    const k = [
      entry(`/kubepods.slice/**/cri-containerd-${A}.scope`, 401n),
      entry(`/kubepods.slice/**/cri-containerd-${B}.scope`, 402n),
    ];
    const pod = '/kubepods.slice/kubepods-pod1.slice';
    assert.equal(contidForCgroup(k, `${pod}/cri-containerd-${B}.scope/cri-containerd-${A}.scope`), 402n);
    assert.equal(contidForCgroup(k, `${pod}/cri-containerd-${B}.scope/x/cri-containerd-${A}.scope/y`), 402n);
    assert.equal(contidForCgroup(k, `${pod}/cri-containerd-${A}.scope`), 401n);
    const s = [entry(`/srv.slice/job-a.scope`, 100n), entry(`/srv.slice/*.scope`, 200n)];
    assert.equal(contidForCgroup(s, '/srv.slice/job-b.scope/job-a.scope'), 200n);
    assert.equal(contidForCgroup(s, '/srv.slice/job-a.scope/x'), 100n);
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
