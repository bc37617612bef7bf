/* async_order: fire-and-forget messages arrive complete and in order.
 *
 *   async_order send <dst> <count> [max] [wait]
 *       registers "async_tx", sends <count> messages to <dst> with mipc_send_msg
 *       (sync_flag 0), prints "sent <count>"; with "wait" it reads one line from stdin
 *       before it sends (the test's go-ahead)
 *   async_order receive <count> [max] [forever | qbytes=N]
 *       registers "async_rx", receives <count> messages with mipc_mq_receive and checks
 *       each, prints "ok <count>"; with "forever" the receives wait without a timeout
 *       (MIPC_MSG_SYNC_WAIT_FOREVER: the library's other receive path); with "qbytes=N" it
 *       first lowers its queue's capacity (msg_qbytes) to N bytes, as a daemon may
 *
 * Message <seq> has api id ASYNC_API, 8 to <max> (default 2048) payload bytes: the
 * sequence number, the size, then a pattern of (seq, offset). Both print "ready" once
 * registered and exit 1 on any mismatch.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>

#include "mipc.h"

#define ASYNC_API 3u
#define RECEIVE_TIMEOUT_MS 20000

static unsigned int max_size = MIPC_MSG_MAX_LEN;

static unsigned int message_size(uint32_t seq)
{
    return 8u + (seq * 37u) % (max_size - 8u + 1u);
}

static unsigned char pattern(uint32_t seq, unsigned int offset)
{
    return (unsigned char)(seq * 31u + offset * 7u + (offset >> 8));
}

static int sender(const char *dst, uint32_t count, int wait_go)
{
    static unsigned char payload[MIPC_MSG_MAX_LEN];
    uint32_t seq;

    if (mipc_init("async_tx") == MIPC_ERROR) {
        fprintf(stderr, "async_tx: mipc_init failed: %s\n", mipc_last_error());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    if (wait_go) {
        char line[64];

        if (fgets(line, sizeof line, stdin) == NULL) {
            printf("FAIL no go-ahead on stdin\n");
            return 1;
        }
    }

    for (seq = 0; seq < count; seq++) {
        uint32_t size = message_size(seq);
        unsigned int i;

        memcpy(payload, &seq, 4);
        memcpy(payload + 4, &size, 4);
        for (i = 8; i < size; i++)
            payload[i] = pattern(seq, i);
        if (mipc_send_msg("async_tx", dst, ASYNC_API, payload, size, 0) != MIPC_OK) {
            printf("FAIL send %u: %s\n", seq, mipc_last_error());
            return 1;
        }
    }
    printf("sent %u\n", count);
    if (mipc_exit() != MIPC_OK) {
        printf("FAIL mipc_exit: %s\n", mipc_last_error());
        return 1;
    }
    return 0;
}

/* Returns NULL when message `seq` is what the sender sent, else what is wrong. */
static const char *check(const sysV_msg_t *m, int got, uint32_t seq)
{
    const sysV_msg_payload_t *p = &m->msg_payload;
    uint32_t seq_in, size_in;
    unsigned int i;

    if (got < 0 || (size_t)got != offsetof(sysV_msg_payload_t, payload) + p->msg_hdr.msg_size)
        return "return value is not offsetof(payload) + msg_size";
    if (m->type != (long)ASYNC_API || p->msg_hdr.msg_type != ASYNC_API)
        return "wrong api id";
    if (p->msg_hdr.sync_flag != 0)
        return "sync_flag is not 0";
    if (strcmp(p->src_name, "async_tx") != 0 || strcmp(p->dst_name, "async_rx") != 0)
        return "wrong names";
    if (p->msg_hdr.msg_size != message_size(seq))
        return "wrong size (lost, reordered or truncated message)";
    memcpy(&seq_in, p->payload, 4);
    memcpy(&size_in, p->payload + 4, 4);
    if (seq_in != seq)
        return "out of order";
    if (size_in != p->msg_hdr.msg_size)
        return "size field differs";
    for (i = 8; i < p->msg_hdr.msg_size; i++)
        if (p->payload[i] != pattern(seq, i))
            return "payload bytes differ";
    return NULL;
}

