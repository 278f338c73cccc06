// `auditmux status` and `aux list` print text others chose (a remote server's reply): no control reaches the terminal.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { formatAuxRows, formatCounters } from '../../src/cli/status';
import { RemoteOutput } from '../../src/output/remote/client';
import { frame, HEADER_SIZE, RMW, unpackHeader } from '../../src/output/remote/protocol';

const EVIL = '\x1b]0;owned\x07\x1b[2J\nauditmux\nlog.records 0\r';
const quietDiag = { debug() {}, info() {}, warn() {}, error() {} };

describe('status output escapes what a remote server sent', () => {
  it('a DISKFULL reply text with escapes and newlines appears escaped on one line', async () => {
    // A hostile (or spoofed: the remote protocol has no TLS) server answers every frame DISKFULL with a terminal
    // payload.
    const server = net.createServer((s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= HEADER_SIZE) {
          const h = unpackHeader(buf);
          if (buf.length < HEADER_SIZE + h.length) break;
          buf = buf.subarray(HEADER_SIZE + h.length);
          s.write(frame(RMW.DISKFULL, h.seq, EVIL));
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amstatus-'));
    const out = new RemoteOutput(
      {
        type: 'remote',
        name: 'r',
        format: 'RAW',
        spool: { dir: null, maxBytes: 1 << 20, fullAction: 'syslog', fullExe: null },
        host: '127.0.0.1',
        port,
        heartbeatTimeout: 0,
        ackTimeoutMs: 5000,
        networkRetryMs: 60000,
        networkFailureAction: 'ignore',
        networkFailureExe: null,
        window: 1,
      },
      { contidKernel: false, diag: quietDiag },
    );
    try {
      out.writeRecord(1005, Buffer.from('type=USER msg=audit(1.000:1): x'));
      out.flush();
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (String(out.stats().lastError).includes('owned')) {
            clearInterval(t);
            resolve();
          }
        }, 20);
      });
      const lines = formatCounters('auditmux', { outputs: { r: out.stats() } });
      const le = lines.filter((l) => l.startsWith('outputs.r.lastError '));
      assert.equal(le.length, 1, lines.join('\n'));
      assert.doesNotMatch(lines.join('\n'), /[\x00-\x08\x0b-\x1f\x7f]/);
      const printed = lines.join('\n').split('\n');
      assert.deepEqual(
        printed.filter((l) => l === 'auditmux' || l.startsWith('log.records')),
        ['auditmux'],
        'no forged line',
      );
      assert.match(le[0]!, /owned/);
    } finally {
      await out.close();
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('aux list', () => {
  it('escapes every cell: a log path with controls stays on its own row', () => {
    const out = formatAuxRows([{ name: 'a', state: 'running', isolation: 'inline', log: `/var/log/x${EVIL}.log` }]);
    assert.equal(out.split('\n').length, 2, out);
    for (const line of out.split('\n')) assert.doesNotMatch(line, /[\x00-\x1f\x7f]/);
  });
});
