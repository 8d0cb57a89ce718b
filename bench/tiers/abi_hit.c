/*
 * abi_hit.c -- what a read costs through libcachee's C ABI (the path the
 * Python extension takes for tiers beyond L0), side by side with a direct
 * L0 read (the extension's own path).
 *
 *   bare C->Go call   cachee_open_handles: what any call into the Go
 *                     runtime costs at least (no lookup, no copy)
 *   direct L0 get     cachee_l0_get into a caller's buffer, no Go at all
 *   ABI, L0 hit       cachee_get + cachee_value_free, value in L0
 *   ABI, L1 hit       cachee_get(CACHEE_GET_SKIP_L0) + cachee_value_free,
 *                     value in this process's L1 (demoted out of L0)
 *
 * 64-byte values, keys chosen at random among those present; median of 5
 * rounds.  Build and run: make bench-tiers (or see bench/tiers/README.md).
 *
 * Each of them over every key of its tier (random memory accesses: the
 * lookup's cache misses dominate), then the last three over 1024 hot keys
 * (the cost of the call itself).
 *
 *   abi_hit [LIB [ONLY]]   ONLY = bare, direct, l0, l1, direct-hot, l0-hot
 *                          or l1-hot: time that loop alone, for 20 rounds
 *                          (to profile it with perf)
 *
 * With PERF_CTL=FIFO in the environment, "enable" is written to FIFO once
 * the keys are written, so that `perf record --control=fifo:FIFO -D -1`
 * profiles the reads only (the setup takes far longer than the reads).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cachee.h"
#include "cachee_l0.h"

static int (*c_open)(const char *, size_t, cachee_t *);
static int (*c_close)(cachee_t);
static int (*c_get)(cachee_t, const void *, size_t, uint32_t, cachee_value *);
static void (*c_free)(cachee_value *);
static int64_t (*c_open_handles)(void);
static int (*c_set)(cachee_t, const void *, size_t, const void *, size_t,
                    const void *, size_t, int64_t, uint32_t);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define ROUNDS 5
#define MAXROUNDS 20
#define OPS 300000

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int keyof(char *buf, int i) { return sprintf(buf, "bench-key-%08d", i); }

int main(int argc, char **argv) {
    const char *lib = argc > 1 ? argv[1] : "build/libcachee.so";
    void *so = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        fprintf(stderr, "dlopen %s: %s\n", lib, dlerror());
        return 1;
    }
    *(void **)&c_open = dlsym(so, "cachee_open");
    *(void **)&c_close = dlsym(so, "cachee_close");
    *(void **)&c_get = dlsym(so, "cachee_get");
    *(void **)&c_free = dlsym(so, "cachee_value_free");
    *(void **)&c_set = dlsym(so, "cachee_set");
    *(void **)&c_open_handles = dlsym(so, "cachee_open_handles");
    const char *only = argc > 2 ? argv[2] : NULL;
    int rounds = only ? 20 : ROUNDS;
#define RUN(what) (only == NULL || strcmp(only, what) == 0)

    char name[128];
    snprintf(name, sizeof name, "cachee-bench-tiers-%d", (int)getpid());
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    o.size = 32ull << 20;
    o.flags = CACHEE_L0_CREATE | CACHEE_L0_EXCLUSIVE;
    cachee_l0 *l0;
    int rc = cachee_l0_open(name, &o, &l0);
    if (rc != 0) {
        fprintf(stderr, "cachee_l0_open: %s\n", cachee_l0_strerror(rc));
        return 1;
    }
    char cfg[256];
    int n = snprintf(cfg, sizeof cfg,
                     "{\"path\":\"%s\",\"l1_bytes\":%d,\"promote\":\"never\"}", name,
                     512 << 20);
    cachee_t h;
    if ((rc = c_open(cfg, (size_t)n, &h)) != 0) {
        fprintf(stderr, "cachee_open: %d\n", rc);
        return 1;
    }

    /* Write 600k keys of 64 B through the ABI: L0 (32 MiB) keeps the last
     * hundred thousand or so, the rest is demoted into L1. */
    enum { NKEYS = 600000 };
    char key[64], val[64];
    memset(val, 'v', sizeof val);
    for (int i = 0; i < NKEYS; i++) {
        int kl = keyof(key, i);
        if ((rc = c_set(h, key, (size_t)kl, val, sizeof val, NULL, 0, 0, 0)) != 0) {
            fprintf(stderr, "cachee_set: %d\n", rc);
            return 1;
        }
    }
    /* Which keys are where. */
    int *inl0 = malloc(NKEYS * sizeof(int)), *inl1 = malloc(NKEYS * sizeof(int));
    int n0 = 0, n1 = 0;
    for (int i = 0; i < NKEYS; i++) {
        int kl = keyof(key, i);
        if (cachee_l0_contains(l0, key, (size_t)kl) == 1) {
            inl0[n0++] = i;
        } else {
            cachee_value v;
            if (c_get(h, key, (size_t)kl, CACHEE_GET_SKIP_L0 | CACHEE_GET_NO_PROMOTE, &v) == 0) {
                if (v.tier == CACHEE_TIER_L1) inl1[n1++] = i;
                c_free(&v);
            }
        }
    }
    printf("keys: %d in L0, %d in L1 (of %d written)\n", n0, n1, NKEYS);
    if (n0 < 1000 || n1 < 1000) return 1;

    const char *ctl = getenv("PERF_CTL");
    if (ctl != NULL) {
        FILE *f = fopen(ctl, "w");
        if (f != NULL) {
            fputs("enable\n", f);
            fclose(f);
        }
    }
    /* The hot set: 1024 keys of each tier, read over and over, stay in the
     * CPU caches: those rows show the cost of the call itself (the cgo
     * transitions, hashing, copying) rather than memory latency. */
    enum { HOT = 1024 };
    int hot0[HOT], hot1[HOT];
    for (int i = 0; i < HOT; i++) {
        hot0[i] = inl0[next() % (uint64_t)n0];
        hot1[i] = inl1[next() % (uint64_t)n1];
    }
    struct row {
        const char *name, *label;
        int mode; /* 0 bare, 1 direct, 2 ABI L0, 3 ABI L1 */
        const int *ids;
        int n;
        double t[MAXROUNDS];
    } rows[] = {
        {"bare", "bare C->Go call (open_handles)", 0, inl0, n0, {0}},
        {"direct", "direct L0 get (C, no Go)", 1, inl0, n0, {0}},
        {"l0", "ABI cachee_get, L0 hit", 2, inl0, n0, {0}},
        {"l1", "ABI cachee_get SKIP_L0, L1 hit", 3, inl1, n1, {0}},
        {"direct-hot", "direct L0 get, 1k hot keys", 1, hot0, HOT, {0}},
        {"l0-hot", "ABI L0 hit, 1k hot keys", 2, hot0, HOT, {0}},
        {"l1-hot", "ABI L1 hit, 1k hot keys", 3, hot1, HOT, {0}},
    };
    enum { NROWS = sizeof rows / sizeof rows[0] };
    char buf[64];
    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < NROWS; j++) {
            struct row *w = &rows[j];
            if (!RUN(w->name)) continue;
            double t = now();
            for (int i = 0; i < OPS; i++) {
                int kl = keyof(key, w->ids[next() % (uint64_t)w->n]);
                cachee_value v;
                switch (w->mode) {
                case 0:
                    if (c_open_handles() != 1 || kl == 0) return 5;
                    break;
                case 1:
                    if (cachee_l0_get(l0, key, (size_t)kl, buf, sizeof buf, NULL) != 0) return 2;
                    break;
                case 2:
                    if (c_get(h, key, (size_t)kl, 0, &v) != 0) return 3;
                    c_free(&v);
                    break;
                default:
                    /* a key may have become a miss: L1 entries share
                     * generation counters with later writes */
                    rc = c_get(h, key, (size_t)kl, CACHEE_GET_SKIP_L0 | CACHEE_GET_NO_PROMOTE, &v);
                    if (rc != 0 && rc != CACHEE_NOTFOUND) return 4;
                    c_free(&v);
                }
            }
            w->t[r] = (now() - t) / OPS * 1e9;
        }
    }
    for (int j = 0; j < NROWS; j++) {
        if (!RUN(rows[j].name)) continue;
        qsort(rows[j].t, (size_t)rounds, sizeof(double), cmp);
        printf("%-34s %8.0f ns/op\n", rows[j].label, rows[j].t[rounds / 2]);
    }
    c_close(h);
    cachee_l0_close(l0);
    cachee_l0_unlink(name);
    return 0;
}
