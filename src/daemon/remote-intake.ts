// The host's aggregator (`host.listen`): records from remote auditd peers, into a log of their own or the host log.
import { dirname } from 'node:path';
import { mkdirSync } from 'node:fs';
import { MsgType } from '../kernel/constants';
import type { ListenConfig, OutputConfig } from '../config';
import type { Requester } from '../output/logfile';
import type { Sink } from '../output/sink';
import { createSink } from '../output/sinks';
import { startAggregator, type Aggregator } from '../output/remote/aggregator';
import { writerOptions } from './outputs';
import type { RecordPath } from './record-path';
import type { Diag } from './diagnostics';

/**
 * The remote log is a sink of its own (src/output/sink.ts: log, disk guard, the once-a-second space check); with
 * `log: host` remote lines go to the host's sink (record-path.ts) and peers hear its state.
 */
export class RemoteIntake {
  private aggregator: Aggregator | null = null;
  /** The remote log with its own disk-space guard, from its own settings: peers hear DISKLOW/DISKFULL from it. */
  private sink: Sink | null = null;

  constructor(
    private readonly diag: Diag,
    private readonly host: RecordPath,
  ) {}

  async start(listen: ListenConfig, nodeName: string | undefined, contidKernel: boolean): Promise<void> {
    // Remote records (and their DAEMON_ACCEPT/CLOSE) go to a log of their own unless `log: host`: a peer cannot
    // rotate local history away.
    const rlog = listen.log ? this.openLog(listen.log, nodeName, contidKernel) : null;
    this.sink = rlog;
    const host = this.host;
    this.aggregator = await startAggregator(listen, (line) => (rlog ?? host.sink)?.log.writeLine(line), {
      state: () => (rlog ? (rlog.checkSpace(), rlog.state()) : (host.sink?.state() ?? 'ok')),
      onConnection: (kind, body) => {
        const type = kind === 'accept' ? MsgType.DAEMON_ACCEPT : MsgType.DAEMON_CLOSE;
        if (rlog) {
          rlog.writeDaemonRecord(type, body);
          rlog.log.flush();
        } else host.daemonRecord(type, body);
      },
      // The log writes at a batch's end (its flush), whichever log takes the peers' lines.
      afterBatch: () => (rlog ?? host.sink)?.flush() ?? true,
      diag: this.diag,
    });
  }

  /** Same writer, rotation, size and disk-space settings as any log, its own guard. */
  private openLog(out: OutputConfig, nodeName: string | undefined, contidKernel: boolean): Sink {
    mkdirSync(dirname(out.file), { recursive: true, mode: 0o700 });
    return createSink(
      { log: writerOptions(out, nodeName, contidKernel), ...(out.diskSpace ? { diskSpace: out.diskSpace } : {}) },
      {
        ...(nodeName !== undefined ? { nodeName } : {}),
        contidKernel,
        diag: this.diag,
        logger: (level, msg) => this.diag[level](msg),
        onLogError: (e) =>
          this.diag.error(
            { op: e.op, code: e.code, lost: e.lostRecords, log: out.file },
            `remote log ${e.op} failed: ${e.message}`,
          ),
      },
    );
  }

  rotate(by: Requester): void {
    this.sink?.rotate(by);
  }

  resume(): void {
    this.sink?.resume();
  }

  async close(): Promise<void> {
    await this.aggregator?.close().catch(() => undefined);
    await this.sink?.close();
  }

  stats(): Record<string, unknown> {
    return this.aggregator ? { aggregator: this.aggregator.stats() } : {};
  }
}
