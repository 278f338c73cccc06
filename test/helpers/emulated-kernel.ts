// An in-process emulation of the kernel's audit netlink side (mainline, or with the contid patch set) behind
// AuditSocket.
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { KernelError } from '../../src/errors';
import {
  AUDIT_CID_UNSET,
  AUDIT_RULE_DATA_SIZE,
  AUDIT_STATUS_SIZE,
  CONTID_CONTAINER_ID,
  FeatureBit,
  Field,
  MsgType,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLM_F_ACK,
  NLM_F_MULTI,
  Op,
  StatusMask,
} from '../../src/kernel/constants';
import type { AuditSocket, BatchHandler } from '../../src/kernel/socket';
import { decodeRule } from '../../src/rules/codec';
import { decodeStatus, encodeStatus, type AuditStatus } from '../../src/kernel/wire';

export interface EmulatedKernelOptions {
  /** Emulate a kernel with the audit container ID patch set (v11 wire format). */
  contid?: boolean;
  /** Order of ACK and data for replies sent from the kernel's reply thread. */
  ackOrder?: 'ack-first' | 'data-first' | 'random';
}

interface Task {
  pid: number;
  ppid: number;
  uid: number;
  auid: number;
  comm: string;
  exe: string;
  contid: bigint;
  exited: boolean;
}

const EINVAL = 22,
  EPERM = 1,
  EEXIST = 17,
  EACCES = 13,
  ENOENT = 2,
  EBUSY = 16,
  EXDEV = 18,
  ENOTUNIQ = 76,
  ESRCH = 3;

/** The kernel side: global audit state shared by all sockets connected to it. */
export class EmulatedKernel {
  readonly contid: boolean;
  readonly ackOrder: 'ack-first' | 'data-first' | 'random';
  status: AuditStatus = {
    mask: 0,
    enabled: 0,
    failure: 1,
    pid: 0,
    rateLimit: 0,
    backlogLimit: 64,
    lost: 0,
    backlog: 0,
    featureBitmap: 0x7f,
    backlogWaitTime: 15000,
    backlogWaitTimeActual: 0,
  };
  features = { features: 0, lock: 0 };
  rules: Buffer[] = [];
  private daemon: EmulatedAuditSocket | null = null;
  private readonly sockets = new Set<EmulatedAuditSocket>();
  private serial = 0;
  private nextPort = 1000;
  private sigInfo = { uid: 0xffffffff, pid: 0, ctx: '', contid: '' };
  readonly tasks = new Map<number, Task>();
  /** contid → owner pid, for the uniqueness check. */
  private readonly contidOwner = new Map<bigint, number>();

  constructor(opts: EmulatedKernelOptions = {}) {
    this.contid = !!opts.contid;
    this.ackOrder = opts.ackOrder ?? 'random';
    if (this.contid) this.status.featureBitmap |= FeatureBit.CONTAINERID;
  }

  /** Opens a socket as process `pid` (the requester's tgid, used for daemon registration). */
  socket(opts: { pid?: number; multicast?: boolean } = {}): EmulatedAuditSocket {
    const s = new EmulatedAuditSocket(this, this.nextPort++, opts.pid ?? process.pid, !!opts.multicast);
    this.sockets.add(s);
    return s;
  }

  get daemonSocket(): EmulatedAuditSocket | null {
    return this.daemon;
  }

  detach(s: EmulatedAuditSocket): void {
    this.sockets.delete(s);
    if (this.daemon === s) this.daemon = null; // the kernel notices the dead portid on its next send
  }

  // ---- processes (for contid and event generation) ----

  spawn(pid: number, ppid: number, opts: Partial<Omit<Task, 'pid' | 'ppid'>> = {}): Task {
    const parent = this.tasks.get(ppid);
    const t: Task = {
      pid,
      ppid,
      uid: opts.uid ?? 0,
      auid: opts.auid ?? 0xffffffff,
      comm: opts.comm ?? 'test',
      exe: opts.exe ?? '/usr/bin/test',
      contid: opts.contid ?? parent?.contid ?? AUDIT_CID_UNSET,
      exited: false,
    };
    this.tasks.set(pid, t);
    return t;
  }

