// What the addon's files share: the error a failing syscall throws, and the log sync thread's registration.
#pragma once
#include <napi.h>

// An Error with `code` (the errno's name), `errno` and `syscall`, as Node's own system errors carry them.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);

// syncOpen, syncRequest, syncTake and syncClose (native/log_sync.cc) on the addon's exports.
void InitLogSync(Napi::Env env, Napi::Object exports);
