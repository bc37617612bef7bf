/* reg1000: fills a relay's table for the RSS figure. Raw C, no library.
 *
 *   MIPC_ROOT_KEY=KEY reg1000 COUNT PREFIX
 *
 * Creates COUNT private queues and registers each with a hand-built NOTICE as PREFIX<i>;
 * then pings "mipc_main" from the last entry and waits for the answer (the relay handles its
 * root queue in order, so every entry is registered by then), prints "ready" and waits until
 * stdin closes; then unregisters every entry and removes every queue (also on SIGTERM).
 */
#include "common.h"

#include <signal.h>

static const char *prog = "reg1000";
static int root_q = -1;
static int *queues;
static int n_queues;
static const char *prefix;

static void name_of(char out[MIPC_NAME_MAX_LEN], int i)
{
    snprintf(out, MIPC_NAME_MAX_LEN, "%s%d", prefix, i);
}

static void cleanup(void)
{
    char name[MIPC_NAME_MAX_LEN];
    int i;

    for (i = 0; i < n_queues; i++) {
        if (queues[i] < 0)
            continue;
        name_of(name, i);
        bench_notice(root_q, name, queues[i], 0);
        msgctl(queues[i], IPC_RMID, NULL);
        queues[i] = -1;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    exit(1); /* runs cleanup() */
}

static void on_alarm(int sig)
{
    (void)sig;
}

int main(int argc, char **argv)
{
    static sysV_msg_t m;
    char name[MIPC_NAME_MAX_LEN];
    struct sigaction sa;
    int count, i;
    size_t len;
    ssize_t got;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 3 || (count = atoi(argv[1])) <= 0) {
        fprintf(stderr, "usage: %s COUNT PREFIX\n", prog);
        return 2;
    }
    prefix = argv[2];
    root_q = msgget(bench_root_key(prog), 0);
    if (root_q < 0)
        bench_die(prog, "msgget(root key)");
    queues = malloc(sizeof(int) * (size_t)count);
    if (queues == NULL)
        bench_die(prog, "malloc");
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    atexit(cleanup);

    for (i = 0; i < count; i++) {
        queues[i] = bench_private_queue(prog);
        n_queues = i + 1;
        name_of(name, i);
        if (bench_notice(root_q, name, queues[i], 1) != 0)
            bench_die(prog, "msgsnd(NOTICE)");
    }
    /* A ping from the last entry: answered once the relay has handled every NOTICE. */
    len = bench_build(&m, MIPC_MSG_TYPE_PING, name, MIPC_MAIN_NAME, MIPC_MSG_TYPE_PING, 10000, 0);
    if (msgsnd(root_q, &m, len, 0) != 0)
        bench_die(prog, "msgsnd(PING)");
    alarm(20);
    got = msgrcv(queues[count - 1], &m, sizeof(m.msg_payload), MIPC_MSG_TYPE_PING, 0);
    alarm(0);
    if (got < 0) {
        fprintf(stderr, "%s: no answer to the ping from the relay: %s\n", prog, strerror(errno));
        return 1;
    }
    printf("ready %d\n", count);

    bench_on_stdin_eof(bench_exit_now);
    for (;;)
        pause();
}
