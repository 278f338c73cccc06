// Kernel audit state for the benchmark: read through auditctl, changed for the run, and put back however the run ends.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface KernelStatus {
  enabled: number;
  failure: number;
  pid: number;
  rateLimit: number;
  backlogLimit: number;
  lost: number;
  backlog: number;
  backlogWaitTime: number;
}

export function parseStatus(text: string): KernelStatus {
  const v = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+) (\d+)/.exec(line);
    if (m) v.set(m[1]!, Number(m[2]));
  }
  const get = (k: string): number => {
    const x = v.get(k);
    if (x === undefined) throw new Error(`auditctl -s did not show ${k}:\n${text}`);
    return x;
  };
  return {
    enabled: get('enabled'),
    failure: get('failure'),
    pid: get('pid'),
    rateLimit: get('rate_limit'),
    backlogLimit: get('backlog_limit'),
    lost: get('lost'),
    backlog: get('backlog'),
    backlogWaitTime: get('backlog_wait_time'),
  };
}

export async function auditctl(...args: string[]): Promise<string> {
  const { stdout } = await execFileP('auditctl', args, { encoding: 'utf8' });
  return stdout;
}

export function auditctlSync(...args: string[]): string {
  return execFileSync('auditctl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export async function status(): Promise<KernelStatus> {
  return parseStatus(await auditctl('-s'));
}

export function statusSync(): KernelStatus {
  return parseStatus(auditctlSync('-s'));
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * What the run found, and how to put it back. Restoring is synchronous so that it also works from a signal handler
 * or an 'exit' listener, where nothing asynchronous runs any more.
 */
export class KernelGuard {
  private restored = false;
  private constructor(readonly before: KernelStatus) {}

  /** Refuses to start where the run would disturb someone else or could not be undone. */
  static take(): KernelGuard {
    const s = statusSync();
    if (s.enabled === 2) throw new Error('audit is locked (enabled 2): the benchmark could not restore the kernel');
    if (s.pid !== 0) throw new Error(`an audit daemon (pid ${s.pid}) is registered: stop it before benchmarking`);
    const rules = auditctlSync('-l').trim();
    // The run ends with `auditctl -D`; deleting someone else's rules would be worse than not benchmarking.
    if (rules !== 'No rules')
      throw new Error(`audit rules are loaded; the benchmark deletes all rules when done:\n${rules}`);
    return new KernelGuard(s);
  }

  /** Idempotent; errors are collected rather than thrown so every step gets its chance. */
  restoreSync(): string[] {
    if (this.restored) return [];
    this.restored = true;
    const problems: string[] = [];
    const step = (what: string, fn: () => void): void => {
      try {
        fn();
      } catch (e) {
        problems.push(`${what}: ${(e as Error).message.trim()}`);
      }
    };
    step('delete rules', () => auditctlSync('-D'));
    const b = this.before;
    step('restore status', () =>
      auditctlSync(
        '-b',
        String(b.backlogLimit),
        '--backlog_wait_time',
        String(b.backlogWaitTime),
        '-f',
        String(b.failure),
        '-r',
        String(b.rateLimit),
        '-e',
        String(b.enabled),
      ),
    );
    step('check daemon pid', () => {
      // A daemon we just killed may take a moment to be forgotten by the kernel.
      for (let i = 0; i < 50; i++) {
        if (statusSync().pid === 0) return;
        sleepSync(100);
      }
      throw new Error(`kernel still names pid ${statusSync().pid} as the audit daemon`);
    });
    return problems;
  }
}
