// Regenerates src/vocab/tables.ts (record types, arches) and src/errno-table.ts (errnos, in the bottom layer so that
// src/errors.ts names kernel errors from it too) from this machine's libaudit, the library auditd, ausearch and
// auditctl print names with, checked against the kernel and errno headers before anything is written.
//
// Run after a libaudit upgrade: `npm run build:ts && node dist/scripts/gen-vocab-tables.js`; `--check` writes nothing
// and fails when either file differs from what this machine's libaudit and headers give. Needs a C compiler,
// libaudit.so.1 and the linux headers; the probe is compiled in a temporary directory and removed.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HEADERS, readDefines } from './c-defines';

const LIBAUDIT = '/usr/lib/x86_64-linux-gnu/libaudit.so.1';

/**
 * The spellings `uname -m` gives on the machines libaudit knows, and auditctl accepts for -F arch=: each is kept only
 * when libaudit's audit_name_to_machine() accepts it.
 */
const MACHINE_SPELLINGS = [
  'i386',
  'i486',
  'i586',
  'i686',
  'x86_64',
  'ia64',
  'ppc64',
  'ppc64le',
  'ppc',
  's390x',
  's390',
  'alpha',
  'armeb',
  'arm',
  'armv5tejl',
  'armv5tel',
  'armv6l',
  'armv7l',
  'aarch64',
  'armv8l',
  'riscv32',
  'riscv64',
  'loongarch64',
];

/** The probe asks libaudit itself, through its exported lookups (the header is not installed, so they are declared). */
const PROBE = `
#include <stdio.h>
const char *audit_msg_type_to_name(int);
const char *audit_machine_to_name(int);
int audit_machine_to_elf(int);
int audit_name_to_machine(const char *);
const char *audit_errno_to_name(int);
int audit_name_to_errno(const char *);
int main(int argc, char **argv) {
  for (int n = 0; n < 10000; n++) { const char *s = audit_msg_type_to_name(n); if (s) printf("T\\t%d\\t%s\\n", n, s); }
  for (int m = 0; m < 64; m++) {
    const char *s = audit_machine_to_name(m);
    if (s) printf("M\\t%d\\t%s\\t%u\\n", m, s, (unsigned)audit_machine_to_elf(m));
  }
  for (int e = 1; e < 512; e++) { const char *s = audit_errno_to_name(e); if (s) printf("E\\t%d\\t%s\\n", e, s); }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i] + 2;
    if (argv[i][0] == 'm') printf("A\\t%d\\t%s\\n", audit_name_to_machine(a), a);
    else printf("N\\t%d\\t%s\\n", audit_name_to_errno(a), a);
  }
  return 0;
}
`;

