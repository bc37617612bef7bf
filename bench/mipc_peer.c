/* mipc_peer: the benchmark's libmipc programs (the way firmware daemons use the C API).
 *
 *   mipc_peer serve NAME
 *       mipc_init(NAME), prints "ready", then the legacy server loop: mipc_mq_receive(fd, buf,
 *       MIPC_DEFAULT_MAX_MSG_SIZE, 0, -1), mipc_receive_msg to take it apart, answer with its
 *       own payload (echo) through mipc_response_msg. Exits normally when stdin closes.
 *   mipc_peer call NAME SERVER SIZE COUNT WARMUP START SAMPLES_FILE
 *       mipc_init(NAME), waits for the start (START: see bench_start_gate in common.h), then
 *       WARMUP untimed and COUNT timed mipc_send_sync_msg(SERVER, 1, in, SIZE, out, SIZE, -1);
 *       writes the samples (uint32 ns; "-": none); prints "RESULT n=.. t_start=.. t_end=..".
 *       BENCH_CALL_TIMEOUT_MS in the environment sets the calls' timeout instead of -1.
 *   mipc_peer send NAME DST_PREFIX NDST COUNT SIZE START
 *       mipc_init(NAME), waits for the start, then COUNT async mipc_send_msg(NAME, DST_PREFIX<i % NDST>, 2, ...)
 *       of SIZE bytes; prints "RESULT sent=.. errors=.. t_start=.. t_end=..".
 *   mipc_peer recv NAME EXPECT
 *       mipc_init(NAME), prints "ready QUEUE_ID", counts the messages it receives until EXPECT arrived
 *       or stdin closes; prints "RESULT got=.. t_first=.. t_last=..".
 */
#include "common.h"

#include <stdatomic.h>

static const char *prog = "mipc_peer";
static char my_name[MIPC_NAME_MAX_LEN];
static int my_fd = -1;

static void init(const char *name)
{
    bench_put_name(my_name, name);
    my_fd = mipc_init(my_name);
    if (my_fd < 0) {
        fprintf(stderr, "%s: mipc_init(%s) failed: %s\n", prog, name, mipc_last_error());
        exit(1);
    }
    bench_qlog(my_fd);
}

static int serve(void)
{
    static sysV_msg_t m;
    char src[MIPC_NAME_MAX_LEN];
    unsigned int api;

    bench_on_stdin_eof(bench_exit_now);
    printf("ready\n");
    for (;;) {
        int got = mipc_mq_receive(my_fd, &m, (int)MIPC_DEFAULT_MAX_MSG_SIZE, 0, -1);
        if (got < 0)
            break;
        if (mipc_receive_msg(src, &api, &m) != MIPC_OK)
            continue;
        if (m.msg_payload.msg_hdr.sync_flag == 0)
            continue; /* nobody waits for an answer */
        if (mipc_response_msg(src, my_name, api, m.msg_payload.payload,
                              m.msg_payload.msg_hdr.msg_size) != MIPC_OK)
            fprintf(stderr, "%s: mipc_response_msg: %s\n", prog, mipc_last_error());
    }
    /* The queue was removed: the stdin thread is running exit(). */
    for (;;)
        pause();
    return 0;
}

static int call(char **argv)
{
    static unsigned char in[MIPC_MSG_MAX_LEN], out[MIPC_MSG_MAX_LEN];
    const char *server = argv[0];
    unsigned int size = (unsigned int)atoi(argv[1]);
    long count = atol(argv[2]), warmup = atol(argv[3]), i;
    const char *start = argv[4];
    uint64_t t_start, t_end;
    const char *path = argv[5];
    uint64_t *samples;
    int timeout = -1;

    if (size > MIPC_MSG_MAX_LEN || count <= 0 || warmup < 0) {
        fprintf(stderr, "%s: bad arguments\n", prog);
        return 2;
    }
    samples = calloc((size_t)count, sizeof(*samples));
    if (samples == NULL)
        bench_die(prog, "calloc");
    if (getenv("BENCH_CALL_TIMEOUT_MS") != NULL)
        timeout = atoi(getenv("BENCH_CALL_TIMEOUT_MS"));
    bench_fill(in, size, 5);
    bench_start_gate(start);
    t_start = bench_now_ns();
    for (i = -warmup; i < count; i++) {
        uint64_t t0 = bench_now_ns();
        int rc = mipc_send_sync_msg(server, BENCH_API_ECHO, in, size, out, size, timeout);
        uint64_t t1 = bench_now_ns();
        if (rc != MIPC_OK) {
            fprintf(stderr, "%s: %s: call %ld: mipc_send_sync_msg(%s): %s\n", prog, my_name, i,
                    server, mipc_last_error());
            return 1;
        }
        if (i >= 0)
            samples[i] = t1 - t0;
        if (i == -1)
            t_start = bench_now_ns();
    }
    t_end = bench_now_ns();
    if (size > 0 && memcmp(in, out, size) != 0) {
        fprintf(stderr, "%s: the answer differs from the request\n", prog);
        return 1;
    }
    if (strcmp(path, "-") != 0)
        bench_write_samples(prog, path, samples, (size_t)count);
    printf("RESULT n=%ld t_start=%llu t_end=%llu\n", count, (unsigned long long)t_start,
           (unsigned long long)t_end);
    free(samples);
    return 0;
}

