// Property tests: thousands of mutated and random inputs must give a Config or a ConfigError positioned inside the
// text.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError } from '../../src/errors';
import { analyzeConfig, parseConfig, type Config } from '../../src/config';
import { prng as rng } from '../helpers/prng';
import { budget, FUZZ_BUDGET } from '../helpers/fuzz';
import { MAX_MAP_KEYS } from '../../src/config/walk';
import { MAX_CONFIG_BYTES } from '../../src/config';

const ROOT = resolve(__dirname, '..', '..', '..');
const FILE = '/etc/auditmux/fuzz.yaml';
const SEED = Number(process.env.AUDITMUX_FUZZ_SEED ?? 0x5eed);

const SEEDS = [
  readFileSync(join(ROOT, 'config', 'auditmux.yaml'), 'utf8'),
  readFileSync(join(ROOT, 'test', 'fixtures', 'config', 'full.yaml'), 'utf8'),
  readFileSync(join(ROOT, 'test', 'fixtures', 'config', 'bad-many.yaml'), 'utf8'),
];
const TOKENS = [
  ':',
  ': ',
  '-',
  '- ',
  ' ',
  '  ',
  '\n',
  '\r\n',
  '\t',
  '#',
  '&a ',
  '*a',
  '<<: ',
  '!',
  '!!str ',
  '"',
  "'",
  '[',
  ']',
  '{',
  '}',
  ',',
  '?',
  '|',
  '>',
  '%',
  '@',
  '`',
  '~',
  'null',
  'true',
  'yes',
  '0x',
  '-1',
  '18446744073709551616',
  '1e9',
  '.inf',
  '0o7',
  'unset',
  '^*',
  '100-199',
  'host',
  'daemons',
  'routes',
  'contid',
  'log',
  'kernel',
  'name',
  'rules',
  'file',
  '\u00e9',
  '\ufeff',
  '\u0000',
  '---',
  '...',
  '\\',
];

/** Throws unless `e` is a ConfigError whose position lies inside `text` (col may be one past the line end). */
function assertPositioned(e: unknown, text: string, what: string): void {
  if (!(e instanceof ConfigError)) throw new Error(`${what}: threw ${(e as Error)?.stack ?? String(e)}`);
  const lines = text.split('\n');
  const { file, line, col } = e.pos;
  assert.equal(file, FILE, what);
  assert.ok(
    Number.isInteger(line) && line >= 1 && line <= lines.length,
    `${what}: line ${line} of ${lines.length}: ${e.message}`,
  );
  assert.ok(
    col !== undefined && Number.isInteger(col) && col >= 1 && col <= (lines[line - 1] as string).length + 1,
    `${what}: col ${col}: ${e.message}`,
  );
  assert.equal(e.message.startsWith(`${FILE}:${line}:${col}: `), true, what);
}

/** The property: a Config, or ConfigErrors that are all well-positioned, and parseConfig agrees with analyzeConfig. */
function check(text: string, what: string): 'ok' | 'error' {
  let r;
  try {
    r = analyzeConfig(text, FILE);
  } catch (e) {
    throw new Error(
      `${what}: analyzeConfig threw ${(e as Error)?.stack ?? String(e)}\n--- input ---\n${JSON.stringify(text)}`,
      { cause: e },
    );
  }
  for (const e of [...r.errors, ...r.warnings])
    assertPositioned(e, text, `${what}\n--- input ---\n${JSON.stringify(text)}`);
  let parsed: Config | undefined;
  try {
    parsed = parseConfig(text, FILE);
  } catch (e) {
    assertPositioned(e, text, what);
    assert.ok(r.errors.length > 0, `${what}: parseConfig threw but analyzeConfig found nothing`);
    return 'error';
  }
  assert.equal(r.errors.length, 0, what);
  assert.ok(parsed && r.config);
  return 'ok';
}

