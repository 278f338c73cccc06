// search -i interprets the fields the log writer enriches by the same rules and texts (vocab/interpret.ts): arch names
// as ausearch prints them, saddr left alone where auparse leaves it, and ids, syscalls, arches equal to ENRICHED's.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Interpreter } from '../../src/search';
import { parseRecordLine } from '../../src/search/format';
import { LineFormatter } from '../../src/output/format';
import { IdNameCache } from '../../src/vocab/accounts';
import { parseRecord } from '../../src/records/record';
import { recordTypeNumber } from '../../src/vocab/msgtypes';
import { prng, intBelow } from '../helpers/prng';

const dir = mkdtempSync(join(tmpdir(), 'amsearch-interp-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nal ice:x:1000:1000::/home/a:/bin/sh\n');
writeFileSync(join(dir, 'group'), 'root:x:0:\nstaff:x:50:\n');
const ids = (): IdNameCache => new IdNameCache(join(dir, 'passwd'), join(dir, 'group'));

/** search -i's value of each field of a RAW line. */
function searchFields(line: string): Map<string, string | null> {
  const rec = parseRecordLine(Buffer.from(line, 'latin1'))!;
  return new Map(new Interpreter(ids()).fields(rec));
}

/** The writer's ENRICHED pairs of the same line, values decoded (`"root"` and hex as their text). */
function enrichedFields(line: string): Map<string, string> {
  const m = /^type=(\S+) msg=(.*)$/.exec(line)!;
  const type = recordTypeNumber(m[1]!)!;
  const out = new LineFormatter({ format: 'ENRICHED', ids: ids() }).formatRecord(
    parseRecord(type, Buffer.from(m[2]!, 'latin1')),
  );
  const sep = out.indexOf('\x1d');
  const pairs = new Map<string, string>();
  if (sep < 0) return pairs;
  for (const p of out.slice(sep + 1).match(/[A-Z_-]+=(?:\{[^}]*\}|"[^"]*"|\S+)/g) ?? []) {
    const eq = p.indexOf('=');
    let v = p.slice(eq + 1);
    if (v.startsWith('"')) v = v.slice(1, -1);
    else if (
      /^(?:[0-9A-F]{2})+$/.test(v) &&
      /^(UID|GID|AUID|EUID|SUID|FSUID|EGID|SGID|FSGID|OUID|OGID)$/.test(p.slice(0, eq))
    )
      v = Buffer.from(v, 'hex').toString('latin1');
    pairs.set(p.slice(0, eq).toLowerCase(), v);
  }
  return pairs;
}

describe('search -i and the ENRICHED writer share their interpreters', () => {
  it('arch 0x40000028 is armeb, as ausearch -i prints it (search said arm)', () => {
    const f = searchFields('type=SYSCALL msg=audit(1.000:1): arch=40000028 syscall=3 success=yes exit=0 uid=0');
    assert.equal(f.get('arch'), 'armeb');
    assert.equal(searchFields('type=SYSCALL msg=audit(1.000:1): arch=80000015 syscall=3').get('arch'), 'ppc64');
  });
  it('saddr: interpreted in SOCKADDR records, left as written in AVC and NETFILTER_PKT, as the writer does', () => {
    const unix = '01002F746D702F73';
    assert.equal(
      searchFields(`type=SOCKADDR msg=audit(1.000:1): saddr=${unix}`).get('saddr'),
      '{ saddr_fam=local path=/tmp/s }',
    );
    const avc = `type=AVC msg=audit(1.000:1): avc:  denied  { connectto } for  pid=1 saddr=${unix} scontext=a`;
    assert.equal(searchFields(avc).get('saddr'), unix);
    assert.equal(enrichedFields(avc).has('saddr'), false);
    const pkt = 'type=NETFILTER_PKT msg=audit(1.000:1): mark=0x1 saddr=0A000001 daddr=127.0.0.1 proto=1';
    assert.equal(searchFields(pkt).get('saddr'), '0A000001');
    assert.equal(enrichedFields(pkt).has('saddr'), false);
  });
  it('property (seed 0x5ea1): every field ENRICHED interprets reads the same in search -i', () => {
    const r = prng(0x5ea1);
    const pick = <T>(a: readonly T[]): T => a[intBelow(r, a.length)]!;
    const types = ['SYSCALL', 'SOCKADDR', 'AVC', 'USER_LOGIN', 'CONFIG_CHANGE', 'NETFILTER_PKT'];
    const values: Record<string, readonly string[]> = {
      arch: ['c000003e', '40000003', '40000028', 'c00000b7', 'deadbeef', 'zz'],
      syscall: ['0', '59', '257', '999', '-1', 'x'],
      uid: ['0', '1000', '4294967295', '-1', '77', 'abc'],
      gid: ['0', '50', '1000', '4294967295'],
      auid: ['0', '1000', '4294967295'],
      saddr: ['0200005000000000000000000000000000', '01002F746D702F73', '0A00', '10000000000000000000000000', 'XYZ'],
    };
    for (let i = 0; i < 500; i++) {
      const type = pick(types);
      const keys = Object.keys(values).filter(() => intBelow(r, 2) === 1);
      const body = keys.map((k) => `${k}=${pick(values[k]!)}`).join(' ');
      const line = `type=${type} msg=audit(1.000:${i}): pid=1 ${body}`;
      const s = searchFields(line);
      for (const [k, v] of enrichedFields(line)) assert.equal(s.get(k), v, `${line}: ${k}`);
    }
  });
});
