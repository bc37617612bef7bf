/* stall: every API call against a relay that does not drain its root queue (SIGSTOP) returns
 * within its bound, and what was reported sent is delivered once the relay runs again.
 * Used by relay/tests/overload.rs.
 *
 *   stall NAME     registers NAME, prints "ready", then runs one command per stdin line and
 *                  prints one result line per command:
 *
 *   fill DST N SIZE     up to N async messages (api STALL_API, SIZE bytes: sequence number,
 *                       then a pattern) to DST, stopping at the first failure:
 *                       "fill SENT BYTES MS REASON" (REASON "-" when all were sent)
 *   async DST SIZE      one more such message: "async RC MS REASON"
 *   sync DST TIMEOUT    mipc_send_sync_msg (api STALL_SYNC_API): "sync RC MS REASON"
 *   ping DST TIMEOUT    mipc_ping: "ping RC MS REASON"
 *   respond DST         mipc_response_msg (api STALL_SYNC_API, 16 bytes): "respond RC MS REASON"
 *   init NAME2          mipc_init(NAME2) in a new thread: "init RC MS REASON"
 *   recv N              receives N async messages and checks each (sequence numbers continue
 *                       over calls): "recv N BYTES", or "FAIL ..." on a mismatch or timeout
 *   serve N             answers N sync requests: "serve N"
 *
 * RC is the call's return value (0 MIPC_OK, -1 MIPC_ERROR), MS the milliseconds it took,
 * REASON mipc_last_error() with spaces as underscores.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mipc.h"

#define STALL_API 7u
#define STALL_SYNC_API 8u
#define RECEIVE_TIMEOUT_MS 20000

static const char *self_name;
static uint32_t next_send_seq;
static uint32_t next_recv_seq;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned char pattern(uint32_t seq, unsigned int offset)
{
    return (unsigned char)(seq * 29u + offset * 13u + (offset >> 8));
}

/* The reason of the last failure, one word. */
static const char *reason(int rc)
{
    static char text[512];
    size_t i;

    if (rc != MIPC_ERROR)
        return "-";
    snprintf(text, sizeof text, "%s", mipc_last_error());
    for (i = 0; text[i]; i++)
        if (text[i] == ' ')
            text[i] = '_';
    return text;
}

static int send_one(const char *dst, unsigned int size)
{
    static unsigned char payload[MIPC_MSG_MAX_LEN];
    unsigned int i;
    int rc;

    if (size < 4)
        size = 4;
    if (size > MIPC_MSG_MAX_LEN)
        size = MIPC_MSG_MAX_LEN;
    memcpy(payload, &next_send_seq, 4);
    for (i = 4; i < size; i++)
        payload[i] = pattern(next_send_seq, i);
    rc = mipc_send_msg(self_name, dst, STALL_API, payload, size, 0);
    if (rc == MIPC_OK)
        next_send_seq++;
    return rc;
}

struct init_job {
    char name[64];
    int rc;
    char why[512];
};

static void *init_thread(void *arg)
{
    struct init_job *job = arg;

    job->rc = mipc_init(job->name);
    snprintf(job->why, sizeof job->why, "%s", reason(job->rc));
    return NULL;
}

static int receive(int mqd, unsigned int count)
{
    static sysV_msg_t m;
    unsigned long long bytes = 0;
    unsigned int n;

    for (n = 0; n < count; n++) {
        const sysV_msg_payload_t *p = &m.msg_payload;
        uint32_t seq, size, i;
        int got = mipc_mq_receive(mqd, &m, sizeof m, (long)STALL_API, RECEIVE_TIMEOUT_MS);

        if (got == MIPC_ERROR) {
            printf("FAIL recv %u of %u: %s\n", n, count, mipc_last_error());
            return 1;
        }
        size = p->msg_hdr.msg_size;
        memcpy(&seq, p->payload, 4);
        if (seq != next_recv_seq) {
            printf("FAIL recv: sequence %u where %u was due\n", seq, next_recv_seq);
            return 1;
        }
        for (i = 4; i < size; i++)
            if ((unsigned char)p->payload[i] != pattern(seq, i)) {
                printf("FAIL recv: message %u differs at byte %u\n", seq, i);
                return 1;
            }
        next_recv_seq++;
        bytes += size;
    }
    printf("recv %u %llu\n", count, bytes);
    return 0;
}

