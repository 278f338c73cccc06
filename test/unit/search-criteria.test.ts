// Unit tests for auditmux search: each criterion, time words, inputs (gzip, rotation order), output forms, malformed
// lines.
import assert from 'node:assert/strict';
import { chownSync, linkSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, describe, it } from 'node:test';
import { ExitCode } from '../../src/errors';
import { compileCriteria, parseTime, runReport, runSearch, type CriteriaSpec } from '../../src/search';
import { scanEvents, type SearchEvent } from '../../src/search/scan';
import { directoryInputs, inputFromPath } from '../../src/search/inputs';

const dir = mkdtempSync(join(tmpdir(), 'amsearch-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const LOG = [
  'type=CONTAINER_ID msg=audit(1700000000.100:10): record=1 contid=4,^2,^1',
  'type=SYSCALL msg=audit(1700000000.100:10): arch=c000003e syscall=257 success=no exit=-13 a0=ffffff9c a1=7ffd a2=0 a3=0 items=1 ppid=100 pid=200 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="cat" exe="/usr/bin/cat" key="k1" record=1',
  'type=CWD msg=audit(1700000000.100:10): cwd="/root"',
  'type=PROCTITLE msg=audit(1700000000.100:10): proctitle=636174002F6574632F736861646F77',
  'type=SYSCALL msg=audit(1700000001.200:11): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=100 pid=201 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="ls" exe=2F6F70742F6D79206170702F6C73 key=6B3101616D2D617578',
  'type=UNKNOWN[1336] msg=audit(1700000001.200:11): record=1 contid=7',
  'type=USER_LOGIN msg=audit(1700000002.300:12): pid=300 uid=0 auid=1000 ses=3 msg=\'op=login id=1000 exe="/usr/sbin/sshd" hostname=? addr=10.0.0.1 terminal=ssh res=failed\'',
  'type=CONFIG_CHANGE msg=audit(1700000003.000:13): auid=4294967295 ses=4294967295 op=add_rule key="k10" list=4 res=1',
  'type=CONTAINER_ID msg=audit(1700000004.000:14): record=1 contid=2,^1,3,^1',
  'type=NETFILTER_PKT msg=audit(1700000004.000:14): mark=0x1 saddr=127.0.0.1 daddr=127.0.0.1 proto=1 record=1',
  'type=CONTAINER_OP msg=audit(1700000005.000:15): op=set opid=42 contid=9 old-contid=-1',
  'type=SYSCALL msg=audit(1700000005.000:15): arch=c000003e syscall=1 success=yes exit=1 a0=3 a1=1 a2=1 a3=0 items=0 ppid=1 pid=41 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="runc" exe="/usr/bin/runc" key=(null)',
];
const logFile = join(dir, 'audit.log');
writeFileSync(logFile, LOG.join('\n') + '\n');

async function serials(spec: CriteriaSpec, file = logFile): Promise<number[]> {
  const out: number[] = [];
  await scanEvents(
    inputFromPath(file),
    compileCriteria(spec),
    (ev) => out.push(ev.serial),
    () => undefined,
  );
  return out;
}

function capture(): { io: { out(s: string): void; err(s: string): void }; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s) => out.push(s), err: (s) => err.push(s) }, out, err };
}

