/*
 * scaling.c -- multi-process throughput of the L0 engine.
 *
 * READS: one region is pre-filled with K keys (default 1M keys of 64 B);
 * then 1, 2, ..., N processes (N = nproc by default) read it at the same
 * time, each with its own uniform random key stream, for T seconds (default
 * 3).  Three ways to read are measured:
 *   get     cachee_l0_get: copy the value into a private buffer
 *   begin   cachee_l0_read_begin + memcpy + cachee_l0_read_validate
 *   pinned  cachee_l0_get_pinned + read the first word + cachee_l0_release
 * For each N it prints the aggregate ops/s and the efficiency
 * aggregate / (N x the 1-process rate).  Goal: efficiency >= 0.9 at N = cores.
 *
 * WRITES: 512 B values (flag), 1..W writer processes (default W = 2) setting
 * random keys of a pre-filled key space:
 *   no-evict  the region is sized so that the measured interval evicts
 *             nothing (each writer stops when the free space is used up,
 *             or after T seconds)
 *   evict     the region is much smaller than the data written: every set
 *             pays for eviction (steady state)
 * Goal (taken from the Go side): 2 writers >= 1.6 x one.
 *
 * Processes start together (they block on a pipe that the parent closes),
 * each counts its own operations and time; the region is unlinked at the end
 * and on SIGINT/SIGTERM.
 */
#include "benchutil.h"

#include <getopt.h>
#include <sched.h>
#include <sys/prctl.h>

#define MAX_REPS 15

enum { M_GET, M_BEGIN, M_PINNED, M_SET, M_EVICT, M_COUNT };
static const char *const mode_key[M_COUNT] = {"get", "begin", "pinned", "set", "evict"};
static const char *const mode_desc[M_COUNT] = {
    "cachee_l0_get (copy-out)",
    "cachee_l0_read_begin + memcpy + cachee_l0_read_validate",
    "cachee_l0_get_pinned + read 8 B + cachee_l0_release",
    "cachee_l0_set, no eviction during the interval",
    "cachee_l0_set, under eviction pressure"};

typedef struct cfg {
    int procs_max, writers_max;
    int points[64], npoints; /* reader process counts; empty: 1..procs_max */
    double time_s;
    int reps;
    uint64_t keys, value;
    uint64_t set_keys, set_value, set_region, evict_region;
    const char *dir;
    bool pin;
    unsigned modes; /* bit per mode */
} cfg;

/* One child's results; a cache line each. */
typedef struct res {
    uint64_t ops, elapsed_ns;
    uint64_t errors;  /* unexpected return codes */
    uint64_t misses;  /* NOTFOUND where every key must be present */
    uint64_t bad;     /* value that does not belong to its key */
    uint64_t retries; /* E_RETRY from read_validate */
    int32_t first_rc;
    int32_t ok;       /* child reached the end */
    uint64_t first_key;
} __attribute__((aligned(64))) res;

typedef struct shared {
    volatile int stop __attribute__((aligned(64)));
    res r[];
} shared;

static int g_ncpu;
static int g_bugs; /* problems that look like engine bugs */

static void note_err(res *r, int rc, uint64_t key) {
    if (r->errors++ == 0) {
        r->first_rc = rc;
        r->first_key = key;
    }
}

static void pin_to(int i) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(i % g_ncpu, &s);
    sched_setaffinity(0, sizeof s, &s);
}

static bool stopped(shared *sh) { return __atomic_load_n(&sh->stop, __ATOMIC_RELAXED) != 0; }

/* ------------------------------------------------------------- readers */

