// The kernel client's contract, run unchanged against the emulated kernel and the real kernel through the addon.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { AuditClient } from '../../src/kernel/client';
import { EmulatedKernel } from '../helpers/emulated-kernel';
import { DaemonBusyError, KernelError } from '../../src/errors';
import { Field, FilterList, Op, RuleAction, MsgType, Feature, AUDIT_FILTER_PREPEND } from '../../src/kernel/constants';
import { kernelSkipReason, withKernel } from '../helpers/kernel';
import { ruleBytes } from '../helpers/rule-bytes';

interface Harness {
  name: string;
  skip: string | undefined;
  run<T>(fn: () => Promise<T>): Promise<T>;
  open(): Promise<AuditClient>;
  /** Another live process registers as the daemon; returns its pid and a stopper. */
  otherDaemon(): Promise<{ pid: number; stop: () => Promise<void> }>;
  /** Someone signals the registered daemon (this process) with SIGUSR1; returns the sender's pid. */
  signalDaemon(): Promise<number>;
}

function emulated(ackOrder: 'ack-first' | 'data-first' | 'random'): Harness {
  let k = new EmulatedKernel({ ackOrder });
  return {
    name: `emulated kernel (${ackOrder})`,
    skip: undefined,
    async run(fn) {
      k = new EmulatedKernel({ ackOrder });
      return fn();
    },
    open: () => AuditClient.open({ socket: k.socket() }),
    async otherDaemon() {
      const s = k.socket({ pid: 4242 });
      const c = await AuditClient.open({ socket: s });
      await c.setStatus({ pid: 4242 });
      return {
        pid: 4242,
        stop: async () => {
          await c.setStatus({ pid: 0 });
          c.close();
        },
      };
    },
    async signalDaemon() {
      k.signalDaemon(31337);
      return 31337;
    },
  };
}

