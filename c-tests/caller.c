/* caller: makes the calls a reliability test scripts, and prints what happened.
 *
 *   caller NAME COMMAND...
 *
 * Registers NAME (prints "ready"), then runs the commands in order:
 *   call DST API TIMEOUT_MS TEXT   sync call with TEXT as payload ("-" for none); prints
 *                                  "ok <ms> <cpu_ms> <answer text>" or "err <ms> <cpu_ms> <reason>"
 *   slow DST TIMEOUT_MS DELAY TEXT  sync call of api 2 (SLOW) of probe_server: payload is
 *                                  u32 DELAY then TEXT; prints like call (answer text after
 *                                  the 4 delay bytes)
 *   nested DST TIMEOUT_MS API INNER_TIMEOUT PEER TEXT   api 3 (NESTED) of probe_server
 *   cycle DST TIMEOUT_MS INNER_TIMEOUT PEER   api 5 (CYCLE) of probe_server: DST calls
 *                                  PEER, which calls DST back
 *   flood DST API N                N sync calls with timeout 1000 and 64-byte payloads,
 *                                  each answer checked byte for byte; prints
 *                                  "flood ok=.. busy=.. timeout=.. other=.. bad=.. ms=.."
 *   floodt DST API N TIMEOUT_MS    the same with another timeout (-1: forever)
 *   send DST API TEXT              async send
 *   spray DST API N SIZE           N async sends of SIZE bytes; prints
 *                                  "spray sent=.. failed=.. ms=.."
 *   ping DST TIMEOUT_MS            mipc_ping; prints like call
 *   mix SRV NOBODY N               N rounds of calls whose one right outcome is known (SRV is a
 *                                  probe_server): echo (own answer), SLOW past its timeout
 *                                  (timeout), SLOW again (own answer, while the late one
 *                                  arrives), NOBODY (no such destination), NEVER (timeout),
 *                                  ping of the relay (answer); prints "mix calls=.. right=..
 *                                  wrong=.. over_max_ms=.. fast_fail_max_ms=.." and one
 *                                  "wrong: ..." line on stderr per wrong outcome
 *   sleep MS                       sleeps (a pause between calls that the test scripts)
 *   line                           waits for one line on stdin (the test's go-ahead)
 *   threads                        prints "threads N": how many threads the process has
 *   threads_settle N MS            waits (checking every 5 ms) up to MS ms for N threads,
 *                                  then prints "threads N" with the count it saw last
 * ms is wall time of the call; cpu_ms the process's user+system CPU time during it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include "mipc.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void report(int rc, double t0, double c0, const unsigned char *answer, size_t skip)
{
    double ms = now_ms() - t0, cpu = cpu_ms() - c0;
    if (rc == MIPC_OK)
        printf("ok %.1f %.2f %s\n", ms, cpu, (const char *)answer + skip);
    else
        printf("err %.1f %.2f %s\n", ms, cpu, mipc_last_error());
    fflush(stdout);
}

static unsigned int text_payload(unsigned char *p, const char *text)
{
    size_t n = strcmp(text, "-") == 0 ? 0 : strlen(text);
    memcpy(p, text, n);
    return (unsigned int)n;
}

static void flood(const char *dst, unsigned int api, long n, int timeout_ms)
{
    unsigned char in[64], out[MIPC_MSG_MAX_LEN];
    long i, ok = 0, busy = 0, timeout = 0, other = 0, bad = 0;
    double t0 = now_ms(), t_call;
    for (i = 0; i < n; i++) {
        int rc;
        memset(in, 0, sizeof in);
        snprintf((char *)in, sizeof in, "flood %ld", i);
        memset(out, 0xAA, sizeof out);
        t_call = now_ms();
        rc = mipc_send_sync_msg(dst, api, in, sizeof in, out, sizeof out, timeout_ms);
        if (rc == MIPC_OK) {
            if (memcmp(in, out, sizeof in) == 0)
                ok++;
            else
                bad++;
        } else if (strstr(mipc_last_error(), "busy"))
            busy++;
        else if (strstr(mipc_last_error(), "timeout")) {
            timeout++;
            fprintf(stderr, "flood: call %ld timed out after %.1f ms (%.1f ms into the flood)\n", i,
                    now_ms() - t_call, t_call - t0);
        }
        else
            other++;
    }
    printf("flood ok=%ld busy=%ld timeout=%ld other=%ld bad=%ld ms=%.1f\n", ok, busy, timeout, other,
           bad, now_ms() - t0);
    fflush(stdout);
}

static void spray(const char *me, const char *dst, unsigned int api, long n, unsigned int size)
{
    static unsigned char in[MIPC_MSG_MAX_LEN];
    long i, sent = 0, failed = 0;
    double t0 = now_ms();
    if (size > sizeof in)
        size = sizeof in;
    for (i = 0; i < n; i++) {
        memset(in, (int)(i & 0xff), size);
        if (mipc_send_msg(me, dst, api, in, size, 0) == MIPC_OK)
            sent++;
        else
            failed++;
    }
    printf("spray sent=%ld failed=%ld ms=%.1f\n", sent, failed, now_ms() - t0);
    fflush(stdout);
}

/* ---- mix: calls whose one right outcome is known ---- */

