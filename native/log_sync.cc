// The logs' background fsync thread (auditd's flush thread): fd lifetime of its duplicates, completions polled by JS.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <cmath>
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
  int fd = -1;            // our duplicate of the log's descriptor (the same open file, whatever JS does with its fd)
  bool used = false;      // the slot belongs to a log
  bool wanted = false;    // a sync was asked for and the thread has not taken it into a round yet
  bool inround = false;   // taken into the thread's round, its fsync not done yet (syncClose may still run it)
  bool busy = false;      // the thread is using fd now, for this slot's own call (it alone may use fd then)
  double done = 0;        // syncs completed without error
  int err = 0;            // the first errno not yet read by JS
  void* owner = nullptr;  // the environment (napi_env) that opened it: its teardown closes it
};

struct State {
  std::mutex mu;
  std::condition_variable cv;    // the thread waits here for requests
  std::condition_variable idle;  // syncClose waits here for the sync running on its slot
  std::vector<Slot> slots;
  std::thread thread;
  size_t next = 0;  // where the thread looks first: slots are served in turn, so one busy log cannot starve another
  int envs = 0;     // environments that loaded the addon: the thread stops when the last one is torn down
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

// The thread's claim on a slot of its round for one call on its fd (lock released on entry and return): false when
// the slot was closed (syncClose ran its fsync itself) or reused since the round was taken.
bool Claim(State* s, std::unique_lock<std::mutex>& lock, std::pair<size_t, int> r) {
  lock.lock();
  // `slots` may have grown meanwhile (a reference would dangle): index again.
  Slot& slot = s->slots[r.first];
  bool mine = slot.used && slot.inround && slot.fd == r.second;
  if (mine) slot.busy = true;
  lock.unlock();
  return mine;
}

// Ends the thread's call on slot j; `last`: it was the round's fsync, whose result is recorded.
void Release(State* s, std::unique_lock<std::mutex>& lock, size_t j, bool last, int err) {
  lock.lock();
  Slot& slot = s->slots[j];  // a busy slot is never closed
  slot.busy = false;
  if (last) {
    slot.inround = false;
    Record(slot, err);
  }
  s->idle.notify_all();
  lock.unlock();
}

void Loop(State* s) {
  // Named so `top -H` and the bench's per-thread CPU tell it from V8's workers (all "node"); 15 bytes at most.
  pthread_setname_np(pthread_self(), "auditmux-sync");
  std::unique_lock<std::mutex> lock(s->mu);
  // The round being synced: slot indexes and their descriptors, read under the lock and used without it, so in the
  // thread's own storage (syncOpen may grow `slots` meanwhile), and fixed: the thread never allocates.
  std::array<std::pair<size_t, int>, kRoundMax> round;
  for (;;) {
    // A round takes the logs asked for now (up to kRoundMax; the rest make the next one), starting at `next`: served
    // in turn, so one busy log cannot starve another. Requests made during the round make the next one.
    const size_t n = s->slots.size();
    size_t count = 0;
    for (size_t k = 0; k < n && count < kRoundMax; k++) {
      size_t j = (s->next + k) % n;
      Slot& slot = s->slots[j];
      if (!slot.wanted) continue;
      slot.wanted = false;
      slot.inround = true;
      round[count++] = {j, slot.fd};
    }
    if (count == 0) {
      if (s->quit) return;
      s->cv.wait(lock);
      continue;
    }
    // A full round may have left logs out: the next starts after its last, so they come first. Otherwise it took
    // every log asked for, and the next starts after its first: logs asked for together take turns at going first.
    s->next = (count == kRoundMax ? round[count - 1].first : round[0].first) + 1;
    lock.unlock();
    // Why start every log's write-back first: an fsync waits for its data, then writes the inode and flushes the
    // disk's cache, each a round trip to the disk. Started together, the logs' data writes travel at once instead of
    // one fsync after another (two logs: about 10-15% less CPU per round here, four: 25-40%; bench/findings.md).
    // WRITE alone neither waits nor reads the file's write-back error: each fsync below still sees its own.
    // Each call claims its slot alone, for its own duration: a syncClose of a log waits only for that log's call in
    // progress, never for the fsyncs of other logs before it in the round (one on a hung file system held every
    // rotation and close behind it, on the event loop). A slot closed meanwhile is skipped (its fd is gone).
    if (count > 1)
      for (size_t k = 0; k < count; k++) {
        if (!Claim(s, lock, round[k])) continue;
        sync_file_range(round[k].second, 0, 0, SYNC_FILE_RANGE_WRITE);
        Release(s, lock, round[k].first, false, 0);
      }
    for (size_t k = 0; k < count; k++) {
      if (!Claim(s, lock, round[k])) continue;
      int err = fsync(round[k].second) < 0 ? errno : 0;
      Release(s, lock, round[k].first, true, err);
    }
    lock.lock();
  }
}

// A slot's results as JavaScript gets them: built after the lock is released, since setting an array element or an
// error's property can run JavaScript (a setter on a prototype), which could call back in here.
struct Results {
  double done;
  int err;
};

Napi::Value ToJs(Napi::Env env, Results r) {
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, r.done));
  out.Set(1u, Napi::Number::New(env, r.err));
  return out;
}

