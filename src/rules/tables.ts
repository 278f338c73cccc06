// Name/number tables of auditctl 3.0.9 (fields, operators, lists, arches, file types, errnos, msgtypes, syscalls).
import { AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, Field, Op } from '../kernel/constants';
import { ERRNO_TABLE } from './errno-names';
import { allMsgTypes } from '../records/msgtypes';
import { SYSCALLS_I386, SYSCALLS_X86_64 } from './syscall-tables';

/** libaudit's generated s2i lookups compare case-insensitively; i2s returns the first name of a number. */
class NameTable {
  private readonly byName = new Map<string, number>();
  private readonly byNum = new Map<number, string>();
  constructor(entries: ReadonlyArray<readonly [number, string]>) {
    for (const [n, s] of entries) {
      const k = s.toLowerCase();
      if (!this.byName.has(k)) this.byName.set(k, n);
      if (!this.byNum.has(n)) this.byNum.set(n, s);
    }
  }
  num(name: string): number | undefined {
    return this.byName.get(name.toLowerCase());
  }
  name(n: number): string | undefined {
    return this.byNum.get(n);
  }
}

// Order matters for number→name: "auid" is listed before "loginuid" as in fieldtab.h.
const FIELD_ENTRIES: ReadonlyArray<readonly [number, string]> = [
  [Field.pid, 'pid'],
  [Field.uid, 'uid'],
  [Field.euid, 'euid'],
  [Field.suid, 'suid'],
  [Field.fsuid, 'fsuid'],
  [Field.gid, 'gid'],
  [Field.egid, 'egid'],
  [Field.sgid, 'sgid'],
  [Field.fsgid, 'fsgid'],
  [Field.auid, 'auid'],
  [Field.auid, 'loginuid'],
  [Field.pers, 'pers'],
  [Field.arch, 'arch'],
  [Field.msgtype, 'msgtype'],
  [Field.subj_user, 'subj_user'],
  [Field.subj_role, 'subj_role'],
  [Field.subj_type, 'subj_type'],
  [Field.subj_sen, 'subj_sen'],
  [Field.subj_clr, 'subj_clr'],
  [Field.ppid, 'ppid'],
  [Field.obj_user, 'obj_user'],
  [Field.obj_role, 'obj_role'],
  [Field.obj_type, 'obj_type'],
  [Field.obj_lev_low, 'obj_lev_low'],
  [Field.obj_lev_high, 'obj_lev_high'],
  [Field.sessionid, 'sessionid'],
  [Field.devmajor, 'devmajor'],
  [Field.devminor, 'devminor'],
  [Field.inode, 'inode'],
  [Field.exit, 'exit'],
  [Field.success, 'success'],
  [Field.watch, 'path'],
  [Field.perm, 'perm'],
  [Field.dir, 'dir'],
  [Field.filetype, 'filetype'],
  [Field.fstype, 'fstype'],
  [Field.obj_uid, 'obj_uid'],
  [Field.obj_gid, 'obj_gid'],
  [Field.field_compare, 'field_compare'],
  [Field.a0, 'a0'],
  [Field.a1, 'a1'],
  [Field.a2, 'a2'],
  [Field.a3, 'a3'],
  [Field.key, 'key'],
  [Field.exe, 'exe'],
  [Field.saddr_fam, 'saddr_fam'],
  // Not in auditctl 3.0.9's table (it prints them as f24=/f27=); accepted here for the kernel's LOGINUID_SET and
  // the contid patch set's AUDIT_CONTID.
  [Field.loginuid_set, 'loginuid_set'],
  [Field.contid, 'contid'],
];
export const FIELDS = new NameTable(FIELD_ENTRIES);

/** Fields auditctl 3.0.9 itself knows; the others are our extensions and are printed the same way anyway. */
export const EXTENSION_FIELDS: ReadonlySet<number> = new Set([Field.loginuid_set, Field.contid]);

export const OPERATORS = new NameTable([
  [Op.EQUAL, '='],
  [Op.NOT_EQUAL, '!='],
  [Op.GREATER_THAN, '>'],
  [Op.GREATER_THAN_OR_EQUAL, '>='],
  [Op.LESS_THAN, '<'],
  [Op.LESS_THAN_OR_EQUAL, '<='],
  [Op.BIT_MASK, '&'],
  [Op.BIT_TEST, '&='],
]);

/** Filter list names for printing; auditctl 3.0.9 has no io_uring name (it would print "(null)"). */
export const LIST_NAMES = new NameTable([
  [1, 'task'],
  [4, 'exit'],
  [0, 'user'],
  [5, 'exclude'],
  [6, 'filesystem'],
  [7, 'io_uring'],
]);
export const ACTION_NAMES = new NameTable([
  [0, 'never'],
  [1, 'possible'],
  [2, 'always'],
]);

/** S_IF* values by the names filetype= accepts. */
export const FILE_TYPES = new NameTable([
  [0o140000, 'socket'],
  [0o120000, 'link'],
  [0o100000, 'file'],
  [0o060000, 'block'],
  [0o040000, 'dir'],
  [0o020000, 'character'],
  [0o010000, 'fifo'],
]);

/** Filesystem magics fstype= accepts by name. */
export const FS_TYPES = new NameTable([
  [0x74726163, 'tracefs'],
  [0x64626720, 'debugfs'],
]);

