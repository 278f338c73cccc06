// msgtypes: the 3.0.9 table, UNKNOWN[n] fallback and the contid name helper.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  allMsgTypes,
  isKnownMsgType,
  msgTypeByName,
  msgTypeName,
  writerTypeName,
  CONTAINER_ID_NAME,
} from '../../src/vocab/msgtypes';

test('known names round-trip', () => {
  for (const [n, name] of allMsgTypes()) {
    assert.equal(msgTypeName(n), name);
    assert.equal(msgTypeByName(name), n);
  }
  assert.equal(allMsgTypes().length, 195);
});

test('spot values from libaudit 3.0.9', () => {
  assert.equal(msgTypeName(1300), 'SYSCALL');
  assert.equal(msgTypeName(1320), 'EOE');
  assert.equal(msgTypeName(1327), 'PROCTITLE');
  assert.equal(msgTypeName(1336), 'URINGOP');
  assert.equal(msgTypeName(1200), 'DAEMON_START');
  assert.equal(msgTypeName(2000), 'KERNEL');
});

test('unknown numbers print UNKNOWN[n] like auditd', () => {
  assert.equal(msgTypeName(1204), 'UNKNOWN[1204]');
  assert.equal(msgTypeName(1329), 'UNKNOWN[1329]');
  assert.equal(msgTypeName(9999), 'UNKNOWN[9999]');
  assert.equal(msgTypeName(-3), 'UNKNOWN[-3]');
  assert.equal(isKnownMsgType(1204), false);
  assert.equal(msgTypeByName('UNKNOWN[1204]'), 1204);
  assert.equal(msgTypeByName('NOPE'), undefined);
});

test('contid kernels name 1336 CONTAINER_ID', () => {
  assert.equal(writerTypeName(1336, true), CONTAINER_ID_NAME);
  assert.equal(writerTypeName(1336, false), 'URINGOP');
  assert.equal(writerTypeName(1300, true), 'SYSCALL');
  assert.equal(msgTypeByName('CONTAINER_ID'), 1336);
});
