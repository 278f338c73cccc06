// The host's record path without a kernel: records pushed as the netlink batches deliver them, a stub sink that
// notes what reaches the host log, in what order.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../../src/config';
import { ContidTracker } from '../../src/contid/tracker';
import type { DaemonRegistry } from '../../src/daemon/daemon-registry';
import { RecordPath, type RecordPathOptions } from '../../src/daemon/record-path';
import type { EventRecord } from '../../src/records/event';
import type { Sink } from '../../src/output/sink';

const rec = (type: number, serial: number, body = 'x=1'): [number, Buffer] => [
  type,
  Buffer.from(`audit(1700000000.000:${serial}): ${body}`),
];

interface World {
  path: RecordPath;
  /** What reached the host log: `TYPE:serial`, one entry per record in log order. */
  log: string[];
  push(type: number, buf: Buffer): void;
  warnings: string[];
  counters: RecordPathOptions['counters'];
}

/**
 * A route that selects record types needs the whole event: with it (`whole`), every event is made whole before it is
 * routed; without, a syscall event passes through from its SYSCALL record on (StreamedEvent).
 */
const TYPES_ROUTE = { index: 0, contid: [], types: [1400], keys: null, daemons: ['nobody'], continue: false };

function world(opts: { clock?: () => number; sink?: boolean; whole?: boolean } = {}): World {
  const log: string[] = [];
  const warnings: string[] = [];
  const note = (type: number, p: Buffer): void => {
    const m = /:(\d+)\)/.exec(p.toString('latin1', 0, 60));
    log.push(`${type}:${m ? m[1] : '?'}`);
  };
  const registry = {
    allRoutes: () => (opts.whole ? [TYPES_ROUTE] : []),
    rulesOwners: () => new Set<string>(),
    enqueue: () => undefined,
    pumpAll: () => undefined,
    hostLog: null,
  } as unknown as DaemonRegistry;
  const diag = {
    info: () => undefined,
    warn: (_o: unknown, m?: string) => warnings.push(m ?? ''),
    error: () => undefined,
  };
  const o: RecordPathOptions = {
    diag,
    tracker: new ContidTracker({ proc: { stat: () => null, children: () => [], cgroupText: () => null } }),
    registry,
    keysFor: (_owner, full) => full,
    keyGroup: () => undefined,
    noteEvent: () => undefined,
    counters: { records: 0, internalErrors: 0, noDaemon: 0 },
    ...(opts.clock ? { clock: opts.clock } : {}),
  };
  const config = { host: { reassembly: { timeoutMs: 2000, maxInFlight: 4096 }, keep: 'all' } } as unknown as Config;
  const path = new RecordPath(o, config);
  if (opts.sink !== false)
    path.sink = {
      log: { wholeEvents: false, flush: () => true },
      takesStream: true,
      writeRecord: (type: number, p: Buffer) => {
        if (type !== 1320) note(type, p);
      },
      writeRecordAt: (type: number, b: Buffer, s: number, e: number) => {
        if (type !== 1320) note(type, b.subarray(s, e));
      },
      writeLogEvent: (records: readonly EventRecord[]) => {
        for (const r of records) if (r.type !== 1320) note(r.type, r.payload);
        return true;
      },
      writeOutputs: () => undefined,
      // One output (a plugin): events passing through then get the EOE made after their PROCTITLE, as plugins do.
      outputs: [{}],
      flush: () => true,
    } as unknown as Sink;
  // One record per receive batch, as a trickle of records arrives.
  const push = (type: number, buf: Buffer): void => {
    path.onRecord(type, buf, 0, buf.length);
    path.endBatch();
  };
  return { path, log, push, warnings, counters: o.counters };
}

describe('the record path: the reassembler keeps its own monotonic clock', () => {
  it('events without EOE time out by the monotonic clock alone (p1)', () => {
    // tick() takes no time: the wall clock the host once passed (Date.now(), stepped back an hour by NTP or an admin)
    // held an event without EOE for that hour.
    let mono = 10_000;
    const w = world({ clock: () => mono });
    w.path.eventMode = true;
    w.path.tick();
    w.push(...rec(1305, 1)); // CONFIG_CHANGE-like: no EOE ever comes
    w.path.tick();
    w.push(...rec(1324, 2));
    for (let t = 1; t <= 10; t++) {
      mono += 1000;
      w.path.tick();
    }
    assert.deepEqual(w.log, ['1305:1', '1324:2'], 'both out within the timeout, whatever the wall clock said');
  });

  for (const whole of [true, false])
    it(`records before the first tick do not time out at it: a SYSCALL and its PATH stay one event (p2, ${whole ? 'made whole' : 'passed through'})`, () => {
      const w = world({ whole }); // the default clock (performance.now)
      w.path.eventMode = true;
      w.push(...rec(1300, 7));
      w.path.tick(); // the daemon's first 250 ms tick
      w.push(...rec(1302, 7));
      assert.deepEqual(
        w.log,
        whole ? [] : ['1300:7', '1302:7'],
        whole ? 'still waiting for the EOE' : 'written as they come',
      );
      w.push(...rec(1320, 7));
      assert.deepEqual(w.log, ['1300:7', '1302:7']);
      const r = w.path.status().reassembly as { timeouts: number; passed: number; events: number };
      assert.equal(r.timeouts, 0);
      assert.equal(r.events, 1);
      assert.equal(r.passed, whole ? 0 : 1);
    });
});

describe('the record path: a change of mode keeps the order of the log', () => {
  it('leaving event mode mid-event: the SYSCALL held for its EOE is written before the PATH streamed after it', () => {
    const w = world();
    w.path.eventMode = true;
    w.push(...rec(1300, 7));
    w.path.eventMode = false; // the last auxiliary daemon went, no contid is tracked
    w.push(...rec(1302, 7));
    w.push(...rec(1327, 7));
    w.push(...rec(1320, 7));
    assert.deepEqual(w.log, ['1300:7', '1302:7', '1327:7']);
    assert.equal((w.path.status().reassembly as { inFlight: number }).inFlight, 0);
  });

  it('entering event mode mid-event: the streamed head and the assembled tail stay in order', () => {
    const w = world();
    w.push(...rec(1300, 8));
    w.path.eventMode = true;
    w.push(...rec(1302, 8));
    w.push(...rec(1320, 8));
    assert.deepEqual(w.log, ['1300:8', '1302:8']);
  });
});

describe("the EOE made for plugins from an event's header", () => {
  it('a SYSCALL whose payload ends at its header (`audit(...):`, no space, no body) is routed, not an internal error', () => {
    // The EOE's payload is the header up to `): `; this one stops a byte short of where that would end.
    const w = world();
    w.path.eventMode = true;
    w.push(1300, Buffer.from('audit(1700000000.000:9):'));
    w.push(...rec(1320, 9));
    assert.equal(w.counters.internalErrors, 0);
    assert.deepEqual(w.log, ['1300:9']);
  });
});

describe('the record path without a log open', () => {
  it('records that come before the sink is opened are counted and logged once, not dropped silently', () => {
    const w = world({ sink: false });
    w.push(...rec(1305, 1));
    w.push(...rec(1305, 2));
    w.path.eventMode = true;
    w.push(...rec(1300, 3));
    w.push(...rec(1320, 3)); // the event ends: with no sink its records are counted, nothing throws
    const intake = w.path.status().intake as { droppedNoLog: number };
    assert.equal(intake.droppedNoLog, 4, 'two streamed records, the SYSCALL and the EOE plugins would get');
    assert.equal(w.warnings.length, 1);
  });
});
