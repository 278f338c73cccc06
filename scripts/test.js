#!/usr/bin/env node
// Test runner: unit tier in parallel, then the kernel-touching tiers (contract, e2e) one file at a time.
'use strict';
const { spawnSync } = require('node:child_process');
const { readdirSync, statSync, existsSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..', 'dist', 'test');
function files(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const only = process.argv[2];
const tiers = only ? [only] : ['unit', 'contract', 'e2e'];
let failed = false;
for (const tier of tiers) {
  const list = files(join(root, tier));
  if (list.length === 0) continue;
  // Kernel tiers share one audit subsystem: never run two of their files at once.
  const serial = tier !== 'unit';
  const args = ['--test', `--test-concurrency=${serial ? 1 : 2}`, '--test-reporter=spec', ...list];
  console.log(`\n== ${tier}: ${list.length} file(s)${serial ? ', serial' : ''} ==`);
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', env: { ...process.env, AUDITMUX_TEST_TIER: tier } });
  if (r.status !== 0) failed = true;
}
process.exitCode = failed ? 1 : 0;
