// Kernel audit client: request/reply with sequence numbers and ACKs, typed errors, daemon registration, record intake.
import { Buffer } from 'node:buffer';
import { DaemonBusyError, KernelError, errnoName } from '../errors';
import { u16le } from '../bytes';
import { MsgType, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, NLMSG_OVERRUN, StatusMask } from './constants';
import { NativeAuditSocket, TRUNCATED_FLAG, type AuditSocket, type NativeSocketOptions } from './socket';
import {
  decodeFeatures,
  decodeSignalInfo,
  decodeSignalInfo2,
  decodeStatus,
  encodeFeatureChange,
  encodeRequest,
  encodeStatus,
  nlAlign,
  statusChangeToStruct,
  type AuditFeatures,
  type AuditStatus,
  type SignalInfo,
  type StatusChange,
} from './wire';

/** Called for each kernel record; the payload is buf[start, end) (the `audit(...)` text, maybe NUL-padded). */
/**
 * `buf` is the receive batch: valid until the batch ends (onBatchEnd); a sink that keeps a record past that copies it.
 */
export type RecordSink = (type: number, buf: Buffer, start: number, end: number) => void;

type Expect = 'ack' | 'single' | 'multi';

interface Pending {
  type: number;
  expect: Expect;
  acked: boolean;
  done: boolean;
  data: Buffer[];
  positive?: number;
  resolve: (p: Pending) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** Reply types the kernel sends for requests (all below FIRST_USER_MSG); any other type is a record. */
const REPLY_TYPES = new Set<number>([
  NLMSG_ERROR,
  NLMSG_DONE,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  MsgType.GET,
  MsgType.LIST_RULES,
  MsgType.SIGNAL_INFO,
  MsgType.SIGNAL_INFO2,
  MsgType.TTY_GET,
  MsgType.GET_FEATURE,
]);

export interface ClientCounters {
  records: number;
  truncated: number;
  strayReplies: number;
  receiveErrors: number;
  /**
   * Datagrams, or the rest of one, dropped because a netlink length does not fit: shorter than a header, or past the
   * datagram's end (nlmsg_len is 32 bits of the sender's choosing).
   */
  malformed: number;
  /**
   * Records whose sink threw (a bug): the rest of their batch is still handed over and the batch still ends; the first
   * error of the batch is thrown after that, to the process's internal-error handler.
   */
  sinkErrors: number;
  /** Datagrams another process sent to our port (forged records or replies): dropped by the socket, never read. */
  readonly foreign: number;
}

export interface AuditClientOptions extends NativeSocketOptions {
  /** Use this transport instead of the native addon (tests, emulated kernels). */
  socket?: AuditSocket;
  /** Per-request timeout. */
  timeoutMs?: number;
}

export class AuditClient {
  private seq = (Date.now() & 0xffff) << 8;
  private readonly pending = new Map<number, Pending>();
  private sink: RecordSink | null = null;
  private batchEnd: (() => void) | null = null;
  private errorHandler: ((e: KernelError) => void) | null = null;
  private closed = false;
  private registeredPid = 0;
  private adopted = false;
  readonly counters: ClientCounters;
  private readonly timeoutMs: number;

  private paused = false;

  private constructor(
    readonly socket: AuditSocket,
    timeoutMs: number,
  ) {
    this.timeoutMs = timeoutMs;
    // `foreign` is the socket's own count (the addon drops those datagrams before any batch), read when asked.
    this.counters = Object.defineProperty(
      { records: 0, truncated: 0, strayReplies: 0, receiveErrors: 0, malformed: 0, sinkErrors: 0 } as ClientCounters,
      'foreign',
      { enumerable: true, get: () => socket.foreign ?? 0 },
    );
    this.listen();
  }

  private listen(): void {
    this.socket.start(
      (batch, lengths, count) => this.onBatch(batch, lengths, count ?? lengths.length),
      (err) => {
        this.counters.receiveErrors++;
        if (this.errorHandler) this.errorHandler(err);
      },
    );
  }

  /**
   * Stops reading the socket (backpressure): the kernel's backlog holds records meanwhile. Replies to requests are
   * not read either, so callers must not await requests while paused.
   */
  pause(): void {
    if (this.paused || this.closed) return;
    this.paused = true;
    this.socket.stop();
  }

  resume(): void {
    if (!this.paused || this.closed) return;
    this.paused = false;
    this.listen();
  }

  static async open(opts: AuditClientOptions = {}): Promise<AuditClient> {
    const socket = opts.socket ?? new NativeAuditSocket(opts);
    return new AuditClient(socket, opts.timeoutMs ?? 5000);
  }

