// runc exec into a hooked runc container whose cgroup no pattern knows: the joiner and its children, by pid namespace.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
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
  detachedRunc as detached,
  execveLines,
  markedSerials,
  prepareLab,
  removeLab,
  run,
  runcBundle,
  runcHookEntry,
} from '../helpers/containers';
import { containerContid } from '../../src/contid/derive';

const K = 40;
const WAIT_MS = 20000;

describe('runc exec into a container with a custom cgroupsPath (real kernel)', { skip: skipReason() }, () => {
  it("the exec'd process and its children carry the hooked container's contid; its events only in its daemon", () =>
    withKernel(async () => {
      const lab = containerLab(tempDir('amexecj-'), 'localhost/amexecj:1', { k: K, waitMs: WAIT_MS });
      const { dir, go, sock, until, release } = lab;
      const runcId = `amexecj-${process.pid}`;
      let daemon: RunningDaemon | null = null;
      try {
        const hook = prepareLab(lab, ['sh', 'echo', 'sleep', 'cat'], ['hold']);
        const conf = writeHostConfig(dir, { controlSocket: sock });
        daemon = await startDaemon(conf);

        // A cgroup no pattern knows (not /<id>, not a runtime's layout), and the hook in config.json itself, as a
        // runc user without hooks.d would write it.
        const cgroupsPath = `/auditmux-test/${runcId}`;
        const bundle = runcBundle(lab, 'bundle', ['sleep', '600'], {
          mountGo: true,
          edit: (spec) => {
            spec.linux.cgroupsPath = cgroupsPath;
            spec.hooks = { createRuntime: [runcHookEntry(hook)], poststop: [runcHookEntry(hook)] };
          },
        });
        detached(['run', '--detach', '--bundle', bundle, runcId]);
        const contid = containerContid(runcId);
        const row = (): ReturnType<typeof containerRows>[number] | undefined =>
          containerRows(conf).find((r) => r.id === runcId);
        await until('the hook to register the container', () => row()?.state === 'live');
        assert.deepEqual([row()!.source, row()!.contid], ['hook', contid.toString()]);
        const init = (JSON.parse(run('runc', ['state', runcId]).stdout) as { pid: number }).pid;
        assert.match(
          readFileSync(`/proc/${init}/cgroup`, 'utf8'),
          new RegExp(`^0::${cgroupsPath}$|:${cgroupsPath}$`, 'm'),
        );
        assert.equal(containerRows(conf).length, 1, 'no pattern made a container of its cgroup');

        const r = cli(conf, 'aux', 'add', 'x1', '--contid', contid.toString(), '--log', join(dir, 'log', 'x1.log'));
        assert.equal(r.status, 0, r.stderr);

        // runc exec: a host runc process starts the joiner; it is no descendant of the container's init. The joiner
        // stays (on the hold FIFO) until its own events are counted.
        const marker = 'STORM-x';
        const script = `${lab.storm(marker)}; read x < /go/fifo-hold`;
        detached(['exec', '--detach', runcId, 'sh', '-c', script]);
        await until('the storm to finish', () => existsSync(join(go, `done-${marker}`)));
        const x1 = (): string => readText(join(dir, 'log', 'x1.log'));
        const host = (): string => readText(join(dir, 'log', 'audit.log'));
        await until(
          'x1 to write the storm',
          () => new Set(markedSerials(x1(), marker)).size >= K && execveLines(x1(), ['sh', '-c', script]) >= 1,
          WAIT_MS,
          () =>
            `x1 ${new Set(markedSerials(x1(), marker)).size}/${K}, host ${new Set(markedSerials(host(), marker)).size}; ` +
            `joiner's execve in x1 ${execveLines(x1(), ['sh', '-c', script])}, host ${execveLines(host(), ['sh', '-c', script])}`,
        );
        await release(join(go, 'fifo-hold'));

        run('runc', ['delete', '--force', runcId]);
        await until('the poststop hook to retire it', () => row()?.state === 'retired');
        assert.equal(await stopDaemon(daemon), 0, daemon.stderr());
        daemon = null;

        const logs = { x1: x1(), host: host() };
        // Exactly once each, in x1 only: the joiner's own execve and every child's.
        assert.equal(execveLines(logs.x1, ['sh', '-c', script]), 1, "the exec'd process");
        assert.equal(execveLines(logs.host, ['sh', '-c', script]), 0);
        const serials = markedSerials(logs.x1, marker);
        assert.equal(serials.length, K, 'every child, none twice');
        assert.equal(new Set(serials).size, K);
        assert.equal(markedSerials(logs.host, marker).length, 0, 'none in the host log');
        const cids = containerIdSerials(logs.x1, contid);
        for (const s of serials) assert.ok(cids.has(s), `event ${s} has its CONTAINER_ID record`);
        assert.match(
          logs.host,
          new RegExp(
            `op=container-birth contid=${contid} runtime=oci container="${runcId}" name="${runcId}" .*source=hook`,
          ),
        );
        assert.match(logs.host, new RegExp(`op=container-retire contid=${contid} runtime=oci .*reason=poststop`));
      } finally {
        if (daemon) await stopDaemon(daemon);
        removeLab(lab, [runcId]);
      }
    }));
});
