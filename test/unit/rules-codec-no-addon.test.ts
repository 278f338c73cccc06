// The rules codec without the compiled addon: contid fields encode and decode through an injected packer (issue 12).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { decodeRule, encodeRule } from '../../src/rules';
import { Field } from '../../src/kernel/constants';
import { tsContidPacker } from '../helpers/contid-packer';
import type { Rule } from '../../src/rules/types';

const RULE: Rule = {
  flags: 4,
  action: 2,
  mask: new Uint32Array(64).fill(0xffffffff),
  fields: [
    { field: Field.arch, op: 0x40000000, value: 0xc000003e },
    { field: Field.contid, op: 0x40000000, value: 8, u64: 0x1234567890abcdefn },
  ],
} as unknown as Rule;

it('the injected packer gives the addon bytes, and the codec never loads the addon with it', () => {
  // Same bytes as the addon (the packing the kernel reads stays the addon's).
  assert.deepEqual(encodeRule(RULE, tsContidPacker), encodeRule(RULE));
  // A process where the addon is not built (`bindings` cannot find it): encode and decode a contid rule there.
  const dist = join(__dirname, '..', '..');
  const script = `
    const Module = require('node:module');
    const load = Module._load;
    Module._load = function (req, ...rest) {
      if (req === 'bindings') return () => { throw new Error('no addon in this process'); };
      return load.call(this, req, ...rest);
    };
    const { encodeRule, decodeRule } = require(${JSON.stringify(join(dist, 'src', 'rules'))});
    const { tsContidPacker } = require(${JSON.stringify(join(dist, 'test', 'helpers', 'contid-packer'))});
    const rule = { flags: 4, action: 2, mask: new Uint32Array(64), fields: [{ field: ${Field.contid}, op: 0x40000000, value: 8, u64: 5n }] };
    const back = decodeRule(encodeRule(rule, tsContidPacker), tsContidPacker);
    process.stdout.write(String(back.fields[0].u64));
    try { encodeRule(rule); } catch (e) { process.stdout.write(' default:' + e.message); }
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(
    r.stdout,
    '5 default:no addon in this process',
    'the default packer is the addon, the injected one is not',
  );
  assert.equal(decodeRule(encodeRule(RULE, tsContidPacker), tsContidPacker).fields[1]?.u64, 0x1234567890abcdefn);
});
