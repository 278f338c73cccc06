// Issue 11's acceptance on the real kernel with real podman and runc: a daemon template makes one daemon per
// container on its first event; every exec storm lands, exactly, in its own tenant's log; births, retirements, names;
// and a container started while the host daemon is down is recognised by its cgroup and routed once it is back.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { withKernel } from '../helpers/kernel';
import {
  cliSync as cli,
  readText,
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
  markedSerials,
  podmanHeld,
  prepareLab,
  removeLab,
  run,
  runcBundle,
  type ContainerRow,
} from '../helpers/containers';
import { containerContid } from '../../src/contid/derive';

/** Execs per storm: each storm's count is known exactly, and each is told apart by its marker argument. */
const K = 50;
/** How long a wait may take unless a step says otherwise. */
const WAIT_MS = 30000;

describe('issue 11 acceptance: daemon templates on real podman and runc (real kernel)', { skip: skipReason() }, () => {
  it('a template makes each tenant its daemon; every storm exactly in its own log; names, births, retirements; daemon down at start', () =>
    withKernel(async () => {
      const lab = containerLab(tempDir('amacc-'), 'localhost/amacc:1', { k: K, waitMs: WAIT_MS });
      const { dir, go, sock, pod, runArgs, podman, storm, until, release } = lab;
      const runcId = `amacc-${process.pid}`;
      const tenants = join(dir, 'tenants');
      /** The log of a template daemon: `{value}` in the pattern is the container's name. */
      const tenantLog = (name: string): string => join(tenants, name.replace(/^tenant-/, ''), 'audit.log');
      const hostLog = join(dir, 'log', 'audit.log');
      let daemon: RunningDaemon | null = null;
      try {
        prepareLab(lab, ['sh', 'echo', 'sleep', 'cat', 'true'], ['c1', 'c2', 'r1']);

        // No daemon and no route in the file: the template alone makes one daemon per container name.
        const conf = writeHostConfig(dir, {
          controlSocket: sock,
          more: [
            'daemon_templates:',
            '  - name: tenant',
            '    key: name',
            '    max: 8',
            `    log: { file: "${tenants}/{value}/audit.log", format: RAW }`,
            '    queue: { depth: 100000 }',
          ],
        });
        daemon = await startDaemon(conf);

        // Two podman containers registered by the hook at createRuntime, and a runc one without any hook.
        const c1 = podmanHeld(lab, 'amc1', 'c1', storm('STORM-c1'));
        const c2 = podmanHeld(lab, 'amc2', 'c2', storm('STORM-c2'));
        const bundle = runcBundle(
          lab,
          'runc-bundle',
          ['sh', '-c', `read x < /go/fifo-r1; ${storm('STORM-r1')}; exec sleep 600`],
          { mountGo: true },
        );
        const r = spawnSync('runc', ['run', '--detach', '--bundle', bundle, runcId], {
          stdio: 'ignore',
          timeout: 30000,
        });
        assert.equal(r.status, 0, 'runc runs the hookless container');

        const ids = { c1: containerContid(c1), c2: containerContid(c2), r1: containerContid(runcId) };
        const daemonOf = { c1: 'tenant-amc1', c2: 'tenant-amc2', r1: `tenant-${runcId}` };
        const rows = (): ContainerRow[] => containerRows(conf);
        await until('the runc container to be found by its cgroup', () => rows().some((x) => x.id === runcId));
        const listed = rows();
        const row = (id: string): ContainerRow => listed.find((x) => x.id === id)!;
        assert.deepEqual([row(c1).name, row(c1).source, row(c1).contid], ['amc1', 'hook', ids.c1.toString()]);
        assert.deepEqual([row(c2).name, row(c2).source], ['amc2', 'hook']);
        assert.deepEqual([row(runcId).name, row(runcId).runtime, row(runcId).source], [runcId, 'runc', 'cgroup']);
        const table = cli(conf, 'containers').stdout;
        for (const n of ['amc1', 'amc2', runcId]) assert.match(table, new RegExp(n), `auditmux containers names ${n}`);
        // route test says which daemon a name would get, and makes none.
        assert.match(cli(conf, 'route', 'test', '--name', 'amc9').stdout, /^daemons: tenant-amc9$/m);

        // The storms: each container's own, and a podman exec into the first.
        for (const f of ['c1', 'c2', 'r1']) await release(join(go, `fifo-${f}`));
        podman('exec', 'amc1', 'sh', '-c', storm('STORM-c1x'));
        const want: Record<keyof typeof ids, string[]> = {
          c1: ['STORM-c1', 'STORM-c1x'],
          c2: ['STORM-c2'],
          r1: ['STORM-r1'],
        };
        const markers = Object.values(want).flat();
        await until('every storm to finish', () => markers.every((m) => existsSync(join(go, `done-${m}`))));
        const where = (): string =>
          markers
            .map((m) => `${m}: ${Object.values(daemonOf).map((d) => markedSerials(readText(tenantLog(d)), m).length)}`)
            .join('; ') +
          ` host: ${markers.map((m) => markedSerials(readText(hostLog), m).length)}; ${cli(conf, 'status')
            .stdout.split('\n')
            .filter((l) => /^(templates|aux|routing)\./.test(l))
            .join(' | ')}`;
        await until(
          'the tenant daemons to write every storm',
          () =>
            (Object.keys(want) as Array<keyof typeof ids>).every((n) =>
              want[n].every((m) => markedSerials(readText(tenantLog(daemonOf[n])), m).length >= K),
            ),
          30000,
          where,
        );
        const aux = JSON.parse(cli(conf, 'aux', 'list', '--json').stdout) as Array<Record<string, unknown>>;
        assert.deepEqual(
          aux.map((a) => [a.name, a.template, a.templateValue]).sort(),
          [
            ['tenant-amc1', 'tenant', 'amc1'],
            ['tenant-amc2', 'tenant', 'amc2'],
            [`tenant-${runcId}`, 'tenant', runcId],
          ].sort(),
          'aux list shows the template daemons with their template',
        );
        // status shows each template's counters and daemons (flattened `name value` lines).
        const status = cli(conf, 'status').stdout;
        for (const line of [
          'templates.tenant.active 3',
          'templates.tenant.created 3',
          'templates.tenant.unroutedEvents 0',
          'templates.tenant.daemons.tenant-amc1.value amc1',
          'aux.tenant-amc2.template tenant',
        ])
          assert.ok(status.split('\n').includes(line), `status has "${line}"`);

        // Stopping all three: poststop retires the podman ones; the runc one is retired when the scan finds it gone.
        podman('rm', '-f', '-t', '0', 'amc1');
        podman('rm', '-f', '-t', '0', 'amc2');
        run('runc', ['delete', '--force', runcId]);
        await until('retirements', () => rows().filter((x) => x.state === 'retired').length === 3, 15000);
        assert.equal(await stopDaemon(daemon), 0, daemon.stderr());
        daemon = null;

        const logs: Record<string, string> = Object.fromEntries(
          Object.values(daemonOf).map((d) => [d, readText(tenantLog(d))]),
        );
        const host = readText(hostLog);
        logs.host = host;
        for (const n of Object.keys(want) as Array<keyof typeof ids>) {
          const own = logs[daemonOf[n]]!;
          const cids = containerIdSerials(own, ids[n]);
          for (const m of want[n]) {
            const serials = markedSerials(own, m);
            assert.equal(serials.length, K, `${daemonOf[n]}: every ${m} event`);
            assert.equal(new Set(serials).size, K, `${daemonOf[n]}: no ${m} event twice`);
            for (const s of serials) assert.ok(cids.has(s), `${daemonOf[n]}: event ${s} has its CONTAINER_ID record`);
            for (const [other, text] of Object.entries(logs))
              if (other !== daemonOf[n]) assert.equal(markedSerials(text, m).length, 0, `${m} never in ${other}`);
          }
        }
        // Exactly one birth and one retirement each, and nothing else's.
        const ops = (text: string, op: string): string[] =>
          [...text.matchAll(new RegExp(`op=container-${op} contid=(\\d+) `, 'g'))].map((m) => m[1]!).sort();
        const all = Object.values(ids)
          .map((i) => i.toString())
          .sort();
        assert.deepEqual(ops(host, 'birth'), all, 'three births');
        assert.deepEqual(ops(host, 'retire'), all, 'three retirements');
        for (const [n, id] of Object.entries(ids))
          assert.match(host, new RegExp(`op=container-birth contid=${id} runtime=\\w+ container="[^"]+" `), n);
        assert.match(host, new RegExp(`op=container-retire contid=${ids.c1} runtime=podman .*reason=poststop`));
        assert.match(host, new RegExp(`op=container-retire contid=${ids.c2} runtime=podman .*reason=poststop`));
        assert.match(host, new RegExp(`op=container-retire contid=${ids.r1} runtime=runc .*reason=gone`));
        // auditd's own reader takes them (ausearch 3.0.9 has no name for type 1020 in -m, so all records are read).
        const aus = run('ausearch', ['-if', hostLog, '--raw'], { allowFail: true }).stdout;
        assert.deepEqual(ops(aus, 'birth'), all, 'ausearch reads the three births');
        assert.deepEqual(ops(aus, 'retire'), all, 'ausearch reads the three retirements');
        assert.match(host, /op=template-add template=tenant key="name" value="amc1" daemon=tenant-amc1 /);

        // The host daemon is down while a container starts: the hook fails open and the container runs; once the
        // daemon is back it finds the container by its cgroup, and the template gives it its daemon.
        const c3r = run(
          'podman',
          [...pod, 'run', '-d', '--name', 'amc3', ...runArgs, 'localhost/amacc:1', 'sleep', '600'],
          { allowFail: true, timeout: 120000 },
        );
        assert.equal(c3r.status, 0, `the container starts without the daemon: ${c3r.stderr}`);
        const c3 = c3r.stdout.trim();
        assert.equal(podman('inspect', '-f', '{{.State.Running}}', 'amc3').stdout.trim(), 'true');
        assert.ok(existsSync(join(dir, 'oci-hook.failures')), 'the failing hook left its failure for the daemon');
        daemon = await startDaemon(conf);
        const row3 = rows().find((x) => x.id === c3);
        assert.deepEqual([row3?.name, row3?.source, row3?.state], ['amc3', 'cgroup', 'live']);
        podman('exec', 'amc3', 'sh', '-c', storm('STORM-c3'));
        await until('the c3 storm', () => markedSerials(readText(tenantLog('tenant-amc3')), 'STORM-c3').length >= K);
        // The hook that failed open while the daemon was down is counted and logged once the daemon is back.
        await until('the hook failure reported', () =>
          readText(hostLog).includes(`op=container-hook-failure container="${c3}" `),
        );
        assert.ok(cli(conf, 'status').stdout.split('\n').includes('containers.hookFailures 1'), 'status counts it');
        assert.match(cli(conf, 'containers').stdout, /^oci-hook failures: 1; /m, 'and the containers table says so');
        assert.equal(await stopDaemon(daemon), 0, daemon.stderr());
        daemon = null;
        const log3 = readText(tenantLog('tenant-amc3'));
        const s3 = markedSerials(log3, 'STORM-c3');
        assert.deepEqual([s3.length, new Set(s3).size], [K, K], 'every c3 event once');
        const cid3 = containerIdSerials(log3, containerContid(c3));
        for (const s of s3) assert.ok(cid3.has(s), `c3 event ${s} has its CONTAINER_ID record`);
        assert.equal(markedSerials(readText(hostLog), 'STORM-c3').length, 0, 'none in the host log');
        assert.match(readText(hostLog), new RegExp(`op=container-birth contid=${containerContid(c3)} .*source=cgroup`));
        const fail = new RegExp(
          `op=container-hook-failure container="${c3}" opid=\\d+ phase=create hook-mode=open .*res=0`,
        );
        assert.match(readText(hostLog), fail);
        const aus3 = run('ausearch', ['-if', hostLog, '--raw'], { allowFail: true }).stdout;
        assert.match(aus3, fail, 'ausearch reads the hook failure record');
      } finally {
        if (daemon) await stopDaemon(daemon);
        removeLab(lab, [runcId]);
      }
    }));
});
