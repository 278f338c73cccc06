// Unit tests of the rules.d loader (augenrules order) and the applier against an in-memory kernel.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KernelError, RuleError } from '../../src/errors';
import {
  applyRules,
  decodeRule,
  formatRules,
  loadRulesPath,
  naturalCompare,
  parseRules,
  type RuleKernel,
} from '../../src/rules';

/** Holds rules as the kernel does: exact-bytes duplicates are EEXIST, deletes need an exact match. */
class FakeKernel implements RuleKernel {
  rules: Buffer[] = [];
  status: Record<string, number> = {};
  calls: string[] = [];
  features: Array<[number, boolean, boolean]> = [];
  refuse?: (rule: Buffer) => KernelError | undefined;
  async addRule(rule: Buffer): Promise<void> {
    this.calls.push('add');
    const err = this.refuse?.(rule);
    if (err) throw err;
    if (this.rules.some((r) => r.equals(rule))) throw new KernelError('EEXIST', 17, 'AUDIT_ADD_RULE');
    // The kernel never echoes AUDIT_FILTER_PREPEND.
    const stored = Buffer.from(rule);
    const flags = stored.readUInt32LE(0);
    stored.writeUInt32LE(flags & ~0x10, 0);
    if (flags & 0x10) this.rules.unshift(stored);
    else this.rules.push(stored);
  }
  async deleteRule(rule: Buffer): Promise<void> {
    this.calls.push('del');
    const i = this.rules.findIndex((r) => r.equals(rule));
    if (i < 0) throw new KernelError('ENOENT', 2, 'AUDIT_DEL_RULE');
    this.rules.splice(i, 1);
  }
  async listRules(): Promise<Buffer[]> {
    return this.rules.map((r) => Buffer.from(r));
  }
  async setStatus(s: Record<string, number | undefined>): Promise<void> {
    for (const [k, v] of Object.entries(s))
      if (v !== undefined) {
        this.calls.push(k);
        this.status[k] = v;
      }
  }
  async resetLost(): Promise<number> {
    this.calls.push('resetLost');
    return 42;
  }
  async setFeature(feature: number, value: boolean, lock: boolean): Promise<void> {
    this.features.push([feature, value, lock]);
  }
  listing(): string[] {
    return formatRules(this.rules.map((b) => decodeRule(b)));
  }
}

