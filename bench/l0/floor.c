/*
 * floor.c -- where the time of one L0 read goes, from C, beside the floor:
 * a bare loop that makes exactly the memory accesses a read cannot avoid.
 *
 * The data set is the one of the Python benchmarks (bench/python/micro.py
 * --region): N keys "key:%08d" with --value byte values (default 512 B),
 * plus N 128 x float32 vectors under "vec:%08d" with their dtype/shape
 * metadata, in one region of --size bytes (default 1 GiB).  Lookups follow
 * one uniform random stream (or Zipf 0.99, --zipf) of existing keys; every
 * step below runs over the same stream, in interleaved rounds, and the
 * table shows the median ns per lookup (and the spread) of:
 *
 *   loop       the stream loop and the key formatting alone
 *   hash       + XXH3-64 of the key
 *   +entry     + the index entry at the key's home slot (linear probe, tag
 *              compare), nothing of the record
 *   +record    + the record header and the key compare
 *   floor      + a copy of the value into a buffer.  No seqlock, no
 *              generation checks, no bounds checks, no statistics, no
 *              frequency update: what any hash table in shared memory must do
 *   floor+pf   the floor, asking for every line of the record (up to 1 KiB)
 *              as soon as its address is known
 *   contains   cachee_l0_contains (a full lookup, no copy)
 *   read+copy  cachee_l0_read_begin, memcpy, cachee_l0_read_validate (what
 *              the Python extension's get() does before it builds bytes)
 *   get        cachee_l0_get into a buffer
 *   miss       cachee_l0_get of keys that are absent
 *
 * Gap = step - floor: the price of validation, statistics and the API.
 *
 *   floor [--keys N] [--lookups N] [--rounds N] [--size BYTES] [--value B]
 *         [--zipf] [--huge] [--dir DIR]
 */
#include "benchutil.h"

#include <getopt.h>
#include <math.h>

#include "l0_internal.h" /* the floor walks the layout itself */

enum { S_LOOP, S_HASH, S_ENTRY, S_RECORD, S_FLOOR, S_FLOOR_PF, S_CONTAINS, S_READ,
       S_GET, S_MISS, S_N };
static const char *const step_name[S_N] = {"loop",     "hash",     "+entry",    "+record",
                                           "floor",    "floor+pf", "contains",  "read+copy",
                                           "get",      "miss"};

typedef struct cfg {
    uint64_t keys, lookups, size, value;
    int rounds;
    bool zipf, huge;
    const char *dir;
} cfg;

static size_t key_of(char *out, const char *prefix, uint64_t i) {
    return (size_t)snprintf(out, 32, "%s:%08llu", prefix, (unsigned long long)i);
}

/* The floor: hash, home slot, probe by tag, record, key, copy.  upto stops
 * early (S_ENTRY: the entry only, S_RECORD: no copy); pf asks for the
 * record's lines at once. */
static inline int bare_get(const cachee_l0 *h, const char *key, size_t kl,
                           uint8_t *buf, int upto, bool pf) {
    const l0_geom *g = &h->g;
    uint64_t hash = cachee_l0_hash(key, kl);
    const struct cachee_l0_shm_entry *E =
        (const struct cachee_l0_shm_entry *)(h->ro + g->index_off +
                                             l0_shard_of(g, hash) * g->shard_slots *
                                                 L0_ENTRY_BYTES);
    uint32_t tag = l0_tag_of(hash);
    uint64_t i = l0_home_of(g, hash);
    for (uint64_t step = 0; step < g->shard_slots; step++) {
        uint64_t w0 = E[i].w0, w1 = E[i].w1;
        uint32_t kind = l0_e_kind(w1);
        if (kind == CACHEE_L0_ENTRY_EMPTY) return -1;
        if (kind == CACHEE_L0_ENTRY_LIVE && l0_e_tag(w0) == tag) {
            if (upto == S_ENTRY) return (int)(w1 & 0xff);
            const uint8_t *p = h->ro + g->arena_off + l0_e_loc(w1) * CACHEE_L0_RECORD_ALIGN;
            if (pf)
                for (int o = 0; o < 1024; o += 64) __builtin_prefetch(p + o);
            const struct cachee_l0_shm_record *r = (const void *)p;
            if (r->hash_lo == (uint32_t)hash && r->key_len == kl &&
                memcmp(p + L0_RECORD_HEADER, key, kl) == 0) {
                if (upto == S_RECORD) return (int)r->value_len;
                memcpy(buf, p + l0_rec_value_off(r), r->value_len);
                return (int)r->value_len;
            }
        }
        i = i + 1 == g->shard_slots ? 0 : i + 1;
    }
    return -1;
}