static int serve(int mqd, unsigned int count)
{
    static sysV_msg_t m;
    unsigned int n;
    char answer[16] = "stall answer";

    for (n = 0; n < count; n++) {
        int got = mipc_mq_receive(mqd, &m, sizeof m, (long)STALL_SYNC_API, RECEIVE_TIMEOUT_MS);

        if (got == MIPC_ERROR) {
            printf("FAIL serve %u of %u: %s\n", n, count, mipc_last_error());
            return 1;
        }
        if (mipc_response_msg(m.msg_payload.src_name, self_name, STALL_SYNC_API, answer,
                              sizeof answer) != MIPC_OK) {
            printf("FAIL serve answer: %s\n", mipc_last_error());
            return 1;
        }
    }
    printf("serve %u\n", count);
    return 0;
}

int main(int argc, char **argv)
{
    char line[256];
    int mqd;

    if (argc != 2) {
        fprintf(stderr, "usage: stall NAME (commands on stdin)\n");
        return 2;
    }
    self_name = argv[1];
    mqd = mipc_init(self_name);
    if (mqd == MIPC_ERROR) {
        printf("FAIL mipc_init: %s\n", mipc_last_error());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);

    while (fgets(line, sizeof line, stdin)) {
        char cmd[16], a[64];
        unsigned int n = 0, size = 0;
        int timeout = 0, rc;
        long long t0 = now_ms();

        if (sscanf(line, "%15s", cmd) != 1)
            continue;
        if (strcmp(cmd, "fill") == 0 && sscanf(line, "%*s %63s %u %u", a, &n, &size) == 3) {
            unsigned int sent = 0;
            unsigned long long bytes = 0;

            rc = MIPC_OK;
            while (sent < n && (rc = send_one(a, size)) == MIPC_OK) {
                sent++;
                bytes += size;
            }
            printf("fill %u %llu %lld %s\n", sent, bytes, now_ms() - t0, reason(rc));
        } else if (strcmp(cmd, "async") == 0 && sscanf(line, "%*s %63s %u", a, &size) == 2) {
            rc = send_one(a, size);
            printf("async %d %lld %s\n", rc, now_ms() - t0, reason(rc));
        } else if (strcmp(cmd, "sync") == 0 && sscanf(line, "%*s %63s %d", a, &timeout) == 2) {
            char out[64];

            rc = mipc_send_sync_msg(a, STALL_SYNC_API, "question", 8, out, sizeof out, timeout);
            printf("sync %d %lld %s\n", rc, now_ms() - t0, reason(rc));
        } else if (strcmp(cmd, "ping") == 0 && sscanf(line, "%*s %63s %d", a, &timeout) == 2) {
            rc = mipc_ping(a, timeout);
            printf("ping %d %lld %s\n", rc, now_ms() - t0, reason(rc));
        } else if (strcmp(cmd, "respond") == 0 && sscanf(line, "%*s %63s", a) == 1) {
            rc = mipc_response_msg(a, self_name, STALL_SYNC_API, "sixteen bytes..", 16);
            printf("respond %d %lld %s\n", rc, now_ms() - t0, reason(rc));
        } else if (strcmp(cmd, "init") == 0 && sscanf(line, "%*s %63s", a) == 1) {
            struct init_job job;
            pthread_t t;

            memset(&job, 0, sizeof job);
            snprintf(job.name, sizeof job.name, "%s", a);
            if (pthread_create(&t, NULL, init_thread, &job) != 0) {
                printf("FAIL pthread_create\n");
                return 1;
            }
            pthread_join(t, NULL);
            printf("init %d %lld %s\n", job.rc < 0 ? MIPC_ERROR : 0, now_ms() - t0, job.why);
        } else if (strcmp(cmd, "recv") == 0 && sscanf(line, "%*s %u", &n) == 1) {
            if (receive(mqd, n) != 0)
                return 1;
        } else if (strcmp(cmd, "serve") == 0 && sscanf(line, "%*s %u", &n) == 1) {
            if (serve(mqd, n) != 0)
                return 1;
        } else {
            printf("FAIL unknown command: %s", line);
            return 1;
        }
        fflush(stdout);
    }
    mipc_exit();
    return 0;
}
