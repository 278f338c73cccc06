/* loadgen.c: benchmark load generator; makes a cheap audited syscall at a fixed rate (or flat out) and reports what it did. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Raw syscalls: libc wrappers could be cached or routed to a different syscall (open -> openat), and the audit rule
   names exactly one syscall number. */
static int one_call(int mode_open, const char *path) {
    if (!mode_open) {
        syscall(SYS_getppid);
        return 0;
    }
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    syscall(SYS_close, fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s getppid|open RATE(0=flat out) DURATION_S [PATH]\n", argv[0]);
        return 2;
    }
    int mode_open = strcmp(argv[1], "open") == 0;
    if (!mode_open && strcmp(argv[1], "getppid") != 0) {
        fprintf(stderr, "loadgen: unknown mode %s\n", argv[1]);
        return 2;
    }
    double rate = atof(argv[2]);
    double duration = atof(argv[3]);
    const char *path = argc > 4 ? argv[4] : "loadgen.target";
    /* access(), not open(): an extra openat by this executable would be one more audited event than calls made. */
    if (mode_open && access(path, R_OK) != 0) {
        fprintf(stderr, "loadgen: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }

    /* LOADGEN_WAIT_STDIN: the harness first does something to this process (gives it a container ID), then writes one
       byte. read() is not audited by the bench rule, which names one syscall. */
    const char *wait = getenv("LOADGEN_WAIT_STDIN");
    if (wait && *wait) {
        char go;
        if (read(0, &go, 1) != 1) {
            fprintf(stderr, "loadgen: no start byte on stdin\n");
            return 1;
        }
    }

    uint64_t calls = 0;
    double start = now_s();
    double end = start + duration;
    double t = start;
    if (rate <= 0) {
        /* Checking the clock every call would cost as much as the syscall itself; every 256 calls is a few µs. */
        while (t < end) {
            for (int i = 0; i < 256; i++) one_call(mode_open, path);
            calls += 256;
            t = now_s();
        }
    } else {
        /* Pace against the cumulative schedule (rate * elapsed), not per batch, so oversleeping one tick is made up
           by the next batch and the achieved rate stays on target. Ticks of 1 ms keep batches small (10-80 calls). */
        uint64_t total = (uint64_t)(rate * duration + 0.5);
        struct timespec tick;
        clock_gettime(CLOCK_MONOTONIC, &tick);
        while (calls < total) {
            t = now_s();
            uint64_t due = (uint64_t)(rate * (t - start));
            if (due > total) due = total;
            while (calls < due) {
                one_call(mode_open, path);
                calls++;
            }
            if (calls >= total) break;
            tick.tv_nsec += 1000000;
            if (tick.tv_nsec >= 1000000000) { tick.tv_nsec -= 1000000000; tick.tv_sec++; }
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &tick, NULL);
        }
        t = now_s();
    }
    double elapsed = t - start;
    /* Its own CPU time lets the harness tell the host's other load apart from the generator and the daemon. */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 (double)ru.ru_stime.tv_usec / 1e6;
    printf("{\"calls\":%llu,\"elapsed\":%.6f,\"rate\":%.1f,\"cpu\":%.3f}\n", (unsigned long long)calls, elapsed,
           elapsed > 0 ? (double)calls / elapsed : 0.0, cpu);
    return 0;
}
