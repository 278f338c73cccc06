// The routing scenario, run unchanged against the emulated kernel (contid patch set) and the real kernel (mainline):
// two tagged process trees routed to auxiliary daemons A and B, a kill -9 of A, refused host-wide rules.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { AuditClient } from '../../src/kernel/client';
import { Field } from '../../src/kernel/constants';
import { HostDaemon } from '../../src/daemon/host';
import { AuditmuxError } from '../../src/errors';
import { decodeRule } from '../../src/rules';
import { EmulatedKernel } from '../helpers/emulated-kernel';
import { emulatedHostOptions } from '../helpers/emulated-contid-source';
import { kernelSkipReason, withKernel } from '../helpers/kernel';
import {
  buildSyscallProgram,
  cli,
  readText,
  startDaemon,
  stopDaemon,
  syscallSerials,
  tempDir,
  writeHostConfig,
  type CliResult,
} from '../helpers/daemon';
import { waitFor } from '../helpers/peers';

const N_FORKS = 3;
const EACH = 250;
/** Events of one tree: its root and N_FORKS children make EACH audited getppid calls each. */
const PER_TREE = (N_FORKS + 1) * EACH;

interface Trees {
  /** The three roots: for contid 100, for contid 200, and one left untagged. */
  roots: [number, number, number];
  /** Every tree makes its events; `halfway` runs while they are under way. */
  run(halfway: () => Promise<void>): Promise<void>;
}

interface RoutingKernel {
  name: string;
  skip: string | undefined;
  /** Whether the kernel filters by contid itself (the patch set), so the daemons' rules carry the contid field. */
  contidRules: boolean;
  /** What `contid set` says for a process that already has a contid. */
  alreadySet: RegExp;
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** The audited executable. */
  program(dir: string): string;
  /** Starts the host daemon on `conf`; stop() resolves to its exit code. */
  start(conf: string): Promise<{ stop(): Promise<number | null>; stderr(): string }>;
  trees(prog: string): Promise<Trees>;
  /** `auditmux contid set PID ID` as an administrator of this kernel runs it. */
  contidSet(conf: string, pid: number, id: string): Promise<CliResult>;
  kernelState(): Promise<{ rules: Buffer[]; pid: number }>;
}

function emulated(): RoutingKernel {
  const EXE = '/usr/bin/amtree-emulated';
  /** The emulated administrator's shell: the trees' parent, so the patch set lets it set their contids. */
  const SETTER = 50;
  let kernel = new EmulatedKernel({ contid: true, ackOrder: 'random' });
  let daemon: HostDaemon | null = null;
  return {
    name: 'emulated kernel with the contid patch set',
    skip: undefined,
    contidRules: true,
    alreadySet: /audit_containerid of \d+: EEXIST/,
    async run(fn) {
      kernel = new EmulatedKernel({ contid: true, ackOrder: 'random' });
      return fn();
    },
    program: () => EXE,
    async start(conf) {
      const d = new HostDaemon({
        configPath: conf,
        diag: pino({ level: 'silent' }),
        ...emulatedHostOptions(kernel),
      });
      await d.start();
      daemon = d;
      return {
        stop: async () => {
          await d.stop();
          return 0;
        },
        stderr: () => '',
      };
    },
    async trees(prog) {
      kernel.spawn(1, 0);
      kernel.spawn(SETTER, 1);
      const roots: [number, number, number] = [1000, 2000, 3000];
      for (const root of roots) kernel.spawn(root, SETTER, { exe: prog });
      return {
        roots,
        async run(halfway) {
          for (const root of roots) for (let i = 1; i <= N_FORKS; i++) kernel.spawn(root + i, root, { exe: prog });
          const pids = roots.flatMap((r) => Array.from({ length: N_FORKS + 1 }, (_, i) => r + i));
          for (let round = 0; round < EACH; round++) {
            for (const pid of pids) kernel.emitEvent(pid, 'getppid', 0);
            if (round === EACH / 2) await halfway();
            if (round % 25 === 0) await new Promise((r) => setImmediate(r));
          }
        },
      };
    },
    async contidSet(_conf, pid, id) {
      // The CLI's own pid is not a task of the emulation: the request is made as the emulated shell makes it.
      try {
        const r = daemon!.contid.set(pid, id, false, { pid: SETTER, uid: 0, gid: 0 });
        return { status: 0, stdout: JSON.stringify(r), stderr: '' };
      } catch (e) {
        if (!(e instanceof AuditmuxError)) throw e;
        return { status: e.exitCode, stdout: '', stderr: e.message };
      }
    },
    kernelState: async () => ({ rules: [...kernel.rules], pid: kernel.status.pid }),
  };
}