export const ERRNOS = new NameTable(ERRNO_TABLE);
export const MSGTYPES = new NameTable(allMsgTypes());

export function msgTypeByName(name: string): number | undefined {
  return MSGTYPES.num(name);
}
export function msgTypeName(type: number): string | undefined {
  return MSGTYPES.name(type);
}

/** libaudit's machine numbers. */
export const Machine = {
  X86: 0,
  X86_64: 1,
  PPC64: 2,
  PPC: 3,
  S390X: 4,
  S390: 5,
  ARM: 8,
  AARCH64: 9,
  PPC64LE: 10,
} as const;

export const MACHINE_NAMES = new NameTable([
  [Machine.X86, 'i386'],
  [Machine.X86, 'i486'],
  [Machine.X86, 'i586'],
  [Machine.X86, 'i686'],
  [Machine.X86_64, 'x86_64'],
  [Machine.PPC64, 'ppc64'],
  [Machine.PPC64LE, 'ppc64le'],
  [Machine.PPC, 'ppc'],
  [Machine.S390X, 's390x'],
  [Machine.S390, 's390'],
  [Machine.ARM, 'armeb'],
  [Machine.ARM, 'arm'],
  [Machine.ARM, 'armv5tejl'],
  [Machine.ARM, 'armv5tel'],
  [Machine.ARM, 'armv6l'],
  [Machine.ARM, 'armv7l'],
  [Machine.AARCH64, 'aarch64'],
  [Machine.AARCH64, 'armv8l'],
]);

export const ARCH_64BIT = 0x80000000;

const ELF_BY_MACHINE: ReadonlyArray<readonly [number, number]> = [
  [Machine.X86, AUDIT_ARCH_I386],
  [Machine.X86_64, AUDIT_ARCH_X86_64],
  [Machine.PPC64, 0x80000015],
  [Machine.PPC64LE, 0xc0000015],
  [Machine.PPC, 0x14],
  [Machine.S390X, 0x80000016],
  [Machine.S390, 0x16],
  [Machine.ARM, 0x40000028],
  [Machine.AARCH64, 0xc00000b7],
];

export function machineToElf(machine: number): number {
  for (const [m, e] of ELF_BY_MACHINE) if (m === machine) return e;
  return 0;
}

export function elfToMachine(elf: number): number {
  for (const [m, e] of ELF_BY_MACHINE) if (e === elf) return m;
  return -1;
}

/** The machine auditctl detects from uname: this port only runs on x86_64 hosts (the syscall tables it ships). */
export const HOST_MACHINE = process.arch === 'ia32' ? Machine.X86 : Machine.X86_64;

const SYSCALLS = new Map<number, NameTable>();
function syscallTable(machine: number): NameTable | undefined {
  let t = SYSCALLS.get(machine);
  if (!t) {
    if (machine === Machine.X86_64) t = new NameTable(SYSCALLS_X86_64);
    else if (machine === Machine.X86) t = new NameTable(SYSCALLS_I386);
    else return undefined;
    SYSCALLS.set(machine, t);
  }
  return t;
}

export function syscallNumber(name: string, machine: number): number | undefined {
  return syscallTable(machine)?.num(name);
}

export function syscallName(nr: number, machine: number): string | undefined {
  return syscallTable(machine)?.name(nr);
}

/** AUDIT_COMPARE_* numbers by [left field, right field], both orders, as audit_rule_interfield_comp_data has them. */
const COMPARE_PAIRS: ReadonlyArray<readonly [number, string, string]> = [
  [1, 'uid', 'obj_uid'],
  [2, 'gid', 'obj_gid'],
  [3, 'euid', 'obj_uid'],
  [4, 'egid', 'obj_gid'],
  [5, 'auid', 'obj_uid'],
  [6, 'suid', 'obj_uid'],
  [7, 'sgid', 'obj_gid'],
  [8, 'fsuid', 'obj_uid'],
  [9, 'fsgid', 'obj_gid'],
  [10, 'uid', 'auid'],
  [11, 'uid', 'euid'],
  [12, 'uid', 'fsuid'],
  [13, 'uid', 'suid'],
  [14, 'auid', 'fsuid'],
  [15, 'auid', 'suid'],
  [16, 'auid', 'euid'],
  [17, 'euid', 'suid'],
  [18, 'euid', 'fsuid'],
  [19, 'suid', 'fsuid'],
  [20, 'gid', 'egid'],
  [21, 'gid', 'fsgid'],
  [22, 'gid', 'sgid'],
  [23, 'egid', 'fsgid'],
  [24, 'egid', 'sgid'],
  [25, 'sgid', 'fsgid'],
];

export function compareValue(left: number, right: number): number | undefined {
  for (const [v, a, b] of COMPARE_PAIRS) {
    const fa = FIELDS.num(a)!,
      fb = FIELDS.num(b)!;
    if ((left === fa && right === fb) || (left === fb && right === fa)) return v;
  }
  return undefined;
}

/** The "-C a<op>b" text auditctl prints for an AUDIT_COMPARE_* value (its left/right order). */
export function compareNames(value: number): readonly [string, string] | undefined {
  for (const [v, a, b] of COMPARE_PAIRS) if (v === value) return [a, b];
  return undefined;
}
