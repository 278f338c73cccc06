// A misbehaving aux process (what a tenant's compromised process may send): once it has its config, 50 ERROR
// frames, then READY twice; it stays until killed.
import { Socket } from 'node:net';

const chan = new Socket({ fd: 3, readable: true, writable: true });
const frame = (kind: number, body: string): Buffer => {
  const b = Buffer.from(body);
  const f = Buffer.alloc(5 + b.length);
  f.writeUInt32LE(1 + b.length, 0);
  f[4] = kind;
  b.copy(f, 5);
  return f;
};
chan.once('data', () => {
  for (let i = 0; i < 50; i++) chan.write(frame(12, JSON.stringify({ message: `error ${i}` })));
  chan.write(frame(10, JSON.stringify({ pid: process.pid, known: 0 })));
  chan.write(frame(10, JSON.stringify({ pid: process.pid, known: 0 })));
});
chan.on('error', () => undefined);
setInterval(() => undefined, 1000);
