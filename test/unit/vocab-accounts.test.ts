// passwd and group through one bounded reader: a numeric user resolves the same for daemons, plugins and the config
// check; a FIFO as passwd never hangs the interpreters; listed logs are opened by safefs without leaking a descriptor.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lookupUser } from '../../src/daemon/users';
import { accountFiles, userIds } from '../../src/rules/accounts';
import { findUser, parseAccounts, AccountTable } from '../../src/vocab/accounts';
import { checkConfig } from '../../src/config';
import { readLines } from '../../src/search/inputs';
import { isolated, mkfifoSync } from '../helpers/isolated';
import { prng, intBelow } from '../helpers/prng';

const dir = mkdtempSync(join(tmpdir(), 'amaccounts-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const etc = join(dir, 'etc');
fs.mkdirSync(etc);
const PASSWD = [
  '# comment',
  '+nisuser::::::',
  'root:x:0:0:root:/root:/bin/sh',
  'svc:x:1000:1000::/var/lib/svc:/usr/sbin/nologin',
  'svc:x:1001:1001::/second:/bin/sh',
  '2000:x:3000:3000::/home/digits:/bin/sh',
  'nohome:x:1002:1002',
  'bad:x:12a:0::/:/bin/sh',
  '',
].join('\n');
writeFileSync(join(etc, 'passwd'), PASSWD);
writeFileSync(join(etc, 'group'), 'root:x:0:\nstaff:x:50:\n');

describe('one reader of passwd and group', () => {
  it('a numeric uid passwd does not list is an unknown user everywhere (no guessed gid = uid)', () => {
    assert.throws(() => lookupUser('42', { file: 'x', line: 1 }, etc), /unknown user "42"/);
    const saved = accountFiles.passwd;
    accountFiles.passwd = join(etc, 'passwd');
    try {
      assert.equal(userIds('42'), undefined);
      assert.deepEqual(userIds('1000'), { uid: 1000, gid: 1000 });
    } finally {
      accountFiles.passwd = saved;
    }
    assert.deepEqual(lookupUser('1000', { file: 'x', line: 1 }, etc), { uid: 1000, gid: 1000, home: '/var/lib/svc' });
  });
  it('names first, then a listed uid; the first entry wins; malformed and NIS lines are skipped', () => {
    const t = new AccountTable(parseAccounts(PASSWD, 'passwd'));
    assert.equal(findUser('svc', t)?.id, 1000);
    assert.equal(findUser('2000', t)?.id, 3000, 'a user named 2000');
    assert.equal(findUser('3000', t)?.name, '2000');
    assert.equal(findUser('bad', t), undefined);
    assert.equal(findUser('+nisuser', t), undefined);
    assert.equal(lookupUser('nohome', { file: 'x', line: 1 }, etc).home, '/');
  });
  it('property (seed 0xacc7): daemons (lookupUser) and plugins (userIds) resolve every user text alike', () => {
    const saved = accountFiles.passwd;
    accountFiles.passwd = join(etc, 'passwd');
    try {
      const r = prng(0xacc7);
      const words = [
        'root',
        'svc',
        '0',
        '1000',
        '1001',
        '42',
        '2000',
        '3000',
        'nohome',
        'bad',
        '12a',
        '',
        '-1',
        '01000',
      ];
      for (let i = 0; i < 200; i++) {
        const w = words[intBelow(r, words.length)]!;
        const p = userIds(w);
        let d: { uid: number; gid: number } | undefined;
        try {
          const u = lookupUser(w, { file: 'x', line: 1 }, etc);
          d = { uid: u.uid, gid: u.gid };
        } catch {
          d = undefined;
        }
        assert.deepEqual(d, p, w);
      }
    } finally {
      accountFiles.passwd = saved;
    }
  });
  it('auditmux check: a daemon user given as an unlisted uid is an error, as the daemon would refuse it', () => {
    const conf = join(dir, 'auditmux.yaml');
    writeFileSync(
      conf,
      'host:\n  rules: null\ndaemons:\n  - { name: t, user: "4242" }\n  - { name: u, user: "1000" }\n',
    );
    const r = checkConfig(conf, { etcDir: etc });
    const msgs = r.errors.map((e) => e.message).join('\n');
    assert.match(msgs, /no user named "4242"/);
    assert.doesNotMatch(msgs, /"1000"/);
  });
  it('an id past 32 bits, or (uid_t)-1, is no account: it would wrap to 0 in a rule (uid=evil became uid=0)', () => {
    const text =
      'evil:x:4294967296:0::/:/bin/sh\nnone:x:4294967295:0::/:/bin/sh\nok:x:4294967294:4294967294::/:/bin/sh\n';
    assert.deepEqual(
      parseAccounts(text, 'passwd').map((a) => a.name),
      ['ok'],
    );
    assert.deepEqual(
      parseAccounts('g:x:4294967296:\nh:x:7:\n', 'group').map((a) => a.name),
      ['h'],
    );
  });
  it('fuzz (seed 0x9a55): parseAccounts never throws and keeps only decimal ids', () => {
    const r = prng(0x9a55);
    const alphabet = 'ab0129:x#+-\n/ ';
    for (let i = 0; i < 2000; i++) {
      let s = '';
      for (let n = intBelow(r, 80); n > 0; n--) s += alphabet[intBelow(r, alphabet.length)];
      for (const kind of ['passwd', 'group'] as const) {
        for (const a of parseAccounts(s, kind)) {
          assert.ok(Number.isInteger(a.id) && a.id >= 0 && a.id <= 0xfffffffe && a.name !== '', s);
          if (kind === 'passwd') assert.ok(Number.isInteger(a.gid), s);
        }
      }
    }
  });
  it('the interpreters id cache reads passwd bounded: a FIFO makes names unknown instead of hanging', () => {
    const fifoDir = join(dir, 'fifo');
    fs.mkdirSync(fifoDir);
    mkfifoSync(join(fifoDir, 'passwd'));
    mkfifoSync(join(fifoDir, 'group'));
    const r = isolated(
      `const { IdNameCache } = require(SRC + '/vocab/accounts');
       const c = new IdNameCache(${JSON.stringify(join(fifoDir, 'passwd'))}, ${JSON.stringify(join(fifoDir, 'group'))});
       out({ u: c.user(0) ?? null, g: c.group(0) ?? null });`,
      10_000,
    );
    assert.equal(r.killed, false, 'reading a FIFO as passwd hung');
    assert.deepEqual(r.value, { u: null, g: null });
  });
});

const SINK = { line: (): void => undefined, overlong: (): void => undefined };

describe('listed logs are opened through safefs', () => {
  it('a failing fstat after open does not leak the descriptor', async () => {
    const log = join(dir, 'x.log');
    writeFileSync(log, 'type=SYSCALL msg=audit(1.000:1): a=1\n');
    const fds = (): number => readdirSync('/proc/self/fd').length;
    // The module object itself (an `import * as` namespace is read-only); safefs reads it at call time.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeFs = require('node:fs') as { fstatSync: unknown };
    const real = nodeFs.fstatSync;
    const before = fds();
    nodeFs.fstatSync = (): never => {
      throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
    };
    try {
      for (let i = 0; i < 5; i++) await assert.rejects(readLines({ path: log, gzip: false, listed: true }, SINK));
    } finally {
      nodeFs.fstatSync = real;
    }
    assert.equal(fds(), before, 'descriptors leaked');
  });
});
