// An AuxDaemon whose process is a test double (test/helpers/aux-*.ts) on a private log directory, and a poll.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { AuxDaemon } from '../../src/daemon/aux-daemon';
import { parseConfig } from '../../src/config';
import { captureDiag } from './peers';

/** An AuxDaemon of `program` (a test double of a tenant's process) on a private log directory. */
export function auxWithDouble(
  program: string,
  overflow = 'drop_newest',
  sendDelayMs?: number,
): {
  a: AuxDaemon;
  dir: string;
  reports: string[];
  pauses: boolean[];
  diag: ReturnType<typeof captureDiag>;
} {
  const dir = fs.mkdtempSync(join(tmpdir(), 'amauxtenant-'));
  const cfg = parseConfig(
    [
      'host:',
      `  log: { file: ${join(dir, 'audit.log')} }`,
      'daemons:',
      `  - { name: t, isolation: process, queue: { depth: 10, overflow: ${overflow} }, log: { format: RAW, flush: none } }`,
      '',
    ].join('\n'),
    join(dir, 'auditmux.yaml'),
  ).daemons[0]!;
  const reports: string[] = [];
  const pauses: boolean[] = [];
  const diag = captureDiag();
  const a = new AuxDaemon(cfg, {
    diag,
    program: join(__dirname, program),
    nodeName: null,
    report: (event, detail) => void reports.push(`${event} ${detail}`),
    backpressure: (_n, full) => void pauses.push(full),
    contidKernel: false,
    ...(sendDelayMs !== undefined ? { sendDelayMs } : {}),
  });
  return { a, dir, reports, pauses, diag };
}

export async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > 500) throw new Error(`never: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
