// Builds audit_rule_data bytes by hand for client tests, independent of the rules module under test elsewhere.
import { AUDIT_RULE_DATA_SIZE, Op } from '../../src/kernel/constants';

export interface FieldSpec {
  field: number;
  op?: number;
  value?: number;
  str?: string | Buffer;
}

export function ruleBytes(list: number, action: number, fields: FieldSpec[], syscalls: number[] = []): Buffer {
  const strs: Buffer[] = [];
  for (const f of fields) if (f.str !== undefined) strs.push(typeof f.str === 'string' ? Buffer.from(f.str) : f.str);
  const buflen = strs.reduce((a, b) => a + b.length, 0);
  const b = Buffer.alloc(AUDIT_RULE_DATA_SIZE + buflen);
  b.writeUInt32LE(list, 0);
  b.writeUInt32LE(action, 4);
  b.writeUInt32LE(fields.length, 8);
  for (const s of syscalls) {
    const word = 12 + Math.floor(s / 32) * 4;
    b.writeUInt32LE((b.readUInt32LE(word) | (1 << (s % 32))) >>> 0, word);
  }
  let off = AUDIT_RULE_DATA_SIZE;
  fields.forEach((f, i) => {
    b.writeUInt32LE(f.field, 268 + i * 4);
    b.writeUInt32LE((f.op ?? Op.EQUAL) >>> 0, 780 + i * 4);
    if (f.str !== undefined) {
      const s = typeof f.str === 'string' ? Buffer.from(f.str) : f.str;
      b.writeUInt32LE(s.length, 524 + i * 4);
      s.copy(b, off);
      off += s.length;
    } else b.writeUInt32LE((f.value ?? 0) >>> 0, 524 + i * 4);
  });
  b.writeUInt32LE(buflen, 1036);
  return b;
}
