// A config's daemons: at most MAX_DAEMONS, each placed against the earlier ones that can clash with it (not every
// earlier one: 16,000 daemons took 25 s), and their errors under the walker's cap like every other config error.
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import * as auxPaths from '../../src/config/aux-paths';
import { auxLogProblem, auxSpoolProblem, type AuxLogPlacement } from '../../src/config/aux-paths';
import { analyzeConfig } from '../../src/config';
import { PlacementIndex } from '../../src/config/consistency';
import { intBelow, prng } from '../helpers/prng';

const FILE = '/etc/auditmux/test.yaml';
const HOST = ['host:', '  log: { file: /var/log/auditmux/audit.log }', 'daemons:'];
const HOST_LOG = '/var/log/auditmux/audit.log';
/** MAX_DAEMONS, the documented limit (src/config/daemons.ts). */
const MAX_DAEMONS = 4096;

/** How many daemons the placement checks were handed in all (each one is compared with each it is handed). */
function countCompared(): { log: number; spool: number; calls: number } {
  const n = { log: 0, spool: 0, calls: 0 };
  const log = auxPaths.auxLogProblem;
  const spool = auxPaths.auxSpoolProblem;
  mock.method(auxPaths, 'auxLogProblem', (d: AuxLogPlacement, h: string, others: readonly AuxLogPlacement[]) => {
    n.calls++;
    n.log += others.length;
    return log(d, h, others);
  });
  mock.method(
    auxPaths,
    'auxSpoolProblem',
    (d: AuxLogPlacement, o: string, dir: string, others: readonly AuxLogPlacement[]) => {
      n.spool += others.length;
      return spool(d, o, dir, others);
    },
  );
  return n;
}

describe('many daemons in one config', () => {
  afterEach(() => mock.restoreAll());

  it(`more than ${MAX_DAEMONS} daemons: an error at the first one past the limit`, () => {
    const lines = [...HOST];
    for (let i = 0; i <= MAX_DAEMONS; i++) lines.push(`  - { name: d${i} }`);
    const r = analyzeConfig(lines.join('\n'), FILE);
    const past = r.errors.filter((e) => e.message.includes(`more than ${MAX_DAEMONS} daemons`));
    assert.equal(past.length, 1, r.errors.map((e) => e.message).join('\n'));
    assert.equal(past[0]!.message, `${FILE}:${HOST.length + MAX_DAEMONS + 1}:5: daemons: more than 4096 daemons`);
    assert.equal(r.config, undefined);
  });

  it(`${MAX_DAEMONS} daemons are a valid config`, () => {
    const lines = [...HOST];
    for (let i = 0; i < MAX_DAEMONS; i++) lines.push(`  - { name: d${i} }`);
    const r = analyzeConfig(lines.join('\n'), FILE);
    assert.deepEqual(
      r.errors.map((e) => e.message),
      [],
    );
    assert.equal(r.config?.daemons.length, MAX_DAEMONS);
  });

  it('each daemon is compared with a bounded number of earlier ones, its spools with a bounded number of daemons', () => {
    const n = countCompared();
    const N = 2000;
    const lines = [...HOST];
    for (let i = 0; i < N; i++) {
      // Root daemons side by side in the host's log directory, daemons with a user each in their own below it, and
      // some in a shared tree: the layouts where every daemon is a neighbour of every other.
      const out = `outputs: [ { type: remote, name: r, host: 192.0.2.1 } ]`;
      if (i % 3 === 0) lines.push(`  - { name: d${i}, ${out} }`);
      else if (i % 3 === 1) lines.push(`  - { name: d${i}, user: nobody, ${out} }`);
      else lines.push(`  - { name: d${i}, log: { file: /srv/logs/t${i % 7}/d${i}.log }, ${out} }`);
    }
    const r = analyzeConfig(lines.join('\n'), FILE);
    assert.deepEqual(
      r.errors.map((e) => e.message),
      [],
    );
    assert.equal(n.calls, N, 'one log placement check per daemon');
    // Every earlier daemon for each daemon was N(N-1)/2 (1,999,000), every daemon for each spool N*N.
    assert.ok(n.log <= 2 * N, `${n.log} daemons handed to the log placement check for ${N} daemons`);
    assert.ok(n.spool <= 2 * N, `${n.spool} daemons handed to the spool placement check for ${N} spools`);
  });

  it('placement and spool errors go through the walker: at most 50, as for every other kind', () => {
    const lines = [...HOST];
    for (let i = 0; i < 200; i++) {
      lines.push(
        `  - { name: u${i}, user: nobody, log: { file: /var/log/auditmux/u${i}.log }, queue: { overflow: block } }`,
      );
      lines.push(`  - { name: s${i}, log: { file: /var/log/auditmux/same.log } }`);
    }
    const r = analyzeConfig(lines.join('\n'), FILE);
    assert.equal(r.errors.length, 50, `${r.errors.length} errors`);
    // The first ones, in the order found, with their positions.
    assert.match(
      r.errors[0]!.message,
      /^\/etc\/auditmux\/test\.yaml:4:\d+: daemon "u0" runs as user "nobody" .*host's log directory/,
    );
    assert.match(r.errors[1]!.message, /^\/etc\/auditmux\/test\.yaml:4:\d+: daemons\[0\]\.queue\./);
  });
});

