/* wait_for: mipc_wait_for() from C (boot-order races: wait until a daemon is registered).
 *
 *   wait_for NAME TIMEOUT_MS
 *
 * Prints "ready" (it needs no entry of its own: no mipc_init), then calls
 * mipc_wait_for(NAME, TIMEOUT_MS) and prints "wait_for NAME -> MIPC_OK" or
 * "wait_for NAME -> MIPC_ERROR: <mipc_last_error()> (errno N)". Exit code 0 on MIPC_OK.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "mipc.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: wait_for NAME TIMEOUT_MS\n");
        return 2;
    }
    printf("ready\n");
    fflush(stdout);
    int ret = mipc_wait_for(argv[1], atoi(argv[2]));
    if (ret == MIPC_OK) {
        printf("wait_for %s -> MIPC_OK\n", argv[1]);
        return 0;
    }
    printf("wait_for %s -> MIPC_ERROR: %s (errno %d)\n", argv[1], mipc_last_error(), errno);
    return 1;
}
