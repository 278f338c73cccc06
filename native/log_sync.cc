// The logs' background fsync thread (auditd's flush thread): fd lifetime of its duplicates, completions polled by JS.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
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
  double done = 0;      // syncs completed without error
  int err = 0;          // the first errno not yet read by JS
};

struct State {
  std::mutex mu;
  std::condition_variable cv;    // the thread waits here for requests
  std::condition_variable idle;  // syncClose waits here for the sync running on its slot
  std::vector<Slot> slots;
  std::thread thread;
  size_t next = 0;  // where the thread looks first: slots are served in turn, so one busy log cannot starve another
  bool started = false;
  bool quit = false;
};

State* state() {
  // Never destroyed: the cleanup hook stops the thread, and a static destructor running after it would be no help.
  static State* s = new State();
  return s;
}

// The most logs one round syncs (a host with more tenants syncs them in several rounds); the thread's stack holds it.
constexpr size_t kRoundMax = 64;

void Record(Slot& slot, int err) {
  if (err == 0)
    slot.done++;
  else if (slot.err == 0)
    slot.err = err;
}

void Loop(State* s) {
  // Named so `top -H` and the bench's per-thread CPU tell it from V8's workers (all "node"); 15 bytes at most.
  pthread_setname_np(pthread_self(), "auditmux-sync");
  std::unique_lock<std::mutex> lock(s->mu);
  // The round being synced: slot indexes and their descriptors, read under the lock and used without it, so in the
  // thread's own storage (syncOpen may grow `slots` meanwhile), and fixed: the thread never allocates.
  std::array<std::pair<size_t, int>, kRoundMax> round;
  for (;;) {
    // A round takes the logs asked for now (up to kRoundMax; the rest make the next one), starting after where the
    // last one started: served in turn, so one busy log cannot starve another. Requests during the round make the next.
    const size_t n = s->slots.size();
    size_t count = 0;
    for (size_t k = 0; k < n && count < kRoundMax; k++) {
      size_t j = (s->next + k) % n;
      Slot& slot = s->slots[j];
      if (!slot.wanted) continue;
      slot.wanted = false;
      slot.busy = true;
      round[count++] = {j, slot.fd};
    }
    if (count == 0) {
      if (s->quit) return;
      s->cv.wait(lock);
      continue;
    }
    s->next = round[0].first + 1;
    lock.unlock();
    // Why start every log's write-back first: an fsync waits for its data, then writes the inode and flushes the
    // disk's cache, each a round trip to the disk. Started together, the logs' data writes travel at once instead of
    // one fsync after another (two logs: about 10-15% less CPU per round here, four: 25-40%; bench/findings.md).
    // WRITE alone neither waits nor reads the file's write-back error: each fsync below still sees its own.
    if (count > 1)
      for (size_t k = 0; k < count; k++) sync_file_range(round[k].second, 0, 0, SYNC_FILE_RANGE_WRITE);
    for (size_t k = 0; k < count; k++) {
      int err = fsync(round[k].second) < 0 ? errno : 0;
      lock.lock();
      // `slots` may have grown meanwhile (a reference would dangle): index again. A busy slot is never closed.
      Slot& slot = s->slots[round[k].first];
      slot.busy = false;
      Record(slot, err);
      s->idle.notify_all();
      lock.unlock();
    }
    lock.lock();
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

// The open slot named by info[0] (the caller holds s->mu), or -1 with a RangeError thrown naming `fn`.
int32_t SlotArg(const Napi::CallbackInfo& info, State* s, const char* fn) {
  int32_t id = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : -1;
  if (id >= 0 && static_cast<size_t>(id) < s->slots.size() && s->slots[id].used) return id;
  Napi::RangeError::New(info.Env(), std::string(fn) + "(id): no such open slot").ThrowAsJavaScriptException();
  return -1;
}

// The slot's first errno not read before (0: none), now read.
int ReadErr(Slot& slot) {
  int err = slot.err;
  slot.err = 0;
  return err;
}

Napi::Value Results(Napi::Env env, Slot& slot) {
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, slot.done));
  out.Set(1u, Napi::Number::New(env, ReadErr(slot)));
  return out;
}

