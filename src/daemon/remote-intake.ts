// The host's aggregator (`host.listen`): records from remote auditd peers, into a log of their own or the host log.
import { dirname } from 'node:path';
import { mkdirSync } from 'node:fs';
import { MsgType } from '../kernel/constants';
import type { ListenConfig, OutputConfig } from '../config';
import { LogWriter, type Requester } from '../output/logfile';
import { DiskSpaceGuard } from '../output/diskspace';
import { startAggregator, type Aggregator, type SinkState } from '../output/remote/aggregator';
import { writerOptions } from './outputs';
import type { RecordPath } from './record-path';
import type { Diag } from './diagnostics';

/**
 * NOTE for src/output/sink.ts (log + outputs + disk guard, being written by the output engineer): the remote log's
 * writer, guard and 1 s statfs throttle below are a near-copy of the host log's in record-path.ts; once the sink
 * lands on main both become one sink each and this file keeps only the aggregator wiring.
 */
export class RemoteIntake {
  private aggregator: Aggregator | null = null;
  private log: LogWriter | null = null;
  /** The remote log's own disk-space guard, from its own settings: peers hear DISKLOW/DISKFULL from it. */
  private guard: { guard: DiskSpaceGuard; checked: number } | null = null;

  constructor(
    private readonly diag: Diag,
    private readonly host: RecordPath,
  ) {}

  async start(listen: ListenConfig, nodeName: string | undefined, contidKernel: boolean): Promise<void> {
    // Remote records (and their DAEMON_ACCEPT/CLOSE) go to a log of their own unless `log: host`: a peer cannot
    // rotate local history away.
    const rlog = listen.log ? this.openLog(listen.log, nodeName, contidKernel) : null;
    this.log = rlog;
    const host = this.host;
    this.aggregator = await startAggregator(listen, (line) => (rlog ?? host.log)?.writeLine(line), {
      state: () => (rlog ? sinkState(rlog, this.checkSpace()) : sinkState(host.log, host.diskGuard)),
      onConnection: (kind, body) => {
        const type = kind === 'accept' ? MsgType.DAEMON_ACCEPT : MsgType.DAEMON_CLOSE;
        if (rlog) {
          rlog.writeDaemonRecord(type, body);
          rlog.flush();
        } else host.daemonRecord(type, body);
      },
      afterBatch: () => {
        rlog?.flush();
        this.checkSpace();
      },
      diag: this.diag,
    });
  }

  /** Same writer, rotation, size and disk-space settings as any log, its own guard. */
  private openLog(out: OutputConfig, nodeName: string | undefined, contidKernel: boolean): LogWriter {
    mkdirSync(dirname(out.file), { recursive: true, mode: 0o700 });
    const w = new LogWriter({
      ...writerOptions(out, nodeName, contidKernel),
      logger: (level, msg) => this.diag[level](msg),
      onError: (e) => {
        this.diag.error(
          { op: e.op, code: e.code, lost: e.lostRecords, log: out.file },
          `remote log ${e.op} failed: ${e.message}`,
        );
        this.guard?.guard.onWriteError(e.code);
      },
    });
    w.open();
    this.guard = { guard: new DiskSpaceGuard(out.file, out.diskSpace, w, this.diag, out.numLogs), checked: 0 };
    return w;
  }

  /** One statfs a second at most, asked by the aggregator before it answers a peer: the level is at most 1 s old. */
  private checkSpace(): DiskSpaceGuard | null {
    const g = this.guard;
    if (!g) return null;
    const now = Date.now();
    if (now - g.checked >= 1000) {
      g.checked = now;
      g.guard.afterFlush();
    }
    return g.guard;
  }

  rotate(by: Requester): void {
    this.log?.rotateNow(by);
  }

  resume(): void {
    this.guard?.guard.resume();
  }

  async close(): Promise<void> {
    await this.aggregator?.close().catch(() => undefined);
    this.log?.close();
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