  /** Where kernel records go; `onBatchEnd` runs after each received batch (flush point for writers). */
  onRecords(sink: RecordSink | null, onBatchEnd?: () => void): void {
    this.sink = sink;
    this.batchEnd = onBatchEnd ?? null;
  }

  onReceiveError(handler: (e: KernelError) => void): void {
    this.errorHandler = handler;
  }

  private onBatch(batch: Buffer, lengths: Uint32Array, count: number): void {
    // A sink that throws on one record must not take the rest of the batch with it, nor skip the batch's end: the
    // writers flush there, and lines one log copies from another are only valid within the batch they were made in.
    let failure: unknown = null;
    let off = 0;
    for (let i = 0; i < count; i++) {
      const raw = lengths[i]!;
      const dlen = raw & ~TRUNCATED_FLAG & 0x7fffffff;
      const end = off + dlen;
      if (raw & TRUNCATED_FLAG) this.counters.truncated++;
      if (dlen >= NLMSG_HDRLEN) {
        const type = u16le(batch, off + 4);
        // Every reply type is below the first record type (1100): a record costs a compare, not a set lookup.
        if (type < MsgType.FIRST_USER_MSG && REPLY_TYPES.has(type)) this.onControl(batch, off, end);
        else if (type !== MsgType.REPLACE) {
          // (AUDIT_REPLACE, dropped, is the kernel probing the registered daemon with its binary pid on every
          // AUDIT_SET of the pid, our own shutdown included: not a record, and auditd drops it too.)
          // Records unicast to the daemon carry a payload-only nlmsg_len: the datagram length is the truth.
          this.counters.records++;
          if (this.sink)
            try {
              this.sink(type, batch, off + NLMSG_HDRLEN, end);
            } catch (e) {
              this.counters.sinkErrors++;
              failure ??= e;
            }
        }
      } else this.counters.malformed++;
      off = end;
    }
    try {
      if (this.batchEnd) this.batchEnd();
    } catch (e) {
      failure ??= e;
    }
    if (failure !== null) throw failure;
  }

  private onControl(batch: Buffer, start: number, end: number): void {
    let off = start;
    while (end - off >= NLMSG_HDRLEN) {
      const len = batch.readUInt32LE(off);
      // A message shorter than its header or longer than what is left cannot be stepped over (a length near 2^32
      // would step nowhere or backwards): the rest of the datagram is dropped.
      if (len < NLMSG_HDRLEN || len > end - off) {
        this.counters.malformed++;
        break;
      }
      const type = batch.readUInt16LE(off + 4);
      const seq = batch.readUInt32LE(off + 8);
      const mEnd = off + len;
      const p = this.pending.get(seq);
      if (!p) this.counters.strayReplies++;
      else if (type === NLMSG_ERROR) {
        const err = mEnd - off >= NLMSG_HDRLEN + 4 ? batch.readInt32LE(off + NLMSG_HDRLEN) : -71;
        if (err < 0) {
          const errno = -err;
          this.finish(
            seq,
            p,
            new KernelError(
              errnoName(errno),
              errno,
              this.requestName(p.type),
              `${this.requestName(p.type)}: kernel replied ${errnoName(errno)} (errno ${errno})`,
            ),
          );
        } else {
          p.acked = true;
          if (err > 0) p.positive = err;
          this.maybeDone(seq, p);
        }
      } else if (type === NLMSG_DONE) {
        p.done = true;
        this.maybeDone(seq, p);
      } else if (type !== NLMSG_NOOP) {
        p.data.push(Buffer.from(batch.subarray(off + NLMSG_HDRLEN, mEnd)));
        if (p.expect === 'single') p.done = true;
        this.maybeDone(seq, p);
      }
      off += nlAlign(len);
    }
  }

  private maybeDone(seq: number, p: Pending): void {
    // The kernel sends data replies from a kthread, so the ACK can arrive before or after the data.
    if (p.acked && (p.expect === 'ack' || p.done)) this.finish(seq, p, null);
  }

  private finish(seq: number, p: Pending, err: Error | null): void {
    clearTimeout(p.timer);
    this.pending.delete(seq);
    if (err) p.reject(err);
    else p.resolve(p);
  }

  private requestName(type: number): string {
    for (const [k, v] of Object.entries(MsgType)) if (v === type) return `AUDIT_${k}`;
    return `AUDIT_${type}`;
  }

