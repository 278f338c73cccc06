#!/usr/bin/env node
// Test runner: the tiers by what a test needs (nothing, real peer programs, the kernel), each its own way.
'use strict';
const { spawnSync } = require('node:child_process');
const { readdirSync, statSync, existsSync } = require('node:fs');
const { join, relative } = require('node:path');

const repo = join(__dirname, '..');
const FLOCK = '/usr/bin/flock';
const KERNEL_LOCK = '/tmp/auditmux-kernel.lock';
// unit: no kernel, no peer program, parallel. peer: real rsyslogd, auditd as an aggregator, audisp plugins, laurel,
// ausearch/aureport, Chromium, nats-server; parallel with each other (loopback ports, private dirs), two at a time on
// a 2-core machine. kernel: NETLINK_AUDIT of this machine (the real daemon, the real kernel contract suite): only one
// process may be the audit daemon, so one file at a time.
const TIERS = {
  unit: { concurrency: 2 },
  peer: { concurrency: 2 },
  kernel: { concurrency: 1 },
};

/** The compiled files of a tier, found from the sources: a test moved or deleted leaves a stale .js in dist/. */
function files(tier) {
  const src = join(repo, 'test', tier);
  const out = [];
  const walk = (dir) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.test.ts')) {
        const js = join(repo, 'dist', relative(repo, p)).replace(/\.ts$/, '.js');
        if (!existsSync(js)) throw new Error(`${relative(repo, p)} is not built (npm run build:ts)`);
        out.push(js);
      }
    }
  };
  walk(src);
  return out;
}

const only = process.argv[2];
if (only !== undefined && !(only in TIERS)) {
  console.error(`usage: node scripts/test.js [${Object.keys(TIERS).join('|')}]`);
  process.exitCode = 2;
} else {
  let failed = false;
  for (const tier of only ? [only] : Object.keys(TIERS)) {
    const list = files(tier);
    if (list.length === 0) continue;
    const { concurrency } = TIERS[tier];
    const args = ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...list];
    console.log(
      `\n== ${tier}: ${list.length} file(s)${concurrency === 1 ? ', serial' : `, ${concurrency} at a time`} ==`,
    );
    const env = { ...process.env, AUDITMUX_TEST_TIER: tier };
    // The kernel tier holds the host's audit lock for its whole run (flock(1), which benches and single kernel tests
    // take too): a benchmark or another checkout's tests registering a daemon meanwhile would fail every test.
    const locked = tier === 'kernel' && existsSync(FLOCK);
    const r = locked
      ? spawnSync(FLOCK, [KERNEL_LOCK, process.execPath, ...args], { stdio: 'inherit', env })
      : spawnSync(process.execPath, args, { stdio: 'inherit', env });
    if (r.status !== 0) failed = true;
  }
  process.exitCode = failed ? 1 : 0;
}
