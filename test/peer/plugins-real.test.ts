// Real Debian auditd plugins (audisp-syslog into a real rsyslogd, laurel) behind the host and an auxiliary daemon.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pino from 'pino';
import { EmulatedKernel } from '../helpers/emulated-kernel';
import { emulatedHostOptions } from '../helpers/emulated-contid-source';
import { MsgType } from '../../src/kernel/constants';
import { HostDaemon } from '../../src/daemon/host';
import { isRoot, tmpDir, UnixRsyslog, waitFor, which } from '../helpers/peers';

const EXE = '/usr/bin/amtree-plugins';
const AUDISP_SYSLOG = '/sbin/audisp-syslog';
const DEV_LOG = '/dev/log';
const notRoot = !isRoot() ? 'needs root: plugins are spawned as auditd spawns them and rsyslogd owns /dev/log' : false;
const skipSyslog =
  notRoot ||
  (!existsSync(AUDISP_SYSLOG)
    ? `${AUDISP_SYSLOG} is missing (Debian package audispd-plugins)`
    : !which('rsyslogd')
      ? 'rsyslogd is not installed'
      : false);
const N_HOST = 200;
const N_AUX = 100;

interface PluginCmd {
  path: string;
  args: string[];
}

interface Run {
  hostLog: string;
  auxLog: string;
  hostKey: string;
  auxKey: string;
}

/**
 * The host and auxiliary daemon `a` (contid 100 routed to it) on an emulated kernel, each with one plugin output and a
 * log in `format`; N_HOST events of an untagged process stay on the host, N_AUX of a tagged one go to `a`.
 */