static long mix_calls, mix_right, mix_wrong;
static double mix_over_max, mix_fast_max;

static void mix_wrong_outcome(long round, const char *what, int rc, double ms, const char *got)
{
    mix_wrong++;
    fprintf(stderr, "wrong: round %ld %s: rc %d after %.1f ms: %s\n", round, what, rc, ms,
            rc == MIPC_OK ? got : mipc_last_error());
}

/* One call; `want` is NULL for "a timeout", a reason substring starting with '!' for an
 * error from the relay (which must come fast), or the exact answer text. */
static void mix_call(long round, const char *what, const char *dst, unsigned int api,
                     const unsigned char *in, unsigned int n, int timeout, const char *want,
                     size_t skip)
{
    static unsigned char out[MIPC_MSG_MAX_LEN + 1];
    double t0, ms;
    int rc;
    memset(out, 0, sizeof out);
    t0 = now_ms();
    rc = mipc_send_sync_msg(dst, api, in, n, out, MIPC_MSG_MAX_LEN, timeout);
    ms = now_ms() - t0;
    mix_calls++;
    if (want == NULL) {
        if (rc == MIPC_OK || strstr(mipc_last_error(), "timeout") == NULL || ms < timeout) {
            mix_wrong_outcome(round, what, rc, ms, (const char *)out + skip);
            return;
        }
        if (ms - timeout > mix_over_max)
            mix_over_max = ms - timeout;
    } else if (want[0] == '!') {
        if (rc == MIPC_OK || strstr(mipc_last_error(), want + 1) == NULL) {
            mix_wrong_outcome(round, what, rc, ms, (const char *)out + skip);
            return;
        }
        if (ms > mix_fast_max)
            mix_fast_max = ms;
    } else if (rc != MIPC_OK || strcmp((const char *)out + skip, want) != 0) {
        mix_wrong_outcome(round, what, rc, ms, (const char *)out + skip);
        return;
    }
    mix_right++;
}