const real: Harness = {
  name: 'real kernel (native addon)',
  skip: kernelSkipReason(),
  run: withKernel,
  open: () => AuditClient.open(),
  async otherDaemon() {
    const script = `
      const { AuditClient } = require(${JSON.stringify(join(__dirname, '..', '..', 'src', 'kernel', 'client'))});
      (async () => { const c = await AuditClient.open(); await c.registerDaemon(); process.stdout.write('ready\\n');
        process.on('SIGTERM', async () => { await c.unregisterDaemon(); c.close(); process.exit(0); }); setInterval(() => {}, 1000); })()
        .catch((e) => { console.error(e); process.exit(1); });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`helper daemon exited ${code}`)));
    });
    return {
      pid: child.pid!,
      stop: () =>
        new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    };
  },
  async signalDaemon() {
    const r = spawnSync('/bin/sh', ['-c', `kill -USR1 ${process.pid}; echo $$`], { encoding: 'utf8' });
    return Number(r.stdout.trim());
  },
};

const testRule = (key: string, extra: Parameters<typeof ruleBytes>[2] = []): Buffer =>
  ruleBytes(
    FilterList.exit,
    RuleAction.always,
    [
      { field: Field.arch, value: 0xc000003e },
      { field: Field.exe, str: '/usr/bin/auditmux-contract-test-nonexistent' },
      ...extra,
      { field: Field.key, str: key },
    ],
    [110],
  );

for (const h of [emulated('ack-first'), emulated('data-first'), emulated('random'), real]) {
  describe(`kernel client contract: ${h.name}`, { skip: h.skip }, () => {
    it('reads the status with every field', () =>
      h.run(async () => {
        const c = await h.open();
        try {
          const s = await c.getStatus();
          assert.ok(s.enabled >= 0 && s.enabled <= 2);
          assert.ok(s.failure >= 0 && s.failure <= 2);
          assert.equal(s.pid, 0);
          assert.ok(s.featureBitmap & 0x1, 'backlog_limit feature present');
          for (const k of [
            'rateLimit',
            'backlogLimit',
            'lost',
            'backlog',
            'backlogWaitTime',
            'backlogWaitTimeActual',
          ] as const) {
            assert.equal(typeof s[k], 'number');
          }
        } finally {
          c.close();
        }
      }));

    it('sets backlog_limit, rate_limit and backlog_wait_time, each alone in the mask', () =>
      h.run(async () => {
        const c = await h.open();
        try {
          const before = await c.getStatus();
          await c.setStatus({ backlogLimit: before.backlogLimit + 17 });
          await c.setStatus({ backlogWaitTime: 1234 });
          await c.setStatus({ rateLimit: 777 });
          const after = await c.getStatus();
          assert.equal(after.backlogLimit, before.backlogLimit + 17);
          assert.equal(after.backlogWaitTime, 1234);
          assert.equal(after.rateLimit, 777);
          assert.equal(after.enabled, before.enabled, 'fields outside the mask are untouched');
          assert.equal(after.failure, before.failure);
        } finally {
          c.close();
        }
      }));

    it('turns kernel refusals into KernelError with code, errno and syscall', () =>
      h.run(async () => {
        const c = await h.open();
        try {
          await assert.rejects(c.setStatus({ backlogWaitTime: 600001 }), (e: unknown) => {
            assert.ok(e instanceof KernelError);
            assert.equal(e.code, 'EINVAL');
            assert.equal(e.errno, 22);
            assert.equal(e.syscall, 'AUDIT_SET');
            return true;
          });
          await assert.rejects(c.setStatus({ enabled: 3 }), { code: 'EINVAL' });
          await assert.rejects(c.setStatus({ pid: process.pid + 100000 }), { code: 'EINVAL' });
        } finally {
          c.close();
        }
      }));

    it('resets the lost counter and returns the old value', () =>
      h.run(async () => {
        const c = await h.open();
        try {
          const old = await c.resetLost();
          assert.ok(Number.isInteger(old) && old >= 0);
          assert.equal((await c.getStatus()).lost, 0);
        } finally {
          c.close();
        }
      }));

    it('adds, lists (multi-part) and deletes rules; duplicates and unknown rules are errors', () =>
      h.run(async () => {
        const c = await h.open();
        try {
          const base = (await c.listRules()).length;
          const r1 = testRule('amtest-1');
          const r2 = testRule('amtest-2', [{ field: Field.auid, op: Op.GREATER_THAN_OR_EQUAL, value: 1000 }]);
          await c.addRule(r1);
          await c.addRule(r2);
          const listed = await c.listRules();
          assert.equal(listed.length, base + 2);
          assert.ok(
            listed.some((r) => r.equals(r1)),
            'the kernel returns the rule as sent',
          );
          assert.ok(listed.some((r) => r.equals(r2)));
          await assert.rejects(c.addRule(r1), { code: 'EEXIST' });
          await c.deleteRule(r1);
          await assert.rejects(c.deleteRule(r1), { code: 'ENOENT' });
          await c.deleteRule(r2);
          assert.equal((await c.listRules()).length, base);
        } finally {
          c.close();
        }
      }));

    it('puts prepended rules first', () =>
      h.run(async () => {
        const c = await h.open();
        try {
          const a = testRule('amtest-a');
          const b = ruleBytes(
            FilterList.exit | AUDIT_FILTER_PREPEND,
            RuleAction.always,
            [
              { field: Field.arch, value: 0xc000003e },
              { field: Field.exe, str: '/usr/bin/auditmux-contract-test-x' },
              { field: Field.key, str: 'amtest-b' },
            ],
            [110],
          );
          await c.addRule(a);
          await c.addRule(b);
          const listed = await c.listRules();
          const ia = listed.findIndex((r) => r.equals(a));
          const ib = listed.findIndex(
            (r) => (r.readUInt32LE(0) & ~AUDIT_FILTER_PREPEND) === FilterList.exit && r.includes('amtest-b'),
          );
          assert.ok(ib >= 0 && ib < ia, `prepended rule first (a at ${ia}, b at ${ib})`);
        } finally {
          c.close();
        }
      }));

    it('registers as the daemon, receives records with the payload-only length quirk, unregisters', () =>
      h.run(async () => {
        const c = await h.open();
        try {
          const got: string[] = [];
          c.onRecords((type, buf, start, end) => {
            const t = buf.toString('latin1', start, end);
            if (type === MsgType.FIRST_USER_MSG + 7 && t.includes('7f3a')) got.push(t);
          });
          await c.registerDaemon();
          assert.equal((await c.getStatus()).pid, process.pid);
          // No rule is loaded, so enabling audit here adds only the host's own user-space messages; run() restores it.
          await c.setStatus({ enabled: 1 });
          await c.sendUserMessage(MsgType.FIRST_USER_MSG + 7, 'auditmux contract probe 7f3a');
          for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
          assert.equal(got.length, 1);
          assert.match(got[0]!, /^audit\(\d+\.\d{3}:\d+\): pid=\d+ uid=0 .*msg='auditmux contract probe 7f3a'/);
          await c.unregisterDaemon();
          assert.equal((await c.getStatus()).pid, 0);
        } finally {
          c.close();
        }
      }));

    it('refuses to register while another live daemon owns the kernel, naming its pid', () =>
      h.run(async () => {
        const other = await h.otherDaemon();
        const c = await h.open();
        try {
          await assert.rejects(c.registerDaemon(), (e: unknown) => {
            assert.ok(e instanceof DaemonBusyError);
            assert.equal(e.pid, other.pid);
            assert.match(e.message, new RegExp(`pid ${other.pid}`));
            return true;
          });
        } finally {
          c.close();
          await other.stop();
        }
      }));

    it('reports who signalled the daemon (SIGNAL_INFO)', () =>
      h.run(async () => {
        const c = await h.open();
        const noop = (): void => {};
        process.on('SIGUSR1', noop);
        try {
          await c.registerDaemon();
          const sender = await h.signalDaemon();
          await new Promise((r) => setTimeout(r, 50));
          const info = await c.getSignalInfo();
          assert.equal(info.pid, sender);
          await c.unregisterDaemon();
        } finally {
          process.off('SIGUSR1', noop);
          c.close();
        }
      }));

    it('gets and sets the loginuid_immutable feature', () =>
      h.run(async () => {
        const c = await h.open();
        try {
          const f = await c.getFeatures();
          assert.equal(f.vers, 1);
          const was = (f.features >> Feature.LOGINUID_IMMUTABLE) & 1;
          if (f.lock & (1 << Feature.LOGINUID_IMMUTABLE)) return;
          await c.setFeature(Feature.LOGINUID_IMMUTABLE, !was, false);
          assert.equal(((await c.getFeatures()).features >> Feature.LOGINUID_IMMUTABLE) & 1, was ? 0 : 1);
          await c.setFeature(Feature.LOGINUID_IMMUTABLE, !!was, false);
          assert.equal(((await c.getFeatures()).features >> Feature.LOGINUID_IMMUTABLE) & 1, was);
        } finally {
          c.close();
        }
      }));
  });
}
