// runDaemon (the foreground daemon: signals, readiness, watchdog) on an emulated kernel, its start held at the first
// rule it loads: a signal that comes while the daemon starts is acted on once the start settles, never Node's
// default (the process ended at once, the kernel half set up: registered, settings applied, nothing restored).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDaemon } from '../../src/daemon/run';
import { SignalGate } from '../../src/daemon/sd-notify';
import { MsgType } from '../../src/kernel/constants';
import type { AuditSocket, BatchHandler } from '../../src/kernel/socket';
import type { KernelError } from '../../src/errors';
import { EmulatedKernel, type EmulatedAuditSocket } from '../helpers/emulated-kernel';
import { listenNotify, type NotifyListener } from '../helpers/notify-socket';

const top = mkdtempSync(join(tmpdir(), 'amrun-'));
after(() => rmSync(top, { recursive: true, force: true }));

/** An emulated kernel socket that holds back the requests of one type until release(): a start paused there. */
class HoldingSocket implements AuditSocket {
  private held: Buffer[] = [];
  private holding = true;
  private reach!: () => void;
  /** Resolves when the first held request was sent. */
  readonly reached = new Promise<void>((r) => (this.reach = r));

  constructor(
    private readonly inner: EmulatedAuditSocket,
    private readonly type: number,
  ) {}

  get portId(): number {
    return this.inner.portId;
  }

  send(msg: Buffer): void {
    if (this.holding && msg.readUInt16LE(4) === this.type) {
      this.held.push(msg);
      this.reach();
      return;
    }
    this.inner.send(msg);
  }

  release(): void {
    this.holding = false;
    for (const m of this.held.splice(0)) this.inner.send(m);
  }

  start(onBatch: BatchHandler, _onError: (e: KernelError) => void): void {
    this.inner.start(onBatch);
  }

  stop(): void {
    this.inner.stop();
  }

  close(): void {
    this.inner.close();
  }
}

interface Harness {
  dir: string;
  kernel: EmulatedKernel;
  socket: HoldingSocket;
  notify: NotifyListener;
  run: Promise<number>;
  settled: () => boolean;
  log: () => string;
  /** Ends the daemon whatever state it is in (the test failed half way): lets the start go on, then stops it. */
  end: () => Promise<void>;
}

let n = 0;
async function start(env: Record<string, string> = {}, signals?: SignalGate): Promise<Harness> {
  const dir = mkdtempSync(join(top, 'd-'));
  writeFileSync(join(dir, 'host.rules'), '-a always,exit -F arch=b64 -S getppid -k amrun\n');
  writeFileSync(
    join(dir, 'auditmux.yaml'),
    [
      'host:',
      '  priority_boost: 0',
      '  kernel: { enabled: 1, failure: 2 }',
      `  rules: ${dir}/host.rules`,
      `  log: { file: ${dir}/audit.log, format: RAW }`,
      `  control_socket: ${dir}/control.sock`,
    ].join('\n') + '\n',
  );
  const kernel = new EmulatedKernel({ ackOrder: 'ack-first' });
  const socket = new HoldingSocket(kernel.socket(), MsgType.ADD_RULE);
  const notify = await listenNotify(join(dir, `notify-${n++}.sock`));
  Object.assign(process.env, { NOTIFY_SOCKET: notify.path }, env);
  let done = false;
  const run = runDaemon({
    configPath: join(dir, 'auditmux.yaml'),
    logLevel: 'silent',
    socket,
    ...(signals ? { signals } : {}),
  });
  void run.finally(() => (done = true));
  const log = (): string => readFileSync(join(dir, 'audit.log'), 'utf8');
  const end = async (): Promise<void> => {
    if (!done) {
      socket.release();
      await notify.waitFor((m) => m.split('\n').includes('READY=1')).catch(() => undefined);
      process.emit('SIGTERM');
      await run;
    }
    await notify.close();
  };
  return { dir, kernel, socket, notify, run, settled: () => done, log, end };
}

const READY = (m: string): boolean => m.split('\n').includes('READY=1');

