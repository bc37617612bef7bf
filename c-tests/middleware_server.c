/* middleware_server: the server of the article's example 2 (SPEC §1, seed 000).
 *
 *   middleware_server [-v] [name]
 *
 * One thread registers the entry `name` (default "middleware"), registers its handler with
 * mthread_register_mq, and loops: mipc_mq_receive -> mthread_check_mq_msg -> handler ->
 * mipc_receive_msg -> switch on the api id -> mipc_response_msg. Calls are therefore served
 * one at a time, in order. Prints "ready" once registered, then one line per insert_entry
 * (and per echo with -v). Runs until killed.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "middleware_api.h"

static int verbose;

static void middleware_mipc_server_call(const char *source_module, const char *dest_module,
                                        unsigned int api_id, const unsigned char *input,
                                        unsigned int size)
{
    switch (api_id) {
    case MIPC_MSG_TYPE_PING: {
        int result = 0;

        if (mipc_response_msg(source_module, dest_module, api_id, &result, sizeof(result)) !=
            MIPC_OK)
            fprintf(stderr, "server: ping answer to %s failed: %s\n", source_module,
                    mipc_last_error());
        break;
    }
    case MIDDLEWARE_API_INSERT_ENTRY: {
        middleware_insert_entry_IN_T in;
        middleware_insert_entry_OUT_T out;

        memset(&in, 0, sizeof(in));
        if (size == sizeof(in))
            memcpy(&in, input, sizeof(in)); /* payload[] is not aligned for the struct */
        if (size != sizeof(in) || in.size > MIDDLEWARE_ENTRY_MAX)
            out.ret = MIDDLEWARE_BAD_ENTRY;
        else
            out.ret = middleware_entry_checksum(in.table_id, in.entry, in.size);

        /* send back everything in the out data structure */
        if (mipc_response_msg(source_module, dest_module, api_id, &out, sizeof(out)) != MIPC_OK)
            fprintf(stderr, "server: answer to %s failed: %s\n", source_module,
                    mipc_last_error());
        printf("server: insert_entry(table %u, %u bytes) from %s -> ret %d\n", in.table_id,
               in.size, source_module, out.ret);
        fflush(stdout);
        break;
    }
    case MIDDLEWARE_API_ECHO: {
        static unsigned char out[MIPC_MSG_MAX_LEN];

        middleware_reverse(out, input, size);
        if (mipc_response_msg(source_module, dest_module, api_id, out, size) != MIPC_OK)
            fprintf(stderr, "server: echo answer to %s failed: %s\n", source_module,
                    mipc_last_error());
        if (verbose) {
            printf("server: echo(%u bytes) from %s\n", size, source_module);
            fflush(stdout);
        }
        break;
    }
    default:
        fprintf(stderr, "server: api %u from %s is not served\n", api_id, source_module);
        break;
    }
}

/* Called by mthread_check_mq_msg with the message mipc_mq_receive wrote and its size. */
static int middleware_handler(char *msg, int size)
{
    const sysV_msg_t *msgq = (const sysV_msg_t *)msg;
    const MIPC_MSG_HDR_T *hdr = &msgq->msg_payload.msg_hdr;
    char source_module[MIPC_NAME_MAX_LEN];
    unsigned int api_id;

    if (mipc_receive_msg(source_module, &api_id, msg) == MIPC_ERROR) {
        fprintf(stderr, "server: mipc_receive_msg failed: %s\n", mipc_last_error());
        return MIPC_ERROR;
    }
    /* Both are library promises (SPEC §2): say so loudly when one is broken. */
    if (size < 0 || (size_t)size != offsetof(sysV_msg_payload_t, payload) + hdr->msg_size)
        fprintf(stderr, "server: BUG: handler got size %d for msg_size %u\n", size,
                hdr->msg_size);
    if (api_id != hdr->msg_type || strcmp(source_module, msgq->msg_payload.src_name) != 0)
        fprintf(stderr, "server: BUG: mipc_receive_msg says api %u from %s, message says %u from %s\n",
                api_id, source_module, hdr->msg_type, msgq->msg_payload.src_name);

    middleware_mipc_server_call(source_module, msgq->msg_payload.dst_name, api_id,
                                msgq->msg_payload.payload, hdr->msg_size);
    return MIPC_OK;
}

int main(int argc, char **argv)
{
    /* A sysV_msg_t, not a char array: the handler reads it as a message. */
    static sysV_msg_t buffer;
    const char *name = MIDDLEWARE_NAME;
    int thread_index, mq_index, fd, i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            verbose = 1;
        else
            name = argv[i];
    }

    fd = mipc_init(name);
    if (fd == MIPC_ERROR) {
        fprintf(stderr, "server: mipc_init(%s) failed: %s\n", name, mipc_last_error());
        return 1;
    }
    if (mthread_register_mq(fd, middleware_handler, &thread_index, &mq_index) != MIPC_OK) {
        fprintf(stderr, "server: mthread_register_mq failed: %s\n", mipc_last_error());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);

    for (;;) {
        int size = mipc_mq_receive(fd, &buffer, MIPC_DEFAULT_MAX_MSG_SIZE, 0,
                                   MIPC_MSG_SYNC_WAIT_FOREVER);

        if (size == MIPC_ERROR) {
            fprintf(stderr, "server: mipc_mq_receive failed: %s\n", mipc_last_error());
            return 1;
        }
        mthread_check_mq_msg(thread_index, mq_index, (char *)&buffer, size);
        memset(&buffer, 0, sizeof(buffer));
    }
}