  exit(pid: number): void {
    const t = this.tasks.get(pid);
    if (!t) return;
    t.exited = true;
    this.tasks.delete(pid);
    for (const [id, owner] of this.contidOwner) if (owner === pid && !this.anyTaskWith(id)) this.contidOwner.delete(id);
  }

  private anyTaskWith(id: bigint): boolean {
    for (const t of this.tasks.values()) if (t.contid === id) return true;
    return false;
  }

  /** Writing /proc/PID/audit_containerid, with the patch set's checks in its order (contid-protocol.md §3). */
  setContid(setterPid: number, targetPid: number, id: bigint, capAuditControl = true): void {
    if (!this.contid)
      throw new KernelError('ENOENT', ENOENT, 'write', '/proc/PID/audit_containerid does not exist on this kernel');
    const target = this.tasks.get(targetPid);
    if (!target) throw new KernelError('ESRCH', ESRCH, 'write');
    const setter = this.tasks.get(setterPid);
    const old = target.contid;
    let err: number | 0 = 0;
    if (id === AUDIT_CID_UNSET) err = EINVAL;
    else if (!capAuditControl) err = EPERM;
    else if ([...this.tasks.values()].some((t) => t.ppid === targetPid)) err = EBUSY;
    else if (targetPid === setterPid || !this.isDescendant(targetPid, setterPid)) err = EXDEV;
    else if (
      old !== AUDIT_CID_UNSET &&
      !(
        setter &&
        this.contidOwner.get(old) !== setterPid &&
        this.isDescendant(setterPid, this.contidOwner.get(old) ?? -1)
      )
    )
      err = EEXIST;
    else if (this.contidOwner.has(id) && this.contidOwner.get(id) !== setterPid) err = ENOTUNIQ;
    // CONTAINER_OP is logged in the writer's syscall context, even when the set fails.
    this.emitEvent(
      setterPid,
      'write',
      err ? -err : 20,
      [
        [
          MsgType.CONTAINER_OP,
          `op=set opid=${targetPid} contid=${id} old-contid=${old === AUDIT_CID_UNSET ? '-1' : old}`,
        ],
      ],
      null,
    );
    if (err) throw new KernelError(errName(err), err, 'write');
    target.contid = id;
    if (!this.contidOwner.has(id)) this.contidOwner.set(id, setterPid);
  }

  private isDescendant(pid: number, ancestor: number): boolean {
    let t = this.tasks.get(pid);
    for (let i = 0; t && i < 4096; i++) {
      if (t.ppid === ancestor) return true;
      t = this.tasks.get(t.ppid);
    }
    return false;
  }

  /** The contid chain text of a task (`id[,^parent...]`), or '' when unset. */
  contidText(pid: number): string {
    const t = this.tasks.get(pid);
    if (!t || t.contid === AUDIT_CID_UNSET) return '';
    return t.contid.toString();
  }

  // ---- records ----

  private stamp(): string {
    const now = Date.now();
    this.serial++;
    return `audit(${Math.floor(now / 1000)}.${String(now % 1000).padStart(3, '0')}:${this.serial})`;
  }

