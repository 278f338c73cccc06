// The auditmux command line: parses arguments with commander and maps results and errors to exit codes.
import { Command, CommanderError, Option } from 'commander';
import { AuditmuxError, ExitCode, UsageError } from '../errors';
import { VERSION } from '../shared';
import { DEFAULT_CONFIG_PATH, checkConfig, defaultConfig, formatCheckReport, loadConfig } from '../config';
import { controlRequest } from '../daemon/control';
import { queueDepthProblem } from '../config/daemon-config';
import { rulesDelete, rulesList, rulesLoad } from './rules';
import { formatAuxRows, formatCounters, readKernelStatus } from './status';
import { formatContainers, hookFailuresNote, runOciHook } from './oci-hook';
import { addHooksToBundle } from '../containers/bundle-hooks';
import { dirname } from 'node:path';
import { registerCollect } from './collect';
import { runRouteTest } from './route-test';
import { jsonLine, messageEscape } from '../search/escape';
// The daemon, search/report and the collector are loaded by their own subcommand only: each pulls in well over a
// hundred modules (the NATS client alone about 80), and `oci-hook` runs at every container start within a deadline.
const lazy = {
  daemon: () => import('../daemon/run'),
  search: () => import('../search'),
};
import { existsSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  outBytes?: (b: Buffer) => void;
}

const defaultIo: Io = {
  out: (s) => process.stdout.write(s.endsWith('\n') ? s : s + '\n'),
  err: (s) => process.stderr.write(s.endsWith('\n') ? s : s + '\n'),
  outBytes: (b) => process.stdout.write(b),
};

/** Where the daemon listens when no config file says otherwise: the built-in default config's control_socket. */
const DEFAULT_CONTROL_SOCKET = defaultConfig().host.controlSocket;

function controlPath(configPath: string | undefined): string {
  const p = configPath ?? DEFAULT_CONFIG_PATH;
  if (existsSync(p)) return loadConfig(p).host.controlSocket;
  if (configPath) throw new UsageError(`config file ${configPath} does not exist`);
  return DEFAULT_CONTROL_SOCKET;
}