/* ns per lookup of one step over the stream. */
static double run_step(int step, cachee_l0 *h, const uint32_t *stream, uint64_t n,
                       uint8_t *buf, size_t cap, uint64_t *sink) {
    char key[32];
    uint64_t acc = 0;
    int64_t t0 = bu_now_ns();
    for (uint64_t j = 0; j < n; j++) {
        size_t kl = key_of(key, step == S_MISS ? "nokey" : "key", stream[j]);
        switch (step) {
        case S_LOOP:
            acc += (uint8_t)key[kl - 1];
            break;
        case S_HASH:
            acc += cachee_l0_hash(key, kl);
            break;
        case S_ENTRY:
        case S_RECORD:
        case S_FLOOR:
        case S_FLOOR_PF:
            acc += (uint64_t)bare_get(h, key, kl, buf, step, step == S_FLOOR_PF) + buf[0];
            break;
        case S_CONTAINS:
            acc += (uint64_t)cachee_l0_contains(h, key, kl);
            break;
        case S_READ: {
            cachee_l0_view v;
            for (;;) {
                if (cachee_l0_read_begin(h, key, kl, &v) != 0) bu_die("read_begin");
                memcpy(buf, v.data, v.len);
                if (cachee_l0_read_validate(h, &v) == 0) break;
            }
            acc += buf[0] + v.len;
            break;
        }
        case S_GET:
        case S_MISS: {
            int rc = cachee_l0_get(h, key, kl, buf, cap, NULL);
            if (rc != (step == S_MISS ? CACHEE_L0_NOTFOUND : 0)) bu_die("get: %d", rc);
            acc += buf[0];
            break;
        }
        }
    }
    int64_t t1 = bu_now_ns();
    *sink += acc;
    return (double)(t1 - t0) / (double)n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *xs, int n) {
    qsort(xs, (size_t)n, sizeof *xs, cmp_double);
    return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

int main(int argc, char **argv) {
    cfg c = {100000, 1000000, 1ull << 30, 512, 7, false, false, "/dev/shm"};
    static const struct option opts[] = {
        {"keys", 1, 0, 'k'}, {"lookups", 1, 0, 'l'}, {"rounds", 1, 0, 'r'},
        {"size", 1, 0, 's'}, {"value", 1, 0, 'v'},   {"zipf", 0, 0, 'z'},
        {"huge", 0, 0, 'H'}, {"dir", 1, 0, 'd'},     {0, 0, 0, 0}};
    for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (o) {
        case 'k': c.keys = strtoull(optarg, NULL, 0); break;
        case 'l': c.lookups = strtoull(optarg, NULL, 0); break;
        case 'r': c.rounds = atoi(optarg); break;
        case 's': c.size = bu_parse_size(optarg); break;
        case 'v': c.value = bu_parse_size(optarg); break;
        case 'z': c.zipf = true; break;
        case 'H': c.huge = true; break;
        case 'd': c.dir = optarg; break;
        default:
            fprintf(stderr, "usage: floor [--keys N] [--lookups N] [--rounds N] "
                            "[--size BYTES] [--value B] [--zipf] [--huge] [--dir DIR]\n");
            return 2;
        }
    }
    if (c.rounds < 1 || c.rounds > 64 || c.keys == 0 || c.lookups == 0 || c.value < 8)
        bu_die("bad arguments");
    bu_cleanup_install();
    const char *path = bu_region_path(c.dir, "floor");
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    o.size = c.size;
    o.flags = CACHEE_L0_CREATE | CACHEE_L0_EXCLUSIVE | (c.huge ? CACHEE_L0_HUGEPAGES : 0);
    cachee_l0 *h = NULL;
    int rc = cachee_l0_open(path, &o, &h);
    if (rc != 0) bu_die("open %s: %s", path, cachee_l0_strerror(rc));

    uint8_t *val = malloc(c.value), *buf = malloc(c.value + 4096);
    float vec[128];
    const char meta[] = "<f4|128"; /* stands for the extension's dtype/shape */
    char key[32];
    bu_rng rng;
    bu_rng_seed(&rng, 42);
    for (uint64_t i = 0; i < c.keys; i++) {
        for (uint64_t b = 0; b < c.value; b += 8) {
            uint64_t x = bu_rng_next(&rng);
            memcpy(val + b, &x, c.value - b < 8 ? c.value - b : 8);
        }
        if ((rc = cachee_l0_set(h, key, key_of(key, "key", i), val, c.value, NULL, 0, 0, 0)))
            bu_die("set: %s", cachee_l0_strerror(rc));
        for (int f = 0; f < 128; f++) vec[f] = (float)(i + f);
        if ((rc = cachee_l0_set(h, key, key_of(key, "vec", i), vec, sizeof vec, meta,
                                sizeof meta - 1, 0, 0)))
            bu_die("set: %s", cachee_l0_strerror(rc));
    }
    cachee_l0_stats st;
    cachee_l0_stats_get(h, &st);
    if (st.entries != 2 * c.keys) bu_die("the region kept %llu of %llu entries: make it larger",
                                         (unsigned long long)st.entries,
                                         (unsigned long long)(2 * c.keys));
    cachee_l0_info info;
    cachee_l0_info_get(h, &info);
    bu_prefault(path); /* no first-touch faults in the timed loops */

    /* The stream: uniform, or Zipf 0.99 over a random ranking. */
    uint32_t *stream = malloc(c.lookups * sizeof *stream);
    if (c.zipf) {
        double *cdf = malloc(c.keys * sizeof *cdf), s = 0;
        uint32_t *rank = malloc(c.keys * sizeof *rank);
        for (uint64_t i = 0; i < c.keys; i++) {
            s += pow((double)(i + 1), -0.99);
            cdf[i] = s;
            rank[i] = (uint32_t)i;
        }
        for (uint64_t i = c.keys - 1; i > 0; i--) {
            uint64_t j = bu_below(bu_rng_next(&rng), i + 1);
            uint32_t t = rank[i];
            rank[i] = rank[j];
            rank[j] = t;
        }
        for (uint64_t j = 0; j < c.lookups; j++) {
            double u = (double)(bu_rng_next(&rng) >> 11) / 9007199254740992.0 * s;
            uint64_t lo = 0, hi = c.keys - 1;
            while (lo < hi) {
                uint64_t mid = (lo + hi) / 2;
                if (cdf[mid] < u) lo = mid + 1;
                else hi = mid;
            }
            stream[j] = rank[lo];
        }
        free(cdf);
        free(rank);
    } else {
        for (uint64_t j = 0; j < c.lookups; j++)
            stream[j] = (uint32_t)bu_below(bu_rng_next(&rng), c.keys);
    }

    bu_print_machine(stdout);
    printf("region %.0f MiB (index %llu entries in %u shards, %.1f MiB), %llu keys of %llu B "
           "+ %llu vectors of 512 B, %llu %s lookups, %d rounds%s\n",
           (double)info.region_size / BU_MiB, (unsigned long long)info.max_entries,
           info.shards,
           (double)info.shards * info.shard_slots * L0_ENTRY_BYTES / BU_MiB,
           (unsigned long long)c.keys, (unsigned long long)c.value,
           (unsigned long long)c.keys, (unsigned long long)c.lookups,
           c.zipf ? "Zipf 0.99" : "uniform", c.rounds, c.huge ? ", huge pages asked" : "");

    double ns[S_N][64];
    uint64_t sink = 0;
    for (int s = 0; s < S_N; s++) run_step(s, h, stream, c.lookups, buf, c.value + 4096, &sink);
    for (int r = 0; r < c.rounds; r++)
        for (int s = 0; s < S_N; s++)
            ns[s][r] = run_step(s, h, stream, c.lookups, buf, c.value + 4096, &sink);

    double med[S_N], lo[S_N], hi[S_N];
    for (int s = 0; s < S_N; s++) {
        lo[s] = hi[s] = ns[s][0];
        for (int r = 1; r < c.rounds; r++) {
            if (ns[s][r] < lo[s]) lo[s] = ns[s][r];
            if (ns[s][r] > hi[s]) hi[s] = ns[s][r];
        }
        med[s] = median(ns[s], c.rounds);
    }
    printf("\n%-10s %9s %15s %12s\n", "step", "ns/op", "spread", "- above/floor");
    for (int s = 0; s < S_N; s++)
        printf("%-10s %9.1f %7.1f-%-7.1f %+11.1f\n", step_name[s], med[s], lo[s], hi[s],
               s > S_FLOOR ? med[s] - med[S_FLOOR] : s > S_LOOP ? med[s] - med[s - 1] : 0.0);
    printf("(up to floor, the last column is the cost of the step over the one above)\n");
    if (sink == 42) printf("\n"); /* keep the work */
    cachee_l0_close(h);
    bu_region_remove(path);
    free(stream);
    free(val);
    free(buf);
    return 0;
}
