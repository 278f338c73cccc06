// A tenant's rules file against the host's kernel list: nothing host-wide, nothing ahead of the host's rules, no key of
// auditmux's (another daemon's tag), keys that still fit once tagged, a bounded count; each refusal at its file:line.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RuleError } from '../../src/errors';
import { parseRules } from '../../src/rules';
import { auxRules, MAX_AUX_RULES } from '../../src/daemon/rule-union';

const FILE = '/srv/tenants/web.rules';
const refused = (text: string, re: RegExp, line: number, code = 'E_HOST_WIDE'): void =>
  assert.throws(
    () => auxRules('web', parseRules(text, FILE)),
    (e: unknown) =>
      e instanceof RuleError && e.code === code && e.pos?.line === line && e.pos.file === FILE && re.test(e.reason),
    text.slice(0, 80),
  );

describe("a tenant's rules", () => {
  it('are accepted as auditctl writes them', () => {
    const rules = auxRules(
      'web',
      parseRules('-a always,exit -F arch=b64 -S openat -k files\n-w /etc/app -p wa\n', FILE),
    );
    assert.equal(rules.length, 2);
  });

  it('may not prepend (-A): first-match, at the head the rule would take every event from the host and the others', () => {
    refused('-a always,exit -F arch=b64 -S getppid -k a\n-A always,exit -F arch=b64 -S all -k benign\n', /-A/, 2);
  });

  it("may not carry auditmux's keys: another daemon's owner tag, the tracking key, a \\x01", () => {
    refused('-a always,exit -F arch=b64 -S all -k auditmux-aux:victim\n', /auditmux-aux:victim/, 1);
    refused('-a always,exit -F arch=b64 -S clone -k auditmux-contid-track\n', /keys starting with "auditmux-"/, 1);
  });

  it("keys that would pass the kernel's 256 bytes once tagged are refused at their line, not at the next sync", () => {
    refused(
      `\n-a always,exit -F arch=b64 -S getppid -k ${'k'.repeat(240)}\n`,
      /256 bytes once tagged/,
      2,
      'E_KEY_TOO_LONG',
    );
    // 256 - 1 - "auditmux-aux:web".length = 239: the longest key that fits.
    assert.equal(
      auxRules('web', parseRules(`-a always,exit -F arch=b64 -S getppid -k ${'k'.repeat(239)}\n`, FILE)).length,
      1,
    );
  });

  it(`are at most ${MAX_AUX_RULES}`, () => {
    const lines = Array.from(
      { length: MAX_AUX_RULES + 1 },
      (_, i) => `-a always,exit -F arch=b64 -S getppid -F pid=${i + 1}`,
    );
    refused(lines.join('\n') + '\n', /at most 4096 rules/, MAX_AUX_RULES + 1, 'E_TOO_MANY_RULES');
    assert.equal(auxRules('web', parseRules(lines.slice(0, MAX_AUX_RULES).join('\n'), FILE)).length, MAX_AUX_RULES);
  });
});
