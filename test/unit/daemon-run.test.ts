// runDaemon (the foreground daemon: signals, readiness, watchdog) on an emulated kernel, its start held at the first
// rule it loads until the test lets it go: the watchdog's pings after READY.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDaemon } from '../../src/daemon/run';
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
async function start(env: Record<string, string> = {}): Promise<Harness> {
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
