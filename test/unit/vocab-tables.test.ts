// The generated vocabulary (record types, arches, errnos) against this machine's kernel and errno headers, and the one
// lookup per vocabulary that the config, the control socket, the writer, search and rules share.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { evaluate, HEADERS, readDefines } from '../../scripts/c-defines';
import { MACHINE_SPELLINGS, MACHINE_TABLE, MSGTYPE_TABLE } from '../../src/vocab/tables';
import { ERRNO_TABLE } from '../../src/errno-table';
import { archName, elfToMachine, Machine, MACHINE_NAMES, machineToElf } from '../../src/vocab/arch';
import { errnoName, ERRNOS } from '../../src/vocab/errno';
import { msgTypeByName, recordTypeNames, recordTypeNumber } from '../../src/vocab/msgtypes';
import { RECORD_TYPES } from '../../src/config/record-types';
import pino from 'pino';
import { HostDaemon } from '../../src/daemon/host';
import { prng, intBelow } from '../helpers/prng';

const haveHeaders = existsSync(HEADERS.audit) && existsSync(HEADERS.elfEm) && HEADERS.errno.every((p) => existsSync(p));

describe('generated tables match the headers of this machine', { skip: !haveHeaders && 'no linux headers' }, () => {
  it('record types: every name audit.h defines has the number libaudit gives it', () => {
    const defs = readDefines([HEADERS.elfEm, HEADERS.audit]);
    let checked = 0;
    for (const [n, name] of MSGTYPE_TABLE) {
      const h = defs.get(`AUDIT_${name}`);
      if (h === undefined) continue;
      assert.equal(h, n, name);
      checked++;
    }
    assert.ok(checked > 60, `only ${checked} names found in ${HEADERS.audit}`);
    assert.equal(defs.get('AUDIT_SYSCALL'), 1300);
  });
  it('arches: every machine is an AUDIT_ARCH_* value (0x40000028 is AUDIT_ARCH_ARM, which libaudit calls armeb)', () => {
    const defs = readDefines([HEADERS.elfEm, HEADERS.audit]);
    const values = new Map<number, string>();
    for (const [k, v] of defs) if (k.startsWith('AUDIT_ARCH_')) values.set(v, k);
    for (const [, name, elf] of MACHINE_TABLE) assert.ok(values.has(elf), `${name} 0x${elf.toString(16)}`);
    assert.equal(defs.get('AUDIT_ARCH_X86_64'), 0xc000003e);
    assert.equal(defs.get('AUDIT_ARCH_ARM'), 0x40000028);
  });
  it('errnos: names and numbers as errno.h, aliases included', () => {
    const defs = readDefines(HEADERS.errno);
    for (const [n, name] of ERRNO_TABLE) assert.equal(defs.get(name), n, name);
    assert.equal(ERRNOS.num('EWOULDBLOCK'), 11);
    assert.equal(errnoName(11), 'EAGAIN');
  });
});

describe('one table per vocabulary', () => {
  it('arch names are what ausearch -i prints: 0x40000028 is armeb', () => {
    assert.equal(archName(0x40000028), 'armeb');
    assert.equal(archName(0xc000003e), 'x86_64');
    assert.equal(archName(0x12345), undefined);
    for (const [m, name, elf] of MACHINE_TABLE) {
      assert.equal(machineToElf(m), elf);
      assert.equal(elfToMachine(elf), m);
      assert.equal(MACHINE_NAMES.num(name), m);
    }
    for (const [m, spelling] of MACHINE_SPELLINGS) assert.equal(MACHINE_NAMES.num(spelling), m);
    assert.equal(Machine.X86_64, 1);
    assert.equal(MACHINE_NAMES.num('armv7l'), Machine.ARM);
  });
  it('record types: the config accepts exactly what route test accepts, CONTAINER_OP included', () => {
    assert.equal(recordTypeNumber('CONTAINER_OP'), 1020);
    assert.equal(recordTypeNumber('container_id'), 1336);
    assert.equal(recordTypeNumber('1300'), 1300);
    assert.equal(recordTypeNumber('UNKNOWN[1999]'), 1999);
    for (const bad of ['0', '65536', 'UNKNOWN[0]', 'NOPE', '', 'toString', '__proto__']) {
      assert.equal(recordTypeNumber(bad), undefined, bad);
    }
    for (const name of recordTypeNames()) assert.equal(RECORD_TYPES[name], recordTypeNumber(name), name);
    assert.equal(msgTypeByName('CONTAINER_OP'), 1020);
  });
  it('auditmux route test -m CONTAINER_OP is accepted, as `types: [CONTAINER_OP]` in the config', () => {
    const host = new HostDaemon({ configPath: null, diag: pino({ level: 'silent' }), noControl: true });
    assert.doesNotThrow(() => host.routeTest({ types: ['CONTAINER_OP'] }));
    assert.doesNotThrow(() => host.routeTest({ types: ['container_op', 'SYSCALL', '1300'] }));
    assert.throws(() => host.routeTest({ types: ['NOT_A_TYPE'] }), /unknown record type/);
    assert.throws(() => host.routeTest({ types: ['99999999'] }), /unknown record type/);
  });
});

describe('header #define reader', () => {
  it('evaluates or-ed, shifted and parenthesised constants; anything else is undefined', () => {
    const names = new Map([
      ['EM_ARM', 40],
      ['__AUDIT_ARCH_LE', 0x40000000],
      ['__AUDIT_ARCH_64BIT', 0x80000000],
    ]);
    assert.equal(evaluate('(EM_ARM|__AUDIT_ARCH_LE)', names), 0x40000028);
    assert.equal(evaluate('(EM_ARM|__AUDIT_ARCH_64BIT|__AUDIT_ARCH_LE)', names), 0xc0000028);
    assert.equal(evaluate('(1 << 4)', names), 16);
    assert.equal(evaluate('0x10U', names), 16);
    assert.equal(evaluate('"text"', names), undefined);
    assert.equal(evaluate('UNKNOWN_NAME', names), undefined);
    assert.equal(evaluate('(1', names), undefined);
  });
  it('property (seed 0x7ab1e): random or/plus expressions equal their value; mutated text never throws', () => {
    const r = prng(0x7ab1e);
    const names = new Map([['A', 3]]);
    for (let i = 0; i < 2000; i++) {
      let text = '';
      let v = 0;
      const terms = 1 + intBelow(r, 5);
      for (let t = 0; t < terms; t++) {
        const n = intBelow(r, 1 << 20);
        text += (t ? ' | ' : '') + (intBelow(r, 2) ? `0x${n.toString(16)}` : String(n));
        v = (v | n) >>> 0;
      }
      if (intBelow(r, 2)) text = `(${text})`;
      assert.equal(evaluate(text, names), v, text);
      const chars = [...text];
      chars.splice(intBelow(r, chars.length + 1), intBelow(r, 3), '()|+<A x"'[intBelow(r, 9)]!);
      evaluate(chars.join(''), names);
    }
  });
});
