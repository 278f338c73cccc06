// Byte-array primitives for the per-record paths: typed-array methods called as known functions, reads in place.
//
// Why: V8 11 (Node 20) does not inline a method load on a typed array, Buffer included, in optimised code: every
// `buf.indexOf(...)`, `buf.set(...)` or `buf.readUInt16LE(...)` in a hot function is a call to the generic LoadIC
// builtin before the method runs (`node --print-opt-code`: a LoadICTrampoline call per site). `perf` of the host at
// flat out put 5% of its main thread in LoadIC, more than in all of its own compiled JavaScript. A method taken once
// from its prototype and called with `.call` is a constant target the optimiser calls directly, and a little-endian
// read is two or four element loads it inlines.
import { Buffer } from 'node:buffer';

const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as Uint8Array;
const typedArraySet = typedArrayProto.set;
// Buffer's indexOf (memchr in C++), not the typed array's (a byte loop): 20 against 140 ns over 300 bytes.
const bufferIndexOf = Buffer.prototype.indexOf;
// `buffer` and `byteOffset` are accessors, loaded through LoadIC as methods are: their getters, called, cost 30 ns less
// per view made.
const getBuffer = Object.getOwnPropertyDescriptor(typedArrayProto, 'buffer')!.get!;
const getByteOffset = Object.getOwnPropertyDescriptor(typedArrayProto, 'byteOffset')!.get!;

/** `dst.set(src, at)`: copies all of `src` into `dst` from `at` (a RangeError if it does not fit). */
export function copyBytes(dst: Uint8Array, src: Uint8Array, at: number): void {
  typedArraySet.call(dst, src, at);
}

// The views of one kernel batch's records are made one after another: its ArrayBuffer and offset are read once, not
// per view (the `buffer` getter is a C++ builtin, about 30 ns). Only the last array is held: one batch or frame.
let lastArray: Uint8Array | null = null;
let lastBuffer: ArrayBuffer = new ArrayBuffer(0);
let lastOffset = 0;

/** Reads b's ArrayBuffer and offset unless b was the last array; a range past b's own end is a RangeError. */
function locate(b: Uint8Array, start: number, n: number): void {
  // The ArrayBuffer may be a pool shared with other Buffers: a view past b's end would show their bytes.
  if (start < 0 || n < 0 || start + n > b.length) throw new RangeError(`bytes [${start}, ${start + n}) of ${b.length}`);
  if (b === lastArray) return;
  lastBuffer = getBuffer.call(b) as ArrayBuffer;
  lastOffset = getByteOffset.call(b) as number;
  lastArray = b;
}

/** A plain Uint8Array over b[start, start + n) (within b): half the cost of a Buffer view (no Buffer constructor). */
export function bytesView(b: Uint8Array, start: number, n: number): Uint8Array {
  locate(b, start, n);
  return new Uint8Array(lastBuffer, lastOffset + start, n);
}

/** A Buffer over b[start, start + n) (within b), sharing its memory. */
export function bufferView(b: Uint8Array, start: number, n: number): Buffer {
  locate(b, start, n);
  return Buffer.from(lastBuffer, lastOffset + start, n);
}

/** `b.indexOf(byte, from)` for a byte value: memchr from `from`; -1 when absent. */
export function indexOfByte(b: Uint8Array, byte: number, from: number): number {
  return bufferIndexOf.call(b, byte, from);
}

/** `b.indexOf(needle, from)` for a byte string: memmem from `from`; -1 when absent. */
export function indexOfBytes(b: Uint8Array, needle: Uint8Array, from: number): number {
  return bufferIndexOf.call(b, needle, from);
}

/** Unsigned 16-bit little-endian at `at`; the caller has checked that `at + 2 <= b.length`. */
export function u16le(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8);
}

/** Unsigned 32-bit little-endian at `at`; the caller has checked that `at + 4 <= b.length`. */
export function u32le(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 0x1000000;
}

/** Writes `v` (0..0xffff) as 16-bit little-endian at `at`; the caller has checked the room. */
export function putU16le(b: Uint8Array, at: number, v: number): void {
  b[at] = v;
  b[at + 1] = v >>> 8;
}

/** Writes `v` (0..0xffffffff) as 32-bit little-endian at `at`; the caller has checked the room. */
export function putU32le(b: Uint8Array, at: number, v: number): void {
  b[at] = v;
  b[at + 1] = v >>> 8;
  b[at + 2] = v >>> 16;
  b[at + 3] = v >>> 24;
}
