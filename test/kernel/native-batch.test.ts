// The addon's batch hand-over on a real NETLINK_AUDIT socket: one reused lengths array, a count, whole drains.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NativeAuditSocket, TRUNCATED_FLAG } from '../../src/kernel/socket';
import { MsgType, NLMSG_ERROR, NLMSG_HDRLEN } from '../../src/kernel/constants';
import { encodeRequest } from '../../src/kernel/wire';
import { kernelSkipReason, withKernel } from '../helpers/kernel';

interface Call {
  lengths: Uint32Array;
  count: number | undefined;
  datagrams: { type: number; seq: number; len: number }[];
}

/** Queues `n` AUDIT_GET requests (each answered by a status reply and an ACK) before reading, then drains them. */
async function drainReplies(s: NativeAuditSocket, n: number, firstSeq: number): Promise<Call[]> {
  for (let i = 0; i < n; i++) s.send(encodeRequest(MsgType.GET, firstSeq + i, undefined, true));
  const calls: Call[] = [];
  let got = 0;
  // After a short read the addon reads by its timer, which is unref'd, with its poll stopped (in the daemon, other
  // handles keep the loop alive): until the status replies the kernel sends from its own kthreads arrive, nothing
  // else would keep this test's loop running. This timeout does, and bounds the wait.
  let keep: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve, reject) => {
    keep = setTimeout(() => reject(new Error(`${got} of ${2 * n} datagrams after 10 s`)), 10000);
    s.start(
      (batch, lengths, count) => {
        const datagrams: Call['datagrams'] = [];
        let off = 0;
        // The bytes are valid only during the call: everything the test checks is read here.
        for (let i = 0; i < (count ?? lengths.length); i++) {
          const len = lengths[i]! & ~TRUNCATED_FLAG;
          if (len >= NLMSG_HDRLEN)
            datagrams.push({ type: batch.readUInt16LE(off + 4), seq: batch.readUInt32LE(off + 8), len });
          off += len;
        }
        calls.push({ lengths, count, datagrams });
        got += datagrams.length;
        if (got >= 2 * n) resolve();
      },
      (e) => reject(e),
    );
  }).finally(() => clearTimeout(keep));
  s.stop();
  return calls;
}

describe('native batch hand-over (real kernel)', { skip: kernelSkipReason() }, () => {
  it('hands every drain over with one reused lengths array and the count of its entries', () =>
    withKernel(async () => {
      // 300 requests: 600 datagrams queued, more than one recvmmsg reads at once.
      const n = 300;
      const s = new NativeAuditSocket({ receiveBuffer: 8 * 1024 * 1024, coalesceMs: 2 });
      try {
        const first = await drainReplies(s, n, 1000);
        const second = await drainReplies(s, n, 5000);
        const all = [...first, ...second];
        for (const c of all) {
          assert.equal(typeof c.count, 'number', 'the addon passes how many lengths belong to the call');
          assert.ok(c.count! >= 1 && c.count! <= c.lengths.length);
        }
        // The same Uint32Array every call: no ArrayBuffer allocated (and collected) per batch.
        for (const c of all) assert.equal(c.lengths, all[0]!.lengths);
        // Nothing lost or duplicated: a status reply and an ACK per request.
        for (const [calls, base] of [
          [first, 1000],
          [second, 5000],
        ] as const) {
          const d = calls.flatMap((c) => c.datagrams);
          assert.equal(d.length, 2 * n);
          const seqs = new Map<number, number[]>();
          for (const x of d) {
            assert.ok(x.type === MsgType.GET || x.type === NLMSG_ERROR, `unexpected type ${x.type}`);
            seqs.set(x.seq, [...(seqs.get(x.seq) ?? []), x.type]);
          }
          // (The kernel sends each status reply from a kthread of its own: their order is not the requests'.)
          for (let i = 0; i < n; i++) assert.deepEqual(seqs.get(base + i)?.sort(), [MsgType.GET, NLMSG_ERROR].sort());
        }
      } finally {
        s.close();
      }
    }));
});
