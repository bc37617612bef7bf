/* rawpeer: hand-written C peers of the minimal C relay (crelay): raw msgget/msgsnd/msgrcv
 * and the SPEC §2 bytes, no library. A call crosses the same 4 queue hops as a MIPC sync
 * call (caller -> relay -> server -> relay -> caller), so timing it against the mipc-rs call
 * isolates what mipc-rs's relay and library add.
 *
 *   MIPC_ROOT_KEY=KEY rawpeer serve NAME
 *       registers NAME (a NOTICE), prints "ready", answers every request with its own
 *       payload (echo) until stdin closes; then unregisters and removes its queue.
 *   MIPC_ROOT_KEY=KEY rawpeer call NAME SERVER SIZE COUNT WARMUP START SAMPLES_FILE
 *       registers NAME, waits for the start (START: see bench_start_gate in common.h), makes
 *       WARMUP untimed then COUNT timed calls of SIZE payload bytes to SERVER, writes the
 *       samples (uint32 ns; SAMPLES_FILE "-": none) and prints
 *       "RESULT n=COUNT t_start=NS t_end=NS".
 *
 * With BENCH_IDLE_THREAD=1 in its environment, a rawpeer first starts a thread that only
 * sleeps (as libmipc's waker thread used to): bench/placement_rounds.py's "rawt" peers.
 *
 * With BENCH_ANSWER_BACK=1 (on the server and its callers), a caller puts its queue id in
 * the first 4 bytes of its payload (SIZE >= 4) and the server answers straight to that queue:
 * 3 hops, the C counterpart of mipc-rs's answers straight back (bench/calls_check.py
 * --c-answer-back).
 */
#include "common.h"

#include <poll.h>

static const char *prog = "rawpeer";
static int root_q = -1;
static int my_q = -1;
static char my_name[MIPC_NAME_MAX_LEN];

static void leave(void)
{
    if (my_q >= 0) {
        bench_notice(root_q, my_name, my_q, 0);
        msgctl(my_q, IPC_RMID, NULL);
        my_q = -1;
    }
}

static void join(const char *name)
{
    root_q = msgget(bench_root_key(prog), 0);
    if (root_q < 0)
        bench_die(prog, "msgget(root key)");
    bench_put_name(my_name, name);
    my_q = bench_private_queue(prog);
    atexit(leave);
    if (bench_notice(root_q, my_name, my_q, 1) != 0)
        bench_die(prog, "msgsnd(NOTICE)");
}

static int answer_back(void)
{
    const char *v = getenv("BENCH_ANSWER_BACK");
    return v != NULL && strcmp(v, "1") == 0;
}

static int serve(void)
{
    static sysV_msg_t m;
    char from[MIPC_NAME_MAX_LEN];
    int back = answer_back();

    bench_on_stdin_eof(bench_exit_now);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        ssize_t got = msgrcv(my_q, &m, sizeof(m.msg_payload), 0, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EIDRM || errno == EINVAL)
                pause(); /* our queue went away: the stdin thread is exiting */
            bench_die(prog, "msgrcv");
        }
        memcpy(from, m.msg_payload.src_name, MIPC_NAME_MAX_LEN);
        memcpy(m.msg_payload.src_name, my_name, MIPC_NAME_MAX_LEN);
        memcpy(m.msg_payload.dst_name, from, MIPC_NAME_MAX_LEN);
        m.msg_payload.msg_hdr.sync_flag = 0;
        int to = root_q;
        if (back && m.msg_payload.msg_hdr.msg_size >= sizeof to)
            memcpy(&to, m.msg_payload.payload, sizeof to);
        while (msgsnd(to, &m, (size_t)got, 0) != 0) {
            if (errno != EINTR)
                bench_die(prog, "msgsnd");
        }
    }
}

static int call(char **argv)
{
    static sysV_msg_t m, r;
    const char *server = argv[0];
    unsigned int size = (unsigned int)atoi(argv[1]);
    long count = atol(argv[2]), warmup = atol(argv[3]), i;
    const char *start = argv[4];
    uint64_t t_start, t_end;
    const char *path = argv[5];
    uint64_t *samples;
    size_t len;

    if (size > MIPC_MSG_MAX_LEN || count <= 0 || warmup < 0) {
        fprintf(stderr, "%s: bad arguments\n", prog);
        return 2;
    }
    samples = calloc((size_t)count, sizeof(*samples));
    if (samples == NULL)
        bench_die(prog, "calloc");
    len = bench_build(&m, BENCH_API_ECHO, my_name, server, BENCH_API_ECHO, -1, size);
    bench_fill(m.msg_payload.payload, size, 3);
    if (answer_back()) {
        if (size < sizeof my_q) {
            fprintf(stderr, "%s: BENCH_ANSWER_BACK needs SIZE >= 4\n", prog);
            return 2;
        }
        memcpy(m.msg_payload.payload, &my_q, sizeof my_q);
    }
    bench_start_gate(start);
    t_start = bench_now_ns();
    for (i = -warmup; i < count; i++) {
        uint64_t t0 = bench_now_ns();
        while (msgsnd(root_q, &m, len, 0) != 0) {
            if (errno != EINTR)
                bench_die(prog, "msgsnd");
        }
        while (msgrcv(my_q, &r, sizeof(r.msg_payload), BENCH_API_ECHO, 0) < 0) {
            if (errno != EINTR)
                bench_die(prog, "msgrcv");
        }
        if (i >= 0)
            samples[i] = bench_now_ns() - t0;
        if (i == -1)
            t_start = bench_now_ns();
    }
    t_end = bench_now_ns();
    if (strcmp(path, "-") != 0)
        bench_write_samples(prog, path, samples, (size_t)count);
    printf("RESULT n=%ld t_start=%llu t_end=%llu\n", count, (unsigned long long)t_start,
           (unsigned long long)t_end);
    free(samples);
    return 0;
}

static void *idle_thread(void *arg)
{
    (void)arg;
    for (;;)
        poll(NULL, 0, -1);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *idle = getenv("BENCH_IDLE_THREAD");
    pthread_t t;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (idle != NULL && strcmp(idle, "1") == 0 && pthread_create(&t, NULL, idle_thread, NULL) != 0)
        bench_die(prog, "pthread_create");
    if (argc == 3 && strcmp(argv[1], "serve") == 0) {
        join(argv[2]);
        return serve();
    }
    if (argc == 9 && strcmp(argv[1], "call") == 0) {
        join(argv[2]);
        return call(argv + 3);
    }
    fprintf(stderr, "usage: %s serve NAME | call NAME SERVER SIZE COUNT WARMUP START FILE\n",
            prog);
    return 2;
}