// syncOpen(fd): a slot for the log open at fd (a duplicate of it, close-on-exec, never 0-2), its id returned.
Napi::Value SyncOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "syncOpen(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  State* s = state();
  std::lock_guard<std::mutex> lock(s->mu);
  if (!s->started) {
    // Started before anything is duplicated, so a failure leaks nothing (EAGAIN past RLIMIT_NPROC or TasksMax).
    try {
      s->thread = std::thread(Loop, s);
    } catch (const std::system_error& e) {
      ErrnoError(env, e.code().value(), "pthread_create").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    s->started = true;
    napi_add_env_cleanup_hook(env, Cleanup, nullptr);
  }
  size_t i = 0;
  while (i < s->slots.size() && s->slots[i].used) i++;
  if (i == s->slots.size()) {
    try {
      s->slots.emplace_back();
    } catch (const std::bad_alloc&) {
      ErrnoError(env, ENOMEM, "syncOpen").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  int dup = fcntl(info[0].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 3);
  if (dup < 0) {
    ErrnoError(env, errno, "fcntl").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  s->slots[i] = Slot();
  s->slots[i].used = true;
  s->slots[i].fd = dup;
  return Napi::Number::New(env, static_cast<double>(i));
}

// syncRequest(id): an fsync of the slot's file, after any in progress (requests meanwhile make one more). Returns
// what syncTake would, in one number and without an array: the syncs completed, or -errno for the first error not
// read before (then read). The writer asks once per batch, so this is its only call into the thread's state.
Napi::Value SyncRequest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = state();
  double out;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    int32_t id = SlotArg(info, s, "syncRequest");
    if (id < 0) return env.Undefined();
    Slot& slot = s->slots[id];
    int err = ReadErr(slot);
    out = err != 0 ? -static_cast<double>(err) : slot.done;
    if (slot.wanted) return Napi::Number::New(env, out);
    slot.wanted = true;
  }
  s->cv.notify_one();
  return Napi::Number::New(env, out);
}

// syncTake(id): [syncs completed since the slot opened, the first errno not read before (0: none)].
Napi::Value SyncTake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = state();
  std::lock_guard<std::mutex> lock(s->mu);
  int32_t id = SlotArg(info, s, "syncTake");
  if (id < 0) return env.Undefined();
  return Results(env, s->slots[id]);
}

// syncClose(id): finishes what was asked (waits for the slot's sync when a round holds it, which may mean the fsyncs
// before it in that round; runs the one asked for and not taken, here), closes the duplicate and returns the slot's
// last results as syncTake does. Its error is this file's and must reach the caller: an fsync consumes the file's
// write-back error, so the log's own fsync after it would see none. Called at a rotation or a close, where the log
// syncs anyway.
Napi::Value SyncClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = state();
  std::unique_lock<std::mutex> lock(s->mu);
  int32_t id = SlotArg(info, s, "syncClose");
  if (id < 0) return env.Undefined();
  while (s->slots[id].busy) s->idle.wait(lock);
  if (s->slots[id].wanted) {
    s->slots[id].wanted = false;
    int r = fsync(s->slots[id].fd);
    Record(s->slots[id], r < 0 ? errno : 0);
  }
  Napi::Value out = Results(env, s->slots[id]);
  close(s->slots[id].fd);
  s->slots[id] = Slot();
  return out;
}

}  // namespace

void InitLogSync(Napi::Env env, Napi::Object exports) {
  exports.Set("syncOpen", Napi::Function::New(env, SyncOpen));
  exports.Set("syncRequest", Napi::Function::New(env, SyncRequest));
  exports.Set("syncTake", Napi::Function::New(env, SyncTake));
  exports.Set("syncClose", Napi::Function::New(env, SyncClose));
}
