// `auditmux collect`: runs the fleet collector in the foreground, or prints a running collector's status file.
import type { Command } from 'commander';
import { ExitCode } from '../errors';
import { loadCollectConfig } from '../collect/config';
import { createDiagnostics } from '../daemon/diagnostics';
import { readBounded } from '../safefs';
import { formatCounters } from './status';

export function registerCollect(
  program: Command,
  io: { out: (s: string) => void },
  setCode: (n: number) => void,
): void {
  program
    .command('collect')
    .description('collect events from NATS JetStream into per-node auditd logs (durable consumer)')
    .requiredOption('-c, --config <file>', 'collector configuration file')
    .option('--status', "print the running collector's counters and exit")
    .action(async (o: { config: string; status?: boolean }) => {
      const cfg = loadCollectConfig(o.config);
      if (o.status) {
        const s = JSON.parse(
          readBounded(cfg.statusFile, {
            limit: 64 * 1024,
            noFollow: true,
            what: 'collector status file',
          }).data.toString('utf8'),
        ) as Record<string, unknown>;
        io.out(formatCounters('auditmux collect', s).join('\n'));
        return;
      }
      const diag = createDiagnostics('info');
      // Loaded here, not at the top: the NATS client is about 80 modules every other subcommand would pay for.
      const { Collector } = await import('../collect/collector');
      const c = new Collector(cfg, diag);
      await c.start();
      diag.info({ stream: cfg.stream, consumer: cfg.consumer, dir: cfg.dir }, 'collector started');
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          diag.info({}, 'collector stopping');
          void c.stop().then(resolve);
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      setCode(ExitCode.OK);
    });
}
