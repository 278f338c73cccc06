// The output contract: what a daemon's log fan-out (remote, syslog, plugin, nats) offers and what it is given.
import type { OutputSpec } from '../config/schema';

export type { OutputSpec } from '../config/schema';

/** Every output type a config can name; the factory's switch over it must stay exhaustive (src/output/outputs.ts). */
export type OutputType = OutputSpec['type'];

/** The daemon's own diagnostics (pino in the daemons, stderr in an aux process, a capture in tests). */
export type { Diag } from '../shared';
import type { Diag } from '../shared';
import type { ContainerDirectory } from '../contid/meta-selector';

export type { ContainerDirectory } from '../contid/meta-selector';

/** One configured output: takes records as the kernel sent them and owns their delivery from then on. */
export interface RecordOutput {
  readonly name: string;
  /**
   * The output gathers each event's records into one message (NATS): its daemon hands it an event's records one
   * after another, never mixed with another event's (an event is not passed through to it record by record).
   */
  readonly groupsEvents?: boolean;
  /** Accept one record (type, kernel payload `audit(...): ...`); once accepted it must not be lost (spool). */
  writeRecord(type: number, payload: Buffer): void;
  /** End of a receive batch: a good moment to send/fsync. */
  flush(): void;
  close(): Promise<void>;
  stats(): Record<string, number | string | boolean>;
  /** Leave a suspended state (SIGUSR2 / `auditctl --signal resume`). */
  resume?(): void;
}

/** What every output gets from the daemon that holds it. */
export interface OutputContext {
  /** node= value of the daemon's lines (resolved name_format); undefined = none. */
  nodeName?: string;
  /** The kernel has the contid patch set (type 1336 is CONTAINER_ID). */
  contidKernel: boolean;
  diag: Diag;
  /**
   * The host's container registry (name, image, runtime, pod, namespace by contid), for nats subjects and the JSON
   * `container` object; absent in a process-isolated auxiliary daemon, which has no registry.
   */
  containers?: ContainerDirectory;
}