// The slot's results, its first errno not read before now read (the caller holds s->mu).
Results Take(Slot& slot) {
  Results r{slot.done, slot.err};
  slot.err = 0;
  return r;
}

// Finishes what was asked of slot `id` and closes it (the caller holds the lock): waits for the thread's call on this
// slot in progress, if any (never for other logs' syncs), and runs here a sync asked for and not yet done.
Results CloseSlot(State* s, std::unique_lock<std::mutex>& lock, size_t id) {
  while (s->slots[id].busy) s->idle.wait(lock);
  Slot& slot = s->slots[id];  // indexed after the wait: `slots` may have grown meanwhile
  // Asked for, or in the round and not started: run here, and the thread skips it (its claim fails once closed).
  if (slot.wanted || slot.inround) {
    slot.wanted = false;
    slot.inround = false;
    Record(slot, fsync(slot.fd) < 0 ? errno : 0);
  }
  Results r = Take(slot);
  close(slot.fd);
  slot = Slot();
  return r;
}

// An environment's teardown (arg: its napi_env). Its logs still open are synced as asked and closed; the last
// environment to go stops the thread, which first runs the syncs asked for and not started.
void Cleanup(void* arg) {
  State* s = state();
  std::unique_lock<std::mutex> lock(s->mu);
  for (size_t i = 0; i < s->slots.size(); i++)
    if (s->slots[i].used && s->slots[i].owner == arg) CloseSlot(s, lock, i);
  if (--s->envs > 0) return;  // another environment (a worker's) still has logs the thread syncs
  s->quit = true;
  lock.unlock();
  s->cv.notify_one();
  if (s->thread.joinable()) s->thread.join();
  lock.lock();
  // An environment made later opens a slot and starts the thread again.
  s->started = false;
  s->quit = false;
}

// info[0] as a whole number from 0 to max, else -1: a fraction, NaN, an infinity or a value out of range names no
// slot or descriptor (cut to an integer, each would name one, often slot 0 or stdin).
int64_t WholeArg(const Napi::CallbackInfo& info, int64_t max) {
  if (info.Length() < 1 || !info[0].IsNumber()) return -1;
  double v = info[0].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= static_cast<double>(max)) || v != std::floor(v)) return -1;
  return static_cast<int64_t>(v);
}

// Whether `id` names an open slot (the caller holds s->mu).
bool IsOpen(State* s, int64_t id) { return id >= 0 && static_cast<size_t>(id) < s->slots.size() && s->slots[id].used; }

Napi::Value NoSlot(Napi::Env env, const char* fn) {
  Napi::RangeError::New(env, std::string(fn) + "(id): no such open slot").ThrowAsJavaScriptException();
  return env.Undefined();
}

