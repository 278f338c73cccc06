// Architectures: libaudit's machine numbers, the names auditctl accepts and ausearch prints, and their AUDIT_ARCH_*
// values, all from the generated ./tables.ts.
import { MACHINE_SPELLINGS, MACHINE_TABLE } from './tables';
import { NameTable } from './name-table';

function machineNamed(name: string): number {
  const row = MACHINE_TABLE.find((r) => r[1] === name);
  if (row === undefined) throw new Error(`libaudit's machine table has no ${name}`);
  return row[0];
}

/** libaudit's machine numbers (its machine_t), for the machines auditctl's -F arch= knows. */
export const Machine = {
  X86: machineNamed('i386'),
  X86_64: machineNamed('x86_64'),
  PPC64: machineNamed('ppc64'),
  PPC: machineNamed('ppc'),
  S390X: machineNamed('s390x'),
  S390: machineNamed('s390'),
  ARM: machineNamed('armeb'),
  AARCH64: machineNamed('aarch64'),
  PPC64LE: machineNamed('ppc64le'),
} as const;

/** Every spelling audit_name_to_machine() accepts (i686, armv7l...); a machine number prints its first one. */
export const MACHINE_NAMES = new NameTable(MACHINE_SPELLINGS);

/** __AUDIT_ARCH_64BIT */
export const ARCH_64BIT = 0x80000000;

const ELF_BY_MACHINE = new Map<number, number>(MACHINE_TABLE.map(([m, , elf]) => [m, elf]));
const MACHINE_BY_ELF = new Map<number, number>(MACHINE_TABLE.map(([m, , elf]) => [elf, m]));
const NAME_BY_ELF = new Map<number, string>(MACHINE_TABLE.map(([, name, elf]) => [elf, name]));

/** The AUDIT_ARCH_* value of a machine, or 0. */
export function machineToElf(machine: number): number {
  return ELF_BY_MACHINE.get(machine) ?? 0;
}

/** The machine of an AUDIT_ARCH_* value, or -1. */
export function elfToMachine(elf: number): number {
  return MACHINE_BY_ELF.get(elf) ?? -1;
}

/** What auparse prints for an arch= value (audit_machine_to_name(audit_elf_to_machine(elf))), or undefined. */
export function archName(elf: number): string | undefined {
  return NAME_BY_ELF.get(elf);
}

/** The machine auditctl detects from uname: this port only runs on x86_64 hosts (the syscall tables it ships). */
export const HOST_MACHINE = process.arch === 'ia32' ? Machine.X86 : Machine.X86_64;
