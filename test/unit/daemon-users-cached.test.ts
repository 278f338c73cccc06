// An auxiliary daemon's `user:` and a log's `log_group:` are resolved from passwd and group read once, and again
// only when the file changed: not a synchronous read and parse of the whole file (up to 64 MiB) at every start.
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as safefs from '../../src/safefs';
import { lookupGroup, lookupUser } from '../../src/daemon/users';

test('lookupUser and lookupGroup read each file once while it is unchanged, again once it changed', () => {
  const etc = mkdtempSync(join(tmpdir(), 'am-users-'));
  writeFileSync(join(etc, 'passwd'), 'root:x:0:0::/root:/bin/sh\nsvc:x:1000:1000::/var/lib/svc:/bin/sh\n');
  writeFileSync(join(etc, 'group'), 'root:x:0:\nadm:x:4:\n');
  const reads = mock.method(safefs, 'readBounded');
  try {
    const pos = { file: 'x', line: 1 };
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(lookupUser('svc', pos, etc), { uid: 1000, gid: 1000, home: '/var/lib/svc' });
      assert.equal(lookupGroup('adm', pos, etc), 4);
    }
    assert.equal(reads.mock.callCount(), 2, 'passwd and group, once each for 20 daemon starts');
    appendFileSync(join(etc, 'passwd'), 'bob:x:1001:1001::/home/bob:/bin/sh\n');
    assert.equal(lookupUser('bob', pos, etc).uid, 1001, 'a changed passwd is read again');
    assert.equal(reads.mock.callCount(), 3);
  } finally {
    reads.mock.restore();
  }
});