// syncOpen(fd): a slot for the log open at fd (a duplicate of it, close-on-exec, never 0-2), its id returned.
Napi::Value SyncOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "syncOpen(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int64_t fd = WholeArg(info, INT_MAX);
  if (fd < 0) {
    Napi::RangeError::New(env, "syncOpen(fd): fd must be a whole number from 0 to 2147483647")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  State* s = state();
  const char* failed = nullptr;  // the call that failed, its errno in err: thrown once the lock is released
  int err = 0;
  size_t i = 0;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    if (!s->started) {
      // Started before anything is duplicated, so a failure leaks nothing (EAGAIN past RLIMIT_NPROC or TasksMax).
      try {
        s->thread = std::thread(Loop, s);
        s->started = true;
      } catch (const std::system_error& e) {
        failed = "pthread_create";
        err = e.code().value();
      } catch (const std::bad_alloc&) {
        failed = "pthread_create";
        err = ENOMEM;
      }
    }
    while (!failed && i < s->slots.size() && s->slots[i].used) i++;
    if (!failed && i == s->slots.size()) {
      try {
        s->slots.emplace_back();
      } catch (const std::bad_alloc&) {
        failed = "syncOpen";
        err = ENOMEM;
      }
    }
    int dup = failed ? -1 : fcntl(static_cast<int>(fd), F_DUPFD_CLOEXEC, 3);
    if (!failed && dup < 0) {
      failed = "fcntl";
      err = errno;
    }
    if (!failed) {
      s->slots[i] = Slot();
      s->slots[i].used = true;
      s->slots[i].fd = dup;
      s->slots[i].owner = static_cast<napi_env>(env);
    }
  }
  if (failed) {
    ErrnoError(env, err, failed).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(i));
}

// syncRequest(id): an fsync of the slot's file, after any in progress (requests meanwhile make one more). Returns
// what syncTake would, in one number and without an array: the syncs completed, or -errno for the first error not
// read before (then read). The writer asks once per batch, so this is its only call into the thread's state.
Napi::Value SyncRequest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = state();
  int64_t id = WholeArg(info, INT_MAX);
  Results r{0, 0};
  bool open = false;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    open = IsOpen(s, id);
    if (open) {
      Slot& slot = s->slots[id];
      r = Take(slot);
      wake = !slot.wanted;
      slot.wanted = true;
    }
  }
  if (!open) return NoSlot(env, "syncRequest");
  if (wake) s->cv.notify_one();
  return Napi::Number::New(env, r.err != 0 ? -static_cast<double>(r.err) : r.done);
}

// syncTake(id): [syncs completed since the slot opened, the first errno not read before (0: none)].
Napi::Value SyncTake(const Napi::CallbackInfo& info) {
  State* s = state();
  int64_t id = WholeArg(info, INT_MAX);
  Results r{0, 0};
  bool open = false;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    open = IsOpen(s, id);
    if (open) r = Take(s->slots[id]);
  }
  return open ? ToJs(info.Env(), r) : NoSlot(info.Env(), "syncTake");
}

// syncClose(id): finishes what was asked (see CloseSlot), closes the duplicate and returns the slot's last results
// as syncTake does. Its error is this file's and must reach the caller: an fsync consumes the file's write-back
// error, so the log's own fsync after it would see none. Called at a rotation or a close, where the log syncs anyway.
Napi::Value SyncClose(const Napi::CallbackInfo& info) {
  State* s = state();
  int64_t id = WholeArg(info, INT_MAX);
  Results r{0, 0};
  bool open = false;
  {
    std::unique_lock<std::mutex> lock(s->mu);
    open = IsOpen(s, id);
    if (open) r = CloseSlot(s, lock, static_cast<size_t>(id));
  }
  return open ? ToJs(info.Env(), r) : NoSlot(info.Env(), "syncClose");
}

}  // namespace

void InitLogSync(Napi::Env env, Napi::Object exports) {
  State* s = state();
  {
    std::lock_guard<std::mutex> lock(s->mu);
    s->envs++;
  }
  // Each environment's own hook: a worker's teardown closes its logs and leaves the thread to the others.
  napi_add_env_cleanup_hook(env, Cleanup, static_cast<napi_env>(env));
  exports.Set("syncOpen", Napi::Function::New(env, SyncOpen));
  exports.Set("syncRequest", Napi::Function::New(env, SyncRequest));
  exports.Set("syncTake", Napi::Function::New(env, SyncTake));
  exports.Set("syncClose", Napi::Function::New(env, SyncClose));
}
