// A misbehaving aux process: once it has its config, READY, then a flood of ACKs of nothing (seq 0): each cost the
// host's loop a queue walk and a pump. It stays until killed.
import { Socket } from 'node:net';

const chan = new Socket({ fd: 3, readable: true, writable: true });
const frame = (kind: number, body: Buffer): Buffer => {
  const f = Buffer.alloc(5 + body.length);
  f.writeUInt32LE(1 + body.length, 0);
  f[4] = kind;
  body.copy(f, 5);
  return f;
};
chan.once('data', () => {
  chan.write(frame(10, Buffer.from(JSON.stringify({ pid: process.pid, known: 0 }))));
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
