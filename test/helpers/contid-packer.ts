// A contid packer in TypeScript (test double): lets the rules codec run in tests without the compiled addon.
import type { ContidPacker } from '../../src/contid/field';
import { endianness } from 'node:os';

const LE = endianness() === 'LE';

export const tsContidPacker: ContidPacker = {
  contidToBytes(id: bigint): Buffer {
    const b = Buffer.alloc(8);
    if (LE) b.writeBigUInt64LE(BigInt.asUintN(64, id));
    else b.writeBigUInt64BE(BigInt.asUintN(64, id));
    return b;
  },
  bytesToContid(buf: Buffer, offset = 0): bigint {
    return LE ? buf.readBigUInt64LE(offset) : buf.readBigUInt64BE(offset);
  },
};
