// A stand-in for systemd's side of Type=notify with a file descriptor store (FileDescriptorStoreMax=1): a python3
// child receives sd_notify datagrams with SCM_RIGHTS fds, keeps the stored fd, and starts (and on a crash restarts
// at once) the daemon with it as fd 3, LISTEN_FDS=1, LISTEN_FDNAMES, LISTEN_PID and SYSTEMD_EXEC_PID set in the child
// after fork.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

const SERVER = String.raw`
import array, json, os, select, signal, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\0' + path[1:] if path.startswith('@') else path)
store = []          # [(name, fd)]
child = None        # (pid, spec)
def out(o):
    sys.stdout.write(json.dumps(o) + '\n'); sys.stdout.flush()
def start(spec):
    global child
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            fds = [fd for _, fd in store]
            # Move the stored fds out of the way, then to 3, 4, ... (as systemd does), inheritable.
            high = [os.dup(fd) for fd in fds]
            for i, fd in enumerate(high):
                os.dup2(fd, 3 + i, inheritable=True)
            env = dict(spec['env'])
            if fds:
                env['LISTEN_FDS'] = str(len(fds))
                env['LISTEN_FDNAMES'] = ':'.join(n for n, _ in store)
                env['LISTEN_PID'] = str(os.getpid())
            if spec.get('notify'):
                env['NOTIFY_SOCKET'] = path
                # As systemd (248+) sets it: the daemon sends its fd only to a NOTIFY_SOCKET systemd gave it.
                env['SYSTEMD_EXEC_PID'] = str(os.getpid())
            o = os.open(spec['log'], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(o, 1); os.dup2(o, 2)
            os.closerange(3 + len(fds), 1024)
            os.execve(spec['argv'][0], spec['argv'], env)
        finally:
            os._exit(127)
    os.close(w); os.close(r)
    child = (pid, spec)
    out({'started': pid, 'fds': len(store)})
def same(a, b):
    x, y = os.fstat(a), os.fstat(b)
    return (x.st_dev, x.st_ino) == (y.st_dev, y.st_ino)
def on_notify():
    fds = array.array('i')
    msg, anc, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(16 * fds.itemsize))
    got = []
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            a = array.array('i'); a.frombytes(data[:len(data) - len(data) % a.itemsize]); got.extend(a)
    text = msg.decode('utf8', 'replace')
    fields = dict(l.split('=', 1) for l in text.split('\n') if '=' in l)
    stored = 0
    if fields.get('FDSTORE') == '1':
        name = fields.get('FDNAME', 'stored')
        for fd in got:
            if any(same(fd, f) for _, f in store) or len(store) >= 1:
                os.close(fd)     # a duplicate, or over FileDescriptorStoreMax=1
            else:
                store.append((name, fd)); stored += 1
    else:
        for fd in got: os.close(fd)
    if fields.get('FDSTOREREMOVE') == '1':
        name = fields.get('FDNAME')
        for n, fd in [x for x in store if x[0] == name]:
            os.close(fd); store.remove((n, fd))
    out({'msg': text, 'fds': len(got), 'stored': stored, 'store': [n for n, _ in store]})
out({'ready': True})
buf = b''
while True:
    r, _, _ = select.select([s, sys.stdin], [], [], 0.002)
    if s in r: on_notify()
    if sys.stdin in r:
        d = os.read(sys.stdin.fileno(), 65536)
        if not d: break
        buf += d
        while b'\n' in buf:
            line, buf = buf.split(b'\n', 1)
            c = json.loads(line)
            if c['cmd'] == 'start': start(c)
            elif c['cmd'] == 'drop':
                for _, fd in store: os.close(fd)
                store.clear(); out({'dropped': True})
    if child:
        pid, st = os.waitpid(child[0], os.WNOHANG)
        if pid:
            spec = child[1]; child = None
            crashed = os.WIFSIGNALED(st) or (os.WIFEXITED(st) and os.WEXITSTATUS(st) != 0)
            out({'exited': pid, 'signal': os.WTERMSIG(st) if os.WIFSIGNALED(st) else None,
                 'code': os.WEXITSTATUS(st) if os.WIFEXITED(st) else None})
            # Restart=on-failure with no delay: at once, with whatever the store holds.
            if crashed and spec.get('restart'): start(spec)
`;

export interface StartSpec {
  /** Absolute path of the executable first, as execve wants. */
  argv: string[];
  env: Record<string, string>;
  /** stdout and stderr of the child are appended here. */
  log: string;
  /** Give the child NOTIFY_SOCKET (the store only fills through it). */
  notify: boolean;
  /** Start it again at once when it dies of a signal or exits non-zero. */
  restart: boolean;
}

export interface Report {
  ready?: boolean;
  started?: number;
  exited?: number;
  signal?: number | null;
  code?: number | null;
  msg?: string;
  fds?: number;
  stored?: number;
  store?: string[];
  dropped?: boolean;
}

export interface FdStoreSupervisor {
  /** The value children get as NOTIFY_SOCKET. */
  path: string;
  reports: Report[];
  start(spec: StartSpec): void;
  /** Closes every stored fd (as systemd does when the unit stops for good). */
  drop(): Promise<void>;
  /** Resolves with the first report, from index `from` on, that `match` accepts. */
  waitFor(match: (r: Report) => boolean, timeoutMs?: number, from?: number): Promise<Report>;
  close(): Promise<void>;
}

export async function fdStoreSupervisor(path: string): Promise<FdStoreSupervisor> {
  const child: ChildProcess = spawn('python3', ['-c', SERVER, path], { stdio: ['pipe', 'pipe', 'inherit'] });
  const reports: Report[] = [];
  const waiters: Array<() => void> = [];
  let buf = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      reports.push(JSON.parse(buf.slice(0, nl)) as Report);
      buf = buf.slice(nl + 1);
      for (const w of waiters.splice(0)) w();
    }
  });
  const send = (o: object): void => void child.stdin!.write(JSON.stringify(o) + '\n');
  const sup: FdStoreSupervisor = {
    path,
    reports,
    start: (spec) => send({ cmd: 'start', ...spec }),
    async drop() {
      const from = reports.length;
      send({ cmd: 'drop' });
      await sup.waitFor((r) => r.dropped === true, 5000, from);
    },
    async waitFor(match, timeoutMs = 15000, from = 0) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = reports.slice(from).find(match);
        if (r !== undefined) return r;
        if (child.exitCode !== null) throw new Error('fd store supervisor exited');
        if (Date.now() > deadline) throw new Error(`no matching supervisor report; got ${JSON.stringify(reports)}`);
        await new Promise<void>((res) => {
          waiters.push(res);
          setTimeout(res, 100);
        });
      }
    },
    async close() {
      if (child.exitCode === null) {
        child.stdin!.end();
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    },
  };
  await sup.waitFor((r) => r.ready === true, 10000);
  return sup;
}
