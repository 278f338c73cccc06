// The output factory: builds remote, syslog, plugin and nats outputs from config, and fans records out to them.
import type { OutputSpec } from '../config/schema';
import type { OutputContext, RecordOutput } from './output';
import { RemoteOutput } from './remote/client';
import { SyslogOutput } from './syslog';
import { PluginOutput } from './plugin';
import type { NatsOutput as NatsOutputClass } from './nats/output';

// The contract lives in ./output; re-exported so that callers which build outputs need one import.
export type { Diag, OutputContext, OutputSpec, OutputType, RecordOutput } from './output';

/** One output from its spec. The switch is exhaustive: a type added to OutputSpec without a case does not compile. */
export function createOutput(spec: OutputSpec, ctx: OutputContext): RecordOutput {
  switch (spec.type) {
    case 'remote':
      return new RemoteOutput(spec, ctx);
    case 'syslog':
      return new SyslogOutput(spec, ctx);
    case 'plugin':
      return new PluginOutput(spec, ctx);
    case 'nats': {
      // Required only when configured: the NATS client is about 80 modules a daemon without one need not load.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { NatsOutput } = require('./nats/output') as { NatsOutput: typeof NatsOutputClass };
      return new NatsOutput(spec, ctx);
    }
    default:
      return unknownOutput(spec);
  }
}

/** Compile-time guard for createOutput's switch; at run time a spec from an older or forged config is refused. */
function unknownOutput(spec: never): never {
  throw new TypeError(`unknown output type ${JSON.stringify((spec as { type?: unknown }).type)}`);
}

/** Builds every configured output; a spool that cannot be opened throws (the daemon should refuse to start). */
export function createOutputs(configs: OutputSpec[], ctx: OutputContext): RecordOutput[] {
  const out: RecordOutput[] = [];
  try {
    for (const spec of configs) out.push(createOutput(spec, ctx));
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