static void mix(const char *srv, const char *nobody, long rounds)
{
    static unsigned char in[256];
    char text[200];
    long r;
    uint32_t delay;
    for (r = 0; r < rounds; r++) {
        /* echo: its own answer */
        snprintf(text, sizeof text, "mix %d %ld echo", (int)getpid(), r);
        mix_call(r, "echo", srv, 1, (const unsigned char *)text, (unsigned int)strlen(text), 2000, text, 0);
        /* SLOW 40 ms with a 10 ms timeout: a timeout; its answer comes late */
        delay = 40;
        memcpy(in, &delay, 4);
        snprintf(text, sizeof text, "mix %d %ld late", (int)getpid(), r);
        memcpy(in + 4, text, strlen(text));
        mix_call(r, "slow-timeout", srv, 2, in, 4 + (unsigned int)strlen(text), 10, NULL, 4);
        /* SLOW 0 ms of the same api: its own answer, though the late one arrives first */
        delay = 0;
        memcpy(in, &delay, 4);
        snprintf(text, sizeof text, "mix %d %ld own", (int)getpid(), r);
        memcpy(in + 4, text, strlen(text));
        mix_call(r, "slow-own", srv, 2, in, 4 + (unsigned int)strlen(text), 2000, text, 4);
        /* nobody registered NOBODY: the relay says so at once */
        mix_call(r, "nobody", nobody, 1, in, 8, 2000, "!no such destination", 0);
        /* NEVER: a timeout */
        mix_call(r, "never", srv, 4, in, 8, 15, NULL, 0);
        /* the relay answers a ping */
        {
            double t0 = now_ms();
            int rc = mipc_ping("mipc_main", 2000);
            mix_calls++;
            if (rc == MIPC_OK)
                mix_right++;
            else
                mix_wrong_outcome(r, "ping", rc, now_ms() - t0, "");
        }
    }
    printf("mix calls=%ld right=%ld wrong=%ld over_max_ms=%.1f fast_fail_max_ms=%.1f\n", mix_calls,
           mix_right, mix_wrong, mix_over_max, mix_fast_max);
    fflush(stdout);
}

