// OCI hook failures: the failing hook leaves a bounded line beside the control socket (daemon missing or silent), the
// host daemon counts it, logs a CONTAINER_OP record and takes the file; caps, links and the parser (seeded fuzz).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { hookFailuresNote, runOciHook } from '../../src/cli/oci-hook';
import {
  HOOK_DROP_MARKS_MAX,
  HOOK_FAILURES_FILE,
  HOOK_FAILURES_MAX,
  HOOK_FAILURES_TAKEN,
  HOOK_FAILURE_ID_MAX,
  HOOK_FAILURE_LINE_MAX,
  HOOK_FAILURE_REASON_MAX,
  appendHookFailure,
  collectHookFailures,
  formatHookFailure,
  parseHookFailure,
  parseHookFailures,
  type HookFailure,
} from '../../src/containers/hook-failures';
import { cutUtf8 } from '../../src/records/encode';
import { Containers } from '../../src/containers/service';
import { hostMetricFamilies } from '../../src/metrics/host';
import { ContidTracker } from '../../src/contid/tracker';
import { repoRoot, tempDir } from '../helpers/daemon';
import { intBelow, prng } from '../helpers/prng';
import { startEmulatedHost, until } from '../helpers/emulated-host';

const F: HookFailure = {
  time: 1764660000123,
  container: 'web',
  pid: 4242,
  phase: 'create',
  mode: 'open',
  code: 'E_NO_DAEMON',
  reason: 'control socket /run/auditmux/control.sock: ENOENT (is the auditmux daemon running?)',
};

const STATE = (id: string): string =>
  JSON.stringify({ ociVersion: '1.0.2', id, status: 'creating', pid: process.pid, bundle: '', annotations: {} });

function hook(
  socket: string,
  o: { failClosed?: boolean; timeoutMs?: number; deadline?: number; input?: string } = {},
): Promise<{ code: number; err: string }> {
  const stdin = new PassThrough();
  let err = '';
  const p = runOciHook({
    socket,
    timeoutMs: o.timeoutMs ?? 2000,
    ...(o.deadline !== undefined ? { deadline: o.deadline } : {}),
    failClosed: !!o.failClosed,
    stdin,
    err: (s) => (err += s + '\n'),
    out: () => undefined,
  });
  stdin.end(o.input ?? STATE('web'));
  return p.then((code) => ({ code, err }));
}

/** A control socket that accepts connections and never answers: a daemon stuck or overloaded. */
async function silentDaemon(path: string): Promise<{ server: Server; connections: () => number; close(): void }> {
  const socks: Socket[] = [];
  const server = createServer((s) => socks.push(s));
  await new Promise<void>((r) => server.listen(path, r));
  return {
    server,
    connections: () => socks.length,
    close: () => {
      for (const s of socks) s.destroy();
      server.close();
    },
  };
}

function lines(dir: string): string[] {
  const f = join(dir, HOOK_FAILURES_FILE);
  return existsSync(f) ? readFileSync(f, 'latin1').split('\n').filter(Boolean) : [];
}

