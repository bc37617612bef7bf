/* probe_server: a server for the reliability tests (docs/RELIABILITY.md).
 *
 *   probe_server NAME [--stuck] [-v]
 *
 * Registers NAME and serves, one request at a time, in the legacy loop
 * (mipc_mq_receive + mthread_check_mq_msg). Apis:
 *   1 ECHO    answer = the request payload
 *   2 SLOW    payload = u32 delay_ms, rest; sleeps delay_ms, then answers the whole payload
 *   3 NESTED  payload = u32 api, u32 timeout_ms, peer name (NUL-terminated), rest; makes a
 *             sync call of its own to peer with `rest` and answers "ok:" + the peer's answer,
 *             or "err:" + mipc_last_error()
 *   4 NEVER   never answers
 *   5 CYCLE   payload = u32 timeout_ms, peer name; calls peer's CYCLE with its own name, so
 *             two probe servers call each other in a cycle; answers like NESTED
 *   6 WAIT    payload = ASCII "<ms>:<text>"; sleeps ms, then answers <text>
 *   7 WORKER  payload as WAIT, but handed to a worker thread, which sleeps and answers from
 *             that thread (a daemon with a worker pool); jobs are done one at a time, in order
 *   PING      answers int 0
 * Every request is announced on stdout as "got <api> from <src>" before it is served.
 * --stuck registers, prints "ready <queue id>", and never reads its queue again
 * (back-pressure tests).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mipc.h"

enum {
    API_ECHO = 1,
    API_SLOW = 2,
    API_NESTED = 3,
    API_NEVER = 4,
    API_CYCLE = 5,
    API_WAIT = 6,
    API_WORKER = 7
};

static char my_name[MIPC_NAME_MAX_LEN];

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void answer(const char *to, unsigned int api, const void *out, unsigned int size)
{
    if (mipc_response_msg(to, my_name, api, out, size) != MIPC_OK)
        fprintf(stderr, "probe_server: answer to %s failed: %s\n", to, mipc_last_error());
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Reads a WAIT/WORKER payload "<ms>:<text>": returns the delay, and where the text starts
 * (or -1 when the payload is malformed). */
static int parse_wait(const unsigned char *p, unsigned int len, uint32_t *ms)
{
    unsigned int i = 0;
    *ms = 0;
    while (i < len && p[i] >= '0' && p[i] <= '9' && i < 9)
        *ms = *ms * 10u + (uint32_t)(p[i++] - '0');
    if (i == 0 || i >= len || p[i] != ':')
        return -1;
    return (int)i + 1;
}

/* The worker pool of API_WORKER: one thread, a FIFO of jobs. */
struct job {
    char src[MIPC_NAME_MAX_LEN];
    uint32_t ms;
    unsigned int len;
    unsigned char text[MIPC_MSG_MAX_LEN];
};
#define JOBS 64
static struct job jobs[JOBS];
static unsigned int job_head, job_count;
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t job_ready = PTHREAD_COND_INITIALIZER;

static void *worker_main(void *arg)
{
    static struct job j;
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&job_lock);
        while (job_count == 0)
            pthread_cond_wait(&job_ready, &job_lock);
        j = jobs[job_head];
        job_head = (job_head + 1) % JOBS;
        job_count--;
        pthread_mutex_unlock(&job_lock);
        sleep_ms(j.ms);
        answer(j.src, API_WORKER, j.text, j.len);
    }
    return NULL;
}

static void add_job(const char *src, uint32_t ms, const unsigned char *text, unsigned int len)
{
    pthread_mutex_lock(&job_lock);
    if (job_count < JOBS) {
        struct job *j = &jobs[(job_head + job_count) % JOBS];
        snprintf(j->src, sizeof j->src, "%s", src);
        j->ms = ms;
        j->len = len;
        memcpy(j->text, text, len);
        job_count++;
        pthread_cond_signal(&job_ready);
    } else {
        fprintf(stderr, "probe_server: worker queue full, job of %s dropped\n", src);
    }
    pthread_mutex_unlock(&job_lock);
}

/* Answers `src` with "ok:" + the text `reply`, or "err:" + the reason of the last failure. */
static void answer_outcome(const char *src, unsigned int api, int rc, const unsigned char *reply)
{
    static unsigned char out[MIPC_MSG_MAX_LEN];
    const char *text = rc == MIPC_OK ? (const char *)reply : mipc_last_error();
    const char *prefix = rc == MIPC_OK ? "ok:" : "err:";
    size_t p = strlen(prefix), n = strnlen(text, sizeof out - 8);
    memcpy(out, prefix, p);
    memcpy(out + p, text, n);
    answer(src, api, out, (unsigned int)(p + n));
}

