// NETLINK_AUDIT socket for Node: fd lifetime, libuv readiness on the env's loop, batch draining, u64 contid packing.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <napi.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <string>

#include "addon.h"

// The addon runs as root in the audit daemon: refuse to build it without the hardening binding.gyp asks for.
#if !defined(__OPTIMIZE__) || !defined(_FORTIFY_SOURCE) || _FORTIFY_SOURCE < 2 || !defined(__SSP_STRONG__)
#error "build with -O2 -D_FORTIFY_SOURCE=2 -fstack-protector-strong (see binding.gyp)"
#endif

#ifndef NETLINK_AUDIT
#define NETLINK_AUDIT 9
#endif
#ifndef NETLINK_NO_ENOBUFS
#define NETLINK_NO_ENOBUFS 5
#endif
#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  const char* name = uv_err_name(-err);
  std::string msg = std::string(syscall) + ": " + strerror(err);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, name));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

namespace {

// One recvmmsg slot must hold the largest reply the kernel sends (a LIST_RULES entry with PATH_MAX strings).
constexpr size_t kSlotSize = 64 * 1024;
// As many datagrams per recvmmsg as bench/creader.c reads: at 10k events/s a 2 ms window holds about 66 records, so
// 64 slots made every other wake-up a second recvmmsg. The slots are not zeroed: only pages the kernel writes are
// resident (about one per datagram read), not 16 MiB.
constexpr unsigned kSlots = 256;
// Cap on bytes handed to JS in one call, so one wake-up cannot build an unbounded buffer.
constexpr size_t kMaxBatchBytes = 4 * 1024 * 1024;
// The batch buffer also has room for one more slot, so a datagram never has to be split.
constexpr size_t kBatchCapacity = kMaxBatchBytes + kSlotSize;
// Datagrams per JS call: the lengths array is allocated once with this many entries; a drain with more is handed
// over in several calls, as one with more than kMaxBatchBytes is.
constexpr size_t kMaxBatchDatagrams = 16384;

// What the libuv close callbacks and the environment's teardown share, on the heap: a close callback can run after
// the wrapper is finalized, so it never reads the wrapper. At teardown (a worker exiting), Node unloads the addon after
// the cleanup hooks; the async hook holds it until the last close callback (code in this addon) has run.
class AuditNetlink;

struct Closer {
  AuditNetlink* owner;                  // the AuditNetlink, until its destructor
  napi_async_cleanup_hook_handle hook;  // until removed
  int closing;                          // handles passed to uv_close whose callback has not run
  bool tearing_down;                    // the hook ran: remove it once nothing is closing
};

// Removes the hook when nothing is closing any more and the env is tearing down or the wrapper is gone; frees the
// Closer when both the hook and the wrapper are gone.
void Settle(Closer* c) {
  if (c->closing > 0) return;
  if (c->hook != nullptr && (c->tearing_down || c->owner == nullptr)) {
    napi_remove_async_cleanup_hook(c->hook);
    c->hook = nullptr;
  }
  if (c->hook == nullptr && c->owner == nullptr) delete c;
}

void OnHandleClosed(uv_handle_t* h) {
  auto* c = static_cast<Closer*>(h->data);
  if (h->type == UV_POLL)
    delete reinterpret_cast<uv_poll_t*>(h);
  else
    delete reinterpret_cast<uv_timer_t*>(h);
  c->closing--;
  Settle(c);
}

class AuditNetlink : public Napi::ObjectWrap<AuditNetlink> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "AuditNetlink",
                                      {
                                          InstanceMethod<&AuditNetlink::Send>("send"),
                                          InstanceMethod<&AuditNetlink::Start>("start"),
                                          InstanceMethod<&AuditNetlink::Stop>("stop"),
                                          InstanceMethod<&AuditNetlink::Close>("close"),
                                          InstanceMethod<&AuditNetlink::SetReceiveBuffer>("setReceiveBuffer"),
                                          InstanceAccessor<&AuditNetlink::GetFd>("fd"),
                                          InstanceAccessor<&AuditNetlink::GetPortId>("portId"),
                                          InstanceAccessor<&AuditNetlink::GetForeign>("foreign"),
                                      });
    exports.Set("AuditNetlink", ctor);
    return exports;
  }

  // new AuditNetlink({ groups?: number, receiveBuffer?: number, fd?: number })
  // `fd` adopts an inherited socket (systemd's file descriptor store) instead of opening one: it must be a bound
  // NETLINK_AUDIT socket, or it is refused and left untouched.
  explicit AuditNetlink(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AuditNetlink>(info) {
    Napi::Env env = info.Env();
    uint32_t groups = 0;
    int64_t rcvbuf = 0;
    int adopt = -1;
    if (info.Length() > 0 && info[0].IsObject()) {
      Napi::Object o = info[0].As<Napi::Object>();
      if (o.Has("groups") && o.Get("groups").IsNumber()) groups = o.Get("groups").As<Napi::Number>().Uint32Value();
      if (o.Has("receiveBuffer") && o.Get("receiveBuffer").IsNumber())
        rcvbuf = o.Get("receiveBuffer").As<Napi::Number>().Int64Value();
      if (o.Has("fd") && o.Get("fd").IsNumber()) adopt = o.Get("fd").As<Napi::Number>().Int32Value();
    }
    struct sockaddr_nl addr;
    memset(&addr, 0, sizeof(addr));
    if (adopt >= 0) {
      if (!Adopt(env, adopt)) return;
    } else {
      fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_AUDIT);
      if (fd_ < 0) {
        ErrnoError(env, errno, "socket").ThrowAsJavaScriptException();
        return;
      }
      addr.nl_family = AF_NETLINK;
      addr.nl_groups = groups;
      if (bind(fd_, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) < 0) {
        int err = errno;
        CloseFd();
        ErrnoError(env, err, "bind").ThrowAsJavaScriptException();
        return;
      }
    }
    socklen_t alen = sizeof(addr);
    if (getsockname(fd_, reinterpret_cast<struct sockaddr*>(&addr), &alen) == 0) port_id_ = addr.nl_pid;
    // The audit daemon must never see ENOBUFS abort its read loop; the kernel's lost counter tells the truth.
    int one = 1;
    if (setsockopt(fd_, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one)) < 0 ||
        (rcvbuf > 0 && !ApplyRcvBuf(static_cast<int>(rcvbuf)))) {
      int err = errno;
      CloseFd();
      ErrnoError(env, err, "setsockopt").ThrowAsJavaScriptException();
      return;
    }
    closer_ = new Closer{this, nullptr, 0, false};
    if (napi_add_async_cleanup_hook(env, &AuditNetlink::AsyncCleanup, closer_, &closer_->hook) != napi_ok) {
      delete closer_;
      closer_ = nullptr;
      CloseFd();
      Napi::Error::New(env, "napi_add_async_cleanup_hook failed").ThrowAsJavaScriptException();
    }
  }

  ~AuditNetlink() override {
    Teardown();
    if (closer_) {
      closer_->owner = nullptr;
      Settle(closer_);
    }
  }

 private:
  // Takes over an inherited fd after checking what it is: an fd that is not a NETLINK_AUDIT raw socket (a file, a
  // unix socket, another netlink family) is refused with EPROTOTYPE and not closed, since it is not ours.
  bool Adopt(Napi::Env env, int fd) {
    int domain = -1, type = -1, protocol = -1;
    socklen_t l = sizeof(int);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) < 0) {
      int err = errno;
      Napi::Error e = ErrnoError(env, err, "getsockopt");
      e.Set("message",
            Napi::String::New(env, "fd " + std::to_string(fd) +
                                       " is not a NETLINK_AUDIT socket (getsockopt: " + strerror(err) + ")"));
      e.ThrowAsJavaScriptException();
      return false;
    }
    l = sizeof(int);
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l);
    l = sizeof(int);
    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &l);
    if (domain != AF_NETLINK || type != SOCK_RAW || protocol != NETLINK_AUDIT) {
      std::string msg = "fd " + std::to_string(fd) + " is not a NETLINK_AUDIT socket (domain " +
                        std::to_string(domain) + ", type " + std::to_string(type) + ", protocol " +
                        std::to_string(protocol) + ")";
      Napi::Error e = Napi::Error::New(env, msg);
      e.Set("code", Napi::String::New(env, "EPROTOTYPE"));
      e.Set("errno", Napi::Number::New(env, EPROTOTYPE));
      e.Set("syscall", Napi::String::New(env, "getsockopt"));
      e.ThrowAsJavaScriptException();
      return false;
    }
    // Inherited without O_NONBLOCK or FD_CLOEXEC: the read loop needs the first, and without the second every plugin
    // and auxiliary process auditmux starts would hold the kernel's audit socket.
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
      ErrnoError(env, errno, "fcntl").ThrowAsJavaScriptException();
      return false;
    }
    fd_ = fd;
    return true;
  }

  bool ApplyRcvBuf(int bytes) {
    // SO_RCVBUFFORCE ignores rmem_max (needs CAP_NET_ADMIN); fall back to the capped SO_RCVBUF.
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) == 0) return true;
    return setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)) == 0;
  }

  Napi::Value SetReceiveBuffer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return ThrowClosed(env);
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "setReceiveBuffer(bytes): bytes must be a number").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!ApplyRcvBuf(info[0].As<Napi::Number>().Int32Value())) {
      ErrnoError(env, errno, "setsockopt").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int actual = 0;
    socklen_t l = sizeof(actual);
    getsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &actual, &l);
    return Napi::Number::New(env, actual);
  }

  Napi::Value ThrowClosed(Napi::Env env) {
    ErrnoError(env, EBADF, "send").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  // send(buf: Buffer): number — one netlink request to the kernel (nl_pid 0).
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return ThrowClosed(env);
    if (info.Length() < 1 || !info[0].IsBuffer()) {
      Napi::TypeError::New(env, "send(buf): buf must be a Buffer").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Buffer<uint8_t> buf = info[0].As<Napi::Buffer<uint8_t>>();
    struct sockaddr_nl dst;
    memset(&dst, 0, sizeof(dst));
    dst.nl_family = AF_NETLINK;
    ssize_t n;
    do {
      n = sendto(fd_, buf.Data(), buf.Length(), 0, reinterpret_cast<struct sockaddr*>(&dst), sizeof(dst));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      ErrnoError(env, errno, "sendto").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Number::New(env, static_cast<double>(n));
  }

  // start(cb(err, batch: Buffer, lengths: Uint32Array, count: number)) — cb runs once per drained batch on the env's
  // loop. `batch` and `lengths` are the same objects every time, refilled for each call: valid only until cb returns,
  // and only `count` entries of `lengths` belong to this call (no ArrayBuffer to allocate and collect per batch).
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return ThrowClosed(env);
    if (info.Length() < 1 || !info[0].IsFunction()) {
      Napi::TypeError::New(env, "start(cb): cb must be a function").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    coalesce_ms_ = 0;
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Object o = info[1].As<Napi::Object>();
      if (o.Has("coalesceMs") && o.Get("coalesceMs").IsNumber())
        coalesce_ms_ = o.Get("coalesceMs").As<Napi::Number>().Uint32Value();
    }
    if (!poll_) {
      uv_loop_t* loop = nullptr;
      if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
        Napi::Error::New(env, "no libuv loop for this environment").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      poll_ = new uv_poll_t;
      int r = uv_poll_init(loop, poll_, fd_);
      if (r != 0) {
        delete poll_;
        poll_ = nullptr;
        ErrnoError(env, -r, "uv_poll_init").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      poll_->data = this;
      timer_ = new uv_timer_t;
      uv_timer_init(loop, timer_);
      timer_->data = this;
      uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
    }
    int r = uv_poll_start(poll_, UV_READABLE, &AuditNetlink::OnReadable);
    if (r != 0) {
      ErrnoError(env, -r, "uv_poll_start").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!polling_) {
      polling_ = true;
      Ref();  // keep the wrapper alive while the loop can call back into it
    }
    if (!slots_) {
      slots_.reset(new uint8_t[kSlotSize * kSlots]);  // default-initialised: no page touched until read into
      // The headers are set once: recvmmsg writes msg_len, msg_flags, the sender's address and msg_namelen (reset
      // before each call in Drain); no control data here.
      memset(msgs_, 0, sizeof(msgs_));
      for (unsigned i = 0; i < kSlots; i++) {
        iov_[i].iov_base = slots_.get() + i * kSlotSize;
        iov_[i].iov_len = kSlotSize;
        msgs_[i].msg_hdr.msg_iov = &iov_[i];
        msgs_[i].msg_hdr.msg_iovlen = 1;
        msgs_[i].msg_hdr.msg_name = &names_[i];
      }
    }
    if (lengths_buf_.IsEmpty()) {
      Napi::Uint32Array l = Napi::Uint32Array::New(env, kMaxBatchDatagrams);
      lengths_ = l.Data();  // a V8 backing store does not move while the reference holds it
      lengths_buf_ = Napi::Persistent(l);
      lengths_used_ = 0;
    }
    if (batch_mem_ == nullptr) {
      // One batch buffer for the socket's life, not one per wake-up: per-batch buffers outlive their batch until a
      // full GC, and at tens of thousands of records a second that is tens of MiB of resident garbage. The JS Buffer
      // owns the memory (freed by its finalizer), so a Buffer JS still holds after close() stays valid.
      batch_mem_ = new uint8_t[kBatchCapacity];
      Napi::Buffer<uint8_t> b =
          Napi::Buffer<uint8_t>::New(env, batch_mem_, kBatchCapacity, [](Napi::Env, uint8_t* p) { delete[] p; });
      batch_buf_ = Napi::Persistent(b);
      batch_used_ = 0;
    }
    return env.Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    StopPolling();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Teardown();
    return info.Env().Undefined();
  }

  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }
  Napi::Value GetPortId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), port_id_); }
  Napi::Value GetForeign(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(foreign_));
  }

  void StopPolling() {
    if (timer_) uv_timer_stop(timer_);
    if (poll_ && polling_) uv_poll_stop(poll_);
    if (polling_) {
      polling_ = false;
      Unref();
    }
  }

  void CloseHandle(uv_handle_t* h) {
    h->data = closer_;
    closer_->closing++;
    uv_close(h, OnHandleClosed);
  }

  void CloseHandles() {
    if (timer_) {
      uv_timer_stop(timer_);
      CloseHandle(reinterpret_cast<uv_handle_t*>(timer_));
      timer_ = nullptr;
    }
    if (poll_) {
      CloseHandle(reinterpret_cast<uv_handle_t*>(poll_));
      poll_ = nullptr;
    }
  }

  void Teardown() {
    StopPolling();
    CloseHandles();
    CloseFd();
    callback_.Reset();
    batch_used_ = 0;
    lengths_used_ = 0;
    batch_mem_ = nullptr;  // the JS Buffer owns it
    batch_buf_.Reset();
    lengths_ = nullptr;  // the JS Uint32Array owns it
    lengths_buf_.Reset();
  }

  void CloseFd() {
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

  // The environment is going away (process exit, a worker's exit or terminate()): no JS from here on. Node waits,
  // running the loop, until Settle removes the hook after the last close callback.
  static void AsyncCleanup(napi_async_cleanup_hook_handle, void* arg) {
    auto* c = static_cast<Closer*>(arg);
    c->tearing_down = true;
    if (c->owner) {
      AuditNetlink* self = c->owner;
      if (self->poll_ && self->polling_) uv_poll_stop(self->poll_);
      self->polling_ = false;
      self->CloseHandles();
      self->CloseFd();
    }
    Settle(c);
  }

  // Drain with recvmmsg until EAGAIN (or, when coalescing, until a short read); hand JS one packed batch per
  // kMaxBatchBytes. Returns true when it read at least one datagram.
  bool Drain(int status) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (status < 0) {
      // POLLERR: libuv has stopped the poll and says only EBADF. The socket's pending error (ENOBUFS when the kernel
      // dropped messages for us and NETLINK_NO_ENOBUFS is off, e.g. cleared by another holder of the fd) is read,
      // which clears it, reported, and reading goes on.
      int err = 0;
      socklen_t l = sizeof(err);
      bool ok = fd_ >= 0 && getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &l) == 0;
      if (!ok) err = fd_ >= 0 ? errno : EBADF;
      Deliver(env, ErrnoError(env, err != 0 ? err : -status, ok ? "poll" : "getsockopt").Value(), 0);
      if (!ok)
        StopPolling();
      else if (polling_ && poll_)
        uv_poll_start(poll_, UV_READABLE, &AuditNetlink::OnReadable);
      return false;
    }
    batch_used_ = 0;
    lengths_used_ = 0;
    bool got_any = false;
    for (;;) {
      if (fd_ < 0 || !polling_) break;
      for (unsigned i = 0; i < kSlots; i++) msgs_[i].msg_hdr.msg_namelen = sizeof(names_[i]);
      int n = recvmmsg(fd_, msgs_, kSlots, MSG_DONTWAIT, nullptr);
      if (n < 0) {
        int err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) break;
        // ENOBUFS (overrun) and friends: report, keep polling; records already read are delivered first.
        Flush(env);
        Deliver(env, ErrnoError(env, err, "recvmmsg").Value(), 0);
        if (err == ENOBUFS) continue;
        return got_any;
      }
      if (n > 0) got_any = true;
      for (int i = 0; i < n; i++) {
        // close() from inside a callback released the batch buffer: what is left of this read is dropped with it.
        if (batch_mem_ == nullptr) break;
        // Only the kernel (port 0) speaks here: any process with CAP_NET_ADMIN in this network namespace can also
        // send to our port, with forged records or replies. Dropped and counted, never handed to JS.
        const struct sockaddr_nl& from = names_[i];
        if (msgs_[i].msg_hdr.msg_namelen < sizeof(from) || from.nl_family != AF_NETLINK || from.nl_pid != 0) {
          foreign_++;
          continue;
        }
        size_t len = msgs_[i].msg_len;
        if (len > kSlotSize) len = kSlotSize;
        if (batch_used_ + len > kBatchCapacity || lengths_used_ == kMaxBatchDatagrams) Flush(env);
        if (batch_mem_ == nullptr || lengths_ == nullptr) break;
        // A truncated datagram cannot be trusted past the slot; flag it with the high bit so JS counts it.
        uint32_t flag = (msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) ? 0x80000000u : 0;
        memcpy(batch_mem_ + batch_used_, slots_.get() + static_cast<size_t>(i) * kSlotSize, len);
        batch_used_ += len;
        lengths_[lengths_used_++] = static_cast<uint32_t>(len) | flag;
      }
      if (batch_used_ >= kMaxBatchBytes) Flush(env);
      // A short read means the queue was empty a moment ago. Without moderation, one more call confirms it with
      // EAGAIN; with it, the timer comes back in a few ms anyway, so that call (a syscall per wake-up) is saved.
      if (static_cast<unsigned>(n) < kSlots && coalesce_ms_ > 0) break;
    }
    Flush(env);
    return got_any;
  }

  static void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
    auto* self = static_cast<AuditNetlink*>(handle->data);
    bool got = self->Drain(status);
    // Interrupt moderation: after a drain, let records gather in the socket for a moment before the next read, so
    // a trickle of single records costs one wake-up per few ms instead of one per record.
    if (got && self->coalesce_ms_ > 0 && self->polling_ && self->poll_ && self->timer_) {
      uv_poll_stop(self->poll_);
      uv_timer_start(self->timer_, &AuditNetlink::OnTimer, self->coalesce_ms_, 0);
    }
  }

  // Under a steady load the timer reads the socket itself, as a batched C reader sleeps and reads: no epoll_ctl to
  // re-arm the poll and no epoll wake-up per batch. Only a read that finds nothing goes back to waiting on the poll.
  static void OnTimer(uv_timer_t* t) {
    auto* self = static_cast<AuditNetlink*>(t->data);
    if (!self->polling_ || !self->poll_) return;
    if (self->Drain(0) && self->polling_ && self->timer_) {
      uv_timer_start(self->timer_, &AuditNetlink::OnTimer, self->coalesce_ms_, 0);
      return;
    }
    if (self->polling_ && self->poll_) uv_poll_start(self->poll_, UV_READABLE, &AuditNetlink::OnReadable);
  }

  void Flush(Napi::Env env) {
    if (lengths_used_ == 0 || batch_buf_.IsEmpty() || lengths_buf_.IsEmpty()) return;
    Napi::Buffer<uint8_t> buf = batch_buf_.Value();
    Napi::Uint32Array lens = lengths_buf_.Value();
    Napi::Number count = Napi::Number::New(env, static_cast<double>(lengths_used_));
    batch_used_ = 0;
    lengths_used_ = 0;
    Deliver(env, buf, lens, count);
  }

  void Deliver(Napi::Env env, Napi::Value a, Napi::Value b, Napi::Value count = Napi::Value()) {
    if (callback_.IsEmpty()) return;
    napi_value argv[4];
    if (b.IsEmpty() || b.IsNumber()) {  // error delivery
      argv[0] = a;
      argv[1] = env.Undefined();
      argv[2] = env.Undefined();
      argv[3] = env.Undefined();
    } else {
      argv[0] = env.Null();
      argv[1] = a;
      argv[2] = b;
      argv[3] = count;
    }
    try {
      callback_.MakeCallback(Value(), {argv[0], argv[1], argv[2], argv[3]});
    } catch (const Napi::Error& e) {
      // A throwing JS callback must reach process 'uncaughtException', not unwind through libuv.
      napi_fatal_exception(env, e.Value());
    }
  }
  void Deliver(Napi::Env env, Napi::Value err, int) { Deliver(env, err, Napi::Value()); }

  int fd_ = -1;
  uint32_t port_id_ = 0;
  uv_poll_t* poll_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  uint32_t coalesce_ms_ = 0;
  bool polling_ = false;
  Closer* closer_ = nullptr;
  // Datagrams dropped because they did not come from the kernel (nl_pid != 0).
  uint64_t foreign_ = 0;
  Napi::FunctionReference callback_;
  std::unique_ptr<uint8_t[]> slots_;
  struct mmsghdr msgs_[kSlots];
  struct iovec iov_[kSlots];
  struct sockaddr_nl names_[kSlots];
  uint8_t* batch_mem_ = nullptr;
  size_t batch_used_ = 0;
  Napi::Reference<Napi::Buffer<uint8_t>> batch_buf_;
  uint32_t* lengths_ = nullptr;
  size_t lengths_used_ = 0;
  Napi::Reference<Napi::Uint32Array> lengths_buf_;
};

