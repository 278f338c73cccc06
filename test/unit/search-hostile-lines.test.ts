// Search and report over lines a peer wrote (an aggregator's host log): raw output byte for byte, no terminal control
// made of a stored byte, times past any Date skipped as malformed, report lists whose entries cannot be forged.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runReport, runSearch, type SearchIo } from '../../src/search';

const dir = mkdtempSync(join(tmpdir(), 'amsearch-hostile-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function capture(): { io: SearchIo; text: () => string; bytes: () => Buffer; err: () => string } {
  let text = '';
  let err = '';
  const bytes: Buffer[] = [];
  return {
    io: { out: (s) => void (text += s), err: (s) => void (err += s), outBytes: (b) => void bytes.push(b) },
    text: () => text,
    bytes: () => Buffer.concat(bytes),
    err: () => err,
  };
}

const SYS = (serial: number, key: string, sec = 1700000000): string =>
  `type=SYSCALL msg=audit(${sec}.000:${serial}): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=0 ppid=1 pid=7 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="x" exe="/usr/bin/x" key=${key}`;

describe('search and report over hostile lines', () => {
  it('--raw writes each line as its stored bytes: 0x9B stays one byte, never the UTF-8 of C1 CSI', async () => {
    const f = join(dir, 'raw.log');
    const line = Buffer.concat([
      Buffer.from("type=USER msg=audit(1700000000.000:1): pid=1 uid=0 auid=0 ses=1 msg='text=", 'latin1'),
      Buffer.from([0x9b, 0x32, 0x4a, 0xc3, 0xa9]),
      Buffer.from("'\n", 'latin1'),
    ]);
    writeFileSync(f, line);
    const c = capture();
    assert.equal(await runSearch(['-if', f, '--raw'], c.io), 0);
    assert.deepEqual(c.bytes(), line);
    assert.equal(c.text(), '');
  });

  it('a time past any Date (more than 12 digits of seconds) is a malformed line, not a failed report', async () => {
    const f = join(dir, 'time.log');
    writeFileSync(f, [SYS(1, '"k"', 99999999999999), SYS(2, '"k"')].join('\n') + '\n');
    const c = capture();
    assert.equal(await runReport(['-if', f], c.io), 0);
    assert.match(c.text(), /events: 1\n/);
    const j = capture();
    assert.equal(await runSearch(['-if', f, '--format', 'json'], j.io), 0);
    assert.equal(j.text().trim().split('\n').length, 1);
  });

  it('a key made to look like two report entries stays one, quoted: no forged count', async () => {
    const f = join(dir, 'keys.log');
    const forged = 'a (99999), sshd';
    writeFileSync(f, SYS(1, Buffer.from(forged).toString('hex').toUpperCase()) + '\n');
    const c = capture();
    assert.equal(await runReport(['-if', f], c.io), 0);
    assert.match(c.text(), /top keys: "a \(99999\), sshd" \(1\)\n/);
    const h = capture();
    assert.equal(await runReport(['-if', f, '--format', 'html'], h.io), 0);
    assert.match(h.text(), /<td class="keys">"a \(99999\), sshd" \(1\)<\/td>/);
  });

  it('a JSON-looking line in the middle of a log is one malformed line, not the end of the search', async () => {
    const f = join(dir, 'mid.log');
    writeFileSync(f, [SYS(1, '"k"'), '{"v":1,"id":"x"}', SYS(2, '"k"', 1700000010)].join('\n') + '\n');
    const c = capture();
    assert.equal(await runSearch(['-if', f, '-k', 'k', '--format', 'json'], c.io), 0);
    assert.equal(c.text().trim().split('\n').length, 2);
    assert.match(c.err(), /mid\.log:2: a JSON log line in an auditd-format log; line skipped/);
  });

  it('JSON output escapes the C1 controls a decoded value holds', async () => {
    const f = join(dir, 'c1.log');
    // A key in hex, as the kernel writes an untrusted one: its byte 0x9B decodes to U+009B, CSI to some terminals.
    writeFileSync(f, SYS(1, Buffer.from('k\u009b2J').toString('hex').toUpperCase()) + '\n');
    const c = capture();
    assert.equal(await runSearch(['-if', f, '--format', 'json'], c.io), 0);
    assert.doesNotMatch(c.text(), /[\u007f-\u009f]/);
    assert.match(c.text(), /\\u009b2J/);
    assert.ok(JSON.stringify(JSON.parse(c.text())).includes('\u009b2J'), 'the same value once parsed');
  });

  it("a peer's line dated far ahead does not split a local event: criteria over all its records still match", async () => {
    const f = join(dir, 'split.log');
    writeFileSync(
      f,
      [
        SYS(1, '"k"').replace(' key=', ' record=1 key='),
        "node=peer type=USER msg=audit(999999999999.000:1): pid=1 uid=0 auid=0 ses=1 msg='x'",
        'type=CONTAINER_ID msg=audit(1700000000.000:1): record=1 contid=5',
      ].join('\n') + '\n',
    );
    const c = capture();
    assert.equal(await runSearch(['-if', f, '--contid', '5', '-k', 'k', '--format', 'json'], c.io), 0);
    assert.equal(JSON.parse(c.text()).serial, 1);
    const u = capture();
    assert.equal(await runSearch(['-if', f, '--contid', 'unset', '-k', 'k'], u.io), 1, 'the event has a contid');
  });
});