static void reader_child(const cfg *c, int mode, int idx, const char *path,
                         shared *sh, bu_gang *g) {
    res *r = &sh->r[idx];
    if (c->pin) pin_to(idx);
    cachee_l0 *h = bu_attach(path);
    if (!h) _exit(4);
    static cachee_l0_info info;
    cachee_l0_info_get(h, &info);
    bu_prefault(info.path);
    size_t cap = c->value;
    uint8_t *buf = aligned_alloc(64, bu_align64(cap + 64));
    if (!buf) _exit(5);
    bu_rng rng;
    bu_rng_seed(&rng, 0x5eed0000ull + (uint64_t)idx * 7919 + (uint64_t)mode * 104729);
    const uint64_t n = c->keys;
    uint8_t key[BU_KEY_LEN];
    /* warm-up: claims the process slot, warms caches and TLB */
    for (int i = 0; i < 20000; i++) {
        bu_key(key, bu_below(bu_rng_next(&rng), n));
        cachee_l0_get(h, key, BU_KEY_LEN, buf, cap, NULL);
    }
    bu_gang_child_wait(g);
    uint64_t ops = 0;
    int64_t t0 = bu_now_ns();
    for (;;) {
        for (int j = 0; j < 256; j++) {
            uint64_t k = bu_below(bu_rng_next(&rng), n);
            bu_key(key, k);
            int rc;
            if (mode == M_GET) {
                rc = cachee_l0_get(h, key, BU_KEY_LEN, buf, cap, NULL);
                if (BU_LIKELY(rc == 0)) {
                    if (bu_load64(buf) != k) r->bad++;
                    continue;
                }
            } else if (mode == M_BEGIN) {
                cachee_l0_view v;
                for (;;) {
                    rc = cachee_l0_read_begin(h, key, BU_KEY_LEN, &v);
                    if (rc != 0) break;
                    memcpy(buf, v.data, v.len <= cap ? v.len : cap);
                    rc = cachee_l0_read_validate(h, &v);
                    if (rc != CACHEE_L0_E_RETRY) break;
                    r->retries++;
                }
                if (BU_LIKELY(rc == 0)) {
                    if (bu_load64(buf) != k) r->bad++;
                    continue;
                }
            } else {
                cachee_l0_view v;
                rc = cachee_l0_get_pinned(h, key, BU_KEY_LEN, &v);
                if (BU_LIKELY(rc == 0)) {
                    if (v.len < 8 || bu_load64(v.data) != k) r->bad++;
                    rc = cachee_l0_release(h, &v);
                    if (BU_LIKELY(rc == 0)) continue;
                }
            }
            if (rc == CACHEE_L0_NOTFOUND) r->misses++;
            else note_err(r, rc, k);
        }
        ops += 256;
        if (stopped(sh)) break;
    }
    r->elapsed_ns = (uint64_t)(bu_now_ns() - t0);
    r->ops = ops;
    r->ok = 1;
    free(buf);
    cachee_l0_close(h);
    _exit(0);
}

/* Run nproc children of `fn` on `path`; returns the aggregate rate. */
typedef void (*child_fn)(const cfg *, int, int, const char *, shared *, bu_gang *);

static double g_other; /* CPUs busy with other work during the last round */

static double run_round(const cfg *c, child_fn fn, int mode, int nproc,
                        const char *path, shared *sh, bool *failed) {
    bu_cpu cpu0, cpu1;
    bu_cpu_sample(&cpu0);
    memset(sh->r, 0, sizeof(res) * (size_t)nproc);
    sh->stop = 0;
    bu_gang g;
    bu_gang_init(&g);
    pid_t pids[1024], parent = getpid();
    for (int i = 0; i < nproc; i++) {
        fflush(NULL);
        pid_t p = fork();
        if (p < 0) bu_die("fork: %s", strerror(errno));
        if (p == 0) {
            /* die with the parent: an orphan would spin until killed */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(6);
            fn(c, mode, i, path, sh, &g);
        }
        pids[i] = p;
    }
    int ready = bu_gang_release(&g, nproc);
    int64_t end = bu_now_ns() + (int64_t)(c->time_s * 1e9);
    while (ready == nproc && bu_now_ns() < end && !stopped(sh)) bu_sleep_ns(5000000);
    __atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
    *failed = ready != nproc;
    for (int i = 0; i < nproc; i++)
        if (bu_wait_child(pids[i], mode_key[mode]) != 0) *failed = true;
    bu_cpu_sample(&cpu1);
    g_other = bu_cpu_other(&cpu0, &cpu1) + bu_cpu_steal(&cpu0, &cpu1);
    double agg = 0;
    for (int i = 0; i < nproc; i++) {
        res *r = &sh->r[i];
        if (!r->ok) {
            *failed = true;
            continue;
        }
        agg += (double)r->ops / ((double)r->elapsed_ns / 1e9);
    }
    return agg;
}

