// Only the kernel speaks on the audit socket: datagrams another process sends to our port (a forged record, forged
// replies to a pending request) are dropped by the addon and counted, and the kernel's own replies still arrive.
// Root and the real NETLINK_AUDIT family, but no audit state is changed: nothing registers, no rule, no AUDIT_SET.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { AuditClient } from '../../src/kernel/client';
import { kernelSkipReason } from '../helpers/kernel';

// A second NETLINK_AUDIT socket unicasting to the client's port (root has CAP_NET_ADMIN): what a host-network
// container with NET_ADMIN could send to the daemon's port, which /proc/net/netlink lists.
const SENDER = `
import socket, struct, sys
port, seq = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)
s.bind((0, 0))
def send(t, sq, payload):
    s.sendto(struct.pack('<IHHII', 16 + len(payload), t, 0, sq, 0) + payload, (port, 0))
send(1300, 0, b'audit(1700000000.000:4242): arch=c000003e syscall=59 success=yes exit=0 pid=1 uid=0 auid=0 '
              b'contid=999 comm="forged"\\0')
# an AUDIT_GET reply (audit_status: pid 4242, backlog_limit 31337) and its ACK, for the request about to be sent
send(1000, seq, struct.pack('<11I', 0, 2, 1, 4242, 0, 31337, 0, 0, 0, 0, 0))
send(2, seq, struct.pack('<i', 0) + struct.pack('<IHHII', 16, 1000, 5, seq, 0))
print('sent')
`;

const skip = kernelSkipReason() ?? (spawnSync('python3', ['-c', 'pass']).status === 0 ? undefined : 'needs python3');

describe('datagrams not from the kernel (real NETLINK_AUDIT)', { skip }, () => {
  it('drops a forged record and forged replies, counts them, and still reads the kernel', async () => {
    const c = await AuditClient.open({ timeoutMs: 5000 });
    try {
      const records: string[] = [];
      c.onRecords((type, buf, start, end) => records.push(`${type} ${buf.toString('latin1', start, end)}`));
      // The forged datagrams are queued before the request is sent and before the loop reads anything: on a client
      // that believed any sender, the forged reply and ACK (first in the queue) would answer getStatus.
      const next = ((c as unknown as { seq: number }).seq + 1) >>> 0;
      const r = spawnSync('python3', ['-c', SENDER, String(c.socket.portId), String(next)], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'sent');
      const st = await c.getStatus();
      assert.notEqual(st.pid, 4242, 'the forged AUDIT_GET reply answered the request');
      assert.notEqual(st.backlogLimit, 31337, 'the forged AUDIT_GET reply answered the request');
      // A second genuine reply agrees (the kernel's backlog_limit did not change in between).
      assert.equal((await c.getStatus()).backlogLimit, st.backlogLimit);
      assert.deepEqual(records, [], 'the forged record reached the record sink');
      assert.equal(c.counters.records, 0);
      assert.equal(c.counters.strayReplies, 0, 'a forged reply was read');
      assert.equal(c.counters.foreign, 3, 'the three forged datagrams are counted');
      assert.equal({ ...c.counters }.foreign, 3, 'status output (a spread of the counters) shows the count');
    } finally {
      c.close();
    }
  });
});
