// Fuzz (fixed seed): the Prometheus renderer against an independent parser of the text format, and the listen parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderExposition } from '../../src/metrics/exposition';
import type { MetricFamily } from '../../src/metrics/contract';
import { parseListen } from '../../src/config/metrics';
import { budget } from '../helpers/fuzz';
import { intBelow, prng } from '../helpers/prng';

/** Characters that matter to the format, plus any BMP unit (lone surrogates included) and astral pairs. */
function randomString(next: () => number, max: number): string {
  const special = ['\\', '"', '\n', '\r', '\t', ' ', ',', '=', '{', '}', '#', '\0', '\x1b', 'é', '\u2028'];
  let s = '';
  const n = intBelow(next, max);
  for (let i = 0; i < n; i++) {
    const k = intBelow(next, 10);
    if (k < 5) s += special[intBelow(next, special.length)];
    else if (k < 8) s += String.fromCharCode(0x20 + intBelow(next, 0x5f));
    else if (k < 9) s += String.fromCharCode(intBelow(next, 0x10000));
    else s += String.fromCodePoint(0x10000 + intBelow(next, 0x100000));
  }
  return s;
}

/** The text format's sample line grammar, read the way Prometheus's parser reads it: one sample per line. */
function parseSample(line: string): { name: string; labels: [string, string][]; value: string } {
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0];
  let i = name.length;
  const labels: [string, string][] = [];
  if (line[i] === '{') {
    i++;
    while (line[i] !== '}') {
      const ln = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i))![0];
      i += ln.length;
      assert.equal(line.slice(i, i + 2), '="', line);
      i += 2;
      let v = '';
      for (;;) {
        const c = line[i++];
        assert.ok(c !== undefined, `unterminated label value in ${JSON.stringify(line)}`);
        if (c === '"') break;
        if (c === '\\') {
          const e = line[i++];
          assert.ok(e === '\\' || e === '"' || e === 'n', `bad escape \\${e}`);
          v += e === 'n' ? '\n' : e;
        } else v += c;
      }
      labels.push([ln, v]);
      if (line[i] === ',') i++;
    }
    i++;
  }
  assert.equal(line[i], ' ');
  return { name, labels, value: line.slice(i + 1) };
}

const wellFormed = (s: string): string =>
  s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

test('rendered exposition parses back to the same families, values and label values (seed 14)', () => {
  const next = prng(14);
  for (let iter = 0; iter < budget(400); iter++) {
    const fams: MetricFamily[] = [];
    const nf = 1 + intBelow(next, 4);
    for (let f = 0; f < nf; f++) {
      const samples = [];
      for (let s = 0, ns = intBelow(next, 4); s < ns; s++) {
        const labels: Record<string, string> = {};
        for (let l = 0, nl = intBelow(next, 4); l < nl; l++)
          labels[`l${l}_${intBelow(next, 3)}`] = randomString(next, 20);
        const pick = intBelow(next, 6);
        const value = [NaN, Infinity, -Infinity, 0][pick] ?? (pick === 4 ? intBelow(next, 1e9) : next() * 1e6 - 5e5);
        samples.push({ labels, value });
      }
      fams.push({ name: `m${f}_x:y`, help: randomString(next, 30), type: f % 2 ? 'gauge' : 'counter', samples });
    }
    const text = renderExposition(fams);
    // Valid UTF-8 throughout: encoding and decoding changes nothing.
    assert.equal(Buffer.from(text, 'utf8').toString('utf8'), text);
    const lines = text.split('\n');
    assert.equal(lines.pop(), '');
    let li = 0;
    for (const f of fams) {
      const help = lines[li++]!;
      assert.ok(help.startsWith(`# HELP ${f.name} `));
      const unescaped = help
        .slice(`# HELP ${f.name} `.length)
        .replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      assert.equal(unescaped, wellFormed(f.help));
      assert.equal(lines[li++], `# TYPE ${f.name} ${f.type}`);
      for (const s of f.samples) {
        const p = parseSample(lines[li++]!);
        assert.equal(p.name, f.name);
        assert.deepEqual(
          p.labels,
          Object.entries(s.labels ?? {}).map(([k, v]) => [k, wellFormed(v)]),
        );
        const v = s.value;
        assert.equal(p.value, Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));
        if (Number.isFinite(v)) assert.equal(Number(p.value), v);
      }
    }
    assert.equal(li, lines.length, 'nothing but the families');
  }
});

test('listen parser: any input gives an address or a reason, never a throw; addresses round-trip (seed 15)', () => {
  const next = prng(15);
  const pieces = ['127.0.0.1', '[::1]', '::1', ':', '9464', '0', '65536', '[', ']', 'localhost', '1.2.3', ' ', '99999'];
  for (let i = 0; i < budget(3000); i++) {
    let s = '';
    for (let k = 0, n = intBelow(next, 4); k < n; k++)
      s += intBelow(next, 4) ? pieces[intBelow(next, pieces.length)] : randomString(next, 3);
    const r = parseListen(s);
    if (typeof r === 'string') continue;
    assert.ok(r.port >= 0 && r.port <= 65535, s);
    const again = parseListen(r.host.includes(':') ? `[${r.host}]:${r.port}` : `${r.host}:${r.port}`);
    assert.deepEqual(again, r, s);
  }
  assert.deepEqual(parseListen('9464'), { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseListen('[::1]:9'), { host: '::1', port: 9 });
  assert.equal(typeof parseListen('localhost:9464'), 'string');
  assert.equal(typeof parseListen('1.2.3:9464'), 'string');
  assert.equal(typeof parseListen('127.0.0.1:65536'), 'string');
});
