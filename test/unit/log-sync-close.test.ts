// Closing one log's slot in the fsync thread waits for that log's own sync only: a log on a file system that hangs
// must not hold another log's rotation or close, which run on the event loop. The hang is made real by an LD_PRELOAD
// shim whose fsync of one file waits on a FIFO until the test lets it go.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ADDON = join(__dirname, '..', '..', '..', 'build', 'Release', 'auditmux_netlink.node');

// fsync of a file whose path ends in AM_HOLD creates AM_ENTERED, then waits for a byte on the FIFO AM_GATE.
const SHIM = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  const char* hold = getenv("AM_HOLD");
  const char* gate = getenv("AM_GATE");
  const char* entered = getenv("AM_ENTERED");
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n > 0 && hold && gate && entered) {
    path[n] = 0;
    size_t l = strlen(hold);
    if ((size_t)n >= l && strcmp(path + n - l, hold) == 0) {
      int e = open(entered, O_CREAT | O_WRONLY, 0600);
      if (e >= 0) close(e);
      int g = open(gate, O_RDONLY);
      char c;
      if (g >= 0) {
        if (read(g, &c, 1) < 0) {}
        close(g);
      }
    }
  }
  return real(fd);
}
`;

// Two logs synced in one round, the slow one first; once its fsync hangs, the fast one is closed.
const CHILD = `
const fs = require('fs');
const a = require(process.argv[1]);
const dir = process.argv[2];
const slow = fs.openSync(dir + '/slow.log', 'a');
const fast = fs.openSync(dir + '/fast.log', 'a');
fs.writeSync(slow, 'x\\n');
fs.writeSync(fast, 'y\\n');
const s1 = a.syncOpen(slow);
const s2 = a.syncOpen(fast);
a.syncRequest(s1);
a.syncRequest(s2);
const pause = new Int32Array(new SharedArrayBuffer(4));
const t0 = Date.now();
while (!fs.existsSync(dir + '/entered')) {
  if (Date.now() - t0 > 10000) { console.log('never entered'); process.exit(3); }
  Atomics.wait(pause, 0, 0, 5);
}
const r = a.syncClose(s2);
console.log(JSON.stringify({ closed: r }));
const r1 = a.syncClose(s1);
console.log(JSON.stringify({ slow: r1 }));
`;

const skip =
  spawnSync('cc', ['--version']).status === 0 && spawnSync('mkfifo', ['--version']).status === 0
    ? undefined
    : 'needs cc and mkfifo';

describe('log sync thread: closing a slot', { skip }, () => {
  it("closes a log at once while another log's fsync in the same round hangs", async () => {
    assert.ok(existsSync(ADDON), `${ADDON}: run npm run build`);
    const dir = mkdtempSync(join(tmpdir(), 'auditmux-syncclose-'));
    try {
      writeFileSync(join(dir, 'shim.c'), SHIM);
      execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', join(dir, 'shim.so'), join(dir, 'shim.c'), '-ldl']);
      const gate = join(dir, 'gate');
      execFileSync('mkfifo', [gate]);
      const env = {
        ...process.env,
        LD_PRELOAD: join(dir, 'shim.so'),
        AM_HOLD: '/slow.log',
        AM_GATE: gate,
        AM_ENTERED: join(dir, 'entered'),
      };
      const child = spawn(process.execPath, ['-e', CHILD, ADDON, dir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      // The fast log's close answers while the slow fsync still hangs (old: it waited for that fsync, for good).
      const t0 = Date.now();
      while (!out.includes('"closed"') && !out.includes('never entered') && Date.now() - t0 < 10_000)
        await new Promise((r) => setTimeout(r, 20));
      const closedWhileHung = out.includes('"closed"');
      // Let the slow fsync go either way, so the child can finish.
      const g = openSync(gate, 'w');
      writeSync(g, 'g');
      closeSync(g);
      const code = await exited;
      assert.ok(closedWhileHung, `the fast log's close waited for the slow log's fsync: ${out} ${err}`);
      assert.equal(code, 0, err);
      const lines = out.trim().split('\n');
      assert.deepEqual(JSON.parse(lines[0]!), { closed: [1, 0] }, 'its own sync ran, at the close');
      assert.deepEqual(JSON.parse(lines[1]!), { slow: [1, 0] }, "the slow log's sync completed and was counted");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
