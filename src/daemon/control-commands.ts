// Every control-socket command in one table: its arguments (types, required, checks), validated in one place, and
// what it runs. A new command is one entry here and, when it needs one, a method of ControlTarget.
import type { RouteTestArgs } from '../routing/route-test';
import { PermissionError, UsageError } from '../errors';
import { MsgType } from '../kernel/constants';
import { AUX_ISOLATIONS, OVERFLOW_ACTIONS } from '../config';
import { queueDepthProblem } from '../config/daemon-config';
import { cutUtf8, encodeUntrusted } from '../records/encode';
import { ControlServer, type PeerCred } from './control';
import type { Diag } from './diagnostics';

interface Kinds {
  string: string;
  number: number;
  boolean: boolean;
  strings: string[];
  /** Any JSON value, checked by whoever reads it (container-hook's OCI state). */
  json: unknown;
}
type Kind = keyof Kinds;

type ArgSpec = {
  [K in Kind]: {
    kind: K;
    required?: boolean;
    /** Why the value is refused, or null. */
    check?: (v: Kinds[K]) => string | null;
  };
}[Kind];

type Schema = Record<string, ArgSpec>;
/** The validated arguments: each present one has its declared type. */
type ArgsOf<S extends Schema> = { [k in keyof S]?: Kinds[S[k]['kind']] };

/** What the commands act on: the host daemon. */
export interface ControlTarget {
  statusWithKernel(): Promise<unknown>;
  rotate(): Promise<void>;
  resume(): Promise<void>;
  reload(): Promise<unknown>;
  auxAdd(args: AuxAddArgs, peer?: PeerCred): Promise<unknown>;
  auxRemove(name: string): Promise<unknown>;
  readonly daemons: { list(): unknown };
  readonly contid: {
    set(pid: number, idText: string, nested: boolean, peer: PeerCred): unknown;
    get(pid: number | undefined): unknown;
    hook(state: unknown, bundleAnnotations: unknown): unknown;
    list(): unknown;
  };
  routeTest(args: RouteTestArgs): unknown;
}

interface Command<S extends Schema> {
  args: S;
  /** Any arguments at all (the command refuses them anyway). */
  anyArgs?: boolean;
  run(t: ControlTarget, a: ArgsOf<S>, peer: PeerCred, raw: Record<string, unknown>, refuse: Refuse): unknown;
}

/** Refuses (and records) a request that asks for what no client may change. */
export type Refuse = (reason: string, peer?: PeerCred, fields?: string) => never;

const command = <S extends Schema>(c: Command<S>): Command<S> => c;

/** At most this much JSON in one page of `containers` (the per-client reply limit is 4 MiB). */
export const CONTAINERS_PAGE_BYTES = 1 << 20;
const CONTAINERS_PAGE_ROWS = 1000;

/** One page of `containers`: what a client reads page after page until `next` is null. */
export interface ContainersPage {
  rows: Array<Record<string, unknown>>;
  total: number;
  /** The offset of the next page, or null after the last. */
  next: number | null;
}

/**
 * The rows of `all` from `offset` that fit CONTAINERS_PAGE_BYTES of JSON (one at least): a whole list of containers
 * whose labels and annotations are chosen by whoever starts them passed the control socket's per-client limit, and
 * `auditmux containers` failed. A row that alone passes the page's size is sent without its labels and annotations,
 * marked `truncated`.
 */
export function containersPage(all: ReadonlyArray<Record<string, unknown>>, offset: number): ContainersPage {
  const rows: Array<Record<string, unknown>> = [];
  let bytes = 0;
  let i = offset;
  for (; i < all.length && rows.length < CONTAINERS_PAGE_ROWS; i++) {
    let row = all[i]!;
    let n = JSON.stringify(row).length;
    if (n > CONTAINERS_PAGE_BYTES) {
      const { labels: _l, annotations: _a, ...rest } = row;
      row = { ...rest, truncated: true };
      n = JSON.stringify(row).length;
    }
    if (rows.length > 0 && bytes + n > CONTAINERS_PAGE_BYTES) break;
    rows.push(row);
    bytes += n;
  }
  return { rows, total: all.length, next: i < all.length ? i : null };
}

const offsetProblem = (v: number): string | null =>
  Number.isSafeInteger(v) && v >= 0 ? null : 'must be a whole number from 0';
