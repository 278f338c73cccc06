// Records the host daemon writes about itself carry tenants' text (file names, rule lines) encoded, never as fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PermissionError } from '../../src/errors';
import { tokenize } from '../../src/search/logline';
import { decodeUntrusted } from '../../src/records/encode';
import { oneAuxYaml, startEmulatedHost } from '../helpers/emulated-host';
import { auxAddBody, type AuxAddPlan } from '../../src/daemon/aux-add';

/** The fields of the host log's lines that contain `op=NAME`, as auparse splits them. */
function recordsWith(log: string, op: string): Array<Array<[string, string | null]>> {
  return log
    .split('\n')
    .filter((l) => l.includes(` op=${op} `))
    .map((l) => tokenize(l.slice(l.indexOf('): ') + 3)));
}

test("refusal and aux-add records: a tenant's file names with quotes, spaces and field text stay one encoded value", async () => {
  const h = await startEmulatedHost({
    prefix: 'amrec-',
    exe: '/usr/bin/true',
    yaml: oneAuxYaml('isolation: inline'),
    untaggedPid: 999001,
  });
  const { dir, daemon } = h;
  // A directory name a tenant can choose: it closes the quote and adds fields of its own, and a U+011D that a
  // latin1 write would turn into the ENRICHED separator.
  const evil = join(dir, 'x" res=success op=aux-add daemon=host \u011dAUID="root');
  mkdirSync(evil);
  const bad = join(evil, 'c.rules');
  writeFileSync(bad, '-a always,exit -F arch=b64 -S getppid -k c\n-e 2\n');
  const good = join(evil, 'd.rules');
  writeFileSync(good, '-a always,exit -F arch=b64 -S getpid -k d\n');
  const log = join(evil, 'd b.log');
  try {
    await assert.rejects(
      daemon.auxAdd({ name: 'c', rules: bad, contid: ['300'] }, { pid: 4242, uid: 0, gid: 0 }),
      (e: unknown) => e instanceof PermissionError,
    );
    await daemon.auxAdd({ name: 'd', rules: good, contid: ['400'], log });
  } finally {
    await h.stop();
  }
  try {
    const hLog = readFileSync(join(dir, 'audit.log'), 'latin1');
    assert.ok(!hLog.includes('\x1d'), 'no separator in a RAW log');
    const refused = recordsWith(hLog, 'refused');
    assert.equal(refused.length, 1);
    const f = refused[0]!;
    assert.deepEqual(
      f.map(([k]) => k),
      ['op', 'reason', 'daemon', 'pid', 'uid', 'res'],
      JSON.stringify(f),
    );
    assert.equal(f.find(([k]) => k === 'res')![1], 'failed');
    const reason = decodeUntrusted(f.find(([k]) => k === 'reason')![1]!)!.toString('utf8');
    assert.ok(reason.startsWith(`${bad}:2: `), reason);
    const added = recordsWith(hLog, 'aux-add');
    assert.equal(added.length, 1);
    const a = added[0]!;
    assert.deepEqual(
      a.map(([k]) => k),
      ['op', 'daemon', 'contid', 'rules', 'log', 'res'],
      JSON.stringify(a),
    );
    assert.equal(decodeUntrusted(a.find(([k]) => k === 'rules')![1]!)!.toString('utf8'), good);
    assert.equal(decodeUntrusted(a.find(([k]) => k === 'log')![1]!)!.toString('utf8'), log);
    assert.equal(a.find(([k]) => k === 'contid')![1], '"400"');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the aux-add record keeps its outcome: each value is cut, whatever the selectors and paths', () => {
  // 2000 selectors and two 4000-byte paths: old, the body passed the line limit and lost `log=` and `res=success`.
  const contid = Array.from({ length: 2000 }, (_, i) => `${1000 + i}-${1999 + i}`);
  const long = '/var/log/auditmux/' + 'p'.repeat(4000);
  const plan = { daemon: { name: 'big', rules: `${long}.rules`, log: { file: `${long}.log` } } } as AuxAddPlan;
  const body = auxAddBody(plan, contid);
  const f = tokenize(body);
  assert.deepEqual(
    f.map(([k]) => k),
    ['op', 'daemon', 'contid', 'rules', 'log', 'res'],
  );
  assert.equal(f[5]![1], 'success');
  // Within what the formatter keeps of a line (auditd's MAX_AUDIT_MESSAGE_LENGTH, less the header).
  assert.ok(body.length < 8192, `${body.length} bytes`);
  const log = decodeUntrusted(f[4]![1]!)!.toString('utf8');
  assert.ok(log.endsWith('...') && Buffer.byteLength(log) <= 1024, log.slice(-20));
});
