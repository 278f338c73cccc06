// The on-disk spool against planted names: symlinked or hard-linked cursor and segments are refused, never written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Spool, segmentName } from '../../src/output/transport/spool';
import { IoError } from '../../src/errors';

const isRoot = process.geteuid?.() === 0;
const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'amspoolplant-'));
const PRECIOUS = 'bytes of a file the spool must never touch\n';

function victim(): string {
  const p = path.join(tmp(), 'victim');
  fs.writeFileSync(p, PRECIOUS);
  return p;
}

/** Opens a spool in `dir`, appends and closes it (what a daemon does); returns the error it threw, if any. */
function useSpool(dir: string): unknown {
  try {
    const s = new Spool({ dir, maxBytes: 1024 * 1024 });
    s.append(Buffer.from('one record'));
    const r = s.next();
    if (r) s.commit(r.end);
    s.close();
    return undefined;
  } catch (e) {
    return e;
  }
}

test('a symlinked cursor file is refused and its target not written', () => {
  const dir = tmp();
  const target = victim();
  fs.symlinkSync(target, path.join(dir, 'cursor'));
  const err = useSpool(dir);
  assert.ok(err instanceof IoError && err.code === 'E_SYMLINK', String(err));
  assert.match((err as Error).message, /spool cursor .*symbolic link/);
  assert.equal(fs.readFileSync(target, 'utf8'), PRECIOUS);
});

test('a symlinked segment is refused: recovery would truncate its target at the first bad record', () => {
  const dir = tmp();
  const target = victim();
  fs.symlinkSync(target, path.join(dir, segmentName(0)));
  const err = useSpool(dir);
  assert.ok(err instanceof IoError && err.code === 'E_SYMLINK', String(err));
  assert.equal(fs.readFileSync(target, 'utf8'), PRECIOUS, 'not truncated, not appended to');
});

test('a hard-linked segment or cursor is refused', () => {
  for (const name of [segmentName(0), 'cursor']) {
    const dir = tmp();
    const other = path.join(dir, 'other');
    fs.writeFileSync(other, PRECIOUS);
    fs.linkSync(other, path.join(dir, name));
    const err = useSpool(dir);
    assert.ok(err instanceof IoError && err.code === 'E_HARDLINK', `${name}: ${String(err)}`);
    assert.equal(fs.readFileSync(other, 'utf8'), PRECIOUS, name);
  }
});

test(
  'a spool directory that is a symlink, or that others can write, is refused',
  { skip: isRoot ? false : 'needs root to chown' },
  () => {
    const real = tmp();
    const link = path.join(tmp(), 'spool');
    fs.symlinkSync(real, link);
    const e1 = useSpool(link);
    assert.ok(e1 instanceof IoError && e1.code === 'E_UNSAFE_DIR', String(e1));
    assert.deepEqual(fs.readdirSync(real), [], 'nothing written through the link');
    const open = tmp();
    fs.chmodSync(open, 0o777);
    const e2 = useSpool(open);
    assert.ok(e2 instanceof IoError && e2.code === 'E_UNSAFE_DIR', String(e2));
    const other = tmp();
    fs.chownSync(other, 65534, 65534);
    const e3 = useSpool(other);
    assert.ok(e3 instanceof IoError && /owned by uid 65534/.test((e3 as Error).message), String(e3));
  },
);

test('a planted huge sparse segment is not read whole: cut at the largest segment size, records before it kept', () => {
  const dir = tmp();
  const s = new Spool({ dir, maxBytes: 1024 * 1024 });
  for (let i = 0; i < 3; i++) s.append(Buffer.from(`record ${i}`));
  s.close();
  const seg = path.join(dir, segmentName(0));
  // 1 GiB of holes after the records: reading it whole would make the process hold 1 GiB of zeros.
  fs.truncateSync(seg, 1024 * 1024 * 1024);
  const before = process.resourceUsage().maxRSS;
  const reasons: string[] = [];
  const again = new Spool({ dir, maxBytes: 1024 * 1024, onCorrupt: (_p, _off, why) => reasons.push(why) });
  const grewKiB = process.resourceUsage().maxRSS - before;
  assert.ok(
    reasons.some((r) => /larger than any spool segment/.test(r)),
    reasons.join('; '),
  );
  assert.ok(fs.statSync(seg).size < 16 * 1024 * 1024, 'the planted tail is cut');
  assert.ok(grewKiB < 256 * 1024, `peak RSS grew by ${grewKiB} KiB`);
  const got: string[] = [];
  for (let r = again.next(); r; r = again.next()) {
    got.push(r.data.toString());
    again.commit(r.end);
  }
  assert.deepEqual(got, ['record 0', 'record 1', 'record 2']);
  again.close();
});

test(
  'a spool below a directory another user owns is refused: that user could swap the spool directory',
  { skip: isRoot ? undefined : 'needs root to chown' },
  () => {
    const top = tmp();
    const theirs = path.join(top, 'theirs');
    fs.mkdirSync(theirs, { mode: 0o755 });
    fs.chownSync(theirs, 65534, 65534);
    const err = useSpool(path.join(theirs, 'spool'));
    assert.ok(err instanceof IoError && err.code === 'E_UNSAFE_DIR', String(err));
    assert.match((err as Error).message, /theirs is owned by uid 65534/);
  },
);