function probe(args: string[]): string[][] {
  const dir = mkdtempSync(join(tmpdir(), 'auditmux-vocab-'));
  try {
    writeFileSync(join(dir, 'probe.c'), PROBE);
    execFileSync('cc', ['-o', join(dir, 'probe'), join(dir, 'probe.c'), LIBAUDIT]);
    const out = execFileSync(join(dir, 'probe'), args, { encoding: 'utf8' });
    return out
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split('\t'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function fail(msg: string): never {
  throw new Error(`gen-vocab-tables: ${msg}`);
}

const errnoDefines = readDefines(HEADERS.errno);
const archDefines = readDefines([HEADERS.elfEm, HEADERS.audit]);
const errnoNames = [...errnoDefines.keys()].filter((k) => /^E[A-Z0-9]+$/.test(k));
const rows = probe([...MACHINE_SPELLINGS.map((s) => `m:${s}`), ...errnoNames.map((s) => `e:${s}`)]);

const msgtypes = rows.filter((r) => r[0] === 'T').map((r) => [Number(r[1]), r[2]!] as const);
if (msgtypes.length < 150) fail(`only ${msgtypes.length} record types`);
for (const [n, name] of msgtypes) {
  const h = archDefines.get(`AUDIT_${name}`);
  if (h !== undefined && h !== n) fail(`record type ${name} is ${n} in libaudit, ${h} in ${HEADERS.audit}`);
}

const archValues = new Set([...archDefines].filter(([k]) => k.startsWith('AUDIT_ARCH_')).map(([, v]) => v));
const machines = rows.filter((r) => r[0] === 'M').map((r) => [Number(r[1]), r[2]!, Number(r[3])] as const);
for (const [, name, elf] of machines) {
  if (!archValues.has(elf)) fail(`arch ${name} (0x${elf.toString(16)}) is no AUDIT_ARCH_* of ${HEADERS.audit}`);
}
const spellings = rows.filter((r) => r[0] === 'A' && Number(r[1]) >= 0).map((r) => [Number(r[1]), r[2]!] as const);

const errnos = rows.filter((r) => r[0] === 'E').map((r) => [Number(r[1]), r[2]!] as const);
for (const [n, name] of errnos) {
  if (errnoDefines.get(name) !== n) fail(`errno ${name} is ${n} in libaudit, ${errnoDefines.get(name)} in headers`);
}
const primary = new Set(errnos.map(([, s]) => s));
const aliases = rows
  .filter((r) => r[0] === 'N' && Number(r[1]) > 0 && !primary.has(r[2]!))
  .map((r) => [Number(r[1]), r[2]!] as const);

const version = execFileSync('auditctl', ['-v'], { encoding: 'utf8' }).trim();
const list = (name: string, doc: string, type: string, items: ReadonlyArray<readonly unknown[]>): string => {
  let s = `/** ${doc} */\nexport const ${name}: ReadonlyArray<readonly [${type}]> = [\n`;
  for (const it of items) s += `  [${it.map((v) => (typeof v === 'string' ? `'${v}'` : String(v))).join(', ')}],\n`;
  return s + '];\n';
};
const hex = (n: number): string => `0x${n.toString(16)}`;
let text = `// Record types and arches as libaudit of ${version} names them, generated by\n`;
text +=
  '// scripts/gen-vocab-tables.ts from the library itself and checked against the kernel headers. Errnos are in\n';
text += '// ../errno-table.ts (the bottom layer: src/errors.ts names kernel errors with it).\n\n';
text += list('MSGTYPE_TABLE', 'audit_msg_type_to_name() over 0..9999: [number, name].', 'number, string', msgtypes);
text += '\n';
text += list(
  'MACHINE_TABLE',
  "libaudit's machines: [machine, name audit_machine_to_name() prints, AUDIT_ARCH_* value].",
  'number, string, number',
  machines.map(([m, s, e]) => [m, s, hex(e)]),
).replace(/'(0x[0-9a-f]+)'/g, '$1');
text += '\n';
text += list(
  'MACHINE_SPELLINGS',
  'Names audit_name_to_machine() accepts: [machine, name].',
  'number, string',
  spellings,
);
let errnoText = `// Errno names as libaudit of ${version} names them, generated by scripts/gen-vocab-tables.ts from the\n`;
errnoText +=
  '// library itself and checked against the errno headers: the one errno vocabulary, for src/errors.ts (kernel\n';
errnoText += '// replies, log errors) and src/vocab/errno.ts (rules, search).\n\n';
errnoText += list(
  'ERRNO_TABLE',
  'audit_errno_to_name() over 1..511, then the aliases audit_name_to_errno() accepts: [number, name].',
  'number, string',
  [...errnos, ...aliases],
);

const SRC = join(__dirname, '..', '..', 'src');
const PRETTIER = join(__dirname, '..', '..', 'node_modules', '.bin', 'prettier');
const check = process.argv.includes('--check');
const stale: string[] = [];
for (const [out, body] of [
  [join(SRC, 'vocab', 'tables.ts'), text],
  [join(SRC, 'errno-table.ts'), errnoText],
] as const) {
  // Formatted as the repository formats it (its prettier config, found from the file's own path).
  const formatted = execFileSync(PRETTIER, ['--stdin-filepath', out], { input: body, encoding: 'utf8' });
  if (check) {
    let have = '';
    try {
      have = readFileSync(out, 'utf8');
    } catch {
      // A missing file is stale.
    }
    if (have !== formatted) stale.push(out);
  } else writeFileSync(out, formatted);
}
if (stale.length) {
  console.error(`gen-vocab-tables: out of date with this machine's libaudit: ${stale.join(', ')}`);
  process.exitCode = 1;
} else {
  const did = check ? 'checked' : 'wrote';
  console.log(`${did} ${SRC}: ${msgtypes.length} types, ${machines.length} machines, ${errnos.length} errnos`);
}
