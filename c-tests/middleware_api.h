/* middleware_api.h: the client/server contract of the article's example 2 (SPEC §1, seed 000).
 *
 * A service ships a header like this one: its api ids, one *_IN_T / *_OUT_T pair per api,
 * and the client stubs (middleware_client_stub.c) that pack the arguments and call
 * mipc_send_sync_msg("middleware", api_id, ...). The server (middleware_server.c) unpacks
 * them, runs the call and answers with mipc_response_msg. legacy_peer.c builds the same
 * bytes by hand.
 */
#ifndef MIDDLEWARE_API_H
#define MIDDLEWARE_API_H

#include <stddef.h>

#include "mipc.h"

/* The entry name the server registers with mipc_init. */
#define MIDDLEWARE_NAME "middleware"

/* Api ids: the SysV mtype of a request and of its answer (SPEC §2). */
#define MIDDLEWARE_API_INSERT_ENTRY 1u /* insert an entry into a table */
#define MIDDLEWARE_API_ECHO 2u         /* answer = request payload, bytes reversed */

/* Largest entry insert_entry takes. */
#define MIDDLEWARE_ENTRY_MAX 64u

/* Return values of middleware_insert_entry besides a checksum (checksums are >= 0). */
#define MIDDLEWARE_CALL_FAILED (-1) /* the call itself failed (see mipc_last_error()) */
#define MIDDLEWARE_BAD_ENTRY (-2)   /* the server refused the entry */

typedef struct {
    unsigned int table_id;
    unsigned char entry[MIDDLEWARE_ENTRY_MAX];
    unsigned int size; /* bytes used in entry[] */
} middleware_insert_entry_IN_T;

typedef struct {
    int ret; /* middleware_entry_checksum(), or MIDDLEWARE_BAD_ENTRY */
} middleware_insert_entry_OUT_T;

/* What "inserting" returns: a 31-bit FNV-1a checksum of the table id and the entry bytes,
 * so that a client can tell its own answer from anybody else's. */
static inline int middleware_entry_checksum(unsigned int table_id, const unsigned char *entry,
                                            unsigned int size)
{
    unsigned int h = 2166136261u ^ table_id;
    unsigned int i;

    for (i = 0; i < size; i++) {
        h ^= entry[i];
        h *= 16777619u;
    }
    return (int)(h & 0x7fffffffu);
}

/* The echo api's answer: the request bytes in reverse order. */
static inline void middleware_reverse(unsigned char *out, const unsigned char *in, size_t size)
{
    size_t i;

    for (i = 0; i < size; i++)
        out[i] = in[size - 1 - i];
}

/* Client stubs (middleware_client_stub.c); the calling thread must have called mipc_init.
 *
 * middleware_insert_entry: insert `size` bytes of `entry` into table `table_id` of the
 * "middleware" service; returns the server's ret, or MIDDLEWARE_CALL_FAILED.
 * middleware_insert_entry_to: the same against another server name.
 * middleware_echo: send `size` bytes to `server`'s echo api and wait forever; `out`
 * receives `size` bytes; returns the mipc_send_sync_msg result. */
int middleware_insert_entry(unsigned int table_id, const void *entry, unsigned int size);
int middleware_insert_entry_to(const char *server, unsigned int table_id, const void *entry,
                               unsigned int size);
int middleware_echo(const char *server, const void *in, unsigned int size, void *out);

#endif /* MIDDLEWARE_API_H */
