// log.format: json on the real kernel: the real daemon writes its host log as JSON while its auditd plugin output gets
// the same events as ENRICHED lines; python3's json module and jq read every line, and the events, their record types
// and their field names match the ENRICHED lines'.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { splitFields } from '../../src/output/event-json';
import { kernelSkipReason, withKernel } from '../helpers/kernel';
import {
  buildSyscallProgram,
  readText,
  startDaemon,
  stopDaemon,
  syscallSerials,
  tempDir,
  writeHostConfig,
} from '../helpers/daemon';

const KEY = 'am-json';
const N = 500;

const havePython = spawnSync('python3', ['-c', 'import json']).status === 0;

/** python3 reads the JSON log line by line (json.loads, strict): serial -> record types, and SYSCALL field names. */
const PY = `
import json, sys
out = {}
lines = 0
with open(sys.argv[1], 'rb') as f:
    for raw in f:
        assert raw.endswith(b'\\n'), 'unterminated line'
        o = json.loads(raw.decode('utf-8'))
        lines += 1
        sc = [r for r in o['records'] if r['type'] == 'SYSCALL']
        if sc and sc[0]['fields'].get('key') == sys.argv[2]:
            assert o['serial'] not in out, 'event twice'
            out[o['serial']] = {'types': [r['type'] for r in o['records']], 'keys': list(sc[0]['fields'].keys()),
                                'syscall': sc[0]['interpreted']['SYSCALL']}
print(json.dumps({'lines': lines, 'events': out}))
`;

/** The ENRICHED log's events with key KEY: serial -> record types in log order, and SYSCALL field names. */
function enrichedEvents(text: string): Map<string, { types: string[]; keys: string[] }> {
  const serials = syscallSerials(text, KEY);
  const out = new Map<string, { types: string[]; keys: string[] }>();
  for (const line of text.split('\n')) {
    const m = /^type=(\S+) msg=audit\(\d+\.\d+:(\d+)\): (.*)$/.exec(line);
    // Plugins get EOE, as auditd's dispatcher sends it; logs never hold it.
    if (!m || !serials.has(m[2]!) || m[1] === 'EOE') continue;
    const e = out.get(m[2]!) ?? { types: [], keys: [] };
    e.types.push(m[1]!);
    if (m[1] === 'SYSCALL') e.keys = Object.keys(splitFields(m[3]!.split('\x1d')[0]!));
    out.set(m[2]!, e);
  }
  return out;
}

describe('JSON host log on the real kernel', { skip: kernelSkipReason() ?? (!havePython && 'needs python3') }, () => {
  it('python3 and jq read every line; events, record types and field names match the ENRICHED lines', () =>
    withKernel(async () => {
      const dir = tempDir('amjsonk-');
      try {
        const prog = buildSyscallProgram(dir);
        writeFileSync(join(dir, 'host.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${prog} -k ${KEY}\n`);
        // An auditd plugin in string format: the same events as the log, as ENRICHED lines, appended to a file.
        writeFileSync(join(dir, 'plugin.sh'), '#!/bin/sh\nexec cat >> "$1"\n');
        chmodSync(join(dir, 'plugin.sh'), 0o755);
        const enrichedLog = join(dir, 'enriched.lines');
        const conf = writeHostConfig(dir, {
          logFormat: 'json',
          keepUnrouted: false,
          more: [
            `  outputs: [{ type: plugin, name: enriched, path: ${join(dir, 'plugin.sh')}, args: [${enrichedLog}], ` +
              `format: string, log_format: ENRICHED, spool: { dir: ${join(dir, 'spool')} } }]`,
          ],
        });
        const d = await startDaemon(conf);
        execFileSync(prog, [String(N), '100']);
        const jsonLog = join(dir, 'log', 'audit.log');
        // Both logs hold every event before the stop (flushed within milliseconds of their batch).
        const deadline = Date.now() + 20_000;
        while (syscallSerials(readText(enrichedLog), KEY).size < N && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 50));
        assert.equal(await stopDaemon(d), 0, d.stderr());

        const py = JSON.parse(execFileSync('python3', ['-c', PY, jsonLog, KEY], { encoding: 'utf8' })) as {
          lines: number;
          events: Record<string, { types: string[]; keys: string[]; syscall: string }>;
        };
        const enriched = enrichedEvents(readText(enrichedLog));
        assert.equal(enriched.size, N, 'the ENRICHED lines have every event');
        assert.equal(Object.keys(py.events).length, N, 'the JSON log has every event, once');
        assert.equal(py.lines, readText(jsonLog).split('\n').length - 1, 'every line is one JSON object');
        for (const [serial, e] of enriched) {
          const j = py.events[serial];
          assert.ok(j, `event ${serial} in the JSON log`);
          assert.deepEqual(j.types, e.types, `record types of ${serial}`);
          assert.deepEqual(j.keys, e.keys, `SYSCALL field names of ${serial}`);
          assert.equal(j.syscall, 'getppid');
        }
        // jq: a second, independent JSON reader; the daemon's own records are objects too.
        const count = (filter: string): number =>
          Number(execFileSync('jq', ['-s', filter, jsonLog], { encoding: 'utf8' }).trim());
        assert.equal(
          count(`[.[] | select(any(.records[]; .type == "SYSCALL" and .fields.key == "${KEY}"))] | length`),
          N,
        );
        assert.equal(count('[.[] | select(.records[0].type == "DAEMON_START")] | length'), 1);
        assert.equal(count('[.[] | select(.records[0].type == "DAEMON_END")] | length'), 1);
        assert.equal(count('[.[] | select(.daemon != "host")] | length'), 0);
        // Node's parser agrees.
        for (const l of readText(jsonLog).split('\n').filter(Boolean)) JSON.parse(l);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }));
});
