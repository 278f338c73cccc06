// -F field<op>value and -C field<op>field into rule fields, with libaudit 3.0.9's value rules and error texts.
import { Buffer } from 'node:buffer';
import {
  AUDIT_CID_UNSET,
  AUDIT_MAX_FIELDS,
  AUDIT_MAX_KEY_LEN,
  AUDIT_SID_UNSET,
  AUDIT_UID_UNSET,
  Field,
  FilterList,
  Op,
  PATH_MAX,
} from '../kernel/constants';
import { groupId, userId } from './accounts';
import { isDigit, strtol, strtoul, u32 } from './cnum';
import { compareValue, FIELDS, FILE_TYPES, FS_TYPES, MSGTYPES } from './tables';
import { elfToMachine, HOST_MACHINE, Machine, MACHINE_NAMES, machineToElf } from '../vocab/arch';
import { ERRNOS } from '../vocab/errno';
import { syscallNumber } from '../vocab/syscalls';
import type { RuleField } from './types';

/** (u32)-1 from a failed file-system type lookup: auditctl refuses it as "unknown" (libaudit's -1). */
const FSTYPE_UNKNOWN = 0xffffffff;

/** auditctl's "no list given yet" filter value. */
export const FILTER_UNSET = 0x80;

/** The per-line state libaudit keeps in globals (_audit_elf, _audit_syscalladded, …) plus the rule being built. */
export interface BuildState {
  fields: RuleField[];
  mask: Uint32Array;
  /** AUDIT_ARCH_* chosen by -F arch (or detected by -S); 0 = not yet. */
  elf: number;
  syscallAdded: boolean;
  permAdded: boolean;
  exeAdded: boolean;
  filterFsAdded: boolean;
}

export function newBuildState(): BuildState {
  return {
    fields: [],
    mask: new Uint32Array(64),
    elf: 0,
    syscallAdded: false,
    permAdded: false,
    exeAdded: false,
    filterFsAdded: false,
  };
}

/** libaudit's EAU_* messages; `opt` is what remains of the argument after the operator was cut out of it. */
const E = {
  opMissing: (o: string) => `-F missing operation for ${o}`,
  fieldUnknown: (o: string) => `-F unknown field: ${o}`,
  archMisplaced: (o: string) => `${o} must be before -S`,
  elfUnknown: (o: string) => `${o} elf mapping not found`,
  exitOnly: (o: string) => `${o} can only be used with exit filter list`,
  msgtypeUnknown: (o: string) => `-F unknown message type - ${o}`,
  msgtypeExcludeUser: () => 'msgtype field can only be used with exclude or user filter list',
  strTooLong: () => 'String value too long',
  excludeFields: () => 'Only msgtype, *uid, *gid, pid, and subj* fields can be used with exclude filter',
  opEqNotEq: (o: string) => `${o} only takes = or != operators`,
  permRwxa: () => "Permission can only contain  'rwxa'",
  errUnknown: (o: string) => `-F unknown errno - ${o}`,
  filetypeUnknown: (o: string) => `-F unknown file type -  ${o}`,
  keyDep: () => 'Key field needs a watch, syscall or exe path given prior to it',
  valMissing: (o: string) => `-F missing value after operation for ${o}`,
  valNum: (o: string) => `-F value should be number for ${o}`,
  fieldName: (o: string) => `-F missing field name before operator for ${o}`,
  cmpFieldName: (o: string) => `-C missing field name before operator for ${o}`,
  cmpVal: (o: string) => `-C missing value after operation for  ${o}`,
  cmpFieldUnknown: (o: string) => `-C unknown field: ${o}`,
  cmpValUnknown: (o: string) => `-C unknown right hand value for comparison with: ${o}`,
  tooMany: (o: string) => `Too many fields in rule: ${o}`,
  opEq: (o: string) => `${o} only takes = operator`,
  noFilter: (o: string) => `${o} must be used with exclude, user, or exit filter`,
  cmpIncompat: (o: string) => `-C incompatible comparison ${o}`,
  fieldUnavail: (o: string) => `${o} field is not valid for the filter`,
  fstypeUnknown: (o: string) => `file system type is unknown for field: ${o}`,
  tooBig: (o: string) => `value is too large for field: ${o}`,
};

/** The operators in the order libaudit searches for them: the first found anywhere in the pair wins. */
const OP_SEARCH: ReadonlyArray<readonly [string, number]> = [
  ['!=', Op.NOT_EQUAL],
  ['>=', Op.GREATER_THAN_OR_EQUAL],
  ['<=', Op.LESS_THAN_OR_EQUAL],
  ['&=', Op.BIT_TEST],
  ['=', Op.EQUAL],
  ['>', Op.GREATER_THAN],
  ['<', Op.LESS_THAN],
  ['&', Op.BIT_MASK],
];

