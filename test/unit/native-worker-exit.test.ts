// A worker thread that is the only one to have loaded the addon, and exits with its socket open: Node unloads the
// addon after the worker's cleanup hooks, and libuv close callbacks still pending then ran in unmapped code (SIGSEGV,
// exit 139). The addon's async cleanup hook holds the teardown until they have run. Opening a NETLINK_AUDIT socket
// needs no privilege and nothing is sent.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ADDON = join(__dirname, '..', '..', '..', 'build', 'Release', 'auditmux_netlink.node');

// argv: addon, how (exit | terminate), coalesceMs, close first (0/1). The main thread never loads the addon.
const SCRIPT = `
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const [addon, how, coalesce, closeFirst] = process.argv.slice(1);
const code = \`
  const { parentPort, workerData } = require('node:worker_threads');
  const a = new (require(workerData.addon).AuditNetlink)({});
  a.start(() => {}, { coalesceMs: workerData.coalesce });
  if (workerData.closeFirst) a.close();
  if (workerData.how === 'exit') process.exit(0);
  parentPort.postMessage('started');
\`;
let left = 3;
const run = () => {
  const w = new Worker(code, { eval: true, workerData: { addon, how, coalesce: +coalesce, closeFirst: closeFirst === '1' } });
  w.on('message', () => void w.terminate());
  w.on('error', (e) => { console.error(e); process.exitCode = 2; });
  w.on('exit', () => { if (--left > 0) run(); else setTimeout(() => console.log('main alive'), 100); });
};
run();
`;

describe('native socket in a worker thread that exits', () => {
  for (const how of ['exit', 'terminate'] as const) {
    for (const coalesce of [0, 2]) {
      for (const closeFirst of [false, true]) {
        const name = `${how === 'exit' ? 'process.exit() in the worker' : 'worker.terminate()'}, coalesceMs ${coalesce}${
          closeFirst ? ', close() just before' : ''
        }: the process exits 0, not on SIGSEGV`;
        it(name, () => {
          assert.ok(existsSync(ADDON), `${ADDON}: run npm run build`);
          const r = spawnSync(process.execPath, ['-e', SCRIPT, ADDON, how, String(coalesce), closeFirst ? '1' : '0'], {
            encoding: 'utf8',
            timeout: 30000,
          });
          assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
          assert.equal(r.status, 0, r.stderr);
          assert.equal(r.stdout.trim(), 'main alive');
        });
      }
    }
  }
});
