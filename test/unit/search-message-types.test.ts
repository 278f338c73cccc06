// search -m reads record types with the one lookup `route test -m` and the config use: names in any case (as
// ausearch), numbers, UNKNOWN[n], CONTAINER_ID and CONTAINER_OP; an unknown name is a usage error that names it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { UsageError } from '../../src/errors';
import { compileCriteria, runSearch } from '../../src/search';
import { recordTypeNames, recordTypeNumber } from '../../src/vocab/msgtypes';
import { intBelow, prng } from '../helpers/prng';

const dir = mkdtempSync(join(tmpdir(), 'amsearch-m-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const log = join(dir, 'audit.log');
writeFileSync(
  log,
  [
    'type=SYSCALL msg=audit(1700000001.000:1): arch=c000003e syscall=59 success=yes exit=0 pid=1 uid=0 key="k"',
    'type=UNKNOWN[1999] msg=audit(1700000002.000:2): foo=1',
    'type=USER_LOGIN msg=audit(1700000003.000:3): pid=1 uid=0',
    'type=CONTAINER_OP msg=audit(1700000004.000:4): op=set opid=42 contid=9 old-contid=-1',
    'type=CONTAINER_ID msg=audit(1700000005.000:5): record=1 contid=7',
    'type=URINGOP msg=audit(1700000006.000:6): uring_op=1 success=yes exit=0',
  ].join('\n') + '\n',
);

async function serials(types: string): Promise<{ code: number; serials: number[]; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runSearch(['-if', log, '-m', types, '--format', 'json'], {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
  });
  const got = out
    .join('')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { serial: number }).serial);
  return { code, serials: got, err: err.join('') };
}

describe('search -m', () => {
  it('takes names in any case, as ausearch -m syscall does', async () => {
    for (const m of ['SYSCALL', 'syscall', 'Syscall', '1300'])
      assert.deepEqual((await serials(m)).serials, [1], `-m ${m}`);
    assert.deepEqual((await serials('user_login,SYSCALL')).serials, [1, 3]);
    assert.deepEqual((await serials('all')).serials, [1, 2, 3, 4, 5, 6]);
    assert.deepEqual((await serials('SYSCALL,')).serials, [1], 'an empty item is skipped, as ausearch does');
  });

  it('takes CONTAINER_OP and CONTAINER_ID, as route test -m does', async () => {
    for (const m of ['CONTAINER_OP', 'container_op', '1020'])
      assert.deepEqual((await serials(m)).serials, [4], `-m ${m}`);
    assert.deepEqual((await serials('container_id')).serials, [5]);
    assert.deepEqual((await serials('uringop')).serials, [6], 'the name tells URINGOP from CONTAINER_ID');
    assert.deepEqual((await serials('1336')).serials, [5, 6], 'the number is every record of type 1336');
  });

  it('takes numbers and UNKNOWN[n] for types libaudit has no name for', async () => {
    for (const m of ['1999', 'UNKNOWN[1999]', 'unknown[1999]'])
      assert.deepEqual((await serials(m)).serials, [2], `-m ${m}`);
  });

  it('refuses an unknown name with a usage error that names it', async () => {
    const r = await serials('SYSCALL,NOT_A_TYPE');
    assert.equal(r.code, 2);
    assert.match(r.err, /-m: "NOT_A_TYPE" is not a record type/);
    assert.throws(
      () => compileCriteria({ message: 'sycall' }),
      (e: unknown) =>
        e instanceof UsageError && e.code === 'E_USAGE' && /"sycall" is not a record type/.test(e.message),
    );
    for (const bad of ['0', '65536', 'UNKNOWN[0]', '__proto__', 'toString', ',', ' '])
      assert.throws(() => compileCriteria({ message: bad }), UsageError, JSON.stringify(bad));
    assert.throws(() => compileCriteria({ message: 'x\u001b[2J' }), /"x\\u001b\[2J"/, 'control bytes are escaped');
  });

  it('accepts exactly what recordTypeNumber accepts (property, seed 0x3e55)', () => {
    const next = prng(0x3e55);
    const names = recordTypeNames();
    const mutate = (s: string): string => {
      const i = intBelow(next, s.length + 1);
      const pick = '_AZaz09[]x'[intBelow(next, 10)]!;
      return intBelow(next, 2) ? s.slice(0, i) + pick + s.slice(i) : s.slice(0, i) + s.slice(i + 1);
    };
    for (let i = 0; i < 3000; i++) {
      let t = names[intBelow(next, names.length)]!;
      const r = intBelow(next, 5);
      if (r === 0) t = t.toLowerCase();
      else if (r === 1) t = mutate(t);
      else if (r === 2) t = String(intBelow(next, 70000));
      else if (r === 3) t = `UNKNOWN[${intBelow(next, 70000)}]`;
      const want = recordTypeNumber(t) !== undefined;
      let got = true;
      try {
        compileCriteria({ message: t });
      } catch (e) {
        assert.ok(e instanceof UsageError, String(e));
        got = false;
      }
      assert.equal(got, want, JSON.stringify(t));
    }
  });
});