function splitPair(
  pair: string,
  ops: ReadonlyArray<readonly [string, number]>,
): { f: string; v: string; op: number } | null {
  for (const [sym, op] of ops) {
    const i = pair.indexOf(sym);
    if (i >= 0) return { f: pair.slice(0, i), v: pair.slice(i + sym.length), op };
  }
  return null;
}

const AF_MAX = 46;

/** Fields the kernel accepts on the exclude list (with AUDIT_FEATURE_BITMAP_EXCLUDE_EXTEND, present since 4.17). */
const EXCLUDE_OK: ReadonlySet<number> = new Set([
  Field.pid,
  Field.uid,
  Field.gid,
  Field.auid,
  Field.msgtype,
  Field.subj_user,
  Field.subj_role,
  Field.subj_type,
  Field.subj_sen,
  Field.subj_clr,
  Field.exe,
  Field.contid,
]);

const EXIT_ONLY_STRINGS: ReadonlySet<number> = new Set([
  Field.obj_user,
  Field.obj_role,
  Field.obj_type,
  Field.obj_lev_low,
  Field.obj_lev_high,
  Field.watch,
  Field.dir,
]);
const STRING_FIELDS: ReadonlySet<number> = new Set([
  Field.subj_user,
  Field.subj_role,
  Field.subj_type,
  Field.subj_sen,
  Field.subj_clr,
  Field.key,
  Field.exe,
  ...EXIT_ONLY_STRINGS,
]);

/** Whether the kernel carries this field's value as bytes in buf (length in values[i]). */
export function isStringField(field: number): boolean {
  return STRING_FIELDS.has(field) || field === Field.contid;
}

/** A signed-or-unsigned decimal/hex value the way uid/auid/sessionid/a0 take it; undefined when not a number. */
function signedOrUnsigned(v: string): number | undefined {
  if (isDigit(v)) return u32(strtoul(v).value);
  if (v.length >= 2 && v[0] === '-' && isDigit(v, 1)) return u32(strtol(v).value);
  return undefined;
}

/** audit_determine_machine + audit_machine_to_elf for a non-numeric arch= value; 0 when unknown. */
function archToElf(arch: string): number {
  const lower = arch.toLowerCase();
  let bits: 'b64' | 'b32' | undefined;
  let machine: number;
  if (lower === 'b64') {
    bits = 'b64';
    machine = HOST_MACHINE;
  } else if (lower === 'b32') {
    bits = 'b32';
    machine = HOST_MACHINE;
  } else {
    machine = MACHINE_NAMES.num(arch) ?? -1;
    if (machine < 0) {
      const r = strtoul(arch, 16);
      if (r.erange) return 0;
      machine = elfToMachine(u32(r.value));
    }
  }
  if (machine < 0) return 0;
  if (bits === 'b32') {
    if (machine === Machine.X86_64) machine = Machine.X86;
    else if (machine === Machine.PPC64) machine = Machine.PPC;
    else if (machine === Machine.S390X) machine = Machine.S390;
    else if (machine === Machine.AARCH64) machine = Machine.ARM;
  }
  switch (machine) {
    case Machine.X86:
    case Machine.PPC:
    case Machine.S390:
    case Machine.ARM:
      if (bits === 'b64') return 0;
      break;
    case Machine.AARCH64:
    case Machine.PPC64LE:
      if (bits === 'b32') return 0;
      break;
    case Machine.X86_64:
    case Machine.PPC64:
    case Machine.S390X:
      break;
    default:
      return 0;
  }
  return machineToElf(machine);
}

