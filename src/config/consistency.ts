// Checks across sections: one file per writer, one spool per output, daemons no route reaches, dead routes.
import { ConfigError } from '../errors';
import type { Config, ContidPattern } from './schema';
import type { Walker, Entry } from './walk';
import { auxSpoolProblem, HOST_OWNER, rootLogProblem } from './aux-paths';

/** Two writers appending to one file interleave records and rotate each other's files away. */
export function checkOutputsDistinct(w: Walker, cfg: Config): void {
  const owner = new Map<string, string>([[cfg.host.log.file, 'host.log']]);
  for (const d of cfg.daemons) {
    const other = owner.get(d.log.file);
    if (other) {
      w.errors.push(new ConfigError(d.pos, `daemon "${d.name}" writes ${d.log.file}, which ${other} already uses`));
    } else {
      owner.set(d.log.file, `daemon "${d.name}"`);
    }
  }
  // Two outputs on one spool directory would append to each other's segments and move each other's cursor.
  const spools = new Map<string, string>();
  const all = [
    ...cfg.host.outputs.map((o) => ({ o, who: 'host' })),
    ...cfg.daemons.flatMap((d) => (d.outputs ?? []).map((o) => ({ o, who: `daemon "${d.name}"` }))),
  ];
  const placed = cfg.daemons.map((d) => ({ name: d.name, user: d.user, file: d.log.file }));
  const rlog = cfg.host.listen?.log;
  const rbad = rlog ? rootLogProblem('the remote log', rlog.file, placed) : null;
  if (rbad)
    w.errors.push(
      new ConfigError(
        cfg.sources.get('host.listen.log.file') ?? cfg.host.listen?.pos ?? { file: cfg.file ?? '', line: 1 },
        rbad,
      ),
    );
  for (const { o, who } of all) {
    if (!o.spool.dir) continue;
    const d = placed.find((x) => `daemon "${x.name}"` === who) ?? {
      name: HOST_OWNER,
      user: null,
      file: cfg.host.log.file,
    };
    const bad = auxSpoolProblem(d, o.name, o.spool.dir, placed);
    if (bad) w.errors.push(new ConfigError(o.pos ?? { file: cfg.file ?? '', line: 1 }, bad));
    const other = spools.get(o.spool.dir);
    if (other)
      w.errors.push(
        new ConfigError(
          o.pos ?? { file: cfg.file ?? '', line: 1 },
          `output "${o.name}" of ${who} uses spool ${o.spool.dir}, which ${other} already uses`,
        ),
      );
    else spools.set(o.spool.dir, `output "${o.name}" of ${who}`);
  }
}

export function warnUnrouted(w: Walker, cfg: Config, daemonsEntry: Entry | undefined): void {
  if (!daemonsEntry) return;
  const used = new Set(cfg.routes.flatMap((r) => r.daemons));
  for (const d of cfg.daemons) {
    if (!used.has(d.name))
      w.warnings.push(new ConfigError(d.pos, `daemon "${d.name}" is not named by any route; it receives no events`));
  }
  const seenCatchAll = cfg.routes.find(
    (r) => !r.continue && r.types === null && r.keys === null && coversAll(r.contid),
  );
  if (seenCatchAll) {
    for (const r of cfg.routes) {
      if (r.index > seenCatchAll.index)
        w.warnings.push(
          new ConfigError(
            r.pos,
            `route ${r.index} can never match: route ${seenCatchAll.index} matches every event first`,
          ),
        );
    }
  }
}

function coversAll(ps: readonly ContidPattern[]): boolean {
  const hasUnset = ps.some((p) => p.kind === 'unset');
  const hasAll = ps.some((p) => p.kind === 'range' && p.lo === 0n && p.hi >= 0xfffffffffffffffen);
  return hasUnset && hasAll;
}
