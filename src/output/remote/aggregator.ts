// auditd-compatible aggregator listener (tcp_listen_port): audisp-remote and auditmux clients send records to the host log.
import * as net from 'node:net';
import type { ListenConfig } from '../../config/schema';
import type { Diag } from '../outputs';
import { FrameParser, RMW, frame } from './protocol';

/** Whether the host log can take records; drives the reply type as auditd's write_to_log does. */
export type SinkState = 'ok' | 'disk-low' | 'disk-full' | 'disk-error' | 'suspended';

export interface AggregatorOptions {
  diag?: Diag;
  /** Current state of the log the sink writes to; default always 'ok'. */
  state?: () => SinkState;
  /** DAEMON_ACCEPT / DAEMON_CLOSE bodies as auditd writes them (`addr=... port=... res=...`). */
  onConnection?: (kind: 'accept' | 'close', body: string) => void;
}

export interface Aggregator {
  readonly port: number;
  stats(): Record<string, number>;
  close(): Promise<void>;
}

/**
 * Accepts managed frames and ascii lines on one port, as auditd's listener does. Each received line goes to `sink`
 * unchanged (so node= names stay) and a managed MESSAGE is acked with its sequence id after the sink took it — the
 * point where auditd acks too. When the log cannot take records, the reply is DISKFULL/DISKERROR and the client keeps
 * the record; a low disk gives DISKLOW (logged, with a warning).
 */
export function startAggregator(cfg: ListenConfig, sink: (line: Buffer) => void, opts: AggregatorOptions = {}): Promise<Aggregator> {
  const counters = { connections: 0, active: 0, rejected: 0, records: 0, heartbeats: 0, refused: 0, protocolErrors: 0 };
  const perAddr = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  const diag = opts.diag;
  const state = opts.state ?? (() => 'ok' as SinkState);

  const server = net.createServer((sock) => {
    const addr = sock.remoteAddress ?? '?';
    const rport = sock.remotePort ?? 0;
    const ipv4 = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
    const who = `addr=${ipv4}:${rport} port=${rport}`;
    const n = perAddr.get(addr) ?? 0;
    const ports = cfg.clientPorts;
    if (n >= cfg.maxPerAddr || (ports && (rport < ports.min || rport > ports.max))) {
      counters.rejected++;
      opts.onConnection?.('accept', `${who} res=no`);
      diag?.warn({ addr: ipv4, port: rport }, 'TCP connection rejected');
      sock.destroy();
      return;
    }
    perAddr.set(addr, n + 1);
    sockets.add(sock);
    counters.connections++;
    counters.active++;
    opts.onConnection?.('accept', `${who} res=success`);
    sock.setNoDelay(true);
    sock.setKeepAlive(true);
    const parser = new FrameParser();
    let active = true;
    const idle = cfg.clientMaxIdle > 0
      ? setInterval(() => {
          if (!active) {
            diag?.warn({ addr: ipv4 }, 'client idle too long');
            sock.destroy();
          }
          active = false;
        }, cfg.clientMaxIdle * 1000)
      : null;

    sock.on('data', (chunk: Buffer) => {
      active = true;
      const replies: Buffer[] = [];
      for (const item of parser.push(chunk)) {
        if (item.kind === 'error') {
          counters.protocolErrors++;
          diag?.warn({ addr: ipv4, reason: item.reason }, 'remote client protocol error; closing');
          sock.destroy();
          return;
        }
        if (item.kind === 'line') {
          // ascii format: no acks, a line is logged when it arrives.
          const line = trimLine(item.payload);
          if (line.length > 0 && accepts(state())) {
            sink(line);
            counters.records++;
          } else if (line.length > 0) {
            counters.refused++;
          }
          continue;
        }
        const { type, seq } = item.header;
        if (type === RMW.HEARTBEAT) {
          counters.heartbeats++;
          replies.push(frame(RMW.ACK, seq));
          continue;
        }
        const st = state();
        if (!accepts(st)) {
          counters.refused++;
          replies.push(
            st === 'disk-full' ? frame(RMW.DISKFULL, seq, 'disk full') : frame(RMW.DISKERROR, seq, st === 'suspended' ? 'remote logging suspended' : 'disk write error'),
          );
          continue;
        }
        const line = trimLine(item.payload);
        sink(line);
        counters.records++;
        replies.push(st === 'disk-low' ? frame(RMW.DISKLOW, seq) : frame(RMW.ACK, seq));
      }
      if (replies.length > 0 && !sock.destroyed) sock.write(replies.length === 1 ? (replies[0] as Buffer) : Buffer.concat(replies));
    });
    sock.on('error', () => {
      // a reset client; 'close' does the bookkeeping
    });
    sock.on('close', () => {
      if (idle) clearInterval(idle);
      sockets.delete(sock);
      counters.active--;
      const left = (perAddr.get(addr) ?? 1) - 1;
      if (left <= 0) perAddr.delete(addr);
      else perAddr.set(addr, left);
      opts.onConnection?.('close', `${who} res=success`);
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: cfg.port, host: cfg.address, backlog: cfg.queue }, () => {
      server.off('error', reject);
      server.on('error', (e) => diag?.error({ err: String(e) }, 'aggregator listener error'));
      const a = server.address() as net.AddressInfo;
      resolve({
        port: a.port,
        stats: () => ({ ...counters }),
        close: () =>
          new Promise<void>((res) => {
            for (const s of sockets) s.destroy();
            server.close(() => res());
          }),
      });
    });
  });
}

function accepts(s: SinkState): boolean {
  return s === 'ok' || s === 'disk-low';
}

/** auditd drops one trailing newline and stops at a NUL (it treats the payload as a C string). */
function trimLine(b: Buffer): Buffer {
  let end = b.indexOf(0);
  if (end < 0) end = b.length;
  while (end > 0 && (b[end - 1] === 0x0a || b[end - 1] === 0x0d)) end--;
  return b.subarray(0, end);
}
