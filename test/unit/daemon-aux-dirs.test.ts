// The directory of an auxiliary daemon with a user: made by auditmux and handed over; an existing one is never chowned.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { AuxDaemon, prepareAuxLogDir } from '../../src/daemon/aux-daemon';
import { DEFAULT_MAX_RESTARTS, DEFAULT_OUTPUT, DEFAULT_QUEUE, parseConfig, type DaemonConfig } from '../../src/config';
import { IoError } from '../../src/errors';

const isRoot = process.geteuid?.() === 0;
const NOBODY = 65534;

/** A host log directory as the host daemon makes it: root's, 0700. */
function hostDir(): string {
  const top = fs.mkdtempSync(join(tmpdir(), 'amauxdir-'));
  const d = join(top, 'log');
  fs.mkdirSync(d, { mode: 0o700 });
  return d;
}

function daemonConfig(file: string, user: string | null = 'nobody'): DaemonConfig {
  return {
    name: 'a',
    rules: null,
    log: { file, ...DEFAULT_OUTPUT, format: 'RAW' },
    queue: { ...DEFAULT_QUEUE },
    user,
    isolation: 'process',
    maxRestarts: DEFAULT_MAX_RESTARTS,
    pos: { file: 'test', line: 1 },
  };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > 750) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function auxDaemon(cfg: DaemonConfig, reports: string[]): AuxDaemon {
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  return new AuxDaemon(cfg, {
    diag: quiet as never,
    nodeName: null,
    report: (event, detail) => void reports.push(`${event} ${detail}`),
    backpressure: () => undefined,
    contidKernel: false,
  });
}