/* Sum and report per-child problems of a round; returns their count. */
static uint64_t round_problems(const cfg *c, int mode, int nproc, shared *sh,
                               uint64_t *retries) {
    (void)c;
    uint64_t probs = 0;
    *retries = 0;
    for (int i = 0; i < nproc; i++) {
        res *r = &sh->r[i];
        *retries += r->retries;
        if (r->errors)
            fprintf(stderr, "ENGINE? %s: process %d: %llu unexpected returns, first %d (%s) for key %llu\n",
                    mode_key[mode], i, (unsigned long long)r->errors, r->first_rc,
                    cachee_l0_strerror(r->first_rc), (unsigned long long)r->first_key);
        if (r->misses && mode != M_EVICT)
            fprintf(stderr, "ENGINE? %s: process %d: %llu misses on a region holding every key\n",
                    mode_key[mode], i, (unsigned long long)r->misses);
        if (r->bad)
            fprintf(stderr, "ENGINE? %s: process %d: %llu values that do not belong to their key\n",
                    mode_key[mode], i, (unsigned long long)r->bad);
        probs += r->errors + r->bad + (mode != M_EVICT ? r->misses : 0);
    }
    return probs;
}

static void fill_value(uint8_t *v, uint64_t len, uint64_t k, uint64_t salt) {
    for (uint64_t o = 0; o + 8 <= len; o += 8) {
        uint64_t w = o == 0 ? k : bu_mix64(k ^ salt ^ o);
        memcpy(v + o, &w, 8);
    }
}

/* Set keys [0, n) once; returns the sets that failed. */
static uint64_t prefill(cachee_l0 *h, uint64_t n, uint64_t vlen) {
    uint8_t *v = calloc(1, bu_align64(vlen + 8));
    if (!v) bu_die("calloc");
    uint8_t key[BU_KEY_LEN];
    uint64_t fails = 0;
    int first = 0;
    for (uint64_t k = 0; k < n; k++) {
        fill_value(v, vlen, k, 0);
        bu_key(key, k);
        int rc = cachee_l0_set(h, key, BU_KEY_LEN, v, vlen, NULL, 0, 0, 0);
        if (rc != 0 && fails++ == 0) first = rc;
    }
    if (fails)
        fprintf(stderr, "prefill: %llu of %llu sets failed, first: %s\n",
                (unsigned long long)fails, (unsigned long long)n, cachee_l0_strerror(first));
    free(v);
    return fails;
}

static int check_region(cachee_l0 *h, const char *what) {
    char msg[512];
    int rc = cachee_l0_check(h, msg, sizeof msg);
    if (rc != 0)
        fprintf(stderr, "ENGINE? %s: cachee_l0_check: %s: %s\n", what,
                cachee_l0_strerror(rc), msg);
    return rc;
}

static void print_region(cachee_l0 *h, const char *label) {
    cachee_l0_info in;
    cachee_l0_info_get(h, &in);
    char a[32], b[32], s[32];
    printf("%s: %s region %s, arena %s, %u segments of %s, %u shards x %u index slots\n",
           label, in.path, bu_fmt_bytes(in.region_size, a, sizeof a),
           bu_fmt_bytes(in.arena_size, b, sizeof b), in.segments,
           bu_fmt_bytes(in.segment_size, s, sizeof s), in.shards, in.shard_slots);
}

