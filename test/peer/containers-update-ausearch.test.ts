// Real ausearch reads the records auditmux writes about containers after their birth: op=container-update (metadata
// learnt late) and op=container-hook-failure (a hook that failed open), hostile values included.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ContainerRegistry } from '../../src/containers/registry';
import { containerRecordBody, hookFailureRecordBody } from '../../src/containers/service';
import { CART_FROM_HOOK } from '../helpers/container-records';

const hasAusearch = spawnSync('ausearch', ['-v']).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'amupd-peer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ausearch 3.0.9 and the update and hook failure records', { skip: !hasAusearch && 'no ausearch' }, () => {
  it('reads every record, fields and hex-encoded values as auditmux wrote them', () => {
    const bodies: string[] = [];
    const r = new ContainerRegistry({
      onBirth: (c) => bodies.push(containerRecordBody('birth', c)),
      onUpdate: (c, ch) => bodies.push(containerRecordBody('update', c, ch)),
    });
    r.register({ runtime: 'containerd', id: 'b'.repeat(64), contid: 22n, source: 'cgroup', meta: { podUid: 'u' } });
    r.register({ ...CART_FROM_HOOK, meta: { ...CART_FROM_HOOK.meta } });
    r.register({ runtime: 'runc', id: 'evil', contid: 44n, source: 'cgroup', meta: {} });
    r.register({ runtime: 'runc', id: 'evil', contid: 44n, source: 'hook', meta: { name: 'x y"\nz changed=no' } });
    bodies.push(
      hookFailureRecordBody({
        time: 1700000005123,
        container: 'c'.repeat(64),
        pid: 4242,
        phase: 'create',
        mode: 'open',
        code: 'E_NO_DAEMON',
        reason: 'control socket /run/auditmux/control.sock: ENOENT (is the auditmux daemon running?)',
      }),
      'op=container-hook-failure dropped=3 res=0',
    );
    const log = join(dir, 'audit.log');
    writeFileSync(
      log,
      bodies.map((b, i) => `type=CONTAINER_OP msg=audit(1700000000.00${i}:${i + 1}): ${b}`).join('\n') + '\n',
    );
    const raw = spawnSync('ausearch', ['-if', log, '--raw'], { encoding: 'utf8' });
    assert.equal(raw.status, 0, raw.stderr);
    assert.equal(raw.stdout.trim().split('\n').length, bodies.length, 'every record, none split');
    assert.equal((raw.stdout.match(/op=container-update /g) ?? []).length, 2);
    assert.equal((raw.stdout.match(/op=container-hook-failure /g) ?? []).length, 2);
    const i = spawnSync('ausearch', ['-if', log, '-i'], { encoding: 'utf8' }).stdout;
    assert.match(i, /op=container-update .*name=cart .*namespace="shop" .*changed=name,image,podName,podNamespace /);
    assert.match(i, /op=container-update contid=44 .*name=x y"\\012z changed=no .*changed=name res=yes/);
    assert.match(i, /op=container-hook-failure container="c{64}" opid=4242 phase=create hook-mode=open /);
    // Names ausearch -i would interpret (mode, code) are not used; the reason stays hex (ausearch decodes only the
    // fields it knows as encoded strings).
    assert.match(i, / hook-time=1700000005\.123 hook-error=E_NO_DAEMON reason=[0-9A-F]+ res=no/);
  });
});
