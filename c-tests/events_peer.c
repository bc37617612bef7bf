/* events_peer: subscribes, publishes, broadcasts and receives as a test scripts it
 * (relay/tests/events.rs), printing what happened, one line each.
 *
 *   events_peer NAME COMMAND...
 *
 * Registers NAME, then runs the commands in order:
 *   sub PATTERN          mipc_subscribe; prints "sub PATTERN ok" or "sub PATTERN err REASON"
 *   unsub PATTERN        mipc_unsubscribe; prints likewise
 *   pub EVENT TEXT       mipc_publish of TEXT ("-" for no data); prints "pub ok" / "pub err .."
 *   pubn EVENT N SIZE    N events of SIZE (>= 4) bytes, the first 4 the sequence number;
 *                        prints "pubn N ok=.. ns_per_event=.."
 *   bcast API TEXT       mipc_broadcast; prints "bcast ok" / "bcast err .."
 *   recv N TIMEOUT_MS    receives N messages with mipc_mq_receive(fd, .., 0, TIMEOUT_MS) and
 *                        prints each: "event NAME from SRC pid P: TEXT" (msg_type
 *                        MIPC_MSG_TYPE_EVENT) or "msg api A from SRC pid P sync S: TEXT";
 *                        "recv timeout" when one does not come in time
 *   count N TIMEOUT_MS   receives N events of pubn silently, checks that each publisher's
 *                        numbers come in order without gaps; prints "count N in order" or
 *                        "count got=.. disorder=.."
 *   ready                prints "ready"
 *   line                 waits for one line on stdin (the test's go-ahead)
 * Exits 0 after the last command, 1 when registering fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mipc.h"

static int fd;
static const char *me;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void result(const char *what, const char *arg, int rc)
{
    if (rc == MIPC_OK)
        printf("%s%s%s ok\n", what, arg ? " " : "", arg ? arg : "");
    else
        printf("%s%s%s err %s\n", what, arg ? " " : "", arg ? arg : "", mipc_last_error());
    fflush(stdout);
}

static const char *text_arg(const char *t, unsigned int *size)
{
    if (strcmp(t, "-") == 0) {
        *size = 0;
        return "";
    }
    *size = (unsigned int)strlen(t);
    return t;
}

static void recv_n(long n, int timeout)
{
    static sysV_msg_t buf;
    long i;

    for (i = 0; i < n; i++) {
        const sysV_msg_payload_t *m = &buf.msg_payload;
        int size = mipc_mq_receive(fd, &buf, MIPC_DEFAULT_MAX_MSG_SIZE, 0, timeout);

        if (size == MIPC_ERROR) {
            printf("recv %s\n", strstr(mipc_last_error(), "timeout") ? "timeout" : mipc_last_error());
            fflush(stdout);
            return;
        }
        if (m->msg_hdr.msg_type == MIPC_MSG_TYPE_EVENT)
            printf("event %s from %s pid %d: %.*s\n", m->dst_name, m->src_name,
                   mipc_sender_pid(&buf), (int)m->msg_hdr.msg_size, (const char *)m->payload);
        else
            printf("msg api %u from %s pid %d sync %d: %.*s\n", m->msg_hdr.msg_type, m->src_name,
                   mipc_sender_pid(&buf), m->msg_hdr.sync_flag, (int)m->msg_hdr.msg_size,
                   (const char *)m->payload);
        fflush(stdout);
    }
}

#define PUBLISHERS_MAX 64

static void count_n(long n, int timeout)
{
    static sysV_msg_t buf;
    static char names[PUBLISHERS_MAX][MIPC_NAME_MAX_LEN];
    static unsigned int next[PUBLISHERS_MAX];
    int publishers = 0;
    long got = 0, disorder = 0;

    while (got < n) {
        const sysV_msg_payload_t *m = &buf.msg_payload;
        unsigned int seq;
        int p, size = mipc_mq_receive(fd, &buf, MIPC_DEFAULT_MAX_MSG_SIZE, 0, timeout);

        if (size == MIPC_ERROR)
            break;
        if (m->msg_hdr.msg_type != MIPC_MSG_TYPE_EVENT || m->msg_hdr.msg_size < 4) {
            disorder++;
            continue;
        }
        memcpy(&seq, m->payload, 4);
        for (p = 0; p < publishers && strcmp(names[p], m->src_name) != 0; p++)
            ;
        if (p == publishers && publishers < PUBLISHERS_MAX) {
            memcpy(names[p], m->src_name, MIPC_NAME_MAX_LEN);
            next[p] = 0;
            publishers++;
        }
        if (p < PUBLISHERS_MAX) {
            if (seq != next[p])
                disorder++;
            next[p] = seq + 1;
        }
        got++;
    }
    if (got == n && disorder == 0)
        printf("count %ld in order\n", n);
    else
        printf("count got=%ld disorder=%ld\n", got, disorder);
    fflush(stdout);
}

static void pub_n(const char *event, long n, unsigned int size)
{
    static unsigned char data[MIPC_EVENT_DATA_MAX];
    long i, ok = 0;
    double t0;

    if (size < 4)
        size = 4;
    if (size > sizeof data)
        size = sizeof data;
    memset(data, 0x5a, sizeof data);
    t0 = now_ns();
    for (i = 0; i < n; i++) {
        unsigned int seq = (unsigned int)i;

        memcpy(data, &seq, 4);
        if (mipc_publish(event, data, size) == MIPC_OK)
            ok++;
    }
    printf("pubn %ld ok=%ld ns_per_event=%.0f\n", n, ok, (now_ns() - t0) / (double)(n ? n : 1));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int i;

    if (argc < 2) {
        fprintf(stderr, "usage: events_peer NAME COMMAND...\n");
        return 2;
    }
    me = argv[1];
    fd = mipc_init(me);
    if (fd == MIPC_ERROR) {
        fprintf(stderr, "events_peer: mipc_init(%s) failed: %s\n", me, mipc_last_error());
        return 1;
    }
    for (i = 2; i < argc; i++) {
        const char *c = argv[i];
        int left = argc - i - 1;
        unsigned int size;

        if (strcmp(c, "sub") == 0 && left >= 1) {
            result("sub", argv[i + 1], mipc_subscribe(argv[i + 1]));
            i += 1;
        } else if (strcmp(c, "unsub") == 0 && left >= 1) {
            result("unsub", argv[i + 1], mipc_unsubscribe(argv[i + 1]));
            i += 1;
        } else if (strcmp(c, "pub") == 0 && left >= 2) {
            const char *t = text_arg(argv[i + 2], &size);
            result("pub", NULL, mipc_publish(argv[i + 1], t, size));
            i += 2;
        } else if (strcmp(c, "pubn") == 0 && left >= 3) {
            pub_n(argv[i + 1], atol(argv[i + 2]), (unsigned int)atol(argv[i + 3]));
            i += 3;
        } else if (strcmp(c, "bcast") == 0 && left >= 2) {
            const char *t = text_arg(argv[i + 2], &size);
            result("bcast", NULL, mipc_broadcast((unsigned int)strtoul(argv[i + 1], NULL, 0), t, size));
            i += 2;
        } else if (strcmp(c, "recv") == 0 && left >= 2) {
            recv_n(atol(argv[i + 1]), atoi(argv[i + 2]));
            i += 2;
        } else if (strcmp(c, "count") == 0 && left >= 2) {
            count_n(atol(argv[i + 1]), atoi(argv[i + 2]));
            i += 2;
        } else if (strcmp(c, "ready") == 0) {
            printf("ready\n");
            fflush(stdout);
        } else if (strcmp(c, "line") == 0) {
            char line[64];
            if (!fgets(line, sizeof line, stdin))
                break;
        } else {
            fprintf(stderr, "events_peer: bad command %s\n", c);
            return 2;
        }
    }
    return 0;
}
