// log.format: json: one JSON object per whole event and line, the nats output's json payload for the same event;
// untrusted bytes never end a line early; rotation and lost-record accounting as for auditd-format logs; search and
// report refuse a JSON log by name.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogWriter } from '../../src/output/logfile';
import { LineFormatter } from '../../src/output/format';
import { IdNameCache } from '../../src/vocab/accounts';
import { encodeBody } from '../../src/output/nats/payload';
import { defaultNode, messageId, readBootId } from '../../src/output/nats/subject';
import { MsgType } from '../../src/kernel/constants';
import { compileCriteria, inputFromPath, scanEvents } from '../../src/search';
import { LogFormatError } from '../../src/errors';
import type { EventRecord } from '../../src/records/event';

import { prng, intBelow } from '../helpers/prng';
import { budget } from '../helpers/fuzz';

const CLI = join(__dirname, '..', '..', '..', 'bin', 'auditmux');
const rec = (type: number, body: string | Buffer, serial = 42): EventRecord => ({
  type,
  payload: Buffer.concat([Buffer.from(`audit(1700000000.123:${serial}): `), Buffer.from(body)]),
});
const SYSCALL =
  'arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=2 auid=0 uid=0 gid=0 ' +
  'euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm="sh" exe="/bin/sh" key="k"';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'amjsonlog-'));
}

function jsonWriter(dir: string, more: Partial<ConstructorParameters<typeof LogWriter>[0]> = {}): LogWriter {
  const w = new LogWriter({ path: join(dir, 'audit.log'), format: 'JSON', flush: 'none', ...more });
  w.open();
  return w;
}

/** The file's lines, each parsed: a line that is not one JSON object fails the test. */
function objects(file: string): Record<string, unknown>[] {
  const text = readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'));
  return text
    .slice(0, -1)
    .split('\n')
    .map((l, i) => {
      const o = JSON.parse(l) as unknown;
      assert.ok(o && typeof o === 'object' && !Array.isArray(o), `line ${i + 1}`);
      return o as Record<string, unknown>;
    });
}

