// splitFields: the fields of an audit line for the JSON encodings, read in one pass (a line of words is no longer
// scanned to its end from every word), with the same result as before on every line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitFields } from '../../src/output/event-json';
import { intBelow, prng } from '../helpers/prng';

/** splitFields as it was (one indexOf('=') from each word): the oracle of the fields it returns. */
function splitFieldsBefore(text: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && text[i] === ' ') i++;
    const eq = text.indexOf('=', i);
    if (eq < 0) break;
    const sp = text.indexOf(' ', i);
    if (sp >= 0 && sp < eq) {
      i = sp + 1;
      continue;
    }
    const key = text.slice(i, eq);
    let j = eq + 1;
    let value: string;
    const q = text[j];
    if (q === "'" && key === 'msg') {
      const close = text.lastIndexOf(q);
      value = text.slice(j + 1, close > j ? close : n);
      j = close > j ? close + 1 : n;
    } else if (q === '{') {
      const close = text.lastIndexOf(' }');
      value = text.slice(j, close >= j ? close + 2 : n);
      j = close >= j ? close + 2 : n;
    } else if (q === '"' || q === "'") {
      const close = text.indexOf(q, j + 1);
      const end = close < 0 ? n : close;
      value = text.slice(j + 1, end);
      j = close < 0 ? n : close + 1;
    } else {
      const e = text.indexOf(' ', j);
      const end = e < 0 ? n : e;
      value = text.slice(j, end);
      j = end;
    }
    if (!(key in out)) out[key] = value;
    i = j;
  }
  return out;
}

test('property (seed 0x5f1e): the fields of generated lines are what the previous splitFields read', () => {
  const next = prng(0x5f1e);
  const parts = [
    ' ',
    ' ',
    '  ',
    '=',
    'a',
    'k',
    'msg',
    'uid',
    '0',
    'x y',
    "'",
    '"',
    '{',
    ' }',
    '}',
    '\x1d',
    'é',
    '==',
    "msg='",
  ];
  for (let n = 0; n < 20000; n++) {
    let s = '';
    for (let k = intBelow(next, 40); k > 0; k--) s += parts[intBelow(next, parts.length)];
    assert.deepEqual({ ...splitFields(s) }, { ...splitFieldsBefore(s) }, JSON.stringify(s));
  }
  const line = 'type=USER_LOGIN msg=audit(1.001:2): pid=1 uid=0 msg=\'op=login acct="x y" res=success\'\x1dUID="root"';
  assert.deepEqual({ ...splitFields(line) }, { ...splitFieldsBefore(line) });
});

test("a line of thousands of words without '=' is read in one pass (characters examined, counted)", () => {
  const proto = String.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const saved = { indexOf: proto.indexOf!, lastIndexOf: proto.lastIndexOf!, charCodeAt: proto.charCodeAt! };
  let examined = 0;
  proto.indexOf = function (this: string, ...a: unknown[]): number {
    const from = Math.max(0, Number(a[1] ?? 0));
    const r = saved.indexOf.apply(this, a) as number;
    examined += (r < 0 ? this.length : r + 1) - from;
    return r;
  };
  proto.lastIndexOf = function (this: string, ...a: unknown[]): number {
    const r = saved.lastIndexOf.apply(this, a) as number;
    examined += this.length - Math.max(r, 0);
    return r;
  };
  proto.charCodeAt = function (this: string, ...a: unknown[]): number {
    examined++;
    return saved.charCodeAt.apply(this, a) as number;
  };
  const s = 'x '.repeat(4400) + 'a=1';
  let fields: Record<string, string>;
  try {
    fields = splitFields(s);
  } finally {
    Object.assign(proto, saved);
  }
  assert.deepEqual({ ...fields }, { a: '1' });
  assert.ok(examined <= 4 * s.length, `${examined} characters examined for a line of ${s.length}`);
});
