// A process daemon's writer formats an EVENT frame's records where they lie: the same log, byte for byte, as decoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { decodeEvent, encodeEvent, type EventRecord } from '../../src/daemon/aux-ipc';
import { tmpDir } from '../helpers/peers';
import { openAuxWriter as writer } from '../helpers/aux-writer';
import { intBelow, prng } from '../helpers/prng';

/** Records of one event: syscall-ish fields, newlines, 0x1D, NULs, EOE, odd types; seed-driven. */
function randomEvent(next: () => number, serial: number): EventRecord[] {
  const types = [1300, 1302, 1307, 1327, 1320, 1112, 1400, 1336, 2000];
  const n = 1 + intBelow(next, 5);
  const out: EventRecord[] = [];
  for (let i = 0; i < n; i++) {
    const type = i === n - 1 && intBelow(next, 3) === 0 ? 1320 : types[intBelow(next, types.length)]!;
    let body = `audit(1700000000.123:${serial}): `;
    const fields = intBelow(next, 8);
    for (let f = 0; f < fields; f++) {
      const pick = intBelow(next, 6);
      body +=
        pick === 0
          ? `uid=${intBelow(next, 70000)} `
          : pick === 1
            ? `syscall=${intBelow(next, 400)} `
            : pick === 2
              ? `msg='a\nb' `
              : pick === 3
                ? `x=\x1d${intBelow(next, 9)} `
                : pick === 4
                  ? `name="${'p'.repeat(intBelow(next, 300))}" `
                  : `arch=c000003e `;
    }
    out.push({ type, payload: Buffer.from(body, 'latin1') });
  }
  return out;
}

test('property (seed 0x51ab): writeFrame writes the log write(decodeEvent()) writes, RAW and ENRICHED', async () => {
  for (const format of ['RAW', 'ENRICHED']) {
    const dir = tmpDir('auxframe');
    const { w: a, file: fa } = writer(dir, 'a', format);
    const { w: b, file: fb } = writer(dir, 'b', format);
    const next = prng(0x51ab);
    for (let serial = 1; serial <= 2000; serial++) {
      const frame = encodeEvent(serial, randomEvent(next, serial)).subarray(5);
      assert.equal(a.writeFrame(frame), serial);
      b.write(decodeEvent(frame).records);
      if (serial % 97 === 0) {
        a.flush();
        b.flush();
      }
    }
    await a.close();
    await b.close();
    const got = fs.readFileSync(fa);
    assert.ok(got.length > 100_000, `${format}: ${got.length} bytes`);
    assert.ok(got.equals(fs.readFileSync(fb)), `${format}: the two logs differ`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a truncated frame throws what decodeEvent throws and writes none of its records', async () => {
  const dir = tmpDir('auxframe');
  const { w: a, file } = writer(dir, 'a', 'RAW');
  const whole = encodeEvent(7, [
    { type: 1300, payload: Buffer.from('audit(1.000:7): first') },
    { type: 1327, payload: Buffer.from('audit(1.000:7): proctitle=6C73') },
  ]).subarray(5);
  for (let cut = 0; cut < whole.length; cut++) {
    const part = whole.subarray(0, cut);
    let expected = '';
    try {
      decodeEvent(part);
    } catch (e) {
      expected = (e as Error).message;
    }
    // Every cut loses at least the end of the last record, except none (checked below).
    assert.notEqual(expected, '', `cut ${cut}`);
    assert.throws(() => a.writeFrame(part), { message: expected });
  }
  await a.close();
  assert.equal(fs.readFileSync(file, 'utf8'), '');
  fs.rmSync(dir, { recursive: true, force: true });
});
