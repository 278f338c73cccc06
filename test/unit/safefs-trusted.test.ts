// readTrusted: a file read through a chain of trusted directories, each opened by descriptor without following links.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { dirTrustProblem, readTrusted } from '../../src/safefs';

const uid = process.getuid?.() ?? 0;
const opts = { limit: 1024, dirOwners: [0, uid], fileOwner: uid, what: 'test file' };

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

describe('readTrusted', () => {
  it('reads through safe directories; refuses links, unsafe directories, hard links; null when absent', () => {
    const dir = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'amtrust-')));
    try {
      fs.mkdirSync(join(dir, 'a', 'b'), { recursive: true, mode: 0o755 });
      const f = join(dir, 'a', 'b', 'f.json');
      fs.writeFileSync(f, '{}');
      assert.equal(readTrusted(f, opts)?.data.toString(), '{}');
      assert.equal(readTrusted(join(dir, 'a', 'b', 'none'), opts), null);
      assert.equal(readTrusted(join(dir, 'none', 'b', 'f.json'), opts), null);
      for (const bad of ['relative/f', `${dir}/a/../a/b/f.json`, `${dir}//a/b/f.json`, `${dir}/a/./b/f.json`])
        assert.equal(
          code(() => readTrusted(bad, opts)),
          'E_UNSAFE_DIR',
          bad,
        );
      // A directory link on the way, and a link as the file.
      fs.symlinkSync(join(dir, 'a'), join(dir, 'link'));
      assert.equal(
        code(() => readTrusted(join(dir, 'link', 'b', 'f.json'), opts)),
        'E_SYMLINK',
      );
      fs.symlinkSync(f, join(dir, 'a', 'b', 'l.json'));
      assert.equal(
        code(() => readTrusted(join(dir, 'a', 'b', 'l.json'), opts)),
        'E_SYMLINK',
      );
      fs.chmodSync(join(dir, 'a'), 0o775);
      assert.equal(
        code(() => readTrusted(f, opts)),
        'E_UNSAFE_DIR',
      );
      fs.chmodSync(join(dir, 'a'), 0o755);
      fs.linkSync(f, join(dir, 'hard'));
      assert.equal(
        code(() => readTrusted(f, opts)),
        'E_HARDLINK',
      );
      fs.rmSync(join(dir, 'hard'));
      assert.equal(
        code(() => readTrusted(f, { ...opts, fileOwner: uid + 1 })),
        'E_OWNER',
      );
      assert.equal(
        code(() => readTrusted(f, { ...opts, dirOwners: [uid + 1] })),
        'E_UNSAFE_DIR',
      );
      fs.writeFileSync(f, 'x'.repeat(2000));
      assert.equal(
        code(() => readTrusted(f, opts)),
        'E_TOO_LARGE',
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('dirTrustProblem: owner and write bits; only a root-owned sticky directory may be writable by others', () => {
    const st = (uid: number, mode: number, dir = true): fs.Stats =>
      ({ uid, mode: (dir ? 0o040000 : 0o100000) | mode, isDirectory: () => dir }) as unknown as fs.Stats;
    assert.equal(dirTrustProblem(st(0, 0o755), [0]), null);
    assert.equal(dirTrustProblem(st(0, 0o1777), [0]), null, '/tmp');
    assert.match(dirTrustProblem(st(1000, 0o1777), [0, 1000]) ?? '', /writable by everyone/);
    assert.match(dirTrustProblem(st(0, 0o775), [0]) ?? '', /writable by its group/);
    assert.match(dirTrustProblem(st(1000, 0o755), [0]) ?? '', /owned by uid 1000/);
    assert.match(dirTrustProblem(st(0, 0o644, false), [0]) ?? '', /not a directory/);
  });
});
