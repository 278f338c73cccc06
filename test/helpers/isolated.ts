// Runs a snippet against the built sources in a child process, so a read that would hang or eat memory fails the test
// instead of the runner.
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** dist/src, for `require(SRC + '/config')` inside snippets. */
export const SRC = join(__dirname, '..', '..', 'src');

export interface Isolated {
  /** What the snippet printed with `out(value)` (JSON), or undefined when it printed nothing. */
  value: unknown;
  /** True when the child was killed: the code under test hung (a FIFO waited on) or ran away. */
  killed: boolean;
  stderr: string;
}

/**
 * Runs `body` (JavaScript, with `SRC` and `out(v)` in scope) in a fresh node with a small heap, killed after
 * `guardMs`. The guard is not a speed check: it only turns "never returns" into a failure with a message.
 */
export function isolated(body: string, guardMs = 30_000): Isolated {
  const script =
    `const SRC = ${JSON.stringify(SRC)}; const out = (v) => process.stdout.write(JSON.stringify(v));\n` +
    `try { ${body} } catch (e) { out({ threw: e && e.constructor && e.constructor.name, code: e && e.code, message: String(e && e.message) }); }`;
  const r = spawnSync(process.execPath, ['--max-old-space-size=256', '-e', script], {
    encoding: 'utf8',
    timeout: guardMs,
    killSignal: 'SIGKILL',
    maxBuffer: 1 << 20,
  });
  const killed = r.signal !== null;
  let value: unknown;
  try {
    value = r.stdout ? JSON.parse(r.stdout) : undefined;
  } catch {
    value = r.stdout;
  }
  return { value, killed, stderr: r.stderr ?? '' };
}

/** Creates a named pipe (nothing ever writes to it: opening it for reading blocks forever without O_NONBLOCK). */
export function mkfifoSync(path: string): string {
  execFileSync('mkfifo', ['-m', '0600', path]);
  return path;
}
