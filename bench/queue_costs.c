/* queue_costs: what the kernel's SysV message queue calls cost on this machine, alone (no
 * relay, no library): the figures behind batches (docs/PROTOCOL.md §10).
 *
 *   bench/build/queue_costs [rounds]      (default 2000; built by make -f bench/bench.mk)
 *
 * Prints, in microseconds per call: msgrcv of a 100-, 1600- and 3200-byte message from a
 * prefilled queue; msgsnd with IPC_NOWAIT to a full queue (it fails) of a 188- and a
 * 2124-byte message (a 100-byte request with its tag and sender trailer, and a full batch);
 * msgctl(IPC_STAT). One private queue, removed at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <time.h>

struct msg {
    long type;
    char text[8192];
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct msg m;

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 2000;
    int q = msgget(IPC_PRIVATE, 0600);
    static const int receive_sizes[] = {100, 1600, 3200};
    static const int send_sizes[] = {188, 2124};
    struct msqid_ds ds;
    unsigned int i;
    int r, k, calls;
    double t0;

    if (q < 0 || rounds <= 0) {
        fprintf(stderr, "queue_costs: %s\n", q < 0 ? strerror(errno) : "rounds must be > 0");
        return 1;
    }
    m.type = 1;
    memset(m.text, 1, sizeof(m.text));
    for (i = 0; i < sizeof(receive_sizes) / sizeof(receive_sizes[0]); i++) {
        int size = receive_sizes[i], per = 16000 / size;
        double spent = 0;
        long got = 0;

        for (r = 0; r < rounds; r++) {
            for (k = 0; k < per; k++)
                msgsnd(q, &m, (size_t)size, IPC_NOWAIT);
            t0 = now();
            for (k = 0; k < per; k++)
                if (msgrcv(q, &m, sizeof(m.text), 0, IPC_NOWAIT) >= 0)
                    got++;
            spent += now() - t0;
        }
        printf("msgrcv %4d B:             %.3f us\n", size, spent / (double)got * 1e6);
    }
    while (msgsnd(q, &m, 100, IPC_NOWAIT) == 0)
        ;
    calls = rounds * 100;
    for (i = 0; i < sizeof(send_sizes) / sizeof(send_sizes[0]); i++) {
        t0 = now();
        for (k = 0; k < calls; k++)
            msgsnd(q, &m, (size_t)send_sizes[i], IPC_NOWAIT);
        printf("msgsnd %4d B, queue full: %.3f us\n", send_sizes[i],
               (now() - t0) / calls * 1e6);
    }
    t0 = now();
    for (k = 0; k < calls; k++)
        msgctl(q, IPC_STAT, &ds);
    printf("msgctl IPC_STAT:          %.3f us\n", (now() - t0) / calls * 1e6);
    msgctl(q, IPC_RMID, NULL);
    return 0;
}
