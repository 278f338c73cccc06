// A tenant's rules file is parsed again only when it changed: each sync (each `aux add`, each template daemon, each
// reload) parsed every tenant's file, ~1 s and ~170 MB of heap per 16 MiB file, with the event loop blocked.
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as loader from '../../src/rules/loader';
import { KernelSession } from '../../src/daemon/kernel-session';
import { decodeRule } from '../../src/rules/codec';
import type { DaemonConfig } from '../../src/config';
import type { Diag } from '../../src/shared';
import { EmulatedKernel } from '../helpers/emulated-kernel';

// The exe makes each rule its own (identical rules of two owners are merged into one under a group tag).
const rule = (key: string): string => `-a always,exit -F arch=b64 -S getpid -F exe=/usr/bin/${key} -F key=${key}\n`;

interface Lab {
  dir: string;
  kernel: EmulatedKernel;
  session: KernelSession;
  daemons: DaemonConfig[];
  warnings: string[];
  /** Paths the loader was asked for, in order. */
  reads: string[];
  /** The clock the session compares file times with. */
  now: bigint;
}

async function lab(files: Record<string, string>): Promise<Lab> {
  const dir = mkdtempSync(join(tmpdir(), 'amrulescache-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text, { mode: 0o644 });
  const kernel = new EmulatedKernel();
  const warnings: string[] = [];
  const diag: Diag = { info() {}, error() {}, warn: (o) => warnings.push(JSON.stringify(o)) };
  const reads: string[] = [];
  const real = loader.loadRulesPath;
  mock.method(loader, 'loadRulesPath', (p: string) => {
    reads.push(p);
    return real(p);
  });
  const l: Lab = {
    dir,
    kernel,
    session: null as unknown as KernelSession,
    daemons: [],
    warnings,
    reads,
    // A minute after the files were written: none of them is still settling (see RULES_SETTLE_NS).
    now: (BigInt(Date.now()) + 60_000n) * 1_000_000n,
  };
  l.session = new KernelSession({
    diag,
    socket: kernel.socket(),
    owners: () => ({ daemons: l.daemons, routes: [] }),
    counters: { kernelLost: 0 },
    nowNs: () => l.now,
  });
  await l.session.open(
    1 << 20,
    () => undefined,
    () => undefined,
  );
  return l;
}

const daemon = (name: string, rules: string): DaemonConfig => ({ name, rules }) as unknown as DaemonConfig;
const keys = (k: EmulatedKernel): string[] => k.rules.map((b) => decodeRule(b).keys[0]!.split('\x01')[0]!).sort();
const count = (l: Lab, name: string): number => l.reads.filter((p) => p === join(l.dir, name)).length;

describe('tenant rules across syncs', () => {
  let l: Lab | undefined;
  beforeEach(() => (l = undefined));
  afterEach(() => {
    mock.restoreAll();
    if (l) rmSync(l.dir, { recursive: true, force: true });
  });

  it('an unchanged file is parsed once; touching it or rewriting it parses it once more', async () => {
    l = await lab({ 'a.rules': rule('a1'), 'b.rules': rule('b1') });
    l.daemons = [daemon('a', join(l.dir, 'a.rules')), daemon('b', join(l.dir, 'b.rules'))];
    for (let i = 0; i < 5; i++) await l.session.syncRules();
    assert.equal(count(l, 'a.rules'), 1, 'a.rules parsed once in five syncs');
    assert.equal(count(l, 'b.rules'), 1, 'b.rules parsed once in five syncs');
    assert.deepEqual(keys(l.kernel), ['a1', 'b1']);

    // touch(1): another mtime, the same bytes.
    const later = new Date(Date.now() + 5000);
    utimesSync(join(l.dir, 'a.rules'), later, later);
    for (let i = 0; i < 3; i++) await l.session.syncRules();
    assert.equal(count(l, 'a.rules'), 2, 'a.rules parsed again once after the touch');
    assert.equal(count(l, 'b.rules'), 1);

    // Rewritten in place (the same inode): the new rule is loaded.
    writeFileSync(join(l.dir, 'b.rules'), rule('b2') + rule('b3'));
    for (let i = 0; i < 3; i++) await l.session.syncRules();
    assert.equal(count(l, 'b.rules'), 2, 'b.rules parsed again once after the rewrite');
    assert.deepEqual(keys(l.kernel), ['a1', 'b2', 'b3']);
    assert.deepEqual(l.warnings, []);
  });

  it('a rules.d directory: parsed again only when one of its *.rules files changes or comes or goes', async () => {
    l = await lab({});
    const d = join(l.dir, 'a.d');
    mkdirSync(d, { mode: 0o755 });
    writeFileSync(join(d, '10-x.rules'), rule('x1'), { mode: 0o644 });
    writeFileSync(join(d, 'README'), 'not rules\n');
    l.daemons = [daemon('a', d)];
    for (let i = 0; i < 3; i++) await l.session.syncRules();
    assert.equal(count(l, 'a.d'), 1);
    writeFileSync(join(d, 'NOTES'), 'still not rules\n');
    await l.session.syncRules();
    assert.equal(count(l, 'a.d'), 1, 'a file that is not *.rules changes nothing');
    writeFileSync(join(d, '20-y.rules'), rule('y1'), { mode: 0o644 });
    for (let i = 0; i < 3; i++) await l.session.syncRules();
    assert.equal(count(l, 'a.d'), 2);
    assert.deepEqual(keys(l.kernel), ['x1', 'y1']);
  });

  it('a refused file is parsed once and reported at each sync, its accepted rules kept', async () => {
    l = await lab({ 'a.rules': rule('a1') });
    const a = join(l.dir, 'a.rules');
    l.daemons = [daemon('a', a)];
    await l.session.syncRules();
    writeFileSync(a, '-e 0\n');
    for (let i = 0; i < 3; i++) await l.session.syncRules();
    assert.equal(count(l, 'a.rules'), 2);
    assert.equal(l.warnings.length, 3, 'one warning per sync, as before');
    assert.equal(new Set(l.warnings).size, 1, l.warnings.join('\n'));
    assert.match(l.warnings[0]!, /host-wide/);
    assert.deepEqual(keys(l.kernel), ['a1']);
  });

  it('its directory made writable by others: refused at the next sync although the file is the same', async () => {
    l = await lab({});
    const sub = join(l.dir, 'sub');
    mkdirSync(sub, { mode: 0o755 });
    writeFileSync(join(sub, 'a.rules'), rule('a1'), { mode: 0o644 });
    l.daemons = [daemon('a', join(sub, 'a.rules'))];
    await l.session.syncRules();
    chmodSync(sub, 0o777);
    await l.session.syncRules();
    assert.equal(l.reads.length, 1);
    assert.equal(l.warnings.length, 1);
    assert.match(l.warnings[0]!, /rules refused: .*world writable/);
    assert.deepEqual(keys(l.kernel), ['a1'], 'the rules accepted stay');
  });

  it('a file changed within the last two seconds is read at each sync until it has settled', async () => {
    l = await lab({ 'a.rules': rule('a1') });
    l.daemons = [daemon('a', join(l.dir, 'a.rules'))];
    l.now = statSync(join(l.dir, 'a.rules'), { bigint: true }).ctimeNs + 1_000_000n;
    for (let i = 0; i < 3; i++) await l.session.syncRules();
    assert.equal(count(l, 'a.rules'), 3, 'not kept while it may still change in the same clock tick');
    l.now += 3_000_000_000n;
    for (let i = 0; i < 3; i++) await l.session.syncRules();
    assert.equal(count(l, 'a.rules'), 4);
  });

  it('a daemon gone takes its entry along: one of the same name later reads its file again', async () => {
    l = await lab({ 'a.rules': rule('a1'), 'b.rules': rule('b1') });
    const a = daemon('a', join(l.dir, 'a.rules'));
    const b = daemon('b', join(l.dir, 'b.rules'));
    l.daemons = [a, b];
    await l.session.syncRules();
    l.daemons = [a];
    await l.session.syncRules();
    assert.deepEqual(keys(l.kernel), ['a1']);
    l.daemons = [a, b];
    await l.session.syncRules();
    assert.equal(count(l, 'b.rules'), 2);
    assert.equal(count(l, 'a.rules'), 1);
    assert.deepEqual(keys(l.kernel), ['a1', 'b1']);
  });
});
