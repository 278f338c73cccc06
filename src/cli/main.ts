// The auditmux command line: parses arguments with commander and maps results and errors to exit codes.
import { Command, CommanderError, Option } from 'commander';
import { AuditmuxError, ExitCode, UsageError } from '../errors';
import { DEFAULT_CONFIG_PATH, checkConfig, formatCheckReport, loadConfig } from '../config';
import { controlRequest } from '../daemon/control';
import { runDaemon } from '../daemon/run';
import { rulesDelete, rulesList, rulesLoad } from './rules';
import { formatCounters, readKernelStatus } from './status';
import { existsSync } from 'node:fs';

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIo: Io = {
  out: (s) => process.stdout.write(s.endsWith('\n') ? s : s + '\n'),
  err: (s) => process.stderr.write(s.endsWith('\n') ? s : s + '\n'),
};

function controlPath(configPath: string | undefined): string {
  const p = configPath ?? DEFAULT_CONFIG_PATH;
  if (existsSync(p)) return loadConfig(p).host.controlSocket;
  if (configPath) throw new UsageError(`config file ${configPath} does not exist`);
  return '/run/auditmux/control.sock';
}

export function buildProgram(io: Io, setCode: (n: number) => void): Command {
  const program = new Command('auditmux')
    .description('multi-daemon Linux audit daemon: host daemon, auxiliary daemons, routing by container ID')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError();

  program
    .command('daemon')
    .description('run the host daemon in the foreground')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG_PATH)
    .option('--defaults', 'run with the built-in defaults, ignoring any config file')
    .addOption(new Option('--log-level <level>', 'diagnostics level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .action(async (o: { config: string; defaults?: boolean; logLevel?: string }) => {
      setCode(await runDaemon({ configPath: o.defaults ? null : o.config, ...(o.logLevel ? { logLevel: o.logLevel } : {}) }));
    });

  program
    .command('status')
    .description('kernel audit status (as auditctl -s) and the running daemon\'s counters')
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

  const rules = program.command('rules').description('load, list and delete kernel audit rules (auditctl language)');
  rules
    .command('load <path>')
    .description('load a rules file or an augenrules-style rules.d directory')
    .option('-i, --ignore-errors', 'keep going past bad lines, as auditctl -i')
    .action(async (path: string, o: { ignoreErrors?: boolean }) => {
      const s = await rulesLoad(path, { ignoreErrors: !!o.ignoreErrors });
      for (const e of s.errors) io.err(e);
      io.out(`added ${s.added}, deleted ${s.deleted}, errors ${s.errors.length}`);
      if (s.errors.length && !o.ignoreErrors) setCode(ExitCode.RULES);
    });
  rules
    .command('list')
    .description('list the kernel rules exactly as auditctl -l prints them')
    .option('-k, --key <key>', 'only rules with this key')
    .action(async (o: { key?: string }) => {
      io.out(await rulesList(o.key));
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
      const text = formatCheckReport(r);
      if (r.errors.length) {
        io.err(text);
        setCode(ExitCode.CONFIG);
      } else io.out(text);
    });

  for (const [name, desc] of [
    ['rotate', 'rotate the running daemon\'s log now (as SIGUSR1)'],
    ['resume', 'resume logging after a suspend (as SIGUSR2)'],
    ['reload', 're-read the configuration (as SIGHUP)'],
  ] as const) {
    program
      .command(name)
      .description(desc)
      .option('-c, --config <file>', 'configuration file (for the control socket path)')
      .action(async (o: { config?: string }) => {
        const r = await controlRequest(controlPath(o.config), name);
        io.out(JSON.stringify(r));
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
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return ExitCode.OK;
      return ExitCode.USAGE;
    }
    if (e instanceof AuditmuxError) {
      io.err(`auditmux: ${e.message}`);
      return e.exitCode;
    }
    io.err(`auditmux: ${(e as Error)?.stack ?? String(e)}`);
    return ExitCode.FAILURE;
  }
  return code;
}
