// struct audit_rule_data <-> Rule: 1040 bytes of host-order u32 arrays, then the string buffer in field order.
import { Buffer } from 'node:buffer';
import { addonContidPacker, type ContidPacker } from '../contid/field';
import { AUDIT_BITMASK_SIZE, AUDIT_MAX_FIELDS, AUDIT_RULE_DATA_SIZE, Field } from '../kernel/constants';
import { RuleError } from '../errors';
import { isStringField } from './fieldpair';
import type { Rule, RuleField } from './types';

const OFF_FLAGS = 0;
const OFF_ACTION = 4;
const OFF_COUNT = 8;
const OFF_MASK = 12;
const OFF_FIELDS = 268;
const OFF_VALUES = 524;
const OFF_FIELDFLAGS = 780;
const OFF_BUFLEN = 1036;

function strBytes(f: RuleField, packer: ContidPacker): Buffer {
  // The contid patch set memcpys a native u64 into buf: the addon packs it in host order.
  if (f.field === Field.contid) return packer.contidToBytes(BigInt.asUintN(64, f.u64 ?? 0n));
  return Buffer.from(f.str ?? '', 'utf8');
}

/**
 * The bytes auditctl sends in AUDIT_ADD_RULE / AUDIT_DEL_RULE for this rule. `packer` packs contid fields (the addon
 * by default); a test may inject one so the codec runs without a compiled addon.
 */
export function encodeRule(rule: Rule, packer: ContidPacker = addonContidPacker): Buffer {
  if (rule.fields.length > AUDIT_MAX_FIELDS) throw new RuleError(`too many fields (${rule.fields.length})`);
  const strs: (Buffer | null)[] = rule.fields.map((f) => (isStringField(f.field) ? strBytes(f, packer) : null));
  let buflen = 0;
  for (const s of strs) if (s) buflen += s.length;
  const b = Buffer.alloc(AUDIT_RULE_DATA_SIZE + buflen);
  b.writeUInt32LE(rule.flags >>> 0, OFF_FLAGS);
  b.writeUInt32LE(rule.action >>> 0, OFF_ACTION);
  b.writeUInt32LE(rule.fields.length, OFF_COUNT);
  for (let i = 0; i < AUDIT_BITMASK_SIZE; i++) b.writeUInt32LE((rule.mask[i] ?? 0) >>> 0, OFF_MASK + i * 4);
  let off = AUDIT_RULE_DATA_SIZE;
  for (let i = 0; i < rule.fields.length; i++) {
    const f = rule.fields[i]!;
    const s = strs[i];
    b.writeUInt32LE(f.field >>> 0, OFF_FIELDS + i * 4);
    b.writeUInt32LE(s ? s.length : f.value >>> 0, OFF_VALUES + i * 4);
    b.writeUInt32LE(f.op >>> 0, OFF_FIELDFLAGS + i * 4);
    if (s) {
      s.copy(b, off);
      off += s.length;
    }
  }
  b.writeUInt32LE(buflen, OFF_BUFLEN);
  return b;
}

/** A rule from kernel (AUDIT_LIST_RULES) or auditctl bytes; throws RuleError on a malformed buffer. */
export function decodeRule(buf: Buffer, packer: ContidPacker = addonContidPacker): Rule {
  if (buf.length < AUDIT_RULE_DATA_SIZE) throw new RuleError(`audit_rule_data too short: ${buf.length} bytes`);
  const count = buf.readUInt32LE(OFF_COUNT);
  if (count > AUDIT_MAX_FIELDS) throw new RuleError(`audit_rule_data field_count ${count} > ${AUDIT_MAX_FIELDS}`);
  const buflen = buf.readUInt32LE(OFF_BUFLEN);
  if (AUDIT_RULE_DATA_SIZE + buflen > buf.length)
    throw new RuleError(
      `audit_rule_data buflen ${buflen} exceeds the ${buf.length - AUDIT_RULE_DATA_SIZE} bytes present`,
    );
  const mask = new Uint32Array(AUDIT_BITMASK_SIZE);
  for (let i = 0; i < AUDIT_BITMASK_SIZE; i++) mask[i] = buf.readUInt32LE(OFF_MASK + i * 4);
  const fields: RuleField[] = [];
  const keys: string[] = [];
  let off = 0;
  for (let i = 0; i < count; i++) {
    // The kernel keeps operator bits out of fields[], but old userspace put them there; auditctl masks them off.
    const field = (buf.readUInt32LE(OFF_FIELDS + i * 4) & ~0x78000000) >>> 0;
    const value = buf.readUInt32LE(OFF_VALUES + i * 4);
    const op = buf.readUInt32LE(OFF_FIELDFLAGS + i * 4);
    const f: RuleField = { field, op, value };
    if (isStringField(field)) {
      if (off + value > buflen) throw new RuleError(`audit_rule_data string of field ${i} runs past buflen`);
      const s = buf.subarray(AUDIT_RULE_DATA_SIZE + off, AUDIT_RULE_DATA_SIZE + off + value);
      off += value;
      if (field === Field.contid) f.u64 = value === 8 ? packer.bytesToContid(s, 0) : 0n;
      else f.str = s.toString('utf8');
      if (field === Field.key) for (const k of f.str!.split('\x01')) if (k !== '') keys.push(k);
    }
    fields.push(f);
  }
  return {
    flags: buf.readUInt32LE(OFF_FLAGS),
    action: buf.readUInt32LE(OFF_ACTION),
    mask,
    fields,
    keys,
  };
}

/** auditctl's key_match for -D -k / -l -k: the key is found as a substring of one of the rule's key fields. */
export function ruleKeyMatches(rule: Rule, key: string): boolean {
  if (key === '') return true;
  return rule.fields.some((f) => f.field === Field.key && (f.str ?? '').includes(key));
}
