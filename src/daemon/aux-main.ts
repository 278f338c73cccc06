// An auxiliary daemon's own process (isolation: process): takes its routed events from the host over fd 3.
import { statSync } from 'node:fs';
import { Socket } from 'node:net';
import { basename, dirname } from 'node:path';
import { AuxWriter, type AuxWriterConfig } from './aux-writer';
import { spoolFromOwnDir } from '../config/aux-paths';
import { Frame, FrameReader, decodeContainer, decodeForget, encodeAck, encodeJsonFrame } from './aux-ipc';
import { ContainerMirror } from './aux-containers';
import { native } from '../kernel/native';
import { cutUtf8 } from '../records/encode';

interface AuxConfig extends AuxWriterConfig {
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

function main(): void {
  const chan = new Socket({ fd: 3, readable: true, writable: true });
  let writer: AuxWriter | null = null;
  let lastSeq = 0;
  let acked = 0;
  let stopping = false;
  // The containers of the events routed here, as the host sends them: what the outputs and a JSON log show.
  const containers = new ContainerMirror();

  const fail = (msg: string): void => {
    // Cut: the host reads frames of at most MAX_AUX_FRAME bytes from this process.
    chan.write(encodeJsonFrame(Frame.ERROR, { message: cutUtf8(msg, 4096) }));
  };

  const reader = new FrameReader((kind, body) => {
    switch (kind) {
      case Frame.CONFIG: {
        const cfg = JSON.parse(body.toString('utf8')) as AuxConfig;
        let logPath = cfg.log.file;
        if (cfg.uid !== undefined && cfg.gid !== undefined) {
          // Relative to the log directory from here on, so rotation works without traversing root-only parents.
          process.chdir(dirname(cfg.log.file));
          logPath = basename(cfg.log.file);
          // The host made this directory the user's own (prepareAuxLogDir); anything else here is not ours to write.
          const st = statSync('.');
          if (st.uid !== cfg.uid) {
            fail(
              `log directory ${dirname(cfg.log.file)} is owned by uid ${st.uid}, not the daemon's uid ${cfg.uid} (refused)`,
            );
            process.exitCode = 1;
            chan.destroy();
            return;
          }
          // The addon (the log's fsync thread) is loaded while its file is ours to read: the user may not read it.
          native();
          process.setgroups?.([]);
          process.setgid?.(cfg.gid);
          process.setuid?.(cfg.uid);
          // Spools in its own directory are reached from here too (src/config/aux-paths.ts).
          cfg.outputs = cfg.outputs.map((o) =>
            o.spool.dir ? { ...o, spool: { ...o.spool, dir: spoolFromOwnDir(cfg.log.file, o.spool.dir) } } : o,
          );
        }
        const w = new AuxWriter({ ...cfg, containers }, fail, stderrDiag, logPath);
        let known: number;
        try {
          known = w.open();
        } catch (e) {
          fail((e as Error).message);
          process.exitCode = 1;
          chan.destroy();
          return;
        }
        writer = w;
        chan.write(encodeJsonFrame(Frame.READY, { pid: process.pid, known }));
        break;
      }
      case Frame.EVENT: {
        if (!writer) return fail('EVENT before CONFIG');
        lastSeq = writer.writeFrame(body);
        break;
      }
      case Frame.CONTAINER:
      case Frame.FORGET:
        // A bad one is reported and skipped: the events still go to the log, without that container's fields.
        try {
          if (kind === Frame.CONTAINER) {
            const { contid, entry } = decodeContainer(body);
            containers.set(contid, entry);
          } else containers.forget(decodeForget(body));
        } catch (e) {
          const err = e as Error & { code?: string };
          fail(`${err.code ?? 'E_AUX_FRAME'}: ${err.message} (frame skipped)`);
        }
        break;
      case Frame.ROTATE:
        writer?.rotate(process.ppid);
        break;
      case Frame.RESUME:
        writer?.resume();
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
    // After each read, not once per turn of the loop: the host's queue counts what is in flight against its depth,
    // so an ACK held back while the process reads on lets that queue fill sooner.
    if (writer) {
      // The host may forget an event only once it is in the kernel's page cache: write, then acknowledge.
      writer.flush();
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
      if (writer) {
        await writer.close();
        if (lastSeq > acked && !chan.destroyed) chan.write(encodeAck(lastSeq));
        acked = lastSeq;
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
