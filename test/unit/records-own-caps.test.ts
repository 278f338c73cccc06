// auditmux's own records carry values tenants and runtimes chose: each is cut by UTF-8 bytes, so the fields after it
// (res=, pid=, image=...) stay on auditd's line however long and multi-byte the value.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MsgType } from '../../src/kernel/constants';
import { LineFormatter, MAX_LINE_BYTES } from '../../src/output/format';
import { IdNameCache } from '../../src/vocab/accounts';
import { ContainerRegistry } from '../../src/containers/registry';
import { containerRecordBody, RECORD_VALUE_MAX } from '../../src/containers/service';
import { TemplateManager, type TemplateRegistry } from '../../src/daemon/templates';
import { ControlCommands } from '../../src/daemon/control-commands';
import { cutUtf8, decodeUntrusted } from '../../src/records/encode';
import type { DaemonTemplate } from '../../src/config/schema';
import type { Diag } from '../../src/shared';

const quiet: Diag = { info() {}, warn() {}, error() {} };
const CJK = '\u4e2d'.repeat(4096); // 4096 characters, 12 KiB of UTF-8, 24 KiB as hex

/** The line the host log gets for `body` (RAW), as auditd would write it: cut at its line limit. */
function line(type: number, body: string): string {
  const f = new LineFormatter({ format: 'RAW', ids: new IdNameCache() });
  return f.formatRecord({ type, payload: Buffer.from(`audit(1700000000.000:1): ${body}`, 'latin1') });
}

describe("auditmux's own records keep their last fields", () => {
  it('container birth: name, image, pod and namespace of 4096 CJK characters each', () => {
    const bodies: string[] = [];
    const r = new ContainerRegistry({ onBirth: (x) => bodies.push(containerRecordBody('birth', x)) });
    r.register({
      runtime: 'podman',
      id: 'c'.repeat(64),
      contid: 7n,
      source: 'hook',
      meta: { name: CJK, image: CJK, podName: CJK, podNamespace: CJK },
    });
    const l = line(MsgType.CONTAINER_OP, bodies[0]!);
    assert.ok(l.length < MAX_LINE_BYTES - 1, `${l.length} bytes: not cut by the line limit`);
    assert.match(l, / source=hook opid=-1 res=1$/);
    const name = decodeUntrusted(/ name=([0-9A-F]+) /.exec(l)![1]!)!.toString('utf8');
    assert.equal(name, cutUtf8(CJK, RECORD_VALUE_MAX));
    assert.ok(name.endsWith('...') && Buffer.byteLength(name) <= RECORD_VALUE_MAX);
  });

  it('template-refuse: a label value past the template limit', () => {
    const records: string[] = [];
    const reg: TemplateRegistry = {
      has: () => false,
      running: () => false,
      configs: () => [],
      addRuntimeDaemon: () => Promise.resolve(),
      removeDaemon: () => Promise.resolve(),
      deliver: () => true,
    };
    const m = new TemplateManager(reg, { diag: quiet, record: (_t, b) => records.push(b), hostLog: () => null });
    const t = { name: 'tenant', max: 3 } as DaemonTemplate;
    m.configure([t], '/nonexistent/audit.log');
    assert.equal(m.resolve(t, CJK, true), null, 'refused');
    assert.equal(records.length, 1);
    const l = line(MsgType.DAEMON_ERR, records[0]!);
    assert.ok(l.length < MAX_LINE_BYTES - 1, `${l.length} bytes`);
    assert.match(l, / reason=bad-value max=3 res=failed$/);
  });

  it('refused control request: a reason of multi-byte text', () => {
    const records: string[] = [];
    const c = new ControlCommands(
      {} as ConstructorParameters<typeof ControlCommands>[0],
      {
        counters: { refused: 0 },
        record: (_t: number, b: string) => records.push(b),
      } as unknown as ConstructorParameters<typeof ControlCommands>[1],
    );
    assert.throws(() => c.refuse(`rules:1: ${CJK}`, { pid: 9, uid: 1000, gid: 1000 }), { code: 'E_HOST_WIDE' });
    const l = line(MsgType.DAEMON_ERR, records[0]!);
    assert.ok(l.length < MAX_LINE_BYTES - 1, `${l.length} bytes`);
    assert.match(l, / pid=9 uid=1000 res=failed$/);
  });
});
