// Adds auditmux's OCI hooks to a bundle's config.json: for runtimes without hooks.d (docker, through a runc wrapper).
import { closeSync, constants, fchmodSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { readBounded } from '../safefs';
import { OciStateError } from './oci-state';

/** A bundle's config.json is a few KiB; 4 MiB bounds a hostile one. */
export const BUNDLE_CONFIG_MAX = 4 * 1024 * 1024;

export interface HookSpec {
  path: string;
  args: string[];
  env?: string[];
  timeout?: number;
}

/**
 * The config.json text with `hook` added to `createRuntime` and `poststop`, unless an identical entry is there already
 * (a runtime may call create twice). Everything else is kept as it was.
 */
export function withAuditmuxHooks(configText: Buffer, hook: HookSpec): { text: string; changed: boolean } {
  let doc: unknown;
  try {
    doc = JSON.parse(configText.toString('utf8'));
  } catch (e) {
    throw new OciStateError(`bundle config.json is not JSON (${(e as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new OciStateError('bundle config.json must be a JSON object');
  const o = doc as Record<string, unknown>;
  if (o.hooks !== undefined && (typeof o.hooks !== 'object' || o.hooks === null || Array.isArray(o.hooks)))
    throw new OciStateError('"hooks" in config.json must be an object');
  const hooks = (o.hooks ?? {}) as Record<string, unknown>;
  let changed = false;
  for (const stage of ['createRuntime', 'poststop']) {
    const list = hooks[stage] ?? [];
    if (!Array.isArray(list)) throw new OciStateError(`"hooks.${stage}" in config.json must be an array`);
    if (!list.some((h) => JSON.stringify(h) === JSON.stringify(hook))) {
      list.push(hook);
      changed = true;
    }
    hooks[stage] = list;
  }
  o.hooks = hooks;
  return { text: JSON.stringify(o), changed };
}

/**
 * Rewrites `<bundle>/config.json` with the hooks: read bounded without following a symlink, written to an O_EXCL
 * temporary in the same directory (same mode), synced, then renamed over it, so a runtime never reads half a file.
 */
export function addHooksToBundle(bundle: string, hook: HookSpec): boolean {
  const file = join(bundle, 'config.json');
  const { data, stat } = readBounded(file, { limit: BUNDLE_CONFIG_MAX, noFollow: true, what: 'bundle config' });
  if (stat.nlink > 1) throw new OciStateError(`${file} has ${stat.nlink} hard links (refused)`);
  const { text, changed } = withAuditmuxHooks(data, hook);
  if (!changed) return false;
  const tmp = join(bundle, `.config.json.auditmux-${process.pid}`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, text);
    fchmodSync(fd, stat.mode & 0o7777);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, file);
  return true;
}