function byteLen(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * audit_rule_fieldpair_data: appends one field for `pair` on list `flags`; returns auditctl's error text, or null.
 */
export function addFieldPair(st: BuildState, pair: string, flags: number): string | null {
  if (st.fields.length >= AUDIT_MAX_FIELDS - 1) return E.tooMany(pair);
  const sp = splitPair(pair, OP_SEARCH);
  if (!sp) return E.opMissing(pair);
  const { f, v, op } = sp;
  if (f === '') return E.fieldName(f);
  if (v === '') return E.valMissing(f);
  const field = FIELDS.num(f);
  if (field === undefined) return E.fieldUnknown(f);
  if (flags === FilterList.exclude && !EXCLUDE_OK.has(field)) return E.excludeFields();

  let value: number;
  let str: string | undefined;
  let u64: bigint | undefined;
  switch (field) {
    case Field.uid:
    case Field.euid:
    case Field.suid:
    case Field.fsuid:
    case Field.auid:
    case Field.obj_uid: {
      const n = signedOrUnsigned(v);
      if (n !== undefined) value = n;
      else if (v === 'unset') value = AUDIT_UID_UNSET;
      else {
        const id = userId(v);
        if (id === undefined) return `Unknown user: ${v}`;
        value = id;
      }
      break;
    }
    case Field.gid:
    case Field.egid:
    case Field.sgid:
    case Field.fsgid:
    case Field.obj_gid:
      if (isDigit(v)) value = u32(strtol(v).value);
      else {
        const id = groupId(v);
        if (id === undefined) return `Unknown group: ${v}`;
        value = id;
      }
      break;
    case Field.exit: {
      if (flags !== FilterList.exit) return E.exitOnly(f);
      const n = isDigit(v) || (v.length >= 2 && v[0] === '-' && isDigit(v, 1)) ? u32(strtol(v).value) : undefined;
      if (n !== undefined) value = n;
      else {
        const neg = v[0] === '-';
        const e = ERRNOS.num(neg ? v.slice(1) : v);
        if (e === undefined) return E.errUnknown(f);
        value = u32(BigInt(neg ? -e : e));
      }
      break;
    }
    case Field.msgtype:
      if (flags !== FilterList.exclude && flags !== FilterList.user) return E.msgtypeExcludeUser();
      if (isDigit(v)) value = u32(strtol(v).value);
      else {
        const t = msgTypeFromName(v);
        if (t === undefined || t <= 0) return E.msgtypeUnknown(f);
        value = t;
      }
      break;
    case Field.obj_user:
    case Field.obj_role:
    case Field.obj_type:
    case Field.obj_lev_low:
    case Field.obj_lev_high:
    case Field.watch:
    case Field.dir:
    case Field.subj_user:
    case Field.subj_role:
    case Field.subj_type:
    case Field.subj_sen:
    case Field.subj_clr:
    case Field.key:
    case Field.exe: {
      if (EXIT_ONLY_STRINGS.has(field)) {
        if (flags !== FilterList.exit) return E.exitOnly(f);
        if (field === Field.watch || field === Field.dir) st.permAdded = true;
      }
      if (field === Field.exe) {
        if (op !== Op.NOT_EQUAL && op !== Op.EQUAL) return E.opEqNotEq(f);
        st.exeAdded = true;
      }
      if (field === Field.key && !(st.syscallAdded || st.permAdded || st.exeAdded || st.filterFsAdded))
        return E.keyDep();
      const len = byteLen(v);
      if (field === Field.key && len > AUDIT_MAX_KEY_LEN) return E.strTooLong();
      if (len > PATH_MAX) return E.strTooLong();
      value = len;
      str = v;
      break;
    }
    case Field.arch: {
      if (st.syscallAdded) return E.archMisplaced(f);
      if (op !== Op.NOT_EQUAL && op !== Op.EQUAL) return E.opEqNotEq(f);
      let elf: number;
      if (isDigit(v)) {
        const r = strtoul(v);
        if (r.erange) return E.elfUnknown(f);
        elf = u32(r.value);
        if (elfToMachine(elf) < 0) return E.elfUnknown(f);
      } else {
        elf = archToElf(v);
        if (elf === 0) return E.elfUnknown(f);
      }
      st.elf = elf;
      value = elf;
      break;
    }
    case Field.perm: {
      if (flags !== FilterList.exit) return E.exitOnly(f);
      if (op !== Op.EQUAL) return E.opEq(f);
      if (v.length > 4) return E.strTooLong();
      const p = permBits(v);
      if (p === undefined) return E.permRwxa();
      value = p;
      break;
    }
    case Field.filetype: {
      if (flags !== FilterList.exit) return E.exitOnly(f);
      const t = FILE_TYPES.num(v);
      if (t === undefined) return E.filetypeUnknown(f);
      value = t;
      break;
    }
    case Field.fstype: {
      if (flags !== FilterList.filesystem) return E.fieldUnavail(f);
      if (op !== Op.NOT_EQUAL && op !== Op.EQUAL) return E.opEqNotEq(f);
      // libaudit's audit_name_to_ftype() failure value, refused as it is whether named or given as a number.
      const t = isDigit(v) ? u32(strtoul(v).value) : (FS_TYPES.num(v) ?? FSTYPE_UNKNOWN);
      if (t === FSTYPE_UNKNOWN) return E.fstypeUnknown(f);
      value = t;
      st.filterFsAdded = true;
      break;
    }
    case Field.a0:
    case Field.a1:
    case Field.a2:
    case Field.a3: {
      const n = signedOrUnsigned(v);
      if (n === undefined) return E.valNum(f);
      value = n;
      break;
    }
    case Field.sessionid: {
      if (flags !== FilterList.exclude && flags !== FilterList.user && flags !== FilterList.exit) return E.noFilter(f);
      const n = signedOrUnsigned(v);
      // libaudit leaves any other text as value 0 (it never reports it); kept for byte equality.
      value = n !== undefined ? n : v === 'unset' ? AUDIT_SID_UNSET : 0;
      break;
    }
    case Field.saddr_fam: {
      const n = strtoul(v).value;
      value = u32(n);
      if (value >= AF_MAX) return E.tooBig(f);
      break;
    }
    case Field.contid: {
      // The contid patch set's userspace: exit, user and exclude lists, = and !=, u64 or "unset".
      if (flags !== FilterList.exit && flags !== FilterList.user && flags !== FilterList.exclude) return E.noFilter(f);
      if (op !== Op.NOT_EQUAL && op !== Op.EQUAL) return E.opEqNotEq(f);
      if (v === 'unset') u64 = AUDIT_CID_UNSET;
      else if (isDigit(v)) u64 = strtoul(v).value;
      else if (v.length >= 2 && v[0] === '-' && isDigit(v, 1)) u64 = BigInt.asUintN(64, strtol(v).value);
      else return E.valNum(f);
      value = 8;
      break;
    }
    default: {
      if (field === Field.devmajor || field === Field.devminor || field === Field.inode || field === Field.success) {
        if (flags !== FilterList.exit) return E.exitOnly(f);
      }
      if (field === Field.inode && op !== Op.NOT_EQUAL && op !== Op.EQUAL) return E.opEqNotEq(f);
      if (field === Field.ppid && flags !== FilterList.exit) return E.exitOnly(f);
      if (!isDigit(v)) return E.valNum(f);
      value = field === Field.inode ? u32(strtoul(v).value) : u32(strtol(v).value);
      break;
    }
  }
  const rf: RuleField = { field, op, value };
  if (str !== undefined) rf.str = str;
  if (u64 !== undefined) rf.u64 = u64;
  st.fields.push(rf);
  return null;
}

/** audit_name_to_msg_type: names, "UNKNOWN[n]" and decimal text. */
function msgTypeFromName(v: string): number | undefined {
  const t = MSGTYPES.num(v);
  if (t !== undefined) return t;
  if (v.startsWith('UNKNOWN[')) {
    const end = v.indexOf(']', 8);
    if (end < 0) return undefined;
    return Number(strtol(v.slice(8, Math.min(end, 15)), 10).value);
  }
  if (isDigit(v)) return Number(strtol(v, 10).value);
  return undefined;
}

/** rwxa letters (any case) to AUDIT_PERM_* bits; undefined on another letter. */
export function permBits(v: string): number | undefined {
  let val = 0;
  for (const ch of v.toLowerCase()) {
    if (ch === 'r') val |= 4;
    else if (ch === 'w') val |= 2;
    else if (ch === 'x') val |= 1;
    else if (ch === 'a') val |= 8;
    else return undefined;
  }
  return val;
}

/** audit_rule_interfield_comp_data: -C left<op>right, exit list only. */
export function addComparison(st: BuildState, pair: string, flags: number): string | null {
  if (st.fields.length >= AUDIT_MAX_FIELDS - 1) return E.tooMany(pair);
  const sp = splitPair(pair, [
    ['!=', Op.NOT_EQUAL],
    ['=', Op.EQUAL],
  ]);
  if (!sp) return E.opEqNotEq(pair);
  const { f, v, op } = sp;
  if (f === '') return E.cmpFieldName(f);
  if (v === '') return E.cmpVal(f);
  const f1 = FIELDS.num(f);
  if (f1 === undefined) return E.cmpFieldUnknown(f);
  const f2 = FIELDS.num(v);
  if (f2 === undefined) return E.cmpValUnknown(f);
  if (flags !== FilterList.exit) return E.exitOnly(f);
  const cmp = compareValue(f1, f2);
  if (cmp === undefined) return E.cmpIncompat(f);
  st.fields.push({ field: Field.field_compare, op, value: cmp });
  return null;
}

/** audit_rule_syscallbyname_data: 0 ok, -1 unknown name or number out of range, -2 unknown arch. */
export function addSyscall(st: BuildState, name: string): 0 | -1 | -2 {
  if (name === 'all') {
    st.mask.fill(0xffffffff);
    return 0;
  }
  const machine = st.elf === 0 ? HOST_MACHINE : elfToMachine(st.elf);
  if (machine < 0) return -2;
  let nr: number | undefined = syscallNumber(name, machine);
  // strtol's long lands in an int.
  if (nr === undefined && isDigit(name)) nr = u32(strtol(name).value) | 0;
  if (nr === undefined || nr < 0) return -1;
  const word = Math.floor(nr / 32);
  if (word > 63) return -1;
  st.mask[word] = (st.mask[word]! | (1 << (nr % 32))) >>> 0;
  return 0;
}
