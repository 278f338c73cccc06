// auditd-compatible aggregator listener (tcp_listen_port), hardened: TLS client certificates, node= bound to the peer,
// caps, rate limit.
import { Buffer } from 'node:buffer';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { LISTEN_DEFAULTS, type ListenConfig, type NodePolicy } from '../../config/schema';
import { IoError } from '../../errors';
import { readPem } from '../../safefs';
import { AUDIT_LINE_RE, vetAuditLine } from '../audit-line';
import type { Diag } from '../output';
import type { SinkState } from '../sink';
import { FrameParser, RMW, frame, type ParsedItem } from './protocol';

// The log's state drives the reply type as auditd's write_to_log does; the type is the sink's (src/output/sink.ts).
export type { SinkState } from '../sink';

export interface AggregatorOptions {
  diag?: Diag;
  /** Current state of the log the sink writes to; default always 'ok'. */
  state?: () => SinkState;
  /** DAEMON_ACCEPT / DAEMON_CLOSE bodies as auditd writes them (`addr=... port=... res=...`). */
  onConnection?: (kind: 'accept' | 'close', body: string) => void;
  /**
   * Called after the records of one received chunk went to the sink (a log of its own flushes here); false when that
   * flush failed, and the chunk's records are answered DISKERROR instead of ACK (the client keeps them to send again).
   */
  afterBatch?: () => boolean | void;
}

export interface Aggregator {
  readonly port: number;
  /** The address the listener is bound to. */
  readonly address: string;
  stats(): Record<string, number>;
  close(): Promise<void>;
}

/**
 * Replies a client has not read; past this the socket is not read either, so a client that never reads stays bounded.
 */
const MAX_UNREAD_REPLIES = 256 * 1024;
/** A TLS handshake must finish in this time whatever the idle timeout is. */
const HANDSHAKE_MS = 10_000;
/** DAEMON_ACCEPT res=no records written per second at most; a connection flood is counted, not logged line by line. */
const REJECT_RECORDS_PER_S = 10;
/** Token buckets kept for addresses without a connection (so reconnecting does not refill one) before pruning. */
const MAX_BUCKETS = 4096;
/** What a certificate name or peer identity may contain to be written as node= (a host name, IPv4 or IPv6). */
const IDENTITY_RE = /^[A-Za-z0-9:][A-Za-z0-9._:-]{0,252}$/;

/**
 * The listener's TLS key material from the configured files, read with a size bound and checked; a bad file is an
 * IoError.
 */
export function listenTlsOptions(t: NonNullable<ListenConfig['tls']>): tls.SecureContextOptions {
  const o: tls.SecureContextOptions = {
    cert: readPem(t.cert, 'listener certificate'),
    key: readPem(t.key, 'listener key'),
    ca: readPem(t.ca, 'client CA'),
    minVersion: 'TLSv1.2',
  };
  try {
    tls.createSecureContext(o);
  } catch (e) {
    throw new IoError(
      `cannot use the listener's TLS files ${t.cert}, ${t.key}, ${t.ca}: ${(e as Error).message}`,
      'E_TLS',
      { cause: e },
    );
  }
  return o;
}

export type VetResult = { ok: true; line: Buffer; escaped: number } | { ok: false; reason: string };

/**
 * What goes into the log for one received record, or why it does not. The line must be an auditd line
 * (vetAuditLine, src/output/audit-line.ts: auditd's header, one ENRICHED separator at most, no newline or NUL); the
 * control bytes a host keeps in a user message's text (TAB, CR, ESC, DEL) are written `\ooo`, so no peer can write
 * a second line or a terminal escape and the host's record still arrives; and its node= is bound to what the peer
 * authenticated as:
 *  - no node=: the peer's identity is added, so a remote record can never pass for a local one;
 *  - prefix: a claimed name other than the identity is kept behind it, `node=IDENTITY/CLAIMED`;
 *  - check:  a claimed name other than the identity refuses the record;
 *  - keep:   auditd's behaviour, the claimed name is written as sent.
 */
export function vetLine(payload: Buffer, identity: string, policy: NodePolicy): VetResult {
  const v = vetAuditLine(trimLine(payload).toString('latin1'));
  if ('problem' in v) return { ok: false, reason: v.problem };
  const { line: text, escaped } = v;
  const claimed = (AUDIT_LINE_RE.exec(text) as RegExpExecArray)[1];
  if (claimed === undefined) return { ok: true, line: Buffer.from(`node=${identity} ${text}`, 'latin1'), escaped };
  if (!IDENTITY_RE.test(claimed)) return { ok: false, reason: 'node= is not a host name or address' };
  if (policy === 'keep' || claimed === identity) return { ok: true, line: Buffer.from(text, 'latin1'), escaped };
  if (policy === 'check') return { ok: false, reason: `node=${claimed} is not the peer's identity ${identity}` };
  const rest = text.slice(`node=${claimed}`.length);
  return { ok: true, line: Buffer.from(`node=${identity}/${claimed}${rest}`, 'latin1'), escaped };
}

