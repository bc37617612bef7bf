/* common.h: small helpers shared by the benchmark programs of bench/ (header-only).
 *
 * Conventions every bench program follows, so that the driver (bench/run_bench.py) can run
 * them the same way:
 *   - every SysV queue a program creates is logged (one decimal id a line) to the file named
 *     by $BENCH_QLOG, right after it is created, so the driver can remove what is left if a
 *     program is killed;
 *   - long-lived programs print "ready" on stdout once serving, and exit normally (so that
 *     libmipc's atexit cleanup runs and their queues are removed) when their stdin closes;
 *   - results are printed as one line "RESULT key=value ..." on stdout.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <time.h>
#include <unistd.h>

#include "mipc.h"

#define BENCH_HDR_LEN offsetof(sysV_msg_payload_t, payload)
#define BENCH_API_ECHO 1u
#define BENCH_API_FLOOD 2u

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The common start of several processes: START "-" prints "ready" and waits for a line (or
 * EOF) on stdin, written by the driver to all of them at once; a number is a CLOCK_MONOTONIC
 * time in ns to sleep until; "0" starts at once. */
static inline void bench_start_gate(const char *start)
{
    char c;

    if (strcmp(start, "-") == 0) {
        printf("ready\n");
        fflush(stdout);
        while (read(0, &c, 1) < 0 && errno == EINTR) {
        }
        return;
    }
    if (strtoull(start, NULL, 10) != 0) {
        uint64_t t = strtoull(start, NULL, 10);
        struct timespec ts;
        ts.tv_sec = (time_t)(t / 1000000000ull);
        ts.tv_nsec = (long)(t % 1000000000ull);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
    }
}

__attribute__((noreturn)) static inline void bench_die(const char *prog, const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
    exit(1);
}

/* Appends a queue id to $BENCH_QLOG (if set). */
static inline void bench_qlog(int qid)
{
    const char *path = getenv("BENCH_QLOG");
    char line[32];
    int fd, n;

    if (path == NULL || *path == '\0' || qid < 0)
        return;
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd < 0)
        return;
    n = snprintf(line, sizeof(line), "%d\n", qid);
    if (write(fd, line, (size_t)n) != n) {
        /* best effort: the driver also removes root queues by key */
    }
    close(fd);
}

/* A new private queue, logged. */
static inline int bench_private_queue(const char *prog)
{
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    if (q < 0)
        bench_die(prog, "msgget(IPC_PRIVATE)");
    bench_qlog(q);
    return q;
}

/* The key in $MIPC_ROOT_KEY (decimal or 0x hex); the benchmarks never use the default. */
static inline key_t bench_root_key(const char *prog)
{
    const char *text = getenv("MIPC_ROOT_KEY");
    char *end;
    unsigned long v;

    if (text == NULL || *text == '\0') {
        fprintf(stderr, "%s: MIPC_ROOT_KEY must be set\n", prog);
        exit(2);
    }
    v = strtoul(text, &end, 0);
    if (*end != '\0' || v == 0) {
        fprintf(stderr, "%s: bad MIPC_ROOT_KEY %s\n", prog, text);
        exit(2);
    }
    return (key_t)v;
}

static inline void bench_put_name(char field[MIPC_NAME_MAX_LEN], const char *name)
{
    size_t n = strlen(name);
    if (n >= MIPC_NAME_MAX_LEN)
        n = MIPC_NAME_MAX_LEN - 1;
    memset(field, 0, MIPC_NAME_MAX_LEN);
    memcpy(field, name, n);
}

/* Fills the names and header of a legacy (SPEC §2) message; returns the msgsnd size. */
static inline size_t bench_build(sysV_msg_t *m, long mtype, const char *src, const char *dst,
                                 unsigned int msg_type, int sync_flag, unsigned int size)
{
    m->type = mtype;
    bench_put_name(m->msg_payload.src_name, src);
    bench_put_name(m->msg_payload.dst_name, dst);
    m->msg_payload.msg_hdr.msg_type = msg_type;
    m->msg_payload.msg_hdr.msg_size = size;
    m->msg_payload.msg_hdr.sync_flag = sync_flag;
    return BENCH_HDR_LEN + size;
}

/* Sends a NOTICE (register when hold, else unregister) for (name, q) to root queue `root`. */
static inline int bench_notice(int root, const char *name, int q, int hold)
{
    sysV_msg_t m;
    MIPC_THREAD_INFO_T info;
    size_t len;

    memset(&info, 0, sizeof(info));
    info.flag_is_hold = hold ? MIPC_TRUE : MIPC_FALSE;
    info.thread_id = pthread_self();
    bench_put_name(info.name, name);
    info.mqd = q;
    len = bench_build(&m, MIPC_MSG_TYPE_NOTICE, name, MIPC_MAIN_NAME, MIPC_MSG_TYPE_NOTICE, 0,
                      sizeof(info));
    memcpy(m.msg_payload.payload, &info, sizeof(info));
    while (msgsnd(root, &m, len, 0) != 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

static void (*bench_eof_action)(void);

static inline void *bench_stdin_watch(void *arg)
{
    char buf[64];

    (void)arg;
    while (read(0, buf, sizeof(buf)) > 0) {
    }
    bench_eof_action();
    return NULL;
}

/* Calls on_eof() from a helper thread once stdin is closed (the driver's "stop"). */
static inline void bench_on_stdin_eof(void (*on_eof)(void))
{
    pthread_t t;

    bench_eof_action = on_eof;
    if (pthread_create(&t, NULL, bench_stdin_watch, NULL) != 0) {
        fprintf(stderr, "bench: pthread_create failed\n");
        exit(1);
    }
    pthread_detach(t);
}

static inline void bench_exit_now(void)
{
    exit(0);
}

/* Writes n latency samples (ns, saturated to uint32) to `path`. */
static inline void bench_write_samples(const char *prog, const char *path, const uint64_t *s,
                                       size_t n)
{
    FILE *f = fopen(path, "wb");
    size_t i;

    if (f == NULL)
        bench_die(prog, path);
    for (i = 0; i < n; i++) {
        uint32_t v = s[i] > 0xFFFFFFFFull ? 0xFFFFFFFFu : (uint32_t)s[i];
        if (fwrite(&v, sizeof(v), 1, f) != 1)
            bench_die(prog, path);
    }
    if (fclose(f) != 0)
        bench_die(prog, path);
}

static inline void bench_fill(unsigned char *p, size_t n, unsigned int seed)
{
    size_t i;
    for (i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 31u);
}

#endif