static void run_reads(const cfg *c, shared *sh) {
    uint64_t rec = bu_record_bytes(BU_KEY_LEN, c->value);
    uint64_t max_entries = c->keys + c->keys / 4 + 64;
    uint64_t size = c->keys * rec + c->keys * rec / 4 + max_entries * 22 + (48ull << 20);
    size = (size + (1ull << 20) - 1) & ~((1ull << 20) - 1);
    const char *path = bu_region_path(c->dir, "scaling");
    cachee_l0 *h = bu_create(path, size, max_entries, 0);
    int64_t t0 = bu_now_ns();
    uint64_t fails = prefill(h, c->keys, c->value);
    double fill_s = (double)(bu_now_ns() - t0) / 1e9;
    cachee_l0_stats st;
    cachee_l0_stats_get(h, &st);
    printf("\n== READ SCALING: %llu keys of %llu B values (record %llu B), %.1f s per point\n",
           (unsigned long long)c->keys, (unsigned long long)c->value,
           (unsigned long long)rec, c->time_s);
    print_region(h, "region");
    printf("prefill: %.2f s (%.2f M sets/s, 1 process), entries %llu, evictions %llu\n",
           fill_s, (double)c->keys / fill_s / 1e6, (unsigned long long)st.entries,
           (unsigned long long)st.evictions);
    if (fails || st.entries != c->keys || st.evictions) {
        fprintf(stderr, "prefill did not leave every key in the region\n");
        g_bugs++;
    }
    { /* an unreported warm-up round: CPU clocks, page cache, code */
        cfg w = *c;
        w.time_s = c->time_s < 0.5 ? c->time_s : 0.5;
        bool failed;
        run_round(&w, reader_child, M_GET, c->procs_max, path, sh, &failed);
    }
    enum { MAXP = 1024 };
    static double agg[MAXP + 1][MAX_REPS];
    static uint64_t retr[MAXP + 1];
    static bool bad[MAXP + 1];
    static double other[MAXP + 1];
    for (int mode = M_GET; mode <= M_PINNED; mode++) {
        if (!(c->modes & (1u << mode))) continue;
        printf("\n-- %s: %s\n", mode_key[mode], mode_desc[mode]);
        fflush(stdout);
        memset(retr, 0, sizeof retr);
        memset(bad, 0, sizeof bad);
        memset(other, 0, sizeof other);
        /* repetitions outside, process counts inside: drift hits every N */
        for (int rep = 0; rep < c->reps; rep++)
            for (int pi = 0; pi < c->npoints; pi++) {
                int n = c->points[pi];
                bool failed;
                agg[n][rep] = run_round(c, reader_child, mode, n, path, sh, &failed);
                if (g_other > other[n]) other[n] = g_other;
                uint64_t retries;
                uint64_t probs = round_problems(c, mode, n, sh, &retries);
                retr[n] += retries;
                if (failed || probs) bad[n] = true;
            }
        printf("%5s %14s %14s %10s %10s %21s %8s %7s\n", "procs", "aggregate/s", "per-proc/s",
               "ns/op", "efficiency", "aggregate min-max", "retries", "other");
        double single = 0;
        for (int pi = 0; pi < c->npoints; pi++) {
            int n = c->points[pi];
            double v[MAX_REPS];
            memcpy(v, agg[n], sizeof v);
            double med = bu_median(v, c->reps);
            if (n == 1) single = med;
            double per = med / n;
            printf("%5d %14.0f %14.0f %10.1f %10.3f %10.0f-%-10.0f %8llu %7.2f%s\n", n, med, per,
                   1e9 / per, single > 0 ? med / (n * single) : 0.0, v[0], v[c->reps - 1],
                   (unsigned long long)retr[n], other[n], bad[n] ? "  ERRORS (see stderr)" : "");
            if (bad[n]) g_bugs++;
        }
        fflush(stdout);
    }
    cachee_l0_stats_get(h, &st);
    printf("\nafter reads: hits %llu, misses %llu, live processes %llu, reaped %llu\n",
           (unsigned long long)st.hits, (unsigned long long)st.misses,
           (unsigned long long)st.live_procs, (unsigned long long)st.reaped_procs);
    if (check_region(h, "after reads") != 0) g_bugs++;
    cachee_l0_close(h);
    bu_region_remove(path);
}

