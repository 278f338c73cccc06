// Auxiliary daemons on the real kernel: two tagged process trees routed to A and B, a kill -9, refused host-wide rules.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { kernelSkipReason, snapshotKernel, withKernel } from '../helpers/kernel';
import {
  buildSyscallProgram,
  cliPath,
  readText,
  startDaemon,
  stopDaemon,
  syscallSerials,
  tempDir,
} from '../helpers/daemon';

function cli(conf: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cliPath, ...args, '--config', conf], { encoding: 'utf8', timeout: 30000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A shell that waits for "go", then forks `forks` children that exec the syscall program, then execs it itself. */
function tree(prog: string, forks: number, each: number): { pid: number; go: () => Promise<void> } {
  const script = `read go; i=0; while [ $i -lt ${forks} ]; do ${prog} ${each} 300 & i=$((i+1)); done; wait; exec ${prog} ${each} 300`;
  const child = spawn('/bin/bash', ['-c', script], { stdio: ['pipe', 'ignore', 'inherit'] });
  const done = new Promise<void>((resolve, reject) =>
    child.once('exit', (c) => (c === 0 ? resolve() : reject(new Error(`tree exited ${c}`)))),
  );
  return {
    pid: child.pid!,
    go: async () => {
      child.stdin!.end('go\n');
      await done;
    },
  };
}

function serialsIn(text: string, key: string): { unique: number; lines: number } {
  let lines = 0;
  for (const l of text.split('\n')) if (l.includes('type=SYSCALL ') && l.includes(`key="${key}"`)) lines++;
  return { unique: syscallSerials(text, key).size, lines };
}

describe('auxiliary daemons routed by contid (real kernel)', { skip: kernelSkipReason() }, () => {
  it('A gets exactly tree 100, B exactly tree 200, the host the rest; kill -9 of A loses nothing; host-wide rules refused', () =>
    withKernel(async () => {
      const dir = tempDir('ammulti-');
      const N_FORKS = 3,
        EACH = 250,
        PER_TREE = (N_FORKS + 1) * EACH;
      try {
        const prog = buildSyscallProgram(dir);
        const rule = (key: string): string => `-a always,exit -F arch=b64 -S getppid -F exe=${prog} -k ${key}\n`;
        writeFileSync(join(dir, 'host.rules'), rule('host-k'));
        writeFileSync(join(dir, 'a.rules'), rule('tree-a'));
        writeFileSync(join(dir, 'b.rules'), rule('tree-b'));
        const conf = join(dir, 'auditmux.yaml');
        writeFileSync(
          conf,
          [
            'host:',
            '  kernel: { enabled: 1, backlog_limit: 8192, backlog_wait_time: 60000 }',
            `  rules: ${join(dir, 'host.rules')}`,
            `  log: { file: ${join(dir, 'log', 'audit.log')}, format: RAW, max_log_file: 100 }`,
            '  keep: unrouted',
            `  control_socket: ${join(dir, 'control.sock')}`,
            'daemons:',
            `  - { name: a, rules: ${join(dir, 'a.rules')}, log: { file: ${join(dir, 'log', 'a.log')}, format: RAW, max_log_file: 100 }, queue: { depth: 100000 }, isolation: process }`,
            'routes:',
            '  - { contid: 100, daemons: [a] }',
          ].join('\n') + '\n',
        );
        const d = await startDaemon(conf);
        try {
          // B arrives at run time; a bad rules file for C changes nothing.
          const before = spawnSync('auditctl', ['-l'], { encoding: 'utf8' }).stdout;
          for (const bad of ['-e 0', '-D', '-b 1']) {
            writeFileSync(join(dir, 'c.rules'), `${rule('tree-c')}${bad}\n`);
            const r = cli(conf, 'aux', 'add', 'c', '--rules', join(dir, 'c.rules'), '--contid', '300');
            assert.equal(r.status, 7, `${bad}: ${r.stderr}`);
            assert.match(r.stderr, /c\.rules:2: .*host-wide/);
            assert.equal(
              spawnSync('auditctl', ['-l'], { encoding: 'utf8' }).stdout,
              before,
              `${bad} left the kernel unchanged`,
            );
          }
          // A daemon with a user never gets the host's log directory (it would own the host's trail).
          const addD = cli(
            conf,
            'aux',
            'add',
            'd',
            '--contid',
            '400',
            '--user',
            'nobody',
            '--log',
            join(dir, 'log', 'd.log'),
          );
          assert.equal(addD.status, 2, addD.stderr);
          assert.match(addD.stderr, /daemon "d" runs as user "nobody" .*host's log directory/);
          assert.equal(statSync(join(dir, 'log')).uid, 0, "the host log directory stays root's");
          const addB = cli(
            conf,
            'aux',
            'add',
            'b',
            '--rules',
            join(dir, 'b.rules'),
            '--contid',
            '200',
            '--log',
            join(dir, 'log', 'b.log'),
            '--queue',
            '100000',
          );
          assert.equal(addB.status, 0, addB.stderr);

          const t100 = tree(prog, N_FORKS, EACH);
          const t200 = tree(prog, N_FORKS, EACH);
          const tUnset = tree(prog, N_FORKS, EACH);
          assert.equal(cli(conf, 'contid', 'set', String(t100.pid), '100').status, 0);
          assert.equal(cli(conf, 'contid', 'set', String(t200.pid), '200').status, 0);
          const twice = cli(conf, 'contid', 'set', String(t200.pid), '300');
          assert.notEqual(twice.status, 0, 'a contid is set once');
          assert.match(twice.stderr, /already has contid 200/);

          const runs = Promise.all([t100.go(), t200.go(), tUnset.go()]);
          // Kill A's process while its tree is running: it restarts, and its queue (held by the host) is resent.
          await new Promise((r) => setTimeout(r, 150));
          const list = JSON.parse(cli(conf, 'aux', 'list', '--json').stdout) as Array<{
            name: string;
            pid: number;
            isolation: string;
          }>;
          const aPid = list.find((x) => x.name === 'a')!.pid;
          // B, added without --user or --isolation, is written by the host process itself.
          assert.deepEqual(list.map((x) => [x.name, x.isolation, x.pid]).sort(), [
            ['a', 'process', aPid],
            ['b', 'inline', 0],
          ]);
          assert.ok(aPid > 0);
          process.kill(aPid, 'SIGKILL');
          await runs;
          await new Promise((r) => setTimeout(r, 1500));
          const after = JSON.parse(cli(conf, 'aux', 'list', '--json').stdout) as Array<{
            name: string;
            restarts: number;
            state: string;
            queued: number;
          }>;
          const a = after.find((x) => x.name === 'a')!;
          assert.equal(a.restarts, 1, 'A was restarted once');
          assert.equal(a.state, 'running');
          const rm = cli(conf, 'aux', 'remove', 'b');
          assert.equal(rm.status, 0, rm.stderr);
        } finally {
          assert.equal(await stopDaemon(d), 0, d.stderr());
        }
        const aLog = readText(join(dir, 'log', 'a.log'));
        const bLog = readText(join(dir, 'log', 'b.log'));
        const hLog = readText(join(dir, 'log', 'audit.log'));
        assert.deepEqual(
          serialsIn(aLog, 'tree-a'),
          { unique: PER_TREE, lines: PER_TREE },
          'A: every event of tree 100, none twice',
        );
        assert.deepEqual(
          serialsIn(bLog, 'tree-b'),
          { unique: PER_TREE, lines: PER_TREE },
          'B: every event of tree 200, none twice',
        );
        assert.equal(serialsIn(aLog, 'tree-b').unique + serialsIn(aLog, 'host-k').unique, 0, 'A sees nothing else');
        assert.equal(serialsIn(bLog, 'tree-a').unique + serialsIn(bLog, 'host-k').unique, 0, 'B sees nothing else');
        assert.match(aLog, /^type=CONTAINER_ID msg=audit\([^)]*\): record=1 contid=100$/m);
        assert.match(bLog, /^type=CONTAINER_ID msg=audit\([^)]*\): record=1 contid=200$/m);
        assert.doesNotMatch(aLog + bLog, /auditmux-aux:/, 'owner tags never reach a log');
        assert.equal(serialsIn(hLog, 'host-k').unique, PER_TREE, 'the host keeps the untagged tree');
        const reason = /type=DAEMON_ERR msg=audit\([^)]*\): op=refused reason=([0-9A-F]+) daemon=c /.exec(hLog);
        assert.ok(reason, 'refusal record, its reason hex-encoded');
        assert.match(Buffer.from(reason[1]!, 'hex').toString('utf8'), /-e /);
        assert.match(hLog, /type=CONTAINER_OP msg=audit\([^)]*\): op=set opid=\d+ contid=100 old-contid=-1/);
        assert.match(hLog, /op=aux-crash daemon=a exit=none signal=SIGKILL/);
        const ausearch = spawnSync('ausearch', ['-if', join(dir, 'log', 'a.log'), '-k', 'tree-a', '--raw'], {
          encoding: 'utf8',
          maxBuffer: 1 << 28,
        });
        assert.equal(syscallSerials(ausearch.stdout, 'tree-a').size, PER_TREE, 'ausearch reads the auxiliary log');
        const snap = await snapshotKernel();
        assert.equal(snap.rules.length, 0, 'every rule removed at stop');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }));
});
