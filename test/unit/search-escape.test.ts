// search -i and report print log text escaped (ausearch --escape modes), so a logged value cannot drive the terminal.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runReport, runSearch } from '../../src/search';
import { escapeFor } from '../../src/search/escape';
import { prng, intBelow } from '../helpers/prng';

const dir = mkdtempSync(join(tmpdir(), 'amsearch-esc-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex').toUpperCase();
/** An executable name a process can give itself: clears the screen, then prints a fake record on a new line. */
const EVIL_EXE =
  '/tmp/\x1b[2J\x1b]0;owned\x07\nnode=dc01 type=USER_LOGIN msg=audit(1700000000.000:1): res=success $(id);';
const EVIL_KEY = '<script>alert(1)</script>\x1b[31m';
const SADDR = '0100' + hex('/tmp/s\nx');

const log =
  [
    `type=SYSCALL msg=audit(1700000000.123:7): arch=c000003e syscall=42 success=no exit=-2 a0=3 a1=7ffd a2=6e a3=0 items=0 ppid=1 pid=4242 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="x" exe=${hex(EVIL_EXE)} subj=unconfined key=${hex(EVIL_KEY)}`,
    `type=SOCKADDR msg=audit(1700000000.123:7): saddr=${SADDR}`,
    `type=DAEMON_ERR msg=audit(1700000001.000:8): op=refused reason=${hex('/srv/t/c.rules:2: -e is host-wide\x1b[2J')} daemon=c pid=1 uid=0 res=failed`,
  ].join('\n') + '\n';
const file = join(dir, 'audit.log');
writeFileSync(file, log);

function capture(): {
  out: string[];
  err: string[];
  io: { out(s: string): void; err(s: string): void };
  text(): string;
} {
  const c = {
    out: [] as string[],
    err: [] as string[],
    io: { out: (s: string) => void c.out.push(s), err: (s: string) => void c.err.push(s) },
    text: () => c.out.join(''),
  };
  return c;
}

describe('search and report escaping', () => {
  it('search -i: no control character reaches the terminal; decoded values show \\ooo as ausearch -i', async () => {
    const c = capture();
    assert.equal(await runSearch(['-if', file, '-i'], c.io), 0);
    const t = c.text();
    assert.doesNotMatch(t, /[\x00-\x09\x0b-\x1f\x7f]/, JSON.stringify(t));
    for (const l of t.split('\n'))
      assert.ok(l === '' || l === '----' || l.startsWith('type='), `every line is a record: ${JSON.stringify(l)}`);
    assert.ok(t.includes('exe=/tmp/\\033[2J\\033]0;owned\\007\\012node=dc01 type=USER_LOGIN'), t);
    assert.ok(t.includes('saddr={ saddr_fam=local path=/tmp/s\\012x }'), t);
    assert.ok(
      t.includes('reason=/srv/t/c.rules:2: -e is host-wide\\033[2J'),
      'refusal reasons are decoded for reading',
    );
  });

  it('--escape raw|shell|shell_quote as ausearch; a bad mode is a usage error', async () => {
    const raw = capture();
    assert.equal(await runSearch(['-if', file, '-i', '--escape', 'raw'], raw.io), 0);
    assert.ok(raw.text().includes(EVIL_EXE));
    const sh = capture();
    assert.equal(await runSearch(['-if', file, '-i', '--escape', 'shell'], sh.io), 0);
    assert.ok(sh.text().includes('res=success\\ \\$\\(id\\);'), sh.text());
    const q = capture();
    assert.equal(await runSearch(['-if', file, '-i', '--escape', 'shell_quote'], q.io), 0);
    assert.ok(q.text().includes('res=success\\ \\$\\(id\\)\\;'), q.text());
    const bad = capture();
    assert.equal(await runSearch(['-if', file, '--escape', 'html'], bad.io), 2);
  });

  it('report: text escaped for the terminal, HTML escaped for the page', async () => {
    const t = capture();
    assert.equal(await runReport(['-if', file], t.io), 0);
    assert.doesNotMatch(t.text(), /[\x00-\x09\x0b-\x1f\x7f]/, JSON.stringify(t.text()));
    assert.ok(t.text().includes('\\033[2J'), t.text());
    const h = capture();
    assert.equal(await runReport(['-if', file, '--html'], h.io), 0);
    const page = h.text();
    assert.doesNotMatch(page, /<script/i);
    assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt;\\033[31m'), 'the key, escaped');
    assert.doesNotMatch(page, /[\x00-\x09\x0b-\x1f\x7f]/);
  });

  it('escapeFor tty: fixed-seed property, no C0/DEL/C1 left and printable text unchanged', () => {
    const r = prng(4242);
    for (let n = 0; n < 20000; n++) {
      let s = '';
      const len = intBelow(r, 30);
      for (let i = 0; i < len; i++)
        s += String.fromCharCode(
          r() < 0.3 ? intBelow(r, 0xa0) : r() < 0.5 ? 0x20 + intBelow(r, 95) : intBelow(r, 0x3000),
        );
      const e = escapeFor(s, 'tty');
      assert.doesNotMatch(e, /[\x00-\x1f\x7f-\x9f]/);
      if (!/[\x00-\x1f\x7f-\x9f]/.test(s)) assert.equal(e, s);
      for (const m of ['shell', 'shell_quote'] as const) assert.doesNotMatch(escapeFor(s, m), /[\x00-\x1f\x7f-\x9f]/);
    }
  });
});
