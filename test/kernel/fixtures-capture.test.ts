// test/fixtures/records/capture.sh against the real kernel and auditd: it deletes only its own keyed rules, so the
// machine's other rules survive a capture, and it refuses to run when rules with its key already exist.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelSkipReason, withKernel } from '../helpers/kernel';

const SCRIPT = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'records', 'capture.sh');
const CANARY = ['-a', 'always,exit', '-F', 'arch=b64', '-S', 'getpid', '-F', 'exe=/usr/bin/true', '-k', 'amcanary'];

function auditctl(...args: string[]): string {
  const r = spawnSync('auditctl', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `auditctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const skip =
  kernelSkipReason() ??
  (['/usr/sbin/auditd', '/usr/bin/python3.11', '/usr/bin/setpriv'].find((p) => !existsSync(p)) &&
    'needs auditd, python3.11 and setpriv');

describe('fixtures capture script', { skip }, () => {
  it("captures with the machine's other rules in place and leaves them there", async () => {
    const out = mkdtempSync(join(tmpdir(), 'amcapture-out-'));
    try {
      await withKernel(async () => {
        auditctl(...CANARY);
        const before = auditctl('-l');
        assert.match(before, /key=amcanary/);
        const r = spawnSync('bash', [SCRIPT, out], { encoding: 'utf8', timeout: 120_000 });
        assert.equal(r.status, 0, r.stderr);
        assert.doesNotMatch(r.stderr, /WARNING/);
        assert.equal(auditctl('-l'), before, 'the rules are as they were');
        const raw = readFileSync(join(out, 'auditd-RAW.log'), 'latin1');
        assert.match(raw, /key="amtest"/, 'the capture itself worked');
        assert.ok(readFileSync(join(out, 'kernel-ENRICHED.jsonl'), 'latin1').length > 0);
      });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('refuses to run when rules with its key exist, and leaves them', async () => {
    const out = mkdtempSync(join(tmpdir(), 'amcapture-out-'));
    try {
      await withKernel(async () => {
        auditctl('-a', 'always,exit', '-F', 'arch=b64', '-S', 'getpid', '-F', 'exe=/usr/bin/true', '-k', 'amtest');
        const before = auditctl('-l');
        const r = spawnSync('bash', [SCRIPT, out], { encoding: 'utf8', timeout: 120_000 });
        assert.equal(r.status, 1);
        assert.match(r.stderr, /rules with key amtest already exist; refusing/);
        assert.equal(auditctl('-l'), before);
      });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
