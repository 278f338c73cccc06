// The logs' background fsync thread (auditd's flush thread): fd lifetime of its duplicates, completions polled by JS.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "addon.h"

// Why a thread of our own and not libuv's pool (fs.fsync): a pool request's completion wakes the event loop, so a
// daemon that syncs once per receive batch slept twice per batch (bench/findings.md). This thread tells nobody when
// a sync is done: JavaScript reads the counts when it next asks (once per batch), as auditd's flush thread does.

namespace {

struct Slot {
  int fd = -1;          // our duplicate of the log's descriptor (the same open file, whatever JS does with its fd)
  bool used = false;    // the slot belongs to a log
  bool wanted = false;  // a sync was asked for and has not started yet
  bool busy = false;    // the thread is syncing fd now (it alone may use fd then)
  bool closing = false;
  double done = 0;  // syncs completed without error
  int err = 0;      // the first errno not yet read by JS
};

struct State {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Slot> slots;
  std::thread thread;
  bool started = false;
  bool quit = false;
};

State* state() {
  // Never destroyed: the cleanup hook stops the thread, and a static destructor running after it would be no help.
  static State* s = new State();
  return s;
}

void Loop(State* s) {
  std::unique_lock<std::mutex> lock(s->mu);
  for (;;) {
    size_t i = 0;
    for (; i < s->slots.size(); i++)
      if (s->slots[i].wanted) break;
    if (i == s->slots.size()) {
      if (s->quit) return;
      s->cv.wait(lock);
      continue;
    }
    Slot& slot = s->slots[i];
    slot.wanted = false;
    slot.busy = true;
    int fd = slot.fd;
    lock.unlock();
    int r = fsync(fd);
    int err = r < 0 ? errno : 0;
    lock.lock();
    // `slots` may have grown meanwhile: index again.
    Slot& after = s->slots[i];
    after.busy = false;
    if (err == 0)
      after.done++;
    else if (after.err == 0)
      after.err = err;
    if (after.closing) {
      close(after.fd);
      after = Slot();
    }
  }
}

void Cleanup(void*) {
  State* s = state();
  {
    std::lock_guard<std::mutex> lock(s->mu);
    s->quit = true;
    // Syncs asked for and not started are still done: the thread drains `wanted` before it quits.
  }
  s->cv.notify_one();
  if (s->thread.joinable()) s->thread.join();
  std::lock_guard<std::mutex> lock(s->mu);
  // Another environment of the process (a worker's) may open a slot later: it starts the thread again.
  s->started = false;
  s->quit = false;
}

int32_t SlotArg(const Napi::CallbackInfo& info, State* s) {
  if (info.Length() < 1 || !info[0].IsNumber()) return -1;
  int32_t id = info[0].As<Napi::Number>().Int32Value();
  if (id < 0 || static_cast<size_t>(id) >= s->slots.size() || !s->slots[id].used || s->slots[id].closing) return -1;
  return id;
}

// syncOpen(fd): a slot for the log open at fd (a duplicate of it, close-on-exec), its id returned.
Napi::Value SyncOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "syncOpen(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int dup = fcntl(info[0].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 0);
  if (dup < 0) {
    ErrnoError(env, errno, "fcntl").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  State* s = state();
  std::lock_guard<std::mutex> lock(s->mu);
  if (!s->started) {
    s->thread = std::thread(Loop, s);
    s->started = true;
    napi_add_env_cleanup_hook(env, Cleanup, nullptr);
  }
  size_t i = 0;
  while (i < s->slots.size() && s->slots[i].used) i++;
  if (i == s->slots.size()) s->slots.emplace_back();
  s->slots[i].used = true;
  s->slots[i].fd = dup;
  return Napi::Number::New(env, static_cast<double>(i));
}

// syncRequest(id): an fsync of the slot's file, after any in progress (requests meanwhile make one more).
Napi::Value SyncRequest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = state();
  {
    std::lock_guard<std::mutex> lock(s->mu);
    int32_t id = SlotArg(info, s);
    if (id < 0) {
      Napi::RangeError::New(env, "syncRequest(id): no such open slot").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (s->slots[id].wanted) return env.Undefined();
    s->slots[id].wanted = true;
  }
  s->cv.notify_one();
  return env.Undefined();
}

// syncTake(id): [syncs completed since the slot opened, the first errno not read before (0: none)].
Napi::Value SyncTake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = state();
  std::lock_guard<std::mutex> lock(s->mu);
  int32_t id = SlotArg(info, s);
  if (id < 0) {
    Napi::RangeError::New(env, "syncTake(id): no such open slot").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, s->slots[id].done));
  out.Set(1u, Napi::Number::New(env, s->slots[id].err));
  s->slots[id].err = 0;
  return out;
}

// syncClose(id): the slot's duplicate is closed, at once or when the sync running on it ends; a sync asked for and
// not started is dropped (the log's close syncs its own fd).
Napi::Value SyncClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = state();
  std::lock_guard<std::mutex> lock(s->mu);
  int32_t id = SlotArg(info, s);
  if (id < 0) return env.Undefined();
  Slot& slot = s->slots[id];
  slot.wanted = false;
  if (slot.busy) {
    slot.closing = true;
  } else {
    close(slot.fd);
    slot = Slot();
  }
  return env.Undefined();
}

}  // namespace

void InitLogSync(Napi::Env env, Napi::Object exports) {
  exports.Set("syncOpen", Napi::Function::New(env, SyncOpen));
  exports.Set("syncRequest", Napi::Function::New(env, SyncRequest));
  exports.Set("syncTake", Napi::Function::New(env, SyncTake));
  exports.Set("syncClose", Napi::Function::New(env, SyncClose));
}