/* ------------------------------------------------------------- writers */

static uint64_t g_set_budget; /* per writer; 0 = unlimited */
static uint64_t g_set_keys, g_set_value;

static void writer_child(const cfg *c, int mode, int idx, const char *path,
                         shared *sh, bu_gang *g) {
    res *r = &sh->r[idx];
    if (c->pin) pin_to(idx);
    cachee_l0 *h = bu_attach(path);
    if (!h) _exit(4);
    static cachee_l0_info info;
    cachee_l0_info_get(h, &info);
    bu_prefault(info.path);
    uint64_t vlen = g_set_value, n = g_set_keys;
    uint8_t *v = aligned_alloc(64, bu_align64(vlen + 64));
    if (!v) _exit(5);
    fill_value(v, vlen, 0, 0x77);
    uint8_t key[BU_KEY_LEN];
    bu_key(key, 0);
    cachee_l0_contains(h, key, BU_KEY_LEN); /* claims the process slot */
    bu_rng rng;
    bu_rng_seed(&rng, 0xabc00000ull + (uint64_t)idx * 65537 + (uint64_t)mode);
    uint64_t budget = g_set_budget ? g_set_budget : UINT64_MAX;
    bu_gang_child_wait(g);
    uint64_t ops = 0;
    int64_t t0 = bu_now_ns();
    while (ops < budget) {
        for (int j = 0; j < 64; j++) {
            uint64_t k = bu_below(bu_rng_next(&rng), n);
            bu_key(key, k);
            memcpy(v, &k, 8);
            int rc = cachee_l0_set(h, key, BU_KEY_LEN, v, vlen, NULL, 0, 0, 0);
            if (BU_UNLIKELY(rc != 0)) note_err(r, rc, k);
        }
        ops += 64;
        if (stopped(sh)) break;
    }
    r->elapsed_ns = (uint64_t)(bu_now_ns() - t0);
    if (ops >= budget) __atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
    r->ops = ops;
    r->ok = 1;
    free(v);
    cachee_l0_close(h);
    _exit(0);
}

/* Verify after a set round: every value belongs to its key; without
 * eviction every key is present.  Returns the problems found. */
static uint64_t verify_keys(cachee_l0 *h, uint64_t n, uint64_t vlen, bool all_present) {
    uint8_t *buf = malloc(vlen + 64);
    if (!buf) bu_die("malloc");
    uint8_t key[BU_KEY_LEN];
    uint64_t missing = 0, bad = 0, errs = 0;
    for (uint64_t k = 0; k < n; k++) {
        bu_key(key, k);
        int rc = cachee_l0_get(h, key, BU_KEY_LEN, buf, vlen + 64, NULL);
        if (rc == CACHEE_L0_NOTFOUND) missing++;
        else if (rc != 0) errs++;
        else if (bu_load64(buf) != k) bad++;
    }
    free(buf);
    if ((all_present && missing) || bad || errs)
        fprintf(stderr, "ENGINE? verify: %llu keys missing, %llu wrong values, %llu errors\n",
                (unsigned long long)missing, (unsigned long long)bad, (unsigned long long)errs);
    return (all_present ? missing : 0) + bad + errs;
}