describe('runDaemon: signals while the daemon starts (emulated kernel)', () => {
  it('SIGTERM (and a SIGHUP) during start: stopped once start settles, the kernel restored, no READY', async () => {
    const before = process.listenerCount('SIGTERM');
    const h = await start();
    try {
      await h.socket.reached;
      assert.equal(h.kernel.status.pid, process.pid, 'precondition: registered, start paused at the rules');
      assert.ok(process.listenerCount('SIGTERM') > before, 'a SIGTERM handler while starting');
      assert.ok(process.listenerCount('SIGHUP') > 0, 'a SIGHUP handler while starting');
      process.emit('SIGHUP');
      process.emit('SIGTERM');
      h.socket.release();
      assert.equal(await h.run, 0);
      assert.equal(h.kernel.rules.length, 0, 'the rules loaded during start are removed');
      assert.equal(h.kernel.status.enabled, 0);
      assert.equal(h.kernel.status.failure, 1);
      assert.equal(h.kernel.status.pid, 0, 'the kernel names no daemon');
      const lines = h.log().trimEnd().split('\n');
      assert.match(lines.at(-1) ?? '', /type=DAEMON_END /);
      assert.ok(!lines.some((l) => l.includes('type=DAEMON_CONFIG')), 'no reload after a stop');
      await h.notify.waitFor((m) => m === 'STOPPING=1');
      assert.ok(!h.notify.messages.some(READY), 'systemd never hears READY');
      assert.equal(process.listenerCount('SIGTERM'), before, 'the handlers are gone with the daemon');
    } finally {
      await h.end();
    }
  });

  it('SIGHUP and SIGUSR1 during start: reload and rotate done before READY, the daemon keeps running', async () => {
    const h = await start();
    try {
      await h.socket.reached;
      assert.ok(process.listenerCount('SIGHUP') > 0, 'a SIGHUP handler while starting');
      process.emit('SIGHUP');
      process.emit('SIGUSR1');
      h.socket.release();
      await h.notify.waitFor(READY);
      assert.equal(h.settled(), false, 'still running');
      assert.ok(existsSync(join(h.dir, 'audit.log.1')), 'rotated');
      const all = readFileSync(join(h.dir, 'audit.log.1'), 'utf8') + h.log();
      assert.match(all, /type=DAEMON_CONFIG .*res=success/, 'reloaded');
      assert.equal(h.kernel.status.enabled, 1);
      process.emit('SIGTERM');
      assert.equal(await h.run, 0);
      assert.equal(h.kernel.rules.length, 0);
    } finally {
      await h.end();
    }
  });

  it('SIGTERM before the start: the daemon does not start, the kernel is not touched', async () => {
    const signals = new SignalGate();
    process.emit('SIGTERM');
    const h = await start({}, signals);
    try {
      assert.equal(await h.run, 0);
      assert.equal(h.kernel.status.pid, 0);
      assert.equal(h.kernel.rules.length, 0);
      assert.ok(!existsSync(join(h.dir, 'audit.log')));
      assert.equal(process.listenerCount('SIGTERM'), 0);
    } finally {
      await h.end();
    }
  });
});

describe('runDaemon: the systemd watchdog', () => {
  it('sends WATCHDOG=1 after READY, repeatedly, when WATCHDOG_USEC is set for this pid', async () => {
    const h = await start({ WATCHDOG_USEC: '200000', WATCHDOG_PID: String(process.pid) });
    try {
      h.socket.release();
      await h.notify.waitFor(READY);
      await h.notify.waitFor(() => h.notify.messages.filter((m) => m === 'WATCHDOG=1').length >= 2);
      const first = h.notify.messages.findIndex((m) => m === 'WATCHDOG=1');
      assert.ok(first > h.notify.messages.findIndex(READY), 'after READY');
      assert.equal(process.env.WATCHDOG_USEC, undefined, 'taken out of the environment children get');
      assert.equal(process.env.NOTIFY_SOCKET, undefined);
      process.emit('SIGTERM');
      assert.equal(await h.run, 0);
    } finally {
      await h.end();
    }
  });
});
