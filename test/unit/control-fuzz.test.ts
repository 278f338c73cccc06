// Fuzz: the control socket's JSON-lines request parser and the server itself, on seeded random and mutated input.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlServer, controlRequest, parseRequest, DEFAULT_CONTROL_LIMITS } from '../../src/daemon/control';
import { prng, intBelow } from '../helpers/prng';
import { budget, FUZZ_BUDGET } from '../helpers/fuzz';

const SEED = Number(process.env.AUDITMUX_FUZZ_SEED ?? 0xc0de);

const VALID = [
  { id: 1, cmd: 'status' },
  {
    id: 'x',
    cmd: 'aux-add',
    args: { name: 't1', rules: '/etc/auditmux/t1.rules', contid: ['100', '200^*'], queue: 1000 },
  },
  { cmd: 'contid-set', args: { pid: 1234, contid: '18446744073709551614', nested: true } },
  { id: null, cmd: 'route-test', args: { contid: '4,^2,^1', types: ['SYSCALL'], keys: ['k'] } },
  { id: [1, { a: 2 }], cmd: 'reload', args: {} },
];
const TOKENS = [
  '{',
  '}',
  '[',
  ']',
  ':',
  ',',
  '"',
  '\\',
  '\\u0000',
  '\\ud800',
  'null',
  'true',
  '1e999',
  '-0',
  '"cmd"',
  '"args"',
  '"id"',
  '"__proto__"',
  '"constructor"',
  '\u00e9',
  '\ud83d\ude00',
  '\x00',
  '\r',
  ' ',
  '0x10',
  'NaN',
  '"' + 'a'.repeat(300) + '"',
];

function mutate(text: string, r: () => number): string {
  let t = text;
  for (let n = 1 + intBelow(r, 4); n > 0; n--) {
    const at = intBelow(r, t.length + 1);
    switch (intBelow(r, 4)) {
      case 0:
        t = t.slice(0, at) + t.slice(at + 1 + intBelow(r, 6));
        break;
      case 1:
        t = t.slice(0, at) + TOKENS[intBelow(r, TOKENS.length)] + t.slice(at);
        break;
      case 2:
        t = t.slice(0, at) + String.fromCharCode(intBelow(r, 0x300)) + t.slice(at);
        break;
      default:
        t = t.slice(0, at) + t.slice(at, at + intBelow(r, 20)).repeat(1 + intBelow(r, 3)) + t.slice(at);
    }
  }
  return t.replace(/\n/g, ' ');
}

/** The oracle: what the protocol says a line means, written independently of parseRequest. */
function expected(line: string): 'ok' | 'bad' {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'bad';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'bad';
  const o = v as Record<string, unknown>;
  if (typeof o.cmd !== 'string') return 'bad';
  if (o.args !== undefined && (typeof o.args !== 'object' || o.args === null || Array.isArray(o.args))) return 'bad';
  return 'ok';
}

