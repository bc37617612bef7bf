/* cancel: pthread_cancel of a thread blocked in the library ends the thread or is acted on
 * after the call, never kills the process; signals do not break a call. Used by
 * relay/tests/c_scenarios.rs (cancel_and_signals).
 *
 * A firmware daemon that stops a worker with pthread_cancel while the worker waits in
 * mipc_mq_receive or mipc_send_sync_msg must go on itself: the library once aborted the
 * process (glibc's forced unwind met the library's catch_unwind). mipc_mq_receive and
 * mipc_send_sync_msg without timeout are cancellation points, as in the original library;
 * the library's other calls are not: the call ends as it would have (its answer, its
 * timeout) and the cancel is acted on at the worker's next cancellation point.
 *
 * Checks, in one process:
 *   1. a thread blocked in mipc_mq_receive(-1) is cancelled there, and joined: on its entry's
 *      queue, and on a queue of the program's own (mipc_mq_create);
 *   2. a thread blocked in mipc_send_sync_msg(-1) is cancelled there, and joined; one in a
 *      sync call with a timeout (not a cancellation point) gets the answer sent after the
 *      cancel, byte for byte, and ends cancelled at its next cancellation point;
 *   3. a sync call interrupted by a signal (handler without SA_RESTART) while it waits
 *      still returns the server's answer, byte for byte;
 *   4. a 300 ms mipc_mq_receive hit by a signal every 10 ms still times out (and no sooner
 *      than 300 ms);
 *   5. afterwards the process still calls: mipc_ping("mipc_main");
 *   6. a thread that registered and ended without mipc_exit (as the cancelled ones did) does
 *      not leave its entry to the next thread that gets its pthread_t (glibc reuses them):
 *      that thread registers its own name, and its sync call goes out under that name.
 * Prints one "FAIL ..." line per failed check and "ok 6" when all passed; exits 1 otherwise.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
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
    int timeout;
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
    return NULL; /* only after a message, which never comes */
}

/* The same on a queue of the program's own (mipc_mq_create), received into the caller's
 * buffer; the queue is removed by the main thread after the join. */
static int own_queue = -1;

static void *blocked_own_queue_receiver(void *arg)
{
    struct worker *w = arg;
    static sysV_msg_t m;
    announce(&w->start);
    if (own_queue < 0)
        return NULL;
    w->rc = mipc_mq_receive(own_queue, &m, MIPC_DEFAULT_MAX_MSG_SIZE, 0, -1);
    return NULL;
}

/* A sync call to cx_mute, waiting w->timeout ms. Without timeout (-1) it is a cancellation
 * point; with one (10 s) it is not: it ends with its answer, and the cancel is acted on at
 * the next cancellation point. */
static void *blocked_caller(void *arg)
{
    struct worker *w = arg;
    char out[16];
    int fd = mipc_init(w->name);
    announce(&w->start);
    if (fd < 0)
        return NULL;
    w->rc = mipc_send_sync_msg(w->dst, API_ECHO, "x", 1, out, sizeof out, w->timeout);
    if (w->rc == MIPC_OK)
        memcpy(w->got, out, sizeof w->got);
    pthread_testcancel();
    return NULL;
}

/* Cancels a thread blocked in `fn` and checks it ended cancelled. With `release`, the call
 * is not a cancellation point: `release` ends it (sending the bytes "release", which the
 * call must have got). */
static void cancel_blocked(const char *what, void *(*fn)(void *), const char *name, int timeout,
                           void (*release)(const char *name))
{
    struct worker w;
    pthread_t t;
    void *res = NULL;
    start_init(&w.start);
    w.name = name;
    w.dst = "cx_mute";
    w.rc = 12345;
    w.timeout = timeout;
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
    if (release != NULL)
        release(name);
    if (pthread_join(t, &res) != 0) {
        fail(what);
        return;
    }
    if (res != PTHREAD_CANCELED) {
        printf("FAIL %s: the thread was not cancelled (rc %d)\n", what, w.rc);
        failures++;
    }
    if (release != NULL && memcmp(w.got, "release", 8) != 0) {
        printf("FAIL %s: the call did not end with the bytes sent (rc %d)\n", what, w.rc);
        failures++;
    }
}

/* Answers the requests on cx_mute until `name`'s (those of callers cancelled before it are
 * answered too: the relay hands a server one sync request at a time). */
static void answer_from_mute(const char *name)
{
    static sysV_msg_t m;
    int mine;
    do {
        if (mipc_mq_receive(mute_fd, &m, MIPC_DEFAULT_MAX_MSG_SIZE, API_ECHO, 10000) <= 0) {
            fail("answering on cx_mute: no request from the caller");
            return;
        }
        mine = strcmp(m.msg_payload.src_name, name) == 0;
        if (mipc_response_msg(m.msg_payload.src_name, "cx_mute", API_ECHO, "release", 8) !=
            MIPC_OK)
            fail("answering on cx_mute");
    } while (!mine);
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

static pthread_t last_self;

static void *register_and_end(void *arg)
{
    (void)arg;
    last_self = pthread_self();
    if (mipc_init("cx_gone") < 0)
        fail("mipc_init(cx_gone)");
    return NULL; /* no mipc_exit */
}

static void *register_and_call(void *arg)
{
    int *rc = arg;
    char out[16];
    if (pthread_equal(last_self, pthread_self()))
        printf("info: the new thread has the ended thread's pthread_t\n");
    *rc = mipc_init("cx_next") < 0
              ? MIPC_ERROR
              : mipc_send_sync_msg("cx_mute", API_ECHO, "x", 1, out, sizeof out, 10000);
    return NULL;
}

static void thread_id_reused(void)
{
    pthread_t t;
    int rc = MIPC_ERROR;
    pthread_create(&t, NULL, register_and_end, NULL);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, register_and_call, &rc);
    answer_from_mute("cx_next"); /* fails unless the request comes from cx_next */
    pthread_join(t, NULL);
    if (rc != MIPC_OK)
        fail("sync call from the thread after one that ended registered");
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
    cancel_blocked("cancel in mipc_mq_receive", blocked_receiver, "cx_rx", -1, NULL);
    own_queue = mipc_mq_create();
    if (own_queue < 0)
        fail("mipc_mq_create");
    cancel_blocked("cancel in mipc_mq_receive on an own queue", blocked_own_queue_receiver, "-",
                   -1, NULL);
    if (own_queue >= 0 && msgctl(own_queue, IPC_RMID, NULL) != 0)
        fail("removing the own queue");
    cancel_blocked("cancel in mipc_send_sync_msg", blocked_caller, "cx_call", -1, NULL);
    cancel_blocked("cancel in a timed mipc_send_sync_msg", blocked_caller, "cx_tcall", 10000,
                   answer_from_mute);
    signal_during_call();
    timeout_under_signals(fd);
    if (mipc_ping("mipc_main", 5000) != MIPC_OK)
        fail("mipc_ping after the cancellations");
    thread_id_reused();
    mipc_exit();
    if (failures)
        return 1;
    printf("ok 6\n");
    return 0;
}