describe('search criteria', () => {
  it('no criteria: every event, whole, in log order', async () => {
    assert.deepEqual(await serials({}), [10, 11, 12, 13, 14, 15]);
  });
  it('-k matches part of a key, single or hex-joined; -w whole', async () => {
    assert.deepEqual(await serials({ key: 'k1' }), [10, 11, 13]);
    assert.deepEqual(await serials({ key: 'k1', word: true }), [10, 11]);
    assert.deepEqual(await serials({ key: 'am-aux' }), [11]);
    assert.deepEqual(await serials({ key: 'nope' }), []);
  });
  it('--contid: value, list, nested N^*, unset, netns lists, CONTAINER_OP, 1336 read as CONTAINER_ID', async () => {
    assert.deepEqual(await serials({ contid: '4' }), [10]);
    assert.deepEqual(await serials({ contid: '2' }), [14]);
    assert.deepEqual(await serials({ contid: '2^*' }), [10, 14]);
    assert.deepEqual(await serials({ contid: '1^*' }), [10, 14]);
    assert.deepEqual(await serials({ contid: '7,3' }), [11, 14]);
    assert.deepEqual(await serials({ contid: '9' }), [15]);
    // The CONTAINER_OP event is the setter's (runc has no contid): it names container 9 but is itself "unset".
    assert.deepEqual(await serials({ contid: 'unset' }), [12, 13, 15]);
    assert.deepEqual(await serials({ contid: 'unset,7' }), [11, 12, 13, 15]);
    assert.deepEqual(await serials({ contid: '5-8' }), [11]);
  });
  it('-m types, with names, numbers and ALL', async () => {
    assert.deepEqual(await serials({ message: 'USER_LOGIN' }), [12]);
    assert.deepEqual(await serials({ message: 'CONTAINER_ID' }), [10, 11, 14]);
    assert.deepEqual(await serials({ message: '1336' }), [10, 11, 14]);
    assert.deepEqual(await serials({ message: 'CWD,NETFILTER_PKT' }), [10, 14]);
    assert.equal((await serials({ message: 'ALL' })).length, 6);
  });
  it('-p, -pp, -ui, -ua, -ul (names too)', async () => {
    assert.deepEqual(await serials({ pid: '201' }), [11]);
    assert.deepEqual(await serials({ pid: '300' }), [12]);
    assert.deepEqual(await serials({ ppid: '100' }), [10, 11]);
    assert.deepEqual(await serials({ uid: '1000' }), [11]);
    assert.deepEqual(await serials({ uid: 'root' }), [10, 12, 15]);
    assert.deepEqual(await serials({ uidAll: '1000' }), [10, 11, 12]);
    assert.deepEqual(await serials({ auid: '1000' }), [10, 11, 12]);
    assert.deepEqual(await serials({ auid: 'unset' }), [13]);
  });
  it('-x decodes hex paths and matches a part; -sc names and numbers; -sv', async () => {
    assert.deepEqual(await serials({ exe: '/usr/bin/cat' }), [10]);
    assert.deepEqual(await serials({ exe: 'my app' }), [11]);
    assert.deepEqual(await serials({ exe: 'sshd' }), [12]);
    assert.deepEqual(await serials({ syscall: 'openat' }), [10]);
    assert.deepEqual(await serials({ syscall: '59,write' }), [11, 15]);
    assert.deepEqual(await serials({ success: 'no' }), [10, 12]);
    assert.deepEqual(await serials({ success: 'yes' }), [11, 13, 15]);
  });
  it('combined criteria are ANDed, each met by any record', async () => {
    assert.deepEqual(await serials({ key: 'k1', contid: '7' }), [11]);
    assert.deepEqual(await serials({ key: 'k1', success: 'no', contid: '2^*' }), [10]);
    assert.deepEqual(await serials({ key: 'k1', pid: '300' }), []);
  });
  it('--event serials and ranges; -ts/-te absolute times', async () => {
    assert.deepEqual(await serials({ event: '11,13-14' }), [11, 13, 14]);
    assert.deepEqual(await serials({ start: ['@1700000001.200'], end: ['@1700000003'] }), [11, 12, 13]);
  });
  it('bad criteria are usage errors with the reason', () => {
    assert.throws(() => compileCriteria({ contid: '-5' }), /unsigned/);
    assert.throws(() => compileCriteria({ contid: 'x^*' }), /not a contid selector/);
    assert.throws(() => compileCriteria({ message: 'SYSCAL' }), /not a record type/);
    assert.throws(() => compileCriteria({ syscall: 'opnat' }), /not a syscall/);
    assert.throws(() => compileCriteria({ success: 'maybe' }), /yes or no/);
    assert.throws(() => compileCriteria({ pid: 'abc' }), /not a number/);
    assert.throws(() => compileCriteria({ event: '5-3' }), /empty/);
    assert.throws(() => compileCriteria({ start: ['13/45/2024'] }), /not a calendar date/);
    assert.throws(() => compileCriteria({ start: ['soon'] }), /not a date/);
  });
});

