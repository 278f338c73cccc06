// priority_boost on the real kernel: the daemon started at nice 0 runs every thread, and its aux process, at -4.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernelSkipReason, withKernel } from '../helpers/kernel';
import { cli, startDaemon, stopDaemon, tempDir, writeHostConfig } from '../helpers/daemon';
import { waitFor } from '../helpers/peers';

/** The nice value of every thread of `pid` (field 19 of /proc/PID/task/TID/stat, after the comm's ')'). */
function threadNices(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

test(
  'priority_boost: every thread of the daemon and of its aux process at nice -4 by default; 0 leaves nice 0',
  {
    skip: kernelSkipReason(),
  },
  () =>
    withKernel(async () => {
      const dir = tempDir('ampriority-');
      try {
        writeFileSync(join(dir, 'host.rules'), '');
        for (const [extra, want] of [
          [[], -4],
          [['  priority_boost: 0'], 0],
        ] as const) {
          const conf = writeHostConfig(dir, {
            more: [
              ...extra,
              'daemons:',
              `  - { name: a, log: { file: ${join(dir, 'log', 'a.log')} }, isolation: process }`,
              'routes:',
              '  - { contid: 100, daemons: [a] }',
            ],
          });
          const d = await startDaemon(conf);
          try {
            let auxPid = 0;
            await waitFor(
              async () => {
                const r = await cli(conf, 'aux', 'list', '--json');
                auxPid =
                  (JSON.parse(r.stdout || '[]') as { name: string; pid: number; state: string }[]).find(
                    (x) => x.name === 'a' && x.state === 'running',
                  )?.pid ?? 0;
                return auxPid > 0;
              },
              30000,
              'aux daemon a running',
            );
            const host = threadNices(d.child.pid!);
            assert.ok(host.length >= 5, `the daemon has its threads: ${host.length}`);
            assert.deepEqual([...new Set(host)], [want], `daemon threads at nice ${want}`);
            assert.deepEqual([...new Set(threadNices(auxPid))], [want], `aux process threads at nice ${want}`);
          } finally {
            assert.equal(await stopDaemon(d), 0, d.stderr());
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }),
);