  /**
   * Emits one syscall event for task `pid`: [CONTAINER_ID], SYSCALL, extra records, PROCTITLE, EOE — the order
   * audit_log_exit uses. Returns the serial. Does nothing (returns 0) when audit is disabled.
   */
  emitEvent(
    pid: number,
    syscall: string | number,
    exit: number,
    extra: Array<[number, string]> = [],
    key?: string | null,
  ): number {
    if (this.status.enabled === 0) return 0;
    const t = this.tasks.get(pid) ?? {
      pid,
      ppid: 1,
      uid: 0,
      auid: 0xffffffff,
      comm: 'test',
      exe: '/usr/bin/test',
      contid: AUDIT_CID_UNSET,
      exited: false,
    };
    const sc =
      typeof syscall === 'number'
        ? syscall
        : (({ write: 1, getppid: 110, openat: 257, clone: 56, execve: 59 } as Record<string, number>)[syscall] ?? 39);
    // Without an explicit key the exit list decides, first match wins, as audit_filter_syscall does.
    if (key === undefined) {
      const k = this.matchExitRules(t, sc);
      if (k === null) return 0;
      key = k || undefined;
    }
    const stamp = this.stamp();
    const recs: Array<[number, string]> = [];
    let tail = '';
    if (this.contid && t.contid !== AUDIT_CID_UNSET) {
      recs.push([CONTID_CONTAINER_ID, `record=1 contid=${this.contidText(pid)}`]);
      tail = ' record=1';
    }
    recs.push([
      MsgType.SYSCALL,
      `arch=c000003e syscall=${sc} success=${exit >= 0 ? 'yes' : 'no'} exit=${exit} a0=0 a1=0 a2=0 a3=0 items=0 ppid=${t.ppid} pid=${pid} ` +
        `auid=${t.auid} uid=${t.uid} gid=0 euid=${t.uid} suid=${t.uid} fsuid=${t.uid} egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 ` +
        `comm="${t.comm}" exe="${t.exe}" subj=unconfined key=${formatKey(key)}${tail}`,
    ]);
    recs.push(...extra);
    recs.push([MsgType.PROCTITLE, `proctitle=${Buffer.from(t.comm).toString('hex')}`]);
    for (const [type, body] of recs) this.deliver(type, `${stamp}: ${body}`);
    this.deliver(MsgType.EOE, `${stamp}: `);
    return this.serial;
  }

  /** The key text of the first exit-list `always` rule matching the task and syscall; '' for no key; null for none. */
  matchExitRules(t: Task, syscallNr: number): string | null {
    for (const b of this.rules) {
      const r = decodeRule(b);
      if ((r.flags & 0x0f) !== 4) continue;
      if (!((r.mask[syscallNr >> 5]! >>> (syscallNr & 31)) & 1)) continue;
      let ok = true;
      for (const f of r.fields) {
        const num = (v: number): boolean => cmp(v, f.op, f.value);
        switch (f.field) {
          case Field.arch:
            ok = num(0xc000003e);
            break;
          case Field.pid:
            ok = num(t.pid);
            break;
          case Field.ppid:
            ok = num(t.ppid);
            break;
          case Field.uid:
          case Field.euid:
            ok = num(t.uid);
            break;
          case Field.auid:
            ok = num(t.auid);
            break;
          case Field.exe:
            ok = (f.op === Op.NOT_EQUAL) !== (f.str === t.exe);
            break;
          case Field.contid:
            ok = (f.op === Op.NOT_EQUAL) !== (f.u64 === t.contid);
            break;
          case Field.key:
            break;
          default:
            ok = false; // fields this emulation does not evaluate never match
        }
        if (!ok) break;
      }
      if (ok) return r.action === 2 ? r.keys.join('\x01') : null;
    }
    return null;
  }

  /** A standalone record (its own serial, no EOE). */
  emitRecord(type: number, body: string): number {
    if (this.status.enabled === 0) return 0;
    this.deliver(type, `${this.stamp()}: ${body}`);
    return this.serial;
  }

  private deliver(type: number, text: string): void {
    const payload = Buffer.from(text, 'utf8');
    let sent = false;
    if (this.daemon) {
      // The unicast quirk: nlmsg_len counts the payload only.
      this.daemon.push(frame(type, 0, 0, payload, payload.length));
      sent = true;
    }
    for (const s of this.sockets) if (s.multicast) s.push(frame(type, 0, 0, payload, NLMSG_HDRLEN + payload.length));
    if (!sent) this.status.lost++;
  }

  // ---- requests ----

