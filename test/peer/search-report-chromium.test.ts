// End-to-end: the HTML report renders in real headless Chromium without a server, and its numbers match the text
// report.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runReport } from '../../src/search';
import { writeLog } from '../fixtures/search/gen';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const dir = mkdtempSync(join(tmpdir(), 'amsearch-chromium-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function chromium(args: string[]): string {
  const profile = mkdtempSync(join(dir, 'profile-'));
  const r = spawnSync(
    CHROMIUM!,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      `--user-data-dir=${profile}`,
      ...args,
    ],
    { encoding: 'utf8', timeout: 120_000, maxBuffer: 1 << 28 },
  );
  assert.equal(r.status, 0, `chromium failed: ${r.stderr}`);
  return r.stdout;
}

interface Row {
  events: number;
  first: string;
  last: string;
  keys: string;
  exes: string;
  failed: number;
}

function textRows(text: string): Map<string, Row> {
  const m = new Map<string, Row>();
  const re =
    /container (\S+)\n {2}events: (\d+)\n {2}first seen: (\S+)\n {2}last seen: (\S+)\n {2}top keys: (.*)\n {2}top executables: (.*)\n {2}failed syscalls: (\d+)/g;
  for (const x of text.matchAll(re))
    m.set(x[1]!, { events: +x[2]!, first: x[3]!, last: x[4]!, keys: x[5]!, exes: x[6]!, failed: +x[7]! });
  return m;
}

const unescape = (s: string): string =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');

describe(
  'report in headless Chromium',
  { skip: !CHROMIUM && 'chromium is not installed (apt-get install chromium)' },
  () => {
    it("renders; table and plots carry the text report's numbers", async () => {
      const log = join(dir, 'audit.log');
      await writeLog(log, 20000, { seed: 21, dense: 0.6, rate: 50 });
      const text: string[] = [];
      assert.equal(await runReport(['-if', log], { out: (s) => text.push(s), err: () => undefined }), 0);
      const html = join(dir, 'report.html');
      assert.equal(
        await runReport(['-if', log, '--html', '-o', html], { out: () => undefined, err: () => undefined }),
        0,
      );
      assert.doesNotMatch(
        readFileSync(html, 'utf8'),
        /<script|\s(?:src|href)=|@import|url\(/i,
        'self-contained: no scripts, no external resources',
      );

      const want = textRows(text.join(''));
      assert.ok(want.size >= 5, `containers in the text report: ${want.size}`);
      const dom = chromium(['--dump-dom', `file://${html}`]);
      const rows = new Map<string, Row>();
      const re =
        /<tr data-container="([^"]*)"><td class="container">[^<]*<\/td><td class="events">(\d+)<\/td><td class="first">([^<]*)<\/td><td class="last">([^<]*)<\/td><td class="keys">([^<]*)<\/td><td class="exes">([^<]*)<\/td><td class="failed">(\d+)<\/td><\/tr>/g;
      for (const x of dom.matchAll(re))
        rows.set(unescape(x[1]!), {
          events: +x[2]!,
          first: x[3]!,
          last: x[4]!,
          keys: unescape(x[5]!),
          exes: unescape(x[6]!),
          failed: +x[7]!,
        });
      assert.deepEqual(rows, want);
      const total = /<span id="total-events">(\d+)<\/span>/.exec(dom)?.[1];
      assert.equal(Number(total), 20000);

      // Every plotted line sums to its container's event count: nothing lost in the bucketing.
      const lines = [...dom.matchAll(/<polyline class="series" data-label="([^"]*)" data-total="(\d+)"/g)];
      const firstChart = dom.slice(
        dom.indexOf('id="chart-containers"'),
        dom.indexOf('</svg>', dom.indexOf('id="chart-containers"')),
      );
      const plotted = [...firstChart.matchAll(/<polyline class="series" data-label="([^"]*)" data-total="(\d+)"/g)];
      assert.ok(plotted.length >= 5 && lines.length > plotted.length);
      for (const p of plotted) assert.equal(Number(p[2]), want.get(unescape(p[1]!))!.events, `line of ${p[1]}`);
      const segs = [
        ...dom.matchAll(/<rect class="seg" data-key="([^"]*)" data-container="([^"]*)" data-count="(\d+)"/g),
      ];
      assert.ok(segs.length > 0);
      for (const s of segs) {
        const topKeys = want.get(unescape(s[2]!))!.keys;
        const m = new RegExp(`(?:^|, )${unescape(s[1]!).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\((\\d+)\\)`).exec(
          topKeys,
        );
        if (m) assert.equal(Number(m[1]), Number(s[3]), `key ${s[1]} of ${s[2]}`);
      }

      const png = join(dir, 'shot.png');
      chromium([`--screenshot=${png}`, '--window-size=1000,1600', '--hide-scrollbars', `file://${html}`]);
      const img = readFileSync(png);
      assert.equal(img.subarray(1, 4).toString('latin1'), 'PNG');
      // A blank page compresses to a few KiB; tables, text and plots do not.
      assert.ok(statSync(png).size > 20000, `screenshot is ${statSync(png).size} bytes`);
    });
  },
);
