// Prints rules exactly as `auditctl -l` 3.0.9 does (print_rule in auditctl-listing.c), quirks included.
import { AUDIT_CID_UNSET, AUDIT_FILTER_PREPEND, Field, FilterList } from '../kernel/constants';
import { s32 } from './cnum';
import { ACTION_NAMES, compareNames, FIELDS, FS_TYPES, LIST_NAMES, MSGTYPES, OPERATORS } from './tables';
import { ARCH_64BIT, elfToMachine, HOST_MACHINE } from '../vocab/arch';
import { ERRNOS } from '../vocab/errno';
import { syscallName } from '../vocab/syscalls';
import type { Rule } from './types';

const OPERATOR_BITS = 0x78000000;
const NO_SYSCALL_LISTS: ReadonlySet<number> = new Set([
  FilterList.user,
  FilterList.task,
  FilterList.exclude,
  FilterList.filesystem,
]);
const LABEL_FIELDS: ReadonlySet<number> = new Set([
  Field.subj_user,
  Field.subj_role,
  Field.subj_type,
  Field.subj_sen,
  Field.subj_clr,
  Field.obj_user,
  Field.obj_role,
  Field.obj_type,
  Field.obj_lev_low,
  Field.obj_lev_high,
]);

/**
 * libaudit's _audit_elf survives from one printed rule to the next within one listing, so a rule without an arch
 * field has its syscalls named with the arch of the last rule that had one. Pass the same state through a listing.
 */
export interface FormatState {
  elf: number;
}

function opSym(flags: number): string {
  // printf("%s", NULL) in glibc prints "(null)".
  return OPERATORS.name(flags & OPERATOR_BITS) ?? '(null)';
}

function allSyscalls(mask: Uint32Array): boolean {
  for (let i = 0; i < 63; i++) if (mask[i] !== 0xffffffff) return false;
  return true;
}

function isWatch(r: Rule): boolean {
  let perm = false;
  for (const f of r.fields) {
    if (f.field === Field.perm) perm = true;
    if (f.field !== Field.perm && f.field !== Field.key && f.field !== Field.dir && f.field !== Field.watch)
      return false;
  }
  const list = r.flags & 7;
  const all = NO_SYSCALL_LISTS.has(list) ? true : allSyscalls(r.mask);
  return perm && all;
}

function hex(v: number): string {
  return '0x' + (v >>> 0).toString(16).toUpperCase();
}

/** One rule as `auditctl -l` prints it (without the newline). */
export function formatRule(r: Rule, state: FormatState = { elf: 0 }): string {
  let out = '';
  const watch = isWatch(r);
  if (!watch) {
    // The kernel never echoes AUDIT_FILTER_PREPEND; a rule we built for -A still prints its list name.
    const list = LIST_NAMES.name(r.flags & ~AUDIT_FILTER_PREPEND) ?? '(null)';
    out += `-a ${ACTION_NAMES.name(r.action) ?? '(null)'},${list}`;
    for (const f of r.fields) {
      if (f.field !== Field.arch) continue;
      const op = opSym(f.op);
      state.elf = f.value >>> 0;
      if (elfToMachine(state.elf) < 0) out += ` -F arch${op}${hex(f.value)}`;
      else out += ` -F arch${op}${state.elf & ARCH_64BIT ? 'b64' : 'b32'}`;
    }
    out += syscalls(r, state);
  }
  for (const f of r.fields) {
    const field = f.field;
    if (field === Field.arch) continue;
    const op = opSym(f.op);
    const name = FIELDS.name(field);
    const v = f.value >>> 0;
    if (name === undefined) {
      out += ` f${field}${op}${s32(v)}`;
      continue;
    }
    switch (field) {
      case Field.msgtype: {
        const t = MSGTYPES.name(v);
        out += ` -F ${name}${op}${t ?? s32(v)}`;
        break;
      }
      case Field.watch:
        out += watch ? `-w ${f.str ?? ''}` : ` -F path=${f.str ?? ''}`;
        break;
      case Field.dir:
        out += watch ? `-w ${f.str ?? ''}` : ` -F dir=${f.str ?? ''}`;
        break;
      case Field.exe:
        out += ` -F exe=${f.str ?? ''}`;
        break;
      case Field.key:
        // strtok drops empty pieces between separators.
        for (const k of (f.str ?? '').split('\x01')) if (k !== '') out += watch ? ` -k ${k}` : ` -F key=${k}`;
        break;
      case Field.perm: {
        let p = '';
        if (v & 4) p += 'r';
        if (v & 2) p += 'w';
        if (v & 1) p += 'x';
        if (v & 8) p += 'a';
        out += watch ? ` -p ${p}` : ` -F perm=${p}`;
        break;
      }
      case Field.inode:
        out += ` -F ${name}${op}${v}`;
        break;
      case Field.field_compare: {
        const c = compareNames(v);
        if (c) out += ` -C ${c[0]}${op}${c[1]}`;
        break;
      }
      case Field.a0:
      case Field.a1:
      case Field.a2:
      case Field.a3:
        out += ` -F ${name}${op}${hex(v)}`;
        break;
      case Field.exit: {
        const sv = s32(v);
        const err = sv < 0 ? ERRNOS.name(-sv) : undefined;
        out += err !== undefined ? ` -F ${name}${op}-${err}` : ` -F ${name}${op}${sv}`;
        break;
      }
      case Field.fstype: {
        const t = FS_TYPES.name(v);
        out += ` -F ${name}${op}${t ?? s32(v)}`;
        break;
      }
      case Field.contid: {
        const u = f.u64 ?? 0n;
        out += ` -F ${name}${op}${u === AUDIT_CID_UNSET ? 'unset' : u.toString()}`;
        break;
      }
      default:
        if (LABEL_FIELDS.has(field)) out += ` -F ${name}${op}${f.str ?? ''}`;
        else out += ` -F ${name}${op}${s32(v)}`;
    }
  }
  return out;
}

function syscalls(r: Rule, state: FormatState): string {
  if (NO_SYSCALL_LISTS.has(r.flags & 7)) return '';
  if (allSyscalls(r.mask)) return ' -S all';
  const machine = state.elf ? elfToMachine(state.elf) : HOST_MACHINE;
  const names: string[] = [];
  for (let i = 0; i < 64 * 32; i++) {
    if ((r.mask[i >>> 5]! & (1 << (i & 31))) === 0) continue;
    names.push((machine >= 0 ? syscallName(i, machine) : undefined) ?? String(i));
  }
  return names.length ? ' -S ' + names.join(',') : '';
}

/** A whole listing, carrying auditctl's arch state from rule to rule; "No rules" when empty, like auditctl -l. */
export function formatRules(rules: readonly Rule[]): string[] {
  if (rules.length === 0) return ['No rules'];
  const state: FormatState = { elf: 0 };
  return rules.map((r) => formatRule(r, state));
}
