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
 *                                  "flood ok=.. busy=.. timeout=.. other=.. bad=.."
 *   send DST API TEXT              async send
 *   line                           waits for one line on stdin (the test's go-ahead)
 * ms is wall time of the call; cpu_ms the process's user+system CPU time during it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

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

static void flood(const char *dst, unsigned int api, long n)
{
    unsigned char in[64], out[MIPC_MSG_MAX_LEN];
    long i, ok = 0, busy = 0, timeout = 0, other = 0, bad = 0;
    for (i = 0; i < n; i++) {
        int rc;
        memset(in, 0, sizeof in);
        snprintf((char *)in, sizeof in, "flood %ld", i);
        memset(out, 0xAA, sizeof out);
        rc = mipc_send_sync_msg(dst, api, in, sizeof in, out, sizeof out, 1000);
        if (rc == MIPC_OK) {
            if (memcmp(in, out, sizeof in) == 0)
                ok++;
            else
                bad++;
        } else if (strstr(mipc_last_error(), "busy"))
            busy++;
        else if (strstr(mipc_last_error(), "timeout"))
            timeout++;
        else
            other++;
    }
    printf("flood ok=%ld busy=%ld timeout=%ld other=%ld bad=%ld\n", ok, busy, timeout, other, bad);
    fflush(stdout);
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
            flood(argv[i + 1], (unsigned int)strtoul(argv[i + 2], NULL, 0), atol(argv[i + 3]));
            i += 4;
        } else if (strcmp(cmd, "send") == 0 && i + 3 < argc) {
            unsigned int n = text_payload(in, argv[i + 3]);
            rc = mipc_send_msg(argv[1], argv[i + 1], (unsigned int)strtoul(argv[i + 2], NULL, 0), in, n, 0);
            printf("%s\n", rc == MIPC_OK ? "sent" : mipc_last_error());
            fflush(stdout);
            i += 4;
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