  handle(sock: EmulatedAuditSocket, msg: Buffer): void {
    const type = msg.readUInt16LE(4);
    const flags = msg.readUInt16LE(6);
    const seq = msg.readUInt32LE(8);
    const payload = msg.subarray(NLMSG_HDRLEN, Math.min(msg.length, msg.readUInt32LE(0)));
    const ack = (errno: number, positive = 0): void => sock.push(errorMsg(seq, errno ? -errno : positive, msg));
    const replies: Buffer[] = [];
    let errno = 0;
    let positive = 0;
    switch (type) {
      case MsgType.GET:
        replies.push(frame(MsgType.GET, 0, seq, encodeStatus(this.status)));
        break;
      case MsgType.SET: {
        const r = this.set(sock, payload, msg.readUInt32LE(0));
        errno = r.errno;
        positive = r.positive;
        break;
      }
      case MsgType.ADD_RULE:
      case MsgType.DEL_RULE:
        errno = this.ruleOp(type, payload);
        break;
      case MsgType.LIST_RULES:
        for (const r of this.rules) replies.push(frame(MsgType.LIST_RULES, NLM_F_MULTI, seq, r));
        replies.push(frame(NLMSG_DONE, NLM_F_MULTI, seq, Buffer.alloc(4)));
        break;
      case MsgType.GET_FEATURE: {
        const b = Buffer.alloc(16);
        b.writeUInt32LE(1, 0);
        b.writeUInt32LE(0xffffffff, 4);
        b.writeUInt32LE(this.features.features, 8);
        b.writeUInt32LE(this.features.lock, 12);
        replies.push(frame(MsgType.GET_FEATURE, 0, seq, b));
        break;
      }
      case MsgType.SET_FEATURE: {
        const mask = payload.readUInt32LE(4),
          feat = payload.readUInt32LE(8),
          lock = payload.readUInt32LE(12);
        if (mask & this.features.lock & (feat ^ this.features.features)) errno = EPERM;
        else {
          this.features.features = (this.features.features & ~mask) | (feat & mask);
          this.features.lock |= lock & mask;
        }
        break;
      }
      case MsgType.SIGNAL_INFO: {
        if (this.daemon !== sock) {
          errno = EPERM;
          break;
        }
        const ctx = Buffer.from(this.sigInfo.ctx ? this.sigInfo.ctx + '\0' : '', 'latin1');
        const b = Buffer.alloc(8 + ctx.length);
        b.writeUInt32LE(this.sigInfo.uid, 0);
        b.writeInt32LE(this.sigInfo.pid, 4);
        ctx.copy(b, 8);
        replies.push(frame(MsgType.SIGNAL_INFO, 0, seq, b));
        break;
      }
      case MsgType.SIGNAL_INFO2: {
        if (!this.contid) {
          errno = EINVAL;
          break;
        }
        if (this.daemon !== sock) {
          errno = EPERM;
          break;
        }
        const cid = Buffer.from(this.sigInfo.contid, 'latin1');
        const ctx = Buffer.from(this.sigInfo.ctx, 'latin1');
        const b = Buffer.alloc(12 + cid.length + ctx.length);
        b.writeUInt32LE(this.sigInfo.uid, 0);
        b.writeInt32LE(this.sigInfo.pid, 4);
        b.writeUInt32LE(cid.length, 8);
        cid.copy(b, 12);
        ctx.copy(b, 12 + cid.length);
        replies.push(frame(MsgType.SIGNAL_INFO2, 0, seq, b));
        break;
      }
      default:
        if ((type >= 1100 && type <= 1199) || (type >= 2100 && type <= 2999) || type === MsgType.USER) {
          if (payload.length < 2) errno = EINVAL;
          else if (this.status.enabled !== 0) {
            let text = payload.toString('utf8');
            const nul = text.indexOf('\0');
            if (nul >= 0) text = text.slice(0, nul);
            this.emitRecord(type, `pid=${sock.pid} uid=0 auid=4294967295 ses=4294967295 msg='${text}'`);
          }
        } else errno = EINVAL;
    }
    // Replies come from a kthread: the ACK may overtake them.
    const wantAck = (flags & NLM_F_ACK) !== 0;
    if (errno) {
      ack(errno);
      return;
    }
    const order = this.ackOrder === 'random' ? (Math.random() < 0.5 ? 'ack-first' : 'data-first') : this.ackOrder;
    if (wantAck && (order === 'ack-first' || replies.length === 0)) ack(0, positive);
    for (const r of replies) sock.push(r);
    if (wantAck && order === 'data-first' && replies.length > 0) ack(0, positive);
  }

