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
  it('reports the socket error (ENOBUFS, from poll) and keeps reading: every status reply arrives', async () => {
    const n = 64;
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
      let keep: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve, reject) => {
        keep = setTimeout(
          () =>
            reject(
              new Error(
                `${replies.size} of ${n} status replies after 10 s; errors: ${errors.map((e) => e.message).join('; ')}`,
              ),
            ),
          10000,
        );
        s.start(
          (batch, lengths, count) => {
            let off = 0;
            for (let i = 0; i < (count ?? lengths.length); i++) {
              const len = lengths[i]! & ~TRUNCATED_FLAG;
              if (len >= NLMSG_HDRLEN && batch.readUInt16LE(off + 4) === MsgType.GET) {
                const seq = batch.readUInt32LE(off + 8);
                if (seq >= first && seq < first + n) replies.add(seq);
              }
              off += len;
            }
            if (replies.size === n) resolve();
          },
          (e) => errors.push(e),
        );
        // All sent before the loop looks at the socket: the ACKs (sent by the kernel without waiting) overrun the
        // buffer, the status replies (sent by kernel threads that wait for room) come as it is read.
        for (let i = 0; i < n; i++) s.send(encodeRequest(MsgType.GET, first + i, undefined, true));
      }).finally(() => clearTimeout(keep));
      assert.ok(errors.length >= 1, 'the overrun is reported');
      assert.equal(errors[0]!.code, 'ENOBUFS');
      assert.equal(errors[0]!.errno, 105);
      assert.equal(errors[0]!.syscall, 'poll');
    } finally {
      s.close();
    }
  });
});
