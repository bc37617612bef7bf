/* middleware_client: the client of the article's example 2 (SPEC §1, seed 000).
 *
 *   middleware_client [server] [name]
 *
 * Registers `name` (default "mw_client"), then calls `server` (default "middleware"):
 * three insert_entry calls through the client stub, three echo calls of 1, 100 and 2048
 * bytes, and a ping. Checks every answer byte for byte, prints one line per call and
 * "ok <calls>" at the end; exits 1 on any mismatch.
 */
#include <stdio.h>
#include <string.h>

#include "middleware_api.h"

static int calls, failures;

static void insert(const char *server, unsigned int table_id, unsigned int size)
{
    unsigned char entry[MIDDLEWARE_ENTRY_MAX];
    unsigned int i;
    int ret, expected;

    for (i = 0; i < size; i++)
        entry[i] = (unsigned char)(table_id * 16u + i);
    expected = middleware_entry_checksum(table_id, entry, size);

    ret = middleware_insert_entry_to(server, table_id, entry, size);
    calls++;
    printf("client: insert_entry(table %u, %u bytes) -> ret %d", table_id, size, ret);
    if (ret == expected) {
        printf("\n");
    } else {
        printf(" MISMATCH, expected %d\n", expected);
        failures++;
    }
    fflush(stdout);
}

static void echo(const char *server, unsigned int size)
{
    static unsigned char in[MIPC_MSG_MAX_LEN], out[MIPC_MSG_MAX_LEN], want[MIPC_MSG_MAX_LEN];
    unsigned int i;
    int ret;

    for (i = 0; i < size; i++)
        in[i] = (unsigned char)(i * 7u + size);
    middleware_reverse(want, in, size);
    for (i = 0; i < size; i++)
        out[i] = (unsigned char)~want[i]; /* a byte the answer did not overwrite shows */

    ret = middleware_echo(server, in, size, out);
    calls++;
    if (ret != MIPC_OK) {
        printf("client: echo(%u bytes) -> MIPC_ERROR: %s\n", size, mipc_last_error());
        failures++;
    } else if (memcmp(out, want, size) != 0) {
        printf("client: echo(%u bytes) -> answer MISMATCH\n", size);
        failures++;
    } else {
        printf("client: echo(%u bytes) -> reversed ok\n", size);
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *server = argc > 1 ? argv[1] : MIDDLEWARE_NAME;
    const char *name = argc > 2 ? argv[2] : "mw_client";
    int ret;

    if (mipc_init(name) == MIPC_ERROR) {
        fprintf(stderr, "client: mipc_init(%s) failed: %s\n", name, mipc_last_error());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);

    insert(server, 1, 4);
    insert(server, 2, 16);
    insert(server, 3, MIDDLEWARE_ENTRY_MAX);
    echo(server, 1);
    echo(server, 100);
    echo(server, MIPC_MSG_MAX_LEN);

    ret = mipc_ping(server, 5000);
    calls++;
    printf("client: ping %s -> %s\n", server, ret == MIPC_OK ? "MIPC_OK" : "MIPC_ERROR");
    if (ret != MIPC_OK) {
        fprintf(stderr, "client: ping failed: %s\n", mipc_last_error());
        failures++;
    }

    if (mipc_exit() != MIPC_OK) {
        fprintf(stderr, "client: mipc_exit failed: %s\n", mipc_last_error());
        failures++;
    }
    if (failures) {
        printf("FAIL %d of %d\n", failures, calls);
        return 1;
    }
    printf("ok %d\n", calls);
    return 0;
}
