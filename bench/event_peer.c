/* event_peer: the events phase of the benchmark (bench/run_bench.py), linked against libmipc.
 * Kept apart from mipc_peer.c, which a previous release's library (BENCH_BASELINE) must link.
 *
 *   event_peer sub NAME PATTERN EXPECT
 *       mipc_init(NAME), mipc_subscribe(PATTERN), prints "ready <fd>", then receives events
 *       until EXPECT arrived or stdin closes; prints "RESULT got=.. t_first=.. t_last=..".
 *   event_peer pub NAME EVENT COUNT SIZE START
 *       mipc_init(NAME), waits for the start (bench_start_gate), publishes COUNT events of
 *       SIZE bytes; prints "RESULT sent=.. errors=.. t_start=.. t_end=.. cpu_ns=.." (cpu_ns:
 *       the process's user + system CPU time over the publishing loop).
 */
#include "common.h"

#include <stdatomic.h>
#include <time.h>

static const char *prog = "event_peer";
static int my_fd;

static void init(const char *name)
{
    my_fd = mipc_init(name);
    if (my_fd == MIPC_ERROR)
        bench_die(prog, mipc_last_error());
    bench_qlog(my_fd);
}

static uint64_t cpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int publish(char **argv)
{
    static unsigned char data[MIPC_EVENT_DATA_MAX];
    const char *event = argv[0];
    long count = atol(argv[1]), i, errors = 0;
    unsigned int size = (unsigned int)atoi(argv[2]);
    uint64_t t_start, t_end, c_start, c_end;

    if (count <= 0 || size > MIPC_EVENT_DATA_MAX) {
        fprintf(stderr, "%s: bad arguments\n", prog);
        return 2;
    }
    bench_fill(data, size, 5);
    bench_start_gate(argv[3]);
    c_start = cpu_now_ns();
    t_start = bench_now_ns();
    for (i = 0; i < count; i++) {
        if (mipc_publish(event, data, size) != MIPC_OK && errors++ == 0)
            fprintf(stderr, "%s: mipc_publish: %s\n", prog, mipc_last_error());
    }
    t_end = bench_now_ns();
    c_end = cpu_now_ns();
    printf("RESULT sent=%ld errors=%ld t_start=%llu t_end=%llu cpu_ns=%llu\n", count - errors,
           errors, (unsigned long long)t_start, (unsigned long long)t_end,
           (unsigned long long)(c_end - c_start));
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

static int subscribe(const char *pattern, long expect)
{
    static sysV_msg_t m;

    if (mipc_subscribe(pattern) != MIPC_OK)
        bench_die(prog, mipc_last_error());
    bench_on_stdin_eof(report);
    printf("ready %d\n", my_fd);
    for (;;) {
        int n = mipc_mq_receive(my_fd, &m, (int)MIPC_DEFAULT_MAX_MSG_SIZE, 0, -1);
        uint64_t now;
        if (n < 0)
            break;
        if (m.msg_payload.msg_hdr.msg_type != MIPC_MSG_TYPE_EVENT)
            continue;
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
    if (argc == 5 && strcmp(argv[1], "sub") == 0) {
        init(argv[2]);
        return subscribe(argv[3], atol(argv[4]));
    }
    if (argc == 7 && strcmp(argv[1], "pub") == 0) {
        init(argv[2]);
        return publish(argv + 3);
    }
    fprintf(stderr, "usage: %s sub NAME PATTERN EXPECT | pub NAME EVENT COUNT SIZE START\n", prog);
    return 2;
}
