// What the kernel session found and loaded, kept in the daemon's runtime directory while it holds the kernel: a
// daemon that did not stop cleanly (kill -9, OOM, a crash) leaves it behind, and its successor takes back from it
// the settings to restore and which of the kernel's rules are auditmux's to delete.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { AuditmuxError, ExitCode } from '../errors';
import { bootStateDocument, checkDirSafe, lstatOrNull, readBounded, replaceFile } from '../safefs';

/** The file's name, beside the control socket and containers.state. */
export const KERNEL_STATE_FILE = 'kernel.state';
/** Rule hashes written at most (a kernel rule set past this is not auditmux's to hold: each rule is a request). */
export const KERNEL_STATE_MAX_RULES = 262_144;
/** Largest file read: the rule hashes (64 hex digits, quotes and a comma each) and the rest, with room. */
export const KERNEL_STATE_MAX_BYTES = KERNEL_STATE_MAX_RULES * 67 + 4096;
const VERSION = 1;
const HASH_RE = /^[0-9a-f]{64}$/;
const U32_MAX = 0xffff_ffff;

/** The kernel's settings as the first daemon of a run found them (restored at the clean stop). */
export interface FoundSettings {
  enabled: number;
  failure: number;
  backlogLimit: number;
  rateLimit: number;
  backlogWaitTime: number;
}

export interface KernelState {
  found: FoundSettings;
  loginuidImmutable: boolean;
  /** SHA-256 (hex) of each kernel rule's audit_rule_data bytes that auditmux loaded. */
  rules: Set<string>;
  /** The pid that wrote it (for messages). */
  pid: number;
}

export class KernelStateError extends AuditmuxError {
  constructor(message: string) {
    super('E_KERNEL_STATE', message, ExitCode.FAILURE);
  }
}

/** A rule's hash as the file keeps it: its bytes are tenants' paths and keys, which the file has no need of. */
export function ruleHash(rule: Buffer): string {
  return createHash('sha256').update(rule).digest('hex');
}

export function encodeKernelState(boot: string, s: KernelState): string {
  const found = {
    enabled: s.found.enabled,
    failure: s.found.failure,
    backlogLimit: s.found.backlogLimit,
    rateLimit: s.found.rateLimit,
    backlogWaitTime: s.found.backlogWaitTime,
  };
  return JSON.stringify({
    version: VERSION,
    boot,
    pid: s.pid,
    found,
    loginuidImmutable: s.loginuidImmutable,
    rules: [...s.rules].slice(0, KERNEL_STATE_MAX_RULES),
  });
}

function u32(o: Record<string, unknown>, k: string, max = U32_MAX): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max)
    throw new KernelStateError(`found.${k} must be an integer from 0 to ${max}`);
  return v;
}

/** Parses and checks the file's text; throws KernelStateError naming what is wrong. */
export function parseKernelState(text: string, boot: string): KernelState {
  // The kernel's rules and settings do not outlive a boot: a file from another one describes nothing here.
  const d = bootStateDocument(text, VERSION, boot, (reason) => new KernelStateError(reason));
  if (typeof d.pid !== 'number' || !Number.isSafeInteger(d.pid) || d.pid <= 0)
    throw new KernelStateError('pid must be a positive integer');
  const f = d.found;
  if (!f || typeof f !== 'object' || Array.isArray(f)) throw new KernelStateError('found must be an object');
  const fo = f as Record<string, unknown>;
  const found: FoundSettings = {
    enabled: u32(fo, 'enabled', 2),
    failure: u32(fo, 'failure', 2),
    backlogLimit: u32(fo, 'backlogLimit'),
    rateLimit: u32(fo, 'rateLimit'),
    backlogWaitTime: u32(fo, 'backlogWaitTime'),
  };
  if (typeof d.loginuidImmutable !== 'boolean') throw new KernelStateError('loginuidImmutable must be a boolean');
  if (!Array.isArray(d.rules) || d.rules.length > KERNEL_STATE_MAX_RULES)
    throw new KernelStateError(`rules must be a list of at most ${KERNEL_STATE_MAX_RULES}`);
  const rules = new Set<string>();
  for (const h of d.rules as unknown[]) {
    if (typeof h !== 'string' || !HASH_RE.test(h)) throw new KernelStateError('rules must be SHA-256 hex digests');
    rules.add(h);
  }
  return { found, loginuidImmutable: d.loginuidImmutable, rules, pid: d.pid };
}

/**
 * Makes the state directory ready (created 0700 when missing, as the control socket's is) and checks that nobody but
 * root (or the daemon's own uid) can add or replace entries in it. Throws IoError.
 */
export function prepareStateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  checkDirSafe(dir, { owners: [0, process.geteuid?.() ?? 0], what: 'kernel state directory' });
}

/**
 * Reads the file: null when there is none. Throws (IoError, KernelStateError) when it cannot be used: a symlink, not
 * a regular file, over KERNEL_STATE_MAX_BYTES, another owner than the daemon's uid, another link to it, writable by
 * others, or text that does not check.
 */
export function readKernelState(file: string, boot: string): KernelState | null {
  if (!lstatOrNull(file)) return null;
  const r = readBounded(file, { limit: KERNEL_STATE_MAX_BYTES, noFollow: true, what: 'kernel state file' });
  const me = process.geteuid?.() ?? 0;
  if (r.stat.uid !== me) throw new KernelStateError(`owned by uid ${r.stat.uid}, not ${me}`);
  if (r.stat.nlink !== 1) throw new KernelStateError(`has ${r.stat.nlink} hard links`);
  if (r.stat.mode & 0o022)
    throw new KernelStateError(`writable by others (mode ${(r.stat.mode & 0o7777).toString(8)})`);
  return parseKernelState(r.data.toString('utf8'), boot);
}

/**
 * Replaces the file: a new temporary (O_EXCL|O_NOFOLLOW, 0600) renamed over it. Not fsynced: what it describes (the
 * kernel's state) does not survive a reboot either, and a rename is atomic for a process that dies at any point.
 */
export function writeKernelState(file: string, text: string): void {
  replaceFile(file, text, { what: 'kernel state', sync: false });
}

/** Removes the file (a clean stop); a missing one is fine. */
export function removeKernelState(file: string): void {
  fs.rmSync(file, { force: true });
}