// ---- u64 contid packing -------------------------------------------------------------------------------------

uint64_t ToU64(const Napi::CallbackInfo& info, size_t idx, bool* ok) {
  Napi::Env env = info.Env();
  *ok = false;
  if (info.Length() <= idx || !info[idx].IsBigInt()) {
    Napi::TypeError::New(env, "contid must be a BigInt").ThrowAsJavaScriptException();
    return 0;
  }
  Napi::BigInt big = info[idx].As<Napi::BigInt>();
  int sign = 0;
  size_t words = big.WordCount();
  uint64_t w[2] = {0, 0};
  if (words > 1) {
    Napi::RangeError::New(env, "contid must be in 0..2^64-1").ThrowAsJavaScriptException();
    return 0;
  }
  big.ToWords(&sign, &words, w);
  if (sign != 0 && w[0] != 0) {
    Napi::RangeError::New(env, "contid must be in 0..2^64-1").ThrowAsJavaScriptException();
    return 0;
  }
  *ok = true;
  return words == 0 ? 0 : w[0];
}

// contidToU32Pair(id: bigint): [low, high] — the u64 as the kernel's pair of u32 words, host order.
Napi::Value ContidToU32Pair(const Napi::CallbackInfo& info) {
  bool ok;
  uint64_t v = ToU64(info, 0, &ok);
  if (!ok) return info.Env().Undefined();
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Number::New(info.Env(), static_cast<uint32_t>(v & 0xffffffffu)));
  out.Set(1u, Napi::Number::New(info.Env(), static_cast<uint32_t>(v >> 32)));
  return out;
}

