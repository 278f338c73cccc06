// Real runc and podman on the real kernel: hooked and hookless containers, exec joins, names, births, daemon down.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withKernel } from '../helpers/kernel';
import {
  cliPath,
  cliSync as cli,
  readText,
  repoRoot,
  startDaemon,
  stopDaemon,
  tempDir,
  writeHostConfig,
  type RunningDaemon,
} from '../helpers/daemon';
import {
  containerIdSerials,
  containerLab,
  containerRows,
  containersSkipReason as skipReason,
  detachedRunc as detached,
  markedSerials,
  podmanHeld,
  prepareLab,
  removeLab,
  run,
  runcBundle,
  type ContainerRow,
  type RuncSpec,
} from '../helpers/containers';
import { containerContid } from '../../src/contid/derive';

const K = 40;
/** How long a wait may take unless a step says otherwise. */
const WAIT_MS = 20000;

/** How many distinct events have an EXECVE record carrying the marker, and how many such lines there are. */
function marked(log: string, marker: string): { unique: number; lines: number } {
  let lines = 0;
  for (const l of log.split('\n')) if (l.startsWith('type=EXECVE ') && l.includes(`a1="${marker}"`)) lines++;
  return { unique: new Set(markedSerials(log, marker)).size, lines };
}

describe('containers on real runc and podman (real kernel)', { skip: skipReason() }, () => {
  it('two hooked podman containers, a hookless runc one, exec joins: every storm in its own daemon only; names; births; daemon down', () =>
    withKernel(async () => {
      const lab = containerLab(tempDir('amctr-'), 'localhost/amtest:1', { k: K, waitMs: WAIT_MS });
      const { dir, go, sock, pod, runArgs, podman, storm, until, release } = lab;
      const runcId = `amrunc-${process.pid}`;
      const wrappedId = `amwrap-${process.pid}`;
      let daemon: RunningDaemon | null = null;
      try {
        const hook = prepareLab(lab, ['sh', 'echo', 'sleep', 'cat', 'true', 'setsid', 'unshare'], ['c1', 'c2', 'r1']);
        // A variant of the hook that refuses the container when the daemon does not answer.
        mkdirSync(join(dir, 'hooks-closed.d'));
        writeFileSync(
          join(dir, 'hooks-closed.d', 'auditmux.json'),
          JSON.stringify({ ...hook, hook: { ...hook.hook, args: [...hook.hook.args, '--fail-closed'] } }),
        );

        // c2's daemon is routed by the container's name (podman's, read from its monitor), not by its number.
        const conf = writeHostConfig(dir, {
          controlSocket: sock,
          more: [
            'daemons:',
            `  - { name: c2, log: { file: ${join(dir, 'log', 'c2.log')} } }`,
            'routes:',
            '  - { container: { name: "am?2", runtime: [docker, podman] }, daemons: [c2] }',
          ],
        });
        daemon = await startDaemon(conf);

        // Two podman containers (the hook registers them at createRuntime) and a runc one without any hook.
        const c1 = podmanHeld(lab, 'amc1', 'c1', storm('STORM-c1'));
        const c2 = podmanHeld(lab, 'amc2', 'c2', storm('STORM-c2'));
        const bundle = runcBundle(
          lab,
          'runc-bundle',
          ['sh', '-c', `read x < /go/fifo-r1; ${storm('STORM-r1')}; exec sleep 600`],
          {
            mountGo: true,
            // Its own cgroup namespace (its processes see "/" as their cgroup), and CAP_SYS_ADMIN to make pid
            // namespaces.
            edit: (cfg) => {
              cfg.linux.namespaces.push({ type: 'cgroup' });
              for (const set of Object.values(cfg.process.capabilities)) set.push('CAP_SYS_ADMIN');
            },
          },
        );
        detached(['run', '--detach', '--bundle', bundle, runcId]);

        // docker's way in: the runc wrapper adds the hook to the bundle at create (here with runc itself as the
        // caller).
        const bundle2 = runcBundle(lab, 'wrap-bundle', ['sleep', '600']);
        const w = spawnSync(
          join(repoRoot, 'scripts', 'runc-auditmux'),
          ['--log-format', 'json', 'run', '--detach', '--bundle', bundle2, wrappedId],
          {
            stdio: 'ignore',
            timeout: 30000,
            env: { ...process.env, AUDITMUX: cliPath, AUDITMUX_HOOK_ARGS: `--socket ${sock}` },
          },
        );
        assert.equal(w.status, 0, 'runc-auditmux runs the container');
        const hooked = JSON.parse(readFileSync(join(bundle2, 'config.json'), 'utf8')) as Required<RuncSpec>;
        assert.deepEqual(
          hooked.hooks.createRuntime!.map((h) => h.args),
          [['auditmux', 'oci-hook', '--socket', sock]],
        );

        const ids = { c1: containerContid(c1), c2: containerContid(c2), r1: containerContid(runcId) };
        for (const [n, id] of Object.entries(ids)) {
          if (n === 'c2') continue;
          const r = cli(
            conf,
            'aux',
            'add',
            n,
            '--contid',
            id.toString(),
            '--log',
            join(dir, 'log', `${n}.log`),
            '--queue',
            '100000',
          );
          assert.equal(r.status, 0, r.stderr);
        }
        const rows = (): ContainerRow[] => containerRows(conf);
        await until('the runc container to be found by its cgroup', () => rows().some((r) => r.id === runcId));
        const listed = rows();
        const row = (id: string): ContainerRow => listed.find((r) => r.id === id)!;
        assert.deepEqual(
          [row(c1).name, row(c1).runtime, row(c1).source, row(c1).contid],
          ['amc1', 'podman', 'hook', ids.c1.toString()],
        );
        assert.deepEqual([row(c2).name, row(c2).runtime, row(c2).source], ['amc2', 'podman', 'hook']);
        assert.deepEqual(
          [row(runcId).name, row(runcId).runtime, row(runcId).source, row(runcId).contid],
          [runcId, 'runc', 'cgroup', ids.r1.toString()],
        );
        assert.deepEqual(
          [row(wrappedId).name, row(wrappedId).runtime, row(wrappedId).source],
          [wrappedId, 'runc', 'hook'],
          'registered by the hook the wrapper added',
        );
        // route test answers by name, or by the contid of a container the host knows.
        assert.match(cli(conf, 'route', 'test', '--name', 'amc2', '--runtime', 'podman').stdout, /^daemons: c2$/m);
        assert.match(cli(conf, 'route', 'test', '--name', 'amc2', '--runtime', 'runc').stdout, /^daemons: \(none\)$/m);
        assert.match(cli(conf, 'route', 'test', '--contid', ids.c2.toString()).stdout, /^daemons: c2$/m);
        const table = cli(conf, 'containers').stdout;
        assert.match(table, /amc1/);
        assert.match(table, new RegExp(runcId));

        // A process that joined the runc container may be given its contid (it already has it, by its cgroup); not
        // another container's.
        detached(['exec', '--detach', runcId, 'sleep', '300']);
        // `runc exec --detach` returns before its process has exec'd sleep (it is `runc init` for a moment): looked
        // for until it shows, bounded (a loaded machine missed it at once).
        const execd = (): number | undefined =>
          (JSON.parse(run('runc', ['ps', '--format', 'json', runcId]).stdout) as number[]).find(
            (p) => readText(`/proc/${p}/cmdline`) === 'sleep\0' + '300\0',
          );
        let joined = execd();
        for (let i = 0; i < 100 && joined === undefined; i++) {
          await new Promise((r) => setTimeout(r, 50));
          joined = execd();
        }
        assert.ok(joined, "the exec'd sleep");
        const j = cli(conf, 'contid', 'set', String(joined), ids.r1.toString());
        assert.equal(j.status, 0, j.stderr);
        assert.equal(j.stdout.trim(), `pid ${joined} contid ${ids.r1} (was ${ids.r1})`);
        const other = cli(conf, 'contid', 'set', String(joined), ids.c1.toString());
        assert.notEqual(other.status, 0);
        assert.match(other.stderr, new RegExp(`already has contid ${ids.r1}`));

        // The storms: each container's own, a podman exec into the first, a runc exec into the runc one.
        for (const f of ['c1', 'c2', 'r1']) await release(join(go, `fifo-${f}`));
        podman('exec', 'amc1', 'sh', '-c', storm('STORM-c1x'));
        // A new session and a double fork (the storm's shell is orphaned and reparented) change nothing.
        podman('exec', 'amc1', 'sh', '-c', `(setsid sh -c '${storm('STORM-c1d')}' &)`);
        run('runc', ['exec', runcId, 'sh', '-c', storm('STORM-r1x')]);
        // A new pid and mount namespace inside; the container's cgroup namespace shows "/" as its cgroup, but the
        // daemon
        // reads /proc/PID/cgroup in the host's namespace.
        const u = run(
          'runc',
          [
            'exec',
            runcId,
            'unshare',
            '-p',
            '-m',
            '-f',
            'sh',
            '-c',
            `cat /proc/self/cgroup > /go/unshared-cgroup; ${storm('STORM-r1u')}`,
          ],
          { allowFail: true },
        );
        assert.equal(u.status, 0, u.stderr);
        assert.match(
          readFileSync(join(go, 'unshared-cgroup'), 'utf8'),
          /^0::\/$/m,
          'inside, the cgroup namespace hides the real path',
        );
        await until('every storm to finish', () =>
          ['STORM-c1', 'STORM-c2', 'STORM-r1', 'STORM-c1x', 'STORM-c1d', 'STORM-r1x', 'STORM-r1u'].every((m) =>
            existsSync(join(go, `done-${m}`)),
          ),
        );
        const want: Record<string, string[]> = {
          c1: ['STORM-c1', 'STORM-c1x', 'STORM-c1d'],
          c2: ['STORM-c2'],
          r1: ['STORM-r1', 'STORM-r1x', 'STORM-r1u'],
        };
        const where = (): string =>
          Object.values(want)
            .flat()
            .map(
              (m) =>
                `${m}: ${['c1', 'c2', 'r1', 'audit'].map((n) => `${n}=${marked(readText(join(dir, 'log', `${n}.log`)), m).unique}`).join(' ')}`,
            )
            .join('; ');
        await until(
          'the daemons to write every storm',
          () =>
            Object.entries(want).every(([n, ms]) =>
              ms.every((m) => marked(readText(join(dir, 'log', `${n}.log`)), m).unique >= K),
            ),
          20000,
          where,
        );

        // Stopping: poststop retires the podman ones; the runc one is retired when the scan finds it gone.
        podman('rm', '-f', '-t', '0', 'amc2');
        run('runc', ['delete', '--force', runcId]);
        // c2 and r1 by name: another container (the wrapped one, once its process is gone) may retire meanwhile.
        const retired = (id: string): boolean => rows().some((r) => r.id === id && r.state === 'retired');
        await until('c2 and r1 retired', () => retired(c2) && retired(runcId), 10000);
        run('runc', ['delete', '--force', wrappedId]);
        assert.equal(await stopDaemon(daemon), 0, daemon.stderr());
        daemon = null;
        const logs = Object.fromEntries(
          ['c1', 'c2', 'r1', 'audit'].map((n) => [n, readText(join(dir, 'log', `${n}.log`))]),
        );
        for (const [n, ms] of Object.entries(want)) {
          for (const m of ms) {
            assert.deepEqual(marked(logs[n]!, m), { unique: K, lines: K }, `${n}: every ${m} event, none twice`);
            for (const other of Object.keys(logs))
              if (other !== n) assert.equal(marked(logs[other]!, m).lines, 0, `${m} never in ${other}`);
          }
          const cids = containerIdSerials(logs[n]!, ids[n as keyof typeof ids]);
          for (const m of ms)
            for (const serial of markedSerials(logs[n]!, m))
              assert.ok(cids.has(serial), `${n}: event ${serial} has its CONTAINER_ID record`);
        }
        const host = logs.audit!;
        assert.match(
          host,
          new RegExp(
            `type=CONTAINER_OP msg=audit\\([^)]*\\): op=container-birth contid=${ids.c1} runtime=podman container="${c1}" name="amc1" .*res=1`,
          ),
        );
        assert.match(
          host,
          new RegExp(
            `op=container-birth contid=${ids.r1} runtime=runc container="${runcId}" name="${runcId}" .*source=cgroup`,
          ),
        );
        const retired2 = new RegExp(
          `op=container-retire contid=${ids.c2} runtime=podman .*reason=poststop routed=(\\d+) dropped=0 res=1`,
        ).exec(host);
        // At least its storm (the fork/exit tracking events, loaded for `contid set` above, reach a daemon without
        // rules too).
        assert.ok(
          retired2 && Number(retired2[1]) >= K,
          `c2 retired at poststop with its routed events counted (${retired2?.[1]})`,
        );
        assert.match(host, new RegExp(`op=container-retire contid=${ids.r1} runtime=runc .*reason=gone`));
        const aus = run('ausearch', ['-if', join(dir, 'log', 'audit.log'), '--raw'], { allowFail: true }).stdout;
        assert.equal((aus.match(/op=container-birth/g) ?? []).length, 4, 'ausearch reads the birth records');
        assert.equal((aus.match(/op=container-retire/g) ?? []).length, 3, 'and the retirements');
        assert.match(
          host,
          new RegExp(
            `op=container-retire contid=${containerContid(wrappedId)} runtime=runc container="${wrappedId}" .*reason=poststop`,
          ),
          "runc delete ran the wrapper's poststop hook",
        );

        // The daemon is down while a container starts: the hook fails open, the container runs; once back, the daemon
        // finds it by its cgroup and routes its events.
        const closed = run(
          'podman',
          [
            ...pod.map((a) => (a === join(dir, 'hooks.d') ? join(dir, 'hooks-closed.d') : a)),
            'run',
            '-d',
            '--name',
            'amc4',
            ...runArgs,
            'localhost/amtest:1',
            'sleep',
            '600',
          ],
          { allowFail: true, timeout: 120000 },
        );
        assert.notEqual(closed.status, 0, '--fail-closed: the runtime refuses the container while the daemon is down');
        assert.notEqual(podman('ps', '--filter', 'name=amc4', '--format', '{{.State}}').stdout.trim(), 'running');
        const c3r = run(
          'podman',
          [...pod, 'run', '-d', '--name', 'amc3', ...runArgs, 'localhost/amtest:1', 'sleep', '600'],
          { allowFail: true, timeout: 120000 },
        );
        assert.equal(c3r.status, 0, `the container starts without the daemon: ${c3r.stderr}`);
        const c3 = c3r.stdout.trim();
        assert.equal(podman('inspect', '-f', '{{.State.Running}}', 'amc3').stdout.trim(), 'true');
        daemon = await startDaemon(conf);
        const r3 = cli(
          conf,
          'aux',
          'add',
          'c3',
          '--contid',
          containerContid(c3).toString(),
          '--log',
          join(dir, 'log', 'c3.log'),
        );
        assert.equal(r3.status, 0, r3.stderr);
        const row3 = rows().find((r) => r.id === c3);
        assert.deepEqual([row3?.name, row3?.source, row3?.state], ['amc3', 'cgroup', 'live']);
        podman('exec', 'amc3', 'sh', '-c', storm('STORM-c3'));
        await until('c3 storm written', () => marked(readText(join(dir, 'log', 'c3.log')), 'STORM-c3').unique >= K);
        assert.equal(await stopDaemon(daemon), 0, daemon.stderr());
        daemon = null;
        assert.deepEqual(marked(readText(join(dir, 'log', 'c3.log')), 'STORM-c3'), { unique: K, lines: K });
        assert.equal(marked(readText(join(dir, 'log', 'audit.log')), 'STORM-c3').lines, 0);
      } finally {
        if (daemon) await stopDaemon(daemon);
        removeLab(lab, [runcId, wrappedId]);
      }
    }));
});
