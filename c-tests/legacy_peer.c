/* legacy_peer: a peer that puts the SPEC §2 bytes on the queues by hand, as a program built
 * against the original libmipc does. It uses mipc.h (and middleware_api.h) only for the
 * structs and constants and never calls a libmipc function: raw msgget/msgsnd/msgrcv.
 *
 *   legacy_peer call  <name> [server]   register <name>, call <server> (default "middleware"):
 *                                       ping, insert_entry, echo of 1 to 2048 bytes;
 *                                       prints "ok <calls>"
 *   legacy_peer serve <name>            register <name>, answer ping / insert_entry / echo
 *                                       until SIGTERM or SIGINT; prints "served <requests>"
 *
 * Both print "ready" once the relay has confirmed the registration (a hand-built ping to
 * "mipc_main" has been answered: the relay handles its root queue in order), check every
 * received message against SPEC §2 (exact size, so a mipc-rs extension leaking to a legacy
 * peer is caught), unregister and remove their own queue on every exit path.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <unistd.h>

#include "middleware_api.h"

#define MTEXT_HEADER_LEN offsetof(sysV_msg_payload_t, payload)
#define RELAY_NAME "mipc_main"
#define ANSWER_WAIT_SECONDS 10u

static char my_name[MIPC_NAME_MAX_LEN];
static int root_q = -1;
static int my_q = -1;
static int registered;
static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t alarm_fired;

static key_t root_key(void)
{
    const char *text = getenv("MIPC_ROOT_KEY");
    char *end;
    unsigned long value;

    if (text == NULL || *text == '\0')
        return (key_t)MIPC_MSG_ROOT_KEY;
    value = strtoul(text, &end, 0); /* decimal or 0x hex, as SPEC §2 says */
    if (*end != '\0' || value == 0) {
        fprintf(stderr, "legacy_peer: bad MIPC_ROOT_KEY %s\n", text);
        exit(2);
    }
    return (key_t)value;
}

static void put_name(char field[MIPC_NAME_MAX_LEN], const char *name)
{
    memset(field, 0, MIPC_NAME_MAX_LEN);
    memcpy(field, name, strlen(name)); /* callers checked strlen < MIPC_NAME_MAX_LEN */
}

/* One message to the relay's root queue; its SysV mtype is its msg_type (SPEC §2). */
static int send_to_relay(unsigned int msg_type, const char *dst, int sync_flag,
                         const void *payload, unsigned int size)
{
    static sysV_msg_t m;

    memset(&m, 0, sizeof(m));
    m.type = (long)msg_type;
    put_name(m.msg_payload.src_name, my_name);
    put_name(m.msg_payload.dst_name, dst);
    m.msg_payload.msg_hdr.msg_type = msg_type;
    m.msg_payload.msg_hdr.msg_size = size;
    m.msg_payload.msg_hdr.sync_flag = sync_flag;
    if (size > 0)
        memcpy(m.msg_payload.payload, payload, size);

    while (msgsnd(root_q, &m, MTEXT_HEADER_LEN + size, 0) != 0) {
        if (errno == EINTR && !stop_requested)
            continue;
        perror("legacy_peer: msgsnd to the root queue");
        return -1;
    }
    return 0;
}

/* Registers (hold = 1) or unregisters (hold = 0) my entry: a NOTICE to "mipc_main". */
static int send_notice(int hold)
{
    MIPC_THREAD_INFO_T info;

    memset(&info, 0, sizeof(info));
    info.flag_is_hold = hold ? MIPC_TRUE : MIPC_FALSE;
    info.thread_id = pthread_self();
    put_name(info.name, my_name);
    info.mqd = my_q;
    return send_to_relay(MIPC_MSG_TYPE_NOTICE, RELAY_NAME, 0, &info, sizeof(info));
}

/* Receives the next message of SysV type `type` (0: any) from my queue, waiting at most
 * `seconds` (0: until a message or SIGTERM), and checks it against SPEC §2. Returns 0 with
 * the message in *m, or -1. */
