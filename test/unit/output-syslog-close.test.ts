// A syslog peer that stops reading while the output closes: what is still in this process is not counted delivered;
// after a restart on the same spool, every record reaches a peer that reads.
import { test } from 'node:test';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { SyslogOutput } from '../../src/output/syslog';
import type { SyslogOutputSpec } from '../../src/config/schema';
import { captureDiag, payload, syslogSpec, tmpDir, waitFor } from '../helpers/peers';

const USER = 1005;

const spec = (port: number, dir: string): SyslogOutputSpec => syslogSpec(port, dir, { name: 'stall' });

function listen(onSocket: (s: net.Socket) => void): Promise<net.Server> {
  return new Promise((resolve) => {
    const srv = net.createServer(onSocket);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

test('syslog output closed while its peer stalls: nothing left in this process is committed; a restart resends it', async () => {
  const dir = tmpDir('amsyslogclose');
  const spoolDir = path.join(dir, 'spool');
  const stalled: net.Socket[] = [];
  // Reads nothing: the kernel's buffers fill, then Node's.
  const stall = await listen((s) => {
    s.pause();
    stalled.push(s);
  });
  const N = 40000;
  let out: SyslogOutput | null = null;
  try {
    out = new SyslogOutput(spec((stall.address() as net.AddressInfo).port, spoolDir), {
      contidKernel: false,
      diag: captureDiag(),
    });
    await waitFor(() => (out!.stats() as { connected: boolean }).connected, 5000, 'connected');
    for (let i = 0; i < N; i++) out.writeRecord(USER, payload(i, ' '.repeat(200)));
    out.flush();
    await new Promise((r) => setTimeout(r, 300));
    await out.close();
    out = null;
  } finally {
    for (const s of stalled) s.destroy();
    stall.close();
  }
  // The same spool, a peer that reads: every record arrives (a record the stalled peer got may come twice).
  const seen = new Set<number>();
  let buf = '';
  const reader = await listen((s) =>
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let m, re = /seq=(\d+)/g; (m = re.exec(buf));) seen.add(Number(m[1]));
      buf = buf.slice(Math.max(0, buf.length - 400));
    }),
  );
  try {
    out = new SyslogOutput(spec((reader.address() as net.AddressInfo).port, spoolDir), {
      contidKernel: false,
      diag: captureDiag(),
    });
    await waitFor(() => seen.size === N, 30000, `all ${N} records after the restart (${seen.size})`);
  } finally {
    await out?.close();
    reader.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
