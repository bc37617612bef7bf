/* preload_probe: a program linked against *a* libmipc.so that only does the basics.
 *
 * The test links it against the stub library (stub_libmipc.c, every call fails) and runs it
 * twice: plainly, where it must fail, and with LD_PRELOAD=target/release/libmipc.so, where
 * the real library must take over every symbol, as it does for a legacy binary on a router.
 * Prints "version <string>", "ready" once registered, "ping mipc_main -> MIPC_OK".
 */
#include <stdio.h>

#include "mipc.h"

int main(void)
{
    const char *version = mipc_version();
    int ret;

    printf("version %s\n", version ? version : "(null)");
    if (mipc_init("preload_probe") == MIPC_ERROR) {
        printf("init failed: %s\n", mipc_last_error());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);

    ret = mipc_ping("mipc_main", 2000);
    printf("ping mipc_main -> %s\n", ret == MIPC_OK ? "MIPC_OK" : "MIPC_ERROR");
    if (ret != MIPC_OK)
        printf("reason: %s\n", mipc_last_error());
    if (mipc_exit() != MIPC_OK) {
        printf("mipc_exit failed: %s\n", mipc_last_error());
        return 1;
    }
    return ret == MIPC_OK ? 0 : 1;
}