static void run_sets(const cfg *c, shared *sh, int mode) {
    uint64_t vlen = c->set_value, rec = bu_record_bytes(BU_KEY_LEN, vlen);
    uint64_t keys = c->set_keys;
    bool evict = mode == M_EVICT;
    uint64_t size = evict ? c->evict_region : c->set_region;
    g_set_keys = keys;
    g_set_value = vlen;
    printf("\n-- %s: %s; %llu B values (record %llu B), key space %llu keys, uniform random keys\n",
           mode_key[mode], mode_desc[mode], (unsigned long long)vlen,
           (unsigned long long)rec, (unsigned long long)keys);
    enum { MAXW = 1024 };
    static double agg[MAXW + 1][MAX_REPS], interval[MAXW + 1][MAX_REPS];
    static uint64_t ev[MAXW + 1][MAX_REPS], ri[MAXW + 1][MAX_REPS];
    static bool bad[MAXW + 1];
    static double other[MAXW + 1];
    memset(bad, 0, sizeof bad);
    memset(other, 0, sizeof other);
    bool header = false;
    for (int rep = 0; rep < c->reps; rep++)
        for (int w = 1; w <= c->writers_max; w++) {
            const char *path = bu_region_path(c->dir, evict ? "evict" : "set");
            uint64_t max_entries =
                evict ? size / rec + size / rec / 3 + 64 : keys + keys / 4 + 64;
            cachee_l0 *h = bu_create(path, size, max_entries, 0);
            if (!header) {
                print_region(h, "region");
                fflush(stdout);
                header = true;
            }
            /* Fill the key space once (under eviction: reach steady state). */
            prefill(h, keys, vlen);
            cachee_l0_stats s0, s1;
            cachee_l0_stats_get(h, &s0);
            if (evict) {
                g_set_budget = 0;
            } else {
                g_set_budget =
                    (uint64_t)((double)s0.free_bytes * 0.9 / (double)rec) / (uint64_t)w;
                if (s0.evictions) fprintf(stderr, "set: region too small for the key space\n");
            }
            bool failed;
            agg[w][rep] = run_round(c, writer_child, mode, w, path, sh, &failed);
            if (g_other > other[w]) other[w] = g_other;
            uint64_t retries;
            uint64_t probs = round_problems(c, mode, w, sh, &retries);
            cachee_l0_stats_get(h, &s1);
            ev[w][rep] = s1.evictions - s0.evictions;
            ri[w][rep] = s1.reinsertions - s0.reinsertions;
            uint64_t sf = s1.set_failures - s0.set_failures;
            if (sf)
                fprintf(stderr, "ENGINE? %s: %llu sets failed with E_FULL\n", mode_key[mode],
                        (unsigned long long)sf);
            interval[w][rep] = 0;
            for (int i = 0; i < w; i++)
                if ((double)sh->r[i].elapsed_ns / 1e9 > interval[w][rep])
                    interval[w][rep] = (double)sh->r[i].elapsed_ns / 1e9;
            if (!evict && ev[w][rep])
                fprintf(stderr, "set: the no-eviction interval evicted %llu entries:"
                        " enlarge --set-region\n", (unsigned long long)ev[w][rep]);
            probs += verify_keys(h, keys, vlen, !evict);
            if (check_region(h, mode_key[mode]) != 0) probs++;
            if (failed || probs || sf) bad[w] = true;
            cachee_l0_close(h);
            bu_region_remove(path);
        }
    printf("%7s %14s %14s %9s %10s %21s %9s %10s %11s %8s %7s\n", "writers", "aggregate/s",
           "per-proc/s", "ns/op", "vs 1 proc", "aggregate min-max", "interval", "evictions",
           "reinserted", "MB/s", "other");
    double single = 0;
    for (int w = 1; w <= c->writers_max; w++) {
        double v[MAX_REPS];
        memcpy(v, agg[w], sizeof v);
        double med = bu_median(v, c->reps);
        int mi = 0; /* the repetition that gave the median (or the one below it) */
        for (int r = 0; r < c->reps; r++)
            if (agg[w][r] == v[(c->reps - 1) / 2]) mi = r;
        if (w == 1) single = med;
        double per = med / w;
        printf("%7d %14.0f %14.0f %9.1f %10.3f %10.0f-%-10.0f %8.2fs %10llu %11llu %8.0f %7.2f%s\n",
               w, med, per, 1e9 / per, single > 0 ? med / single : 0.0, v[0], v[c->reps - 1],
               interval[w][mi], (unsigned long long)ev[w][mi], (unsigned long long)ri[w][mi],
               med * (double)vlen / 1e6, other[w], bad[w] ? "  ERRORS (see stderr)" : "");
        if (bad[w]) g_bugs++;
    }
    fflush(stdout);
}

