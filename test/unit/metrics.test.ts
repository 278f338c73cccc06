// The metrics module: escaping per the text format, GET /metrics over real HTTP (only that), atomic textfiles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { MetricFamily } from '../../src/metrics/contract';
import * as net from 'node:net';
import { createMetricsExporter, MAX_CONNECTIONS } from '../../src/metrics/exporter';
import { escapeLabelValue, MetricNameError, renderExposition } from '../../src/metrics/exposition';
import { writeTextfileAtomic } from '../../src/metrics/textfile';

const fams = (n: number): MetricFamily[] => [
  {
    name: 'am_x_total',
    help: 'Things.\nSecond \\ line',
    type: 'counter',
    samples: [{ labels: { d: 'a"b' }, value: n }],
  },
  { name: 'am_q', help: 'Depth.', type: 'gauge', samples: [{ value: NaN }, { labels: { c: '\n' }, value: -Infinity }] },
];

test('text format: label values and help escaped, special values spelled, bad names refused', () => {
  assert.equal(
    renderExposition(fams(3)),
    [
      '# HELP am_x_total Things.\\nSecond \\\\ line',
      '# TYPE am_x_total counter',
      'am_x_total{d="a\\"b"} 3',
      '# HELP am_q Depth.',
      '# TYPE am_q gauge',
      'am_q NaN',
      'am_q{c="\\n"} -Inf',
      '',
    ].join('\n'),
  );
  assert.equal(escapeLabelValue('\\"\n\ud800x'), '\\\\\\"\\n\ufffdx');
  assert.throws(() => renderExposition([{ name: 'a-b', help: '', type: 'gauge', samples: [] }]), MetricNameError);
  assert.throws(
    () => renderExposition([{ name: 'a', help: '', type: 'gauge', samples: [{ labels: { 'x y': '' }, value: 1 }] }]),
    MetricNameError,
  );
});

function get(port: number, p: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.once('error', reject);
    req.end(method === 'POST' ? 'x'.repeat(100000) : undefined);
  });
}

test('listen: a real GET /metrics renders the source at each scrape; other paths and methods are refused', async () => {
  let n = 1;
  const e = createMetricsExporter({ listen: { host: '127.0.0.1', port: 0 } }, { metrics: () => fams(n) }, () => {});
  await e.start();
  try {
    const port = e.address()!.port;
    const a = await get(port, '/metrics');
    assert.equal(a.status, 200);
    assert.match(a.type, /^text\/plain; version=0\.0\.4/);
    assert.match(a.body, /^am_x_total\{d="a\\"b"\} 1$/m);
    n = 42;
    assert.match((await get(port, '/metrics')).body, /^am_x_total\{d="a\\"b"\} 42$/m);
    assert.equal((await get(port, '/')).status, 404);
    assert.equal((await get(port, '/metrics/../x')).status, 404);
    assert.equal((await get(port, '/metrics', 'POST')).status, 405);
    assert.equal((await get(port, '/metrics', 'DELETE')).status, 405);
  } finally {
    await e.stop();
  }
  assert.equal(e.address(), null);
});

test('listen: connections held open by a request trickled a byte at a time never keep a scrape out', async () => {
  const e = createMetricsExporter({ listen: { host: '127.0.0.1', port: 0 } }, { metrics: () => fams(7) }, () => {});
  await e.start();
  const held: net.Socket[] = [];
  try {
    const port = e.address()!.port;
    for (let i = 0; i < MAX_CONNECTIONS * 2; i++) {
      const c = net.connect(port, '127.0.0.1');
      c.on('error', () => undefined);
      c.resume();
      await new Promise((r) => c.once('connect', r));
      c.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
      held.push(c);
    }
    // A burst accepted in one turn of the loop: each new one closes an old one, not the same oldest again.
    const burst = await Promise.all(
      Array.from(
        { length: 200 },
        () =>
          new Promise<net.Socket>((res) => {
            const c = net.connect(port, '127.0.0.1');
            c.on('error', () => undefined);
            c.resume(); // read, so a close by the listener ends it here
            c.once('connect', () => res(c));
          }),
      ),
    );
    held.push(...burst);
    // The closes reach the clients as the loop gets to them (slower on a loaded machine): wait for them, bounded.
    const alive = (): number => held.filter((c) => !c.destroyed).length;
    for (let t = 0; t < 100 && alive() > MAX_CONNECTIONS; t++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(alive() <= MAX_CONNECTIONS, `${alive()} connections still open`);
    // The refused-when-full listener answered this with a reset while the others trickled on.
    const r = await get(port, '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.body, /^am_x_total\{d="a\\"b"\} 7$/m);
  } finally {
    for (const c of held) c.destroy();
    await e.stop();
  }
});

test('listen: a failed accept (EMFILE) after the start is told, rate-limited, and never ends the process', async () => {
  const errors: Error[] = [];
  const e = createMetricsExporter({ listen: { host: '127.0.0.1', port: 0 } }, { metrics: () => fams(1) }, (x) =>
    errors.push(x),
  );
  await e.start();
  try {
    // What Node does when accept() fails: an 'error' on the server. With no listener left, the second one threw.
    const server = (e as unknown as { server: http.Server }).server;
    for (let i = 0; i < 3; i++)
      server.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' }));
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /metrics listener: accept EMFILE/);
    assert.equal((await get(e.address()!.port, '/metrics')).status, 200);
  } finally {
    await e.stop();
  }
});

test('textfile: replaced atomically; a symlink planted at the temporary name is replaced, never followed', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'am-metrics-'));
  try {
    const file = path.join(dir, 'x.prom');
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'keep\n');
    fs.symlinkSync(victim, path.join(dir, `.x.prom.${process.pid}.tmp`));
    let n = 7;
    const e = createMetricsExporter({ textfile: file }, { metrics: () => fams(n) }, (err) => {
      throw err;
    });
    await e.start();
    assert.match(fs.readFileSync(file, 'utf8'), /^am_x_total\{d="a\\"b"\} 7$/m);
    n = 8;
    await e.stop();
    assert.match(fs.readFileSync(file, 'utf8'), /^am_x_total\{d="a\\"b"\} 8$/m);
    assert.equal(fs.readFileSync(victim, 'utf8'), 'keep\n');
    assert.equal(fs.statSync(file).mode & 0o777, 0o644);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['victim', 'x.prom']);
    // A directory where the temporary goes: a clear error, the old file left as it was.
    fs.mkdirSync(path.join(dir, `.x.prom.${process.pid}.tmp`));
    assert.throws(() => writeTextfileAtomic(file, 'new\n'), /directory/);
    assert.match(fs.readFileSync(file, 'utf8'), / 8$/m);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
