/* creader.c: the benchmark's floor: a batched C audit reader (recvmmsg of 256, 2 ms pause after a short batch, RAW
   lines to a file), to measure auditmux's CPU per event against what a minimal native daemon costs on this machine.
   With a FREQ argument it also keeps auditd's incremental_async promise: an fsync, on a thread of its own, once FREQ
   records have been written since the last one (requests while one runs coalesce into one more). With a SECOND_LOG
   it writes every batch to a second file as well, synced by the same thread: the floor for what a second log with
   the same lines (an auxiliary daemon taking every event) must cost. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 256
/* libaudit.h's MAX_AUDIT_MESSAGE_LENGTH: the largest record the kernel sends (linux/audit.h does not export it). */
#define MAX_AUDIT_MESSAGE_LENGTH 8970
#define SLOT_BYTES (MAX_AUDIT_MESSAGE_LENGTH + NLMSG_HDRLEN)
#define OUT_BYTES (1 << 20)

static volatile sig_atomic_t stopping;

/* The fsync thread (FREQ > 0): waits for a request, syncs, and loops while more came in meanwhile. */
static pthread_mutex_t sync_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sync_cond = PTHREAD_COND_INITIALIZER;
static int sync_wanted, sync_quit, sync_fd = -1, sync_fd2 = -1;
static unsigned long long syncs;

static void *sync_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&sync_lock);
    for (;;) {
        while (!sync_wanted && !sync_quit) pthread_cond_wait(&sync_cond, &sync_lock);
        if (!sync_wanted && sync_quit) break;
        sync_wanted = 0;
        pthread_mutex_unlock(&sync_lock);
        fsync(sync_fd);
        syncs++;
        if (sync_fd2 >= 0) {
            fsync(sync_fd2);
            syncs++;
        }
        pthread_mutex_lock(&sync_lock);
    }
    pthread_mutex_unlock(&sync_lock);
    return NULL;
}

static void request_sync(void) {
    pthread_mutex_lock(&sync_lock);
    sync_wanted = 1;
    pthread_cond_signal(&sync_cond);
    pthread_mutex_unlock(&sync_lock);
}
static void on_term(int sig) {
    (void)sig;
    stopping = 1;
}

/* The record types a getppid or openat event carries get auditd's names (so the benchmark's counter reads the log);
   any other type is written as auditd writes a type it has no name for. */
static const char *type_name(unsigned t, char *buf, size_t len) {
    switch (t) {
    case AUDIT_SYSCALL: return "SYSCALL";
    case AUDIT_PATH: return "PATH";
    case AUDIT_CWD: return "CWD";
    case AUDIT_EOE: return "EOE";
    case AUDIT_SOCKADDR: return "SOCKADDR";
    case 1327: return "PROCTITLE";
    case AUDIT_CONFIG_CHANGE: return "CONFIG_CHANGE";
    default: snprintf(buf, len, "UNKNOWN[%u]", t); return buf;
    }
}

static int send_set(int fd, uint32_t mask, uint32_t enabled, uint32_t pid) {
    struct {
        struct nlmsghdr h;
        struct audit_status s;
    } req;
    memset(&req, 0, sizeof req);
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof req.s);
    req.h.nlmsg_type = AUDIT_SET;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.h.nlmsg_seq = 1;
    req.s.mask = mask;
    req.s.enabled = enabled;
    req.s.pid = pid;
    struct sockaddr_nl k = {.nl_family = AF_NETLINK};
    return sendto(fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&k, sizeof k) < 0 ? -1 : 0;
}

