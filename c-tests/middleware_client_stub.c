/* middleware_client_stub.c: the client side of the article's example 2, what a service
 * ships as libmiddleware_mipc_client.so: each stub packs its arguments into the api's
 * *_IN_T, makes one synchronous call and unpacks the *_OUT_T. */
#include <stdio.h>
#include <string.h>

#include "middleware_api.h"

int middleware_insert_entry_to(const char *server, unsigned int table_id, const void *entry,
                               unsigned int size)
{
    middleware_insert_entry_IN_T input;
    middleware_insert_entry_OUT_T output;

    if (size > MIDDLEWARE_ENTRY_MAX || (entry == NULL && size > 0))
        return MIDDLEWARE_BAD_ENTRY;

    memset(&input, 0, sizeof(input));
    memset(&output, 0, sizeof(output));
    input.table_id = table_id;
    if (entry != NULL)
        memcpy(input.entry, entry, size);
    input.size = size;

    if (mipc_send_sync_msg(server, MIDDLEWARE_API_INSERT_ENTRY, &input, sizeof(input), &output,
                           sizeof(output), MIPC_MSG_SYNC_WAIT_FOREVER) != MIPC_OK) {
        fprintf(stderr, "%s: failed to send message: %s\n", __func__, mipc_last_error());
        return MIDDLEWARE_CALL_FAILED;
    }
    return output.ret;
}

int middleware_insert_entry(unsigned int table_id, const void *entry, unsigned int size)
{
    return middleware_insert_entry_to(MIDDLEWARE_NAME, table_id, entry, size);
}

int middleware_echo(const char *server, const void *in, unsigned int size, void *out)
{
    return mipc_send_sync_msg(server, MIDDLEWARE_API_ECHO, in, size, out, size,
                              MIPC_MSG_SYNC_WAIT_FOREVER);
}
