/* stress_client: many threads calling one server at once.
 *
 *   stress_client <nthreads> <ncalls> <prefix> [server]
 *
 * Each thread registers "<prefix>_<i>" and makes <ncalls> synchronous echo calls to
 * `server` (default "middleware"), each with a payload unique to (process, thread, call)
 * of 12 to 2048 bytes, and checks every answer byte for byte (the echo api answers the
 * bytes reversed, so an answer meant for another call never matches). Prints "ready" once
 * every thread is registered and "ok <calls>" at the end; exits 1 on any mismatch.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "middleware_api.h"

#define ID_BYTES 12u   /* pid, thread, call: the first bytes of every payload */
#define CANARY 16u     /* bytes after the answer the library must not touch */
#define MAX_REPORTS 5u /* mismatches reported per thread */

struct worker {
    pthread_t tid;
    unsigned int index;
    unsigned int ok;
    unsigned int failures;
};

static unsigned int ncalls;
static const char *prefix;
static const char *server = MIDDLEWARE_NAME;
static pthread_barrier_t registered;

static uint32_t mix(uint32_t pid, uint32_t thread, uint32_t call)
{
    uint32_t x = pid * 2654435761u ^ thread * 2246822519u ^ call * 3266489917u ^ 0x9e3779b9u;

    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    return x ? x : 1u;
}

static unsigned int payload_size(uint32_t pid, uint32_t thread, uint32_t call)
{
    if (call == 0)
        return MIPC_MSG_MAX_LEN;
    if (call == 1)
        return ID_BYTES;
    return ID_BYTES + mix(pid, thread, call) % (MIPC_MSG_MAX_LEN - ID_BYTES + 1u);
}

static void make_payload(unsigned char *p, unsigned int size, uint32_t pid, uint32_t thread,
                         uint32_t call)
{
    uint32_t id[3];
    uint32_t x = mix(pid, thread, call);
    unsigned int i;

    id[0] = pid;
    id[1] = thread;
    id[2] = call;
    memcpy(p, id, sizeof(id));
    for (i = ID_BYTES; i < size; i++) { /* xorshift32 */
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

static void report(struct worker *w, uint32_t call, unsigned int size, const char *what)
{
    if (++w->failures <= MAX_REPORTS)
        fprintf(stderr, "stress %s_%u: call %u (%u bytes): %s\n", prefix, w->index, call, size,
                what);
}

static void one_call(struct worker *w, uint32_t pid, uint32_t call)
{
    unsigned char in[MIPC_MSG_MAX_LEN], want[MIPC_MSG_MAX_LEN];
    unsigned char out[MIPC_MSG_MAX_LEN + CANARY];
    unsigned int size = payload_size(pid, w->index, call);
    unsigned int i;
    char why[160];

    make_payload(in, size, pid, w->index, call);
    middleware_reverse(want, in, size);
    for (i = 0; i < size; i++)
        out[i] = (unsigned char)~want[i];
    memset(out + size, 0x5a, CANARY);

    if (middleware_echo(server, in, size, out) != MIPC_OK) {
        snprintf(why, sizeof(why), "MIPC_ERROR: %s", mipc_last_error());
        report(w, call, size, why);
        return;
    }
    for (i = 0; i < size && out[i] == want[i]; i++)
        ;
    if (i < size) {
        snprintf(why, sizeof(why), "answer differs from byte %u on", i);
        report(w, call, size, why);
        return;
    }
    for (i = 0; i < CANARY; i++) {
        if (out[size + i] != 0x5a) {
            report(w, call, size, "bytes written past out_size");
            return;
        }
    }
    w->ok++;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint32_t pid = (uint32_t)getpid();
    char name[MIPC_NAME_MAX_LEN];
    uint32_t call;
    int registered_ok;

    snprintf(name, sizeof(name), "%s_%u", prefix, w->index);
    registered_ok = mipc_init(name) != MIPC_ERROR;
    if (!registered_ok) {
        fprintf(stderr, "stress: mipc_init(%s) failed: %s\n", name, mipc_last_error());
        w->failures++;
    }
    pthread_barrier_wait(&registered);
    if (!registered_ok)
        return NULL;

    for (call = 0; call < ncalls && w->failures < MAX_REPORTS; call++)
        one_call(w, pid, call);

    if (mipc_exit() != MIPC_OK) {
        fprintf(stderr, "stress: mipc_exit in %s failed: %s\n", name, mipc_last_error());
        w->failures++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct worker *workers;
    unsigned int nthreads, i, ok = 0, failures = 0;

    if (argc < 4) {
        fprintf(stderr, "usage: %s <nthreads> <ncalls> <prefix> [server]\n", argv[0]);
        return 2;
    }
    nthreads = (unsigned int)strtoul(argv[1], NULL, 10);
    ncalls = (unsigned int)strtoul(argv[2], NULL, 10);
    prefix = argv[3];
    if (argc > 4)
        server = argv[4];
    if (nthreads == 0 || strlen(prefix) > MIPC_NAME_MAX_LEN - 12) {
        fprintf(stderr, "stress: need at least one thread and a short prefix\n");
        return 2;
    }

    workers = calloc(nthreads, sizeof(*workers));
    if (workers == NULL || pthread_barrier_init(&registered, NULL, nthreads + 1) != 0) {
        fprintf(stderr, "stress: out of resources\n");
        return 2;
    }
    for (i = 0; i < nthreads; i++) {
        workers[i].index = i;
        if (pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]) != 0) {
            fprintf(stderr, "stress: pthread_create failed\n");
            return 2;
        }
    }
    pthread_barrier_wait(&registered);
    printf("ready\n");
    fflush(stdout);

    for (i = 0; i < nthreads; i++) {
        pthread_join(workers[i].tid, NULL);
        ok += workers[i].ok;
        failures += workers[i].failures;
    }
    pthread_barrier_destroy(&registered);
    free(workers);

    if (failures || ok != nthreads * ncalls) {
        printf("FAIL %u failures, %u of %u calls ok\n", failures, ok, nthreads * ncalls);
        return 1;
    }
    printf("ok %u\n", ok);
    return 0;
}