function mutate(text: string, rand: () => number): string {
  let t = text;
  const n = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(rand() * (t.length + 1));
    const op = Math.floor(rand() * 7);
    const lines = t.split('\n');
    const li = Math.floor(rand() * lines.length);
    switch (op) {
      case 0: // delete a span
        t = t.slice(0, at) + t.slice(at + 1 + Math.floor(rand() * 8));
        break;
      case 1: // insert a YAML-significant token
        t = t.slice(0, at) + (TOKENS[Math.floor(rand() * TOKENS.length)] as string) + t.slice(at);
        break;
      case 2: // duplicate a line
        lines.splice(li, 0, lines[li] as string);
        t = lines.join('\n');
        break;
      case 3: // re-indent a line
        lines[li] = ' '.repeat(Math.floor(rand() * 7)) + (lines[li] as string).trimStart();
        t = lines.join('\n');
        break;
      case 4: // swap two lines
        {
          const lj = Math.floor(rand() * lines.length);
          [lines[li], lines[lj]] = [lines[lj] as string, lines[li] as string];
          t = lines.join('\n');
        }
        break;
      case 5: // replace a value after a colon
        lines[li] = (lines[li] as string).replace(/:\s.*$/, `: ${TOKENS[Math.floor(rand() * TOKENS.length)]}`);
        t = lines.join('\n');
        break;
      default: // random byte
        t = t.slice(0, at) + String.fromCharCode(Math.floor(rand() * 0x250)) + t.slice(at);
    }
  }
  return t;
}

function randomValue(rand: () => number, depth: number): unknown {
  const KEYS = [
    'host',
    'kernel',
    'log',
    'daemons',
    'routes',
    'contid',
    'cgroup_map',
    'name',
    'file',
    'rules',
    'queue',
    'enabled',
    'types',
    'keys',
    'pattern',
    'format',
    'flush',
    'num_logs',
    'continue',
    'node_name',
    'reassembly',
    'x',
    '<<',
  ];
  const r = rand();
  if (depth > 4 || r < 0.45) {
    const leaves: unknown[] = [
      null,
      true,
      false,
      0,
      -1,
      1.5,
      2 ** 64,
      42,
      '',
      'unset',
      'RAW',
      'x y',
      'tenant-a',
      '100^*',
      '5-1',
      '0x10',
      'SYSCALL',
      '/abs/path',
      'docker-*.scope',
      Math.floor(rand() * 1e6),
    ];
    return leaves[Math.floor(rand() * leaves.length)];
  }
  if (r < 0.7) return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(rand, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(rand() * 5); i > 0; i--)
    o[KEYS[Math.floor(rand() * KEYS.length)] as string] = randomValue(rand, depth + 1);
  return o;
}

const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;