const oneOf =
  (choices: readonly string[]) =>
  (v: string): string | null =>
    choices.includes(v) ? null : `must be one of ${choices.join(', ')}`;

const AUX_ADD = {
  name: { kind: 'string', required: true },
  contid: { kind: 'strings' },
  rules: { kind: 'string' },
  log: { kind: 'string' },
  queue: { kind: 'json', check: queueDepthProblem },
  overflow: { kind: 'string', check: oneOf(OVERFLOW_ACTIONS) },
  user: { kind: 'string' },
  isolation: { kind: 'string', check: oneOf(AUX_ISOLATIONS) },
} satisfies Schema;

/** `aux add`'s arguments as the host takes them (from the control socket or a library caller). */
export interface AuxAddArgs {
  name: string;
  contid: string[];
  rules?: string | null;
  log?: string;
  queue?: number;
  overflow?: string;
  user?: string;
  isolation?: string;
}

const COMMANDS: Record<string, Command<Schema>> = {
  status: command({ args: {}, run: (t) => t.statusWithKernel() }),
  rotate: command({ args: {}, run: async (t) => (await t.rotate(), { rotated: true }) }),
  resume: command({ args: {}, run: async (t) => (await t.resume(), { resumed: true }) }),
  reload: command({ args: {}, run: (t) => t.reload() }),
  'aux-add': command({
    args: AUX_ADD,
    run: (t, a, peer) =>
      t.auxAdd(
        {
          name: a.name!,
          contid: a.contid ?? [],
          rules: a.rules || null,
          ...(a.log ? { log: a.log } : {}),
          ...(a.queue !== undefined ? { queue: a.queue as number } : {}),
          ...(a.overflow ? { overflow: a.overflow } : {}),
          ...(a.user ? { user: a.user } : {}),
          ...(a.isolation ? { isolation: a.isolation } : {}),
        },
        peer,
      ),
  }),
  'aux-remove': command({ args: { name: { kind: 'string', required: true } }, run: (t, a) => t.auxRemove(a.name!) }),
  'aux-list': command({ args: {}, run: (t) => t.daemons.list() }),
  'contid-set': command({
    args: {
      pid: { kind: 'number', required: true, check: pidProblem },
      contid: { kind: 'string', required: true },
      nested: { kind: 'boolean' },
    },
    run: (t, a, peer) => t.contid.set(a.pid!, a.contid!, a.nested === true, peer),
  }),
  'contid-get': command({ args: { pid: { kind: 'number', check: pidProblem } }, run: (t, a) => t.contid.get(a.pid) }),
  'container-hook': command({
    args: { state: { kind: 'json' }, bundleAnnotations: { kind: 'json' } },
    run: (t, a) => t.contid.hook(a.state, a.bundleAnnotations),
  }),
  // Without an offset the whole list, as before (it fails past the reply limit); with one, a page of it.
  containers: command({
    args: { offset: { kind: 'number', check: offsetProblem } },
    run: (t, a) => {
      const all = t.contid.list() as Array<Record<string, unknown>>;
      return a.offset === undefined ? all : containersPage(all, a.offset);
    },
  }),
  'route-test': command({
    args: {
      contid: { kind: 'string' },
      types: { kind: 'strings' },
      keys: { kind: 'strings' },
      container: { kind: 'json' },
    },
    run: (t, a) =>
      t.routeTest({
        ...(a.contid ? { contid: a.contid } : {}),
        types: a.types ?? [],
        keys: a.keys ?? [],
        ...(a.container !== undefined ? { container: a.container } : {}),
      }),
  }),
  // Host-wide settings belong to the configuration and rules files of the host daemon, never to a request.
  'kernel-set': command({
    args: {},
    anyArgs: true,
    run: (_t, _a, peer, raw, refuse) =>
      refuse('host-wide setting change requested over the control socket', peer, ` args=${argsText(raw)}`),
  }),
};

/** The kernel's pid_max ceiling (PID_MAX_LIMIT on 64-bit): a pid is a whole number in 1..this. */
const PID_MAX = 4194304;

function pidProblem(v: number): string | null {
  return Number.isInteger(v) && v >= 1 && v <= PID_MAX ? null : `must be a whole number in 1..${PID_MAX}`;
}

