// A systemd NOTIFY_SOCKET stand-in: an AF_UNIX datagram socket (which Node cannot open) served by a python3 child.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export interface NotifyListener {
  /** The value to put in NOTIFY_SOCKET. */
  path: string;
  /** Datagrams received so far, in order. */
  messages: string[];
  /** Resolves with the first message that `match` accepts; `onTimeout` adds context (a child's stderr) to the error. */
  waitFor(match: (m: string) => boolean, timeoutMs?: number, onTimeout?: () => string): Promise<string>;
  close(): Promise<void>;
}

const SERVER = `
import socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + path[1:] if path.startswith('@') else path)
print('ready', flush=True)
while True:
    d = s.recv(65536)
    sys.stdout.write(d.hex() + '\\n')
    sys.stdout.flush()
`;

export async function listenNotify(path: string): Promise<NotifyListener> {
  const child: ChildProcess = spawn('python3', ['-c', SERVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: string[] = [];
  const waiters: Array<() => void> = [];
  let buf = '';
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line === 'ready') ready();
      else messages.push(Buffer.from(line, 'hex').toString('utf8'));
      for (const w of waiters.splice(0)) w();
    }
  });
  await Promise.race([isReady, once(child, 'exit').then(() => Promise.reject(new Error('notify listener exited')))]);
  return {
    path,
    messages,
    async waitFor(match, timeoutMs = 15000, onTimeout) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = messages.find(match);
        if (m !== undefined) return m;
        if (Date.now() > deadline)
          throw new Error(
            `no matching notify message; got ${JSON.stringify(messages)}${onTimeout ? ': ' + onTimeout() : ''}`,
          );
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    },
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    },
  };
}
