// The transport seam between the kernel client and a NETLINK_AUDIT endpoint: the real addon, or an emulated kernel.
import { KernelError } from '../errors';
import { AUDIT_NLGRP_READLOG } from './constants';
import { isNativeError, native, type NativeAuditNetlink } from './native';

/**
 * Receives datagrams packed back to back in `batch`; `lengths[i]` is datagram i's size (bit 31 = truncated), for the
 * first `count` entries (all of `lengths` when count is not given). `batch` and `lengths` may be reused for the next
 * call (the native socket refills one of each): they are valid only during it.
 */
export type BatchHandler = (batch: Buffer, lengths: Uint32Array, count?: number) => void;

/** The kernel already names this process as the audit daemon through this socket (registered before the daemon). */
export interface Registration {
  pid: number;
  /**
   * The socket was inherited (systemd's file descriptor store) and the kernel still names the dead predecessor
   * that registered it: records keep coming to it, but only closing it ends that registration.
   */
  adopted: boolean;
}

export interface AuditSocket {
  readonly portId: number;
  /** Set when the socket comes already registered (src/kernel/registration.ts). */
  readonly registration?: Registration;
  /** Datagrams dropped unread because a process, not the kernel, sent them (absent: the transport has none). */
  readonly foreign?: number;
  /** Sends one netlink request; throws KernelError on failure. */
  send(msg: Buffer): void;
  /** Starts delivering received datagrams in batches; errors that do not close the socket go to onError. */
  start(onBatch: BatchHandler, onError: (err: KernelError) => void): void;
  stop(): void;
  close(): void;
}

export const TRUNCATED_FLAG = 0x80000000;

export function toKernelError(e: unknown): KernelError {
  if (e instanceof KernelError) return e;
  if (isNativeError(e)) return new KernelError(e.code, e.errno, e.syscall, e.message);
  return new KernelError('EIO', 5, 'unknown', e instanceof Error ? e.message : String(e));
}

export interface NativeSocketOptions {
  /** Bind the read-only multicast group instead of being a unicast (daemon) socket. */
  multicast?: boolean;
  /** SO_RCVBUFFORCE size in bytes. */
  receiveBuffer?: number;
  /** After each drain, wait this long before the next wake-up (interrupt moderation); 0 = wake on every record. */
  coalesceMs?: number;
  /** Adopt this inherited fd instead of opening a socket; refused unless it is a NETLINK_AUDIT socket. */
  fd?: number;
}

/** The real kernel, through the C++ addon. */
export class NativeAuditSocket implements AuditSocket {
  private readonly nl: NativeAuditNetlink;
  private readonly coalesceMs: number;

  constructor(opts: NativeSocketOptions = {}) {
    this.coalesceMs = opts.coalesceMs ?? 0;
    try {
      const o: { groups?: number; receiveBuffer?: number; fd?: number } = {};
      if (opts.multicast) o.groups = 1 << (AUDIT_NLGRP_READLOG - 1);
      if (opts.receiveBuffer) o.receiveBuffer = opts.receiveBuffer;
      if (opts.fd !== undefined) o.fd = opts.fd;
      this.nl = new (native().AuditNetlink)(o);
    } catch (e) {
      throw toKernelError(e);
    }
  }

  get portId(): number {
    return this.nl.portId;
  }

  get fd(): number {
    return this.nl.fd;
  }

  get foreign(): number {
    return this.nl.foreign;
  }

  send(msg: Buffer): void {
    try {
      this.nl.send(msg);
    } catch (e) {
      throw toKernelError(e);
    }
  }

  start(onBatch: BatchHandler, onError: (err: KernelError) => void): void {
    try {
      this.nl.start(
        (err, batch, lengths, count) => {
          if (err) onError(toKernelError(err));
          else if (batch && lengths) onBatch(batch, lengths, count);
        },
        { coalesceMs: this.coalesceMs },
      );
    } catch (e) {
      throw toKernelError(e);
    }
  }

  stop(): void {
    this.nl.stop();
  }

  close(): void {
    this.nl.close();
  }

  /** SO_RCVBUFFORCE (SO_RCVBUF without CAP_NET_ADMIN); returns the size the kernel granted. */
  setReceiveBuffer(bytes: number): number {
    try {
      return this.nl.setReceiveBuffer(bytes);
    } catch (e) {
      throw toKernelError(e);
    }
  }
}