static int send_flood(char **argv)
{
    static unsigned char in[MIPC_MSG_MAX_LEN];
    char dst[64][MIPC_NAME_MAX_LEN];
    const char *prefix = argv[0];
    int ndst = atoi(argv[1]), d;
    long count = atol(argv[2]), i, errors = 0;
    unsigned int size = (unsigned int)atoi(argv[3]);
    const char *start = argv[4];
    uint64_t t_start, t_end;

    if (ndst <= 0 || ndst > 64 || count <= 0 || size > MIPC_MSG_MAX_LEN) {
        fprintf(stderr, "%s: bad arguments\n", prog);
        return 2;
    }
    for (d = 0; d < ndst; d++)
        snprintf(dst[d], sizeof(dst[d]), "%s%d", prefix, d);
    bench_fill(in, size, 9);
    bench_start_gate(start);
    t_start = bench_now_ns();
    for (i = 0; i < count; i++) {
        if (mipc_send_msg(my_name, dst[i % ndst], BENCH_API_FLOOD, in, size, 0) != MIPC_OK) {
            if (errors++ == 0)
                fprintf(stderr, "%s: %s: mipc_send_msg: %s\n", prog, my_name, mipc_last_error());
        }
    }
    t_end = bench_now_ns();
    printf("RESULT sent=%ld errors=%ld t_start=%llu t_end=%llu\n", count - errors, errors,
           (unsigned long long)t_start, (unsigned long long)t_end);
    return 0;
}

static atomic_long got;
static atomic_ullong t_first, t_last;
static atomic_int reported;

static void report(void)
{
    int expected = 0;
    if (atomic_compare_exchange_strong(&reported, &expected, 1)) {
        printf("RESULT got=%ld t_first=%llu t_last=%llu\n", atomic_load(&got),
               atomic_load(&t_first), atomic_load(&t_last));
        fflush(stdout);
        exit(0);
    }
    for (;;)
        pause();
}

static int recv_flood(long expect)
{
    static sysV_msg_t m;

    bench_on_stdin_eof(report);
    printf("ready %d\n", my_fd);
    for (;;) {
        int n = mipc_mq_receive(my_fd, &m, (int)MIPC_DEFAULT_MAX_MSG_SIZE, 0, -1);
        uint64_t now;
        if (n < 0)
            break;
        now = bench_now_ns();
        if (atomic_load_explicit(&got, memory_order_relaxed) == 0)
            atomic_store(&t_first, now);
        atomic_store_explicit(&t_last, now, memory_order_relaxed);
        if (atomic_fetch_add(&got, 1) + 1 >= expect)
            report();
    }
    for (;;)
        pause();
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "serve") == 0) {
        init(argv[2]);
        return serve();
    }
    if (argc == 9 && strcmp(argv[1], "call") == 0) {
        init(argv[2]);
        return call(argv + 3);
    }
    if (argc == 8 && strcmp(argv[1], "send") == 0) {
        init(argv[2]);
        return send_flood(argv + 3);
    }
    if (argc == 4 && strcmp(argv[1], "recv") == 0) {
        init(argv[2]);
        return recv_flood(atol(argv[3]));
    }
    fprintf(stderr,
            "usage: %s serve NAME | call NAME SERVER SIZE COUNT WARMUP START FILE |\n"
            "       send NAME DST_PREFIX NDST COUNT SIZE START | recv NAME EXPECT\n",
            prog);
    return 2;
}