describe('auxiliary daemon directories', { skip: isRoot ? false : 'needs root (chown, setuid)' }, () => {
  it("a daemon with a user whose log is in an existing directory (the old default, the host log dir) fails; the directory stays root's", async () => {
    const host = hostDir();
    fs.writeFileSync(join(host, 'audit.log'), 'host trail\n', { mode: 0o600 });
    const reports: string[] = [];
    const a = auxDaemon(daemonConfig(join(host, 'a.log')), reports);
    a.start();
    await a.stop();
    const st = fs.statSync(host);
    assert.equal(st.uid, 0, 'the host log directory was not handed to nobody');
    assert.equal(st.mode & 0o777, 0o700);
    assert.equal(a.status().state, 'stopped');
    assert.match(reports.join('\n'), /failed .*log directory of daemon "a" .* is owned by uid 0, expected uid 65534/);
    // /var/log itself, or any directory that exists: the same.
    const above = join(host, '..');
    const b = auxDaemon(daemonConfig(join(above, 'x.log')), []);
    b.start();
    await b.stop();
    assert.equal(fs.statSync(above).uid, 0);
  });

  it("prepareAuxLogDir creates a fresh directory, 0700, owned by the user; the parent stays root's", () => {
    const host = hostDir();
    const ids = prepareAuxLogDir(daemonConfig(join(host, 'a', 'a.log')));
    assert.deepEqual(ids, { uid: NOBODY, gid: NOBODY });
    const st = fs.lstatSync(join(host, 'a'));
    assert.deepEqual([st.isDirectory(), st.uid, st.gid, st.mode & 0o7777], [true, NOBODY, NOBODY, 0o700]);
    assert.equal(fs.statSync(host).uid, 0);
    // Again (a restart): it is already the user's, accepted as is.
    assert.deepEqual(prepareAuxLogDir(daemonConfig(join(host, 'a', 'a.log'))), { uid: NOBODY, gid: NOBODY });
  });

  it("an existing directory is accepted only when it already is the user's, real and private", () => {
    const host = hostDir();
    const theirs = join(host, 'theirs');
    fs.mkdirSync(theirs, { mode: 0o700 });
    fs.chownSync(theirs, NOBODY, NOBODY);
    const viaLink = join(host, 'link');
    fs.symlinkSync(theirs, viaLink);
    assert.throws(
      () => prepareAuxLogDir(daemonConfig(join(viaLink, 'a.log'))),
      (e: unknown) => e instanceof IoError && /symbolic link/.test(e.message),
    );
    const rootOwned = join(host, 'rootowned');
    fs.mkdirSync(rootOwned, { mode: 0o700 });
    assert.throws(
      () => prepareAuxLogDir(daemonConfig(join(rootOwned, 'a.log'))),
      (e: unknown) => e instanceof IoError && /owned by uid 0/.test(e.message),
    );
    assert.equal(fs.statSync(rootOwned).uid, 0, 'not chowned');
    fs.chmodSync(theirs, 0o777);
    assert.throws(
      () => prepareAuxLogDir(daemonConfig(join(theirs, 'a.log'))),
      (e: unknown) => e instanceof IoError && /writable by everyone/.test(e.message),
    );
    fs.chmodSync(theirs, 0o700);
    assert.deepEqual(prepareAuxLogDir(daemonConfig(join(theirs, 'a.log'))), { uid: NOBODY, gid: NOBODY });
    // A parent others can write (/tmp): the new directory could be swapped before the process enters it.
    const open = join(host, 'open');
    fs.mkdirSync(open, { mode: 0o777 });
    fs.chmodSync(open, 0o1777);
    assert.throws(
      () => prepareAuxLogDir(daemonConfig(join(open, 'a', 'a.log'))),
      (e: unknown) => e instanceof IoError && /parent of log directory .*writable by everyone/.test(e.message),
    );
    assert.equal(fs.existsSync(join(open, 'a')), false);
  });

  it('a daemon with a user in its own directory runs as that user and writes its log there', async () => {
    const host = hostDir();
    const reports: string[] = [];
    const a = auxDaemon(daemonConfig(join(host, 'a', 'a.log')), reports);
    a.start();
    try {
      await until(() => a.status().state === 'running', `the daemon to run (${reports.join('; ')})`);
      a.enqueue([
        {
          type: 1300,
          payload: Buffer.from('audit(1700000000.001:7): arch=c000003e syscall=110 success=yes exit=1 key="k"'),
        },
      ]);
      a.pump();
      await until(
        () =>
          (a.status() as { queued: number; inflight?: number }).queued === 0 &&
          fs.existsSync(join(host, 'a', 'a.log')) &&
          fs.statSync(join(host, 'a', 'a.log')).size > 0,
        'the event in the log',
      );
    } finally {
      await a.stop();
    }
    assert.match(fs.readFileSync(join(host, 'a', 'a.log'), 'latin1'), /type=SYSCALL msg=audit\(1700000000\.001:7\)/);
    assert.equal(fs.statSync(join(host, 'a', 'a.log')).uid, NOBODY, "written by the daemon's user");
    assert.equal(fs.statSync(host).uid, 0);
    assert.equal(fs.statSync(join(host, 'a')).uid, NOBODY);
  });

  it('its outputs spool by default in its own directory, created as its user below the root-only host log directory', async () => {
    const host = hostDir();
    const c = parseConfig(
      [
        'host:',
        `  log: { file: ${join(host, 'audit.log')} }`,
        'daemons:',
        '  - name: a',
        '    user: nobody',
        '    log: { format: RAW }',
        '    outputs: [ { type: remote, name: r, host: 127.0.0.1, port: 1 } ]',
        '',
      ].join('\n'),
      join(host, '..', 'auditmux.yaml'),
    );
    const cfg = c.daemons[0]!;
    assert.equal(cfg.outputs?.[0]?.spool.dir, join(host, 'a', 'spool', 'r'));
    const reports: string[] = [];
    const a = auxDaemon(cfg, reports);
    a.start();
    try {
      await until(
        () => a.status().state === 'running' || reports.some((r) => r.startsWith('crash') || r.startsWith('failed')),
        `the daemon to run (${reports.join('; ')})`,
      );
      assert.equal(a.status().state, 'running', reports.join('; '));
      a.enqueue([
        {
          type: 1300,
          payload: Buffer.from('audit(1700000000.001:8): arch=c000003e syscall=110 success=yes exit=1 key="k"'),
        },
      ]);
      a.pump();
      await until(() => (a.status() as { queued: number }).queued === 0, 'the event taken');
    } finally {
      await a.stop();
    }
    assert.equal(fs.statSync(host).mode & 0o777, 0o700);
    assert.equal(fs.statSync(join(host, 'a', 'spool', 'r')).uid, NOBODY, "spool made by the daemon's user");
    assert.ok(fs.readdirSync(join(host, 'a', 'spool', 'r')).length > 0);
  });
});
