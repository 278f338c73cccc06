// e2e: an unprivileged connect() to an AF_UNIX path holding a newline, a fake record and 0x1D cannot forge a log line.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { kernelSkipReason, withKernel } from '../helpers/kernel';
import { readText, startDaemon, stopDaemon, tempDir, cliPath } from '../helpers/daemon';
import { unescapeInterp } from '../../src/records/encode';

/** connect(AF_UNIX) to argv[1] (argv[2] "abstract": an abstract name), as any user can; the failure does not matter. */
const CONNECT_C = `#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(int c, char **v) {
  struct sockaddr_un a; memset(&a, 0, sizeof a); a.sun_family = AF_UNIX;
  int abs = c > 2; size_t n = strlen(v[1]); if (n > sizeof a.sun_path - 2) n = sizeof a.sun_path - 2;
  memcpy(a.sun_path + abs, v[1], n);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  connect(s, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + abs + n + !abs);
  return 0;
}
`;

/**
 * The attack of issue 10: the rest of the path is a whole USER_LOGIN line of another node, plus forged interpretations.
 */
const FORGED = '/tmp/x\nnode=dc01 type=USER_LOGIN msg=audit(1700000000.000:77): pid=1 uid=0 res=success\x1dAUID="root"';
const ABSTRACT = 'am-abs\nnode=dc02 type=USER_LOGIN msg=audit(1700000001.000:78): pid=1 res=success';

describe('forged log lines on the real kernel', { skip: kernelSkipReason() }, () => {
  it('ENRICHED log: ausearch, aureport and auditmux search see the real connect() and no forged record', () =>
    withKernel(async () => {
      const dir = tempDir('amforge-');
      try {
        chmodSync(dir, 0o755);
        writeFileSync(join(dir, 'amconnect.c'), CONNECT_C);
        const prog = join(dir, 'amconnect');
        execFileSync('cc', ['-O2', '-o', prog, join(dir, 'amconnect.c')]);
        assert.ok(Buffer.byteLength(FORGED) <= 106 && Buffer.byteLength(ABSTRACT) <= 106);
        const key = 'am-forge';
        writeFileSync(join(dir, 'host.rules'), `-a always,exit -F arch=b64 -S connect -F exe=${prog} -k ${key}\n`);
        const log = join(dir, 'log', 'audit.log');
        const conf = join(dir, 'auditmux.yaml');
        writeFileSync(
          conf,
          [
            'host:',
            '  kernel: { enabled: 1, failure: 1, backlog_limit: 8192, backlog_wait_time: 60000 }',
            `  rules: ${join(dir, 'host.rules')}`,
            `  log: { file: ${log}, format: ENRICHED, flush: incremental_async, freq: 1 }`,
            `  control_socket: ${join(dir, 'control.sock')}`,
          ].join('\n') + '\n',
        );
        const d = await startDaemon(conf);
        try {
          // nobody: the attacker needs no privilege at all
          spawnSync(prog, [FORGED], { uid: 65534, gid: 65534 });
          spawnSync(prog, [ABSTRACT, 'abstract'], { uid: 65534, gid: 65534 });
          await new Promise((r) => setTimeout(r, 500));
        } finally {
          assert.equal(await stopDaemon(d), 0, d.stderr());
        }
        const text = readText(log);
        const lines = text.split('\n').filter((l) => l !== '');
        // the kernel's AUDIT_REPLACE probe at our own shutdown is a binary pid, not a record: dropped as auditd does
        assert.doesNotMatch(text, /UNKNOWN\[1329\]/);
        for (const l of lines)
          assert.match(
            l,
            /^type=[A-Z_0-9[\]]+ msg=audit\(\d+\.\d{3}:\d+\): /,
            `every line is one of ours: ${JSON.stringify(l)}`,
          );
        assert.ok(
          lines.every((l) => l.split('\x1d').length <= 2),
          'at most one separator per line',
        );
        const saddrs = lines
          .filter((l) => l.startsWith('type=SOCKADDR '))
          .map((l) => /\x1dSADDR=\{ saddr_fam=local path=(.*) \}$/.exec(l)?.[1]);
        assert.deepEqual(
          saddrs.map((p) => (p === undefined ? p : unescapeInterp(p))),
          [FORGED, ABSTRACT],
          JSON.stringify(saddrs),
        );

        const env = { ...process.env, TZ: 'UTC', LC_ALL: 'C' };
        const forged = spawnSync('ausearch', ['-if', log, '-m', 'USER_LOGIN'], { encoding: 'latin1', env });
        assert.equal(forged.status, 1, `ausearch found a forged record:\n${forged.stdout}`);
        const node = spawnSync('ausearch', ['-if', log, '-n', 'dc01'], { encoding: 'latin1', env });
        assert.equal(node.status, 1, node.stdout);
        const real = spawnSync('ausearch', ['-if', log, '-k', key, '-i'], { encoding: 'latin1', env });
        assert.equal(real.status, 0, real.stderr);
        assert.equal((real.stdout.match(/^type=SYSCALL /gm) ?? []).length, 2, real.stdout);
        assert.ok(
          real.stdout.includes('saddr={ saddr_fam=local path=/tmp/x\\012node=dc01 type=USER_LOGIN'),
          real.stdout,
        );
        assert.ok(!/^(node=dc0|type=USER_LOGIN)/m.test(real.stdout), real.stdout);
        const logins = spawnSync('aureport', ['-if', log, '-l'], { encoding: 'latin1', env });
        assert.doesNotMatch(logins.stdout, /dc01|dc02|1700000000/, logins.stdout);
        const summary = spawnSync('aureport', ['-if', log, '--summary'], { encoding: 'latin1', env });
        assert.match(summary.stdout, /Number of logins: 0/, summary.stdout);

        const ours = spawnSync(process.execPath, [cliPath, 'search', '-if', log, '-m', 'USER_LOGIN'], {
          encoding: 'latin1',
        });
        assert.equal(ours.status, 1, ours.stdout);
        const found = spawnSync(process.execPath, [cliPath, 'search', '-if', log, '-k', key, '-i'], {
          encoding: 'latin1',
        });
        assert.equal(found.status, 0, found.stderr);
        assert.doesNotMatch(found.stdout, /[\x00-\x09\x0b-\x1f]/);
        assert.equal((found.stdout.match(/^type=SOCKADDR /gm) ?? []).length, 2, found.stdout);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }));
});
