// The `daemons:` section: each auxiliary daemon's name, rules, log, queue, user, isolation and outputs.
import { dirname } from 'node:path';
import type { Node } from 'yaml';
import { NAME_PATTERN } from '../shared';
import type { DaemonConfig, HostConfig } from './schema';
import type { Walker, Entry } from './walk';
import { auxLogProblem, defaultAuxLogFile, defaultAuxSpoolDir } from './aux-paths';
import { readOutputs } from './outputs';
import { PlacementIndex } from './consistency';
import { account, configPath, readOutput } from './log';
import {
  blockForUserProblem,
  buildDaemonConfig,
  DAEMON_NAME_RE,
  readIsolation,
  readMaxRestarts,
  readQueue,
  type DaemonSpec,
} from './daemon-config';

const DAEMON_KEYS = ['name', 'rules', 'log', 'queue', 'user', 'isolation', 'max_restarts', 'outputs'] as const;

/**
 * Daemons in one config file. Each is a process or a log the host runs, so real configs have tens (tenants that come
 * and go are templates' daemons, up to 1000 per template); a 1 MiB file holds ~65,000 and kept the host busy for
 * minutes at start, at each reload and in `config check`. Past this many, the first one beyond is an error.
 */
export const MAX_DAEMONS = 4096;

export function readDaemons(w: Walker, e: Entry, host: HostConfig, baseDir: string): DaemonConfig[] {
  const all = w.sequence(e.value, 'daemons', e.key);
  if (!all) return [];
  if (all.length > MAX_DAEMONS) w.error(all[MAX_DAEMONS], `daemons: more than ${MAX_DAEMONS} daemons`, e.key);
  // The ones within the limit are still checked: their errors are reported with it.
  const items = all.slice(0, MAX_DAEMONS);
  const out: DaemonConfig[] = [];
  const placed = new PlacementIndex();
  const seen = new Map<string, Node>();
  items.forEach((item, i) => {
    const where = `daemons[${i}]`;
    const m = w.mapping(item, where, DAEMON_KEYS);
    if (!m) return;
    const pos = w.posOf(w.resolve(item), item);
    const nameE = m.get('name');
    if (!nameE) {
      w.error(w.resolve(item), `${where} needs a name`, item);
      return;
    }
    const name = w.string(nameE, `${where}.name`);
    if (name === undefined) return;
    if (!DAEMON_NAME_RE.test(name)) {
      w.error(nameE.value, `${where}.name "${name.slice(0, 70)}" must match ${NAME_PATTERN}`, nameE.key);
      return;
    }
    if (name === 'host') {
      w.error(nameE.value, `${where}.name "host" is reserved for the host daemon`, nameE.key);
      return;
    }
    const first = seen.get(name);
    if (first) {
      const p = w.posOf(first);
      w.error(
        nameE.value,
        `duplicate daemon name "${name}" (first defined at line ${p.line}:${p.col ?? 1})`,
        nameE.key,
      );
      return;
    }
    seen.set(name, nameE.value ?? nameE.key);
    const spec: DaemonSpec = { name, pos };
    let x: Entry | undefined;
    if ((x = m.get('rules'))) {
      const r = w.nullableString(x, `${where}.rules`);
      if (r !== null && r !== undefined) spec.rules = configPath(w, x, `${where}.rules`, r, baseDir) ?? null;
    }
    if ((x = m.get('log')))
      spec.log = readOutput(w, x, `${where}.log`, baseDir, defaultAuxLogFile(host.log.file, name, null));
    if ((x = m.get('queue'))) spec.queue = readQueue(w, x, where);
    if ((x = m.get('user'))) {
      if (w.resolve(x.value) !== null) spec.user = account(w, x, `${where}.user`) ?? null;
    }
    // Without `file:` the default depends on the user (src/config/aux-paths.ts); either way the placement is checked.
    const filePos = w.sources.get(`${where}.log.file`);
    if (!filePos && spec.log) delete spec.log.file;
    const d = buildDaemonConfig(spec, host.log.file);
    const me = { name, user: d.user, file: d.log.file };
    // Against the earlier daemons that can clash with it (see PlacementIndex), not each earlier one: quadratic.
    const placement = auxLogProblem(me, host.log.file, placed.logCandidates(me));
    if (placement) w.errorAt(filePos ?? w.sources.get(`${where}.user`) ?? pos, placement);
    if ((x = m.get('isolation'))) d.isolation = readIsolation(w, x, where, d.user) ?? d.isolation;
    if ((x = m.get('max_restarts'))) d.maxRestarts = readMaxRestarts(w, x, where) ?? d.maxRestarts;
    const blocked = blockForUserProblem(d.user, d.queue.overflow);
    if (blocked) w.errorAt(w.sources.get(`${where}.queue.overflow`) ?? pos, `${where}.queue.${blocked}`);
    d.outputs = (x = m.get('outputs'))
      ? readOutputs(
          w,
          x,
          `${where}.outputs`,
          name,
          baseDir,
          d.user ? dirname(defaultAuxSpoolDir(d.log.file, 'x')) : undefined,
        )
      : [];
    out.push(d);
    placed.add({ name: d.name, user: d.user, file: d.log.file });
  });
  return out;
}
