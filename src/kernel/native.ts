// Loads the C++ addon (socket, readiness, batching, u64 packing, the logs' fsync thread) and types its surface.
import bindings from 'bindings';

export interface NativeAuditNetlink {
  readonly fd: number;
  readonly portId: number;
  /** Datagrams dropped because a process, not the kernel, sent them (sender nl_pid != 0). */
  readonly foreign: number;
  send(buf: Buffer): number;
  start(
    cb: (err: NativeError | null, batch?: Buffer, lengths?: Uint32Array, count?: number) => void,
    opts?: { coalesceMs?: number },
  ): void;
  stop(): void;
  close(): void;
  setReceiveBuffer(bytes: number): number;
}

/** Errors thrown by the addon carry the errno name, number and failing syscall. */
export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

interface NativeModule {
  /** `fd` adopts an inherited socket; anything but a NETLINK_AUDIT raw socket is refused (EPROTOTYPE). */
  AuditNetlink: new (opts: { groups?: number; receiveBuffer?: number; fd?: number }) => NativeAuditNetlink;
  contidToU32Pair(id: bigint): [number, number];
  u32PairToContid(low: number, high: number): bigint;
  contidToBytes(id: bigint): Buffer;
  bytesToContid(buf: Buffer, offset?: number): bigint;
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
  /** One datagram to an AF_UNIX socket path ('@' = abstract): systemd's sd_notify protocol; `fd` in SCM_RIGHTS. */
  notifySocket(path: string, message: string, fd?: number): void;
  /** The background fsync thread (native/log_sync.cc); see src/output/log/file.ts's Syncer. */
  syncOpen(fd: number): number;
  /** The syncs completed so far, or -errno for the first failure not read before (syncTake's answer in a number). */
  syncRequest(id: number): number;
  syncTake(id: number): [number, number];
  syncClose(id: number): [number, number];
  /** Marks every fd from `minFd` on close-on-exec (close_range, else /proc/self/fd, else a scan); the way taken. */
  cloexecFrom(minFd: number, how?: 'proc' | 'scan'): 'close_range' | 'proc' | 'scan';
}

let cached: NativeModule | undefined;
export function native(): NativeModule {
  cached ??= bindings('auditmux_netlink') as NativeModule;
  return cached;
}

/** True when an unknown thrown value came from the addon (has code, errno and syscall). */
export function isNativeError(e: unknown): e is NativeError {
  return (
    e instanceof Error && typeof (e as NativeError).errno === 'number' && typeof (e as NativeError).syscall === 'string'
  );
}
