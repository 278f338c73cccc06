// kernel/constants.ts sits below vocab/ and so cannot read the generated tables: this test ties its hand-written
// record types and arch values to them (and to this machine's audit.h when it is installed), so the two cannot drift.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { HEADERS, readDefines } from '../../scripts/c-defines';
import { AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, MsgType } from '../../src/kernel/constants';
import { MSGTYPE_TABLE } from '../../src/vocab/tables';
import { archName, Machine, machineToElf } from '../../src/vocab/arch';
import { recordTypeNumber } from '../../src/vocab/msgtypes';

const TABLE_NUMBER = new Map(MSGTYPE_TABLE.map(([n, name]) => [name, n]));
const TABLE_NAME = new Map(MSGTYPE_TABLE.map(([n, name]) => [n, name]));

/**
 * MsgType names libaudit's record-type table does not have, and why; every other name must be in the table with the
 * same number. The list may only shrink: a name libaudit gains is checked against its table from then on.
 */
const NOT_IN_LIBAUDIT: Readonly<Record<string, string>> = {
  GET: 'netlink request, never a record',
  SET: 'netlink request',
  SIGNAL_INFO: 'netlink request',
  ADD_RULE: 'netlink request',
  DEL_RULE: 'netlink request',
  LIST_RULES: 'netlink request',
  TRIM: 'netlink request',
  MAKE_EQUIV: 'netlink request',
  TTY_GET: 'netlink request',
  TTY_SET: 'netlink request',
  SET_FEATURE: 'netlink request',
  GET_FEATURE: 'netlink request',
  CONTAINER_OP: 'contid patch set, never merged',
  SIGNAL_INFO2: 'contid patch set request',
  SET_CAPCONTID: 'contid patch set request',
  DAEMON_RECONFIG: 'in libaudit.h but not in its name table',
  REPLACE: 'kernel-internal, not in libaudit',
  LAST_USER_MSG: 'range bound',
  LAST_USER_MSG2: 'range bound',
};

/** Range bounds whose number is the first type of the range, which the table names after that type. */
const RANGE_FIRST: Readonly<Record<string, string>> = {
  FIRST_USER_MSG: 'USER_AUTH',
  FIRST_AVC: 'AVC',
  FIRST_USER_MSG2: 'ANOM_LOGIN_FAILURES',
};

describe('kernel/constants.ts agrees with the generated vocabulary', () => {
  it('every MsgType name libaudit knows has libaudit number; the others are listed with a reason', () => {
    for (const [name, n] of Object.entries(MsgType)) {
      const first = RANGE_FIRST[name];
      if (first !== undefined) {
        assert.equal(TABLE_NAME.get(n), first, `${name} = ${n} starts its range at ${first}`);
        continue;
      }
      if (NOT_IN_LIBAUDIT[name] !== undefined) {
        assert.equal(TABLE_NUMBER.get(name), undefined, `${name} is in libaudit's table now: drop it from the list`);
        // A number libaudit gives to another record would make the writer and search name it wrongly.
        assert.equal(TABLE_NAME.get(n), undefined, `${name} = ${n} is ${TABLE_NAME.get(n)} in libaudit's table`);
        continue;
      }
      assert.equal(TABLE_NUMBER.get(name), n, `MsgType.${name}`);
      assert.equal(recordTypeNumber(name), n, `recordTypeNumber(${name})`);
    }
    for (const name of [...Object.keys(NOT_IN_LIBAUDIT), ...Object.keys(RANGE_FIRST)])
      assert.ok(name in MsgType, `${name} is listed but MsgType has no such entry`);
  });

  it('the arch constants are the generated AUDIT_ARCH_* values of x86_64 and i386', () => {
    assert.equal(AUDIT_ARCH_X86_64, machineToElf(Machine.X86_64));
    assert.equal(AUDIT_ARCH_I386, machineToElf(Machine.X86));
    assert.equal(archName(AUDIT_ARCH_X86_64), 'x86_64');
    assert.equal(archName(AUDIT_ARCH_I386), 'i386');
  });

  const haveHeader = existsSync(HEADERS.audit) && existsSync(HEADERS.elfEm);
  it('the names audit.h defines have its numbers', { skip: !haveHeader && 'no linux headers' }, () => {
    const defs = readDefines([HEADERS.elfEm, HEADERS.audit]);
    let checked = 0;
    for (const [name, n] of Object.entries(MsgType)) {
      const h = defs.get(`AUDIT_${name}`);
      if (h === undefined) continue;
      assert.equal(n, h, `MsgType.${name}`);
      checked++;
    }
    // Every request and most records: a header that defines none of them was not read.
    assert.ok(checked > 30, `only ${checked} MsgType names found in ${HEADERS.audit}`);
    assert.equal(defs.get('AUDIT_ARCH_X86_64'), AUDIT_ARCH_X86_64);
    assert.equal(defs.get('AUDIT_ARCH_I386'), AUDIT_ARCH_I386);
  });
});
