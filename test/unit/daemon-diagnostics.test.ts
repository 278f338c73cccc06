// The daemon's diagnostics are one JSON object a line with no key twice (pino's base already carries pid).
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createDiagnostics } from '../../src/daemon/diagnostics';
import { HostDaemon } from '../../src/daemon/host';
import { EmulatedKernel } from '../helpers/emulated-kernel';
import { emulatedHostOptions } from '../helpers/emulated-contid-source';

test('start and stop diagnostics never repeat a key in one line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'amdiag-'));
  try {
    writeFileSync(join(dir, 'auditmux.yaml'), `host:\n  rules: ~\n  log: { file: ${join(dir, 'log', 'audit.log')} }\n`);
    const fd = openSync(join(dir, 'diag.jsonl'), 'w');
    const kernel = new EmulatedKernel({});
    const daemon = new HostDaemon({
      configPath: join(dir, 'auditmux.yaml'),
      diag: createDiagnostics('info', fd),
      ...emulatedHostOptions(kernel),
      noControl: true,
    });
    await daemon.start();
    await daemon.stop();
    closeSync(fd);
    const lines = readFileSync(join(dir, 'diag.jsonl'), 'utf8').split('\n').filter(Boolean);
    assert.ok(
      lines.some((l) => l.includes('host daemon started')),
      'the start line is there',
    );
    for (const l of lines) {
      const keys = [...l.matchAll(/[{,]"([^"]+)":/g)].map((m) => m[1]);
      assert.equal(new Set(keys).size, keys.length, `a key repeated in ${l}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
