// The host's aggregator (`host.listen`): records from remote auditd peers, into a log of their own or the host log.
import { dirname } from 'node:path';
import { mkdirSync } from 'node:fs';
import { MsgType } from '../kernel/constants';
import type { ListenConfig, OutputConfig } from '../config';
import type { LogWriter, Requester } from '../output/logfile';
import type { Sink } from '../output/sink';
import { createSink } from '../output/sinks';
import type { DiskSpaceGuard } from '../output/diskspace';
import { startAggregator, type Aggregator, type SinkState } from '../output/remote/aggregator';
import { writerOptions } from './outputs';
import type { RecordPath } from './record-path';
import type { Diag } from './diagnostics';

/**
 * The remote log is a sink of its own (src/output/sink.ts: log, disk guard, the once-a-second space check). The host
 * log still has its own writer and guard in record-path.ts: moving it to a sink means the sink must let the log be
 * replaced on reload without rebuilding the outputs (a reload keeps the host's outputs running).
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
    this.aggregator = await startAggregator(listen, (line) => (rlog?.log ?? host.log)?.writeLine(line), {
      state: () => (rlog ? (rlog.checkSpace(), rlog.state()) : sinkState(host.log, host.diskGuard)),
      onConnection: (kind, body) => {
        const type = kind === 'accept' ? MsgType.DAEMON_ACCEPT : MsgType.DAEMON_CLOSE;
        if (rlog) {
          rlog.writeDaemonRecord(type, body);
          rlog.log.flush();
        } else host.daemonRecord(type, body);
      },
      afterBatch: () => rlog?.flush(),
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

/** What a log's state means to a remote peer: a full disk says DISKFULL even when its action suspended the log. */
function sinkState(log: LogWriter | null, guard: DiskSpaceGuard | null): SinkState {
  if (guard?.lastLevel === 'disk_full') return 'disk-full';
  if (log?.isSuspended) return 'suspended';
  return guard && guard.lastLevel !== 'ok' ? 'disk-low' : 'ok';
}
