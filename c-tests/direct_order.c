/* direct_order: one sender's messages arrive in order, also across the switch from the relay
 * to the direct path (MIPC_DIRECT=1 on the sender).
 *
 *   direct_order serve <count>    registers "drx"; receives <count> messages: api 7 (async)
 *                                 and api 8 (sync, answered with the same number), each
 *                                 carrying a u32 sequence number that must be the previous
 *                                 one plus 1; prints "ok <count>"
 *   direct_order send <count>     registers "dtx"; message i (1..count) is a sync call when
 *                                 i % 3 == 0, else an async send; prints "sent <count>"
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mipc.h"

enum { API_ASYNC = 7, API_SYNC = 8 };

static int serve(uint32_t count)
{
    static unsigned char buf[MIPC_DEFAULT_MAX_MSG_SIZE];
    uint32_t expected = 1;
    int fd = mipc_init("drx");
    if (fd < 0) {
        fprintf(stderr, "serve: mipc_init: %s\n", mipc_last_error());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    while (expected <= count) {
        sysV_msg_t *m = (sysV_msg_t *)buf;
        uint32_t seq;
        int size = mipc_mq_receive(fd, buf, sizeof buf, 0, 10000);
        if (size < 0) {
            printf("receive failed at %u: %s\n", expected, mipc_last_error());
            return 1;
        }
        if (m->msg_payload.msg_hdr.msg_size != sizeof seq) {
            printf("bad size %u at %u\n", m->msg_payload.msg_hdr.msg_size, expected);
            return 1;
        }
        memcpy(&seq, m->msg_payload.payload, sizeof seq);
        if (seq != expected) {
            printf("out of order: got %u, expected %u\n", seq, expected);
            return 1;
        }
        if (m->msg_payload.msg_hdr.msg_type == API_SYNC &&
            mipc_response_msg(m->msg_payload.src_name, "drx", API_SYNC, &seq, sizeof seq) != MIPC_OK) {
            printf("answer failed: %s\n", mipc_last_error());
            return 1;
        }
        expected++;
    }
    printf("ok %u\n", count);
    return 0;
}

static int send(uint32_t count)
{
    uint32_t i;
    if (mipc_init("dtx") < 0) {
        fprintf(stderr, "send: mipc_init: %s\n", mipc_last_error());
        return 1;
    }
    for (i = 1; i <= count; i++) {
        if (i % 3 == 0) {
            uint32_t answer = 0;
            if (mipc_send_sync_msg("drx", API_SYNC, &i, sizeof i, &answer, sizeof answer, 5000) != MIPC_OK ||
                answer != i) {
                printf("call %u failed (answer %u): %s\n", i, answer, mipc_last_error());
                return 1;
            }
        } else if (mipc_send_msg("dtx", "drx", API_ASYNC, &i, sizeof i, 0) != MIPC_OK) {
            printf("send %u failed: %s\n", i, mipc_last_error());
            return 1;
        }
    }
    printf("sent %u\n", count);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "serve") == 0)
        return serve((uint32_t)strtoul(argv[2], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "send") == 0)
        return send((uint32_t)strtoul(argv[2], NULL, 10));
    fprintf(stderr, "usage: direct_order serve|send <count>\n");
    return 2;
}