/* ---------------------------------------------------------------- main */

static int cmp_int(const void *a, const void *b) {
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: scaling [options]\n"
            "  -p, --procs N         largest number of reader processes (default: nproc)\n"
            "  -P, --points LIST     reader process counts to measure, e.g. 1,2,4,8,16\n"
            "                        (default 1..procs; the 1-process point is added)\n"
            "  -t, --time S          seconds per measurement (default 3)\n"
            "  -r, --reps N          repetitions of every point; the table shows the median\n"
            "                        and the min-max of the aggregate (default 1, max 15)\n"
            "  -k, --keys N          keys in the read region (default 1M)\n"
            "  -v, --value B         value bytes for reads (default 64; try 512)\n"
            "  -m, --modes LIST      comma list of get,begin,pinned,set,evict (default: all)\n"
            "  -w, --writers N       largest number of writer processes (default 2)\n"
            "      --set-keys N      key space of the set runs (default 1M)\n"
            "      --set-value B     value bytes of the set runs (default 512)\n"
            "      --set-region SZ   region of the no-eviction set run (default 4G)\n"
            "      --evict-region SZ region of the set run under eviction (default 256M)\n"
            "  -d, --dir DIR         directory of the regions (default /dev/shm)\n"
            "      --pin             pin process i to CPU i %% nproc\n"
            "      --quick           -t 0.3 -k 200k --set-keys 200k --set-region 512M\n"
            "                        --evict-region 64M (explicit flags still win)\n");
}