async function runDaemons(
  dir: string,
  isolation: 'inline' | 'process',
  plugin: (owner: 'host' | 'a') => PluginCmd,
  format: { host: string; a: string },
): Promise<Run> {
  const tag = randomBytes(3).toString('hex');
  const hostKey = `host-${tag}`;
  const auxKey = `tree-${tag}`;
  writeFileSync(join(dir, 'host.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${EXE} -k ${hostKey}\n`);
  writeFileSync(join(dir, 'a.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${EXE} -k ${auxKey}\n`);
  // JSON is YAML: no quoting surprises for paths or arguments.
  const outputs = (owner: 'host' | 'a'): string => {
    const p = plugin(owner);
    return JSON.stringify([
      {
        type: 'plugin',
        name: `real-${owner}`,
        path: p.path,
        args: p.args,
        format: 'string',
        log_format: format[owner],
        max_restarts: 0,
        spool: { dir: join(dir, 'spool', owner) },
      },
    ]);
  };
  writeFileSync(
    join(dir, 'auditmux.yaml'),
    [
      'host:',
      `  rules: ${join(dir, 'host.rules')}`,
      `  log: { file: ${join(dir, 'audit.log')}, format: ${format.host} }`,
      '  keep: unrouted',
      `  outputs: ${outputs('host')}`,
      'daemons:',
      `  - { name: a, rules: ${join(dir, 'a.rules')}, log: { file: ${join(dir, 'a.log')}, format: ${format.a} }, outputs: ${outputs('a')}, isolation: ${isolation} }`,
      'routes:',
      '  - { contid: 100, daemons: [a] }',
    ].join('\n') + '\n',
  );
  const kernel = new EmulatedKernel({ ackOrder: 'random' });
  const daemon = new HostDaemon({
    configPath: join(dir, 'auditmux.yaml'),
    diag: pino({ level: 'silent' }),
    ...emulatedHostOptions(kernel),
    noControl: true,
  });
  // On mainline the tracker checks /proc: the tagged process must really exist, without children.
  const tagged = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    await daemon.start();
    kernel.spawn(1, 0);
    kernel.spawn(tagged.pid!, 1, { exe: EXE, comm: 'tagged' });
    kernel.spawn(4242424, 1, { exe: EXE, comm: 'untagged' });
    daemon.contid.set(tagged.pid!, '100', false, { pid: process.pid, uid: 0, gid: 0 });
    for (let i = 0; i < N_HOST; i++) {
      // Every third event carries a CWD record too: multi-record events besides SYSCALL + PROCTITLE.
      const extra: Array<[number, string]> = i % 3 === 0 ? [[MsgType.CWD, `cwd="/tmp/d${i}"`]] : [];
      kernel.emitEvent(4242424, 'getppid', 0, extra);
      if (i % 2 === 0) kernel.emitEvent(tagged.pid!, 'getppid', 0, extra);
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    // Stopping closes each plugin's stdin and waits for it to exit, as auditd does.
    await daemon.stop();
    tagged.kill();
  }
  return {
    hostLog: readFileSync(join(dir, 'audit.log'), 'latin1'),
    auxLog: readFileSync(join(dir, 'a.log'), 'latin1'),
    hostKey,
    auxKey,
  };
}

const lines = (text: string): string[] => text.split('\n').filter((l) => l.length > 0);
/**
 * Records auditmux writes itself (DAEMON_*, CONTAINER_OP): the host dispatches those written after its outputs started
 * to its plugins, as auditd does, but not the ones before (its own DAEMON_START); the comparison is over the kernel's.
 */
const DAEMON_RECORD = /^(node=\S+ )?type=(DAEMON_[A-Z]+|CONTAINER_OP) /;
const kernelLines = (text: string): string[] => lines(text).filter((l) => !DAEMON_RECORD.test(l));
const serialOf = (l: string): string => (/audit\(\d+\.\d+:(\d+)\)/.exec(l) ?? ['', '?'])[1]!;

/** Serials of SYSCALL records with `key` in a log. */
function keyedSerials(log: string, key: string): string[] {
  return lines(log)
    .filter((l) => l.includes('type=SYSCALL ') && l.includes(`key="${key}"`))
    .map(serialOf)
    .sort();
}

/** rsyslog's view of one audisp-syslog instance: the messages (the `%rawmsg%` after "TAG: ") logged at `pri`. */
function syslogMessages(rs: UnixRsyslog, pri: number, tag: string): string[] {
  const out: string[] = [];
  for (const l of rs.lines()) {
    const [p, t] = l.split('|', 2);
    if (Number(p) !== pri || t !== `${tag}:`) continue;
    const raw = l.slice(p!.length + t!.length + 2);
    // glibc syslog(3) over /dev/log without LOG_PID: "<PRI>Mmm dd hh:mm:ss TAG: MESSAGE"
    const m = /^<(\d+)>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d ([^ :]+): (.*)$/s.exec(raw);
    assert.ok(m, `not a syslog(3) datagram: ${JSON.stringify(raw.slice(0, 120))}`);
    assert.equal(Number(m[1]), pri);
    assert.equal(m[2], tag);
    out.push(m[3]!);
  }
  return out;
}

describe('Debian audisp-syslog behind the daemons, into a real rsyslogd on /dev/log', { skip: skipSyslog }, () => {
  for (const isolation of ['inline', 'process'] as const)
    it(
      `host and auxiliary (${isolation}): every record of each daemon's log reaches syslog through its own plugin`,
      { timeout: 60000 },
      async () => {
        const dir = tmpDir('plug-syslog');
        // syslog(3) only knows /dev/log. When nothing owns it (this VM, CI) rsyslogd listens there for the test's
        // length;
        // when a system logger owns it the plugin runs in a private mount namespace with the test's socket over
        // /dev/log.
        const ownDevLog = !existsSync(DEV_LOG) && !isSymlink(DEV_LOG);
        const socket = ownDevLog ? DEV_LOG : join(dir, 'log.sock');
        const rs = new UnixRsyslog(dir, socket);
        const wrap = (args: string[]): PluginCmd => {
          if (ownDevLog) return { path: AUDISP_SYSLOG, args };
          const w = join(dir, 'audisp-syslog-ns.sh');
          // `&&`: audisp-syslog never runs against the system logger if the bind fails.
          writeFileSync(
            w,
            `#!/bin/sh\nexec unshare --mount --propagation private sh -c 'mount --bind "$0" ${DEV_LOG} && exec ${AUDISP_SYSLOG} "$@"' "${socket}" "$@"\n`,
          );
          chmodSync(w, 0o755);
          return { path: w, args };
        };
        try {
          await rs.start();
          // The arguments Debian's plugins.d/syslog.conf documents: priority, then facility (ident becomes "audispd").
          // The host logs at LOG_INFO to LOG_LOCAL6, the auxiliary daemon at LOG_NOTICE to LOG_LOCAL5, in ENRICHED.
          const run = await runDaemons(
            dir,
            isolation,
            (o) => wrap(o === 'host' ? ['LOG_INFO', 'LOG_LOCAL6'] : ['LOG_NOTICE', 'LOG_LOCAL5']),
            { host: 'RAW', a: 'ENRICHED' },
          );
          const PRI_HOST = 22 * 8 + 6;
          const PRI_AUX = 21 * 8 + 5;
          const hostLog = kernelLines(run.hostLog);
          const auxLog = kernelLines(run.auxLog);
          assert.equal(keyedSerials(run.hostLog, run.hostKey).length, N_HOST, 'host log');
          assert.equal(keyedSerials(run.auxLog, run.auxKey).length, N_AUX, 'auxiliary log');
          assert.deepEqual(keyedSerials(run.hostLog, run.auxKey), [], 'routed events are not on the host');
          // Plugins get EOE, logs do not; each event's EOE is its own syslog message.
          const expectHost =
            hostLog.length + new Set(hostLog.filter((l) => l.includes('type=SYSCALL ')).map(serialOf)).size;
          const expectAux =
            auxLog.length + new Set(auxLog.filter((l) => l.includes('type=SYSCALL ')).map(serialOf)).size;
          await waitFor(
            () =>
              syslogMessages(rs, PRI_HOST, 'audispd').length >= expectHost &&
              syslogMessages(rs, PRI_AUX, 'audispd').length >= expectAux,
            20000,
            'rsyslog wrote every record',
          ).catch(() => undefined);
          await new Promise((r) => setTimeout(r, 200));
          const gotHost = syslogMessages(rs, PRI_HOST, 'audispd');
          const gotAux = syslogMessages(rs, PRI_AUX, 'audispd');
          // The exact text: the log line itself (audisp-syslog turns ENRICHED's 0x1d separator into a space), nothing
          // else.
          const noEoe = (m: string[]): string[] => m.filter((l) => !/^type=EOE msg=audit\(\d+\.\d+:\d+\): ?$/.test(l));
          assert.deepEqual(
            kernelLines(noEoe(gotHost).join('\n')),
            hostLog,
            'the host plugin delivered exactly the host log, in order',
          );
          assert.ok(
            gotHost.some((l) => /^type=CONTAINER_OP msg=audit\([^)]*\): op=set /.test(l)),
            'and the host daemon records after its start',
          );
          assert.ok(
            auxLog.some((l) => l.includes('\x1d')),
            'the auxiliary log is ENRICHED',
          );
          assert.deepEqual(
            noEoe(gotAux),
            auxLog.map((l) => l.replace('\x1d', ' ')),
            'the auxiliary plugin delivered exactly its log, in order',
          );
          assert.equal(kernelLines(gotHost.join('\n')).length, expectHost, 'host: log records plus one EOE per event');
          assert.equal(gotAux.length, expectAux, 'auxiliary: log records plus one EOE per event');
          assert.ok(
            !gotHost.some((l) => l.includes(run.auxKey)) && !gotAux.some((l) => l.includes(run.hostKey)),
            'no event crossed daemons',
          );
          assert.match(
            gotAux.find((l) => l.startsWith('type=CONTAINER_ID ')) ?? '',
            /^type=CONTAINER_ID msg=audit\([^)]*\): record=1 contid=100/,
          );
          // Each plugin started once and logged its start-up at LOG_USER|LOG_INFO before openlog(): two starts in all.
          const inits = rs
            .lines()
            .filter((l) => l.startsWith('14|audisp-syslog:|') && l.includes('syslog plugin initialized'));
          assert.equal(inits.length, 2, inits.join('\n'));
        } finally {
          await rs.stop();
          // rsyslogd unlinks its socket on a clean stop; after a crash or kill the test removes what it created.
          if (ownDevLog && (existsSync(DEV_LOG) || isSymlink(DEV_LOG))) unlinkSync(DEV_LOG);
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
});

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

interface LaurelEvent {
  ID: string;
  NODE?: string;
  SYSCALL?: { key?: string | null; pid?: number; comm?: string };
  CWD?: { cwd?: string };
  PROCTITLE?: unknown;
  [k: string]: unknown;
}

/** laurel's JSON lines from its output directory (the current file and any rotated generation). */
function laurelEvents(dirOut: string): LaurelEvent[] {
  if (!existsSync(dirOut)) return [];
  const out: LaurelEvent[] = [];
  for (const f of readdirSync(dirOut)
    .filter((n) => n.startsWith('audit.log'))
    .sort()
    .reverse()) {
    for (const l of lines(readFileSync(join(dirOut, f), 'utf8'))) out.push(JSON.parse(l) as LaurelEvent);
  }
  return out;
}

describe('laurel behind the daemons', { skip: notRoot }, () => {
  for (const isolation of ['inline', 'process'] as const)
    it(
      `host and auxiliary (${isolation}): each laurel writes exactly the events routed to its daemon`,
      { timeout: 60000 },
      async () => {
        const laurel = which('laurel');
        // CI installs it (.ci/run); a missing laurel is a broken environment, not a reason to skip.
        assert.ok(laurel, 'laurel is not installed: apt-get install laurel (the Debian package .ci/run installs)');
        // Debian's config drops to the _laurel system user the package creates; without `user` laurel runs as root and
        // only warns. Use the packaged setup when the user exists: laurel creates and chowns its directory, then drops.
        const user = spawnSync('id', ['-u', '_laurel']).status === 0 ? '_laurel' : null;
        const dir = tmpDir('plug-laurel');
        const conf = (owner: string): string => {
          const p = join(dir, `laurel-${owner}.toml`);
          writeFileSync(
            p,
            [
              `directory = "${join(dir, `laurel-${owner}`)}"`,
              ...(user ? [`user = "${user}"`] : []),
              'statusreport-period = 0',
              '[auditlog]',
              'file = "audit.log"',
              'size = 100000000',
              'generations = 2',
            ].join('\n') + '\n',
          );
          // laurel -d: parse the configuration and exit; a config it rejects fails here with its own message.
          const dry = spawnSync(laurel!, ['-d', '-c', p], { encoding: 'utf8' });
          assert.equal(dry.status, 0, `laurel -d -c ${p}: ${dry.stderr}`);
          return p;
        };
        try {
          const run = await runDaemons(dir, isolation, (o) => ({ path: laurel!, args: ['-c', conf(o)] }), {
            host: 'RAW',
            a: 'RAW',
          });
          for (const [owner, log, key, n] of [
            ['host', run.hostLog, run.hostKey, N_HOST],
            ['a', run.auxLog, run.auxKey, N_AUX],
          ] as const) {
            const events = laurelEvents(join(dir, `laurel-${owner}`)).filter(
              (e) => !Object.keys(e).some((k) => /^(DAEMON_|CONTAINER_OP)/.test(k)),
            );
            const logSerials = [...new Set(kernelLines(log).map(serialOf))].sort();
            const ids = events.map((e) => e.ID.split(':')[1]!).sort();
            // One JSON object per event: the same serials as the daemon's log, none twice, none from the other daemon.
            // (laurel 0.5.1 keeps the event but leaves out the CONTAINER_ID record auditmux adds on mainline kernels.)
            assert.deepEqual(ids, logSerials, `${owner}: laurel's events are the events in the daemon's log`);
            const keyed = events
              .filter((e) => e.SYSCALL?.key === key)
              .map((e) => e.ID.split(':')[1]!)
              .sort();
            assert.equal(keyed.length, n, `${owner}: SYSCALL events with key ${key}`);
            assert.deepEqual(keyed, keyedSerials(log, key), `${owner}: keyed serials match the log`);
            const other = owner === 'host' ? run.auxKey : run.hostKey;
            assert.ok(!events.some((e) => e.SYSCALL?.key === other), `${owner}: no event of the other daemon`);
            // laurel assembled the multi-record events: SYSCALL, PROCTITLE and (every third) CWD under one ID.
            const full = events.filter((e) => e.SYSCALL?.key === key);
            assert.ok(
              full.every((e) => e.PROCTITLE !== undefined),
              `${owner}: PROCTITLE joined to its SYSCALL`,
            );
            assert.ok(
              full.some((e) => /^\/tmp\/d\d+$/.test(e.CWD?.cwd ?? '')),
              `${owner}: CWD joined to its SYSCALL`,
            );
            assert.equal(full[0]!.SYSCALL!.comm, owner === 'host' ? 'untagged' : 'tagged');
            if (user)
              assert.equal(
                lstatSync(join(dir, `laurel-${owner}`, 'audit.log')).uid,
                Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim()),
                'laurel dropped to its user',
              );
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
});
