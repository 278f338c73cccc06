// Rule keys with non-ASCII text: the kernel keeps a rules file's UTF-8 bytes and prints them hex-encoded, and what
// auditmux writes back into an event's key field for each destination must be those bytes, encoded the same way.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ContidTracker } from '../../src/contid/tracker';
import { KernelSession } from '../../src/daemon/kernel-session';
import { auxRules, mergeRules, type KernelRuleSet, type Owned } from '../../src/daemon/rule-union';
import { LineFormatter } from '../../src/output/format';
import { decodeKeys, encodeKeys, fieldValue, keyBytes } from '../../src/records/fields';
import type { KeyGroup } from '../../src/routing/pipeline';
import { Pipeline } from '../../src/routing/pipeline';
import { Router } from '../../src/routing/router';
import { parseRules } from '../../src/rules';
import { intBelow, prng } from '../helpers/prng';

const RULE = '-a always,exit -F arch=b64 -S execve';

/** The key field as the kernel writes it for a rule whose FILTERKEY is `keys` (rules-file text, sent as UTF-8). */
function kernelKeyField(keys: readonly string[]): string {
  const b = Buffer.from(keys.join('\x01'), 'utf8');
  // audit_log_n_untrustedstring(): hex when audit_string_contains_control() finds '"', < 0x21 or > 0x7e.
  for (const c of b) if (c === 0x22 || c < 0x21 || c > 0x7e) return b.toString('hex').toUpperCase();
  return `"${b.toString('latin1')}"`;
}

const owned = (owner: string, text: string): Owned[] =>
  auxRules(owner, parseRules(text, `${owner}.rules`)).map((rule) => ({ owner, rule }));

/** A KernelSession holding `u` as its loaded rule set (no kernel: keysFor reads only the union). */
function sessionWith(u: KernelRuleSet): KernelSession {
  const s = new KernelSession({} as ConstructorParameters<typeof KernelSession>[0]);
  const inner = s as unknown as { ruleSet: KernelRuleSet; knownGroups: Map<string, KeyGroup> };
  inner.ruleSet = u;
  for (const [tag, g] of u.groups) inner.knownGroups.set(tag, g);
  return s;
}

const syscall = (serial: number, keyField: string): Buffer =>
  Buffer.from(
    `audit(1700000000.000:${serial}): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=7 auid=1000 uid=1000 ` +
      `comm="x" exe="/bin/x" key=${keyField}`,
    'latin1',
  );

describe('rule keys are bytes: encoded as the kernel encodes them', () => {
  it('encodeKeys: a char above U+00FF is encoded from its UTF-8 bytes, never cut to its low byte', () => {
    assert.equal(encodeKeys(['\u0122']), 'C4A2');
    assert.equal(encodeKeys(['\u0120']), 'C4A0');
    assert.equal(encodeKeys(['\u011b[2J']), 'C49B5B324A');
    // The same key as records carry it (decodeKeys' form, one char per byte) encodes alike.
    assert.equal(encodeKeys([keyBytes('\u0122')]), 'C4A2');
    assert.equal(encodeKeys(['ok']), '"ok"');
    assert.equal(encodeKeys(['a b']), '612062');
    assert.equal(encodeKeys(['a', 'b']), '610162');
    assert.equal(encodeKeys([]), '(null)');
  });

  it('property (seed 0x6b657973): what the kernel writes for a rules-file key, and decodeKeys reads back', () => {
    const next = prng(0x6b657973);
    const alphabet = ['a', 'Z', '0', '-', '"', ' ', '\t', '\x7f', 'é', '\u0122', '\u0120', '\u011b', '€', '😀', '='];
    for (let i = 0; i < 2000; i++) {
      const keys: string[] = [];
      for (let k = 0, n = 1 + intBelow(next, 3); k < n; k++) {
        let s = '';
        for (let j = 0, m = 1 + intBelow(next, 8); j < m; j++) s += alphabet[intBelow(next, alphabet.length)];
        keys.push(s);
      }
      const want = kernelKeyField(keys);
      const asRecorded = keys.map(keyBytes);
      assert.equal(encodeKeys(asRecorded), want, JSON.stringify(keys));
      // Text with a char above U+00FF is no byte string: taken as text, its UTF-8 bytes (text of chars up to U+00FF
      // alone reads as bytes, the form the union and decodeKeys keep).
      if (keys.some((k) => /[^\x00-\xff]/.test(k))) assert.equal(encodeKeys(keys), want, JSON.stringify(keys));
      assert.match(want, /^("[\x21\x23-\x7e]+"|[0-9A-F]+)$/);
      assert.deepEqual(decodeKeys(want), asRecorded);
    }
  });
});

describe("a tenant's non-ASCII key in the shared kernel rule", () => {
  // U+0122 is written '"' by latin1, U+0120 a space and U+011B an ESC: the key closed the key field and added fields.
  const K = 'a\u0122\u0120contid=4242\u0120auid=0\u0120\u011b[31mROOT' + 'z'.repeat(195);

  it('the host log (keep: all, group tag) gets the key hex-encoded: no contid= or auid= of the tenant', () => {
    const u = mergeRules([...owned('tenant-a', `${RULE} -k ${K}\n`), ...owned('tenant-b', `${RULE}\n`)]);
    assert.equal(u.groups.size, 1, 'the keys and tags do not fit: one group tag');
    const session = sessionWith(u);
    const tracker = new ContidTracker({ proc: { stat: () => null, children: () => [], cgroupText: () => null } });
    const p = new Pipeline({
      router: new Router([]),
      tracker,
      contidKernel: false,
      daemonsWithRules: new Set(),
      keep: 'all',
      keyGroup: (k) => session.keyGroup(k),
    });
    const routed = p.route([{ type: 1300, payload: syscall(9, kernelKeyField(u.rules[0]!.keys)) }], (o, full) =>
      session.keysFor(o, full),
    );
    const host = routed.destinations.find((d) => d.daemon === null);
    assert.ok(host, 'the event reaches the host log');
    const payload = host.records[0]!.payload;
    assert.equal(fieldValue(payload, 'contid'), undefined);
    assert.equal(fieldValue(payload, 'auid'), '1000');
    assert.equal(fieldValue(payload, 'key'), kernelKeyField([K]));
    const line = new LineFormatter({ format: 'RAW' }).formatRecord(host.records[0]!);
    assert.ok(!line.includes('\x1b'), 'no escape byte in the log line');
    assert.match(line, / key=[0-9A-F]+$/);
  });

  it("keysFor finds a non-ASCII key's owners: a route-only daemon sees none of the tenant's keys", () => {
    const u = mergeRules([...owned('tenant-a', `${RULE} -k sécret\n`)]);
    const session = sessionWith(u);
    const full = decodeKeys(kernelKeyField(u.rules[0]!.keys));
    assert.deepEqual(session.keysFor('tenant-a', full), [keyBytes('sécret')]);
    assert.deepEqual(session.keysFor('other', full), [], "another daemon's log shows none of tenant-a's keys");
    assert.deepEqual(session.keysFor(null, full), [keyBytes('sécret')], 'the host log: every user key');
    assert.equal(encodeKeys(session.keysFor('tenant-a', full)), kernelKeyField(['sécret']));
  });
});
