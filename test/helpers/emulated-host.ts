// The host daemon in-process on an emulated mainline kernel, with one tagged and one untagged process: contract tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { EmulatedKernel } from './emulated-kernel';
import { emulatedHostOptions } from './emulated-contid-source';
import { HostDaemon } from '../../src/daemon/host';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** How many times each event serial has a SYSCALL line with `key` in a log's text. */
export function syscallSerialCounts(text: string, key: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const l of text.split('\n')) {
    if (!l.includes('type=SYSCALL ') || !l.includes(`key="${key}"`)) continue;
    const s = /audit\(\d+\.\d+:(\d+)\)/.exec(l)![1]!;
    out.set(s, (out.get(s) ?? 0) + 1);
  }
  return out;
}

/**
 * auditmux.yaml lines: host log and rules in {dir}, keep unrouted, daemon `a` (its flow-mapping body given) for contid
 * 100.
 */
export function oneAuxYaml(a: string, hostOutputs?: string): string[] {
  return [
    'host:',
    '  rules: {dir}/host.rules',
    '  log: { file: {dir}/audit.log, format: RAW }',
    '  keep: unrouted',
    ...(hostOutputs ? [`  outputs: ${hostOutputs}`] : []),
    'daemons:',
    `  - { name: a, rules: {dir}/a.rules, ${a} }`,
    'routes:',
    '  - { contid: 100, daemons: [a] }',
  ];
}

/** `yaml` (auditmux.yaml lines, `host:` first) with host.node_name set to `name` (format user), right under `host:`. */
export function withNodeName(name: string, yaml: string[]): string[] {
  return [yaml[0]!, `  node_name: { format: user, name: ${name} }`, ...yaml.slice(1)];
}

export interface EmulatedHost {
  dir: string;
  kernel: EmulatedKernel;
  daemon: HostDaemon;
  /** A real process (the mainline tracker checks /proc) tagged with contid 100 once started. */
  tagged: ChildProcess;
  /** An untagged emulated pid running the same executable. */
  untaggedPid: number;
  /** Stops the daemon and the tagged process. */
  stop(): Promise<void>;
}

/**
 * Writes host.rules (key host-k) and a.rules (key tree-a) for getppid of `exe`, and auditmux.yaml from `yaml` (lines
 * that may use {dir}); starts the daemon, spawns the processes and tags the real one with contid 100.
 */
export async function startEmulatedHost(o: {
  prefix: string;
  exe: string;
  yaml: string[];
  untaggedPid: number;
  prepare?: (dir: string) => void;
  /** Listen on the control socket that `yaml` names (host.control_socket). */
  control?: boolean;
}): Promise<EmulatedHost> {
  const { exe, yaml, untaggedPid } = o;
  const dir = mkdtempSync(join(tmpdir(), o.prefix));
  o.prepare?.(dir);
  const rule = (key: string): string => `-a always,exit -F arch=b64 -S getppid -F exe=${exe} -k ${key}\n`;
  writeFileSync(join(dir, 'host.rules'), rule('host-k'));
  writeFileSync(join(dir, 'a.rules'), rule('tree-a'));
  writeFileSync(join(dir, 'auditmux.yaml'), yaml.map((l) => l.replaceAll('{dir}', dir)).join('\n') + '\n');
  const kernel = new EmulatedKernel({ ackOrder: 'random' });
  const daemon = new HostDaemon({
    configPath: join(dir, 'auditmux.yaml'),
    diag: pino({ level: 'silent' }),
    ...emulatedHostOptions(kernel),
    noControl: !o.control,
  });
  const tagged = spawn('sleep', ['30'], { stdio: 'ignore' });
  const stop = async (): Promise<void> => {
    await daemon.stop();
    tagged.kill();
  };
  try {
    await daemon.start();
    kernel.spawn(1, 0);
    kernel.spawn(tagged.pid!, 1, { exe });
    kernel.spawn(untaggedPid, 1, { exe });
    daemon.contid.set(tagged.pid!, '100', false, { pid: process.pid, uid: 0, gid: 0 });
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
  return { dir, kernel, daemon, tagged, untaggedPid, stop };
}

/**
 * `n` getppid events from the untagged process and `n` from the tagged one, in turns; every `yieldEvery` turns (from
 * the first) the event loop runs, so the daemon reads while the test writes.
 */
export async function emitUntaggedAndTagged(h: EmulatedHost, n: number, yieldEvery: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    h.kernel.emitEvent(h.untaggedPid, 'getppid', 0);
    h.kernel.emitEvent(h.tagged.pid!, 'getppid', 0);
    if (i % yieldEvery === 0) await new Promise((r) => setImmediate(r));
  }
}