/** A shell that waits for "go", then forks `forks` children that exec the syscall program, then execs it itself. */
function tree(prog: string): { pid: number; go: () => Promise<void> } {
  const script = `read go; i=0; while [ $i -lt ${N_FORKS} ]; do ${prog} ${EACH} 300 & i=$((i+1)); done; wait; exec ${prog} ${EACH} 300`;
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

const real: RoutingKernel = {
  name: 'real kernel',
  skip: kernelSkipReason(),
  contidRules: false,
  alreadySet: /already has contid 200/,
  run: withKernel,
  program: (dir) => buildSyscallProgram(dir),
  start: (conf) => startDaemon(conf).then((d) => ({ stop: () => stopDaemon(d), stderr: d.stderr })),
  async trees(prog) {
    const t = [tree(prog), tree(prog), tree(prog)];
    return {
      roots: [t[0]!.pid, t[1]!.pid, t[2]!.pid],
      async run(halfway) {
        const runs = Promise.all(t.map((x) => x.go()));
        await new Promise((r) => setTimeout(r, 150));
        await halfway();
        await runs;
      },
    };
  },
  contidSet: (conf, pid, id) => cli(conf, 'contid', 'set', String(pid), id),
  async kernelState() {
    const c = await AuditClient.open();
    try {
      return { rules: await c.listRules(), pid: (await c.getStatus()).pid };
    } finally {
      c.close();
    }
  },
};

interface AuxRow {
  name: string;
  pid: number;
  isolation: string;
  state: string;
  restarts: number;
  queued: number;
  delivered: number;
}

function serialsIn(text: string, key: string): { unique: number; lines: number } {
  let lines = 0;
  for (const l of text.split('\n')) if (l.includes('type=SYSCALL ') && l.includes(`key="${key}"`)) lines++;
  return { unique: syscallSerials(text, key).size, lines };
}

for (const k of [emulated(), real]) {
  describe(`auxiliary daemons routed by contid: ${k.name}`, { skip: k.skip }, () => {
    it('A gets exactly tree 100, B exactly tree 200, the host the rest; kill -9 of A loses nothing; host-wide rules refused', () =>
      k.run(async () => {
        const dir = tempDir('amrouting-');
        try {
          const prog = k.program(dir);
          const rule = (key: string): string => `-a always,exit -F arch=b64 -S getppid -F exe=${prog} -k ${key}\n`;
          writeFileSync(join(dir, 'host.rules'), rule('host-k'));
          writeFileSync(join(dir, 'a.rules'), rule('tree-a'));
          writeFileSync(join(dir, 'b.rules'), rule('tree-b'));
          const conf = writeHostConfig(dir, {
            more: [
              'daemons:',
              `  - { name: a, rules: ${join(dir, 'a.rules')}, log: { file: ${join(dir, 'log', 'a.log')}, format: RAW, max_log_file: 100 }, queue: { depth: 100000 }, isolation: process }`,
              'routes:',
              '  - { contid: 100, daemons: [a] }',
            ],
          });
          const list = async (): Promise<AuxRow[]> => {
            const r = await cli(conf, 'aux', 'list', '--json');
            assert.equal(r.status, 0, `aux list --json: ${r.stderr}`);
            return JSON.parse(r.stdout) as AuxRow[];
          };
          const row = async (name: string): Promise<AuxRow | undefined> => (await list()).find((x) => x.name === name);
          const d = await k.start(conf);
          try {
            // A bad rules file for C changes nothing in the kernel.
            const before = (await k.kernelState()).rules.map((b) => b.toString('hex'));
            for (const bad of ['-e 0', '-D', '-b 1']) {
              writeFileSync(join(dir, 'c.rules'), `${rule('tree-c')}${bad}\n`);
              const r = await cli(conf, 'aux', 'add', 'c', '--rules', join(dir, 'c.rules'), '--contid', '300');
              assert.equal(r.status, 7, `${bad}: ${r.stderr}`);
              assert.match(r.stderr, /c\.rules:2: .*host-wide/);
              assert.deepEqual(
                (await k.kernelState()).rules.map((b) => b.toString('hex')),
                before,
                `${bad} left the kernel unchanged`,
              );
            }
            // A daemon with a user never gets the host's log directory (it would own the host's trail).
            const addD = await cli(
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
            // B arrives at run time as an unprivileged user, in a log directory of its own the host prepares.
            const addB = await cli(
              conf,
              'aux',
              'add',
              'b',
              '--rules',
              join(dir, 'b.rules'),
              '--contid',
              '200',
              '--log',
              join(dir, 'log', 'b', 'b.log'),
              '--queue',
              '100000',
              '--user',
              'nobody',
            );
            assert.equal(addB.status, 0, addB.stderr);
            await waitFor(async () => (await row('b'))?.state === 'running', 30000, 'B running');
            const bPid = (await row('b'))!.pid;
            assert.match(readFileSync(`/proc/${bPid}/status`, 'utf8'), /^Uid:\s+65534\s/m, 'B runs as nobody');
            // E, added without --user or --isolation, is written by the host process itself.
            const addE = await cli(conf, 'aux', 'add', 'e', '--contid', '500');
            assert.equal(addE.status, 0, addE.stderr);
            // Daemons added at run time survive a reload of the configuration file.
            const reload = await cli(conf, 'reload');
            assert.equal(reload.status, 0, reload.stderr);
            assert.deepEqual(JSON.parse(reload.stdout), { ok: true });
            assert.equal((await row('b'))!.pid, bPid, 'B untouched by the reload');
            // The patch set filters by contid in the kernel: A's and B's rules carry the field; mainline has none.
            const contids = (await k.kernelState()).rules
              .map((b) => decodeRule(b).fields.find((f) => f.field === Field.contid))
              .filter((f) => f !== undefined)
              .map((f) => f.u64)
              .sort();
            assert.deepEqual(contids, k.contidRules ? [100n, 200n] : []);

            const trees = await k.trees(prog);
            const [t100, t200] = trees.roots;
            assert.equal((await k.contidSet(conf, t100, '100')).status, 0);
            assert.equal((await k.contidSet(conf, t200, '200')).status, 0);
            const twice = await k.contidSet(conf, t200, '300');
            assert.notEqual(twice.status, 0, 'a contid is set once');
            assert.match(twice.stderr, k.alreadySet);

            // Kill A's process while its tree is running: it restarts, and its queue (held by the host) is resent.
            await trees.run(async () => {
              const rows = await list();
              const aPid = rows.find((x) => x.name === 'a')!.pid;
              assert.deepEqual(rows.map((x) => [x.name, x.isolation, x.pid]).sort(), [
                ['a', 'process', aPid],
                ['b', 'process', bPid],
                ['e', 'inline', 0],
              ]);
              assert.ok(aPid > 0, 'A has a process of its own');
              process.kill(aPid, 'SIGKILL');
            });
            let seen: AuxRow[] = [];
            await waitFor(
              async () => {
                seen = await list();
                const [a, b] = [seen.find((x) => x.name === 'a'), seen.find((x) => x.name === 'b')];
                return (
                  a?.restarts === 1 &&
                  a.state === 'running' &&
                  a.queued === 0 &&
                  a.delivered >= PER_TREE &&
                  b?.queued === 0 &&
                  b.delivered >= PER_TREE
                );
              },
              30000,
              'A restarted, A and B drained',
            ).catch(async (e: Error) => {
              const status = (await cli(conf, 'status')).stdout.slice(0, 6000);
              // Say where it stuck: the daemons' rows, where each tree's events are so far (this is how a tree's last
              // events were found in the host log, untagged by a /proc sweep that ran ahead of the records), and the
              // host's status and stderr.
              const logs = ['a.log', 'b/b.log', 'audit.log'].map((f) => {
                const text = readText(join(dir, 'log', f));
                return `${f}: ${['tree-a', 'tree-b', 'host-k'].map((key) => `${key}=${serialsIn(text, key).unique}`).join(' ')}`;
              });
              throw new Error(
                `${e.message}; aux list: ${JSON.stringify(seen)}; logs: ${logs.join('; ')}; status: ${status}; host stderr: ${d.stderr().slice(-4000)}`,
              );
            });
            const a = (await row('a'))!;
            assert.equal(a.restarts, 1, 'A was restarted once');
            assert.equal(a.state, 'running');
            const rm = await cli(conf, 'aux', 'remove', 'b');
            assert.equal(rm.status, 0, rm.stderr);
          } finally {
            assert.equal(await d.stop(), 0, d.stderr());
          }
          const aLog = readText(join(dir, 'log', 'a.log'));
          const bLog = readText(join(dir, 'log', 'b', 'b.log'));
          const hLog = readText(join(dir, 'log', 'audit.log'));
          const exact = { unique: PER_TREE, lines: PER_TREE };
          assert.deepEqual(serialsIn(aLog, 'tree-a'), exact, 'A: every event of tree 100, none twice');
          assert.deepEqual(serialsIn(bLog, 'tree-b'), exact, 'B: every event of tree 200, none twice');
          assert.deepEqual(serialsIn(hLog, 'host-k'), exact, 'the host keeps the untagged tree, none twice');
          assert.equal(serialsIn(aLog, 'tree-b').unique + serialsIn(aLog, 'host-k').unique, 0, 'A sees nothing else');
          assert.equal(serialsIn(bLog, 'tree-a').unique + serialsIn(bLog, 'host-k').unique, 0, 'B sees nothing else');
          assert.match(aLog, /^type=CONTAINER_ID msg=audit\([^)]*\): record=1 contid=100$/m);
          assert.match(bLog, /^type=CONTAINER_ID msg=audit\([^)]*\): record=1 contid=200$/m);
          assert.match(aLog, /^type=SYSCALL .* key="tree-a" record=1$/m);
          assert.doesNotMatch(aLog + bLog + hLog, /auditmux-aux:/, 'owner tags never reach a log');
          const reason = /type=DAEMON_ERR msg=audit\([^)]*\): op=refused reason=([0-9A-F]+) daemon=c /.exec(hLog);
          assert.ok(reason, 'refusal record, its reason hex-encoded');
          // the reason holds the tenant's rule text: hex-encoded as the kernel encodes untrusted strings
          const why = Buffer.from(reason[1]!, 'hex').toString('utf8');
          assert.match(why, /host-wide/);
          assert.match(why, /-e /);
          assert.match(hLog, /type=CONTAINER_OP msg=audit\([^)]*\): op=set opid=\d+ contid=100 old-contid=-1/);
          assert.match(hLog, /op=aux-crash daemon=a exit=none signal=SIGKILL/);
          const ausearch = spawnSync('ausearch', ['-if', join(dir, 'log', 'a.log'), '-k', 'tree-a', '--raw'], {
            encoding: 'utf8',
            maxBuffer: 1 << 28,
          });
          assert.equal(syscallSerials(ausearch.stdout, 'tree-a').size, PER_TREE, 'ausearch reads the auxiliary log');
          assert.deepEqual(await k.kernelState(), { rules: [], pid: 0 }, 'every rule removed, the kernel released');
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }));
  });
}