export function buildProgram(io: Io, setCode: (n: number) => void): Command {
  const program = new Command('auditmux')
    .description('multi-daemon Linux audit daemon: host daemon, auxiliary daemons, routing by container ID')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError();

  program
    .command('daemon')
    .description('run the host daemon in the foreground')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG_PATH)
    .option('--defaults', 'run with the built-in defaults, ignoring any config file')
    .addOption(
      new Option('--log-level <level>', 'diagnostics level').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
        'silent',
      ]),
    )
    .action(async (o: { config: string; defaults?: boolean; logLevel?: string }) => {
      const { runDaemon } = await lazy.daemon();
      setCode(
        await runDaemon({ configPath: o.defaults ? null : o.config, ...(o.logLevel ? { logLevel: o.logLevel } : {}) }),
      );
    });

  program
    .command('status')
    .description("kernel audit status (as auditctl -s) and the running daemon's counters")
    .option('-c, --config <file>', 'configuration file (for the control socket path)')
    .action(async (o: { config?: string }) => {
      io.out(await readKernelStatus());
      try {
        const r = (await controlRequest(controlPath(o.config), 'status')) as Record<string, unknown>;
        const { kernel: _k, ...rest } = r;
        io.out(formatCounters('auditmux', rest).join('\n'));
      } catch (e) {
        if (e instanceof AuditmuxError && e.code === 'E_NO_DAEMON') io.out('auditmux daemon not running');
        else throw e;
      }
    });

  registerCollect(program, io, setCode);

  const rules = program.command('rules').description('load, list and delete kernel audit rules (auditctl language)');
  rules
    .command('load <path>')
    .description('load a rules file or an augenrules-style rules.d directory')
    .option('-i, --ignore-errors', 'keep going past bad lines, as auditctl -i')
    .action(async (path: string, o: { ignoreErrors?: boolean }) => {
      const s = await rulesLoad(path, { ignoreErrors: !!o.ignoreErrors });
      // A rules file's text is quoted in its errors: controls escaped for the terminal.
      for (const e of s.errors) io.err(messageEscape(e));
      io.out(`added ${s.added}, deleted ${s.deleted}, errors ${s.errors.length}`);
      if (s.errors.length && !o.ignoreErrors) setCode(ExitCode.RULES);
    });
  rules
    .command('list')
    .description('list the kernel rules exactly as auditctl -l prints them')
    .option('-k, --key <key>', 'only rules with this key')
    .action(async (o: { key?: string }) => {
      // Keys are any bytes a rules file gave (a tenant's): auditctl -l's text, with controls escaped.
      io.out(messageEscape(await rulesList(o.key)));
    });
  rules
    .command('delete')
    .description('delete all kernel rules (as auditctl -D), or only those with a key')
    .option('-k, --key <key>', 'only rules with this key')
    .action(async (o: { key?: string }) => {
      const n = await rulesDelete(o.key);
      io.out(`deleted ${n}`);
    });

  const config = program.command('config').description('configuration tools');
  config
    .command('check <file>')
    .description('validate a configuration file without touching the kernel')
    .action((file: string) => {
      const r = checkConfig(file);
      // The report quotes the file's text (an unknown key, a bad value): controls escaped for the terminal.
      const text = messageEscape(formatCheckReport(r));
      if (r.errors.length) {
        io.err(text);
        setCode(ExitCode.CONFIG);
      } else io.out(text);
    });

  const ctl = async (
    configPath: string | undefined,
    cmd: string,
    args: Record<string, unknown> = {},
  ): Promise<unknown> => controlRequest(controlPath(configPath), cmd, args);
  const positiveInt =
    (what: string) =>
    (v: string): number => {
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`${what} must be a positive integer, got "${v}"`);
      return Number(v);
    };

  // The daemon checks it too (it answers other clients); checked here so that a typo fails before any connection.
  const queueDepthArg = (v: string): number => {
    const bad = /^\d{1,12}$/.test(v) ? queueDepthProblem(Number(v)) : queueDepthProblem(v);
    if (bad) throw new UsageError(`--queue ${bad}`);
    return Number(v);
  };

  // search and report parse their own arguments: ausearch's short options (-pp, -ui, -ts) are not commander's.
  for (const [name, desc, runner] of [
    [
      'search',
      'find whole events in auditd-format logs by contid and ausearch criteria (see auditmux search --help)',
      'runSearch',
    ],
    ['report', 'per-container summary of audit logs, as text, JSON or a self-contained HTML page', 'runReport'],
  ] as const) {
    program
      .command(name)
      .description(desc)
      .helpOption(false)
      .allowUnknownOption()
      .allowExcessArguments()
      .argument('[args...]')
      .action(async (args: string[]) => {
        setCode(await (await lazy.search())[runner](args, io));
      });
  }

  const aux = program.command('aux').description('auxiliary audit daemons of the running host daemon');
  aux
    .command('add <name>')
    .description('start an auxiliary daemon with its own rules, queue and log, routed the given contids')
    .requiredOption('--contid <list>', 'contid selectors, comma separated (N, 0xN, LO-HI, unset, N^* for nested)')
    .option('--rules <file>', 'its rules (auditctl language); host-wide settings are refused')
    .option(
      '--log <path>',
      'its log file (default: beside the host log, NAME.log; with --user, a directory of its own, NAME/NAME.log)',
    )
    .option('--queue <n>', 'queue depth', queueDepthArg)
    .addOption(
      new Option('--overflow <policy>', 'what a full queue does').choices(['block', 'drop_newest', 'drop_oldest']),
    )
    .option('--user <user>', 'run its process as this user (implies --isolation process)')
    .addOption(
      new Option('--isolation <mode>', 'inline: written by the host process; process: a process of its own').choices([
        'inline',
        'process',
      ]),
    )
    .option('-c, --config <file>', 'configuration file (for the control socket path)')
    .action(
      async (
        name: string,
        o: {
          contid: string;
          rules?: string;
          log?: string;
          queue?: number;
          overflow?: string;
          user?: string;
          isolation?: string;
          config?: string;
        },
      ) => {
        const r = await ctl(o.config, 'aux-add', {
          name,
          contid: splitSelectors(o.contid),
          ...(o.rules ? { rules: resolvePath(o.rules) } : {}),
          ...(o.log ? { log: resolvePath(o.log) } : {}),
          ...(o.queue ? { queue: o.queue } : {}),
          ...(o.overflow ? { overflow: o.overflow } : {}),
          ...(o.user ? { user: o.user } : {}),
          ...(o.isolation ? { isolation: o.isolation } : {}),
        });
        io.out(formatAuxRows([r as Record<string, unknown>]));
      },
    );
  aux
    .command('list')
    .description('auxiliary daemons: state, queue depth and counters')
    .option('--json', 'JSON output')
    .option('-c, --config <file>', 'configuration file (for the control socket path)')
    .action(async (o: { json?: boolean; config?: string }) => {
      const rows = (await ctl(o.config, 'aux-list')) as Array<Record<string, unknown>>;
      io.out(o.json ? jsonLine(rows) : formatAuxRows(rows));
    });
  aux
    .command('remove <name>')
    .description('stop an auxiliary daemon added at run time (after it has written its queue) and drop its rules')
    .option('-c, --config <file>', 'configuration file (for the control socket path)')
    .action(async (name: string, o: { config?: string }) => {
      await ctl(o.config, 'aux-remove', { name });
      io.out(`removed ${name}`);
    });

  const contid = program.command('contid').description('audit container IDs');
  contid
    .command('set <pid> <id>')
    .description('give a process (and its future children) a container ID; root only')
    .option('--nested', 'the process already has an ID: nest the new one inside it')
    .option('-c, --config <file>', 'configuration file (for the control socket path)')
    .action(async (pid: string, id: string, o: { nested?: boolean; config?: string }) => {
      const r = (await ctl(o.config, 'contid-set', {
        pid: positiveInt('pid')(pid),
        contid: id,
        nested: !!o.nested,
      })) as { pid: number; contid: string; old: string | null };
      io.out(`pid ${r.pid} contid ${r.contid}${r.old ? ` (was ${r.old})` : ''}`);
    });
  contid
    .command('get [pid]')
    .description('the container ID of a process, or every process auditmux tracks')
    .option('-c, --config <file>', 'configuration file (for the control socket path)')
    .action(async (pid: string | undefined, o: { config?: string }) => {
      const r = await ctl(o.config, 'contid-get', pid ? { pid: positiveInt('pid')(pid) } : {});
      if (Array.isArray(r))
        io.out(
          r
            .map((e: { pid: number; contid: string; source: string }) => `${e.pid} ${e.contid} ${e.source}`)
            .join('\n') || 'no tracked processes',
        );
      else io.out(`pid ${(r as { pid: number }).pid} contid ${(r as { contid: string }).contid}`);
    });

  program
    .command('oci-hook')
    .description('OCI runtime hook: registers (createRuntime/prestart) or retires (poststop) the container on stdin')
    .option('--fail-closed', 'exit non-zero when the daemon cannot be told (the runtime then refuses the container)')
    .option('--socket <path>', 'control socket of the host daemon (default: from the config file)')
    .option(
      '--timeout <ms>',
      'give up after this long (reading stdin and asking the daemon)',
      positiveInt('--timeout'),
      3000,
    )
    .option('-c, --config <file>', 'configuration file (for the control socket path)')
    .action(async (o: { failClosed?: boolean; socket?: string; timeout: number; config?: string }) => {
      // The time starts before the config file is read (size-bounded, never a FIFO): the whole run is bounded.
      const deadline = Date.now() + o.timeout;
      let socket = o.socket;
      if (!socket) {
        try {
          socket = controlPath(o.config);
        } catch (e) {
          if (o.failClosed) throw e;
          socket = DEFAULT_CONTROL_SOCKET;
          // Said on stderr: a runtime shows it with the hook's output, and the default socket may not be the daemon's.
          io.err(`auditmux oci-hook: ${(e as Error).message} (trying ${socket})`);
        }
      }
      setCode(
        await runOciHook({
          socket,
          timeoutMs: o.timeout,
          deadline,
          failClosed: !!o.failClosed,
          stdin: process.stdin,
          err: io.err,
          out: io.err,
        }),
      );
    });

  program
    .command('oci-bundle-hooks <bundle>')
    .description(
      "add the oci-hook to a bundle's config.json (createRuntime, poststop): for runtimes without hooks.d (scripts/runc-auditmux)",
    )
    .option('--fail-closed', 'the hook refuses the container when the daemon cannot be told')
    .option('--socket <path>', 'control socket the hook talks to')
    .option('--timeout <ms>', "the hook's time limit", positiveInt('--timeout'))
    .option('--hook-path <path>', 'the auditmux executable the runtime runs (default: this one)')
    .action((bundle: string, o: { failClosed?: boolean; socket?: string; timeout?: number; hookPath?: string }) => {
      const args = [
        'auditmux',
        'oci-hook',
        ...(o.failClosed ? ['--fail-closed'] : []),
        ...(o.socket ? ['--socket', resolvePath(o.socket)] : []),
        ...(o.timeout ? ['--timeout', String(o.timeout)] : []),
      ];
      const changed = addHooksToBundle(resolvePath(bundle), {
        path: o.hookPath ?? resolvePath(process.argv[1] ?? '/usr/local/sbin/auditmux'),
        args,
        // Runtimes run hooks with an empty environment; the CLI's #! line needs node on PATH.
        env: [`PATH=${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`],
      });
      io.err(
        changed
          ? `auditmux: hooks added to ${bundle}/config.json`
          : `auditmux: ${bundle}/config.json already has the hooks`,
      );
    });

  program
    .command('containers')
    .description('containers the host daemon knows: contid, runtime, ID, name, image, Kubernetes fields, events')
    .option('--json', 'JSON output')
    .option('-c, --config <file>', 'configuration file (for the control socket path)')
    .action(async (o: { json?: boolean; config?: string }) => {
      const rows = await allContainers((offset) => ctl(o.config, 'containers', { offset }));
      io.out(o.json ? jsonLine(rows) : formatContainers(rows));
      // Hooks that failed open leave no trace the runtime shows: the table says how many (the JSON stays the rows).
      if (!o.json) {
        const note = hookFailuresNote((await ctl(o.config, 'status')) as Record<string, unknown>);
        if (note) io.out(note);
      }
    });

  program
    .command('route')
    .description('routing table tools')
    .command('test')
    .description('which daemons would get an event with this contid, container metadata, record types and keys')
    .option('--contid <chains>', 'contid list as in CONTAINER_ID records (100, 4,^2,^1, 2,^1,3,^1) or unset', 'unset')
    .option('--name <name>', "the container's name (route selectors container.name)")
    .option('--image <image>', "the container's image")
    .option('--runtime <runtime>', "the container's runtime (podman, runc, docker, containerd, cri-o, ...)")
    .option('--pod <pod>', "the container's Kubernetes pod")
    .option('--namespace <ns>', "the container's Kubernetes namespace")
    .option(
      '--label <key=value>',
      'a label of the container (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option('-m, --type <types>', 'record types, comma separated (default SYSCALL)')
    .option('-k, --key <keys>', 'rule keys, comma separated')
    .option('-c, --config <file>', 'configuration file (for the control socket path)')
    .action(
      async (o: {
        contid: string;
        type?: string;
        key?: string;
        config?: string;
        name?: string;
        image?: string;
        runtime?: string;
        pod?: string;
        namespace?: string;
        label: string[];
      }) => {
        // Without metadata options the host uses what it knows of the contid's container.
        const container: Record<string, unknown> = {};
        for (const f of ['name', 'image', 'runtime', 'pod', 'namespace'] as const)
          if (o[f] !== undefined) container[f] = o[f];
        if (o.label.length) {
          const labels: Record<string, string> = {};
          for (const l of o.label) {
            const eq = l.indexOf('=');
            if (eq <= 0) throw new UsageError(`--label ${l}: write KEY=VALUE`);
            labels[l.slice(0, eq)] = l.slice(eq + 1);
          }
          container.labels = labels;
        }
        io.out(
          await runRouteTest(o.config, {
            contid: o.contid,
            types: o.type ? o.type.split(',') : [],
            keys: o.key ? o.key.split(',') : [],
            ...(Object.keys(container).length ? { container } : {}),
          }),
        );
      },
    );

  for (const [name, desc] of [
    ['rotate', "rotate the running daemon's log now (as SIGUSR1)"],
    ['resume', 'resume logging after a suspend (as SIGUSR2)'],
    ['reload', 're-read the configuration (as SIGHUP)'],
  ] as const) {
    program
      .command(name)
      .description(desc)
      .option('-c, --config <file>', 'configuration file (for the control socket path)')
      .action(async (o: { config?: string }) => {
        const r = await controlRequest(controlPath(o.config), name);
        // The answer can quote a tenant's rule text (a reload's error): C1 controls escaped too.
        io.out(jsonLine(r));
        if (name === 'reload' && (r as { ok?: boolean }).ok === false) setCode(ExitCode.CONFIG);
      });
  }
  return program;
}