describe('search time words', () => {
  const now = new Date(2025, 10, 27, 15, 30, 45); // a Thursday
  const t = (a: string[], w: 'start' | 'end' = 'start'): number => parseTime(a, w, now, () => 1_000_000);
  it('words', () => {
    assert.equal(t(['now']), now.getTime());
    assert.equal(t(['recent']), now.getTime() - 600_000);
    assert.equal(t(['boot']), 1_000_000);
    assert.equal(t(['today']), new Date(2025, 10, 27).getTime());
    assert.equal(t(['today'], 'end'), now.getTime());
    assert.equal(t(['yesterday']), new Date(2025, 10, 26).getTime());
    assert.equal(t(['this-week']), new Date(2025, 10, 23).getTime());
    assert.equal(t(['week-ago']), new Date(2025, 10, 20).getTime());
    assert.equal(t(['this-month']), new Date(2025, 10, 1).getTime());
    assert.equal(t(['this-year']), new Date(2025, 0, 1).getTime());
  });
  it('dates and times as ausearch takes them', () => {
    assert.equal(t(['11/20/2025', '10:00:00']), new Date(2025, 10, 20, 10).getTime());
    assert.equal(t(['11/20/25']), new Date(2025, 10, 20).getTime());
    assert.equal(t(['2025-11-20', '10:00']), new Date(2025, 10, 20, 10).getTime());
    assert.equal(t(['10:00:00']), new Date(2025, 10, 27, 10).getTime());
    assert.equal(t(['10:00:00'], 'end'), new Date(2025, 10, 27, 10).getTime() + 999);
    assert.equal(t(['11/20/2025'], 'end'), new Date(2025, 10, 20, 23, 59, 59).getTime() + 999);
    assert.throws(() => t(['02/30/2025']), /calendar date/);
    assert.throws(() => t(['25:00']), /not a valid time|not a date/);
    assert.throws(() => t(['tomorrow']), /not a date/);
  });
});

describe('search inputs', () => {
  it('reads a rotated series oldest first, gzip included, grouping an event split by rotation', async () => {
    const d = mkdtempSync(join(dir, 'rot-'));
    const line = (sec: number, serial: number, extra = ''): string =>
      `type=SYSCALL msg=audit(${sec}.000:${serial}): arch=c000003e syscall=1 success=yes exit=1 pid=1 uid=0 key="r"${extra}`;
    writeFileSync(join(d, 'audit.log.3'), line(100, 1) + '\n');
    writeFileSync(join(d, 'audit.log.2.gz'), gzipSync(line(200, 2) + '\n'));
    writeFileSync(join(d, 'audit.log.1'), line(300, 3) + '\n' + line(400, 4) + '\n');
    writeFileSync(join(d, 'audit.log'), `type=PROCTITLE msg=audit(400.000:4): proctitle=6C73\n` + line(500, 5) + '\n');
    assert.deepEqual(
      directoryInputs(d).map((i) => i.path.slice(d.length + 1)),
      ['audit.log.3', 'audit.log.2.gz', 'audit.log.1', 'audit.log'],
    );
    const evs: SearchEvent[] = [];
    await scanEvents(
      inputFromPath(d),
      compileCriteria({ key: 'r' }),
      (e) => evs.push(e),
      () => undefined,
    );
    assert.deepEqual(
      evs.map((e) => e.serial),
      [1, 2, 3, 4, 5],
    );
    assert.equal(evs[3]!.lines.length, 2);
  });
  it('a corrupt gzip file is an IoError naming the file', async () => {
    const f = join(dir, 'bad.log.gz');
    writeFileSync(
      f,
      Buffer.concat([
        gzipSync('type=SYSCALL msg=audit(1.000:1): a=1\n'.repeat(1000)).subarray(0, 40),
        Buffer.from('garbage'),
      ]),
    );
    const c = capture();
    assert.equal(await runSearch(['-if', f, '--raw'], c.io), 8);
    assert.match(c.err.join(''), /bad\.log\.gz: cannot decompress/);
  });
  it('a missing log and an unknown daemon are clear errors', async () => {
    const c = capture();
    assert.equal(await runSearch(['-if', join(dir, 'nope.log')], c.io), 8);
    assert.match(c.err.join(''), /nope\.log: cannot read the log \(ENOENT\)/);
    const cfg = join(dir, 'am.yaml');
    writeFileSync(cfg, `version: 1\nhost:\n  log:\n    file: ${dir}/host/audit.log\n`);
    const c2 = capture();
    assert.equal(await runSearch(['--config', cfg, '--daemon', 'ghost'], c2.io), 2);
    assert.match(c2.err.join(''), /no such daemon .*known: host/);
  });
  it('--daemon host reads the configured log and its rotations', async () => {
    const cfg = join(dir, 'am2.yaml');
    const d = mkdtempSync(join(dir, 'cfg-'));
    writeFileSync(join(d, 'audit.log.1'), LOG.slice(0, 4).join('\n') + '\n');
    writeFileSync(join(d, 'audit.log'), LOG.slice(4).join('\n') + '\n');
    writeFileSync(cfg, `version: 1\nhost:\n  log:\n    file: ${d}/audit.log\n`);
    const c = capture();
    assert.equal(await runSearch(['--config', cfg, '--daemon', 'host', '-k', 'k1', '--format', 'json'], c.io), 0);
    assert.deepEqual(
      c.out
        .join('')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).serial),
      [10, 11, 13],
    );
  });
});

