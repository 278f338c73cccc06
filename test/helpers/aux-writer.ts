// An inline auxiliary daemon's writer (AuxWriter) on its own log under `dir`, opened, as the host makes it.
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { AuxWriter } from '../../src/daemon/aux-writer';
import { parseConfig } from '../../src/config';
import { captureDiag } from './peers';

/** The writer of daemon `name` (log format `format`, flush none), opened, and its log's path. */
export function openAuxWriter(dir: string, name: string, format: string): { w: AuxWriter; file: string } {
  const cfg = parseConfig(
    [
      'host:',
      `  log: { file: ${join(dir, 'audit.log')} }`,
      'daemons:',
      `  - { name: ${name}, isolation: inline, log: { format: ${format}, flush: none } }`,
      '',
    ].join('\n'),
    join(dir, 'auditmux.yaml'),
  ).daemons[0]!;
  const w = new AuxWriter(
    { name: cfg.name, log: cfg.log, outputs: [], nodeName: null, contidKernel: false },
    () => undefined,
    captureDiag(),
  );
  fs.mkdirSync(dirname(cfg.log.file), { recursive: true });
  w.open();
  return { w, file: cfg.log.file };
}
