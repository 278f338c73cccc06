// An auxiliary daemon's own process: takes its routed events from the host over fd 3 and writes its own log.
import { Socket } from 'node:net';
import { openSync, readSync, fstatSync, closeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { MsgType } from '../kernel/constants';
import type { OutputConfig, OutputSpec } from '../config/schema';
import { closeAll, createOutputs, flushAll, writeAll, type RecordOutput } from '../output/outputs';
import { LogWriter } from '../output/logfile';
import { writerOptions } from './outputs';
import { Frame, FrameReader, decodeEvent, encodeAck, encodeJsonFrame, eventIdOf } from './aux-ipc';

interface AuxConfig {
  name: string;
  log: OutputConfig;
  outputs: OutputSpec[];
  nodeName: string | null;
  contidKernel: boolean;
  /** Run as this user: dropped to after entering the log directory. */
  uid?: number;
  gid?: number;
}

/** The aux process has no pino: its diagnostics go to the host over stderr, which the host logs. */
const stderrDiag = {
  info: (o: unknown, m?: string): void => void process.stderr.write(`${m ?? ''} ${JSON.stringify(o)}\n`),
  warn: (o: unknown, m?: string): void => void process.stderr.write(`${m ?? ''} ${JSON.stringify(o)}\n`),
  error: (o: unknown, m?: string): void => void process.stderr.write(`${m ?? ''} ${JSON.stringify(o)}\n`),
};

/** How much of the log's tail is read at start to recognise events the host sends again after a crash. */
const TAIL_BYTES = 4 * 1024 * 1024;

/** Event ids (`SEC.MSEC:SERIAL`) in the last TAIL_BYTES of a log. */
export function recentEventIds(path: string): Set<string> {
  const ids = new Set<string>();
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return ids;
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - TAIL_BYTES);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const text = buf.toString('latin1');
    const re = /msg=audit\((\d+\.\d+:\d+)\)/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text))) ids.add(m[1]!);
  } finally {
    closeSync(fd);
  }
  return ids;
}

function main(): void {
  const chan = new Socket({ fd: 3, readable: true, writable: true });
  let log: LogWriter | null = null;
  let outputs: RecordOutput[] = [];
  let cfg: AuxConfig | null = null;
  let recent = new Set<string>();
  let lastSeq = 0;
  let acked = 0;
  let stopping = false;

  const fail = (msg: string): void => {
    chan.write(encodeJsonFrame(Frame.ERROR, { message: msg }));
  };

  const reader = new FrameReader((kind, body) => {
    switch (kind) {
      case Frame.CONFIG: {
        cfg = JSON.parse(body.toString('utf8')) as AuxConfig;
        recent = recentEventIds(cfg.log.file);
        let logPath = cfg.log.file;
        if (cfg.uid !== undefined && cfg.gid !== undefined) {
          // Relative to the log directory from here on, so rotation works without traversing root-only parents.
          process.chdir(dirname(cfg.log.file));
          logPath = basename(cfg.log.file);
          process.setgroups?.([]);
          process.setgid?.(cfg.gid);
          process.setuid?.(cfg.uid);
        }
        log = new LogWriter({
          ...writerOptions({ ...cfg.log, file: logPath }, cfg.nodeName ?? undefined, cfg.contidKernel),
          logger: (level, m) => { if (level !== 'info') fail(m); },
          onError: (e) => fail(`log ${e.op} failed: ${e.message}`),
        });
        try {
          log.open();
        } catch (e) {
          fail((e as Error).message);
          process.exitCode = 1;
          chan.destroy();
          return;
        }
        try {
          outputs = createOutputs(cfg.outputs ?? [], { ...(cfg.nodeName ? { nodeName: cfg.nodeName } : {}), contidKernel: cfg.contidKernel, diag: stderrDiag });
        } catch (e) {
          fail(`outputs: ${(e as Error).message}`);
        }
        chan.write(encodeJsonFrame(Frame.READY, { pid: process.pid, known: recent.size }));
        break;
      }
      case Frame.EVENT: {
        if (!log) return fail('EVENT before CONFIG');
        const { seq, records } = decodeEvent(body);
        const id = records.length ? eventIdOf(records[0]!.payload) : '';
        // After a crash the host resends what was not acknowledged; what already reached the log is skipped.
        if (!(id && recent.has(id))) {
          for (const r of records) if (r.type !== MsgType.EOE) log.writeRecord(r.type, r.payload);
          if (outputs.length) for (const r of records) writeAll(outputs, r.type, r.payload);
        }
        lastSeq = seq;
        break;
      }
      case Frame.ROTATE:
        log?.rotateNow({ auid: 4294967295, uid: 0, ses: 4294967295, pid: process.ppid });
        break;
      case Frame.RESUME:
        log?.resume();
        for (const o of outputs) o.resume?.();
        break;
      case Frame.STOP:
        stopping = true;
        break;
      default:
        fail(`unknown frame kind ${kind}`);
    }
  });

  chan.on('data', (chunk: Buffer) => {
    try {
      reader.push(chunk);
    } catch (e) {
      fail(`protocol error: ${(e as Error).message}`);
      chan.destroy();
      process.exitCode = 1;
      return;
    }
    if (log) {
      // The host may forget an event only once it is in the kernel's page cache: write, then acknowledge.
      log.flush();
      if (outputs.length) flushAll(outputs);
      if (lastSeq > acked) {
        acked = lastSeq;
        chan.write(encodeAck(acked));
      }
    }
    if (stopping) void shutdown();
  });
  chan.on('end', () => void shutdown());
  chan.on('error', () => void shutdown());

  let closing: Promise<void> | null = null;
  const shutdown = (): Promise<void> => {
    closing ??= (async () => {
      await closeAll(outputs).catch(() => undefined);
      if (log) {
        log.close();
        if (lastSeq > acked && !chan.destroyed) chan.write(encodeAck(lastSeq));
      }
      chan.end();
    })();
    return closing;
  };
  // The host owns our lifecycle; a terminal signal only means "stop cleanly".
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  process.on('SIGHUP', () => undefined);
}

if (require.main === module) main();
