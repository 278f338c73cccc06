// The kernel's one rule list shared by the host and tenants: identical rules merged, and when every owner's keys and
// tags no longer fit the kernel's 256 bytes, one group tag the pipeline reads back into owners and keys.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config';
import { ContidTracker } from '../../src/contid/tracker';
import { AUDIT_MAX_KEY_LEN } from '../../src/kernel/constants';
import { encodeKeys } from '../../src/records/fields';
import { GROUP_TAG_PREFIX, OWNER_TAG_PREFIX, Pipeline } from '../../src/routing/pipeline';
import { Router } from '../../src/routing/router';
import { parseRules, type Rule } from '../../src/rules';
import { auxRules, mergeRules, type Owned } from '../../src/daemon/rule-union';

const EXEC = '-a always,exit -F arch=b64 -S execve -k exec\n';
const one = (text: string): Rule => {
  const c = parseRules(text, '/etc/audit/rules.d/x.rules')[0]!;
  assert.equal(c.kind, 'add');
  return (c as { rule: Rule }).rule;
};

describe('the rule union', () => {
  it('merges identical rules into one kernel rule carrying every owner key and tag', () => {
    const u = mergeRules([
      { owner: 'host', rule: one(EXEC) },
      { owner: 'web', rule: one(EXEC.replace('-k exec', '-k webexec')) },
    ]);
    assert.equal(u.rules.length, 1);
    assert.deepEqual(u.rules[0]!.keys, ['exec', 'webexec', `${OWNER_TAG_PREFIX}web`]);
    assert.equal(u.groups.size, 0);
  });

  it("twenty tenants loading the host's execve rule: one group tag, not a failed sync of every rule", () => {
    // 20 owner tags of 27 bytes each are 540 bytes: the old union refused the whole rule set (E_KEY_TOO_LONG), so a
    // tenant's ordinary rules file stopped the host's own rules from loading.
    const names = ['a', ...Array.from({ length: 19 }, (_, i) => `tenant-number-${String(i).padStart(2, '0')}`)];
    const owned: Owned[] = [{ owner: 'host', rule: one(EXEC) }];
    for (const n of names)
      for (const r of auxRules(n, parseRules(EXEC.replace('-k exec', `-k ${n}-x`), n)))
        owned.push({ owner: n, rule: r });
    const u = mergeRules(owned);
    assert.equal(u.rules.length, 1);
    const [tag] = u.rules[0]!.keys;
    assert.equal(u.rules[0]!.keys.length, 1);
    assert.match(tag!, new RegExp(`^${GROUP_TAG_PREFIX}[0-9a-f]{32}$`));
    assert.ok(Buffer.byteLength(tag!) <= AUDIT_MAX_KEY_LEN);
    const g = u.groups.get(tag!)!;
    assert.deepEqual(g.owners, names);
    assert.deepEqual(g.keys, ['exec', ...names.map((n) => `${n}-x`)]);
    // Each owner's log shows its own keys (keysFor reads them by the kernel's key).
    assert.deepEqual(u.keysByOwner.get(tag!)?.get('host'), ['exec']);
    assert.deepEqual(u.keysByOwner.get(tag!)?.get('a'), ['a-x']);
    // Named by its contents: the same union, the same tag; one owner fewer, another.
    assert.equal(mergeRules(owned).rules[0]!.keys[0], tag);
    assert.notEqual(mergeRules(owned.slice(0, -1)).rules[0]!.keys[0], tag);

    // The pipeline reads the group back: the event goes to the tenant that owns a share of the rule.
    const cfg = parseConfig(
      'daemons:\n  - { name: a, rules: /dev/null, log: { file: /tmp/am-ru.log } }\nroutes:\n  - { contid: 100, daemons: [a] }\n',
      '/tmp/am-ru.yaml',
    );
    const t = new ContidTracker({
      proc: { stat: () => ({ ppid: 1, starttime: 5, threads: 1 }), children: () => [], cgroupText: () => null },
    });
    const p = new Pipeline({
      router: new Router(cfg.routes),
      tracker: t,
      contidKernel: false,
      daemonsWithRules: new Set(['a']),
      keep: 'all',
      keyGroup: (k) => u.groups.get(k),
    });
    t.set(1000, 100n, { setterPid: 1 });
    const sys = (serial: number, key: string): { type: number; payload: Buffer } => ({
      type: 1300,
      payload: Buffer.from(
        `audit(1700000000.000:${serial}): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=1000 auid=0 comm="x" key=${key}`,
      ),
    });
    const routed = p.route([sys(1, encodeKeys([tag!]))], (owner) =>
      owner === null ? u.keysByOwner.get(tag!)!.get('host')! : u.keysByOwner.get(tag!)!.get(owner)!,
    );
    assert.deepEqual(
      routed.destinations.map((d) => d.daemon),
      ['a', null],
    );
    assert.match(routed.destinations[0]!.records[1]!.payload.toString(), / key="a-x" record=1$/);
    assert.match(routed.destinations[1]!.records[1]!.payload.toString(), / key="exec" record=1$/);
    // A group tag the union does not know (its rule replaced since) names no one, and is no key of anyone's.
    const stale = p.route([sys(2, encodeKeys([`${GROUP_TAG_PREFIX}0000000000000000`]))]);
    assert.deepEqual(
      stale.destinations.map((d) => d.daemon),
      [null],
    );
    assert.deepEqual(p.view([sys(3, encodeKeys([`${GROUP_TAG_PREFIX}0000000000000000`]))]).keys, []);
  });

  it('two identical host rules with long keys share one kernel rule as auditctl would load them', () => {
    const u = mergeRules([
      { owner: 'host', rule: one(`-a always,exit -F arch=b64 -S execve -k ${'a'.repeat(200)}\n`) },
      { owner: 'host', rule: one(`-a always,exit -F arch=b64 -S execve -k ${'b'.repeat(200)}\n`) },
    ]);
    assert.equal(u.rules.length, 1);
    const tag = u.rules[0]!.keys[0]!;
    const g = u.groups.get(tag)!;
    assert.deepEqual([g.owners, g.keys], [[], ['a'.repeat(200), 'b'.repeat(200)]]);
    // The host log shows the host's keys, not the tag: a group with no tenant in it still has its key rewritten.
    const p = new Pipeline({
      router: new Router([]),
      tracker: new ContidTracker({ proc: { stat: () => null, children: () => [], cgroupText: () => null } }),
      contidKernel: false,
      daemonsWithRules: new Set(),
      keep: 'all',
      keyGroup: (k) => u.groups.get(k),
    });
    const out = p.route(
      [
        {
          type: 1300,
          payload: Buffer.from(
            `audit(1700000000.000:9): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=7 auid=0 comm="x" key=${encodeKeys([tag])}`,
          ),
        },
      ],
      (owner) => [...(u.groups.get(tag)!.byOwner.get(owner ?? 'host') ?? [])],
    ).destinations;
    assert.deepEqual(
      out.map((d) => d.daemon),
      [null],
    );
    assert.match(
      out[0]!.records[0]!.payload.toString(),
      new RegExp(` key=${encodeKeys(['a'.repeat(200), 'b'.repeat(200)])}$`),
    );
  });
});