  private request(type: number, payload: Buffer | undefined, expect: Expect): Promise<Pending> {
    if (this.closed)
      return Promise.reject(new KernelError('EBADF', 9, this.requestName(type), 'audit client is closed'));
    this.seq = (this.seq + 1) >>> 0;
    const seq = this.seq;
    return new Promise<Pending>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(seq)) {
          reject(
            new KernelError(
              'ETIMEDOUT',
              110,
              this.requestName(type),
              `${this.requestName(type)}: no reply from the kernel in ${this.timeoutMs} ms`,
            ),
          );
        }
      }, this.timeoutMs);
      const p: Pending = { type, expect, acked: false, done: false, data: [], resolve, reject, timer };
      this.pending.set(seq, p);
      try {
        this.socket.send(encodeRequest(type, seq, payload, true));
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(seq);
        reject(e);
      }
    });
  }

  async getStatus(): Promise<AuditStatus> {
    const p = await this.request(MsgType.GET, undefined, 'single');
    return decodeStatus(p.data[0] ?? Buffer.alloc(0));
  }

  /** AUDIT_SET with only the given fields in the mask. */
  async setStatus(change: StatusChange): Promise<void> {
    await this.request(MsgType.SET, statusChangeToStruct(change), 'ack');
  }

  /** Resets the kernel's lost counter; returns the value it had. */
  async resetLost(): Promise<number> {
    const p = await this.request(MsgType.SET, encodeStatus({ mask: StatusMask.LOST }), 'ack');
    return p.positive ?? 0;
  }

  async getFeatures(): Promise<AuditFeatures> {
    const p = await this.request(MsgType.GET_FEATURE, undefined, 'single');
    return decodeFeatures(p.data[0] ?? Buffer.alloc(0));
  }

  async setFeature(feature: number, value: boolean, lock: boolean): Promise<void> {
    await this.request(MsgType.SET_FEATURE, encodeFeatureChange(feature, value, lock), 'ack');
  }

  async addRule(rule: Buffer): Promise<void> {
    await this.request(MsgType.ADD_RULE, rule, 'ack');
  }

  async deleteRule(rule: Buffer): Promise<void> {
    await this.request(MsgType.DEL_RULE, rule, 'ack');
  }

  /** Every rule in the kernel, as raw audit_rule_data payloads (multi-part reply until NLMSG_DONE). */
  async listRules(): Promise<Buffer[]> {
    const p = await this.request(MsgType.LIST_RULES, undefined, 'multi');
    return p.data;
  }

  /** Who last sent the daemon a signal (SIGTERM/SIGHUP/SIGUSR1/SIGUSR2); SIGNAL_INFO2 when the kernel has contids. */
  async getSignalInfo(contidKernel = false): Promise<SignalInfo> {
    if (contidKernel) {
      const p = await this.request(MsgType.SIGNAL_INFO2, undefined, 'single');
      return decodeSignalInfo2(p.data[0] ?? Buffer.alloc(12));
    }
    const p = await this.request(MsgType.SIGNAL_INFO, undefined, 'single');
    return decodeSignalInfo(p.data[0] ?? Buffer.alloc(8));
  }

  /**
   * Registers this process as the audit daemon. Refuses when another live process owns the kernel connection
   * (DaemonBusyError names it); a registration left by a dead process is taken over.
   */
  async registerDaemon(pid = process.pid): Promise<void> {
    // Registered before the daemon was built (src/kernel/registration.ts): a second AUDIT_SET would be refused as
    // replacing a live daemon, even by the daemon itself.
    const held = this.socket.registration;
    if (held && held.pid === pid) {
      this.registeredPid = pid;
      this.adopted = held.adopted;
      return;
    }
    const st = await this.getStatus();
    if (st.pid !== 0 && st.pid !== pid && processAlive(st.pid)) throw new DaemonBusyError(st.pid);
    try {
      await this.setStatus({ pid });
    } catch (e) {
      if (e instanceof KernelError && e.code === 'EEXIST') {
        const now = await this.getStatus();
        throw new DaemonBusyError(now.pid);
      }
      throw e;
    }
    this.registeredPid = pid;
  }

  async unregisterDaemon(): Promise<void> {
    if (this.registeredPid === 0) return;
    // An adopted socket's registration names a dead pid: the kernel refuses anyone else's AUDIT_SET pid=0 (EACCES),
    // and lets go when the last copy of the socket closes.
    if (!this.adopted) await this.setStatus({ pid: 0 });
    this.registeredPid = 0;
  }

  get isRegistered(): boolean {
    return this.registeredPid !== 0;
  }

  /** Sends a userspace message (e.g. AUDIT_USER_* from a trusted daemon). */
  async sendUserMessage(type: number, text: string): Promise<void> {
    await this.request(type, Buffer.from(text + '\0', 'utf8'), 'ack');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [seq, p] of this.pending) {
      this.finish(
        seq,
        p,
        new KernelError('EBADF', 9, this.requestName(p.type), 'audit client closed before the reply'),
      );
    }
    this.socket.close();
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
