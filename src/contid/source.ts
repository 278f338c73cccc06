// The contract of a contid source: where a process's container ID is set and read. One implementation per file here
// (source-kernel, source-tracker; the emulated kernel's is a test double in test/helpers); defaultContidSource in
// src/daemon/contid-commands.ts picks one at start.
import type { Chain } from './chain';

export interface ContidSource {
  readonly kind: 'kernel' | 'tracker';
  set(
    pid: number,
    id: bigint,
    opts: { setterPid: number; nested?: boolean; join?: boolean },
  ): { old: Chain | null; chain: Chain };
  get(pid: number): Chain | null;
}
