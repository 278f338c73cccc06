// NETLINK_NO_ENOBUFS is not optional: a socket the kernel may fail with ENOBUFS is refused with the setsockopt error
// (code, errno, syscall), not opened as if the option had been set. The refusal is made real by an LD_PRELOAD shim
// whose setsockopt refuses that one option; opening a NETLINK_AUDIT socket needs no privilege.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ADDON = join(__dirname, '..', '..', '..', 'build', 'Release', 'auditmux_netlink.node');

const SHIM = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/socket.h>
int setsockopt(int fd, int level, int name, const void* v, socklen_t l) {
  static int (*real)(int, int, int, const void*, socklen_t);
  if (!real) real = (int (*)(int, int, int, const void*, socklen_t))dlsym(RTLD_NEXT, "setsockopt");
  if (level == 270 && name == 5) { errno = ENOPROTOOPT; return -1; }
  return real(fd, level, name, v, l);
}
`;

const OPEN = `
try {
  new (require(process.argv[1]).AuditNetlink)({});
  console.log(JSON.stringify({ opened: true }));
} catch (e) {
  console.log(JSON.stringify({ code: e.code, errno: e.errno, syscall: e.syscall, message: e.message }));
}
`;

const skip = spawnSync('cc', ['--version']).status === 0 ? undefined : 'needs a C compiler (cc)';

describe('native socket: NETLINK_NO_ENOBUFS refused', { skip }, () => {
  it('the constructor throws the setsockopt error instead of opening the socket', () => {
    assert.ok(existsSync(ADDON), `${ADDON}: run npm run build`);
    const dir = mkdtempSync(join(tmpdir(), 'auditmux-noenobufs-'));
    try {
      writeFileSync(join(dir, 'shim.c'), SHIM);
      execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', join(dir, 'shim.so'), join(dir, 'shim.c'), '-ldl']);
      const run = (preload: boolean): Record<string, unknown> => {
        const env = { ...process.env };
        if (preload) env.LD_PRELOAD = join(dir, 'shim.so');
        else delete env.LD_PRELOAD;
        const r = spawnSync(process.execPath, ['-e', OPEN, ADDON], { env, encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        return JSON.parse(r.stdout) as Record<string, unknown>;
      };
      assert.deepEqual(run(false), { opened: true }, 'without the shim the socket opens');
      const refused = run(true);
      assert.equal(refused.code, 'ENOPROTOOPT');
      assert.equal(refused.errno, 92);
      assert.equal(refused.syscall, 'setsockopt');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
