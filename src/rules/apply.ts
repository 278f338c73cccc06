// Runs parsed rule commands against the kernel the way `auditctl -R` does, with -i/-c error handling and -e last.
import { AuditmuxError, KernelError, RuleError, errnoName } from '../errors';
import { Feature, Field } from '../kernel/constants';
import { decodeRule, encodeRule, ruleKeyMatches } from './codec';
import type { Rule, RuleCommand } from './types';

/** The part of the kernel client rules need; src/kernel/client.ts's AuditClient satisfies it. */
export interface RuleKernel {
  addRule(rule: Buffer): Promise<void>;
  deleteRule(rule: Buffer): Promise<void>;
  listRules(): Promise<Buffer[]>;
  setStatus(s: {
    enabled?: number;
    failure?: number;
    rateLimit?: number;
    backlogLimit?: number;
    backlogWaitTime?: number;
  }): Promise<void>;
  resetLost(): Promise<number>;
  setFeature(feature: number, value: boolean, lock: boolean): Promise<void>;
}

export interface ApplyOptions {
  /** As `auditctl -i` before the first line: report errors and go on. */
  ignoreErrors?: boolean;
  /**
   * Whether this rule set may change host-wide state (status settings, features, deleting every rule). An
   * auxiliary daemon's rule set passes false: those commands are then refused as errors. Default true.
   */
  hostWide?: boolean;
}

export interface ApplySummary {
  added: number;
  deleted: number;
  /** Every failed line, in order, with its file:line. */
  errors: RuleError[];
  /** auditctl would exit non-zero: an error stopped the load, or errors happened after -c. */
  failed: boolean;
  /** An error without -i/-c ended the load before the last command. */
  stopped: boolean;
  /** The lost counter reported by the last --reset-lost. */
  lost?: number;
}

/** strerror() texts for the errnos the audit paths return, as auditctl prints them. */
const STRERROR: Record<number, string> = {
  1: 'Operation not permitted',
  2: 'No such file or directory',
  3: 'No such process',
  12: 'Cannot allocate memory',
  13: 'Permission denied',
  14: 'Bad address',
  16: 'Device or resource busy',
  17: 'File exists',
  20: 'Not a directory',
  22: 'Invalid argument',
  28: 'No space left on device',
  34: 'Numerical result out of range',
  36: 'File name too long',
  95: 'Operation not supported',
  105: 'No buffer space available',
  111: 'Connection refused',
};

function strerror(errno: number): string {
  return STRERROR[errno] ?? `Unknown error ${errno}`;
}

const EINVAL = 22,
  ENOENT = 2,
  EEXIST = 17;

function kernelReason(prefix: string, e: KernelError, special?: (errno: number) => string | undefined): string {
  return `${prefix} (${special?.(e.errno) ?? strerror(e.errno)})`;
}

function ruleError(c: RuleCommand, reason: string, code: string, cause?: unknown): RuleError {
  const err = new RuleError(reason, c.pos, code);
  if (cause !== undefined) Object.defineProperty(err, 'cause', { value: cause, enumerable: false });
  return err;
}

const HOST_WIDE: ReadonlySet<RuleCommand['kind']> = new Set([
  'enabled',
  'failure',
  'rateLimit',
  'backlogLimit',
  'backlogWaitTime',
  'resetLost',
  'loginuidImmutable',
  'deleteAll',
]);

/** Sends AUDIT_ADD_RULE; like auditctl, a kernel refusing AUDIT_DIR gets the rule again as a path watch. */
async function addWithFallback(kernel: RuleKernel, rule: Rule): Promise<void> {
  try {
    await kernel.addRule(encodeRule(rule));
  } catch (e) {
    if (!(e instanceof KernelError) || e.errno !== EINVAL || rule.fields[0]?.field !== Field.dir) throw e;
    const legacy: Rule = { ...rule, fields: rule.fields.map((f, i) => (i === 0 ? { ...f, field: Field.watch } : f)) };
    await kernel.addRule(encodeRule(legacy));
  }
}

async function deleteWithFallback(kernel: RuleKernel, rule: Rule): Promise<void> {
  try {
    await kernel.deleteRule(encodeRule(rule));
  } catch (e) {
    if (!(e instanceof KernelError) || e.errno !== EINVAL || rule.fields[0]?.field !== Field.dir) throw e;
    const legacy: Rule = { ...rule, fields: rule.fields.map((f, i) => (i === 0 ? { ...f, field: Field.watch } : f)) };
    await kernel.deleteRule(encodeRule(legacy));
  }
}