int main(int argc, char **argv) {
    bu_cleanup_install();
    g_ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (g_ncpu < 1) g_ncpu = 1;
    cfg c = {.procs_max = g_ncpu, .writers_max = 2, .time_s = 3, .reps = 1, .keys = 1000000,
             .value = 64, .set_keys = 1000000, .set_value = 512,
             .set_region = 4ull << 30, .evict_region = 256ull << 20,
             .dir = "/dev/shm", .modes = (1u << M_COUNT) - 1};
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--quick") == 0) {
            c.time_s = 0.3;
            c.keys = 200000;
            c.set_keys = 200000;
            c.set_region = 512ull << 20;
            c.evict_region = 64ull << 20;
        }
    enum { O_SETKEYS = 256, O_SETVALUE, O_SETREGION, O_EVREGION, O_PIN, O_QUICK };
    static const struct option lo[] = {
        {"procs", 1, 0, 'p'}, {"points", 1, 0, 'P'}, {"time", 1, 0, 't'}, {"reps", 1, 0, 'r'}, {"keys", 1, 0, 'k'},
        {"value", 1, 0, 'v'}, {"modes", 1, 0, 'm'}, {"writers", 1, 0, 'w'},
        {"dir", 1, 0, 'd'}, {"set-keys", 1, 0, O_SETKEYS},
        {"set-value", 1, 0, O_SETVALUE}, {"set-region", 1, 0, O_SETREGION},
        {"evict-region", 1, 0, O_EVREGION}, {"pin", 0, 0, O_PIN},
        {"quick", 0, 0, O_QUICK}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "p:P:t:r:k:v:m:w:d:h", lo, NULL)) != -1) {
        switch (o) {
        case 'p': c.procs_max = atoi(optarg); break;
        case 'P': {
            c.npoints = 0;
            char *q = strdup(optarg), *save = NULL;
            for (char *t = strtok_r(q, ",", &save); t && c.npoints < 64;
                 t = strtok_r(NULL, ",", &save))
                c.points[c.npoints++] = atoi(t);
            free(q);
            break;
        }
        case 't': c.time_s = atof(optarg); break;
        case 'r': c.reps = atoi(optarg); break;
        case 'k': c.keys = bu_parse_count(optarg); break;
        case 'v': c.value = bu_parse_size(optarg); break;
        case 'w': c.writers_max = atoi(optarg); break;
        case 'd': c.dir = optarg; break;
        case O_SETKEYS: c.set_keys = bu_parse_count(optarg); break;
        case O_SETVALUE: c.set_value = bu_parse_size(optarg); break;
        case O_SETREGION: c.set_region = bu_parse_size(optarg); break;
        case O_EVREGION: c.evict_region = bu_parse_size(optarg); break;
        case O_PIN: c.pin = true; break;
        case O_QUICK: break;
        case 'm': {
            c.modes = 0;
            char *s = strdup(optarg), *save = NULL;
            for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int m;
                for (m = 0; m < M_COUNT; m++)
                    if (strcmp(t, mode_key[m]) == 0) break;
                if (m == M_COUNT) bu_die("unknown mode %s", t);
                c.modes |= 1u << m;
            }
            free(s);
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (c.npoints == 0 && c.procs_max <= 64) {
        for (int n = 1; n <= c.procs_max && n <= 1024; n++) c.points[c.npoints++] = n;
    } else {
        if (c.npoints == 0) /* many cores: powers of two, then the maximum */
            for (int n = 1; n < c.procs_max && c.npoints < 63; n *= 2)
                c.points[c.npoints++] = n;
        if (c.npoints < 64 && c.npoints > 0 && c.points[c.npoints - 1] != c.procs_max &&
            c.procs_max <= 1024)
            c.points[c.npoints++] = c.procs_max;
        /* sorted, unique, 1 first (the efficiency baseline) */
        int sorted[65], ns = 0;
        sorted[ns++] = 1;
        for (int i = 0; i < c.npoints; i++) {
            int v = c.points[i], j;
            if (v < 1 || v > 1024) bu_die("bad process count %d", v);
            for (j = 0; j < ns && sorted[j] != v; j++) {
            }
            if (j == ns) sorted[ns++] = v;
        }
        qsort(sorted, (size_t)ns, sizeof sorted[0], cmp_int);
        if (ns > 64) ns = 64;
        memcpy(c.points, sorted, sizeof(int) * (size_t)ns);
        c.npoints = ns;
        c.procs_max = sorted[ns - 1];
    }
    if (c.procs_max < 1 || c.procs_max > 1024 || c.writers_max < 1 || c.writers_max > 1024 ||
        c.time_s <= 0 || c.reps < 1 || c.reps > MAX_REPS || c.keys < 1 || c.value < 8 || c.set_value < 8 || c.set_keys < 1)
        bu_die("bad arguments (see --help)");

    printf("cachee L0 scaling benchmark\n");
    bu_print_machine(stdout);
    printf("config: procs up to %d, writers 1..%d, %.2f s per point, %d repetition(s), regions in %s%s\n",
           c.procs_max, c.writers_max, c.time_s, c.reps, c.dir, c.pin ? ", pinned to CPUs" : "");
    printf("columns: aggregate/s = sum over processes of ops / own seconds (median of the\n"
           "         repetitions); efficiency = aggregate / (procs x the 1-process median);\n"
           "         other = CPUs busy with other processes or stolen by the hypervisor during\n"
           "         the point (max over repetitions; > 0.1 means the point is disturbed)\n");
    int maxp = c.procs_max > c.writers_max ? c.procs_max : c.writers_max;
    shared *sh = bu_shared_alloc(sizeof(shared) + sizeof(res) * (size_t)maxp);
    if (c.modes & ((1u << M_GET) | (1u << M_BEGIN) | (1u << M_PINNED))) run_reads(&c, sh);
    if (c.modes & ((1u << M_SET) | (1u << M_EVICT))) {
        printf("\n== SET THROUGHPUT: %.1f s per point (no-evict runs stop earlier when the"
               " free space is used up)\n", c.time_s);
        if (c.modes & (1u << M_SET)) run_sets(&c, sh, M_SET);
        if (c.modes & (1u << M_EVICT)) run_sets(&c, sh, M_EVICT);
    }
    if (g_bugs) {
        printf("\nscaling: %d problem(s) that may be engine bugs; see stderr\n", g_bugs);
        return 1;
    }
    return 0;
}