/** The name a verified client certificate stands for: its first DNS subjectAltName, else its subject CN. */
export function certIdentity(cert: tls.PeerCertificate | null | undefined): string | null {
  if (!cert || Object.keys(cert).length === 0) return null;
  const san = (cert.subjectaltname ?? '').split(/,\s*/).find((s) => s.startsWith('DNS:'));
  const cn = cert.subject?.CN;
  const name = san ? san.slice(4) : Array.isArray(cn) ? cn[0] : cn;
  return typeof name === 'string' && IDENTITY_RE.test(name) ? name : null;
}

interface Bucket {
  tokens: number;
  last: number;
}

/**
 * Accepts managed frames and ascii lines on one port, as auditd's listener does, and sends each vetted record to
 * `sink`. A managed MESSAGE is acked after the sink took it, the point where auditd acks too; a refused record (see
 * vetLine) is acked as well, since sending it again cannot make it valid, and counted (`invalid`); one written with
 * escaped control bytes is counted `escaped`. When the log cannot take
 * records the reply is DISKFULL/DISKERROR and the client keeps the record; a low disk gives DISKLOW.
 *
 * A peer over its rate is not dropped but slowed down: the socket is no longer read until its bucket has tokens
 * again, so a managed client waits for acks and nothing it sent is lost.
 */