  private set(sock: EmulatedAuditSocket, p: Buffer, nlmsgLen: number): { errno: number; positive: number } {
    const s = decodeStatus(p);
    const locked = this.status.enabled === 2;
    if (s.mask === StatusMask.LOST) {
      const old = this.status.lost;
      this.status.lost = 0;
      return { errno: 0, positive: old };
    }
    if (s.mask & StatusMask.ENABLED) {
      if (s.enabled > 2) return { errno: EINVAL, positive: 0 };
      if (locked) return { errno: EPERM, positive: 0 };
      this.status.enabled = s.enabled;
    }
    if (s.mask & StatusMask.FAILURE) {
      if (s.failure > 2) return { errno: EINVAL, positive: 0 };
      if (locked) return { errno: EPERM, positive: 0 };
      this.status.failure = s.failure;
    }
    if (s.mask & StatusMask.PID) {
      if (s.pid !== 0 && s.pid !== sock.pid) return { errno: EINVAL, positive: 0 };
      if (s.pid === 0) {
        if (this.daemon && this.daemon !== sock) return { errno: EACCES, positive: 0 };
        this.daemon = null;
        this.status.pid = 0;
      } else {
        if (this.daemon && this.daemon !== sock && this.daemon.alive) return { errno: EEXIST, positive: 0 };
        this.daemon = sock;
        this.status.pid = s.pid;
      }
    }
    if (s.mask & StatusMask.RATE_LIMIT) {
      if (locked) return { errno: EPERM, positive: 0 };
      this.status.rateLimit = s.rateLimit;
    }
    if (s.mask & StatusMask.BACKLOG_LIMIT) {
      if (locked) return { errno: EPERM, positive: 0 };
      this.status.backlogLimit = s.backlogLimit;
    }
    if (s.mask & StatusMask.BACKLOG_WAIT_TIME) {
      if (nlmsgLen < NLMSG_HDRLEN + AUDIT_STATUS_SIZE || s.backlogWaitTime > 600000)
        return { errno: EINVAL, positive: 0 };
      if (locked) return { errno: EPERM, positive: 0 };
      this.status.backlogWaitTime = s.backlogWaitTime;
    }
    return { errno: 0, positive: 0 };
  }

  private ruleOp(type: number, p: Buffer): number {
    if (this.status.enabled === 2) return EPERM;
    if (p.length < AUDIT_RULE_DATA_SIZE) return EINVAL;
    const fieldCount = p.readUInt32LE(8);
    const buflen = p.readUInt32LE(1036);
    if (fieldCount > 64 || AUDIT_RULE_DATA_SIZE + buflen > p.length) return EINVAL;
    let strOff = 0;
    for (let i = 0; i < fieldCount; i++) {
      const f = p.readUInt32LE(268 + i * 4);
      const v = p.readUInt32LE(524 + i * 4);
      if (f === Field.contid) {
        if (!this.contid) return EINVAL;
        const op = p.readUInt32LE(780 + i * 4);
        if (v !== 8 || (op !== 0x40000000 && op !== 0x30000000)) return EINVAL;
        strOff += 8;
      } else if ([Field.watch, Field.dir, Field.key, Field.exe, 13, 14, 15, 16, 17, 19, 20, 21, 22, 23].includes(f)) {
        // exe and watch marks are placed on the parent directory, which must exist (audit_alloc_mark).
        if ((f === Field.exe || f === Field.watch) && AUDIT_RULE_DATA_SIZE + strOff + v <= p.length) {
          const path = p.toString('utf8', AUDIT_RULE_DATA_SIZE + strOff, AUDIT_RULE_DATA_SIZE + strOff + v);
          if (!path.startsWith('/') || !existsSync(dirname(path))) return ENOENT;
        }
        strOff += v;
      }
    }
    if (strOff > buflen) return EINVAL;
    const rule = Buffer.from(p.subarray(0, AUDIT_RULE_DATA_SIZE + buflen));
    const idx = this.rules.findIndex((r) => r.equals(rule));
    if (type === MsgType.ADD_RULE) {
      if (idx >= 0) return EEXIST;
      if (rule.readUInt32LE(0) & 0x10) this.rules.unshift(rule);
      else this.rules.push(rule);
    } else {
      if (idx < 0) return ENOENT;
      this.rules.splice(idx, 1);
    }
    return 0;
  }