describe('log.format: json', () => {
  it('one object per event: records with fields and interpreted values, contid at the top, EOE skipped', () => {
    const dir = tmp();
    try {
      // The contid patch set's kernel: 1336 is CONTAINER_ID (libaudit 3.0.9 calls it URINGOP).
      const w = jsonWriter(dir, { node: 'n1', daemon: 'tenant-a', contidKernel: true });
      w.writeEvent([
        rec(MsgType.SYSCALL, SYSCALL),
        rec(1336, 'record=1 contid=100'),
        rec(MsgType.PROCTITLE, 'proctitle=7368'),
        rec(MsgType.EOE, ''),
      ]);
      w.writeDaemonRecord(MsgType.DAEMON_START, 'op=start ver=1 format=json res=success');
      w.close();
      const [ev, start, ...rest] = objects(join(dir, 'audit.log'));
      assert.equal(rest.length, 0);
      assert.equal(ev!.v, 1);
      assert.equal(ev!.node, 'n1');
      assert.equal(ev!.daemon, 'tenant-a');
      assert.equal(ev!.contid, '100');
      assert.equal(ev!.time, '1700000000.123');
      assert.equal(ev!.serial, '42');
      assert.equal(ev!.id, messageId('n1', readBootId(), '1700000000.123', '42', 0, 'tenant-a'));
      const records = ev!.records as {
        type: string;
        line: string;
        fields: Record<string, string>;
        interpreted?: Record<string, string>;
      }[];
      assert.deepEqual(
        records.map((r) => r.type),
        ['SYSCALL', 'CONTAINER_ID', 'PROCTITLE'],
      );
      assert.equal(records[0]!.fields.comm, 'sh');
      assert.equal(records[0]!.fields.syscall, '59');
      assert.equal(records[0]!.interpreted!.SYSCALL, 'execve');
      assert.equal(records[0]!.interpreted!.ARCH, 'x86_64');
      assert.match(records[0]!.line, /^node=n1 type=SYSCALL msg=audit\(1700000000\.123:42\): arch=c000003e /);
      assert.equal((start!.records as { type: string }[])[0]!.type, 'DAEMON_START');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("is byte for byte the nats output's json payload of the same event (ENRICHED lines)", () => {
    const dir = tmp();
    try {
      const w = jsonWriter(dir);
      const event = [rec(MsgType.SYSCALL, SYSCALL), rec(1302, 'item=0 name="/etc/passwd" inode=1 nametype=NORMAL')];
      w.writeEvent(event);
      w.close();
      const f = new LineFormatter({ format: 'ENRICHED', contidKernel: false, ids: new IdNameCache() });
      const lines = event.map((r) => f.formatRecord(r));
      const node = defaultNode(undefined);
      const id = messageId(node, readBootId(), '1700000000.123', '42', 0, 'host');
      const nats = encodeBody('json', id, node, 'host', lines);
      assert.equal(readFileSync(join(dir, 'audit.log'), 'utf8'), nats.toString('utf8') + '\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('newlines, quotes, backslashes, 0x1d and invalid UTF-8 in comm and path cannot forge a second line', () => {
    const dir = tmp();
    try {
      const w = jsonWriter(dir);
      const evil = Buffer.concat([
        Buffer.from('"x\n{"v":1,"id":"forged"}\r\n\\"'),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x80, 0xa8, 0xed, 0xa0, 0x80, 0x1d, 0x00, 0x7f]),
        Buffer.from('"'),
      ]);
      const syscall = Buffer.concat([Buffer.from(SYSCALL.replace('comm="sh" ', '')), Buffer.from(' comm='), evil]);
      const path = Buffer.concat([Buffer.from('item=0 name='), evil, Buffer.from(' nametype=NORMAL')]);
      w.writeEvent([rec(MsgType.SYSCALL, syscall), rec(1302, path)]);
      w.writeEvent([rec(MsgType.USER, Buffer.concat([Buffer.from("pid=1 uid=0 msg='"), evil, Buffer.from("'")]), 43)]);
      w.close();
      const text = readFileSync(join(dir, 'audit.log'));
      assert.equal(text.toString('utf8'), new TextDecoder('utf-8', { fatal: true }).decode(text), 'valid UTF-8');
      const objs = objects(join(dir, 'audit.log'));
      assert.equal(objs.length, 2, 'two events, two lines');
      assert.deepEqual(
        objs.map((o) => o.serial),
        ['42', '43'],
      );
      for (const o of objs) assert.notEqual(o.id, 'forged');
      // What the line holds is the record's auditd line, byte for byte as latin1.
      const f = new LineFormatter({ format: 'ENRICHED', contidKernel: false, ids: new IdNameCache() });
      const first = (objs[0]!.records as { line: string }[])[1]!.line;
      assert.equal(first, f.formatRecord(rec(1302, path)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a socket path or a user message's own text adds no field: SADDR={ ... } and msg='...' are one value each", () => {
    const dir = tmp();
    try {
      const w = jsonWriter(dir);
      // connect() to an AF_UNIX path any process can choose; the kernel logs it hex-encoded, auditd interprets it.
      const path = '/tmp/x AUID="root" UID="root" } ARCH=y';
      const saddr = Buffer.concat([Buffer.from([1, 0]), Buffer.from(path), Buffer.from([0])]).toString('hex');
      w.writeEvent([rec(MsgType.SYSCALL, SYSCALL), rec(MsgType.SOCKADDR, `saddr=${saddr.toUpperCase()}`)]);
      // A user message (CAP_AUDIT_WRITE) whose text closes the quote and goes on.
      w.writeEvent([rec(MsgType.USER, "pid=1 uid=0 auid=0 ses=1 msg='op=x' res=success acct='", 43)]);
      w.close();
      const [ev, user] = objects(join(dir, 'audit.log')) as {
        records: { type: string; fields: Record<string, string>; interpreted?: Record<string, string> }[];
      }[];
      const sock = ev!.records[1]!;
      assert.equal(sock.type, 'SOCKADDR');
      assert.deepEqual(sock.interpreted, { SADDR: `{ saddr_fam=local path=${path} }` });
      const u = user!.records[0]!;
      assert.deepEqual(Object.keys(u.fields), ['pid', 'uid', 'auid', 'ses', 'msg']);
      assert.equal(u.fields.msg, "op=x' res=success acct=");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it(`property (seed 0x150e): random bytes in events give one valid object per event, every record kept`, () => {
    const dir = tmp();
    const next = prng(0x150e);
    const n = budget(300);
    const sizes: number[] = [];
    try {
      const w = jsonWriter(dir, { bufferBytes: 64 * 1024 });
      for (let i = 0; i < n; i++) {
        const k = 1 + intBelow(next, 5);
        const recs: EventRecord[] = [];
        for (let j = 0; j < k; j++) {
          const body = Buffer.alloc(intBelow(next, 300));
          for (let b = 0; b < body.length; b++) body[b] = intBelow(next, 256);
          // Any type but EOE (1320), which no log writes.
          recs.push(rec(j === 0 ? MsgType.SYSCALL : 1321 + intBelow(next, 40), body, 1000 + i));
        }
        sizes.push(k);
        w.writeEvent(recs);
      }
      w.close();
      const objs = objects(join(dir, 'audit.log'));
      assert.equal(objs.length, n);
      objs.forEach((o, i) => {
        assert.equal(o.serial, String(1000 + i));
        assert.equal((o.records as unknown[]).length, sizes[i]);
      });
      assert.equal(
        w.counters.records,
        sizes.reduce((a, b) => a + b, 0),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an event larger than the buffer is written whole on its own line', () => {
    const dir = tmp();
    try {
      const w = jsonWriter(dir, { bufferBytes: 1 });
      const recs: EventRecord[] = [rec(MsgType.SYSCALL, SYSCALL)];
      for (let i = 0; i < 400; i++) recs.push(rec(1302, `item=${i} name="/${'p'.repeat(200)}" nametype=NORMAL`));
      w.writeEvent([rec(MsgType.SYSCALL, SYSCALL, 1)]);
      w.writeEvent(recs);
      w.writeEvent([rec(MsgType.SYSCALL, SYSCALL, 3)]);
      w.close();
      const objs = objects(join(dir, 'audit.log'));
      assert.deepEqual(
        objs.map((o) => [o.serial, (o.records as unknown[]).length]),
        [
          ['1', 1],
          ['42', 401],
          ['3', 1],
        ],
      );
      assert.ok(readFileSync(join(dir, 'audit.log')).length > 4 * 8970, "larger than the writer's minimum buffer");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rotates by size like any log: every file holds whole objects; suspended, whole events are counted lost', () => {
    const dir = tmp();
    try {
      const w = jsonWriter(dir, { maxLogFileMiB: 1, numLogs: 3, maxLogFileAction: 'rotate' });
      const big = `item=0 name="/${'q'.repeat(3000)}" nametype=NORMAL`;
      for (let i = 0; i < 800; i++) w.writeEvent([rec(MsgType.SYSCALL, SYSCALL, i), rec(1302, big, i)]);
      w.flush();
      assert.ok(w.counters.rotations >= 1, 'rotated');
      w.suspend();
      assert.equal(w.writeEvent([rec(MsgType.SYSCALL, SYSCALL, 9999), rec(1302, big, 9999)]), false);
      assert.equal(w.counters.lost, 2);
      w.close();
      const files = readdirSync(dir).filter((f) => f.startsWith('audit.log'));
      assert.ok(files.length >= 2);
      const serials = files.flatMap((f) => objects(join(dir, f)).map((o) => Number(o.serial)));
      const kept = new Set(serials);
      assert.equal(kept.size, serials.length, 'no event twice');
      // The oldest may have been rotated away (num_logs 3); whatever is kept is whole and the newest is there.
      assert.ok(kept.has(799));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a forwarded line (aggregator peer) is an event of one record', () => {
    const dir = tmp();
    try {
      const w = jsonWriter(dir);
      w.writeLine(Buffer.from('node=peer type=USER msg=audit(1700000001.000:7): pid=1 msg=\'hi "there"\'\n'));
      w.close();
      const [o] = objects(join(dir, 'audit.log'));
      assert.equal(o!.serial, '7');
      assert.equal(
        (o!.records as { line: string }[])[0]!.line,
        'node=peer type=USER msg=audit(1700000001.000:7): pid=1 msg=\'hi "there"\'',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('search and report on a JSON log', () => {
  it('stop at the first JSON line with file:line, as a library and on the command line', async () => {
    const dir = tmp();
    try {
      const w = jsonWriter(dir);
      w.writeEvent([rec(MsgType.SYSCALL, SYSCALL)]);
      w.close();
      const file = join(dir, 'audit.log');
      await assert.rejects(
        scanEvents(
          inputFromPath(file),
          compileCriteria({}),
          () => undefined,
          () => undefined,
        ),
        (e: unknown) => e instanceof LogFormatError && e.code === 'E_LOG_FORMAT' && e.message.startsWith(`${file}:1: `),
      );
      for (const cmd of [
        ['search', '-if', file],
        ['report', '-if', file],
      ]) {
        const r = spawnSync(process.execPath, [CLI, ...cmd], { encoding: 'utf8' });
        assert.equal(r.status, 2, `${cmd[0]}: ${r.stderr}`);
        assert.match(
          r.stderr,
          new RegExp(`${file.replace(/[/.]/g, '\\$&')}:1: this is a JSON log \\(log\\.format: json\\)`),
        );
        assert.equal(r.stdout, '');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
