// Real podman and runc containers for kernel tests: a busybox image, FIFO-released exec storms, runc bundles, cleanup.
import { spawnSync, execFileSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { kernelSkipReason } from './kernel';
import { cliPath, cliSync, repoRoot, type CliResult } from './daemon';

export const BUSYBOX = '/bin/busybox';

/** Why a container test cannot run here: no kernel access, or podman, runc or busybox-static missing. */
export function containersSkipReason(): string | undefined {
  const k = kernelSkipReason();
  if (k) return k;
  for (const t of ['/usr/bin/podman', '/usr/sbin/runc', BUSYBOX])
    if (!existsSync(t) && !existsSync(t.replace('/usr/sbin/', '/usr/bin/')))
      return `${t} missing (CI installs podman, runc, busybox-static)`;
  return undefined;
}

/** Runs a command to its end; throws with its stderr when it fails, unless `allowFail`. */
export function run(cmd: string, args: string[], opts: { allowFail?: boolean; timeout?: number } = {}): CliResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, timeout: opts.timeout ?? 60000 });
  if (!opts.allowFail && r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** runc commands that leave a process running: its stdio must not be our pipes, or spawnSync waits for it to exit. */
export function detachedRunc(args: string[]): void {
  const r = spawnSync('runc', args, { stdio: 'ignore', timeout: 30000 });
  if (r.status !== 0) throw new Error(`runc ${args.join(' ')} exited ${r.status}`);
}

/** A storm of `k` execs of /bin/echo with a marker argument, then a done file; no other exec carries the marker. */
function storm(marker: string, k: number): string {
  return `i=0; while [ $i -lt ${k} ]; do /bin/echo ${marker} >/dev/null; i=$((i+1)); done; : > /go/done-${marker}`;
}

/** Serials of the events whose EXECVE record carries the marker, once per EXECVE line (so repeats show). */
export function markedSerials(log: string, marker: string): string[] {
  const out: string[] = [];
  for (const l of log.split('\n')) {
    if (!l.startsWith('type=EXECVE ') || !l.includes(`a1="${marker}"`)) continue;
    const m = /msg=audit\(\d+\.\d+:(\d+)\)/.exec(l);
    if (m) out.push(m[1]!);
  }
  return out;
}

/** Serials that have a CONTAINER_ID record naming `contid`. */
export function containerIdSerials(log: string, contid: bigint): Set<string> {
  const re = new RegExp(`^type=CONTAINER_ID msg=audit\\(\\d+\\.\\d+:(\\d+)\\): record=1 contid=${contid}$`, 'gm');
  return new Set([...log.matchAll(re)].map((m) => m[1]!));
}

/** Polls `fn` every 100 ms until it holds; after `ms` fails naming `what` (and `detail()`, to show how far it got). */
async function until(what: string, fn: () => boolean, ms: number, detail?: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${detail ? `: ${detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Writes "go" into a FIFO once its container reads it; never blocks the test (a dead container is a timeout). */
async function release(fifo: string, ms: number): Promise<void> {
  let fd = -1;
  await until(
    `a reader on ${fifo}`,
    () => {
      try {
        fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e;
        return false;
      }
    },
    ms,
  );
  try {
    writeSync(fd, 'go\n');
  } finally {
    closeSync(fd);
  }
}

/** A row of `auditmux containers --json`. */
export type ContainerRow = {
  contid: string;
  runtime: string;
  id: string;
  name: string | null;
  source: string;
  state: string;
};

export function containerRows(conf: string): ContainerRow[] {
  return JSON.parse(cliSync(conf, 'containers', '--json').stdout || '[]') as ContainerRow[];
}

/** A test's private podman storage and hooks dir under `dir`, its image, and the /go dir its containers share. */
export interface ContainerLab {
  dir: string;
  /** Host side of every container's /go: FIFOs that release storms, and their done files. */
  go: string;
  sock: string;
  /** podman's global options: private storage, the test's hooks.d, no systemd. */
  pod: string[];
  /** `podman run` options that work on this host, with /go mounted. */
  runArgs: string[];
  image: string;
  rootfsTar: string;
  podman: (...args: string[]) => CliResult;
  /** The shell script of a storm of the lab's `k` execs marked `marker`. */
  storm: (marker: string) => string;
  /** Polls `fn` until it holds, for the lab's `waitMs` unless `ms` says otherwise. */
  until: (what: string, fn: () => boolean, ms?: number, detail?: () => string) => Promise<void>;
  /** Writes "go" into the FIFO once its container reads it, waiting the lab's `waitMs` at most. */
  release: (fifo: string) => Promise<void>;
}

/**
 * Names only: nothing is made until `prepareLab`, so a test's finally can always `removeLab`. Storms are `k` execs
 * long; waits last `waitMs` unless a step says otherwise.
 */
export function containerLab(dir: string, image: string, o: { k: number; waitMs: number }): ContainerLab {
  const go = join(dir, 'go');
  const pod = [
    '--root',
    join(dir, 'pod-root'),
    '--runroot',
    join(dir, 'pod-run'),
    '--tmpdir',
    join(dir, 'pod-tmp'),
    '--hooks-dir',
    join(dir, 'hooks.d'),
    '--cgroup-manager',
    'cgroupfs',
    '--events-backend',
    'none',
  ];
  return {
    dir,
    go,
    sock: join(dir, 'control.sock'),
    pod,
    runArgs: [
      '--runtime',
      'runc',
      '--network',
      'none',
      '--ulimit',
      'nofile=1024:1024',
      '--ulimit',
      'nproc=1024:1024',
      '-v',
      `${go}:/go`,
    ],
    image,
    rootfsTar: join(dir, 'rootfs.tar'),
    podman: (...a) => run('podman', [...pod, ...a], { timeout: 120000 }),
    storm: (marker) => storm(marker, o.k),
    until: (what, fn, ms = o.waitMs, detail) => until(what, fn, ms, detail),
    release: (fifo) => release(fifo, o.waitMs),
  };
}

/**
 * The image (busybox-static and the `applets` links, imported from a tar: no registry), /go with a FIFO per name in
 * `fifos`, the shipped hooks.d file pointed at this checkout's CLI and the lab's socket, and dir/host.rules auditing
 * every execve. Returns the hook as written, for variants of it.
 */
export function prepareLab(lab: ContainerLab, applets: string[], fifos: string[]): OciHook {
  const rootfs = join(lab.dir, 'rootfs');
  for (const d of ['bin', 'go', 'tmp', 'proc', 'dev', 'sys']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
  for (const a of applets) symlinkSync('busybox', join(rootfs, 'bin', a));
  execFileSync('tar', ['-C', rootfs, '-cf', lab.rootfsTar, '.']);
  mkdirSync(lab.go, { mode: 0o777 });
  for (const f of fifos) execFileSync('mkfifo', [join(lab.go, `fifo-${f}`)]);
  mkdirSync(join(lab.dir, 'hooks.d'));
  const hook = JSON.parse(readFileSync(join(repoRoot, 'config', 'oci-hooks.d', 'auditmux.json'), 'utf8')) as OciHook;
  hook.hook.path = cliPath;
  hook.hook.args.push('--socket', lab.sock, '--timeout', '5000');
  hook.hook.env = [`PATH=${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin`];
  writeFileSync(join(lab.dir, 'hooks.d', 'auditmux.json'), JSON.stringify(hook));
  lab.podman('import', lab.rootfsTar, lab.image);
  writeFileSync(join(lab.dir, 'host.rules'), '-a always,exit -F arch=b64 -S execve -k storm\n');
  return hook;
}

export type OciHook = { hook: { path: string; args: string[]; env: string[] } };

/** `podman run -d` of a container NAME that waits on /go/fifo-FIFO, then runs `script` and sleeps; its id. */
export function podmanHeld(lab: ContainerLab, name: string, fifo: string, script: string): string {
  return lab
    .podman(
      'run',
      '-d',
      '--name',
      name,
      ...lab.runArgs,
      lab.image,
      'sh',
      '-c',
      `read x < /go/fifo-${fifo}; ${script}; exec sleep 600`,
    )
    .stdout.trim();
}

export type RuncSpec = {
  process: { terminal: boolean; args: string[]; capabilities: Record<string, string[]> };
  mounts: unknown[];
  linux: { namespaces: Array<{ type: string }>; cgroupsPath?: string };
  hooks?: Record<string, Array<{ path?: string; args: string[]; env?: string[] }>>;
};

/**
 * A runc bundle dir/NAME: the image's rootfs and `runc spec`'s config without a terminal, running `args`, with /go
 * bind-mounted when `mountGo`; `edit` changes the config further before it is written. Returns the bundle's path.
 */
export function runcBundle(
  lab: ContainerLab,
  name: string,
  args: string[],
  o: { mountGo?: boolean; edit?: (spec: RuncSpec) => void } = {},
): string {
  const bundle = join(lab.dir, name);
  mkdirSync(bundle);
  execFileSync('tar', ['-C', bundle, '--one-top-level=rootfs', '-xf', lab.rootfsTar]);
  execFileSync('runc', ['spec', '--bundle', bundle]);
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as RuncSpec;
  spec.process.terminal = false;
  o.edit?.(spec);
  spec.process.args = args;
  if (o.mountGo) spec.mounts.push({ destination: '/go', type: 'bind', source: lab.go, options: ['rbind', 'rw'] });
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
  return bundle;
}

/** Every container goes, whatever happened: podman's private storage, then runc's state, then the lab's dir. */
export function removeLab(lab: ContainerLab, runcIds: string[]): void {
  spawnSync('podman', [...lab.pod, 'rm', '-f', '-a', '-t', '0'], { timeout: 120000 });
  spawnSync('podman', [...lab.pod, 'system', 'reset', '-f'], { timeout: 120000 });
  for (const id of runcIds) spawnSync('runc', ['delete', '--force', id], { timeout: 30000 });
  rmSync(lab.dir, { recursive: true, force: true });
}

/** A config.json hook entry running the hooks.d hook `hook` (as prepareLab wrote it) at runc's own hook stages. */
export function runcHookEntry(hook: OciHook): { path: string; args: string[]; env: string[] } {
  return { path: hook.hook.path, args: [...hook.hook.args], env: [...hook.hook.env] };
}

/** How many EXECVE lines of `log` are exactly the execve of `argv` (audit writes an argument with a space in hex). */
export function execveLines(log: string, argv: string[]): number {
  const enc = (a: string): string =>
    /^[\x21-\x7e]*$/.test(a) && !a.includes('"') ? `"${a}"` : Buffer.from(a).toString('hex').toUpperCase();
  const body = `argc=${argv.length} ${argv.map((a, i) => `a${i}=${enc(a)}`).join(' ')}`;
  return log.split('\n').filter((l) => l.startsWith('type=EXECVE ') && l.endsWith(`): ${body}`)).length;
}
