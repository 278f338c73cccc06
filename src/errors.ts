// Error classes shared by every stage: each has a stable `code` and the process `exitCode` the CLI maps it to.
import { ERRNO_TABLE } from './errno-table';

/** Exit codes, chosen so systemd's RestartPreventExitStatus can tell config errors from crashes. */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  CONFIG: 3,
  RULES: 4,
  KERNEL: 5,
  BUSY: 6,
  PERMISSION: 7,
  IO: 8,
} as const;

export class AuditmuxError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode: number = ExitCode.FAILURE, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** Bad command-line arguments. */
export class UsageError extends AuditmuxError {
  constructor(message: string) {
    super('E_USAGE', message, ExitCode.USAGE);
  }
}

/** A position in a text file; line and col are 1-based. */
export interface SourcePos {
  file: string;
  line: number;
  col?: number;
}

export function formatPos(p: SourcePos): string {
  return p.col !== undefined ? `${p.file}:${p.line}:${p.col}` : `${p.file}:${p.line}`;
}

/** Bad configuration: always carries file:line:col. */
export class ConfigError extends AuditmuxError {
  readonly pos: SourcePos;
  readonly reason: string;
  constructor(pos: SourcePos, reason: string) {
    super('E_CONFIG', `${formatPos(pos)}: ${reason}`, ExitCode.CONFIG);
    this.pos = pos;
    this.reason = reason;
  }
}

/** A log that is not in the format a reader needs (a JSON log given to search or report), at file:line. */
export class LogFormatError extends AuditmuxError {
  readonly pos: SourcePos;
  constructor(pos: SourcePos, reason: string) {
    super('E_LOG_FORMAT', `${formatPos(pos)}: ${reason}`, ExitCode.USAGE);
    this.pos = pos;
  }
}

/** A rule line that auditctl would refuse, or that the kernel refused. */
export class RuleError extends AuditmuxError {
  readonly pos: SourcePos | undefined;
  readonly reason: string;
  constructor(reason: string, pos?: SourcePos, code = 'E_RULE') {
    super(code, pos ? `${formatPos(pos)}: ${reason}` : reason, ExitCode.RULES);
    this.pos = pos;
    this.reason = reason;
  }
}

/** A failed system call (from the native addon) or a negative netlink reply from the kernel. */
export class KernelError extends AuditmuxError {
  readonly errno: number;
  readonly syscall: string;
  constructor(code: string, errno: number, syscall: string, message?: string) {
    super(code, message ?? `${syscall}: ${code} (errno ${errno})`, ExitCode.KERNEL);
    this.errno = errno;
    this.syscall = syscall;
  }
}

/** Another live process is registered as the kernel's audit daemon. */
export class DaemonBusyError extends AuditmuxError {
  readonly pid: number;
  constructor(pid: number) {
    super('E_BUSY', `another audit daemon (pid ${pid}) owns the kernel audit connection`, ExitCode.BUSY);
    this.pid = pid;
  }
}

/** An operation refused by policy (an auxiliary daemon touching host-wide settings, a non-root peer). */
export class PermissionError extends AuditmuxError {
  constructor(message: string, code = 'E_PERM') {
    super(code, message, ExitCode.PERMISSION);
  }
}

/** File-system failures on logs, spools and sockets. */
export class IoError extends AuditmuxError {
  constructor(message: string, code = 'E_IO', options?: { cause?: unknown }) {
    super(code, message, ExitCode.IO, options);
  }
}

/** Number -> libaudit's primary name (the table lists primaries before aliases, so the first name wins). */
const ERRNO_NAMES = new Map<number, string>();
for (const [n, name] of ERRNO_TABLE) if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name);

/** The errno's name, so kernel NLMSG_ERROR replies and log failures become typed errors; `E<n>` when unnamed. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}
