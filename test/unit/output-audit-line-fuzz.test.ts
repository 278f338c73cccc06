// The one "is this a safe auditd line" vetter (src/output/audit-line.ts), fixed seed: it holds its promises, and the
// aggregator (vetLine) and the NATS collector (decodeBody) accept exactly what vetAuditLine accepts (a record's text
// may hold control bytes, written escaped) and write only lines that pass lineProblem.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_AUDIT_LINE, lineProblem, vetAuditLine } from '../../src/output/audit-line';
import { vetLine } from '../../src/output/remote/aggregator';
import { decodeBody } from '../../src/output/nats/payload';
import { budget } from '../helpers/fuzz';
import { intBelow, prng } from '../helpers/prng';

const SEED = Number(process.env.AUDITMUX_FUZZ_SEED ?? 0xa11e);
const ITERS = budget(20000);
const IDENTITY_RE = /^[A-Za-z0-9:][A-Za-z0-9._:-]{0,252}$/;

/**
 * An oracle written apart from the vetter's regular expressions: what a safe auditd line is, checked character by
 * character. True when `line` is one.
 */
function oracle(line: string): boolean {
  if (line.length === 0 || line.length > MAX_AUDIT_LINE) return false;
  let seps = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 0x1d) seps++;
    else if (c < 0x20 || c === 0x7f) return false;
  }
  if (seps > 1) return false;
  let rest = line;
  if (rest.startsWith('node=')) {
    const sp = rest.indexOf(' ');
    if (sp < 6 || sp > 5 + 255) return false;
    rest = rest.slice(sp + 1);
  }
  if (!rest.startsWith('type=')) return false;
  rest = rest.slice(5);
  const sp = rest.indexOf(' ');
  if (sp < 0) return false;
  const type = rest.slice(0, sp);
  const digits = (s: string, min: number, max: number): boolean =>
    s.length >= min && s.length <= max && [...s].every((ch) => ch >= '0' && ch <= '9');
  const named = type.length >= 1 && type.length <= 40 && [...type].every((ch) => /[A-Z0-9_]/.test(ch));
  const unknown = type.startsWith('UNKNOWN[') && type.endsWith(']') && digits(type.slice(8, -1), 1, 10);
  if (!named && !unknown) return false;
  rest = rest.slice(sp + 1);
  if (!rest.startsWith('msg=audit(')) return false;
  rest = rest.slice(10);
  const close = rest.indexOf('): ');
  if (close < 0) return false;
  const [time, serial, more] = rest.slice(0, close).split(':');
  if (more !== undefined || time === undefined || serial === undefined) return false;
  const [sec, ms, extra] = time.split('.');
  return extra === undefined && digits(sec ?? '', 1, 12) && digits(ms ?? '', 3, 3) && digits(serial, 1, 20);
}

/**
 * What the aggregator and the collector take (escaping the rest): a line that is safe once every control byte of its
 * text (not of its header) is replaced, with no newline or NUL anywhere.
 */