static int receive(sysV_msg_t *m, long type, unsigned int seconds)
{
    const sysV_msg_payload_t *p = &m->msg_payload;
    ssize_t got;

    alarm_fired = 0;
    alarm(seconds);
    do {
        got = msgrcv(my_q, m, sizeof(m->msg_payload), type, 0);
    } while (got < 0 && errno == EINTR && !alarm_fired && !stop_requested);
    alarm(0);

    if (got < 0) {
        if (alarm_fired)
            fprintf(stderr, "legacy_peer: no message of type %ld within %u s\n", type, seconds);
        else if (!stop_requested)
            perror("legacy_peer: msgrcv");
        return -1;
    }
    if ((size_t)got < MTEXT_HEADER_LEN || p->msg_hdr.msg_size > MIPC_MSG_MAX_LEN ||
        (size_t)got != MTEXT_HEADER_LEN + p->msg_hdr.msg_size) {
        fprintf(stderr, "legacy_peer: received %zd bytes for msg_size %u: not SPEC §2 bytes\n",
                got, p->msg_hdr.msg_size);
        return -1;
    }
    if (memchr(p->src_name, '\0', MIPC_NAME_MAX_LEN) == NULL ||
        memchr(p->dst_name, '\0', MIPC_NAME_MAX_LEN) == NULL) {
        fprintf(stderr, "legacy_peer: received a message with an unterminated name\n");
        return -1;
    }
    if (strcmp(p->dst_name, my_name) != 0) {
        fprintf(stderr, "legacy_peer: received a message for %s\n", p->dst_name);
        return -1;
    }
    return 0;
}

/* One synchronous call by hand: the request with mtype = api id, then the answer of that
 * mtype from my own queue, which must be exactly `answer_size` bytes from `server`. */
static int call(const char *server, unsigned int api, const void *in, unsigned int in_size,
                void *out, unsigned int answer_size)
{
    static sysV_msg_t answer;
    const sysV_msg_payload_t *p = &answer.msg_payload;

    if (send_to_relay(api, server, MIPC_MSG_SYNC_WAIT_FOREVER, in, in_size) != 0)
        return -1;
    if (receive(&answer, (long)api, ANSWER_WAIT_SECONDS) != 0)
        return -1;
    if (p->msg_hdr.msg_type != api || strcmp(p->src_name, server) != 0 ||
        p->msg_hdr.msg_size != answer_size) {
        fprintf(stderr, "legacy_peer: answer to api %u: type %u from %s with %u bytes, wanted "
                        "%u bytes from %s\n",
                api, p->msg_hdr.msg_type, p->src_name, p->msg_hdr.msg_size, answer_size, server);
        return -1;
    }
    memcpy(out, p->payload, answer_size);
    return 0;
}

static int ping(const char *dst)
{
    int result = -1;

    if (call(dst, MIPC_MSG_TYPE_PING, NULL, 0, &result, sizeof(result)) != 0)
        return -1;
    if (result != 0) {
        fprintf(stderr, "legacy_peer: ping %s answered %d\n", dst, result);
        return -1;
    }
    return 0;
}

static void cleanup(void)
{
    if (registered && send_notice(0) == 0)
        registered = 0;
    if (my_q >= 0 && msgctl(my_q, IPC_RMID, NULL) != 0 && errno != EINVAL && errno != EIDRM)
        perror("legacy_peer: removing my queue");
    my_q = -1;
}

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
    /* Removing the queue wakes a blocked msgrcv even if the signal came just before it. */
    if (my_q >= 0)
        msgctl(my_q, IPC_RMID, NULL);
}

static void on_alarm(int sig)
{
    (void)sig;
    alarm_fired = 1;
}

