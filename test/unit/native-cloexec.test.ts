// Inherited descriptors stop at the daemon: an fd it got without O_CLOEXEC (a LISTEN_FDS socket it does not adopt,
// one a parent leaked) reaches none of the programs it starts once inheritedFdsCloseOnExec() ran, whichever way
// (close_range, /proc/self/fd, a scan up to RLIMIT_NOFILE) it takes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REGISTRATION = join(__dirname, '..', '..', 'src', 'kernel', 'registration.js');

/** Marks fds close-on-exec (when the function exists), then lists the fds a program it starts has open. */
const CHILD = `
const fs = require('node:fs');
const flags = (fd) => parseInt(/flags:\\s*([0-7]+)/.exec(fs.readFileSync('/proc/self/fdinfo/' + fd, 'utf8'))[1], 8);
const inheritable = (flags(40) & 0o2000000) === 0;
const reg = require(process.argv[2]);
const how = process.argv[3] || undefined;
const used = typeof reg.inheritedFdsCloseOnExec === 'function' ? reg.inheritedFdsCloseOnExec(how) : 'none';
const out = require('node:child_process').execFileSync('/bin/ls', ['/proc/self/fd'], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
});
process.stdout.write(JSON.stringify({ inheritable, used, fds: out.trim().split(/\\s+/) }));
`;

describe('inherited fds are close-on-exec in the daemon', () => {
  for (const how of ['', 'proc', 'scan'])
    it(`a program started after it sees only 0-2 and its own (${how || 'default: close_range'})`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'amcloexec-'));
      try {
        writeFileSync(join(dir, 'child.js'), CHILD);
        // The child gets a file as fd 40 without FD_CLOEXEC (a shell's redirection), as systemd passes LISTEN_FDS. Node
        // itself sets FD_CLOEXEC on inherited fds below about 20 at start (Node 20, observed), not on higher ones.
        const r = spawnSync(
          '/bin/bash',
          ['-c', 'exec "$0" "$@" 40>"$LEAK"', process.execPath, join(dir, 'child.js'), REGISTRATION, how],
          {
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'inherit'],
            env: { ...process.env, LEAK: join(dir, 'leaked') },
          },
        );
        assert.equal(r.status, 0, r.stderr);
        const { inheritable, used, fds } = JSON.parse(r.stdout) as {
          inheritable: boolean;
          used: string;
          fds: string[];
        };
        assert.ok(inheritable, 'precondition: fd 40 came without FD_CLOEXEC');
        assert.ok(!fds.includes('40'), `fd 40 reached the program: ${fds.join(' ')}`);
        // ls's own: 0-2 and the /proc/self/fd directory it reads (3); nothing else the process inherited either.
        assert.deepEqual(fds, ['0', '1', '2', '3'], `the program saw fds ${fds.join(' ')}`);
        if (how) assert.equal(used, how);
        else assert.ok(used === 'close_range' || used === 'proc', used);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
});
