/* synccall: the second, independent sync-call client. It shares nothing with mipc_peer.c or
 * common.h: it registers, then does nothing but mipc_send_sync_msg in a loop, timing each
 * call with clock_gettime, and prints its own percentiles. So the sync-call figure of the
 * bench does not rest on one harness's details.
 *
 *   synccall NAME SERVER SIZE COUNT WARMUP
 *       mipc_init(NAME), WARMUP untimed calls, then COUNT timed
 *       mipc_send_sync_msg(SERVER, 1, in, SIZE, out, SIZE, -1);
 *       prints "RESULT n=COUNT p50_ns=.. p99_ns=.. mean_ns=.. errors=.."
 *
 * Its server is any echo server (bench: mipc_peer serve).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mipc.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    static unsigned char in[MIPC_MSG_MAX_LEN], out[MIPC_MSG_MAX_LEN];
    unsigned int size;
    long count, warmup, i, errors = 0;
    uint64_t *t, sum = 0;

    if (argc != 6) {
        fprintf(stderr, "usage: synccall NAME SERVER SIZE COUNT WARMUP\n");
        return 2;
    }
    size = (unsigned int)atoi(argv[3]);
    count = atol(argv[4]);
    warmup = atol(argv[5]);
    if (size > MIPC_MSG_MAX_LEN || count <= 0 || warmup < 0)
        return 2;
    t = calloc((size_t)count, sizeof(*t));
    if (t == NULL || mipc_init(argv[1]) == MIPC_ERROR) {
        fprintf(stderr, "synccall: mipc_init: %s\n", mipc_last_error());
        return 1;
    }
    memset(in, 'x', sizeof in);
    for (i = 0; i < warmup; i++)
        if (mipc_send_sync_msg(argv[2], 1, in, size, out, size, -1) == MIPC_ERROR)
            errors++;
    for (i = 0; i < count; i++) {
        uint64_t t0 = now_ns();
        if (mipc_send_sync_msg(argv[2], 1, in, size, out, size, -1) == MIPC_ERROR)
            errors++;
        t[i] = now_ns() - t0;
        sum += t[i];
    }
    qsort(t, (size_t)count, sizeof(*t), cmp_u64);
    printf("RESULT n=%ld p50_ns=%llu p99_ns=%llu mean_ns=%llu errors=%ld\n", count,
           (unsigned long long)t[count / 2], (unsigned long long)t[count * 99 / 100],
           (unsigned long long)(sum / (uint64_t)count), errors);
    mipc_exit();
    return errors != 0;
}
