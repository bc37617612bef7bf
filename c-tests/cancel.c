/* cancel: pthread_cancel of a thread blocked in the library does not kill the process, and
 * signals do not break a call. Used by relay/tests/c_scenarios.rs (cancel_and_signals).
 *
 * A firmware daemon that stops a worker with pthread_cancel while the worker waits in
 * mipc_mq_receive or mipc_send_sync_msg must go on itself: the library once aborted the
 * process (glibc's forced unwind met the library's catch_unwind). The library's calls are not
 * cancellation points: the call ends as it would have (a message, an answer, its timeout)
 * and the cancel is acted on at the worker's next cancellation point.
 *
 * Checks, in one process:
 *   1. a thread blocked in mipc_mq_receive(-1) is cancelled; it gets the message sent to it
 *      afterwards, byte for byte, and ends cancelled at its next cancellation point;
 *   2. the same for a thread blocked in mipc_send_sync_msg(-1), whose answer comes after
 *      the cancel;
 *   3. a sync call interrupted by a signal (handler without SA_RESTART) while it waits
 *      still returns the server's answer, byte for byte;
 *   4. a 300 ms mipc_mq_receive hit by a signal every 10 ms still times out (and no sooner
 *      than 300 ms);
 *   5. afterwards the process still calls: mipc_ping("mipc_main").
 * Prints one "FAIL ..." line per failed check and "ok 5" when all passed; exits 1 otherwise.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mipc.h"

#define API_ECHO 21u

static int failures;
static int mute_fd;
static volatile sig_atomic_t signals_seen;

static void fail(const char *what)
{
    printf("FAIL %s: %s\n", what, mipc_last_error());
    fflush(stdout);
    failures++;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_usr1(int sig)
{
    (void)sig;
    signals_seen++;
}

/* The kernel id of a thread, for /proc. */
struct started {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int ready;
    pid_t tid;
};

static void start_init(struct started *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
}

static void announce(struct started *s)
{
    pthread_mutex_lock(&s->lock);
    s->tid = (pid_t)syscall(SYS_gettid);
    s->ready = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static pid_t await_start(struct started *s)
{
    pthread_mutex_lock(&s->lock);
    while (!s->ready)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    return s->tid;
}

/* Waits until thread `tid` sleeps in the kernel (state S in /proc), i.e. is blocked in the
 * call it was started for (it has no other way to sleep). */
static void await_blocked(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    for (;;) {
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = '\0';
            const char *p = strrchr(buf, ')');
            if (p != NULL && p[1] == ' ' && p[2] == 'S')
                return;
        }
        sched_yield();
    }
}

struct worker {
    struct started start;
    const char *name;
    const char *dst;
    int rc;
    char got[8];
};

static void *blocked_receiver(void *arg)
{
    struct worker *w = arg;
    int fd = mipc_init(w->name);
    static sysV_msg_t m;
    announce(&w->start);
    if (fd < 0)
        return NULL;
    w->rc = mipc_mq_receive(fd, &m, MIPC_DEFAULT_MAX_MSG_SIZE, 0, -1);
    if (w->rc > 0)
        memcpy(w->got, m.msg_payload.payload, sizeof w->got);
    pthread_testcancel(); /* the program's next cancellation point */
    return NULL;
}

static void *blocked_caller(void *arg)
{
    struct worker *w = arg;
    char out[16];
    int fd = mipc_init(w->name);
    announce(&w->start);
    if (fd < 0)
        return NULL;
    w->rc = mipc_send_sync_msg(w->dst, API_ECHO, "x", 1, out, sizeof out, -1);
    if (w->rc == MIPC_OK)
        memcpy(w->got, out, sizeof w->got);
    pthread_testcancel();
    return NULL;
}

/* Cancels a thread blocked in `fn`, then lets its call end with `release` (which must get
 * the bytes "release" to it) and checks it ended cancelled, with those bytes. */
static void cancel_blocked(const char *what, void *(*fn)(void *), const char *name,
                           void (*release)(const char *name))
{
    struct worker w;
    pthread_t t;
    void *res = NULL;
    start_init(&w.start);
    w.name = name;
    w.dst = "cx_mute";
    w.rc = 12345;
    memset(w.got, 0, sizeof w.got);
    if (pthread_create(&t, NULL, fn, &w) != 0) {
        fail("pthread_create");
        return;
    }
    await_blocked(await_start(&w.start));
    if (pthread_cancel(t) != 0) {
        fail(what);
        return;
    }
    release(name);
    if (pthread_join(t, &res) != 0) {
        fail(what);
        return;
    }
    if (res != PTHREAD_CANCELED) {
        printf("FAIL %s: the thread was not cancelled (rc %d)\n", what, w.rc);
        failures++;
    }
    if (memcmp(w.got, "release", 8) != 0) {
        printf("FAIL %s: the call did not end with the bytes sent (rc %d)\n", what, w.rc);
        failures++;
    }
}

static void send_to(const char *name)
{
    if (mipc_send_msg("cx_mute", name, API_ECHO, "release", 8, 0) != MIPC_OK)
        fail("mipc_send_msg to the cancelled receiver");
}

