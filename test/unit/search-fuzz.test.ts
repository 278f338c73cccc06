// Property/fuzz test: thousands of generated and mutated logs never crash search or report; results or positioned
// errors only.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runReport, runSearch } from '../../src/search';
import { generateLines, rng } from '../fixtures/search/gen';

const dir = mkdtempSync(join(tmpdir(), 'amsearch-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const ALPHABET = ' =\'"()^,:.-\x1d\x00\n\\0123456789abcdefABCDEF' + 'typemsgaudit(key=contid=record=';
const CRITERIA: string[][] = [
  [],
  ['-k', 'amtest'],
  ['-k', 'k'],
  ['--contid', '100^*'],
  ['--contid', 'unset'],
  ['--contid', '2,3,7'],
  ['-m', 'SYSCALL,CONTAINER_ID'],
  ['-p', '1000'],
  ['-sv', 'no'],
  ['-sc', 'openat'],
  ['-x', 'app'],
  ['-ua', '0'],
  ['-a', '1000-1100'],
  ['-ts', '@1795885436'],
];

function mutate(line: string, r: () => number): string {
  const ops = Math.floor(r() * 4);
  let s = line;
  for (let i = 0; i < ops; i++) {
    const at = Math.floor(r() * (s.length + 1));
    const k = r();
    if (k < 0.3) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(r() * 20));
    else if (k < 0.6) s = s.slice(0, at) + ALPHABET[Math.floor(r() * ALPHABET.length)] + s.slice(at);
    else if (k < 0.8) s = s.slice(0, at);
    else s = s.slice(0, at) + s.slice(at).replace(/[0-9]/, String(Math.floor(r() * 10)));
  }
  return s;
}

describe('search fuzz', () => {
  it('3000 mutated logs: exit 0/1 with output, or positioned warnings; never a throw', async () => {
    let lines = 0;
    let warnings = 0;
    for (let seed = 1; seed <= 3000; seed++) {
      const r = rng(seed);
      const src = [
        ...generateLines(1 + Math.floor(r() * 8), {
          seed,
          dense: r(),
          interleave: 0.3,
          enriched: r() < 0.3,
          unknown1336: r() < 0.5,
        }),
      ];
      const mutated = src.map((l) => (r() < 0.3 ? mutate(l, r) : l));
      if (r() < 0.1)
        mutated.push(
          String.fromCharCode(...Array.from({ length: Math.floor(r() * 200) }, () => Math.floor(r() * 256))),
        );
      lines += mutated.length;
      const f = join(dir, `f${seed % 16}.log`);
      writeFileSync(f, mutated.join('\n') + (r() < 0.8 ? '\n' : ''), 'latin1');
      const argv = [
        '-if',
        f,
        ...CRITERIA[seed % CRITERIA.length]!,
        ...(['--raw', '-i', '--format=json'] as const).slice(seed % 3, (seed % 3) + 1),
      ];
      const out: string[] = [];
      const err: string[] = [];
      const code = await runSearch(argv, { out: (s) => out.push(s), err: (s) => err.push(s) });
      assert.ok(code === 0 || code === 1, `seed ${seed}: exit ${code}: ${err.join('\n')}`);
      for (const e of err) {
        if (e === '<no matches>' || /malformed line\(s\) skipped/.test(e)) continue;
        assert.match(e, /^auditmux: warning: .*f\d+\.log(:\d+:|: \d+ more)/, `seed ${seed}: unpositioned message ${e}`);
        warnings++;
      }
      if (code === 0 && argv.includes('--format=json')) for (const l of out.join('').trim().split('\n')) JSON.parse(l);
      // -i text goes to a terminal: nothing from the log may reach it as a control character, and each line is a record
      if (code === 0 && argv.includes('-i')) {
        const text = out.join('');
        assert.doesNotMatch(text, /[\x00-\x09\x0b-\x1f\x7f-\x9f]/, `seed ${seed}: control character in -i output`);
        for (const l of text.split('\n'))
          assert.ok(
            l === '' || l === '----' || /^(node=\S* )?type=\S+ msg=audit\(/.test(l),
            `seed ${seed}: ${JSON.stringify(l)}`,
          );
      }
      if (seed % 10 === 0) {
        const rep: string[] = [];
        const rc = await runReport(['-if', f, seed % 20 === 0 ? '--html' : '--format=text'], {
          out: (s) => rep.push(s),
          err: () => undefined,
        });
        assert.equal(rc, 0, `seed ${seed}: report exit ${rc}`);
        assert.doesNotMatch(
          rep.join(''),
          /[\x00-\x09\x0b-\x1f\x7f-\x9f]/,
          `seed ${seed}: control character in the report`,
        );
      }
    }
    assert.ok(lines > 10000 && warnings > 100, `exercised ${lines} lines, ${warnings} warnings`);
  });
  it('5000 random argument vectors: an exit code, never a throw', async () => {
    const f = join(dir, 'args.log');
    writeFileSync(f, [...generateLines(50, { seed: 99 })].join('\n') + '\n');
    const words = [
      '-k',
      '-m',
      '-p',
      '-pp',
      '-ui',
      '-ua',
      '-ul',
      '-x',
      '-sc',
      '-sv',
      '-ts',
      '-te',
      '-a',
      '--contid',
      '-w',
      '-r',
      '-i',
      '--format',
      'json',
      'yes',
      'no',
      'today',
      'recent',
      '10:00',
      '01/02/2025',
      '1^*',
      'unset',
      '-1',
      'x',
      '',
      'SYSCALL',
      '12',
      '0x10',
      '5-3',
      '--bogus',
      'ALL',
      '-if',
    ];
    const r = rng(7);
    for (let i = 0; i < 5000; i++) {
      const argv = [
        '-if',
        f,
        ...Array.from({ length: Math.floor(r() * 6) }, () => words[Math.floor(r() * words.length)]!),
      ];
      const code = await runSearch(argv, { out: () => undefined, err: () => undefined });
      assert.ok([0, 1, 2, 8].includes(code), `argv ${JSON.stringify(argv)}: exit ${code}`);
    }
  });
});