describe('rules: applier', () => {
  it('adds rules, applies settings, and puts -e last', async () => {
    const k = new FakeKernel();
    const cmds = parseRules(
      '-e 1\n-b 100\n-w /etc/passwd -p wa -k identity\n-a always,exit -F arch=b64 -S open -F pid=1\n',
      'f',
    );
    const s = await applyRules(k, cmds);
    assert.deepEqual([s.added, s.deleted, s.errors.length, s.failed], [2, 0, 0, false]);
    assert.deepEqual(k.calls, ['backlogLimit', 'add', 'add', 'enabled']);
    assert.deepEqual(k.listing(), ['-w /etc/passwd -p wa -k identity', '-a always,exit -F arch=b64 -S open -F pid=1']);
  });
  it('stops at the first error without -i, with the line position', async () => {
    const k = new FakeKernel();
    const cmds = parseRules('-w /etc/passwd\n-w /etc/passwd\n-w /etc/group\n-e 1\n', 'r.rules');
    const s = await applyRules(k, cmds);
    assert.equal(s.added, 1);
    assert.equal(s.stopped, true);
    assert.equal(s.failed, true);
    assert.equal(s.errors.length, 1);
    assert.ok(s.errors[0] instanceof RuleError);
    assert.equal(s.errors[0]!.message, 'r.rules:2: Error sending add rule data request (Rule exists)');
    assert.equal(k.status.enabled, undefined, '-e is not reached');
  });
  it('goes on after errors with -i (success) and -c (failure)', async () => {
    for (const [flag, failed] of [
      ['-i', false],
      ['-c', true],
    ] as const) {
      const k = new FakeKernel();
      const s = await applyRules(
        k,
        parseRules(`${flag}\n-w /etc/passwd\n-w /etc/passwd\n-a bogus\n-w /etc/group\n`, 'f'),
      );
      assert.equal(s.added, 2);
      assert.deepEqual(
        s.errors.map((e) => e.pos?.line),
        [3, 4],
      );
      assert.equal(s.failed, failed);
      assert.equal(s.stopped, false);
    }
    const k = new FakeKernel();
    const s = await applyRules(k, parseRules('-w /etc/passwd\n-w /etc/passwd\n-w /etc/group\n', 'f'), {
      ignoreErrors: true,
    });
    assert.equal(s.added, 2);
  });
  it('-D deletes everything, -D -k only rules whose key contains it', async () => {
    const k = new FakeKernel();
    await applyRules(
      k,
      parseRules(
        '-w /etc/passwd -k ident\n-w /etc/group -k identity\n-w /etc/hosts -k net\n-a always,task -F uid=5\n',
        'f',
      ),
    );
    let s = await applyRules(k, parseRules('-D -k ident\n', 'f'));
    assert.equal(s.deleted, 2);
    assert.deepEqual(k.listing(), ['-w /etc/hosts -p rwxa -k net', '-a always,task -F uid=5']);
    s = await applyRules(k, parseRules('-D\n', 'f'));
    assert.equal(s.deleted, 2);
    assert.deepEqual(k.listing(), ['No rules']);
  });
  it('deletes single rules and reports a missing one', async () => {
    const k = new FakeKernel();
    await applyRules(k, parseRules('-w /etc/passwd -p wa\n', 'f'));
    let s = await applyRules(k, parseRules('-W /etc/passwd -p wa\n', 'f'));
    assert.equal(s.deleted, 1);
    s = await applyRules(k, parseRules('-W /etc/passwd -p wa\n', 'f'));
    assert.equal(s.errors[0]!.reason, 'Error sending delete rule request (No rule matches)');
  });
  it('prepends -A rules', async () => {
    const k = new FakeKernel();
    await applyRules(k, parseRules('-a always,exit -F pid=1\n-A never,exit -F pid=2\n', 'f'));
    assert.deepEqual(k.listing(), ['-a never,exit -S all -F pid=2', '-a always,exit -S all -F pid=1']);
  });
  it('retries a refused AUDIT_DIR watch as a path watch, like auditctl on old kernels', async () => {
    const k = new FakeKernel();
    k.refuse = (b) => (b.readUInt32LE(268) === 107 ? new KernelError('EINVAL', 22, 'AUDIT_ADD_RULE') : undefined);
    const s = await applyRules(k, parseRules('-w /etc/ -p wa\n', 'f'));
    assert.equal(s.added, 1);
    assert.equal(k.rules[0]!.readUInt32LE(268), 105);
  });
  it('runs resetLost and loginuid-immutable (locked), refuses host-wide commands when not hostWide', async () => {
    const k = new FakeKernel();
    const s = await applyRules(
      k,
      parseRules('--reset-lost\n--loginuid-immutable\n-r 5\n-f 2\n--backlog_wait_time 100\n', 'f'),
    );
    assert.equal(s.lost, 42);
    assert.deepEqual(k.features, [[1, true, true]]);
    assert.deepEqual(k.status, { rateLimit: 5, failure: 2, backlogWaitTime: 100 });
    const k2 = new FakeKernel();
    const s2 = await applyRules(k2, parseRules('-i\n-b 5\n-D\n-w /etc/passwd\n', 'f'), { hostWide: false });
    assert.deepEqual(
      s2.errors.map((e) => [e.code, e.pos?.line]),
      [
        ['E_RULE_HOSTWIDE', 2],
        ['E_RULE_HOSTWIDE', 3],
      ],
    );
    assert.equal(s2.added, 1);
    assert.deepEqual(k2.status, {});
  });
  it('turns kernel refusals of settings into RuleErrors and rethrows other failures', async () => {
    const k = new FakeKernel();
    k.setStatus = async () => {
      throw new KernelError('EPERM', 1, 'AUDIT_SET');
    };
    const s = await applyRules(k, parseRules('-b 5\n', 'f'));
    assert.match(s.errors[0]!.message, /^f:1: Error sending backlog limit request \(Operation not permitted/);
    const k2 = new FakeKernel();
    k2.addRule = async () => {
      throw new Error('socket closed');
    };
    await assert.rejects(applyRules(k2, parseRules('-w /etc/passwd\n', 'f')), /socket closed/);
  });
});

describe('rules: rules.d loader', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'am-rulesd-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('sorts names like ls -v', () => {
    assert.deepEqual(['10-b.rules', '9-a.rules', '100-c.rules', '10-a.rules'].sort(naturalCompare), [
      '9-a.rules',
      '10-a.rules',
      '10-b.rules',
      '100-c.rules',
    ]);
  });
  it('merges like augenrules: -D/-b/-f/--backlog_wait_time first (last wins), -e last, only *.rules', () => {
    writeFileSync(join(dir, '10-base.rules'), '-D\n-b 8192\n-f 1\n--backlog_wait_time 60000\n-w /etc/passwd -k a\n');
    writeFileSync(join(dir, '2-first.rules'), '-e 1\n-b 100\n-w /etc/group -k b\n');
    writeFileSync(join(dir, '99-finalize.rules'), '-e 2\n-D -k zz\n');
    writeFileSync(join(dir, 'README'), '-b bogus\n');
    const cmds = loadRulesPath(dir);
    assert.deepEqual(
      cmds.map((c) => [c.kind, c.pos.file.split('/').pop(), c.pos.line]),
      [
        ['deleteAll', '10-base.rules', 1],
        ['backlogLimit', '10-base.rules', 2],
        ['failure', '10-base.rules', 3],
        ['backlogWaitTime', '10-base.rules', 4],
        ['add', '2-first.rules', 3],
        ['add', '10-base.rules', 5],
        ['deleteAll', '99-finalize.rules', 2],
        ['enabled', '99-finalize.rules', 1],
      ],
    );
  });
  it('reads a single file in order and reports errors with the file path', () => {
    const f = join(dir, 'one.rules');
    writeFileSync(f, '-e 1\n-w /etc/passwd\n-a nope\n');
    assert.throws(
      () => loadRulesPath(f),
      (e: unknown) => e instanceof RuleError && e.message === `${f}:3: Append rule - bad keyword nope`,
    );
    writeFileSync(f, '-e 1\n-w /etc/passwd\n');
    assert.deepEqual(
      loadRulesPath(f).map((c) => c.kind),
      ['enabled', 'add'],
    );
    assert.throws(() => loadRulesPath(join(dir, 'missing.rules')), /cannot read rules/);
  });
});