// u32PairToContid(low, high): bigint
Napi::Value U32PairToContid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "u32PairToContid(low, high): numbers expected").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double lo = info[0].As<Napi::Number>().DoubleValue();
  double hi = info[1].As<Napi::Number>().DoubleValue();
  if (!(lo >= 0 && lo <= 4294967295.0 && lo == static_cast<double>(static_cast<uint64_t>(lo))) ||
      !(hi >= 0 && hi <= 4294967295.0 && hi == static_cast<double>(static_cast<uint64_t>(hi)))) {
    Napi::RangeError::New(env, "u32PairToContid: words must be integers in 0..2^32-1").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint64_t v = (static_cast<uint64_t>(hi) << 32) | static_cast<uint64_t>(lo);
  return Napi::BigInt::New(env, v);
}

// contidToBytes(id: bigint): Buffer(8) — the rule-buffer form of the contid patch set (a native u64 memcpy).
Napi::Value ContidToBytes(const Napi::CallbackInfo& info) {
  bool ok;
  uint64_t v = ToU64(info, 0, &ok);
  if (!ok) return info.Env().Undefined();
  return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<const uint8_t*>(&v), sizeof(v));
}

// bytesToContid(buf: Buffer, offset = 0): bigint
Napi::Value BytesToContid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) {
    Napi::TypeError::New(env, "bytesToContid(buf, offset): buf must be a Buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> buf = info[0].As<Napi::Buffer<uint8_t>>();
  double off = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
  if (!(off >= 0) || off + 8 > static_cast<double>(buf.Length()) ||
      off != static_cast<double>(static_cast<size_t>(off))) {
    Napi::RangeError::New(env, "bytesToContid: offset out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint64_t v;
  memcpy(&v, buf.Data() + static_cast<size_t>(off), sizeof(v));
  return Napi::BigInt::New(env, v);
}

// peerCredentials(fd): {pid, uid, gid} of the process at the other end of a connected unix socket (SO_PEERCRED).
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "peerCredentials(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    ErrnoError(env, errno, "getsockopt").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Napi::Number::New(env, cred.pid));
  o.Set("uid", Napi::Number::New(env, cred.uid));
  o.Set("gid", Napi::Number::New(env, cred.gid));
  return o;
}

// notifySocket(path, message, fd?): one datagram to systemd's NOTIFY_SOCKET (sd_notify(3)); Node has no AF_UNIX
// datagram sockets. A leading '@' names an abstract socket. The socket lives only for this call.
Napi::Value NotifySocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    Napi::TypeError::New(env, "notifySocket(path, message): both must be strings").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string msg = info[1].As<Napi::String>().Utf8Value();
  int pass_fd = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (path.size() < 2 || path.size() > sizeof(sa.sun_path) - 1 || (path[0] != '/' && path[0] != '@')) {
    Napi::RangeError::New(env, "notifySocket: path must be absolute or @abstract and fit sun_path")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  memcpy(sa.sun_path, path.data(), path.size());
  if (path[0] == '@') sa.sun_path[0] = '\0';
  socklen_t len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size());
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ErrnoError(env, errno, "socket").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // FDSTORE=1 carries the fd in SCM_RIGHTS: systemd keeps a duplicate and hands it back on the next start.
  struct iovec iov = {const_cast<char*>(msg.data()), msg.size()};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  struct msghdr mh;
  memset(&mh, 0, sizeof(mh));
  mh.msg_name = &sa;
  mh.msg_namelen = len;
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (pass_fd >= 0) {
    memset(control, 0, sizeof(control));
    mh.msg_control = control;
    mh.msg_controllen = sizeof(control);
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
  int err = errno;
  close(fd);
  if (n < 0) {
    ErrnoError(env, err, "sendmsg").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return env.Undefined();
}

// Sets FD_CLOEXEC on one fd unless it has it; an fd closed meanwhile (EBADF) is simply gone.
void SetCloexec(int fd) {
  int flags = fcntl(fd, F_GETFD);
  if (flags >= 0 && (flags & FD_CLOEXEC) == 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

// Every open fd from min_fd on, found in /proc/self/fd; false when /proc cannot be read.
bool CloexecFromProc(int min_fd) {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return false;
  int own = dirfd(d);
  while (struct dirent* e = readdir(d)) {
    char* end = nullptr;
    long fd = strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd < min_fd || fd > INT32_MAX || fd == own) continue;
    SetCloexec(static_cast<int>(fd));
  }
  closedir(d);
  return true;
}

// Every fd number from min_fd up to the soft RLIMIT_NOFILE (at most 2^20): the last resort, without /proc.
void CloexecFromScan(int min_fd) {
  struct rlimit rl;
  rlim_t max = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
  if (max == RLIM_INFINITY || max > (1U << 20)) max = 1U << 20;
  for (rlim_t fd = static_cast<rlim_t>(min_fd); fd < max; fd++) SetCloexec(static_cast<int>(fd));
}

// cloexecFrom(minFd, how?): marks every fd from minFd on close-on-exec, so that no descriptor the process inherited
// (a LISTEN_FDS socket it did not adopt, anything a parent leaked without O_CLOEXEC) reaches the programs it starts:
// libuv's spawn closes nothing it was not asked to. close_range(CLOSE_RANGE_CLOEXEC) (Linux 5.11) in one call, else
// each fd /proc/self/fd lists, else every number up to RLIMIT_NOFILE. `how` ("proc", "scan") skips the earlier ways
// (tests). Returns the way taken: "close_range", "proc" or "scan".
Napi::Value CloexecFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "cloexecFrom(minFd, how?): minFd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int min_fd = info[0].As<Napi::Number>().Int32Value();
  if (min_fd < 0) {
    Napi::RangeError::New(env, "cloexecFrom: minFd must be >= 0").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string how = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
#ifdef SYS_close_range
  if (how.empty() && syscall(SYS_close_range, static_cast<unsigned int>(min_fd), ~0U,
                             static_cast<unsigned int>(CLOSE_RANGE_CLOEXEC)) == 0)
    return Napi::String::New(env, "close_range");
#endif
  // ENOSYS (before 5.9), EINVAL (no CLOSE_RANGE_CLOEXEC before 5.11), EPERM (a seccomp filter): one fd at a time.
  if (how != "scan" && CloexecFromProc(min_fd)) return Napi::String::New(env, "proc");
  CloexecFromScan(min_fd);
  return Napi::String::New(env, "scan");
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  AuditNetlink::Init(env, exports);
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials));
  exports.Set("notifySocket", Napi::Function::New(env, NotifySocket));
  exports.Set("cloexecFrom", Napi::Function::New(env, CloexecFrom));
  exports.Set("contidToU32Pair", Napi::Function::New(env, ContidToU32Pair));
  exports.Set("u32PairToContid", Napi::Function::New(env, U32PairToContid));
  exports.Set("contidToBytes", Napi::Function::New(env, ContidToBytes));
  exports.Set("bytesToContid", Napi::Function::New(env, BytesToContid));
  InitLogSync(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(auditmux_netlink, Init)
