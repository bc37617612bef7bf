/* pingpong: the floor. Raw SysV ping-pong between two processes over two private queues,
 * no library and no relay: 2 queue hops per round trip.
 *
 *   pingpong SIZE COUNT WARMUP SAMPLES_FILE
 *
 * Each message is a SPEC §2 message with SIZE payload bytes (msgsnd size 76 + SIZE), the
 * same bytes a MIPC call of that payload puts on a queue. The parent times COUNT round trips
 * (after WARMUP untimed ones) and writes the samples (uint32 ns) to SAMPLES_FILE.
 * Both queues are removed on every exit path of the parent.
 */
#include "common.h"

#include <signal.h>
#include <sys/wait.h>

static const char *prog = "pingpong";
static int q_ping = -1, q_pong = -1;

static void remove_queues(void)
{
    if (q_ping >= 0)
        msgctl(q_ping, IPC_RMID, NULL);
    if (q_pong >= 0)
        msgctl(q_pong, IPC_RMID, NULL);
    q_ping = q_pong = -1;
}

static void child(size_t len)
{
    static sysV_msg_t m;
    for (;;) {
        ssize_t got = msgrcv(q_ping, &m, sizeof(m.msg_payload), 0, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            _exit(errno == EIDRM ? 0 : 1);
        }
        if (m.type == 2)
            _exit(0);
        if (msgsnd(q_pong, &m, len, 0) != 0)
            _exit(1);
    }
}

int main(int argc, char **argv)
{
    static sysV_msg_t m, r;
    unsigned int size;
    long count, warmup, i;
    uint64_t *samples;
    size_t len;
    pid_t pid;
    int status;

    if (argc != 5) {
        fprintf(stderr, "usage: %s SIZE COUNT WARMUP SAMPLES_FILE\n", prog);
        return 2;
    }
    size = (unsigned int)atoi(argv[1]);
    count = atol(argv[2]);
    warmup = atol(argv[3]);
    if (size > MIPC_MSG_MAX_LEN || count <= 0 || warmup < 0) {
        fprintf(stderr, "%s: bad arguments\n", prog);
        return 2;
    }
    samples = calloc((size_t)count, sizeof(*samples));
    if (samples == NULL)
        bench_die(prog, "calloc");

    q_ping = bench_private_queue(prog);
    q_pong = bench_private_queue(prog);
    atexit(remove_queues);

    len = bench_build(&m, BENCH_API_ECHO, "ping", "pong", BENCH_API_ECHO, -1, size);
    bench_fill(m.msg_payload.payload, size, 7);

    pid = fork();
    if (pid < 0)
        bench_die(prog, "fork");
    if (pid == 0)
        child(len);

    for (i = -warmup; i < count; i++) {
        uint64_t t0 = bench_now_ns();
        if (msgsnd(q_ping, &m, len, 0) != 0)
            bench_die(prog, "msgsnd");
        for (;;) {
            if (msgrcv(q_pong, &r, sizeof(r.msg_payload), 0, 0) >= 0)
                break;
            if (errno != EINTR)
                bench_die(prog, "msgrcv");
        }
        if (i >= 0)
            samples[i] = bench_now_ns() - t0;
    }
    m.type = 2;
    if (msgsnd(q_ping, &m, BENCH_HDR_LEN, 0) != 0)
        kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    bench_write_samples(prog, argv[4], samples, (size_t)count);
    printf("RESULT n=%ld\n", count);
    free(samples);
    return 0;
}
