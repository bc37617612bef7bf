/* crelay: the design's own floor. A minimal blocking relay in C: no library, no checks.
 * It is also the "bare single-thread msgrcv -> msgsnd forwarding loop" of the throughput
 * table (the most a one-thread relay can forward on this machine).
 *
 *   MIPC_ROOT_KEY=KEY crelay
 *
 * Makes the root queue of KEY, prints "ready", then loops: blocking msgrcv (type 0) on the
 * root queue; a NOTICE (MIPC_MSG_TYPE_NOTICE) adds or removes (name, queue) in a small table;
 * any other message is sent on unchanged to the queue of its dst_name, with IPC_NOWAIT as
 * mipc_main does (a message to an unknown name or a full queue is dropped and counted).
 * Stops when stdin closes or on SIGTERM: removes its root queue and prints
 * "RESULT forwarded=N dropped=N full=N notices=N".
 */
#include "common.h"

#include <signal.h>

#define MAX_ENTRIES 256

static const char *prog = "crelay";
static int root_q = -1;

struct entry {
    char name[MIPC_NAME_MAX_LEN];
    int q;
};
static struct entry table[MAX_ENTRIES];
static int n_entries;

static void remove_root(void)
{
    if (root_q >= 0)
        msgctl(root_q, IPC_RMID, NULL); /* wakes the loop with EIDRM */
}

static void on_term(int sig)
{
    (void)sig;
    remove_root();
}

static int find(const char *name)
{
    int i;
    for (i = 0; i < n_entries; i++)
        if (strncmp(table[i].name, name, MIPC_NAME_MAX_LEN) == 0)
            return i;
    return -1;
}

static void notice(const sysV_msg_t *m)
{
    MIPC_THREAD_INFO_T info;
    int i;

    memcpy(&info, m->msg_payload.payload, sizeof(info));
    info.name[MIPC_NAME_MAX_LEN - 1] = '\0';
    i = find(info.name);
    if (info.flag_is_hold) {
        if (i < 0) {
            if (n_entries == MAX_ENTRIES)
                return;
            i = n_entries++;
            memcpy(table[i].name, info.name, MIPC_NAME_MAX_LEN);
        }
        table[i].q = info.mqd;
    } else if (i >= 0) {
        table[i] = table[--n_entries];
    }
}

int main(void)
{
    static sysV_msg_t m;
    unsigned long forwarded = 0, dropped = 0, full = 0, notices = 0;
    struct sigaction sa;
    key_t key = bench_root_key(prog);

    root_q = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
    if (root_q < 0)
        bench_die(prog, "msgget(root key)");
    bench_qlog(root_q);
    atexit(remove_root);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    bench_on_stdin_eof(remove_root);

    printf("ready\n");
    fflush(stdout);
    fprintf(stderr, "crelay: ready: key %#x, root queue %d\n", (unsigned)key, root_q);

    for (;;) {
        ssize_t got = msgrcv(root_q, &m, sizeof(m.msg_payload), 0, MSG_NOERROR);
        int i;

        if (got < 0) {
            if (errno == EINTR)
                continue;
            break; /* EIDRM: stopped */
        }
        if (m.type == (long)MIPC_MSG_TYPE_NOTICE) {
            notice(&m);
            notices++;
            continue;
        }
        i = find(m.msg_payload.dst_name);
        if (i < 0) {
            dropped++;
            continue;
        }
        /* Like mipc_main, never block on a full destination: drop and count. */
        if (msgsnd(table[i].q, &m, (size_t)got, IPC_NOWAIT) == 0)
            forwarded++;
        else
            full++;
    }
    root_q = -1;
    printf("RESULT forwarded=%lu dropped=%lu full=%lu notices=%lu\n", forwarded, dropped, full,
           notices);
    return 0;
}
