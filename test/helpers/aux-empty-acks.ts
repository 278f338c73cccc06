// A misbehaving aux process: once it has its config, READY, then a flood of ACKs of nothing (seq 0): each cost the
// host's loop a queue walk and a pump. It stays until killed.
import { Socket } from 'node:net';
import { frame } from './aux-frame';

const chan = new Socket({ fd: 3, readable: true, writable: true });
chan.once('data', () => {
  chan.write(frame(10, JSON.stringify({ pid: process.pid, known: 0 })));
  const ack = Buffer.alloc(8);
  ack.writeDoubleLE(0, 0);
  const many = Buffer.concat(Array.from({ length: 1000 }, () => frame(11, ack)));
  const flood = (): void => {
    if (!chan.destroyed) chan.write(many, () => setImmediate(flood));
  };
  flood();
});
chan.on('error', () => undefined);
setInterval(() => undefined, 1000);
