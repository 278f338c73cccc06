// Which sinks take an event's records as they come (Sink.takesStream): a text log, no output gathering events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load';
import { createSink } from '../../src/output/sinks';
import { captureDiag } from '../helpers/peers';

test('a NATS output (it gathers each event into one message) or a JSON log makes a sink take whole events only', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'am-sink-stream-'));
  try {
    const host = (log: string, outputs: string): ReturnType<typeof parseConfig>['host'] =>
      parseConfig(
        ['host:', `  log: { file: ${join(dir, 'a.log')}, format: ${log} }`, `  outputs: ${outputs}`].join('\n'),
        join(dir, 'auditmux.yaml'),
      ).host;
    // Nothing listens on port 1 of loopback: the NATS output spools and retries, which this test does not wait for.
    const nats = `[{ type: nats, name: n, servers: ["nats://127.0.0.1:1"], spool: { dir: ${join(dir, 'spool')} } }]`;
    const plugin = `[{ type: plugin, name: p, path: /bin/true, spool: { dir: ${join(dir, 'pspool')} } }]`;
    const cases: Array<[string, string, boolean]> = [
      ['RAW', '[]', true],
      ['ENRICHED', plugin, true],
      ['JSON', '[]', false],
      ['RAW', nats, false],
    ];
    for (const [format, outputs, stream] of cases) {
      const h = host(format, outputs);
      const sink = createSink(
        { log: { path: join(dir, 'a.log'), format: h.log.format, flush: 'none' }, outputs: h.outputs },
        { contidKernel: false, diag: captureDiag() },
      );
      try {
        assert.equal(sink.takesStream, stream, `${format} log, outputs ${outputs}`);
      } finally {
        await sink.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