export function startAggregator(
  cfg: ListenConfig,
  sink: (line: Buffer) => void,
  opts: AggregatorOptions = {},
): Promise<Aggregator> {
  const counters = {
    connections: 0,
    active: 0,
    rejected: 0,
    records: 0,
    heartbeats: 0,
    refused: 0,
    protocolErrors: 0,
    invalid: 0,
    /** Records written with control bytes of their text escaped (\ooo). */
    escaped: 0,
    throttled: 0,
    idleClosed: 0,
    tlsRefused: 0,
    /** Records answered DISKERROR because the flush after them failed. */
    diskErrors: 0,
  };
  const D = LISTEN_DEFAULTS;
  const maxConnections = cfg.maxConnections ?? D.maxConnections;
  const policy = cfg.nodePolicy ?? D.nodePolicy;
  const rate = cfg.rateLimit ?? D.rateLimit;
  const burst = Math.max(1, cfg.rateBurst ?? D.rateBurst);
  const perAddr = new Map<string, number>();
  const buckets = new Map<string, Bucket>();
  const sockets = new Set<net.Socket>();
  const diag = opts.diag;
  const state = opts.state ?? (() => 'ok' as SinkState);
  let tlsOptions: tls.SecureContextOptions | null = null;
  try {
    if (cfg.tls) tlsOptions = listenTlsOptions(cfg.tls);
  } catch (e) {
    return Promise.reject(e);
  }
  let rejectTokens = REJECT_RECORDS_PER_S;
  let rejectLast = Date.now();

  /**
   * auditd's op= names for a refusal (port, dup), plus ours: cap (max_connections) and tls (handshake or certificate).
   */
  const reject = (who: string, ipv4: string, rport: number, why: string, op: 'port' | 'dup' | 'cap' | 'tls'): void => {
    counters.rejected++;
    const now = Date.now();
    rejectTokens = Math.min(REJECT_RECORDS_PER_S, rejectTokens + ((now - rejectLast) * REJECT_RECORDS_PER_S) / 1000);
    rejectLast = now;
    if (rejectTokens >= 1) {
      rejectTokens--;
      opts.onConnection?.('accept', `op=${op} ${who} res=no`);
      diag?.warn({ addr: ipv4, port: rport, why }, 'TCP connection rejected');
    }
  };

  const bucketFor = (addr: string): Bucket => {
    let b = buckets.get(addr);
    if (!b) {
      if (buckets.size >= MAX_BUCKETS) {
        const now = Date.now();
        for (const [a, x] of buckets)
          if (!perAddr.has(a) && x.tokens + ((now - x.last) * rate) / 1000 >= burst) buckets.delete(a);
      }
      b = { tokens: burst, last: Date.now() };
      buckets.set(addr, b);
    }
    return b;
  };

  const server = net.createServer((raw) => {
    const addr = raw.remoteAddress ?? '?';
    const rport = raw.remotePort ?? 0;
    const ipv4 = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
    const who = `addr=${ipv4}:${rport} port=${rport}`;
    const n = perAddr.get(addr) ?? 0;
    const ports = cfg.clientPorts;
    let why = '';
    let op: 'port' | 'dup' | 'cap' = 'cap';
    if (sockets.size >= maxConnections) why = `${maxConnections} connections already`;
    else if (n >= cfg.maxPerAddr) [why, op] = [`${cfg.maxPerAddr} connections from this address already`, 'dup'];
    else if (ports && (rport < ports.min || rport > ports.max))
      [why, op] = ['source port outside client_ports', 'port'];
    if (why) {
      reject(who, ipv4, rport, why, op);
      raw.destroy();
      return;
    }
    perAddr.set(addr, n + 1);
    sockets.add(raw);
    raw.on('error', () => {
      // a reset client; 'close' does the bookkeeping
    });
    let accepted = false;
    raw.on('close', () => {
      sockets.delete(raw);
      const left = (perAddr.get(addr) ?? 1) - 1;
      if (left <= 0) perAddr.delete(addr);
      else perAddr.set(addr, left);
      if (accepted) {
        counters.active--;
        opts.onConnection?.('close', `${who} res=success`);
      }
    });
    // A connection that never speaks, or never finishes its TLS handshake (HANDSHAKE_MS), cannot hold a slot for ever.
    const idleMs = cfg.clientMaxIdle > 0 ? cfg.clientMaxIdle * 1000 : 0;
    const onIdle = (): void => {
      counters.idleClosed++;
      diag?.warn({ addr: ipv4 }, 'client idle too long');
      raw.destroy();
    };

    const established = (stream: net.Socket, identity: string, certName: string | null): void => {
      accepted = true;
      counters.connections++;
      counters.active++;
      opts.onConnection?.('accept', `${who}${certName ? ` acct="${certName}"` : ''} res=success`);
      raw.setNoDelay(true);
      raw.setKeepAlive(true);
      if (idleMs) stream.setTimeout(idleMs, onIdle);
      serve(stream, raw, identity, ipv4, addr);
    };

    if (!tlsOptions) {
      established(raw, ipv4, null);
      return;
    }
    // The handshake and the certificate check are Node's tls.Server's own: the raw socket is handed to it.
    const hs = setTimeout(() => fail('TLS handshake not finished in time'), HANDSHAKE_MS);
    let done = false;
    const key = `${addr}|${rport}`;
    function fail(reason: string): void {
      if (done) return;
      done = true;
      handshakes.delete(key);
      clearTimeout(hs);
      counters.tlsRefused++;
      reject(who, ipv4, rport, reason, 'tls');
      raw.destroy();
    }
    handshakes.set(key, {
      fail,
      secure: (ts: tls.TLSSocket) => {
        if (done) return;
        const name = ts.authorized ? certIdentity(ts.getPeerCertificate()) : null;
        if (cfg.tls?.requireClientCert !== false && !ts.authorized)
          return fail(`client certificate refused: ${String(ts.authorizationError ?? 'none sent')}`);
        if (ts.authorized && !name) return fail('client certificate has no usable name (DNS subjectAltName or CN)');
        done = true;
        handshakes.delete(key);
        clearTimeout(hs);
        established(ts, name ?? ipv4, name);
      },
    });
    raw.once('close', () => fail('closed during the TLS handshake'));
    tlsServer?.emit('connection', raw);
  });

  const handshakes = new Map<string, { fail: (reason: string) => void; secure: (ts: tls.TLSSocket) => void }>();
  const tlsKey = (s: tls.TLSSocket): string => `${s.remoteAddress ?? '?'}|${s.remotePort ?? 0}`;
  const tlsServer = tlsOptions
    ? tls.createServer({
        ...tlsOptions,
        requestCert: true,
        rejectUnauthorized: cfg.tls?.requireClientCert !== false,
        handshakeTimeout: HANDSHAKE_MS,
      })
    : null;
  tlsServer?.on('secureConnection', (ts: tls.TLSSocket) => {
    const h = handshakes.get(tlsKey(ts));
    if (h) h.secure(ts);
    else ts.destroy();
  });
  tlsServer?.on('tlsClientError', (e: Error, ts: tls.TLSSocket) => {
    handshakes.get(tlsKey(ts))?.fail(`TLS: ${e.message}`);
    ts.destroy();
  });

  /** The record loop of one authenticated connection. */
  function serve(stream: net.Socket, raw: net.Socket, identity: string, ipv4: string, addr: string): void {
    const parser = new FrameParser();
    const bucket = rate > 0 ? bucketFor(addr) : null;
    /** A parsed item waiting for a token. */
    let held: ParsedItem | null = null;
    let waitRate: NodeJS.Timeout | null = null;
    let waitDrain = false;
    let invalidSeen = 0;
    const replies: Buffer[] = [];
    /** Replies (index in `replies`, and sequence) to records logged since the last flush: ACKs until it succeeds. */
    const logged: Array<{ at: number; seq: number }> = [];

    // The socket is read only when the parser has nothing complete left, so a connection holds at most one frame and
    // one chunk whatever it sends and however slowly it is let through.
    const flow = (): void => {
      if (waitRate || waitDrain || held) stream.pause();
      else stream.resume();
    };
    const take = (): number => {
      if (!bucket) return 0;
      const now = Date.now();
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.last) * rate) / 1000);
      bucket.last = now;
      if (bucket.tokens >= 1) {
        bucket.tokens--;
        return 0;
      }
      return Math.max(1, Math.ceil(((1 - bucket.tokens) * 1000) / rate));
    };
    const sendReplies = (): void => {
      if (replies.length === 0 || stream.destroyed) return;
      const ok = stream.write(replies.length === 1 ? (replies[0] as Buffer) : Buffer.concat(replies));
      replies.length = 0;
      logged.length = 0;
      if (!ok && stream.writableLength > MAX_UNREAD_REPLIES && !waitDrain) {
        waitDrain = true;
        flow();
        stream.once('drain', () => {
          waitDrain = false;
          flow();
        });
      }
    };
    const invalid = (reason: string): void => {
      counters.invalid++;
      // One warning for the first refused record of a connection and then one per 1000: a peer cannot flood
      // diagnostics.
      if (invalidSeen++ % 1000 === 0)
        diag?.warn({ addr: ipv4, node: identity, reason, refused: invalidSeen }, 'remote record refused');
    };
    /** Both formats (ascii lines, managed frames) log a record the same way: vetted, bound to the peer, then sunk. */
    const logRecord = (payload: Buffer): void => {
      const v = vetLine(payload, identity, policy);
      if (!v.ok) invalid(v.reason);
      else {
        sink(v.line);
        counters.records++;
        if (v.escaped > 0) counters.escaped++;
      }
    };

    const handle = (item: ParsedItem): boolean => {
      if (item.kind === 'error') {
        counters.protocolErrors++;
        diag?.warn({ addr: ipv4, reason: item.reason }, 'remote client protocol error; closing');
        stream.destroy();
        raw.destroy();
        return false;
      }
      if (item.kind === 'line') {
        // ascii format: no acks, a line is logged when it arrives.
        if (trimLine(item.payload).length === 0) return true;
        if (!accepts(state())) {
          counters.refused++;
          return true;
        }
        logRecord(item.payload);
        return true;
      }
      const { type, seq } = item.header;
      if (type === RMW.HEARTBEAT) {
        counters.heartbeats++;
        replies.push(frame(RMW.ACK, seq));
        return true;
      }
      const st = state();
      if (!accepts(st)) {
        counters.refused++;
        replies.push(
          st === 'disk-full'
            ? frame(RMW.DISKFULL, seq, 'disk full')
            : frame(RMW.DISKERROR, seq, st === 'suspended' ? 'remote logging suspended' : 'disk write error'),
        );
        return true;
      }
      logRecord(item.payload);
      logged.push({ at: replies.length, seq });
      replies.push(st === 'disk-low' ? frame(RMW.DISKLOW, seq) : frame(RMW.ACK, seq));
      return true;
    };

    const drain = (): void => {
      let took = false;
      for (;;) {
        const item = held ?? parser.take(1)[0];
        held = null;
        if (!item) break;
        const wait = take();
        if (wait > 0) {
          // Over the rate: the socket is not read until the bucket refills; nothing read is dropped.
          held = item;
          counters.throttled++;
          waitRate = setTimeout(() => {
            waitRate = null;
            drain();
          }, wait);
          break;
        }
        took = true;
        if (!handle(item)) return;
      }
      if (took && opts.afterBatch?.() === false) {
        // Not on disk as promised (a failed write or sync): auditd answers such records DISKERROR, and so does this.
        counters.diskErrors += logged.length;
        for (const l of logged) replies[l.at] = frame(RMW.DISKERROR, l.seq, 'disk write error');
      }
      sendReplies();
      flow();
    };

    stream.on('data', (chunk: Buffer) => {
      parser.feed(chunk);
      if (!waitRate) drain();
      else flow();
    });
    stream.on('error', () => {
      // 'close' on the raw socket does the bookkeeping
    });
    stream.on('close', () => {
      if (waitRate) clearTimeout(waitRate);
      waitRate = null;
      raw.destroy();
    });
  }

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: cfg.port, host: cfg.address, backlog: cfg.queue }, () => {
      server.off('error', reject);
      server.on('error', (e) => diag?.error({ err: String(e) }, 'aggregator listener error'));
      const a = server.address() as net.AddressInfo;
      resolve({
        port: a.port,
        address: a.address,
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
