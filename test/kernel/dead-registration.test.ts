// A daemon killed with nothing to send stays registered in the kernel; the kernel tests' snapshot frees it (a
// run killed in its kernel tier left one, and every kernel test of the next run failed); a live one still stops them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { kernelDaemonPid } from '../helpers/daemon';
import { kernelSkipReason, restoreKernel, snapshotKernel } from '../helpers/kernel';

// A process that registers as the audit daemon, says so, and then only waits (it reads what the kernel sends it).
const REGISTER = `
const { AuditClient } = require(process.argv[1]);
AuditClient.open().then(async (c) => {
  await c.setStatus({ pid: process.pid });
  process.stdout.write('registered\\n');
  setInterval(() => {}, 1000);
});
`;

async function registered(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', REGISTER, join(__dirname, '..', '..', 'src', 'kernel', 'client.js')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => (out += d));
  for (let waited = 0; !out.includes('\n'); waited += 20) {
    if (child.exitCode !== null || waited > 10000) throw new Error(`the registering process did not register: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(out.trim(), 'registered');
  return child;
}

describe('the kernel tests and a daemon registered before them (real kernel)', { skip: kernelSkipReason() }, () => {
  it('a daemon killed with nothing to send stays registered; the snapshot drops it; a live one is named', async () => {
    const snap = await snapshotKernel();
    const children: ChildProcess[] = [];
    try {
      const dead = await registered();
      children.push(dead);
      // Give kauditd time to hand the killed daemon what it had queued (its registration's CONFIG_CHANGE): a send that
      // fails after the kill is what makes the kernel forget a daemon, and this test needs one it does not forget.
      await new Promise((r) => setTimeout(r, 300));
      dead.kill('SIGKILL');
      await once(dead, 'exit');
      assert.equal(await kernelDaemonPid(), dead.pid, 'the kernel still names the killed daemon');
      await snapshotKernel();
      assert.equal(await kernelDaemonPid(), 0, 'the snapshot dropped the dead registration and released its own');

      const live = await registered();
      children.push(live);
      await assert.rejects(snapshotKernel(), (e: Error) => {
        assert.match(e.message, new RegExp(`an audit daemon \\(pid ${live.pid}, node\\) is registered`));
        return true;
      });
      assert.equal(await kernelDaemonPid(), live.pid, 'a live daemon keeps its registration');
      live.kill('SIGKILL');
      await once(live, 'exit');
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await restoreKernel(snap);
    }
  });
});