describe(`config fuzz (seed ${SEED}, budget x${FUZZ_BUDGET}; set AUDITMUX_FUZZ_SEED to replay, AUDITMUX_FUZZ_BUDGET for more)`, () => {
  it('4000 random mutations of valid and invalid configs', () => {
    const rand = rng(SEED);
    const tally = { ok: 0, error: 0 };
    for (let i = 0; i < budget(4000); i++) {
      const text = mutate(SEEDS[i % SEEDS.length] as string, rand);
      tally[check(text, `mutation #${i}`)]++;
    }
    // Both outcomes must be exercised, or the mutator is not testing anything.
    assert.ok(tally.ok > budget(100) && tally.error > budget(1000), JSON.stringify(tally));
  });

  it('2000 random YAML documents shaped like configs', () => {
    const rand = rng(SEED + 1);
    for (let i = 0; i < budget(2000); i++) {
      const doc = {
        host: randomValue(rand, 1),
        daemons: randomValue(rand, 1),
        routes: randomValue(rand, 1),
        [pick(rand, ['contid', 'x'])]: randomValue(rand, 1),
      };
      const text = stringify(doc, { aliasDuplicateObjects: false });
      check(text, `random doc #${i}`);
    }
  });

  it('2000 random token soups', () => {
    const rand = rng(SEED + 2);
    for (let i = 0; i < budget(2000); i++) {
      let text = '';
      for (let j = Math.floor(rand() * 40); j > 0; j--)
        text += rand() < 0.8 ? pick(rand, TOKENS) : String.fromCharCode(Math.floor(rand() * 0x80));
      check(text, `soup #${i}`);
    }
  });

  it('1000 random valid configs round-trip their values', () => {
    const rand = rng(SEED + 3);
    const u64 = (): bigint => (BigInt(Math.floor(rand() * 2 ** 32)) << 32n) | BigInt(Math.floor(rand() * 2 ** 32));
    for (let i = 0; i < budget(1000); i++) {
      const names = Array.from({ length: 1 + Math.floor(rand() * 3) }, (_, k) => `d${k}-${Math.floor(rand() * 100)}`);
      const kernel = {
        enabled: Math.floor(rand() * 3),
        failure: Math.floor(rand() * 3),
        backlog_limit: Math.floor(rand() * 2 ** 32),
        rate_limit: Math.floor(rand() * 1e5),
        backlog_wait_time: Math.floor(rand() * 600001),
      };
      const flush = pick(rand, ['none', 'incremental', 'incremental_async', 'data', 'sync'] as const);
      const log = {
        file: `logs/h${i}.log`,
        format: pick(rand, ['RAW', 'ENRICHED']),
        flush,
        freq: 1 + Math.floor(rand() * 1000),
        num_logs: Math.floor(rand() * 1000),
        max_log_file: Math.floor(rand() * 1048577),
      };
      const ids = names.map(() => {
        const id = u64();
        return id === 0xffffffffffffffffn ? 1n : id;
      });
      const hex = rand() < 0.5;
      const routes = names.map(
        (n, k) =>
          `  - { contid: [${hex ? `0x${(ids[k] as bigint).toString(16)}` : (ids[k] as bigint).toString()}, "${k}-${k + 10}^*"], daemons: [${n}], continue: ${rand() < 0.5} }`,
      );
      const text = [
        'host:',
        `  kernel: ${JSON.stringify(kernel)}`,
        `  log: ${JSON.stringify(log)}`,
        'daemons:',
        ...names.map((n) => `  - { name: ${n}, queue: { depth: ${1 + Math.floor(rand() * 1e6)} } }`),
        'routes:',
        ...routes,
      ].join('\n');
      const c = parseConfig(text, FILE);
      assert.deepEqual(
        { ...c.host.kernel },
        {
          enabled: kernel.enabled,
          failure: kernel.failure,
          backlogLimit: kernel.backlog_limit,
          rateLimit: kernel.rate_limit,
          backlogWaitTime: kernel.backlog_wait_time,
          loginuidImmutable: false,
          resetLostOnStart: false,
        },
      );
      assert.equal(c.host.log.file, `/etc/auditmux/logs/h${i}.log`);
      assert.equal(c.host.log.flush, flush);
      assert.equal(c.host.log.numLogs, log.num_logs);
      assert.equal(c.host.log.maxLogFileMiB, log.max_log_file);
      assert.deepEqual(
        c.daemons.map((d) => d.name),
        names,
      );
      assert.deepEqual(
        c.routes.map((r) => r.contid[0]?.lo),
        ids,
        text,
      );
      assert.deepEqual(
        c.routes.map((r) => r.contid[1]?.nested),
        names.map(() => true),
      );
    }
  });

  it('inputs at the caps: many keys, duplicates anywhere, oversized files give positioned errors in one pass', () => {
    const rand = rng(SEED + 4);
    for (let i = 0; i < budget(40); i++) {
      // A mapping of MAX_MAP_KEYS +- 8 keys, some of them duplicated, at a random depth and in block or flow style.
      const n = MAX_MAP_KEYS - 8 + Math.floor(rand() * 17);
      const keys = Array.from({ length: n }, (_, k) => (rand() < 0.002 ? `k${Math.floor(rand() * k)}` : `k${k}`));
      const flow = rand() < 0.3;
      const indent = '  '.repeat(1 + Math.floor(rand() * 3));
      const body = flow
        ? `${indent}m: {${keys.map((k) => `${k}: 1`).join(', ')}}`
        : [`${indent}m:`, ...keys.map((k) => `${indent}  ${k}: 1`)].join('\n');
      const head = [
        'host:',
        ...Array.from({ length: indent.length / 2 - 1 }, (_, d) => `${'  '.repeat(d + 1)}x${d}:`),
      ].join('\n');
      const text = `${head}\n${body}\n`;
      const r = analyzeConfig(text, FILE);
      for (const e of r.errors) assertPositioned(e, text, `cap #${i}`);
      const capped = r.errors.some((e) => e.reason === `more than ${MAX_MAP_KEYS} keys in one mapping`);
      assert.equal(capped, n > MAX_MAP_KEYS, `cap #${i}: ${n} keys`);
      const dups = new Set(keys.slice(0, MAX_MAP_KEYS)).size < Math.min(n, MAX_MAP_KEYS);
      assert.equal(
        r.errors.some((e) => e.reason.includes('DUPLICATE_KEY')),
        dups,
        `cap #${i}: duplicates ${dups}`,
      );
    }
    const over = `# ${'x'.repeat(MAX_CONFIG_BYTES - 2 + Math.floor(rand() * 3))}`;
    const r = analyzeConfig(over, FILE);
    assert.equal(r.errors.length, Buffer.byteLength(over) > MAX_CONFIG_BYTES ? 1 : 0);
  });
});
