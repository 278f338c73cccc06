// A daemon killed (kill -9, OOM, a crash) never restores the kernel; its successor found the kernel as the killed one
// left it, so at its own clean stop it "restored" the killed daemon's settings (enabled=1 where it was 0) and, its adds
// answered EEXIST, took every rule already loaded for someone else's: the host's stayed loaded for good, and a tenant
// left out of the new configuration kept its rules (and a later tenant of the same name got their events). The
// session now keeps what it found and the hashes of what it loaded in KERNEL_STATE_FILE, which its successor takes
// back; a file it cannot trust is reported and ignored.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { KernelSession } from '../../src/daemon/kernel-session';
import { MsgType } from '../../src/kernel/constants';
import { KERNEL_STATE_FILE, KERNEL_STATE_MAX_BYTES } from '../../src/daemon/kernel-state';
import { HostDaemon } from '../../src/daemon/host';
import { decodeRule, encodeRule, parseRules, type Rule } from '../../src/rules';
import { DEFAULT_KERNEL, defaultConfig, type DaemonConfig, type HostConfig } from '../../src/config';
import type { Diag } from '../../src/shared';
import type { AuditStatus } from '../../src/kernel/wire';
import { EmulatedKernel, type EmulatedAuditSocket } from '../helpers/emulated-kernel';
import { emulatedHostOptions } from '../helpers/emulated-contid-source';

const isRoot = process.getuid?.() === 0;
const rule = (key: string): string => `-a always,exit -F arch=b64 -S getpid -F exe=/usr/bin/${key} -F key=${key}\n`;
const keys = (k: EmulatedKernel): string[] => k.rules.map((b) => decodeRule(b).keys[0]!).sort();

/** The settings a crashed daemon's successor must put back: not the emulated kernel's defaults, not the config's. */
const FOUND = { enabled: 0, failure: 0, backlogLimit: 320, rateLimit: 5, backlogWaitTime: 2500 };
const settings = (s: AuditStatus): typeof FOUND => ({
  enabled: s.enabled,
  failure: s.failure,
  backlogLimit: s.backlogLimit,
  rateLimit: s.rateLimit,
  backlogWaitTime: s.backlogWaitTime,
});

interface Lab {
  dir: string;
  stateDir: string;
  stateFile: string;
  kernel: EmulatedKernel;
  host: HostConfig;
  tenant: DaemonConfig;
}

function lab(): Lab {
  const dir = mkdtempSync(join(tmpdir(), 'amtakeover-'));
  writeFileSync(join(dir, 'host.rules'), rule('host-k'), { mode: 0o644 });
  writeFileSync(join(dir, 'a.rules'), rule('tree-a'), { mode: 0o644 });
  const stateDir = join(dir, 'run');
  const kernel = new EmulatedKernel({ ackOrder: 'random' });
  Object.assign(kernel.status, FOUND);
  const host: HostConfig = {
    ...defaultConfig().host,
    rules: join(dir, 'host.rules'),
    kernel: { ...DEFAULT_KERNEL, enabled: 1, failure: 2, backlogLimit: 9000, rateLimit: 77, backlogWaitTime: 1234 },
  };
  const tenant = { name: 'a', rules: join(dir, 'a.rules') } as unknown as DaemonConfig;
  return { dir, stateDir, stateFile: join(stateDir, KERNEL_STATE_FILE), kernel, host, tenant };
}

interface Started {
  session: KernelSession;
  socket: EmulatedAuditSocket;
  warnings: string[];
}

/** A daemon's session on the lab's kernel: opened, registered, host settings and rules applied (its first sync). */
async function start(
  l: Lab,
  daemons: DaemonConfig[],
  stateDir: string | null = l.stateDir,
  onSend?: (msg: Buffer) => void,
): Promise<Started> {
  const warnings: string[] = [];
  const diag: Diag = { info() {}, error() {}, warn: (o, m) => warnings.push(`${m} ${JSON.stringify(o)}`) };
  const socket = l.kernel.socket();
  if (onSend) {
    const send = socket.send.bind(socket);
    socket.send = (msg: Buffer): void => {
      send(msg);
      onSend(msg);
    };
  }
  const session = new KernelSession({
    diag,
    socket,
    owners: () => ({ daemons, routes: [] }),
    counters: { kernelLost: 0 },
    stateDir,
  });
  const status = await session.open(
    1 << 20,
    () => undefined,
    () => undefined,
  );
  await session.register(status);
  await session.applyHostSettings(l.host, status);
  return { session, socket, warnings };
}

/** The process is gone without a stop: its socket closes, nothing is restored. */
function crash(s: Started): void {
  s.socket.close();
}

