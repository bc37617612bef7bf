/* alarm_apm: the server of the article's example 1 (SPEC §1, seed 000).
 *
 * One thread registers the entry "alarm_apm", registers a handler with mthread_register_mq,
 * and loops: mipc_mq_receive (any type, wait forever) -> mthread_check_mq_msg -> handler.
 * The handler answers MIPC_MSG_TYPE_PING with an int 0. Prints "ready" once registered and
 * one line per answered ping. Runs until killed.
 */
#include <stdio.h>
#include <string.h>

#include "mipc.h"

static int alarm_apm_handler(char *msg, int size)
{
    sysV_msg_t *pMsg = (sysV_msg_t *)msg;
    MIPC_MSG_HDR_T *msgq_header = &pMsg->msg_payload.msg_hdr;

    (void)size;
    switch (msgq_header->msg_type) {
    case MIPC_MSG_TYPE_PING: {
        int result = 0;

        if (mipc_response_msg(pMsg->msg_payload.src_name, pMsg->msg_payload.dst_name,
                              msgq_header->msg_type, &result, sizeof(int)) != MIPC_OK) {
            fprintf(stderr, "alarm_apm: answer to %s failed: %s\n", pMsg->msg_payload.src_name,
                    mipc_last_error());
            return MIPC_ERROR;
        }
        printf("alarm_apm: answered ping from %s\n", pMsg->msg_payload.src_name);
        fflush(stdout);
        return MIPC_OK;
    }
    default:
        fprintf(stderr, "alarm_apm: api %u from %s is not served\n", msgq_header->msg_type,
                pMsg->msg_payload.src_name);
        return MIPC_ERROR;
    }
}

int main(void)
{
    /* A sysV_msg_t, not a char array: the handler reads it as a message. */
    static sysV_msg_t buffer;
    int thread_index, mq_index;
    int mipc_fd = mipc_init("alarm_apm");

    if (mipc_fd == MIPC_ERROR) {
        fprintf(stderr, "alarm_apm: mipc_init failed: %s\n", mipc_last_error());
        return 1;
    }
    if (mthread_register_mq(mipc_fd, alarm_apm_handler, &thread_index, &mq_index) != MIPC_OK) {
        fprintf(stderr, "alarm_apm: mthread_register_mq failed: %s\n", mipc_last_error());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);

    for (;;) {
        int size = mipc_mq_receive(mipc_fd, &buffer, MIPC_DEFAULT_MAX_MSG_SIZE, 0,
                                   MIPC_MSG_SYNC_WAIT_FOREVER);

        if (size > 0) {
            mthread_check_mq_msg(thread_index, mq_index, (char *)&buffer, size);
            memset(&buffer, 0, sizeof(buffer));
        } else {
            fprintf(stderr, "alarm_apm: mipc_mq_receive failed: %s\n", mipc_last_error());
            return 1;
        }
    }
}