describe('search malformed input', () => {
  it('malformed lines are skipped with file:line, a truncated last line is not an error', async () => {
    const f = join(dir, 'mal.log');
    writeFileSync(
      f,
      [LOG[1], 'garbage here', 'type=SYSCALL msg=audit(abc:1): x=1', '', LOG[4]].join('\n') + '\ntype=SYSCALL msg=aud',
    );
    const c = capture();
    assert.equal(await runSearch(['-if', f, '--raw'], c.io), 0);
    const err = c.err.join('\n');
    assert.match(err, /mal\.log:2: no "type=" at the start of the line; line skipped/);
    assert.match(err, /mal\.log:3: malformed time stamp/);
    assert.match(err, /2 malformed line\(s\) skipped/);
    assert.doesNotMatch(err, /mal\.log:6/);
    assert.equal(c.out.join('').trim().split('\n').length, 2);
  });
  it('an unterminated last line that is a whole record is read', async () => {
    const f = join(dir, 'tail.log');
    writeFileSync(f, LOG[1]);
    const c = capture();
    assert.equal(await runSearch(['-if', f, '--raw'], c.io), 0);
    assert.equal(c.out.join(''), LOG[1] + '\n');
  });
  it('a line longer than any record is skipped without growing memory', async () => {
    const f = join(dir, 'long.log');
    writeFileSync(f, LOG[1] + '\n' + 'x'.repeat(3 << 20) + '\n' + LOG[4] + '\n');
    const c = capture();
    assert.equal(await runSearch(['-if', f, '--raw'], c.io), 0);
    assert.match(c.err.join(''), /long\.log:2: line of \d+ bytes is longer than any audit record/);
    assert.equal(c.out.join('').trim().split('\n').length, 2);
  });
});

describe('search output forms', () => {
  it('--raw prints the lines exactly, ENRICHED separator included', async () => {
    const f = join(dir, 'enr.log');
    const l =
      'type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=0 success=yes exit=0 uid=0 key="e"\x1dARCH=x86_64 SYSCALL=read UID="root"';
    writeFileSync(f, l + '\n');
    const c = capture();
    assert.equal(await runSearch(['-if', f, '-k', 'e', '-r'], c.io), 0);
    assert.equal(c.out.join(''), l + '\n');
  });
  it('interpreted text: names, syscall, arch, errno, decoded proctitle and hex paths, every key', async () => {
    const c = capture();
    assert.equal(await runSearch(['-if', logFile, '-k', 'k1', '-i'], c.io), 0);
    const s = c.out.join('');
    assert.match(s, /^----\n/);
    assert.match(
      s,
      /type=SYSCALL msg=audit\(\d\d\/\d\d\/\d\d \d\d:\d\d:\d\d\.100:10\) : arch=x86_64 syscall=openat success=no exit=EACCES /,
    );
    assert.match(s, / uid=root /);
    assert.match(s, /proctitle=cat \/etc\/shadow/);
    assert.match(s, /exe=\/opt\/my app\/ls key=k1 key=am-aux/);
    assert.match(s, /type=CONTAINER_ID msg=audit\([^)]*:11\) : record=1 contid=7/);
  });
  it('JSON lines: one object per event, records as arrays of decoded fields, contid chains', async () => {
    const c = capture();
    assert.equal(await runSearch(['-if', logFile, '--format', 'json'], c.io), 0);
    const evs = c.out
      .join('')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(evs.length, 6);
    assert.deepEqual(evs[0].contid, ['4,^2,^1']);
    assert.equal(evs[0].time, '2023-11-14T22:13:20.100Z');
    assert.deepEqual(
      evs[0].records.map((r: { type: string }) => r.type),
      ['CONTAINER_ID', 'SYSCALL', 'CWD', 'PROCTITLE'],
    );
    assert.deepEqual(evs[0].records[3].fields, [['proctitle', 'cat /etc/shadow']]);
    const sys = evs[1].records[0].fields as Array<[string, string]>;
    assert.deepEqual(
      sys.filter(([k]) => k === 'key'),
      [
        ['key', 'k1'],
        ['key', 'am-aux'],
      ],
    );
    assert.deepEqual(
      sys.find(([k]) => k === 'exe'),
      ['exe', '/opt/my app/ls'],
    );
    assert.deepEqual(
      evs[2].records[0].fields.find(([k]: [string]) => k === 'terminal'),
      ['terminal', 'ssh'],
    );
  });
  it('no match: <no matches>, exit 1; usage errors exit 2', async () => {
    const c = capture();
    assert.equal(await runSearch(['-if', logFile, '-k', 'zzz'], c.io), 1);
    assert.match(c.err.join(''), /<no matches>/);
    const c2 = capture();
    assert.equal(await runSearch(['-if', logFile, '--bogus'], c2.io), 2);
    assert.match(c2.err.join(''), /unknown option --bogus/);
    const c3 = capture();
    assert.equal(await runSearch(['-if', logFile, '-k'], c3.io), 2);
    assert.match(c3.err.join(''), /-k needs a value/);
    const c4 = capture();
    assert.equal(await runSearch(['-if', logFile, '-ts', 'today', '-k', 'k1'], c4.io), 1);
  });
});