/**
 * A refused request's arguments as its record shows them, cut to 1 KiB. Any JSON value the client sent can be
 * printed (it was parsed from a line), but one nested deeper than the stack overflowed JSON.stringify, and the
 * refusal went unrecorded.
 */
function argsText(raw: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(raw);
  } catch {
    text = '(unprintable)';
  }
  return encodeUntrusted(text.slice(0, 1024));
}

function kindOk(kind: Kind, v: unknown): boolean {
  switch (kind) {
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'strings':
      return Array.isArray(v) && v.every((x) => typeof x === 'string');
    case 'json':
      return true;
  }
}

const KIND_TEXT: Record<Kind, string> = {
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
  strings: 'a list of strings',
  json: 'a JSON value',
};

/** The arguments of `cmd` checked against its schema; any problem is a UsageError naming the argument. */
export function validateArgs(cmd: string, args: Record<string, unknown>): Record<string, unknown> {
  // Own properties only: `constructor` or `__proto__` as a command name reached Object.prototype's members.
  const c = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!c) throw new UsageError(`unknown control command "${cmd}"`);
  if (c.anyArgs) return args;
  for (const key of Object.keys(args)) {
    if (!Object.prototype.hasOwnProperty.call(c.args, key))
      throw new UsageError(`${cmd}: unknown argument "${key.slice(0, 40)}"`);
  }
  for (const [key, spec] of Object.entries(c.args)) {
    const v = args[key];
    if (v === undefined || v === null) {
      if (spec.required) throw new UsageError(`${cmd}: argument "${key}" is required`);
      continue;
    }
    if (!kindOk(spec.kind, v)) throw new UsageError(`${cmd}: argument "${key}" must be ${KIND_TEXT[spec.kind]}`);
    const bad = spec.check?.(v as never);
    if (bad) throw new UsageError(`${cmd}: argument "${key}" ${bad}`);
  }
  return args;
}

export interface ControlCommandsOptions {
  diag: Diag;
  /** auditmux's own record in the host log. */
  record: (type: number, body: string) => void;
  /** A pid that is one of the auxiliary daemons' own processes. */
  isDaemonProcess: (pid: number) => boolean;
  counters: { refused: number };
}

/** The control socket of the host: who may ask, what is refused (and recorded), and each request run by the table. */
export class ControlCommands {
  private server: ControlServer | null = null;

  constructor(
    private readonly target: ControlTarget,
    private readonly o: ControlCommandsOptions,
  ) {}

  async listen(path: string): Promise<void> {
    this.server = new ControlServer(path, (cmd, args, peer) => this.handle(cmd, args, peer));
    await this.server.listen();
  }

  /** `fields`: more ` name=value` text, already encoded. The reason carries tenants' text (rule lines, file names). */
  readonly refuse: Refuse = (reason, peer, fields = '') => {
    this.o.counters.refused++;
    // Cut to 2 KiB of UTF-8 (not characters: one can be 4 bytes), so that its hex (twice the bytes) and the fields
    // after it stay within auditd's line limit: a longer reason would push pid=, uid= and res= off the line.
    const who = peer ? ` pid=${peer.pid} uid=${peer.uid}` : '';
    const why = encodeUntrusted(cutUtf8(reason, 2048));
    this.o.record(MsgType.DAEMON_ERR, `op=refused reason=${why}${fields}${who} res=failed`);
    throw new PermissionError(reason, 'E_HOST_WIDE');
  };

  /** Validates and runs one request. */
  handle(cmd: string, args: Record<string, unknown>, peer: PeerCred): Promise<unknown> {
    this.o.diag.debug?.({ cmd, peer }, 'control request');
    // An auxiliary daemon's own process gets nothing here, whatever user it runs as.
    if (this.o.isDaemonProcess(peer.pid))
      this.refuse(`control request ${cmd} from an auxiliary daemon's process`, peer);
    const a = validateArgs(cmd, args);
    return Promise.resolve(COMMANDS[cmd]!.run(this.target, a, peer, args, this.refuse));
  }

  stats(): Record<string, unknown> {
    return this.server ? { control: this.server.stats() } : {};
  }

  async close(): Promise<void> {
    await this.server?.close().catch(() => undefined);
  }
}