static void install_handlers(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop; /* no SA_RESTART: msgrcv must return EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
}

static int start(const char *name)
{
    if (strlen(name) == 0 || strlen(name) >= MIPC_NAME_MAX_LEN) {
        fprintf(stderr, "legacy_peer: name must be 1 to %d bytes\n", MIPC_NAME_MAX_LEN - 1);
        return -1;
    }
    memcpy(my_name, name, strlen(name) + 1);

    root_q = msgget(root_key(), 0);
    if (root_q < 0) {
        perror("legacy_peer: no root queue (is mipc_main running?)");
        return -1;
    }
    my_q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    if (my_q < 0) {
        perror("legacy_peer: msgget(IPC_PRIVATE)");
        return -1;
    }
    if (send_notice(1) != 0)
        return -1;
    registered = 1;
    if (ping(RELAY_NAME) != 0) {
        fprintf(stderr, "legacy_peer: the relay did not confirm %s\n", my_name);
        return -1;
    }
    printf("ready\n");
    fflush(stdout);
    return 0;
}

static int run_calls(const char *server)
{
    static const unsigned int echo_sizes[] = {1, 2, 77, 1000, MIPC_MSG_MAX_LEN - 1,
                                              MIPC_MSG_MAX_LEN};
    static unsigned char in[MIPC_MSG_MAX_LEN], out[MIPC_MSG_MAX_LEN], want[MIPC_MSG_MAX_LEN];
    unsigned int table, i, k;
    int calls = 0;

    if (ping(server) != 0)
        return -1;
    calls++;
    printf("legacy_peer: ping %s -> 0\n", server);

    for (table = 5; table <= 9; table += 4) {
        middleware_insert_entry_IN_T input;
        middleware_insert_entry_OUT_T output;
        int expected;

        memset(&input, 0, sizeof(input));
        input.table_id = table;
        input.size = table == 5 ? 20u : MIDDLEWARE_ENTRY_MAX;
        for (i = 0; i < input.size; i++)
            input.entry[i] = (unsigned char)(i ^ table);
        expected = middleware_entry_checksum(table, input.entry, input.size);
        if (call(server, MIDDLEWARE_API_INSERT_ENTRY, &input, sizeof(input), &output,
                 sizeof(output)) != 0)
            return -1;
        calls++;
        printf("legacy_peer: insert_entry(table %u, %u bytes) -> ret %d\n", table, input.size,
               output.ret);
        if (output.ret != expected) {
            fprintf(stderr, "legacy_peer: expected ret %d\n", expected);
            return -1;
        }
    }

    for (k = 0; k < sizeof(echo_sizes) / sizeof(echo_sizes[0]); k++) {
        unsigned int size = echo_sizes[k];

        for (i = 0; i < size; i++)
            in[i] = (unsigned char)(i * 13u + k);
        middleware_reverse(want, in, size);
        if (call(server, MIDDLEWARE_API_ECHO, in, size, out, size) != 0)
            return -1;
        calls++;
        if (memcmp(out, want, size) != 0) {
            fprintf(stderr, "legacy_peer: echo of %u bytes answered other bytes\n", size);
            return -1;
        }
        printf("legacy_peer: echo(%u bytes) -> reversed ok\n", size);
    }
    return calls;
}

/* Answers one request the way a legacy server does: mtype = api id, names swapped. */
static int answer(const sysV_msg_t *req)
{
    static unsigned char out[MIPC_MSG_MAX_LEN];
    const sysV_msg_payload_t *p = &req->msg_payload;
    unsigned int api = p->msg_hdr.msg_type, size = p->msg_hdr.msg_size;

    switch (api) {
    case MIPC_MSG_TYPE_PING: {
        int result = 0;

        return send_to_relay(api, p->src_name, 0, &result, sizeof(result));
    }
    case MIDDLEWARE_API_INSERT_ENTRY: {
        middleware_insert_entry_IN_T in;
        middleware_insert_entry_OUT_T o;

        memset(&in, 0, sizeof(in));
        if (size == sizeof(in))
            memcpy(&in, p->payload, sizeof(in));
        o.ret = size != sizeof(in) || in.size > MIDDLEWARE_ENTRY_MAX
                    ? MIDDLEWARE_BAD_ENTRY
                    : middleware_entry_checksum(in.table_id, in.entry, in.size);
        printf("legacy_peer: insert_entry(table %u, %u bytes) from %s -> ret %d\n", in.table_id,
               in.size, p->src_name, o.ret);
        fflush(stdout);
        return send_to_relay(api, p->src_name, 0, &o, sizeof(o));
    }
    case MIDDLEWARE_API_ECHO:
        middleware_reverse(out, p->payload, size);
        return send_to_relay(api, p->src_name, 0, out, size);
    default:
        fprintf(stderr, "legacy_peer: api %u from %s is not served\n", api, p->src_name);
        return 0;
    }
}

static int run_server(void)
{
    static sysV_msg_t req;
    int served = 0;

    while (!stop_requested) {
        if (receive(&req, 0, 0) != 0)
            break;
        if (req.type != (long)req.msg_payload.msg_hdr.msg_type) {
            fprintf(stderr, "legacy_peer: mtype %ld differs from msg_type %u\n", req.type,
                    req.msg_payload.msg_hdr.msg_type);
            return -1;
        }
        if (answer(&req) != 0)
            return -1;
        served++;
    }
    if (!stop_requested)
        return -1;
    printf("served %d\n", served);
    return 0;
}

int main(int argc, char **argv)
{
    int calls;

    if (argc < 3 || (strcmp(argv[1], "call") != 0 && strcmp(argv[1], "serve") != 0)) {
        fprintf(stderr, "usage: %s call <name> [server] | serve <name>\n", argv[0]);
        return 2;
    }
    install_handlers();
    atexit(cleanup);
    if (start(argv[2]) != 0)
        return 1;

    if (strcmp(argv[1], "serve") == 0)
        return run_server() == 0 ? 0 : 1;

    calls = run_calls(argc > 3 ? argv[3] : MIDDLEWARE_NAME);
    if (calls < 0) {
        printf("FAIL\n");
        return 1;
    }
    printf("ok %d\n", calls);
    return 0;
}