describe(`control request fuzz (seed ${SEED}, budget x${FUZZ_BUDGET}; AUDITMUX_FUZZ_SEED / AUDITMUX_FUZZ_BUDGET)`, () => {
  it('parseRequest never throws and agrees with the protocol on mutated and random lines', () => {
    const r = prng(SEED);
    const tally = { ok: 0, bad: 0 };
    for (let i = 0; i < budget(20000); i++) {
      const line =
        intBelow(r, 5) === 0
          ? Array.from({ length: intBelow(r, 30) }, () => TOKENS[intBelow(r, TOKENS.length)]).join('')
          : mutate(JSON.stringify(VALID[intBelow(r, VALID.length)]), r);
      let p;
      try {
        p = parseRequest(line);
      } catch (e) {
        assert.fail(`#${i} ${JSON.stringify(line)} threw ${(e as Error).stack}`);
      }
      const want = expected(line);
      assert.equal(p.ok ? 'ok' : 'bad', want, `#${i} ${JSON.stringify(line)}`);
      if (p.ok) {
        assert.equal(typeof p.cmd, 'string');
        assert.ok(typeof p.args === 'object' && p.args !== null && !Array.isArray(p.args));
      } else {
        assert.equal(p.error.code, 'E_USAGE');
        // The answer is always serializable: the id echoed back cannot break the reply line.
        assert.doesNotThrow(() => JSON.stringify({ id: p.id, ok: false, error: p.error }));
      }
      tally[want]++;
    }
    assert.ok(tally.ok > budget(2000) && tally.bad > budget(2000), JSON.stringify(tally));
  });

  it('the server answers or closes every random stream, stays bounded, and keeps serving', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amctlfuzz-'));
    const path = join(dir, 'control.sock');
    let handled = 0;
    const server = new ControlServer(
      path,
      async (cmd, args) => {
        handled++;
        if (cmd === 'throw') throw new Error('handler failed');
        return { cmd, n: Object.keys(args).length };
      },
      process.getuid!(),
      { maxConnections: 8, maxRequestBytes: 4096, idleMs: 2000 },
    );
    await server.listen();
    const r = prng(SEED + 1);
    try {
      for (let c = 0; c < budget(60); c++) {
        // A stream of lines: valid, mutated, thrown-by-handler, oversized, and a random tail without a newline.
        const lines: string[] = [];
        for (let j = intBelow(r, 20); j >= 0; j--) {
          const k = intBelow(r, 10);
          if (k < 4) lines.push(JSON.stringify(VALID[intBelow(r, VALID.length)]));
          else if (k < 8) lines.push(mutate(JSON.stringify(VALID[intBelow(r, VALID.length)]), r));
          else if (k < 9) lines.push(JSON.stringify({ id: j, cmd: 'throw' }));
          else lines.push('x'.repeat(4096 + intBelow(r, 3)));
        }
        const tail = intBelow(r, 3) === 0 ? mutate('{"cmd":"status"', r) : '';
        const stream = Buffer.from(lines.join('\n') + '\n' + tail);
        const answers = await new Promise<string>((resolve, reject) => {
          const s = createConnection(path);
          let out = '';
          s.setEncoding('utf8');
          s.on('data', (d: string) => (out += d));
          s.on('error', () => undefined);
          s.on('close', () => resolve(out));
          s.on('connect', async () => {
            // Random chunking, including splits inside multi-byte characters.
            for (let off = 0; off < stream.length;) {
              const n = 1 + intBelow(r, 700);
              s.write(stream.subarray(off, off + n));
              off += n;
              if (intBelow(r, 4) === 0) await new Promise((t) => setImmediate(t));
            }
            s.end();
          });
          setTimeout(() => reject(new Error(`connection #${c} never finished`)), 20_000).unref();
        });
        const replies = answers.split('\n').filter((l) => l !== '');
        const firstOversize = lines.findIndex((l) => Buffer.byteLength(l) > 4096);
        const expectedReplies = firstOversize < 0 ? lines.length : firstOversize + 1;
        assert.equal(
          replies.length,
          expectedReplies,
          `#${c}: ${replies.length} replies for ${lines.length} lines: ${JSON.stringify(lines.map((l) => l.slice(0, 80)))} -> ${answers.slice(0, 500)}`,
        );
        for (const [i, l] of replies.entries()) {
          const a = JSON.parse(l) as { ok: boolean; error?: { code: string } };
          assert.equal(typeof a.ok, 'boolean', l);
          if (i < lines.length && i !== firstOversize)
            assert.equal(
              a.ok,
              expected(lines[i]!) === 'ok' && !lines[i]!.includes('"throw"'),
              `#${c}.${i}: ${lines[i]} -> ${l}`,
            );
          else assert.match(l, /request too large/);
        }
      }
      assert.ok(handled > 0);
      const st = server.stats();
      assert.ok(st.maxQueuedBytes <= DEFAULT_CONTROL_LIMITS.maxQueuedBytes, JSON.stringify(st));
      assert.deepEqual(await controlRequest(path, 'status'), { cmd: 'status', n: 0 });
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
