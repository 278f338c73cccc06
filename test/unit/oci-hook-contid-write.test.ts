// The OCI hook on a kernel with the contid patch set (emulated): it writes the daemon's contid to
// PROC/PID/audit_containerid (a temporary proc root the emulated kernel reads), in one write, never creating the file;
// on mainline (no PROC/self/audit_containerid) it writes nothing; a refused write fails open, or closed on request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { EmulatedKernel } from '../helpers/emulated-kernel';
import { emulatedHostOptions } from '../helpers/emulated-contid-source';
import { until } from '../helpers/emulated-host';
import { HostDaemon } from '../../src/daemon/host';
import { runOciHook } from '../../src/cli/oci-hook';
import { containerContid, containerKey } from '../../src/contid/derive';

const UNSET = '18446744073709551615';
const EXE = '/usr/bin/am-hookwrite';

async function hook(
  socket: string,
  procRoot: string,
  state: object,
  failClosed = false,
): Promise<{ code: number; out: string; err: string }> {
  const stdin = new PassThrough();
  let out = '';
  let err = '';
  const p = runOciHook({
    socket,
    timeoutMs: 5000,
    failClosed,
    stdin,
    procRoot,
    out: (s) => (out += s + '\n'),
    err: (s) => (err += s + '\n'),
  });
  stdin.end(JSON.stringify(state));
  return { code: await p, out, err };
}

test('oci-hook on a patched kernel: audit_containerid written with the contid, the kernel tags the init', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'am-hookwrite-'));
  const kernel = new EmulatedKernel({ ackOrder: 'random', contid: true });
  writeFileSync(join(dir, 'host.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${EXE} -k hookw\n`);
  const sock = join(dir, 'control.sock');
  writeFileSync(
    join(dir, 'auditmux.yaml'),
    [
      'host:',
      `  rules: ${dir}/host.rules`,
      `  log: { file: ${dir}/audit.log, format: RAW }`,
      `  control_socket: ${sock}`,
    ].join('\n') + '\n',
  );
  const daemon = new HostDaemon({
    configPath: join(dir, 'auditmux.yaml'),
    diag: pino({ level: 'silent' }),
    ...emulatedHostOptions(kernel),
  });
  // The container's init: a real process (the daemon checks /proc for it), in the emulated task tree under the runtime.
  const init = spawn('sleep', ['30'], { stdio: 'ignore' });
  const RUNTIME = 4242500;
  const proc = join(dir, 'proc');
  try {
    await daemon.start();
    kernel.spawn(1, 0);
    kernel.spawn(RUNTIME, 1, { exe: '/usr/sbin/runc' });
    kernel.spawn(init.pid!, RUNTIME, { exe: EXE });
    // The patch set's files: self's says the interface exists; the init's holds "unset" until written.
    for (const d of ['self', String(init.pid)]) {
      mkdirSync(join(proc, d), { recursive: true });
      writeFileSync(join(proc, d, 'audit_containerid'), UNSET);
    }
    const id = 'c'.repeat(64);
    const r = await hook(sock, proc, {
      id,
      status: 'creating',
      pid: init.pid,
      bundle: '/nonexistent',
      annotations: {},
    });
    assert.equal(r.code, 0, r.err);
    const want = containerContid(containerKey('oci', id));
    const written = readFileSync(join(proc, String(init.pid), 'audit_containerid'), 'latin1');
    assert.equal(written, want.toString(), 'the decimal contid, alone, in one write');
    assert.match(r.out, new RegExp(`audit_containerid set to ${want}`));
    // The emulated kernel takes the written value as procfs would, from a writer the patch set allows (the init's
    // ancestor, the runtime): the init is tagged and its events carry the contid.
    kernel.setContid(RUNTIME, init.pid!, BigInt(written));
    kernel.emitEvent(init.pid!, 'getppid', 0);
    const logged = new RegExp(`^type=CONTAINER_ID .*contid=${want}$`, 'm');
    await until(
      () => existsSync(join(dir, 'audit.log')) && logged.test(readFileSync(join(dir, 'audit.log'), 'latin1')),
      'the CONTAINER_ID record in the host log',
    );

    // Mainline: no PROC/self/audit_containerid, nothing written.
    const mainline = join(dir, 'proc-mainline');
    mkdirSync(join(mainline, String(init.pid)), { recursive: true });
    writeFileSync(join(mainline, String(init.pid), 'audit_containerid'), UNSET);
    const m = await hook(sock, mainline, { id: 'd'.repeat(64), status: 'creating', pid: init.pid, annotations: {} });
    assert.equal(m.code, 0);
    assert.equal(readFileSync(join(mainline, String(init.pid), 'audit_containerid'), 'latin1'), UNSET);

    // The init's file missing (the pid is gone): never created; open by default, refused with --fail-closed.
    const gone = join(dir, 'proc-gone');
    mkdirSync(join(gone, 'self'), { recursive: true });
    writeFileSync(join(gone, 'self', 'audit_containerid'), UNSET);
    const st = { id: 'e'.repeat(64), status: 'creating', pid: init.pid, annotations: {} };
    const open = await hook(sock, gone, st);
    assert.equal(open.code, 0);
    assert.match(open.err, /cannot open .*audit_containerid \(ENOENT\).*failing open/);
    assert.equal(existsSync(join(gone, String(init.pid))), false, 'nothing created');
    const closed = await hook(sock, gone, st, true);
    assert.notEqual(closed.code, 0);
    assert.match(closed.err, /--fail-closed/);
  } finally {
    await daemon.stop();
    init.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
