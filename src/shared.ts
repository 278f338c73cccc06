// What every layer shares and nobody owns: the version, the diagnostics contract and the pattern of daemon
// and output names (the unset id lives with the kernel's constants: AUDIT_UID_UNSET).

/** auditmux's version, as package.json has it: written in DAEMON_START records and printed by --version. */
export const VERSION = '0.1.0';

/** Where a component reports about itself (never audit records): the daemon hands it pino, the aux process stderr. */
export interface Diag {
  /** Optional: test doubles and the aux process leave it out. */
  debug?(o: unknown, m?: string): void;
  info(o: unknown, m?: string): void;
  warn(o: unknown, m?: string): void;
  error(o: unknown, m?: string): void;
}

/** Daemon and output names: they become file, directory and NATS subject parts, so a small safe alphabet. */
export const NAME_PATTERN = '[a-z0-9][a-z0-9_-]{0,62}';
export const NAME_RE = new RegExp(`^${NAME_PATTERN}$`);
