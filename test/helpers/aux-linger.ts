// A misbehaving aux process: the first time it runs (no marker beside its log), it starts a process that inherits
// its channel and exits; that process sends READY on the old channel later, and holds it. Run again (a restart),
// it behaves: READY, then stays until killed.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { frame } from './aux-frame';

const chan = new Socket({ fd: 3, readable: true, writable: true });
const ready = (): Buffer => frame(10, JSON.stringify({ pid: process.pid, known: 0 }));
chan.once('data', (d: Buffer) => {
  const cfg = JSON.parse(d.subarray(5, 4 + d.readUInt32LE(0)).toString('utf8')) as { log: { file: string } };
  const marker = join(dirname(cfg.log.file), 'lingered');
  if (existsSync(marker)) {
    chan.write(ready());
    return;
  }
  writeFileSync(marker, '');
  const late = `const { Socket } = require('net'); const s = new Socket({ fd: 3, readable: true, writable: true });
    s.on('error', () => {}); setTimeout(() => s.write(Buffer.from(process.argv[1], 'hex')), 600);
    setTimeout(() => process.exit(0), 4000);`;
  spawn(process.execPath, ['-e', late, ready().toString('hex')], { stdio: ['ignore', 'ignore', 'ignore', 3] });
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), 50);
});
chan.on('error', () => undefined);
setInterval(() => undefined, 1000);
