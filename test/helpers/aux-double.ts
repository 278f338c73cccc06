// A misbehaving aux process (what a tenant's compromised process may send): once it has its config, 50 ERROR
// frames, then READY twice; it stays until killed.
import { Socket } from 'node:net';
import { frame } from './aux-frame';

const chan = new Socket({ fd: 3, readable: true, writable: true });
chan.once('data', () => {
  for (let i = 0; i < 50; i++) chan.write(frame(12, JSON.stringify({ message: `error ${i}` })));
  chan.write(frame(10, JSON.stringify({ pid: process.pid, known: 0 })));
  chan.write(frame(10, JSON.stringify({ pid: process.pid, known: 0 })));
});
chan.on('error', () => undefined);
setInterval(() => undefined, 1000);
