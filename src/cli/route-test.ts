// `auditmux route test`: asks the running host daemon (its routes, its live containers); without one, evaluates the
// configuration's routes here and says so.
import { existsSync } from 'node:fs';
import { AuditmuxError, UsageError } from '../errors';
import { DEFAULT_CONFIG_PATH, defaultConfig, loadConfig } from '../config';
import { controlRequest } from '../daemon/control';
import { routeTest, type RouteTestArgs, type RouteTestResult } from '../routing/route-test';
import { ttyEscape } from '../search/escape';

/** The answer as the CLI prints it; a hostile container name is escaped for the terminal. */
export function formatRouteTest(r: RouteTestResult, note: string | null, name: string | undefined): string {
  const out = [
    `daemons: ${r.daemons.join(' ') || '(none)'}`,
    `routes: ${r.routes.join(' ') || '(none)'}`,
    `host log: ${r.host ? 'yes' : 'no'}`,
  ];
  if (r.containers && name !== undefined) {
    if (r.containers.length === 0)
      out.push(ttyEscape(`live containers named ${name}: none (routed by the options given)`));
    for (const c of r.containers)
      out.push(
        ttyEscape(
          `live container ${c.name}: contid ${c.contid} (${c.runtime ?? '?'}) -> ${c.daemons.join(' ') || '(none)'}`,
        ),
      );
  }
  if (note) out.push(note);
  return out.join('\n');
}

/**
 * The daemon answers when it runs: its routes include daemons templates created and `--name` is looked up among its
 * live containers. When no daemon listens, the configuration's routes answer, and the note says what that leaves out.
 */
export async function runRouteTest(configPath: string | undefined, args: RouteTestArgs): Promise<string> {
  const file = configPath ?? DEFAULT_CONFIG_PATH;
  if (configPath && !existsSync(configPath)) throw new UsageError(`config file ${configPath} does not exist`);
  const cfg = existsSync(file) ? loadConfig(file) : null;
  const name = (args.container as { name?: string } | undefined)?.name;
  const socket = (cfg ?? defaultConfig()).host.controlSocket;
  try {
    const r = (await controlRequest(socket, 'route-test', { ...args })) as RouteTestResult;
    return formatRouteTest(r, null, name);
  } catch (e) {
    if (!(e instanceof AuditmuxError) || e.code !== 'E_NO_DAEMON' || !cfg) throw e;
    const r = routeTest(cfg.routes, null, cfg.host.keep === 'all', args);
    const what = name !== undefined ? 'live containers were not looked up' : 'no container metadata is known';
    return formatRouteTest(
      r,
      ttyEscape(`note: no auditmux daemon answers on ${socket}: routes from ${cfg.file} only; ${what}`),
      undefined,
    );
  }
}
