// A daemon with a user opens its outputs' default spools after dropping privileges: they must be within its reach.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfig } from '../../src/config';
import { userIds } from '../../src/rules/accounts';
import { ensureOwnedDir } from '../../src/safefs';

const nobody = userIds('nobody');
const skip = process.geteuid?.() !== 0 || !nobody ? 'needs root and a user nobody' : undefined;
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'auditmux-auxspool-'));
fs.chmodSync(base, 0o755);
after(() => fs.rmSync(base, { recursive: true, force: true }));

describe('default spool of a daemon with a user', () => {
  it('is created and written by the daemon as its user, inside its own directory', { skip }, () => {
    const logDir = path.join(base, 'log');
    fs.mkdirSync(logDir, { mode: 0o755 });
    const c = parseConfig(
      [
        'host:',
        `  log: { file: ${logDir}/audit.log }`,
        'daemons:',
        '  - name: a',
        '    user: nobody',
        '    outputs: [ { type: remote, name: r, host: 192.0.2.1 } ]',
        '',
      ].join('\n'),
      path.join(base, 'auditmux.yaml'),
    );
    const d = c.daemons[0]!;
    // What the host does before it starts the daemon's process (aux-daemon.ts), then what that process does.
    ensureOwnedDir(path.dirname(d.log.file), nobody!, 'log directory');
    const dir = d.outputs![0]!.spool.dir!;
    const script = `const { Spool } = require(${JSON.stringify(path.resolve(__dirname, '../../src/output/transport/spool'))});
      process.chdir(${JSON.stringify(path.dirname(d.log.file))});
      const s = new Spool({ dir: ${JSON.stringify(dir)}, maxBytes: 1 << 20 });
      if (!s.append(Buffer.from('type=DAEMON_START msg=audit(1.0:1): x'))) throw new Error('append refused');
      s.close();`;
    const r = spawnSync(process.execPath, ['-e', script], {
      uid: nobody!.uid,
      gid: nobody!.gid,
      env: {},
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `spool ${dir} as nobody: ${r.stderr}`);
    const st = fs.statSync(dir);
    assert.equal(st.uid, nobody!.uid);
    assert.ok(dir.startsWith(`${path.dirname(d.log.file)}/`), dir);
  });
});