describe('hook failures file', () => {
  it('a line per failure, every untrusted value encoded; parses back', () => {
    const evil = { ...F, container: 'a b\nc', reason: 'x\n type=SYSCALL msg=audit(1:2): "' };
    const l = formatHookFailure(evil);
    assert.equal(l.split('\n').length, 2, 'one line');
    assert.doesNotMatch(l.slice(0, -1), /\n/);
    assert.deepEqual(parseHookFailure(l.slice(0, -1)), evil);
    const unknown = { ...F, container: null, pid: -1, phase: 'unknown' as const, code: null };
    assert.deepEqual(parseHookFailure(formatHookFailure(unknown).slice(0, -1)), unknown);
    // Cut: a huge reason or ID does not make a huge line.
    assert.ok(formatHookFailure({ ...F, container: 'c'.repeat(5000), reason: 'r'.repeat(50000) }).length < 1024);
  });

  it('multibyte text is cut by its UTF-8 bytes: the line stays bounded and parses back', () => {
    // 300 x U+20AC: 900 UTF-8 bytes, which cut by UTF-16 units became 1800 hex digits and a line the reader refused.
    const euro = { ...F, reason: '\u20ac'.repeat(300), container: '\u20ac'.repeat(128) };
    const l = formatHookFailure(euro);
    assert.ok(l.length <= HOOK_FAILURE_LINE_MAX, `${l.length} bytes`);
    const back = parseHookFailure(l.slice(0, -1));
    assert.ok(back, 'the reader takes what the writer wrote');
    assert.equal(back.reason, '\u20ac'.repeat(99) + '...');
    assert.equal(back.container, '\u20ac'.repeat(41) + '...');
    assert.ok(Buffer.byteLength(back.reason) <= HOOK_FAILURE_REASON_MAX);
    assert.ok(Buffer.byteLength(back.container) <= HOOK_FAILURE_ID_MAX);
    // An astral character (4 bytes, a surrogate pair) is never split, nor is a 2-byte one.
    assert.equal(cutUtf8('a' + '\u{1F600}'.repeat(10), 12), 'a\u{1F600}\u{1F600}...');
    assert.equal(cutUtf8('\u00e9'.repeat(10), 10), '\u00e9\u00e9\u00e9...');
    assert.equal(cutUtf8('\u00e9'.repeat(5), 10), '\u00e9'.repeat(5), 'exactly at the cap: whole');
    // The daemon's side: a collected file of such lines gives failures, not malformed lines.
    const dir = tempDir('amhf-');
    try {
      appendHookFailure(join(dir, HOOK_FAILURES_FILE), euro);
      collectHookFailures(dir);
      const scan = collectHookFailures(dir);
      assert.deepEqual([scan.failures.length, scan.malformed], [1, 0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the longest line the writer can make fits the line bound and parses', () => {
    const worst: HookFailure = {
      time: 1e15 - 1,
      container: '\u0001'.repeat(5000),
      pid: 4194304,
      phase: 'poststop',
      mode: 'closed',
      code: 'E'.repeat(40),
      reason: '\u{10FFFF}'.repeat(5000),
    };
    const l = formatHookFailure(worst);
    assert.ok(l.length <= HOOK_FAILURE_LINE_MAX, `${l.length} bytes`);
    assert.ok(parseHookFailure(l.slice(0, -1)));
    // A time past the line's 15 digits is written as 0 rather than making a line the reader refuses.
    const late = parseHookFailure(formatHookFailure({ ...F, time: Number.MAX_SAFE_INTEGER }).slice(0, -1));
    assert.equal(late?.time, 0);
  });

  it('parser: seeded random and mutated input never throws; round trips hold', () => {
    const next = prng(0x4f0c1);
    // ASCII, 2- and 3-byte BMP text, astral pairs, and (for the bound only) lone surrogates.
    const text = (n: number, lone: boolean): string => {
      let s = '';
      for (let j = intBelow(next, n); j > 0; j--) {
        const k = intBelow(next, 8);
        if (k === 0) s += String.fromCharCode(intBelow(next, 0x3000));
        else if (k === 1) s += String.fromCodePoint(0x10000 + intBelow(next, 0x100000));
        else if (k === 2) s += String.fromCharCode(0x800 + intBelow(next, 0xd000 - 0x800));
        else if (k === 3 && lone) s += String.fromCharCode(0xd800 + intBelow(next, 0x800));
        else s += String.fromCharCode(32 + intBelow(next, 95));
      }
      return s;
    };
    // Lengths up to past the caps, so that max-length and cut values are common.
    const len = (): number => (intBelow(next, 3) === 0 ? 2000 : 400);
    for (let i = 0; i < 600; i++) {
      const lone = i % 5 === 4;
      const f: HookFailure = {
        time: intBelow(next, 2 ** 31) * 1000,
        container: intBelow(next, 4) ? text(len(), lone) || 'x' : null,
        pid: intBelow(next, 3) ? intBelow(next, 4194304) : -1,
        phase: (['create', 'poststop', 'unknown'] as const)[intBelow(next, 3)]!,
        mode: intBelow(next, 2) ? 'open' : 'closed',
        code: intBelow(next, 2) ? 'E_TIMEOUT' : null,
        reason: text(len(), lone) || 'r',
      };
      const l = formatHookFailure(f);
      assert.ok(l.length <= HOOK_FAILURE_LINE_MAX, `line of ${l.length} bytes`);
      const back = parseHookFailure(l.slice(0, -1));
      assert.ok(back, 'every line the writer makes is read');
      if (!lone)
        assert.deepEqual(back, {
          ...f,
          container: f.container === null ? null : cutUtf8(f.container, HOOK_FAILURE_ID_MAX),
          reason: cutUtf8(f.reason, HOOK_FAILURE_REASON_MAX),
        });
      assert.ok(back.container === null || Buffer.byteLength(back.container) <= HOOK_FAILURE_ID_MAX);
      assert.ok(Buffer.byteLength(back.reason) <= HOOK_FAILURE_REASON_MAX);
      const b = Buffer.from(l + '!\n' + l, 'latin1');
      for (let m = 0; m < 10; m++) {
        const c = Buffer.from(b);
        const at = intBelow(next, c.length);
        if (m % 3 === 0) c[at] = intBelow(next, 256);
        const s = (m % 3 === 1 ? c.subarray(0, at) : c).toString('latin1');
        const r = parseHookFailures(s);
        assert.ok(s === '' || r.failures.length + r.dropped + r.malformed >= 1);
        assert.ok(r.failures.length <= 2 && r.dropped <= 1);
      }
    }
  });

  it('append: written below the cap, then counted only, then refused; never past the read limit', () => {
    const dir = tempDir('amhf-');
    try {
      const f = join(dir, HOOK_FAILURES_FILE);
      assert.equal(appendHookFailure(f, F), 'written');
      assert.equal(statSync(f).mode & 0o777, 0o600);
      writeFileSync(f, Buffer.alloc(HOOK_FAILURES_MAX - 10, 0x41));
      assert.equal(appendHookFailure(f, F), 'dropped');
      assert.equal(readFileSync(f, 'latin1').slice(-2), '!\n');
      writeFileSync(f, Buffer.alloc(HOOK_FAILURES_MAX + HOOK_DROP_MARKS_MAX - 1, 0x41));
      assert.equal(appendHookFailure(f, F), 'full');
      assert.equal(statSync(f).size, HOOK_FAILURES_MAX + HOOK_DROP_MARKS_MAX - 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('append refuses a symlink, a hard link, a FIFO and a directory others can write in', () => {
    const dir = tempDir('amhf-');
    try {
      const f = join(dir, HOOK_FAILURES_FILE);
      writeFileSync(join(dir, 'victim'), 'keep\n');
      symlinkSync(join(dir, 'victim'), f);
      assert.throws(() => appendHookFailure(f, F), { code: 'E_SYMLINK' });
      rmSync(f);
      linkSync(join(dir, 'victim'), f);
      assert.throws(() => appendHookFailure(f, F), { code: 'E_HARDLINK' });
      assert.equal(readFileSync(join(dir, 'victim'), 'utf8'), 'keep\n');
      rmSync(f);
      execFileSync('mkfifo', [f]);
      assert.throws(() => appendHookFailure(f, F), { code: 'E_NOT_REGULAR' });
      rmSync(f);
      const open = join(dir, 'open');
      mkdirSync(open);
      chmodSync(open, 0o777);
      assert.throws(() => appendHookFailure(join(open, HOOK_FAILURES_FILE), F), { code: 'E_UNSAFE_DIR' });
      assert.throws(() => appendHookFailure(join(dir, 'missing', HOOK_FAILURES_FILE), F), /ENOENT/);
      assert.equal(existsSync(join(dir, 'missing')), false, 'the directory is never created');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('collect: takes the file at one call, reads and removes it at the next; a planted symlink is only removed', () => {
    const dir = tempDir('amhf-');
    try {
      const f = join(dir, HOOK_FAILURES_FILE);
      appendHookFailure(f, F);
      let s = collectHookFailures(dir);
      assert.equal(s.failures.length, 0);
      assert.equal(existsSync(f), false);
      // A hook that opened the file just before the rename writes into the taken one: still read.
      appendHookFailure(join(dir, HOOK_FAILURES_TAKEN), { ...F, container: 'late' });
      appendHookFailure(f, { ...F, container: 'next' });
      s = collectHookFailures(dir);
      assert.deepEqual(
        s.failures.map((x) => x.container),
        ['web', 'late'],
      );
      assert.deepEqual(s.problems, []);
      s = collectHookFailures(dir);
      assert.deepEqual(
        s.failures.map((x) => x.container),
        ['next'],
      );
      writeFileSync(join(dir, 'secret'), formatHookFailure(F));
      symlinkSync(join(dir, 'secret'), join(dir, HOOK_FAILURES_TAKEN));
      s = collectHookFailures(dir);
      assert.equal(s.failures.length, 0);
      assert.match(s.problems.join(), /symbolic link/);
      assert.equal(existsSync(join(dir, HOOK_FAILURES_TAKEN)), false);
      assert.equal(readFileSync(join(dir, 'secret'), 'latin1'), formatHookFailure(F));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the registry counts the failures and writes one CONTAINER_OP record each, dropped ones in one record', () => {
    const dir = tempDir('amhf-');
    try {
      const records: string[] = [];
      const c = new Containers({ tracker: new ContidTracker({ cgroupMap: [] }), record: (b) => records.push(b) });
      const f = join(dir, HOOK_FAILURES_FILE);
      appendHookFailure(f, { ...F, container: 'a"b\nc' });
      appendHookFailure(f, { ...F, phase: 'poststop', mode: 'closed', code: 'E_TIMEOUT' });
      writeFileSync(f, '!\n!\nnot a line\n', { flag: 'a' });
      const warns: string[] = [];
      assert.equal(
        c.collectHookFailures(dir, (m) => warns.push(m)),
        0,
      );
      assert.equal(
        c.collectHookFailures(dir, (m) => warns.push(m)),
        4,
      );
      assert.deepEqual(c.counters, {
        hookRefused: 0,
        hookFailures: 4,
        hookFailuresDropped: 2,
        hookFailureLinesMalformed: 1,
      });
      assert.equal(records.length, 3);
      // Spaces in the reason: hex, as the kernel encodes such values (ausearch -i decodes it).
      const m =
        /^op=container-hook-failure container=6122620A63 opid=4242 phase=create hook-mode=open hook-time=1764660000\.123 hook-error=E_NO_DAEMON reason=([0-9A-F]+) res=0$/.exec(
          records[0]!,
        );
      assert.ok(m, records[0]);
      assert.equal(Buffer.from(m[1]!, 'hex').toString(), F.reason);
      assert.match(records[1]!, / phase=poststop hook-mode=closed .* hook-error=E_TIMEOUT /);
      assert.equal(records[2], 'op=container-hook-failure dropped=2 res=0');
      assert.match(warns.join(), /1 malformed line/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('auditmux containers', () => {
  it('says under the table how many hooks failed, and nothing when none did', () => {
    assert.equal(hookFailuresNote({ containers: { hookFailures: 0 } }), null);
    assert.equal(hookFailuresNote({}), null);
    assert.equal(
      hookFailuresNote({ containers: { hookFailures: 3, hookFailuresDropped: 0 } }),
      'oci-hook failures: 3; see op=container-hook-failure in the host log',
    );
    assert.match(
      hookFailuresNote({ containers: { hookFailures: 9, hookFailuresDropped: 2 } })!,
      /^oci-hook failures: 9 \(2 only counted: the failures file was full\);/,
    );
  });
});

describe('the real hook when the daemon is missing or silent', () => {
  it('no daemon: fails open and records the failure beside the socket', async () => {
    const dir = tempDir('amhf-');
    try {
      const r = await hook(join(dir, 'control.sock'));
      assert.equal(r.code, 0);
      const l = lines(dir);
      assert.equal(l.length, 1);
      const f = parseHookFailure(l[0]!)!;
      assert.deepEqual(
        [f.container, f.pid, f.phase, f.mode, f.code],
        ['web', process.pid, 'create', 'open', 'E_NO_DAEMON'],
      );
      // Garbage on stdin: the container is unknown, the failure still counted.
      assert.equal((await hook(join(dir, 'control.sock'), { input: 'nope', failClosed: true })).code, 2);
      const g = parseHookFailure(lines(dir)[1]!)!;
      assert.deepEqual([g.container, g.pid, g.phase, g.mode, g.code], [null, -1, 'unknown', 'closed', 'E_OCI_STATE']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a daemon that accepts but never answers: open exits 0 within --timeout, --fail-closed exits non-zero', async () => {
    const dir = tempDir('amhf-');
    const sock = join(dir, 'control.sock');
    const d = await silentDaemon(sock);
    try {
      const t0 = Date.now();
      const open = await hook(sock, { timeoutMs: 300 });
      // A liveness bound, not a timing assertion: the hook must not wait anywhere near forever.
      assert.ok(Date.now() - t0 < 10_000);
      assert.equal(open.code, 0);
      assert.match(open.err, /no answer in \d+ ms .*failing open/s);
      const closed = await hook(sock, { timeoutMs: 300, failClosed: true });
      assert.notEqual(closed.code, 0);
      assert.match(closed.err, /control socket .*: no answer in \d+ ms \(--fail-closed: refusing the container\)/);
      assert.ok(d.connections() >= 2, 'the hook did connect');
      assert.deepEqual(
        lines(dir).map((l) => [parseHookFailure(l)!.mode, parseHookFailure(l)!.code]),
        [
          ['open', 'E_TIMEOUT'],
          ['closed', 'E_TIMEOUT'],
        ],
      );
    } finally {
      d.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the process: `auditmux oci-hook` against a silent daemon exits 0 in bounded time, closed exits non-zero', async () => {
    const dir = tempDir('amhf-');
    const sock = join(dir, 'control.sock');
    const d = await silentDaemon(sock);
    const run = (args: string[]): Promise<{ code: number | null; err: string }> =>
      new Promise((resolve) => {
        const p = spawn(join(repoRoot, 'bin', 'auditmux'), ['oci-hook', '--socket', sock, '--timeout', '400', ...args]);
        let err = '';
        p.stderr.on('data', (b: Buffer) => (err += b.toString()));
        p.on('close', (code) => resolve({ code, err }));
        p.stdin.end(STATE('proc'));
      });
    try {
      const open = await run([]);
      assert.equal(open.code, 0, open.err);
      assert.match(open.err, /no answer in \d+ ms/);
      const closed = await run(['--fail-closed']);
      assert.notEqual(closed.code, 0, closed.err);
      assert.match(closed.err, /no answer in \d+ ms \(--fail-closed: refusing the container\)/);
      assert.equal(lines(dir).length, 2);
    } finally {
      d.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('time spent before the hook runs (the config read) counts against --timeout', async () => {
    const dir = tempDir('amhf-');
    const sock = join(dir, 'control.sock');
    let asked = 0;
    const server = createServer((s) => {
      asked++;
      s.end('{"id":1,"ok":true,"result":{"contid":"5"}}\n');
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      assert.equal((await hook(sock, { failClosed: true })).code, 0, 'the daemon answers');
      const r = await hook(sock, { failClosed: true, timeoutMs: 1000, deadline: Date.now() - 1 });
      assert.notEqual(r.code, 0);
      assert.match(r.err, /--timeout 1000 spent before the OCI state was read/);
      assert.equal(asked, 1, 'the daemon was not asked once the time was spent');
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the host daemon reports hook failures', () => {
  it('counted in status and logged as CONTAINER_OP in the host log, the file taken', async () => {
    const h = await startEmulatedHost({
      prefix: 'am-hookfail-',
      exe: '/usr/bin/am-hookfail',
      untaggedPid: 4242441,
      control: true,
      yaml: [
        'host:',
        '  control_socket: {dir}/control.sock',
        '  rules: {dir}/host.rules',
        '  log: { file: {dir}/audit.log, format: RAW }',
        'daemons:',
        '  - { name: a, rules: {dir}/a.rules }',
        'routes:',
        '  - { contid: 100, daemons: [a] }',
      ],
    });
    try {
      // The same directory, another socket name: a hook configured for a daemon that is not there.
      assert.equal((await hook(join(h.dir, 'gone.sock'), { input: STATE('late-web') })).code, 0);
      assert.equal(lines(h.dir).length, 1);
      const containers = (): Record<string, number> =>
        (h.daemon.status() as { containers: Record<string, number> }).containers;
      await until(() => containers().hookFailures === 1, 'the failure counted within two scans');
      await until(
        () => readFileSync(join(h.dir, 'audit.log'), 'latin1').includes('op=container-hook-failure'),
        'the failure in the host log',
      );
      const rec = readFileSync(join(h.dir, 'audit.log'), 'latin1')
        .split('\n')
        .filter((l) => l.includes('op=container-hook-failure'));
      assert.equal(rec.length, 1);
      assert.match(
        rec[0]!,
        /^type=CONTAINER_OP msg=audit\([0-9.]+:[0-9]+\): op=container-hook-failure container="late-web" opid=\d+ phase=create hook-mode=open hook-time=[0-9.]+ hook-error=E_NO_DAEMON reason=[0-9A-F]+ res=0$/,
      );
      const reason = Buffer.from(/reason=([0-9A-F]+)/.exec(rec[0]!)![1]!, 'hex').toString();
      assert.match(reason, /^control socket .*gone\.sock: ENOENT/);
      assert.equal(existsSync(join(h.dir, HOOK_FAILURES_FILE)), false);
      // The host metrics carry the counter.
      const fam = hostMetricFamilies(h.daemon.status() as Record<string, unknown>).find(
        (f) => f.name === 'auditmux_container_hook_failures_total',
      );
      assert.equal(fam?.samples[0]?.value, 1);
    } finally {
      await h.stop();
      rmSync(h.dir, { recursive: true, force: true });
    }
  });
});