static int handler(char *msg, int size)
{
    sysV_msg_t *m = (sysV_msg_t *)msg;
    const char *src = m->msg_payload.src_name;
    unsigned int api = m->msg_payload.msg_hdr.msg_type;
    unsigned int len = m->msg_payload.msg_hdr.msg_size;
    unsigned char *p = m->msg_payload.payload;

    if ((unsigned int)size != offsetof(sysV_msg_payload_t, payload) + len) {
        fprintf(stderr, "probe_server: BUG: size %d for msg_size %u\n", size, len);
        return MIPC_ERROR;
    }
    printf("got %u from %s\n", api, src);
    fflush(stdout);
    switch (api) {
    case MIPC_MSG_TYPE_PING: {
        int zero = 0;
        answer(src, api, &zero, sizeof zero);
        break;
    }
    case API_ECHO:
        answer(src, api, p, len);
        break;
    case API_SLOW:
        if (len >= 4)
            sleep_ms(get_u32(p));
        answer(src, api, p, len);
        break;
    case API_WAIT:
    case API_WORKER: {
        uint32_t ms;
        int at = parse_wait(p, len, &ms);
        if (at < 0) {
            answer(src, api, "err:bad request", 15);
        } else if (api == API_WAIT) {
            sleep_ms(ms);
            answer(src, api, p + at, len - (unsigned int)at);
        } else {
            add_job(src, ms, p + at, len - (unsigned int)at);
        }
        break;
    }
    case API_NESTED: {
        char peer[MIPC_NAME_MAX_LEN];
        unsigned char reply[MIPC_MSG_MAX_LEN];
        size_t peer_len;
        uint32_t nested_api, timeout;
        int rc;
        if (len < 9 || memchr(p + 8, 0, len - 8) == NULL) {
            answer(src, api, "err:bad request", 15);
            break;
        }
        nested_api = get_u32(p);
        timeout = get_u32(p + 4);
        peer_len = strlen((char *)p + 8);
        if (peer_len >= sizeof peer) {
            answer(src, api, "err:bad peer", 12);
            break;
        }
        memcpy(peer, p + 8, peer_len + 1);
        memset(reply, 0, sizeof reply);
        rc = mipc_send_sync_msg(peer, nested_api, p + 9 + peer_len, len - 9 - (unsigned int)peer_len,
                                reply, sizeof reply - 1, (int)timeout);
        answer_outcome(src, api, rc, reply);
        break;
    }
    case API_NEVER:
        break;
    case API_CYCLE: {
        unsigned char call[4 + MIPC_NAME_MAX_LEN], reply[MIPC_MSG_MAX_LEN];
        char peer[MIPC_NAME_MAX_LEN];
        size_t peer_len;
        int rc;
        if (len < 5 || len - 4 >= sizeof peer) {
            answer(src, api, "err:bad request", 15);
            break;
        }
        peer_len = len - 4;
        memcpy(peer, p + 4, peer_len);
        peer[peer_len] = 0;
        memcpy(call, p, 4); /* the same timeout */
        memcpy(call + 4, my_name, strlen(my_name));
        memset(reply, 0, sizeof reply);
        rc = mipc_send_sync_msg(peer, API_CYCLE, call, (unsigned int)(4 + strlen(my_name)), reply,
                                sizeof reply - 1, (int)get_u32(p));
        answer_outcome(src, api, rc, reply);
        break;
    }
    default:
        fprintf(stderr, "probe_server: api %u not served\n", api);
    }
    return MIPC_OK;
}

int main(int argc, char **argv)
{
    static unsigned char buffer[MIPC_DEFAULT_MAX_MSG_SIZE];
    int fd, ti, mi, i, stuck = 0;

    if (argc < 2 || strlen(argv[1]) >= sizeof my_name) {
        fprintf(stderr, "usage: probe_server NAME [--stuck]\n");
        return 2;
    }
    strcpy(my_name, argv[1]);
    for (i = 2; i < argc; i++)
        if (strcmp(argv[i], "--stuck") == 0)
            stuck = 1;
    fd = mipc_init(my_name);
    if (fd < 0) {
        printf("init failed: %s\n", mipc_last_error());
        return 1;
    }
    if (mthread_register_mq(fd, handler, &ti, &mi) != MIPC_OK) {
        fprintf(stderr, "probe_server: mthread_register_mq: %s\n", mipc_last_error());
        return 1;
    }
    {
        pthread_t worker;
        if (pthread_create(&worker, NULL, worker_main, NULL) != 0) {
            fprintf(stderr, "probe_server: pthread_create failed\n");
            return 1;
        }
    }
    printf("ready %d\n", fd);
    fflush(stdout);
    if (stuck)
        for (;;)
            pause();
    for (;;) {
        int size = mipc_mq_receive(fd, buffer, sizeof buffer, 0, MIPC_MSG_SYNC_WAIT_FOREVER);
        if (size < 0) {
            fprintf(stderr, "probe_server: receive: %s\n", mipc_last_error());
            return 1;
        }
        mthread_check_mq_msg(ti, mi, (char *)buffer, size);
    }
}
