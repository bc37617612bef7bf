/* answer_back: sync calls whose server answers straight to the caller's queue when the relay
 * offers it (docs/PROTOCOL.md §11), with what that must not change.
 *
 *   answer_back serve             registers "abs" and answers until stdin closes or the
 *                                 caller says it is done:
 *                                 api 1: the payload with every byte + 1;
 *                                 api 2: first a one-way api 9 to the caller carrying the
 *                                        payload, then the answer (the payload);
 *                                 api 3: the answer, then a sync call of api 4 back to the
 *                                        caller, which must succeed (no "deadlock": the
 *                                        caller's call is over); prints what it got;
 *                                 api 5: done, prints "served <n>" and exits.
 *   answer_back call <count>      registers "abc"; <count> rounds of: an api 1 call of
 *                                 <round> bytes (checked byte for byte); an api 2 call, after
 *                                 which the api 9 message sent before its answer must be on
 *                                 the queue already (received without waiting); then one
 *                                 api 3 call, after which it answers the server's api 4
 *                                 call; prints "ok <count>".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mipc.h"

enum { API_PLUS = 1, API_NOTIFY_FIRST = 2, API_CALL_BACK = 3, API_BACK = 4, API_DONE = 5,
       API_NOTE = 9 };

static unsigned char buf[MIPC_DEFAULT_MAX_MSG_SIZE];

static int serve(void)
{
    int fd = mipc_init("abs");
    unsigned long served = 0;
    if (fd < 0) {
        fprintf(stderr, "serve: mipc_init: %s\n", mipc_last_error());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        sysV_msg_t *m = (sysV_msg_t *)buf;
        unsigned char out[MIPC_MSG_MAX_LEN];
        char from[MIPC_NAME_MAX_LEN];
        unsigned int size, i;
        int n = mipc_mq_receive(fd, buf, sizeof buf, 0, 20000);
        if (n < 0) {
            printf("receive failed: %s\n", mipc_last_error());
            return 1;
        }
        size = m->msg_payload.msg_hdr.msg_size;
        memcpy(from, m->msg_payload.src_name, sizeof from);
        switch (m->msg_payload.msg_hdr.msg_type) {
        case API_PLUS:
            for (i = 0; i < size; i++)
                out[i] = (unsigned char)(m->msg_payload.payload[i] + 1);
            break;
        case API_NOTIFY_FIRST:
            if (mipc_send_msg("abs", from, API_NOTE, m->msg_payload.payload, size, 0) != MIPC_OK) {
                printf("note failed: %s\n", mipc_last_error());
                return 1;
            }
            memcpy(out, m->msg_payload.payload, size);
            break;
        case API_CALL_BACK:
            memcpy(out, m->msg_payload.payload, size);
            break;
        case API_DONE:
            mipc_response_msg(from, "abs", API_DONE, NULL, 0);
            printf("served %lu\n", served);
            return 0;
        default:
            continue;
        }
        if (mipc_response_msg(from, "abs", m->msg_payload.msg_hdr.msg_type, out, size) != MIPC_OK) {
            printf("answer failed: %s\n", mipc_last_error());
            return 1;
        }
        served++;
        if (m->msg_payload.msg_hdr.msg_type == API_CALL_BACK) {
            int back = 0;
            if (mipc_send_sync_msg(from, API_BACK, "back", 4, &back, sizeof back, 5000) != MIPC_OK) {
                printf("call back failed: %s\n", mipc_last_error());
                return 1;
            }
            printf("called back: %d\n", back);
            fflush(stdout);
        }
    }
}

static int call(unsigned int count)
{
    int fd = mipc_init("abc");
    unsigned int round, i;
    if (fd < 0) {
        fprintf(stderr, "call: mipc_init: %s\n", mipc_last_error());
        return 1;
    }
    for (round = 1; round <= count; round++) {
        unsigned char in[MIPC_MSG_MAX_LEN], out[MIPC_MSG_MAX_LEN];
        unsigned int size = round % (MIPC_MSG_MAX_LEN + 1);
        sysV_msg_t *m = (sysV_msg_t *)buf;
        int n;
        for (i = 0; i < size; i++)
            in[i] = (unsigned char)(round * 31 + i);
        memset(out, 0, sizeof out);
        n = mipc_send_sync_msg("abs", API_PLUS, in, size, out, size, 5000);
        if (n != MIPC_OK) {
            printf("round %u: api 1 gave %d (%s)\n", round, n, n < 0 ? mipc_last_error() : "");
            return 1;
        }
        for (i = 0; i < size; i++) {
            if (out[i] != (unsigned char)(in[i] + 1)) {
                printf("round %u: byte %u is %u, not %u\n", round, i, out[i], in[i] + 1);
                return 1;
            }
        }
        n = mipc_send_sync_msg("abs", API_NOTIFY_FIRST, &round, sizeof round, out, sizeof round,
                               5000);
        if (n != MIPC_OK || memcmp(out, &round, sizeof round) != 0) {
            printf("round %u: api 2 gave %d (%s)\n", round, n, n < 0 ? mipc_last_error() : "");
            return 1;
        }
        /* The note was sent before the answer: it is here already. */
        n = mipc_mq_receive(fd, buf, sizeof buf, API_NOTE, 0);
        if (n < 0) {
            printf("round %u: the note sent before the answer is not here: %s\n", round,
                   mipc_last_error());
            return 1;
        }
        if (m->msg_payload.msg_hdr.msg_size != sizeof round ||
            memcmp(m->msg_payload.payload, &round, sizeof round) != 0) {
            printf("round %u: a note of another round\n", round);
            return 1;
        }
    }
    /* A call answered (straight back or not), then the server calls back: not a deadlock. */
    if (mipc_send_sync_msg("abs", API_CALL_BACK, "cb", 2, buf, 2, 5000) != MIPC_OK ||
        memcmp(buf, "cb", 2) != 0) {
        printf("api 3 failed: %s\n", mipc_last_error());
        return 1;
    }
    for (;;) {
        sysV_msg_t *m = (sysV_msg_t *)buf;
        int answer = 44;
        if (mipc_mq_receive(fd, buf, sizeof buf, 0, 5000) < 0) {
            printf("no call back: %s\n", mipc_last_error());
            return 1;
        }
        if (m->msg_payload.msg_hdr.msg_type != API_BACK)
            continue;
        if (mipc_response_msg(m->msg_payload.src_name, "abc", API_BACK, &answer, sizeof answer) !=
            MIPC_OK) {
            printf("answering the call back failed: %s\n", mipc_last_error());
            return 1;
        }
        break;
    }
    mipc_send_sync_msg("abs", API_DONE, NULL, 0, NULL, 0, 5000);
    printf("ok %u\n", count);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && strcmp(argv[1], "serve") == 0)
        return serve();
    if (argc == 3 && strcmp(argv[1], "call") == 0)
        return call((unsigned int)strtoul(argv[2], NULL, 10));
    fprintf(stderr, "usage: answer_back serve | answer_back call <count>\n");
    return 2;
}
