// Loads Debian's example rule files with real `auditctl -R` and with our applier; `auditctl -l` must print the same.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { AuditClient } from '../../src/kernel/client';
import { applyRules, parseRules } from '../../src/rules';
import { kernelSkipReason, restoreKernel, snapshotKernel } from '../helpers/kernel';

const EXAMPLES = '/usr/share/doc/auditd/examples/rules';

function auditctl(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('auditctl', args, { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function enabled(): number {
  const m = /^enabled (\d+)$/m.exec(auditctl('-s').stdout);
  return m ? Number(m[1]) : -1;
}

/**
 * The example files' text, gunzipped, without lines that would lock the kernel (-e 2, --loginuid-immutable) or enable
 * it.
 */
function examples(): Array<{ name: string; text: string }> {
  if (!existsSync(EXAMPLES)) return [];
  return readdirSync(EXAMPLES)
    .filter((n) => n.endsWith('.rules') || n.endsWith('.rules.gz'))
    .sort()
    .map((n) => {
      const raw = readFileSync(join(EXAMPLES, n));
      const text = n.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
      const kept = text
        .split('\n')
        .map((l) => (/^\s*(-e\b|--loginuid-immutable)/.test(l) ? '# (removed by the test)' : l));
      return { name: n.replace(/\.gz$/, ''), text: kept.join('\n') };
    });
}

const skip = kernelSkipReason() ?? (existsSync(EXAMPLES) ? undefined : `no ${EXAMPLES}`);

describe('rules: example files, our applier vs auditctl -R', { skip }, () => {
  it('prints the same auditctl -l for every example file auditctl loads', async (t) => {
    const snap = await snapshotKernel();
    if (snap.status.enabled === 2) return;
    const dir = mkdtempSync(join(tmpdir(), 'am-rules-e2e-'));
    const client = await AuditClient.open();
    const compared: string[] = [];
    const skipped: string[] = [];
    try {
      // Rules matching common syscalls would flood the kernel log while loaded: keep auditing off meanwhile.
      await client.setStatus({ enabled: 0 });
      for (const { name, text } of examples()) {
        const file = join(dir, name);
        writeFileSync(file, text);
        chmodSync(file, 0o640);
        assert.equal(auditctl('-D').status, 0);
        const real = auditctl('-R', file);
        const realList = auditctl('-l').stdout;
        assert.equal(auditctl('-D').status, 0);
        if (real.status !== 0) {
          skipped.push(`${name}: ${real.stderr.trim().split('\n').pop()}`);
          // Where auditctl names the failing line, our load must stop at the same line.
          const m = /There was an error in line (\d+) of/.exec(real.stderr);
          if (m) {
            const s = await applyRules(client, parseRules(text, file));
            assert.equal(s.stopped, true, `${name}: auditctl stopped at line ${m[1]}`);
            assert.equal(s.errors[0]?.pos?.line, Number(m[1]), `${name}: ${s.errors[0]?.message}`);
            auditctl('-D');
          }
          continue;
        }
        const summary = await applyRules(client, parseRules(text, file));
        const ourList = auditctl('-l').stdout;
        assert.equal(ourList, realList, `${name}: auditctl -l after our applier`);
        assert.equal(summary.failed, false, `${name}: ${summary.errors.map((e) => e.message).join('; ')}`);
        assert.equal(enabled(), 0, `${name} left audit enabled`);
        compared.push(name);
      }
      t.diagnostic(`compared ${compared.length}: ${compared.join(' ')}`);
      if (skipped.length) t.diagnostic(`auditctl -R refused ${skipped.length}: ${skipped.join('; ')}`);
      assert.ok(compared.length >= 10, `compared ${compared.join(', ')}; skipped ${skipped.join('; ')}`);
    } finally {
      auditctl('-D');
      // Put back rules other users had loaded (the -D lines of the examples remove them too).
      for (const r of snap.rules) {
        try {
          await client.addRule(r);
        } catch {
          // Already back or refused: restoreKernel below reports what remains different.
        }
      }
      client.close();
      await restoreKernel(snap);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