/* The number of threads of this process (entries of /proc/self/task), -1 if unreadable. */
static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    static unsigned char in[MIPC_MSG_MAX_LEN], out[MIPC_MSG_MAX_LEN + 1];
    int i = 2;

    if (argc < 2) {
        fprintf(stderr, "usage: caller NAME COMMAND...\n");
        return 2;
    }
    if (mipc_init(argv[1]) < 0) {
        printf("init failed: %s\n", mipc_last_error());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    while (i < argc) {
        const char *cmd = argv[i];
        double t0, c0;
        int rc;
        memset(out, 0, sizeof out);
        if (strcmp(cmd, "call") == 0 && i + 4 < argc) {
            unsigned int n = text_payload(in, argv[i + 4]);
            t0 = now_ms();
            c0 = cpu_ms();
            rc = mipc_send_sync_msg(argv[i + 1], (unsigned int)strtoul(argv[i + 2], NULL, 0), in, n, out,
                                    MIPC_MSG_MAX_LEN, atoi(argv[i + 3]));
            report(rc, t0, c0, out, 0);
            i += 5;
        } else if (strcmp(cmd, "slow") == 0 && i + 4 < argc) {
            uint32_t delay = (uint32_t)strtoul(argv[i + 3], NULL, 0);
            unsigned int n;
            memcpy(in, &delay, 4);
            n = 4 + text_payload(in + 4, argv[i + 4]);
            t0 = now_ms();
            c0 = cpu_ms();
            rc = mipc_send_sync_msg(argv[i + 1], 2, in, n, out, MIPC_MSG_MAX_LEN, atoi(argv[i + 2]));
            report(rc, t0, c0, out, 4);
            i += 5;
        } else if (strcmp(cmd, "nested") == 0 && i + 6 < argc) {
            uint32_t api = (uint32_t)strtoul(argv[i + 3], NULL, 0);
            uint32_t inner = (uint32_t)strtoul(argv[i + 4], NULL, 0);
            size_t pl = strlen(argv[i + 5]);
            unsigned int n;
            memcpy(in, &api, 4);
            memcpy(in + 4, &inner, 4);
            memcpy(in + 8, argv[i + 5], pl + 1);
            n = (unsigned int)(9 + pl) + text_payload(in + 9 + pl, argv[i + 6]);
            t0 = now_ms();
            c0 = cpu_ms();
            rc = mipc_send_sync_msg(argv[i + 1], 3, in, n, out, MIPC_MSG_MAX_LEN, atoi(argv[i + 2]));
            report(rc, t0, c0, out, 0);
            i += 7;
        } else if (strcmp(cmd, "cycle") == 0 && i + 4 < argc) {
            uint32_t inner = (uint32_t)strtoul(argv[i + 3], NULL, 0);
            size_t pl = strlen(argv[i + 4]);
            memcpy(in, &inner, 4);
            memcpy(in + 4, argv[i + 4], pl);
            t0 = now_ms();
            c0 = cpu_ms();
            rc = mipc_send_sync_msg(argv[i + 1], 5, in, (unsigned int)(4 + pl), out, MIPC_MSG_MAX_LEN,
                                    atoi(argv[i + 2]));
            report(rc, t0, c0, out, 0);
            i += 5;
        } else if (strcmp(cmd, "flood") == 0 && i + 3 < argc) {
            flood(argv[i + 1], (unsigned int)strtoul(argv[i + 2], NULL, 0), atol(argv[i + 3]), 1000);
            i += 4;
        } else if (strcmp(cmd, "floodt") == 0 && i + 4 < argc) {
            flood(argv[i + 1], (unsigned int)strtoul(argv[i + 2], NULL, 0), atol(argv[i + 3]),
                  atoi(argv[i + 4]));
            i += 5;
        } else if (strcmp(cmd, "spray") == 0 && i + 4 < argc) {
            spray(argv[1], argv[i + 1], (unsigned int)strtoul(argv[i + 2], NULL, 0), atol(argv[i + 3]),
                  (unsigned int)strtoul(argv[i + 4], NULL, 0));
            i += 5;
        } else if (strcmp(cmd, "ping") == 0 && i + 2 < argc) {
            t0 = now_ms();
            c0 = cpu_ms();
            rc = mipc_ping(argv[i + 1], atoi(argv[i + 2]));
            report(rc, t0, c0, (const unsigned char *)"pong", 0);
            i += 3;
        } else if (strcmp(cmd, "mix") == 0 && i + 3 < argc) {
            mix(argv[i + 1], argv[i + 2], atol(argv[i + 3]));
            i += 4;
        } else if (strcmp(cmd, "sleep") == 0 && i + 1 < argc) {
            struct timespec ts;
            long ms = atol(argv[i + 1]);
            ts.tv_sec = ms / 1000;
            ts.tv_nsec = (ms % 1000) * 1000000L;
            nanosleep(&ts, NULL);
            i += 2;
        } else if (strcmp(cmd, "send") == 0 && i + 3 < argc) {
            unsigned int n = text_payload(in, argv[i + 3]);
            rc = mipc_send_msg(argv[1], argv[i + 1], (unsigned int)strtoul(argv[i + 2], NULL, 0), in, n, 0);
            printf("%s\n", rc == MIPC_OK ? "sent" : mipc_last_error());
            fflush(stdout);
            i += 4;
        } else if (strcmp(cmd, "threads") == 0) {
            printf("threads %d\n", thread_count());
            fflush(stdout);
            i += 1;
        } else if (strcmp(cmd, "threads_settle") == 0 && i + 2 < argc) {
            int want = atoi(argv[i + 1]), n = thread_count();
            double end = now_ms() + atof(argv[i + 2]);
            struct timespec tick = {0, 5000000L};
            while (n != want && now_ms() < end) {
                nanosleep(&tick, NULL);
                n = thread_count();
            }
            printf("threads %d\n", n);
            fflush(stdout);
            i += 3;
        } else if (strcmp(cmd, "line") == 0) {
            char line[64];
            if (fgets(line, sizeof line, stdin) == NULL)
                return 1;
            i += 1;
        } else {
            fprintf(stderr, "caller: bad command at %s\n", cmd);
            return 2;
        }
    }
    return 0;
}
