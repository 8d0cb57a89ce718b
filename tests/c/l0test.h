/*
 * l0test.h -- a minimal test harness for the C suites of the L0 engine.
 *
 *   TEST(name) { CHECK(cond); CHECK_RC(call, expected_code); }
 *   int main(void) { return l0test_main(); }
 *
 * Each test runs in a forked child (a crash fails that test, not the run,
 * and tests cannot leak state into each other).  The run prints one line per
 * test and a summary line "N passed, M failed in S s".
 */
#ifndef CACHEE_L0TEST_H
#define CACHEE_L0TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cachee_l0.h"

typedef void (*l0test_fn)(void);
struct l0test_case {
    const char *name;
    l0test_fn fn;
};
#define L0TEST_MAX 256
static struct l0test_case l0test_cases[L0TEST_MAX];
static int l0test_ncases;

#define TEST(name)                                                          \
    static void test_##name(void);                                          \
    __attribute__((constructor)) static void register_##name(void) {        \
        if (l0test_ncases < L0TEST_MAX)                                     \
            l0test_cases[l0test_ncases++] =                                 \
                (struct l0test_case){#name, test_##name};                   \
    }                                                                       \
    static void test_##name(void)

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__,        \
                    __LINE__, #cond);                                       \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

#define CHECK_RC(call, want)                                                \
    do {                                                                    \
        int got_ = (call);                                                  \
        int want_ = (want);                                                 \
        if (got_ != want_) {                                                \
            fprintf(stderr, "  %s:%d: %s returned %d (%s), want %d (%s)\n", \
                    __FILE__, __LINE__, #call, got_,                        \
                    cachee_l0_strerror(got_), want_,                        \
                    cachee_l0_strerror(want_));                             \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

#define OK(call) CHECK_RC(call, 0)

static inline double l0test_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A region name unique to this test process. */
static inline const char *l0test_region(const char *tag) {
    static char buf[128];
    snprintf(buf, sizeof buf, "cachee-test-%s-%d", tag, (int)getpid());
    return buf;
}

static inline int l0test_main(int argc, char **argv) {
    int passed = 0, failed = 0;
    double t0 = l0test_now();
    const char *only = argc > 1 ? argv[1] : NULL;
    for (int i = 0; i < l0test_ncases; i++) {
        if (only && strcmp(only, l0test_cases[i].name) != 0) continue;
        double t = l0test_now();
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            l0test_cases[i].fn();
            fflush(stdout);
            _exit(0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        printf("%-6s %s (%.2fs)%s\n", ok ? "PASS" : "FAIL",
               l0test_cases[i].name, l0test_now() - t,
               WIFSIGNALED(st) ? " [killed by signal]" : "");
        if (ok) passed++;
        else failed++;
    }
    printf("%d passed, %d failed in %.2fs\n", passed, failed, l0test_now() - t0);
    return failed ? 1 : 0;
}

#endif