/* Writes everything or gives up: a benchmark log on a full disk is a failed run, not a reason to spin. */
static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The batch to the log, then the same bytes to the second log if there is one. */
static int write_logs(int out, int out2, const char *buf, size_t n) {
    int a = write_all(out, buf, n);
    int b = out2 >= 0 ? write_all(out2, buf, n) : 0;
    return a < 0 || b < 0 ? -1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: %s LOG_FILE RCVBUF_BYTES [FREQ [SECOND_LOG]]\n", argv[0]);
        return 2;
    }
    unsigned long long freq = argc >= 4 ? strtoull(argv[3], NULL, 10) : 0, unsynced = 0;
    int out = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    int out2 = argc == 5 ? open(argv[4], O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
    if (out < 0 || (argc == 5 && out2 < 0)) {
        perror("creader: open log");
        return 1;
    }
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
    if (fd < 0) {
        perror("creader: socket");
        return 1;
    }
    int rcv = atoi(argv[2]);
    /* The same kernel buffer auditmux asks for, so both ride out the same bursts. */
    if (rcv > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) < 0) perror("creader: SO_RCVBUFFORCE");
    struct sockaddr_nl me = {.nl_family = AF_NETLINK};
    if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0) {
        perror("creader: bind");
        return 1;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    if (send_set(fd, AUDIT_STATUS_PID | AUDIT_STATUS_ENABLED, 1, (uint32_t)getpid()) < 0) {
        perror("creader: AUDIT_SET");
        return 1;
    }

    pthread_t syncer;
    sync_fd = out;
    sync_fd2 = out2;
    if (freq > 0 && pthread_create(&syncer, NULL, sync_main, NULL) != 0) {
        fprintf(stderr, "creader: pthread_create failed\n");
        return 1;
    }

    char *slots = malloc((size_t)SLOTS * SLOT_BYTES);
    char *obuf = malloc(OUT_BYTES);
    if (!slots || !obuf) return 1;
    struct mmsghdr msgs[SLOTS];
    struct iovec iov[SLOTS];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < SLOTS; i++) {
        iov[i].iov_base = slots + (size_t)i * SLOT_BYTES;
        iov[i].iov_len = SLOT_BYTES;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long records = 0, lost_writes = 0;
    size_t olen = 0;
    char tbuf[32];
    struct timespec pause = {0, 2 * 1000 * 1000};

    while (!stopping) {
        int n = recvmmsg(fd, msgs, SLOTS, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) n = 0;
            else if (errno == ENOBUFS) continue; /* the kernel dropped; it counts them as lost */
            else {
                perror("creader: recvmmsg");
                break;
            }
        }
        for (int i = 0; i < n; i++) {
            struct nlmsghdr *h = (struct nlmsghdr *)iov[i].iov_base;
            size_t got = msgs[i].msg_len;
            if (got < NLMSG_HDRLEN || h->nlmsg_len > got) continue;
            unsigned t = h->nlmsg_type;
            if (t < AUDIT_FIRST_USER_MSG || t == NLMSG_ERROR || t == NLMSG_DONE) continue;
            const char *p = (const char *)NLMSG_DATA(h);
            /* The kernel's audit records carry the payload length in nlmsg_len, without the header (an old quirk
               kept for userspace), so the datagram's own length bounds the text; trailing NULs are trimmed below. */
            size_t len = got - NLMSG_HDRLEN;
            if (h->nlmsg_len < len) len = h->nlmsg_len;
            while (len > 0 && (p[len - 1] == '\0' || p[len - 1] == '\n')) len--;
            const char *name = type_name(t, tbuf, sizeof tbuf);
            size_t need = 5 + strlen(name) + 5 + len + 1;
            if (olen + need > OUT_BYTES) {
                if (write_logs(out, out2, obuf, olen) < 0) lost_writes++;
                olen = 0;
                if (freq > 0 && unsynced >= freq) {
                    unsynced = 0;
                    request_sync();
                }
            }
            if (need > OUT_BYTES) continue;
            olen += (size_t)sprintf(obuf + olen, "type=%s msg=", name);
            memcpy(obuf + olen, p, len);
            olen += len;
            obuf[olen++] = '\n';
            records++;
            unsynced++;
        }
        /* A short batch means the kernel queue is drained: write what we have, then let records gather for 2 ms
           instead of waking for each one (the same interrupt moderation auditmux's addon uses). */
        if (n < SLOTS) {
            if (olen) {
                if (write_logs(out, out2, obuf, olen) < 0) lost_writes++;
                olen = 0;
            }
            /* Written first, then synced: the fsync covers every record counted. */
            if (freq > 0 && unsynced >= freq) {
                unsynced = 0;
                request_sync();
            }
            nanosleep(&pause, NULL);
        }
    }
    if (olen && write_logs(out, out2, obuf, olen) < 0) lost_writes++;
    if (freq > 0) {
        pthread_mutex_lock(&sync_lock);
        sync_quit = 1;
        sync_wanted = 1;
        pthread_cond_signal(&sync_cond);
        pthread_mutex_unlock(&sync_lock);
        pthread_join(syncer, NULL);
    }
    send_set(fd, AUDIT_STATUS_PID, 0, 0);
    fprintf(stderr, "creader: %llu records, %llu failed writes, %llu fsyncs\n", records, lost_writes, syncs);
    close(out);
    if (out2 >= 0) close(out2);
    close(fd);
    return lost_writes ? 1 : 0;
}