  /** A signal sent to the daemon by `pid`, recorded for SIGNAL_INFO as the kernel does. */
  signalDaemon(fromPid: number, uid = 0): void {
    this.sigInfo = { uid, pid: fromPid, ctx: '', contid: this.contidText(fromPid) };
  }
}

/** The kernel prints one key quoted, several (joined by \x01) as hex, none as (null). */
function formatKey(key: string | undefined | null): string {
  if (!key) return '(null)';
  return key.includes('\x01') ? Buffer.from(key, 'latin1').toString('hex').toUpperCase() : `"${key}"`;
}

function cmp(v: number, op: number, want: number): boolean {
  switch (op) {
    case Op.EQUAL:
      return v === want;
    case Op.NOT_EQUAL:
      return v !== want;
    case Op.LESS_THAN:
      return v < want;
    case Op.GREATER_THAN:
      return v > want;
    case Op.LESS_THAN_OR_EQUAL:
      return v <= want;
    case Op.GREATER_THAN_OR_EQUAL:
      return v >= want;
    case Op.BIT_MASK:
      return (v & want) !== 0;
    case Op.BIT_TEST:
      return (v & want) === want;
    default:
      return false;
  }
}

function errName(n: number): string {
  return (
    ({ 1: 'EPERM', 16: 'EBUSY', 17: 'EEXIST', 18: 'EXDEV', 22: 'EINVAL', 76: 'ENOTUNIQ' } as Record<number, string>)[
      n
    ] ?? `E${n}`
  );
}

function frame(type: number, flags: number, seq: number, payload: Buffer, len = NLMSG_HDRLEN + payload.length): Buffer {
  const b = Buffer.alloc(NLMSG_HDRLEN + payload.length);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(flags, 6);
  b.writeUInt32LE(seq, 8);
  payload.copy(b, NLMSG_HDRLEN);
  return b;
}

function errorMsg(seq: number, error: number, req: Buffer): Buffer {
  const p = Buffer.alloc(4 + NLMSG_HDRLEN);
  p.writeInt32LE(error, 0);
  req.copy(p, 4, 0, NLMSG_HDRLEN);
  return frame(NLMSG_ERROR, 0, seq, p);
}

/** One endpoint on the emulated kernel; deliveries are batched per macrotask like the addon's drain. */
export class EmulatedAuditSocket implements AuditSocket {
  private queue: Buffer[] = [];
  private handler: BatchHandler | null = null;
  private scheduled = false;
  alive = true;

  constructor(
    private readonly kernel: EmulatedKernel,
    readonly portId: number,
    readonly pid: number,
    readonly multicast: boolean,
  ) {}

  send(msg: Buffer): void {
    if (!this.alive) throw new KernelError('EBADF', 9, 'sendto');
    if (msg.length < NLMSG_HDRLEN) throw new KernelError('EINVAL', EINVAL, 'sendto');
    this.kernel.handle(this, msg);
  }

  push(dgram: Buffer): void {
    if (!this.alive) return;
    this.queue.push(dgram);
    if (this.handler && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    this.scheduled = false;
    if (!this.handler || this.queue.length === 0) return;
    const q = this.queue;
    this.queue = [];
    const lengths = new Uint32Array(q.length);
    q.forEach((b, i) => (lengths[i] = b.length));
    this.handler(Buffer.concat(q), lengths);
  }

  start(onBatch: BatchHandler): void {
    this.handler = onBatch;
    if (this.queue.length && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  stop(): void {
    this.handler = null;
  }

  close(): void {
    this.alive = false;
    this.handler = null;
    this.kernel.detach(this);
  }
}
