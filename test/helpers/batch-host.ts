// A host daemon on the emulated kernel that is handed receive batches directly, as the addon hands them over.
import { Buffer } from 'node:buffer';
import pino from 'pino';
import { HostDaemon } from '../../src/daemon/host';
import type { BatchHandler } from '../../src/kernel/socket';
import { EmulatedKernel } from './emulated-kernel';
import { emulatedHostOptions } from './emulated-contid-source';

export interface BatchHost {
  daemon: HostDaemon;
  kernel: EmulatedKernel;
  /** The client's batch handler: the records of one receive batch (see packBatch). */
  feed: BatchHandler;
}

/** Starts a host on `configPath` (no control socket) and takes the batch handler its netlink client installs. */
export async function startBatchHost(configPath: string): Promise<BatchHost> {
  const kernel = new EmulatedKernel({});
  const opts = emulatedHostOptions(kernel);
  let handler: BatchHandler | null = null;
  const sock = opts.socket!;
  const start = sock.start.bind(sock);
  sock.start = (h, e) => {
    handler = h;
    start(h, e);
  };
  const daemon = new HostDaemon({ configPath, diag: pino({ level: 'silent' }), ...opts, noControl: true });
  await daemon.start();
  if (!handler) throw new Error('the host started without reading the kernel');
  return { daemon, kernel, feed: handler };
}

/** One receive batch: the records as netlink datagrams back to back (16-byte header, payload), and their lengths. */
export function packBatch(records: ReadonlyArray<{ type: number; payload: Buffer }>): {
  buf: Buffer;
  lengths: Uint32Array;
  count: number;
} {
  const dgrams = records.map((r) => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(16 + r.payload.length, 0);
    h.writeUInt16LE(r.type, 4);
    return Buffer.concat([h, r.payload]);
  });
  return { buf: Buffer.concat(dgrams), lengths: new Uint32Array(dgrams.map((d) => d.length)), count: dgrams.length };
}