function escapable(line: string): boolean {
  if (line.length === 0 || line.length > MAX_AUDIT_LINE || line.includes('\n') || line.includes('\0')) return false;
  const headEnd = line.indexOf('): ');
  if (headEnd < 0) return false;
  const head = line.slice(0, headEnd + 3);
  for (let i = 0; i < head.length; i++) {
    const c = head.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  let plain = head;
  for (let i = head.length; i < line.length; i++) {
    const c = line.charCodeAt(i);
    plain += (c < 0x20 && c !== 0x1d) || c === 0x7f ? 'X' : line[i];
  }
  return oracle(plain);
}

const TYPES = ['SYSCALL', 'PATH', 'USER_LOGIN', 'UNKNOWN[1336]', 'UNKNOWN[]', 'UNKNOWN[x]', 'syscall', 'A B', ''];
const STAMPS = ['1700000000.123:42', '1.000:1', '1.0:1', '1700000000.123', '12345678901234.000:1', ':'];
const PIECES = [' a=1', ' name="/x"', " msg='op=x res=1'", '\x1dUID="root"', '\n', '\r', '\0', '\x1b[2J', '\x7f', '\t'];

/** Lines near the boundary: mostly well-formed headers, with a flaw in one place now and then. */
function line(r: () => number): string {
  let s = '';
  if (intBelow(r, 2)) s += `node=${['web1', '10.0.0.5', 'a/b', '"x', ''][intBelow(r, 5)]} `;
  if (intBelow(r, 20)) s += `type=${TYPES[intBelow(r, TYPES.length)]} `;
  if (intBelow(r, 20)) s += `msg=audit(${STAMPS[intBelow(r, STAMPS.length)]}): `;
  for (let k = intBelow(r, 6); k > 0; k--) s += intBelow(r, 4) ? PIECES[intBelow(r, 3)] : PIECES[intBelow(r, 10)];
  if (intBelow(r, 50) === 0) s += 'p'.repeat(MAX_AUDIT_LINE - s.length + intBelow(r, 3) - 1);
  if (intBelow(r, 30) === 0) s += String.fromCharCode(0x80 + intBelow(r, 128));
  return s;
}

test('auditd lines the old vetters refused: UNKNOWN[n] types pass the vetter, the aggregator and the collector', () => {
  for (const l of [
    'type=UNKNOWN[1336] msg=audit(1700000000.123:42): record=1 contid=100',
    'node=web1 type=UNKNOWN[2000] msg=audit(1700000000.123:42): x=1\x1dUID="root"',
  ]) {
    assert.equal(lineProblem(l), null, l);
    const v = vetLine(Buffer.from(`${l}\n`, 'latin1'), 'web1', 'prefix');
    assert.ok(v.ok, JSON.stringify(v));
    assert.deepEqual(decodeBody(Buffer.from(`${l}\n`, 'latin1')).lines, [l]);
  }
});

test(`lineProblem and vetAuditLine agree with independent oracles over ${ITERS} lines; the aggregator and the collector with them`, () => {
  const r = prng(SEED);
  let safe = 0;
  let escaped = 0;
  for (let i = 0; i < ITERS; i++) {
    const l = line(r);
    const why = `seed ${SEED} iteration ${i}: ${JSON.stringify(l.length > 200 ? `${l.slice(0, 200)}...` : l)}`;
    const p = lineProblem(l);
    assert.equal(p === null, oracle(l), `${why}: ${p}`);
    if (p === null) safe++;
    const ok = escapable(l);
    const vet = vetAuditLine(l);
    assert.equal(!('problem' in vet), ok, `${why}: ${JSON.stringify(vet)}`);
    if (!('problem' in vet)) {
      // What is written is a safe line: as it came when it was one, else with its control bytes escaped.
      assert.equal(lineProblem(vet.line), null, `${why}: written as ${JSON.stringify(vet.line)}`);
      if (p === null) assert.equal(vet.line, l, why);
      else escaped++;
      assert.equal(vet.escaped > 0, p !== null, why);
    }
    // The aggregator: trailing newlines and what follows a NUL are the frame's, not the line's.
    if (!/[\n\r\0]$/.test(l) && !l.includes('\0')) {
      const node = /^node=([^ ]*) /.exec(l)?.[1];
      const v = vetLine(Buffer.from(l, 'latin1'), 'web1', 'keep');
      if (v.ok) assert.ok(ok, why);
      else if (ok) assert.ok(node !== undefined && !IDENTITY_RE.test(node), `${why}: ${v.reason}`);
      if (v.ok) {
        const out = v.line.toString('latin1');
        const want = 'problem' in vet ? '' : vet.line;
        assert.equal(out, node === undefined ? `node=web1 ${want}` : want, why);
        if (out.length <= MAX_AUDIT_LINE) assert.equal(lineProblem(out), null, `${why}: written as ${out}`);
      }
    }
    // The collector: a one-line text body decodes exactly when its line is escapable, into the vetted line.
    if (l.length > 0 && l[0] !== '{' && !l.includes('\n')) {
      let decoded: string[] | null;
      try {
        decoded = decodeBody(Buffer.from(`${l}\n`, 'latin1')).lines;
      } catch {
        decoded = null;
      }
      assert.deepEqual(decoded, 'problem' in vet ? null : [vet.line], why);
    }
  }
  assert.ok(safe > ITERS / 20, `enough safe lines generated (${safe})`);
  assert.ok(escaped > ITERS / 50, `enough lines escaped (${escaped})`);
});

test('vetAuditLine: escapes that pass the line length limit are cut at a whole escape', () => {
  const head = 'type=USER msg=audit(1.000:1): ';
  for (let pad = 0; pad < 4; pad++) {
    const l = head + 'p'.repeat(pad) + '\x1b'.repeat(MAX_AUDIT_LINE - head.length - pad);
    const v = vetAuditLine(l);
    assert.ok(!('problem' in v));
    assert.ok(v.line.length <= MAX_AUDIT_LINE && v.line.length > MAX_AUDIT_LINE - 4, `${v.line.length}`);
    assert.match(v.line.slice(head.length + pad), /^(\\033)+$/);
    assert.equal(lineProblem(v.line), null);
  }
});