/** Runs the CLI; returns the exit code instead of exiting (only bin/auditmux sets the process status). */
export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  let code: number = ExitCode.OK;
  const program = buildProgram(io, (n) => (code = n));
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help')
        return ExitCode.OK;
      return ExitCode.USAGE;
    }
    if (e instanceof AuditmuxError) {
      io.err(`auditmux: ${messageEscape(e.message)}`);
      return e.exitCode;
    }
    io.err(`auditmux: ${messageEscape((e as Error)?.stack ?? String(e))}`);
    return ExitCode.FAILURE;
  }
  return code;
}

/** Splits `100,200-299,5^*` into selectors. */
function splitSelectors(text: string): string[] {
  return text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
}

/**
 * Every container the daemon knows, read page by page (ContainersPage): a page is at most 1 MiB, so a list of any
 * size passes the control socket's reply limit. Stops when a page would not move on (a daemon that answers wrong).
 */
export async function allContainers(
  page: (offset: number) => Promise<unknown>,
): Promise<Array<Record<string, unknown>>> {
  const rows: Array<Record<string, unknown>> = [];
  for (let offset: number | null = 0; offset !== null;) {
    const p = (await page(offset)) as { rows?: unknown; next?: unknown };
    if (!Array.isArray(p?.rows))
      throw new AuditmuxError('E_CONTROL_PROTOCOL', 'containers: the daemon sent no page of rows', ExitCode.FAILURE);
    rows.push(...(p.rows as Array<Record<string, unknown>>));
    const next: number | null = typeof p.next === 'number' && p.next > offset ? p.next : null;
    offset = next;
  }
  return rows;
}
