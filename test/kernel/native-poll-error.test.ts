// A socket error (POLLERR) is reported with the socket's own errno and reading goes on: libuv stops a poll handle on
// POLLERR, and a socket left that way read nothing more, silently. The error is a real one: NETLINK_NO_ENOBUFS is
// cleared by another holder of the fd (as systemd's file descriptor store holds one), the receive buffer is the
// smallest, and the kernel's ACKs to a burst of AUDIT_GET requests overrun it (ENOBUFS). AUDIT_GET changes no audit
// state and nothing registers.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { NativeAuditSocket, TRUNCATED_FLAG } from '../../src/kernel/socket';
import { MsgType, NLMSG_HDRLEN } from '../../src/kernel/constants';
import { encodeRequest } from '../../src/kernel/wire';
import type { KernelError } from '../../src/errors';
import { kernelSkipReason } from '../helpers/kernel';

// The inherited fd 3 is the same socket: NETLINK_NO_ENOBUFS (SOL_NETLINK 270, option 5) off for every holder.
const CLEAR_NO_ENOBUFS = `
import socket
s = socket.socket(fileno=3)
s.setsockopt(270, 5, 0)
print(s.getsockopt(270, 5))
s.detach()
`;

const skip = kernelSkipReason() ?? (spawnSync('python3', ['-c', 'pass']).status === 0 ? undefined : 'needs python3');

describe('native socket after POLLERR (real NETLINK_AUDIT)', { skip }, () => {
  it('reports the socket error (ENOBUFS, from poll) and keeps reading: requests after it are answered', async () => {
    const burst = 64;
    const first = 0x5a000;
    const s = new NativeAuditSocket({ receiveBuffer: 1 });
    try {
      const r = spawnSync('python3', ['-c', CLEAR_NO_ENOBUFS], {
        stdio: ['ignore', 'pipe', 'pipe', s.fd],
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), '0', 'NETLINK_NO_ENOBUFS is off');
      const errors: KernelError[] = [];
      const replies = new Set<number>();
      let wake: (() => void) | null = null;
      s.start(
        (batch, lengths, count) => {
          let off = 0;
          for (let i = 0; i < (count ?? lengths.length); i++) {
            const len = lengths[i]! & ~TRUNCATED_FLAG;
            if (len >= NLMSG_HDRLEN && batch.readUInt16LE(off + 4) === MsgType.GET)
              replies.add(batch.readUInt32LE(off + 8));
            off += len;
          }
          wake?.();
        },
        (e) => {
          errors.push(e);
          wake?.();
        },
      );
      /** Resolves once `cond` holds, checked after each delivery; fails after `ms`. */
      const until = (cond: () => boolean, ms: number, what: string): Promise<void> =>
        new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => {
            wake = null;
            reject(new Error(`${what} not within ${ms} ms; errors: ${errors.map((e) => e.message).join('; ')}`));
          }, ms);
          wake = () => {
            if (!cond()) return;
            clearTimeout(t);
            wake = null;
            resolve();
          };
          wake();
        });
      // All sent before the loop looks at the socket: the kernel's ACKs overrun the smallest buffer (some of the
      // burst's replies may be dropped with them: that is what an overrun is).
      for (let i = 0; i < burst; i++) s.send(encodeRequest(MsgType.GET, first + i, undefined, true));
      await until(() => errors.length >= 1, 10_000, 'the overrun reported');
      assert.equal(errors[0]!.code, 'ENOBUFS');
      assert.equal(errors[0]!.errno, 105);
      assert.equal(errors[0]!.syscall, 'poll');
      // Then one request at a time, each answered: the socket is still read. Old: libuv had stopped the poll at the
      // error and none of these was ever read.
      for (let i = 0; i < 8; i++) {
        const seq = first + burst + i;
        s.send(encodeRequest(MsgType.GET, seq, undefined, true));
        await until(() => replies.has(seq), 5000, `the status reply to request ${i + 1} of 8 after the error`);
      }
    } finally {
      s.close();
    }
  });
});