describe('PlacementIndex', () => {
  /** Paths of a small tree, so that directories nest, repeat and hold each other's logs. */
  function randomPlacement(next: () => number, name: string): AuxLogPlacement {
    const parts = ['/var/log/auditmux', '/srv', '/srv/a', '/srv/a/b', '/', '/var/log', '/srv/ab'];
    let dir = parts[intBelow(next, parts.length)]!;
    if (intBelow(next, 3) === 0) dir = `${dir === '/' ? '' : dir}/${['a', 'b', name][intBelow(next, 3)]}`;
    const base = ['x.log', 'y.log', `${name}.log`, 'audit.log'][intBelow(next, 4)]!;
    const rot = ['', '', '.1', '.2.gz', '.gz', '.1.2'][intBelow(next, 6)]!;
    const file = `${dir === '/' ? '' : dir}/${base}${rot}`;
    return { name, user: intBelow(next, 3) === 0 ? 'nobody' : null, file };
  }

  it('gives the same answers as checking every daemon (random layouts)', () => {
    const found = { log: 0, spool: 0 };
    for (let seed = 1; seed <= 1000; seed++) {
      const next = prng(seed);
      const ds = Array.from({ length: 1 + intBelow(next, 12) }, (_, i) => randomPlacement(next, `d${i}`));
      const index = new PlacementIndex();
      ds.forEach((d, i) => {
        const want = auxLogProblem(d, HOST_LOG, ds.slice(0, i));
        assert.equal(auxLogProblem(d, HOST_LOG, index.logCandidates(d)), want, `seed ${seed}, daemon ${i}`);
        if (want && !want.includes("the host's")) found.log++;
        index.add(d);
      });

      for (let k = 0; k < 10; k++) {
        const owner =
          intBelow(next, 4) === 0 ? { name: ':host', user: null, file: HOST_LOG } : ds[intBelow(next, ds.length)]!;
        const dir = `${randomPlacement(next, 'z').file.replace(/\/[^/]*$/, '') || '/'}${intBelow(next, 2) ? '/spool/r' : ''}`;
        const want = auxSpoolProblem(owner, 'r', dir, ds);
        assert.equal(auxSpoolProblem(owner, 'r', dir, index.spoolCandidates(owner.name, dir)), want, `seed ${seed}`);
        if (want?.includes('overlaps')) found.spool++;
      }
    }
    // Layouts where one daemon clashes with another, not only clean ones.
    assert.ok(found.log > 300 && found.spool > 300, JSON.stringify(found));
  });
});
