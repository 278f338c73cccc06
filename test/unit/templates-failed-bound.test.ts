// A failing daemon template (its rules gone, a full disk) keeps a bounded number of failed tenants, however many
// values its containers bring.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config';
import { TemplateManager, type TemplateRegistry } from '../../src/daemon/templates';
import type { Diag } from '../../src/daemon/diagnostics';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as Diag;

describe('daemon templates: failed tenants are bounded', () => {
  it('3,000 values of a template that cannot make daemons leave at most 1,024 failed tenants', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amtplfail-'));
    try {
      const cfg = parseConfig(
        [
          'host:',
          `  log: { file: ${join(dir, 'audit.log')} }`,
          'daemon_templates:',
          '  - name: t',
          '    key: namespace',
          '    max: 3',
          `    log: { file: "${join(dir, 'tt', '{value}.log')}" }`,
        ].join('\n'),
        join(dir, 'auditmux.yaml'),
      );
      const reg: TemplateRegistry = {
        has: () => false,
        running: () => false,
        configs: () => [],
        // What a failing template meets at every try: the daemon cannot be made.
        addRuntimeDaemon: () => Promise.reject(new Error('No space left on device')),
        removeDaemon: () => Promise.resolve(),
        deliver: () => true,
      };
      const records: string[] = [];
      const m = new TemplateManager(reg, { diag: quiet, record: (_t, b) => records.push(b), hostLog: () => null });
      const t = cfg.templates![0]!;
      m.configure([t], cfg.host.log.file);
      // One at a time: at most `max` are being made at once, and the others would be refused for that instead.
      for (let i = 0; i < 3000; i++) {
        m.resolve(t, `ns${i}`, true);
        await m.settle();
      }
      const rows = m.idleRows(() => false);
      const failed = rows.filter((r) => r.state === 'failed').length;
      // Old: all 3,000 kept (20,000 values made a 20 MB status answer).
      assert.ok(failed <= 1024, `${failed} failed tenants kept`);
      assert.ok(failed >= 1000, `${failed}: the recent ones are kept`);
      assert.equal(records.filter((b) => b.includes('res=failed')).length, 3000, 'each failure recorded');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
