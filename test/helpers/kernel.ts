// Test helpers for the real kernel: root checks, a state snapshot and its restore, run even when a test fails.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { AuditClient } from '../../src/kernel/client';
import type { StatusChange } from '../../src/kernel/wire';

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Why kernel tests cannot run here, or undefined when they can. */
export function kernelSkipReason(): string | undefined {
  if (!isRoot) return 'needs root';
  try {
    execFileSync('auditctl', ['-s'], { stdio: 'pipe' });
  } catch {
    return 'no audit kernel or no auditctl';
  }
  return undefined;
}

export interface KernelSnapshot {
  status: Required<Omit<StatusChange, 'pid'>>;
  rules: Buffer[];
}

/** `pid N, COMM` of a registered daemon, for the error that names it (the comm read from /proc, when it is there). */
function describePid(pid: number): string {
  try {
    return `pid ${pid}, ${readFileSync(`/proc/${pid}/comm`, 'latin1')
      .trim()
      .replace(/[^\x21-\x7e]/g, '?')}`;
  } catch {
    return `pid ${pid}, no such process here`;
  }
}

/**
 * A registration the kernel still holds for a daemon that is gone: the kernel forgets a dead daemon only when it next
 * fails to send it a record, so with no rules and nothing audited its pid stays (a test run killed in its kernel tier
 * left one, and every test of the next run failed). An AUDIT_SET of our pid makes the kernel test the connection
 * (audit_replace): a dead one is dropped and ours taken, then released; a live daemon makes it EEXIST, and it stays.
 */
async function releaseDeadRegistration(c: AuditClient): Promise<boolean> {
  try {
    await c.setStatus({ pid: process.pid });
  } catch (e) {
    if ((e as { code?: unknown }).code === 'EEXIST') return false;
    throw e;
  }
  await c.setStatus({ pid: 0 });
  return true;
}

export async function snapshotKernel(): Promise<KernelSnapshot> {
  const c = await AuditClient.open();
  try {
    let s = await c.getStatus();
    if (s.pid !== 0 && (await releaseDeadRegistration(c))) s = await c.getStatus();
    if (s.pid !== 0)
      throw new Error(`an audit daemon (${describePid(s.pid)}) is registered: kernel tests need the connection free`);
    return {
      status: {
        enabled: s.enabled,
        failure: s.failure,
        rateLimit: s.rateLimit,
        backlogLimit: s.backlogLimit,
        backlogWaitTime: s.backlogWaitTime,
      },
      rules: await c.listRules(),
    };
  } finally {
    c.close();
  }
}

/** Puts the kernel back: rules not in the snapshot deleted, status fields as found, no daemon pid left by us. */
export async function restoreKernel(snap: KernelSnapshot): Promise<void> {
  const c = await AuditClient.open();
  try {
    const st = await c.getStatus();
    if (st.pid === process.pid) await c.setStatus({ pid: 0 });
    // A dead test daemon's registration is dropped so the next test finds the kernel free; a live one is left.
    else if (st.pid !== 0) await releaseDeadRegistration(c);
    for (const r of await c.listRules()) {
      if (!snap.rules.some((s) => s.equals(r))) await c.deleteRule(r);
    }
    if (st.enabled !== 2) await c.setStatus(snap.status);
  } finally {
    c.close();
  }
}

/** Runs fn with the kernel snapshotted before and restored after, whatever fn does. */
export async function withKernel<T>(fn: () => Promise<T>): Promise<T> {
  const snap = await snapshotKernel();
  try {
    return await fn();
  } finally {
    await restoreKernel(snap);
  }
}