/** Daemon A with the host's and tenant a's rules, killed: the kernel holds both rule sets and A's settings. */
async function crashedA(l: Lab): Promise<void> {
  const a = await start(l, [l.tenant]);
  assert.deepEqual(keys(l.kernel), ['host-k', 'tree-a']);
  assert.equal(l.kernel.status.enabled, 1);
  assert.deepEqual(a.warnings, []);
  crash(a);
}

describe('kernel session after a crash', () => {
  let l: Lab | undefined;
  afterEach(() => {
    if (l) rmSync(l.dir, { recursive: true, force: true });
    l = undefined;
  });

  it("the successor deletes the crashed daemon's rules it no longer wants, then all of them, and restores what was found", async () => {
    l = lab();
    await crashedA(l);
    // B's configuration no longer has tenant a.
    const b = await start(l, []);
    assert.deepEqual(keys(l.kernel), ['host-k'], "B's first sync deleted tenant a's rules");
    assert.ok(
      b.warnings.some((w) => /did not stop cleanly/.test(w)),
      b.warnings.join('\n'),
    );
    await b.session.close(() => 0);
    assert.deepEqual(keys(l.kernel), [], 'no rule of either daemon left');
    assert.deepEqual(settings(l.kernel.status), FOUND, 'the settings A found, not those A applied');
    assert.equal(l.kernel.status.pid, 0);
    assert.equal(existsSync(l.stateFile), false, 'a clean stop leaves no state file');
  });

  it('the file: 0600, the settings found and a hash per rule (never the rules themselves)', async () => {
    l = lab();
    const a = await start(l, [l.tenant]);
    assert.equal(statSync(l.stateFile).mode & 0o777, 0o600);
    const text = readFileSync(l.stateFile, 'utf8');
    assert.doesNotMatch(text, /tree-a|host-k/);
    const d = JSON.parse(text);
    assert.deepEqual(d.found, FOUND);
    assert.equal(d.rules.length, 2);
    assert.equal(d.pid, process.pid);
    await a.session.close(() => 0);
    assert.equal(existsSync(l.stateFile), false);
  });

  it('killed right after adding a rule, before the sync ended: the successor still knows the rule as its own', async () => {
    l = lab();
    const file = l.stateFile;
    // The file as it is on disk at the moment the kernel has taken tenant a's rule: what a kill then leaves.
    let atAdd: Buffer | null = null;
    const a = await start(l, [l.tenant], l.stateDir, (msg) => {
      if (msg.readUInt16LE(4) === MsgType.ADD_RULE && msg.includes('tree-a')) atAdd = readFileSync(file);
    });
    assert.ok(atAdd, 'the tenant rule was added');
    crash(a);
    writeFileSync(file, atAdd);
    const b = await start(l, []);
    assert.deepEqual(keys(l.kernel), ['host-k']);
    await b.session.close(() => 0);
    assert.deepEqual(keys(l.kernel), []);
  });

  it('two crashes in a row: the third daemon still restores what the first one found', async () => {
    l = lab();
    await crashedA(l);
    crash(await start(l, [l.tenant]));
    const c = await start(l, [l.tenant]);
    assert.deepEqual(keys(l.kernel), ['host-k', 'tree-a']);
    await c.session.close(() => 0);
    assert.deepEqual(keys(l.kernel), []);
    assert.deepEqual(settings(l.kernel.status), FOUND);
  });

  it('rules the file does not name stay where they are (loaded by someone else)', async () => {
    l = lab();
    await crashedA(l);
    // An administrator's rule, loaded while no daemon ran.
    const admin = parseRules(rule('admin-k'), 'admin')[0]!;
    assert.equal(admin.kind, 'add');
    l.kernel.rules.push(encodeRule((admin as { rule: Rule }).rule));
    const b = await start(l, []);
    await b.session.close(() => 0);
    assert.deepEqual(keys(l.kernel), ['admin-k']);
  });

  const refusals: Array<{ name: string; root?: boolean; spoil: (l: Lab) => void; why: RegExp }> = [
    { name: 'not JSON', spoil: (l) => writeFileSync(l.stateFile, '{"version":1,', { mode: 0o600 }), why: /not JSON/ },
    {
      name: 'over the size limit',
      spoil: (l) => writeFileSync(l.stateFile, readFileSync(l.stateFile, 'utf8').padEnd(KERNEL_STATE_MAX_BYTES + 1)),
      why: /limit/,
    },
    {
      name: 'a symlink to a valid state file',
      spoil: (l) => {
        renameSync(l.stateFile, join(l.dir, 'elsewhere.state'));
        symlinkSync(join(l.dir, 'elsewhere.state'), l.stateFile);
      },
      why: /symlink/,
    },
    {
      name: 'a second hard link',
      spoil: (l) => linkSync(l.stateFile, join(l.stateDir, 'other')),
      why: /hard links/,
    },
    {
      name: 'a FIFO',
      spoil: (l) => {
        rmSync(l.stateFile);
        execFileSync('mkfifo', ['-m', '600', l.stateFile]);
      },
      why: /not a regular file/,
    },
    {
      name: 'owned by another user',
      root: true,
      spoil: (l) => chownSync(l.stateFile, 65534, 65534),
      why: /owned by uid 65534/,
    },
    {
      name: 'from another boot',
      spoil: (l) => {
        const d = JSON.parse(readFileSync(l.stateFile, 'utf8'));
        writeFileSync(l.stateFile, JSON.stringify({ ...d, boot: 'another' }));
      },
      why: /another boot/,
    },
    {
      name: 'a hash that is not one',
      spoil: (l) => {
        const d = JSON.parse(readFileSync(l.stateFile, 'utf8'));
        writeFileSync(l.stateFile, JSON.stringify({ ...d, rules: [...d.rules, 'host-k'] }));
      },
      why: /SHA-256/,
    },
    {
      name: 'a setting out of range',
      spoil: (l) => {
        const d = JSON.parse(readFileSync(l.stateFile, 'utf8'));
        writeFileSync(l.stateFile, JSON.stringify({ ...d, found: { ...d.found, enabled: 7 } }));
      },
      why: /found\.enabled/,
    },
  ];
  for (const r of refusals)
    it(
      `a state file ${r.name} is refused with a warning; the successor takes nothing back`,
      {
        skip: r.root && !isRoot ? 'needs root' : false,
      },
      async () => {
        l = lab();
        await crashedA(l);
        const elsewhere = join(l.dir, 'elsewhere.state');
        r.spoil(l);
        const before = existsSync(elsewhere) ? readFileSync(elsewhere, 'utf8') : null;
        const b = await start(l, []);
        const refused = b.warnings.filter((w) => /kernel state file refused/.test(w));
        assert.equal(refused.length, 1, b.warnings.join('\n'));
        assert.match(refused[0]!, r.why);
        // As without a file: the kernel's rules are not B's (EEXIST), the settings found are A's applied ones.
        assert.deepEqual(keys(l.kernel), ['host-k', 'tree-a']);
        assert.ok(lstatSync(l.stateFile).isFile(), "B's own state replaced the refused entry");
        if (before !== null) assert.equal(readFileSync(elsewhere, 'utf8'), before, 'nothing written through the link');
        await b.session.close(() => 0);
        assert.deepEqual(keys(l.kernel), ['host-k', 'tree-a']);
        assert.equal(l.kernel.status.enabled, 1);
      },
    );

  it('an unsafe state directory: a warning, no file, and the daemon runs as without one', async () => {
    l = lab();
    mkdirSync(l.stateDir, { mode: 0o700 });
    chmodSync(l.stateDir, 0o777);
    const a = await start(l, [l.tenant]);
    assert.equal(a.warnings.length, 1, a.warnings.join('\n'));
    assert.match(a.warnings[0]!, /kernel state directory unusable: .*writable by everyone/);
    assert.equal(existsSync(l.stateFile), false);
    await a.session.close(() => 0);
    assert.deepEqual(keys(l.kernel), []);
    assert.deepEqual(settings(l.kernel.status), FOUND);
  });

  it('the host daemon keeps the file beside its control socket (the review reproduction)', async () => {
    l = lab();
    const { dir } = l;
    const conf = join(dir, 'auditmux.yaml');
    const yaml = (tenant: boolean): string[] => [
      'host:',
      `  control_socket: ${dir}/run/control.sock`,
      `  rules: ${dir}/host.rules`,
      `  log: { file: ${dir}/audit.log, format: RAW }`,
      ...(tenant
        ? [
            'daemons:',
            `  - { name: a, rules: ${dir}/a.rules, isolation: inline }`,
            'routes:',
            '  - { contid: 100, daemons: [a] }',
          ]
        : []),
    ];
    writeFileSync(conf, yaml(true).join('\n') + '\n');
    const kernel = l.kernel;
    const mk = (): HostDaemon =>
      new HostDaemon({ configPath: conf, diag: pino({ level: 'silent' }), ...emulatedHostOptions(kernel) });
    const a = mk();
    await a.start();
    const b = mk();
    try {
      assert.ok(existsSync(l.stateFile));
      assert.deepEqual(keys(kernel), ['host-k', 'tree-a']);
      kernel.detach(kernel.daemonSocket!); // A is killed
      await b.start();
      writeFileSync(conf, yaml(false).join('\n') + '\n');
      assert.deepEqual(await b.reload(), { ok: true });
      assert.deepEqual(keys(kernel), ['host-k'], "the reload dropped the gone tenant's rules");
      await b.stop();
      assert.deepEqual(keys(kernel), []);
      assert.deepEqual(settings(kernel.status), FOUND);
      assert.equal(existsSync(l.stateFile), false);
    } finally {
      // A's listeners and timers (its process would be gone); its restore now finds nothing of its own.
      await b.stop();
      await a.stop();
    }
  });
});