static void answer_from_mute(const char *name)
{
    static sysV_msg_t m;
    (void)name;
    if (mipc_mq_receive(mute_fd, &m, MIPC_DEFAULT_MAX_MSG_SIZE, API_ECHO, 10000) <= 0 ||
        mipc_response_msg(m.msg_payload.src_name, "cx_mute", API_ECHO, "release", 8) != MIPC_OK)
        fail("answering the cancelled caller");
}

/* The echo server of check 3: answers one request, once the caller was signalled. */
struct echo {
    struct started start;
    int fd;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int go;
};

static void *echo_once(void *arg)
{
    struct echo *e = arg;
    static sysV_msg_t m;
    int n = mipc_mq_receive(e->fd, &m, MIPC_DEFAULT_MAX_MSG_SIZE, 0, 10000);
    pthread_mutex_lock(&e->lock);
    while (!e->go)
        pthread_cond_wait(&e->cond, &e->lock);
    pthread_mutex_unlock(&e->lock);
    if (n > 0)
        mipc_response_msg(m.msg_payload.src_name, m.msg_payload.dst_name, API_ECHO,
                          m.msg_payload.payload, (int)m.msg_payload.msg_hdr.msg_size);
    return NULL;
}

struct caller {
    struct started start;
    int rc;
    char out[64];
};

static void *signalled_caller(void *arg)
{
    struct caller *c = arg;
    static const char in[] = "answer me through a signal";
    mipc_init("cx_caller");
    announce(&c->start);
    c->rc = mipc_send_sync_msg("cx_echo", API_ECHO, in, sizeof in, c->out, sizeof c->out, 10000);
    return NULL;
}

static void signal_during_call(void)
{
    static const char in[] = "answer me through a signal";
    struct echo e;
    struct caller c;
    pthread_t st, ct;
    start_init(&e.start);
    e.fd = mipc_init("cx_echo");
    pthread_mutex_init(&e.lock, NULL);
    pthread_cond_init(&e.cond, NULL);
    e.go = 0;
    memset(&c, 0, sizeof c);
    start_init(&c.start);
    if (e.fd < 0) {
        fail("mipc_init(cx_echo)");
        return;
    }
    pthread_create(&st, NULL, echo_once, &e);
    pthread_create(&ct, NULL, signalled_caller, &c);
    pid_t tid = await_start(&c.start);
    await_blocked(tid); /* the echo server holds the request: the caller waits for it */
    int before = signals_seen;
    pthread_kill(ct, SIGUSR1);
    while (signals_seen == before)
        sched_yield();
    pthread_mutex_lock(&e.lock);
    e.go = 1;
    pthread_cond_broadcast(&e.cond);
    pthread_mutex_unlock(&e.lock);
    pthread_join(ct, NULL);
    pthread_join(st, NULL);
    if (c.rc != MIPC_OK)
        fail("sync call interrupted by a signal");
    else if (memcmp(c.out, in, sizeof in) != 0)
        printf("FAIL sync call interrupted by a signal: wrong answer bytes\n"), failures++;
}

static volatile int receiving;

static void *signal_sender(void *arg)
{
    pthread_t target = *(pthread_t *)arg;
    struct timespec pause = {0, 10 * 1000 * 1000};
    while (receiving) {
        pthread_kill(target, SIGUSR1);
        nanosleep(&pause, NULL); /* pacing of the signals, not synchronisation */
    }
    return NULL;
}

static void timeout_under_signals(int fd)
{
    static sysV_msg_t m;
    pthread_t self = pthread_self(), sender;
    int before = signals_seen;
    receiving = 1;
    pthread_create(&sender, NULL, signal_sender, &self);
    long long t0 = now_ms();
    /* type 99: nothing of that type comes */
    int rc = mipc_mq_receive(fd, &m, MIPC_DEFAULT_MAX_MSG_SIZE, 99, 300);
    long long took = now_ms() - t0;
    receiving = 0;
    pthread_join(sender, NULL);
    if (rc != MIPC_ERROR || took < 300) {
        printf("FAIL timed receive under signals: rc %d after %lld ms\n", rc, took);
        failures++;
    } else if (signals_seen - before < 2) {
        printf("FAIL timed receive under signals: only %d signals came\n", signals_seen - before);
        failures++;
    }
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART: the blocking call sees EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    int fd = mipc_init("cx_mute"); /* this thread's entry: answers check 2's call */
    mute_fd = fd;
    if (fd < 0) {
        fail("mipc_init(cx_mute)");
        return 1;
    }
    cancel_blocked("cancel in mipc_mq_receive", blocked_receiver, "cx_rx", send_to);
    cancel_blocked("cancel in mipc_send_sync_msg", blocked_caller, "cx_call", answer_from_mute);
    signal_during_call();
    timeout_under_signals(fd);
    if (mipc_ping("mipc_main", 5000) != MIPC_OK)
        fail("mipc_ping after the cancellations");
    mipc_exit();
    if (failures)
        return 1;
    printf("ok 5\n");
    return 0;
}
