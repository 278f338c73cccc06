// Syscall names by machine and number, from the generated ./syscall-tables.ts (ausyscall's tables).
import { Machine } from './arch';
import { NameTable } from './name-table';
import { SYSCALLS_I386, SYSCALLS_X86_64 } from './syscall-tables';

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

/** Case-insensitive, as auditctl's -S; undefined for an unknown name or a machine without a table. */
export function syscallNumber(name: string, machine: number): number | undefined {
  return syscallTable(machine)?.num(name);
}

export function syscallName(nr: number, machine: number): string | undefined {
  return syscallTable(machine)?.name(nr);
}
