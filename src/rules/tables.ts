// Name/number tables of auditctl 3.0.9 (fields, operators, lists, file types, record types); arches, errnos and
// syscalls are vocab/'s, imported from there by the rules code.
import { Field, Op } from '../kernel/constants';
import { allMsgTypes } from '../vocab/msgtypes';
import { NameTable } from '../vocab/name-table';

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

/** -F msgtype= takes libaudit's names in any case, as auditctl (not auditmux's own CONTAINER_ID/CONTAINER_OP). */
export const MSGTYPES = new NameTable(allMsgTypes());

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
