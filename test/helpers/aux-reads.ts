// An aux process double that counts the reads its events came in: READY on CONFIG, an ACK after each read of EVENT
// frames, and once an event whose payload ends in "last" came, an ERROR frame saying `reads=N events=M`.
import { Socket } from 'node:net';
import { Frame, FrameReader, decodeEvent, encodeAck } from '../../src/daemon/aux-ipc';
import { frame } from './aux-frame';

const chan = new Socket({ fd: 3, readable: true, writable: true });
let reads = 0;
let events = 0;
let lastSeq = 0;
let sawEvent = false;
let done = false;
const reader = new FrameReader((kind, body) => {
  if (kind === Frame.CONFIG) chan.write(frame(Frame.READY, JSON.stringify({ pid: process.pid, known: 0 })));
  else if (kind === Frame.EVENT) {
    const { seq, records } = decodeEvent(body);
    lastSeq = seq;
    events++;
    sawEvent = true;
    if (records.some((r) => r.payload.toString('latin1').endsWith('last'))) done = true;
  } else if (kind === Frame.STOP) chan.end();
});
chan.on('data', (chunk: Buffer) => {
  sawEvent = false;
  reader.push(chunk);
  if (!sawEvent) return;
  reads++;
  chan.write(encodeAck(lastSeq));
  if (done) chan.write(frame(Frame.ERROR, JSON.stringify({ message: `reads=${reads} events=${events}` })));
});
chan.on('end', () => chan.destroy());
chan.on('error', () => chan.destroy());