static int receiver(uint32_t count, int timeout_ms, unsigned long qbytes)
{
    static sysV_msg_t m;
    uint32_t seq;
    int fd = mipc_init("async_rx");

    if (fd == MIPC_ERROR) {
        fprintf(stderr, "async_rx: mipc_init failed: %s\n", mipc_last_error());
        return 1;
    }
    if (qbytes != 0) {
        struct msqid_ds ds;

        if (msgctl(fd, IPC_STAT, &ds) != 0) {
            printf("FAIL IPC_STAT: %s\n", strerror(errno));
            return 1;
        }
        ds.msg_qbytes = qbytes;
        if (msgctl(fd, IPC_SET, &ds) != 0) {
            printf("FAIL IPC_SET msg_qbytes %lu: %s\n", qbytes, strerror(errno));
            return 1;
        }
    }
    printf("ready\n");
    fflush(stdout);

    for (seq = 0; seq < count; seq++) {
        const char *wrong;
        int got;

        memset(&m, 0, sizeof(m));
        got = mipc_mq_receive(fd, &m, (int)sizeof(m), 0, timeout_ms);
        if (got == MIPC_ERROR) {
            printf("FAIL message %u: mipc_mq_receive: %s\n", seq, mipc_last_error());
            return 1;
        }
        wrong = check(&m, got, seq);
        if (wrong != NULL) {
            uint32_t seq_in = 0;

            memcpy(&seq_in, m.msg_payload.payload, 4);
            printf("FAIL message %u: %s (got %d bytes, msg_size %u, seq field %u)\n", seq, wrong,
                   got, m.msg_payload.msg_hdr.msg_size, seq_in);
            return 1;
        }
    }
    printf("ok %u\n", count);
    if (mipc_exit() != MIPC_OK) {
        printf("FAIL mipc_exit: %s\n", mipc_last_error());
        return 1;
    }
    return 0;
}

/* The optional payload bound argument: 8 to MIPC_MSG_MAX_LEN. */
static int set_max(const char *arg)
{
    unsigned long v = strtoul(arg, NULL, 10);

    if (v < 8 || v > MIPC_MSG_MAX_LEN)
        return -1;
    max_size = (unsigned int)v;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && argc <= 6 && strcmp(argv[1], "send") == 0) {
        int wait_go = argc == 6 && strcmp(argv[5], "wait") == 0;

        if (argc >= 5 && set_max(argv[4]) != 0)
            goto usage;
        if (argc == 6 && !wait_go)
            goto usage;
        return sender(argv[2], (uint32_t)strtoul(argv[3], NULL, 10), wait_go);
    }
    if (argc >= 3 && argc <= 5 && strcmp(argv[1], "receive") == 0) {
        int timeout = RECEIVE_TIMEOUT_MS;
        unsigned long qbytes = 0;

        if (argc >= 4 && set_max(argv[3]) != 0)
            goto usage;
        if (argc == 5) {
            if (strncmp(argv[4], "qbytes=", 7) == 0) {
                qbytes = strtoul(argv[4] + 7, NULL, 10);
                if (qbytes == 0)
                    goto usage;
            } else if (strcmp(argv[4], "forever") == 0) {
                timeout = MIPC_MSG_SYNC_WAIT_FOREVER;
            } else {
                goto usage;
            }
        }
        return receiver((uint32_t)strtoul(argv[2], NULL, 10), timeout, qbytes);
    }
usage:
    fprintf(stderr,
            "usage: %s send <dst> <count> [max] [wait] | receive <count> [max] [forever | qbytes=N]\n",
            argv[0]);
    return 2;
}
