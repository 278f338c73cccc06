// What the CLI prints from files and answers it did not write (paths, a tenant's rule text, a daemon's answer)
// reaches the operator's terminal with its control characters escaped.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main';
import { ControlServer } from '../../src/daemon/control';

/** C0 controls but the newline, DEL and C1: what a terminal acts on. */
const CONTROLS = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

describe('CLI output escaping', () => {
  it("an error quoting a path with ESC sequences prints them escaped, not as the terminal's commands", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amcliesc-'));
    try {
      // A directory name whose ESC sequences retitle the window and clear the screen (old: printed raw).
      const evil = join(dir, 'x\x1b]0;pwned\x07\x1b[2J\u009b2J');
      mkdirSync(evil);
      const p = join(evil, 'auditmux.yaml');
      writeFileSync(p, 'version: 1\n');
      chmodSync(p, 0o666); // refused (world-writable): the error names the file
      const err: string[] = [];
      const code = await main(['node', 'auditmux', 'aux', 'list', '--config', p], {
        out: () => undefined,
        err: (s) => err.push(s),
      });
      const text = err.join('\n');
      assert.notEqual(code, 0);
      assert.match(text, /config file refused/);
      assert.doesNotMatch(text, CONTROLS, JSON.stringify(text));
      assert.match(text, /x\\033\]0;pwned\\007\\033\[2J\\302\\2332J/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("config check's report quotes the file's text escaped and cut: an unknown key's ESC sequences, a huge number", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amcliesc-'));
    try {
      const p = join(dir, 'auditmux.yaml');
      // Old: the key's ESC and BEL reached stderr raw, and all 500,000 digits were quoted.
      writeFileSync(
        p,
        `version: 1\nhost:\n  "\\e]0;owned\\a\\e[2Jx": 1\n  kernel: { backlog_limit: 1${'9'.repeat(500_000)} }\n`,
        {
          mode: 0o600,
        },
      );
      const err: string[] = [];
      const code = await main(['node', 'auditmux', 'config', 'check', p], {
        out: (s) => err.push(s),
        err: (s) => err.push(s),
      });
      const text = err.join('\n');
      assert.notEqual(code, 0);
      assert.match(text, /unknown key "\\033\]0;owned\\007\\033\[2Jx"/);
      assert.doesNotMatch(text, CONTROLS, JSON.stringify(text.slice(0, 400)));
      assert.match(text, /backlog_limit must be between 0 and 4294967295, got 1999+\.\.\./);
      assert.ok(text.length < 4000, `${text.length} characters of report`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a daemon's answer printed as JSON has its C1 controls escaped (reload quotes a rules file's text)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amcliesc-'));
    const sock = join(dir, 'c.sock');
    const server = new ControlServer(
      sock,
      async () => ({ ok: false, error: 'bad rule: -F uid=\u009b2J\x1b[2J' }),
      process.getuid!(),
      {},
    );
    await server.listen();
    try {
      const cfg = join(dir, 'auditmux.yaml');
      writeFileSync(cfg, `version: 1\nhost:\n  control_socket: ${sock}\n`, { mode: 0o600 });
      const out: string[] = [];
      const code = await main(['node', 'auditmux', 'reload', '--config', cfg], {
        out: (s) => out.push(s),
        err: () => undefined,
      });
      const text = out.join('\n');
      assert.equal(code, 3, text);
      assert.doesNotMatch(text, CONTROLS, JSON.stringify(text));
      assert.match(text, /uid=\\u009b2J\\u001b\[2J/);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