describe('report', () => {
  it('per container: events, keys, executables, failed syscalls, first and last seen', async () => {
    const c = capture();
    assert.equal(await runReport(['-if', logFile], c.io), 0);
    const s = c.out.join('');
    assert.match(s, /^auditmux report: 6 events, 5 containers/);
    assert.match(
      s,
      /container 4,\^2,\^1\n {2}events: 1\n {2}first seen: 2023-11-14T22:13:20.100Z\n {2}last seen: 2023-11-14T22:13:20.100Z\n {2}top keys: k1 \(1\)\n {2}top executables: \/usr\/bin\/cat \(1\)\n {2}failed syscalls: 1 \(openat 1\)/,
    );
    assert.match(s, /container unset\n {2}events: 3\n/);
    assert.match(s, /container 2,\^1\n {2}events: 1/);
  });
  it('HTML escapes what comes from the log', async () => {
    const f = join(dir, 'xss.log');
    writeFileSync(
      f,
      'type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=0 success=yes exit=0 exe="/tmp/<script>alert(1)</script>" key="<b>"\n',
    );
    const c = capture();
    assert.equal(await runReport(['-if', f, '--html'], c.io), 0);
    const html = c.out.join('');
    assert.doesNotMatch(html, /<script>|<b>/);
    assert.match(html, /&lt;script&gt;/);
  });
  it('-o never writes through a planted symlink or hard link, nor into a FIFO or a file another user owns', async () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious\n');
    const link = join(dir, 'report-link.txt');
    symlinkSync(victim, link);
    const hard = join(dir, 'report-hard.txt');
    linkSync(victim, hard);
    const fifo = join(dir, 'report-fifo');
    spawnSync('mkfifo', [fifo]);
    for (const [out, why] of [
      [link, /symbolic link/],
      [hard, /hard links/],
      [fifo, /not a regular file/],
    ] as const) {
      const c = capture();
      assert.equal(await runReport(['-if', logFile, '-o', out], c.io), ExitCode.IO, out);
      assert.match(c.err.join(''), why);
    }
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
    if (process.geteuid?.() === 0) {
      const other = join(dir, 'report-other.txt');
      writeFileSync(other, '');
      chownSync(other, 65534, 65534);
      const c = capture();
      assert.equal(await runReport(['-if', logFile, '-o', other], c.io), ExitCode.IO);
      assert.match(c.err.join(''), /owned by uid 65534/);
      assert.equal(readFileSync(other, 'utf8'), '');
    }
    const good = join(dir, 'report.txt');
    writeFileSync(good, 'x'.repeat(100000));
    const c = capture();
    assert.equal(await runReport(['-if', logFile, '-o', good], c.io), 0, c.err.join(''));
    assert.match(readFileSync(good, 'utf8'), /^auditmux report: 6 events/);
    assert.doesNotMatch(readFileSync(good, 'utf8'), /xxx/);
  });
});
