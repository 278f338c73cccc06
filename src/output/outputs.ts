// The output interface the daemons write to, and the factory that builds remote, syslog, plugin and nats outputs from
// config.
import type { OutputSpec } from '../config/schema';
import type { Diag } from '../shared';
import { RemoteOutput } from './remote/client';
import { SyslogOutput } from './syslog';
import { PluginOutput } from './plugin';
import type { NatsOutput as NatsOutputClass } from './nats/output';

export type { OutputSpec } from '../config/schema';
export type { Diag } from '../shared';

export interface RecordOutput {
  readonly name: string;
  /** Accept one record (type, kernel payload `audit(...): ...`); once accepted it must not be lost (spool). */
  writeRecord(type: number, payload: Buffer): void;
  /** End of a receive batch: a good moment to send/fsync. */
  flush(): void;
  close(): Promise<void>;
  stats(): Record<string, number | string | boolean>;
  /** Leave a suspended state (SIGUSR2 / `auditctl --signal resume`). */
  resume?(): void;
}

export interface OutputContext {
  nodeName?: string;
  contidKernel: boolean;
  diag: Diag;
}

/** Builds every configured output; a spool that cannot be opened throws (the daemon should refuse to start). */
export function createOutputs(configs: OutputSpec[], ctx: OutputContext): RecordOutput[] {
  const out: RecordOutput[] = [];
  try {
    for (const spec of configs) {
      switch (spec.type) {
        case 'remote':
          out.push(new RemoteOutput(spec, ctx));
          break;
        case 'syslog':
          out.push(new SyslogOutput(spec, ctx));
          break;
        case 'plugin':
          out.push(new PluginOutput(spec, ctx));
          break;
        case 'nats': {
          // Required only when configured: the NATS client is about 80 modules a daemon without one need not load.
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const { NatsOutput } = require('./nats/output') as { NatsOutput: typeof NatsOutputClass };
          out.push(new NatsOutput(spec, ctx));
          break;
        }
      }
    }
  } catch (e) {
    // Outputs already built hold timers, sockets and children; do not leak them when a later one fails.
    for (const o of out) void o.close();
    throw e;
  }
  return out;
}

/** Fans one record stream out to several outputs (what a daemon holds). */
export function writeAll(outputs: readonly RecordOutput[], type: number, payload: Buffer): void {
  for (const o of outputs) o.writeRecord(type, payload);
}

export function flushAll(outputs: readonly RecordOutput[]): void {
  for (const o of outputs) o.flush();
}

export async function closeAll(outputs: readonly RecordOutput[]): Promise<void> {
  await Promise.all(outputs.map((o) => o.close()));
}
