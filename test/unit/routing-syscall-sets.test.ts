// The pipeline tells forks, execs and exits by syscall number on x86_64 and i386: every one of them, numbered as the
// kernel's syscall tables number them, reaches the tracker as the right call, and neighbouring numbers do not.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config';
import { Router } from '../../src/routing/router';
import { Pipeline } from '../../src/routing/pipeline';
import type { ContidTracker } from '../../src/contid/tracker';

// The kernel ABI's numbers (arch/x86/entry/syscalls/syscall_{64,32}.tbl), written out so that a wrong generated table
// or a wrong name in the pipeline shows here.
const ARCHES = [
  {
    arch: 'c000003e',
    fork: [56, 57, 58, 435], // clone, fork, vfork, clone3
    exec: [59, 322], // execve, execveat
    exit: [60, 231], // exit, exit_group
    other: [0, 1, 2, 11, 120, 190, 252, 358, 110],
  },
  {
    arch: '40000003',
    fork: [120, 2, 190, 435],
    exec: [11, 358],
    exit: [1, 252],
    other: [0, 3, 56, 57, 58, 59, 60, 231, 322, 20],
  },
];

function calls(arch: string, nr: number, exit: number): string[] {
  const out: string[] = [];
  const recording = {
    idle: false,
    onFork: (pid: number, child: number) => out.push(`fork ${pid} ${child}`),
    noteExec: (pid: number) => out.push(`exec ${pid}`),
    lookup: () => null,
    onExit: (pid: number) => out.push(`exit ${pid}`),
  } as unknown as ContidTracker;
  const p = new Pipeline({
    router: new Router(parseConfig('', '/tmp/am-sys.yaml').routes),
    tracker: recording,
    contidKernel: false,
    daemonsWithRules: new Set(),
    keep: 'unrouted',
  });
  const payload = Buffer.from(
    `audit(1700000000.000:1): arch=${arch} syscall=${nr} success=yes exit=${exit} ppid=1 pid=10 auid=0 key=(null)`,
  );
  p.view([{ type: 1300, payload }]);
  return out;
}

describe('pipeline: fork, exec and exit syscalls by arch', () => {
  for (const a of ARCHES) {
    it(`arch=${a.arch}`, () => {
      for (const nr of a.fork) assert.deepEqual(calls(a.arch, nr, 77), ['fork 10 77'], `fork ${nr}`);
      for (const nr of a.exec) assert.deepEqual(calls(a.arch, nr, 0), ['exec 10'], `exec ${nr}`);
      for (const nr of a.exit) assert.deepEqual(calls(a.arch, nr, 0), ['exit 10'], `exit ${nr}`);
      for (const nr of a.other) {
        assert.deepEqual(calls(a.arch, nr, 77), [], `syscall ${nr} exit=77`);
        assert.deepEqual(calls(a.arch, nr, 0), [], `syscall ${nr} exit=0`);
      }
    });
  }
});
