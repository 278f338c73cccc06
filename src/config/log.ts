// The `log:` section of the host, of each daemon and of the remote log: one reader, one set of defaults.
import { Buffer } from 'node:buffer';
import { resolve as resolvePath } from 'node:path';
import { PATH_MAX } from '../kernel/constants';
import { DEFAULT_OUTPUT, FLUSH_MODES, LOG_FILE_FORMATS, MAX_LOG_FILE_ACTIONS, type OutputConfig } from './schema';
import type { Walker, Entry } from './walk';
import { DISK_SPACE_KEYS, readDiskSpace } from './outputs';
import { MAX_ACCOUNT_ID } from '../vocab/accounts';

/** A user or group as passwd/group files allow it, or a numeric id. */
const ACCOUNT_RE = /^(?:[0-9]{1,10}|[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?)$/;

const LOG_KEYS = [
  'file',
  'format',
  'flush',
  'freq',
  'max_log_file',
  'max_log_file_action',
  'num_logs',
  'log_group',
  'rotate_interval',
  'compress',
  ...DISK_SPACE_KEYS,
] as const;

/** Resolves a path against the config file's directory and rejects what no file system would accept. */
export function configPath(w: Walker, e: Entry, where: string, text: string, baseDir: string): string | undefined {
  if (text.length === 0) return w.error(e.value, `${where} is an empty path`, e.key);
  if (text.includes('\0')) return w.error(e.value, `${where} contains a NUL byte`, e.key);
  const p = resolvePath(baseDir, text);
  if (Buffer.byteLength(p) >= PATH_MAX)
    return w.error(e.value, `${where} is longer than PATH_MAX (${PATH_MAX})`, e.key);
  return p;
}

export function readOutput(w: Walker, e: Entry, where: string, baseDir: string, defaultFile: string): OutputConfig {
  const out: OutputConfig = { file: defaultFile, ...DEFAULT_OUTPUT };
  const m = w.mapping(e.value, where, LOG_KEYS, e.key);
  if (!m) return out;
  let x: Entry | undefined;
  if ((x = m.get('file'))) {
    const s = w.string(x, `${where}.file`);
    if (s !== undefined) {
      if (s.endsWith('/')) w.error(x.value, `${where}.file must name a file, not a directory`, x.key);
      else out.file = configPath(w, x, `${where}.file`, s, baseDir) ?? out.file;
    }
  }
  if ((x = m.get('format'))) out.format = w.choice(x, `${where}.format`, LOG_FILE_FORMATS) ?? out.format;
  if ((x = m.get('flush'))) out.flush = w.choice(x, `${where}.flush`, FLUSH_MODES) ?? out.flush;
  const freqEntry = m.get('freq');
  if (freqEntry) out.freq = w.integer(freqEntry, `${where}.freq`, 0, 0x7fffffff) ?? out.freq;
  // auditd refuses incremental flushing with freq 0: it would never flush at all.
  if ((out.flush === 'incremental' || out.flush === 'incremental_async') && out.freq === 0 && freqEntry) {
    w.error(freqEntry.value, `${where}.freq must be at least 1 with flush: ${out.flush}`, freqEntry.key);
  }
  if ((x = m.get('max_log_file')))
    out.maxLogFileMiB = w.integer(x, `${where}.max_log_file`, 0, 1048576) ?? out.maxLogFileMiB;
  if ((x = m.get('max_log_file_action')))
    out.maxLogFileAction = w.choice(x, `${where}.max_log_file_action`, MAX_LOG_FILE_ACTIONS) ?? out.maxLogFileAction;
  if ((x = m.get('num_logs'))) out.numLogs = w.integer(x, `${where}.num_logs`, 0, 999) ?? out.numLogs;
  if ((x = m.get('log_group'))) out.logGroup = account(w, x, `${where}.log_group`) ?? out.logGroup;
  if ((x = m.get('rotate_interval'))) {
    const v = w.choice(x, `${where}.rotate_interval`, ['none', 'hourly', 'daily'] as const);
    if (v === 'hourly' || v === 'daily') out.rotateInterval = v;
    else if (v === 'none') delete out.rotateInterval;
  }
  if ((x = m.get('compress'))) {
    const v = w.boolean(x, `${where}.compress`);
    if (v) out.compress = true;
  }
  const disk = readDiskSpace(w, m, where);
  if (disk) out.diskSpace = disk;
  return out;
}

export function account(w: Walker, e: Entry, where: string): string | undefined {
  const s = w.string(e, where);
  if (s === undefined) return undefined;
  if (!ACCOUNT_RE.test(s) || (/^[0-9]/.test(s) && Number(s) > MAX_ACCOUNT_ID))
    return w.error(
      e.value,
      `${where} must be a user/group name or a numeric id up to ${MAX_ACCOUNT_ID}, got "${s.slice(0, 40)}"`,
      e.key,
    );
  return s;
}
