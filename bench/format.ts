// Micro-benchmark of LineFormatter: records/s and ns/record in RAW and ENRICHED on the bench load's record mix.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LineFormatter, MAX_LINE_BYTES, type LogFormat } from '../src/output/format';
import { IdNameCache } from '../src/vocab/accounts';

const FIX = join(__dirname, '..', '..', 'test', 'fixtures', 'records', 'kernel-ENRICHED.jsonl');

interface Rec {
  type: number;
  payload: Buffer;
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

/** Captured kernel payloads of one event, by serial, without the EOE the writer never formats. */
function capturedEvent(all: Rec[], serial: number): Rec[] {
  const tag = `:${serial}): `;
  return all.filter((r) => r.type !== 1320 && r.payload.toString('latin1', 0, 40).includes(tag));
}

/**
 * Events as the daemon sees them: each with its own timestamp and serial (and a varying pid/a3 as in the real load),
 * so no two payloads are identical and nothing is memoised by accident.
 */
function buildLoad(events: number): { mix: string; recs: Rec[] }[] {
  const all = readFileSync(FIX, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { type: number; payload: string })
    .map((j) => ({ type: j.type, payload: Buffer.from(j.payload, 'base64') }));
  const getppidRoot = capturedEvent(all, 180); // SYSCALL + PROCTITLE, uid 0
  const getppidNobody = capturedEvent(all, 187); // SYSCALL + PROCTITLE, uid 65534
  const open = capturedEvent(all, 186); // SYSCALL + CWD + PATH + PROCTITLE
  const restamp = (r: Rec, n: number): Rec => {
    let s = r.payload.toString('latin1');
    s = s.replace(
      /^audit\(\d+\.\d+:\d+\)/,
      `audit(${1795885435 + Math.floor(n / 1000)}.${String(n % 1000).padStart(3, '0')}:${1000 + n})`,
    );
    s = s
      .replace(/ pid=\d+/, ` pid=${13995 + (n % 7)}`)
      .replace(/ a3=[0-9a-f]+/, ` a3=${(0x246de350 + n * 16).toString(16)}`);
    return { type: r.type, payload: Buffer.from(s, 'latin1') };
  };
  const make = (mix: string, pick: (n: number) => Rec[]): { mix: string; recs: Rec[] } => {
    const recs: Rec[] = [];
    for (let n = 0; n < events; n++) for (const r of pick(n)) recs.push(restamp(r, n));
    return { mix, recs };
  };
  return [
    make('getppid (bench load)', (n) => (n % 8 === 7 ? getppidNobody : getppidRoot)),
    make('open (SYSCALL CWD PATH PROCTITLE)', () => open),
    make('mixed 3:1 getppid:open', (n) => (n % 4 === 3 ? open : n % 8 === 6 ? getppidNobody : getppidRoot)),
  ];
}

/** ns per record of one timed pass of `records` records through formatInto, as the log writer calls it. */
function pass(f: LineFormatter, recs: Rec[], records: number, dst: Buffer): number {
  let pos = 0;
  let k = 0;
  const t0 = process.hrtime.bigint();
  for (let n = 0; n < records; n++) {
    if (dst.length - pos < MAX_LINE_BYTES) pos = 0;
    const r = recs[k]!;
    pos = f.formatInto(r.type, r.payload, dst, pos);
    if (++k === recs.length) k = 0;
  }
  return Number(process.hrtime.bigint() - t0) / records;
}

function main(): void {
  const records = arg('--records', 2_000_000);
  const reps = arg('--reps', 5);
  const load = buildLoad(1024);
  const dst = Buffer.allocUnsafe(1 << 20);
  // The host's real /etc/passwd and /etc/group, as the daemon uses them.
  const ids = new IdNameCache();
  console.log(`node ${process.version}; ${records} records per pass, median of ${reps} passes`);
  console.log('format    mix                                   records/s     ns/record');
  for (const format of ['RAW', 'ENRICHED'] as LogFormat[]) {
    for (const { mix, recs } of load) {
      const f = new LineFormatter({ format, ids });
      pass(f, recs, Math.min(records, 200_000), dst); // warm-up: let the JIT settle before timing
      const ns: number[] = [];
      for (let i = 0; i < reps; i++) ns.push(pass(f, recs, records, dst));
      ns.sort((a, b) => a - b);
      const med = ns[Math.floor(ns.length / 2)]!;
      console.log(
        `${format.padEnd(9)} ${mix.padEnd(36)} ${Math.round(1e9 / med)
          .toLocaleString('en-US')
          .padStart(11)}   ${med.toFixed(1).padStart(9)}`,
      );
    }
  }
}

main();
