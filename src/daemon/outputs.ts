// Turns a configured output (YAML `log:`) into log-writer options, shared by the host and auxiliary daemons.
import type { OutputConfig } from '../config/schema';
import type { LogWriterOptions } from '../output/logfile';
import { lookupGroup } from './users';

export function writerOptions(out: OutputConfig, node: string | undefined, contidKernel: boolean): LogWriterOptions {
  const gid =
    out.logGroup === 'root' || out.logGroup === '0'
      ? undefined
      : lookupGroup(out.logGroup, { file: 'log_group', line: 1 });
  return {
    path: out.file,
    format: out.format,
    flush: out.flush,
    freq: out.freq,
    maxLogFileMiB: out.maxLogFileMiB,
    numLogs: out.numLogs,
    maxLogFileAction: out.maxLogFileAction,
    contidKernel,
    ...(out.rotateInterval ? { rotateInterval: out.rotateInterval } : {}),
    ...(out.compress ? { compress: true } : {}),
    ...(node !== undefined ? { node } : {}),
    ...(gid !== undefined ? { logGroupGid: gid } : {}),
  };
}
