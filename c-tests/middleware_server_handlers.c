/* middleware_server_handlers: the server of the article's example 2 (SPEC §1, seed 000),
 * written on the handler-table API instead of the legacy receive loop of middleware_server.c.
 *
 *   middleware_server_handlers [-s PATTERN]... [name]
 *
 * Registers `name` (default "middleware"), subscribes to each PATTERN, prints "ready", then
 * mipc_serve() does the rest: it dispatches each request to the handler of its api id (or
 * the default handler), answers PING itself and sends each handler's buffer back to the
 * caller. Compare with middleware_server.c: no receive loop, no switch, no
 * mipc_response_msg.
 *
 * Handlers: insert_entry and echo as middleware_server; api 90 unregisters the entry
 * (mipc_exit), so mipc_serve ends and calls the exit handler; every other api goes to the
 * default handler, which answers "default api <id> from <name> pid <pid>"; events print
 * "server: event <name> from <publisher> pid <pid>: <data>". SIGTERM ends mipc_serve too.
 * Prints "server: exit reason <n>" from the exit handler and "server: mipc_serve -> <rc>".
 */
#include <stdio.h>
#include <string.h>

#include "middleware_api.h"

#define API_UNREGISTER 90u

static int insert_entry(const mipc_request_t *req, void *out, unsigned int *out_size)
{
    middleware_insert_entry_IN_T in;
    middleware_insert_entry_OUT_T ret;

    memset(&in, 0, sizeof(in));
    if (req->size == sizeof(in))
        memcpy(&in, req->payload, sizeof(in));
    if (req->size != sizeof(in) || in.size > MIDDLEWARE_ENTRY_MAX)
        ret.ret = MIDDLEWARE_BAD_ENTRY;
    else
        ret.ret = middleware_entry_checksum(in.table_id, in.entry, in.size);
    memcpy(out, &ret, sizeof(ret));
    *out_size = sizeof(ret);
    printf("server: insert_entry(table %u, %u bytes) from %s -> ret %d\n", in.table_id, in.size,
           req->src_name, ret.ret);
    fflush(stdout);
    return MIPC_OK;
}

static int echo(const mipc_request_t *req, void *out, unsigned int *out_size)
{
    middleware_reverse(out, req->payload, req->size);
    *out_size = req->size;
    return MIPC_OK;
}

static int unregister(const mipc_request_t *req, void *out, unsigned int *out_size)
{
    printf("server: unregister asked by %s\n", req->src_name);
    fflush(stdout);
    if (mipc_exit() != MIPC_OK)
        fprintf(stderr, "server: mipc_exit failed: %s\n", mipc_last_error());
    memcpy(out, "bye", 3);
    *out_size = 3;
    return MIPC_OK;
}

static int other(const mipc_request_t *req, void *out, unsigned int *out_size)
{
    int n = snprintf(out, *out_size, "default api %u from %s pid %d", req->api_id, req->src_name,
                     req->src_pid);

    *out_size = n > 0 ? (unsigned int)n : 0;
    return MIPC_OK;
}

static int event(const mipc_request_t *req, void *out, unsigned int *out_size)
{
    (void)out;
    (void)out_size;
    printf("server: event %s from %s pid %d: %.*s\n", req->event, req->src_name, req->src_pid,
           (int)req->size, (const char *)req->payload);
    fflush(stdout);
    return MIPC_OK;
}

static void on_exit_reason(int reason)
{
    printf("server: exit reason %d\n", reason);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *name = MIDDLEWARE_NAME;
    int i, rc;

    if (mipc_register_handler(MIDDLEWARE_API_INSERT_ENTRY, insert_entry) != MIPC_OK ||
        mipc_register_handler(MIDDLEWARE_API_ECHO, echo) != MIPC_OK ||
        mipc_register_handler(API_UNREGISTER, unregister) != MIPC_OK ||
        mipc_register_handler(MIPC_MSG_TYPE_EVENT, event) != MIPC_OK ||
        mipc_set_default_handler(other) != MIPC_OK || mipc_set_exit_handler(on_exit_reason) != MIPC_OK) {
        fprintf(stderr, "server: registering handlers failed: %s\n", mipc_last_error());
        return 1;
    }
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-s") == 0)
            i++; /* its pattern */
        else
            name = argv[i];
    }
    /* mipc_serve registers too; registering first lets us subscribe and say "ready" once the
     * relay knows us (mipc_serve then takes the same entry). */
    if (mipc_init(name) == MIPC_ERROR) {
        fprintf(stderr, "server: mipc_init(%s) failed: %s\n", name, mipc_last_error());
        return 1;
    }
    for (i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "-s") == 0 && mipc_subscribe(argv[++i]) != MIPC_OK) {
            fprintf(stderr, "server: mipc_subscribe(%s) failed: %s\n", argv[i], mipc_last_error());
            return 1;
        }
    }
    printf("ready\n");
    fflush(stdout);
    rc = mipc_serve(name);
    printf("server: mipc_serve -> %d%s%s\n", rc, rc == MIPC_OK ? "" : ": ",
           rc == MIPC_OK ? "" : mipc_last_error());
    fflush(stdout);
    return rc == MIPC_OK ? 0 : 1;
}
