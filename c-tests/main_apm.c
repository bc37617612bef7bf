/* main_apm: the client of the article's example 1 (SPEC §1, seed 000).
 *
 * Registers "main_apm", pings "alarm_apm" (waiting forever, as the article does) and the
 * relay "mipc_main" (waiting at most 1 s). Prints "ready" once registered, one line per
 * ping, and exits 1 unless both answered. Like the article's programs it never calls
 * mipc_exit: the relay removes its queue once the process is gone.
 */
#include <stdio.h>

#include "mipc.h"

static int ping(const char *dst, int timeout)
{
    int ret = mipc_ping(dst, timeout);

    printf("main_apm: ping %s -> %s\n", dst, ret == MIPC_OK ? "MIPC_OK" : "MIPC_ERROR");
    if (ret != MIPC_OK)
        printf("main_apm: reason: %s\n", mipc_last_error());
    fflush(stdout);
    return ret == MIPC_OK ? 0 : 1;
}

int main(void)
{
    int failures = 0;

    if (mipc_init("main_apm") == MIPC_ERROR) {
        fprintf(stderr, "main_apm: mipc_init failed: %s\n", mipc_last_error());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);

    failures += ping("alarm_apm", MIPC_MSG_SYNC_WAIT_FOREVER);
    failures += ping("mipc_main", 1000);
    return failures ? 1 : 0;
}