/**
 * Applies commands in order; -e commands wait until everything else is done. Kernel refusals become RuleErrors
 * carrying the line's position; other failures (a closed socket) are thrown.
 */
export async function applyRules(
  kernel: RuleKernel,
  commands: readonly RuleCommand[],
  opts: ApplyOptions = {},
): Promise<ApplySummary> {
  const summary: ApplySummary = { added: 0, deleted: 0, errors: [], failed: false, stopped: false };
  const hostWide = opts.hostWide ?? true;
  let ignore = !!opts.ignoreErrors;
  let continueMode = false;
  const deferred: RuleCommand[] = [];

  const run = async (c: RuleCommand): Promise<RuleError | null> => {
    if (!hostWide && HOST_WIDE.has(c.kind)) {
      return ruleError(c, `${c.text}: host-wide setting, not allowed in this rule set`, 'E_RULE_HOSTWIDE');
    }
    try {
      switch (c.kind) {
        case 'ignoreErrors':
          ignore = true;
          if (c.continueMode) continueMode = true;
          return null;
        case 'invalid':
          return c.error;
        case 'add':
          try {
            await addWithFallback(kernel, c.rule);
          } catch (e) {
            if (e instanceof KernelError) {
              return ruleError(
                c,
                kernelReason('Error sending add rule data request', e, (n) =>
                  n === EEXIST ? 'Rule exists' : undefined,
                ),
                'E_RULE_KERNEL',
                e,
              );
            }
            throw e;
          }
          summary.added++;
          return null;
        case 'delete':
          try {
            await deleteWithFallback(kernel, c.rule);
          } catch (e) {
            if (e instanceof KernelError) {
              if (e.errno === ENOENT)
                return ruleError(c, 'Error sending delete rule request (No rule matches)', 'E_RULE_KERNEL', e);
              return ruleError(c, kernelReason('Error sending delete rule data request', e), 'E_RULE_KERNEL', e);
            }
            throw e;
          }
          summary.deleted++;
          return null;
        case 'deleteAll': {
          const listed = await kernel.listRules();
          for (const b of listed) {
            if (c.key !== undefined && !ruleKeyMatches(decodeRule(b), c.key)) continue;
            // The kernel's own bytes go straight back, so nothing is lost in a decode/encode round trip.
            await kernel.deleteRule(b);
            summary.deleted++;
          }
          return null;
        }
        case 'enabled':
          await kernel.setStatus({ enabled: c.value });
          return null;
        case 'failure':
          await kernel.setStatus({ failure: c.value });
          return null;
        case 'rateLimit':
          await kernel.setStatus({ rateLimit: c.value });
          return null;
        case 'backlogLimit':
          await kernel.setStatus({ backlogLimit: c.value });
          return null;
        case 'backlogWaitTime':
          await kernel.setStatus({ backlogWaitTime: c.value });
          return null;
        case 'resetLost':
          summary.lost = await kernel.resetLost();
          return null;
        case 'loginuidImmutable':
          await kernel.setFeature(Feature.LOGINUID_IMMUTABLE, true, true);
          return null;
      }
    } catch (e) {
      if (e instanceof KernelError)
        return ruleError(c, `${describe(c)} (${strerror(e.errno)} [${errnoName(e.errno)}])`, 'E_RULE_KERNEL', e);
      if (e instanceof RuleError) return e.pos ? e : ruleError(c, e.reason, e.code, e);
      if (e instanceof AuditmuxError) throw e;
      throw e;
    }
  };

  const fail = (err: RuleError): boolean => {
    summary.errors.push(err);
    if (!ignore) {
      summary.failed = true;
      summary.stopped = true;
      return true;
    }
    if (continueMode) summary.failed = true;
    return false;
  };

  for (const c of commands) {
    if (c.kind === 'enabled') {
      deferred.push(c);
      continue;
    }
    const err = await run(c);
    if (err && fail(err)) return summary;
  }
  for (const c of deferred) {
    const err = await run(c);
    if (err && fail(err)) return summary;
  }
  return summary;
}

function describe(c: RuleCommand): string {
  switch (c.kind) {
    case 'enabled':
      return 'Error sending enable request';
    case 'failure':
      return 'Error sending failure mode request';
    case 'rateLimit':
      return 'Error sending rate limit request';
    case 'backlogLimit':
      return 'Error sending backlog limit request';
    case 'backlogWaitTime':
      return 'Error sending backlog wait time request';
    case 'resetLost':
      return 'Error resetting lost record counter';
    case 'loginuidImmutable':
      return 'Error setting feature';
    case 'deleteAll':
      return 'Error deleting rule';
    default:
      return 'Error';
  }
}
