/*
 * test_multiproc.c -- many processes (and threads) on one region.
 *
 * Writers overwrite and delete under constant eviction pressure; readers
 * verify every value they get (copying reads, optimistic reads validated
 * afterwards, pinned views and batches): values carry their own checksum, so
 * a torn read is detected and counted, and must never happen.  Pinned views
 * must keep their exact bytes across overwrite, delete, expiry and eviction,
 * and their segments must not be reused while pinned.  Processes forked from
 * a process that used the handle (children, grandchildren) work at once.
 * Concurrent creators end up with one region.
 *
 * L0TEST_LONG=1 runs the stress tests for 60 s and 30 s instead of 8 s and 5 s.
 * The stress tests run at least that long, then on until the work they check
 * for has happened (hits, sets, evictions: a slow machine needs longer),
 * within a hang guard.
 */
#define _GNU_SOURCE
#include "l0test.h"
#include "l0util.h"

#include <pthread.h>
#include <sched.h>

#define KiB (1ull << 10)
#define MiB (1ull << 20)

/* Counters of one worker, in shared memory. */
typedef struct wstats {
    uint64_t ops, reads, hits, torn, pin_torn, retries, errors, last_error;
    uint64_t sets, set_full, deletes;
    uint64_t torn_by_mode[4]; /* copy, optimistic, pinned, batch */
} wstats;

static const char *mode_name[4] = {"get", "read_begin+validate", "get_pinned",
                                   "get_many"};

/* Count a torn read and describe the first few. */
static void torn(wstats *st, int mode, uint32_t key, const void *data, uint64_t len,
                 uint64_t version) {
    st->torn++;
    st->torn_by_mode[mode]++;
    if (st->torn > 3) return;
    u_vhdr hd;
    memset(&hd, 0, sizeof hd);
    memcpy(&hd, data, len < sizeof hd ? len : sizeof hd);
    uint64_t payload = len > U_VHDR ? cachee_l0_hash((const uint8_t *)data + U_VHDR,
                                                      len - U_VHDR)
                                    : 0;
    fprintf(stderr, "  torn read (%s) of k:%u: len %llu version %llu; value header: "
                    "magic %s key %u seq %#llx len %llu hash %s\n",
            mode_name[mode], key, (unsigned long long)len, (unsigned long long)version,
            hd.magic == U_VMAGIC ? "ok" : "BAD", hd.key, (unsigned long long)hd.seq,
            (unsigned long long)hd.len, hd.hash == payload ? "ok" : "MISMATCH");
    if (hd.magic != U_VMAGIC || hd.key != key || hd.len != len) return;
    /* Which bytes differ from the value the header names? */
    uint8_t *want = malloc(len);
    if (want == NULL) return;
    u_make_value(want, len, key, hd.seq);
    int shown = 0;
    uint64_t ndiff = 0;
    for (uint64_t i = 0; i < len; i++) {
        uint8_t got = ((const uint8_t *)data)[i];
        if (got == want[i]) continue;
        ndiff++;
        if (shown++ < 6)
            fprintf(stderr, "    value byte %llu (mod 64 = %llu): %#04x, want %#04x\n",
                    (unsigned long long)i, (unsigned long long)(i % 64), got, want[i]);
    }
    fprintf(stderr, "    %llu bytes differ\n", (unsigned long long)ndiff);
    free(want);
}

typedef struct wctx {
    cachee_l0 *h;
    uint32_t id;
    uint32_t nkeys;
    uint64_t seg;
    uint64_t value_max;
    volatile uint64_t *stop;
    wstats *st;
} wctx;

static void note_error(wstats *st, int rc, const char *what, uint32_t key) {
    st->errors++;
    if (st->errors <= 5)
        fprintf(stderr, "  worker: %s(k:%u) = %d (%s)\n", what, key, rc,
                cachee_l0_strerror(rc));
    st->last_error = (uint64_t)(int64_t)rc;
}

static void *writer_loop(void *arg) {
    wctx *c = arg;
    u_rng r = u_rng_seed(1000 + c->id);
    size_t cap = c->value_max;
    uint8_t *buf = malloc(cap);
    CHECK(buf != NULL);
    uint64_t n = 0;
    while (!__atomic_load_n(c->stop, __ATOMIC_ACQUIRE)) {
        uint32_t key = (uint32_t)u_below(&r, c->nkeys);
        char k[32];
        size_t kl = u_key(k, sizeof k, key);
        uint64_t dice = u_below(&r, 100);
        c->st->ops++;
        if (dice < 8) {
            int rc = cachee_l0_delete(c->h, k, kl);
            if (rc == 0) c->st->deletes++;
            else if (rc != CACHEE_L0_NOTFOUND) note_error(c->st, rc, "delete", key);
            continue;
        }
        size_t len = dice < 10 ? c->seg + u_below(&r, 2 * c->seg)
                               : U_VHDR + u_below(&r, 3000);
        if (len > cap) len = cap;
        uint64_t seq = ((uint64_t)c->id << 40) | n++;
        u_make_value(buf, len, key, seq);
        int rc = cachee_l0_set(c->h, k, kl, buf, len, NULL, 0,
                               dice < 12 ? 5 * 1000000ull : 0, 0);
        if (rc == 0) c->st->sets++;
        else if (rc == CACHEE_L0_E_FULL) c->st->set_full++;
        else note_error(c->st, rc, "set", key);
    }
    free(buf);
    return NULL;
}

#define RING 16

static void *reader_loop(void *arg) {
    wctx *c = arg;
    u_rng r = u_rng_seed(2000 + c->id);
    uint8_t *buf = malloc(c->value_max);
    CHECK(buf != NULL);
    cachee_l0_view ring[RING];
    uint8_t *saved[RING];
    memset(ring, 0, sizeof ring);
    memset(saved, 0, sizeof saved);
    uint64_t mode = 0;
    while (!__atomic_load_n(c->stop, __ATOMIC_ACQUIRE)) {
        uint32_t key = (uint32_t)u_below(&r, c->nkeys);
        char k[32];
        size_t kl = u_key(k, sizeof k, key);
        c->st->ops++;
        mode = (mode + 1) % 4;
        if (mode == 0) { /* copying read */
            cachee_l0_item it;
            memset(&it, 0, sizeof it);
            int rc = cachee_l0_get(c->h, k, kl, buf, c->value_max, &it);
            c->st->reads++;
            if (rc == 0) {
                c->st->hits++;
                if (u_verify_value(buf, it.value_len, key, NULL) != 0)
                    torn(c->st, 0, key, buf, it.value_len, it.version);
            } else if (rc != CACHEE_L0_NOTFOUND) {
                note_error(c->st, rc, "get", key);
            }
        } else if (mode == 1) { /* optimistic read */
            cachee_l0_view v;
            int rc = cachee_l0_read_begin(c->h, k, kl, &v);
            c->st->reads++;
            if (rc == 0) {
                CHECK(v.len <= c->value_max);
                memcpy(buf, v.data, v.len);
                int vr = cachee_l0_read_validate(c->h, &v);
                if (vr == 0) {
                    c->st->hits++;
                    if (u_verify_value(buf, v.len, key, NULL) != 0)
                        torn(c->st, 1, key, buf, v.len, v.version);
                } else if (vr == CACHEE_L0_E_RETRY) {
                    c->st->retries++;
                } else {
                    note_error(c->st, vr, "read_validate", key);
                }
            } else if (rc != CACHEE_L0_NOTFOUND) {
                note_error(c->st, rc, "read_begin", key);
            }
        } else if (mode == 2) { /* pinned, held for a while */
            int slot = (int)u_below(&r, RING);
            if (ring[slot].pin_ != 0) {
                if (memcmp(ring[slot].data, saved[slot], ring[slot].len) != 0)
                    c->st->pin_torn++;
                int rc = cachee_l0_release(c->h, &ring[slot]);
                if (rc != 0) note_error(c->st, rc, "release", key);
                free(saved[slot]);
                saved[slot] = NULL;
            }
            int rc = cachee_l0_get_pinned(c->h, k, kl, &ring[slot]);
            c->st->reads++;
            if (rc == 0) {
                c->st->hits++;
                if (u_verify_value(ring[slot].data, ring[slot].len, key, NULL) != 0)
                    torn(c->st, 2, key, ring[slot].data, ring[slot].len,
                         ring[slot].version);
                saved[slot] = malloc(ring[slot].len + 1);
                CHECK(saved[slot] != NULL);
                memcpy(saved[slot], ring[slot].data, ring[slot].len);
            } else {
                memset(&ring[slot], 0, sizeof ring[slot]);
                if (rc != CACHEE_L0_NOTFOUND) note_error(c->st, rc, "get_pinned", key);
            }
        } else { /* batch */
            enum { B = 8 };
            char kb[B][32];
            const void *keys[B];
            size_t lens[B];
            uint32_t ids[B];
            cachee_l0_view views[B];
            int res[B];
            for (int i = 0; i < B; i++) {
                ids[i] = (uint32_t)u_below(&r, c->nkeys);
                lens[i] = u_key(kb[i], sizeof kb[i], ids[i]);
                keys[i] = kb[i];
            }
            int rc = cachee_l0_get_many(c->h, B, keys, lens, views, res);
            if (rc != 0) {
                note_error(c->st, rc, "get_many", key);
                continue;
            }
            for (int i = 0; i < B; i++) {
                c->st->reads++;
                if (res[i] == 0) {
                    c->st->hits++;
                    if (u_verify_value(views[i].data, views[i].len, ids[i], NULL) != 0)
                        torn(c->st, 3, ids[i], views[i].data, views[i].len,
                             views[i].version);
                    int rr = cachee_l0_release(c->h, &views[i]);
                    if (rr != 0) note_error(c->st, rr, "release(batch)", ids[i]);
                } else if (res[i] != CACHEE_L0_NOTFOUND) {
                    note_error(c->st, res[i], "get_many[i]", ids[i]);
                }
            }
        }
    }
    for (int i = 0; i < RING; i++) {
        if (ring[i].pin_ == 0) continue;
        if (memcmp(ring[i].data, saved[i], ring[i].len) != 0) c->st->pin_torn++;
        int rc = cachee_l0_release(c->h, &ring[i]);
        if (rc != 0) note_error(c->st, rc, "release(final)", 0);
        free(saved[i]);
    }
    free(buf);
    return NULL;
}

static void sum_and_report(const char *what, wstats *w, int n, double secs) {
    wstats t;
    memset(&t, 0, sizeof t);
    for (int i = 0; i < n; i++) {
        t.ops += w[i].ops;
        t.reads += w[i].reads;
        t.hits += w[i].hits;
        t.torn += w[i].torn;
        t.pin_torn += w[i].pin_torn;
        t.retries += w[i].retries;
        t.errors += w[i].errors;
        t.sets += w[i].sets;
        t.set_full += w[i].set_full;
        t.deletes += w[i].deletes;
        for (int m = 0; m < 4; m++) t.torn_by_mode[m] += w[i].torn_by_mode[m];
    }
    printf("  %s: %.1f s, %llu ops: %llu reads (%llu hits), torn reads: %llu, "
           "pinned views changed: %llu, validate retries %llu, sets %llu "
           "(E_FULL %llu), deletes %llu, errors %llu\n",
           what, secs, (unsigned long long)t.ops, (unsigned long long)t.reads,
           (unsigned long long)t.hits, (unsigned long long)t.torn,
           (unsigned long long)t.pin_torn, (unsigned long long)t.retries,
           (unsigned long long)t.sets, (unsigned long long)t.set_full,
           (unsigned long long)t.deletes, (unsigned long long)t.errors);
    if (t.torn)
        printf("  torn reads by kind: get %llu, read_begin+validate %llu, "
               "get_pinned %llu, get_many %llu\n",
               (unsigned long long)t.torn_by_mode[0], (unsigned long long)t.torn_by_mode[1],
               (unsigned long long)t.torn_by_mode[2], (unsigned long long)t.torn_by_mode[3]);
    CHECK(t.hits > 0);
    CHECK(t.sets > 0);
    CHECK(t.torn == 0);
    CHECK(t.pin_torn == 0);
    CHECK(t.errors == 0);
}

/* The workers have done what the stress tests check that they did: some
 * hits, some sets, and evictions in the region.  (Their counters are read
 * while they run; they only grow.) */
static bool enough_work(cachee_l0 *h, wstats *w, int n) {
    uint64_t hits = 0, sets = 0;
    for (int i = 0; i < n; i++) {
        hits += __atomic_load_n(&w[i].hits, __ATOMIC_RELAXED);
        sets += __atomic_load_n(&w[i].sets, __ATOMIC_RELAXED);
    }
    return hits > 0 && sets > 0 && u_stats(h).evictions > 0;
}

TEST(processes_no_torn_reads_under_eviction) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "stress", 3 * MiB, 16 * KiB, 8192, 0);
    cachee_l0_info info = u_info(h);
    const int W = 2, R = 2;
    double secs = u_long_mode() ? 60.0 : 8.0;
    volatile uint64_t *stop = u_shm(4096);
    wstats *ws = u_shm(sizeof(wstats) * (size_t)(W + R));
    pid_t pids[8];
    for (int i = 0; i < W + R; i++) {
        pids[i] = u_fork();
        if (pids[i] == 0) {
            wctx c = {h, (uint32_t)i, 3000, info.segment_size, info.value_max / 4,
                      stop, &ws[i]};
            if (i < W) writer_loop(&c);
            else reader_loop(&c);
            _exit(0);
        }
    }
    double t0 = l0test_now(), cap = secs + u_patience(60);
    int checks = 0;
    while ((l0test_now() - t0 < secs || !enough_work(h, ws, W + R)) &&
           l0test_now() - t0 < cap) {
        u_sleep_ms(500);
        CHECK_REGION(h); /* consistent while everybody works */
        checks++;
    }
    __atomic_store_n(stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < W + R; i++) CHECK_CHILD(pids[i], 30);
    sum_and_report("processes", ws, W + R, l0test_now() - t0);
    cachee_l0_stats s = u_stats(h);
    u_print_stats("end", &s);
    printf("  %d checks while running passed\n", checks);
    CHECK(s.evictions > 0);
    CHECK(s.pins == 0 && s.pinned_bytes == 0);
    CHECK(s.live_procs == 1);
    CHECK(s.reaped_procs == (uint64_t)(W + R));
    U_FINISH(h, name);
}

TEST(threads_no_torn_reads_under_eviction) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "threads", 3 * MiB, 16 * KiB, 8192, 0);
    cachee_l0_info info = u_info(h);
    enum { W = 2, R = 2 };
    double secs = u_long_mode() ? 30.0 : 5.0;
    volatile uint64_t stop = 0;
    wstats ws[W + R];
    memset(ws, 0, sizeof ws);
    wctx ctx[W + R];
    pthread_t th[W + R];
    for (int i = 0; i < W + R; i++) {
        ctx[i] = (wctx){h, (uint32_t)(10 + i), 3000, info.segment_size,
                        info.value_max / 4, &stop, &ws[i]};
        CHECK(pthread_create(&th[i], NULL, i < W ? writer_loop : reader_loop,
                             &ctx[i]) == 0);
    }
    double t0 = l0test_now(), cap = secs + u_patience(60);
    while ((l0test_now() - t0 < secs || !enough_work(h, ws, W + R)) &&
           l0test_now() - t0 < cap) {
        u_sleep_ms(500);
        CHECK_REGION(h);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < W + R; i++) CHECK(pthread_join(th[i], NULL) == 0);
    sum_and_report("threads", ws, W + R, l0test_now() - t0);
    cachee_l0_stats s = u_stats(h);
    CHECK(s.evictions > 0);
    CHECK(s.pins == 0 && s.pinned_bytes == 0);
    CHECK(s.live_procs == 1);
    U_FINISH(h, name);
}

/*
 * A tiny region (1 MiB, 4 KiB segments, so segments are reused within
 * microseconds) and more threads than cores (so a thread is often preempted
 * in the middle of a call).  A verifier pins and checks values; nothing may
 * ever change a stored value: not an optimistic reader (read_begin, which
 * must not write into memory it has not pinned), not a writer whose
 * reservation was reclaimed under it.
 */
typedef struct tiny {
    cachee_l0 *h;
    volatile uint64_t stop;
    uint64_t checked, corrupt, sets;
} tiny;

static void *tiny_writer(void *arg) {
    tiny *t = arg;
    static uint64_t ids;
    uint64_t id = __atomic_add_fetch(&ids, 1, __ATOMIC_RELAXED);
    u_rng r = u_rng_seed(7000 + id);
    uint8_t buf[2048];
    for (uint64_t n = 0; !__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE); n++) {
        uint32_t key = (uint32_t)u_below(&r, 2000);
        char k[32];
        size_t kl = u_key(k, sizeof k, key);
        size_t len = 64 + u_below(&r, 1500);
        u_make_value(buf, len, key, (id << 40) | n);
        int rc = cachee_l0_set(t->h, k, kl, buf, len, NULL, 0, 0, 0);
        CHECK(rc == 0 || rc == CACHEE_L0_E_FULL);
        __atomic_fetch_add(&t->sets, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void *tiny_optimistic(void *arg) {
    tiny *t = arg;
    u_rng r = u_rng_seed((uint64_t)(uintptr_t)&r);
    uint8_t buf[2048];
    for (uint64_t n = 0; !__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE); n++) {
        uint32_t key = (uint32_t)u_below(&r, 2000);
        char k[32];
        size_t kl = u_key(k, sizeof k, key);
        cachee_l0_view v;
        int rc = cachee_l0_read_begin(t->h, k, kl, &v);
        CHECK(rc == 0 || rc == CACHEE_L0_NOTFOUND);
        /* mostly bare lookups (as a reader that only wants the length or
         * metadata would do); now and then a full validated copy */
        if (rc == 0 && n % 16 == 0 && v.len <= sizeof buf) {
            memcpy(buf, v.data, v.len);
            if (cachee_l0_read_validate(t->h, &v) == 0 &&
                u_verify_value(buf, v.len, key, NULL) != 0)
                __atomic_fetch_add(&t->corrupt, 1, __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

static void *tiny_verifier(void *arg) {
    tiny *t = arg;
    u_rng r = u_rng_seed(99);
    wstats st;
    memset(&st, 0, sizeof st);
    while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
        uint32_t key = (uint32_t)u_below(&r, 2000);
        char k[32];
        size_t kl = u_key(k, sizeof k, key);
        cachee_l0_view v;
        int rc = cachee_l0_get_pinned(t->h, k, kl, &v);
        CHECK(rc == 0 || rc == CACHEE_L0_NOTFOUND);
        if (rc != 0) continue;
        __atomic_fetch_add(&t->checked, 1, __ATOMIC_RELAXED);
        if (u_verify_value(v.data, v.len, key, NULL) != 0) {
            __atomic_fetch_add(&t->corrupt, 1, __ATOMIC_RELAXED);
            torn(&st, 2, key, v.data, v.len, v.version); /* describes it */
        }
        OK(cachee_l0_release(t->h, &v));
    }
    return NULL;
}

static void tiny_run(const char *tag, int writers, int optimistic, double secs) {
    char name[128];
    u_name(name, sizeof name, tag);
    tiny t;
    memset(&t, 0, sizeof t);
    t.h = u_create_opts(name, 1 * MiB, 4 * KiB, 2048, 0);
    pthread_t th[16];
    int n = 0;
    for (int i = 0; i < writers; i++) CHECK(pthread_create(&th[n++], NULL, tiny_writer, &t) == 0);
    for (int i = 0; i < optimistic; i++)
        CHECK(pthread_create(&th[n++], NULL, tiny_optimistic, &t) == 0);
    CHECK(pthread_create(&th[n++], NULL, tiny_verifier, &t) == 0);
    /* at least secs, and until values were verified and evicted */
    double t0 = l0test_now(), cap = secs + u_patience(60);
    while ((l0test_now() - t0 < secs ||
            __atomic_load_n(&t.checked, __ATOMIC_RELAXED) == 0 ||
            u_stats(t.h).evictions == 0) &&
           l0test_now() - t0 < cap)
        u_sleep_ms(50);
    __atomic_store_n(&t.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < n; i++) CHECK(pthread_join(th[i], NULL) == 0);
    cachee_l0_stats s = u_stats(t.h);
    printf("  %d writer threads, %d optimistic readers, 1 verifier, %.1f s: %llu sets, "
           "%llu evictions, %llu verified reads, corrupted values: %llu\n",
           writers, optimistic, l0test_now() - t0, (unsigned long long)t.sets,
           (unsigned long long)s.evictions, (unsigned long long)t.checked,
           (unsigned long long)t.corrupt);
    CHECK(t.checked > 0 && s.evictions > 0);
    CHECK(t.corrupt == 0);
    CHECK_REGION(t.h);
    OK(cachee_l0_close(t.h));
    OK(cachee_l0_unlink(name));
}

TEST(tiny_region_optimistic_readers_never_corrupt_values) {
    tiny_run("tinyopt", 2, 2, u_long_mode() ? 30 : 3);
}

TEST(tiny_region_many_writers_never_corrupt_values) {
    tiny_run("tinywr", 5, 0, u_long_mode() ? 30 : 5);
}

/* ------------------------------------------------------------ pins */

/* Another process writes `factor` times the arena in fresh keys. */
static void flood_from_child(cachee_l0 *h, uint64_t bytes, uint32_t first_id) {
    pid_t pid = u_fork();
    if (pid == 0) {
        uint64_t done = 0;
        for (uint32_t id = first_id; done < bytes; id++) {
            size_t len = 200 + (id % 7) * 300;
            OK(u_set_val_ex(h, id, 1, len, 0, 0));
            done += len;
        }
        _exit(0);
    }
    CHECK_CHILD(pid, 60);
}

TEST(pinned_view_survives_overwrite_delete_expiry_eviction) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "pinsurv", 4 * MiB, 16 * KiB, 16384, 0);
    cachee_l0_info info = u_info(h);
    /* one normal value, one extent of three segments */
    OK(u_set_val_ex(h, 1, 1, 5000, 0, 0));
    OK(u_set_val_ex(h, 2, 1, 40000, 0, 0));
    cachee_l0_view v1, v2;
    OK(cachee_l0_get_pinned(h, "k:1", 3, &v1));
    OK(cachee_l0_get_pinned(h, "k:2", 3, &v2));
    uint8_t *c1 = malloc(v1.len), *c2 = malloc(v2.len);
    CHECK(c1 && c2);
    memcpy(c1, v1.data, v1.len);
    memcpy(c2, v2.data, v2.len);
    /* roll this process's open segment so the pinned one can be evicted */
    for (uint32_t id = 100; id < 140; id++) OK(u_set_val_ex(h, id, 1, 1000, 0, 0));

    OK(u_set_val_ex(h, 1, 2, 6000, 0, 0)); /* overwrite */
    OK(u_set_val_ex(h, 2, 2, 41000, 0, 0));
    CHECK(memcmp(v1.data, c1, v1.len) == 0 && memcmp(v2.data, c2, v2.len) == 0);
    OK(cachee_l0_delete(h, "k:1", 3)); /* delete */
    OK(cachee_l0_delete(h, "k:2", 3));
    CHECK(memcmp(v1.data, c1, v1.len) == 0 && memcmp(v2.data, c2, v2.len) == 0);
    OK(u_set_val_ex(h, 1, 3, 700, 20 * 1000000ull, 0)); /* expire */
    u_sleep_ms(40);
    uint8_t tmp[8];
    CHECK_RC(cachee_l0_get(h, "k:1", 3, tmp, sizeof tmp, NULL), CACHEE_L0_NOTFOUND);
    CHECK(memcmp(v1.data, c1, v1.len) == 0 && memcmp(v2.data, c2, v2.len) == 0);

    /* evict: another process writes 4x the arena */
    flood_from_child(h, 4 * info.arena_size, 10000);
    CHECK(memcmp(v1.data, c1, v1.len) == 0);
    CHECK(memcmp(v2.data, c2, v2.len) == 0);
    CHECK(u_verify_value(v1.data, v1.len, 1, NULL) == 0);
    CHECK(u_verify_value(v2.data, v2.len, 2, NULL) == 0);
    cachee_l0_stats s = u_stats(h);
    u_print_stats("pinned, after flood", &s);
    CHECK(s.pins == 2);
    CHECK(s.pinned_bytes == v1.len + v2.len);
    /* both pinned versions were evicted: their segments wait in LIMBO, the
     * segment of k:1 and the three of the extent of k:2 (64 + 64 + 40000
     * bytes in 16 KiB segments), and nothing else */
    CHECK(s.segments_limbo == 1 + 3);
    CHECK(s.limbo_bytes == s.segments_limbo * info.segment_size);
    CHECK(s.used_bytes + s.free_bytes + s.limbo_bytes == s.capacity_bytes);
    CHECK_REGION(h);
    /* stale optimistic views of the same records do not validate */
    cachee_l0_view o1 = v1;
    o1.pin_ = 0;
    CHECK_RC(cachee_l0_read_validate(h, &o1), CACHEE_L0_E_RETRY);

    /* a second flood still does not touch them */
    flood_from_child(h, 2 * info.arena_size, 50000);
    CHECK(memcmp(v1.data, c1, v1.len) == 0);
    CHECK(memcmp(v2.data, c2, v2.len) == 0);

    OK(cachee_l0_release(h, &v1));
    OK(cachee_l0_release(h, &v2));
    s = u_stats(h);
    CHECK(s.pins == 0 && s.pinned_bytes == 0);
    /* the next refills return the LIMBO segments to FREE */
    flood_from_child(h, info.arena_size / 2, 90000);
    s = u_stats(h);
    u_print_stats("released, after more writes", &s);
    CHECK(s.segments_limbo == 0 && s.limbo_bytes == 0);
    CHECK(s.used_bytes + s.free_bytes == s.capacity_bytes);
    free(c1);
    free(c2);
    U_FINISH(h, name);
}

/* Pinned views of a reader process survive a writer process's flood. */
TEST(pins_of_another_process_block_reuse) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "xpins", 4 * MiB, 16 * KiB, 16384, 0);
    cachee_l0_info info = u_info(h);
    for (uint32_t id = 0; id < 200; id++) OK(u_set_val_ex(h, id, 7, 1500, 0, 0));
    volatile uint64_t *sync = u_shm(4096);
    pid_t reader = u_fork();
    if (reader == 0) {
        enum { N = 60 };
        cachee_l0_view v[N];
        uint8_t *copy[N];
        for (uint32_t i = 0; i < N; i++) {
            char k[32];
            size_t kl = u_key(k, sizeof k, i * 3);
            OK(cachee_l0_get_pinned(h, k, kl, &v[i]));
            copy[i] = malloc(v[i].len);
            CHECK(copy[i] != NULL);
            memcpy(copy[i], v[i].data, v[i].len);
        }
        u_inc(&sync[0]);
        u_wait_counter(&sync[1], 1, 60);
        for (uint32_t i = 0; i < N; i++) {
            CHECK(memcmp(v[i].data, copy[i], v[i].len) == 0);
            CHECK(u_value_equals(v[i].data, v[i].len, i * 3, 7) == 0);
            OK(cachee_l0_release(h, &v[i]));
            free(copy[i]);
        }
        u_inc(&sync[2]);
        u_wait_counter(&sync[3], 1, 60);
        _exit(0);
    }
    u_wait_counter(&sync[0], 1, 30);
    cachee_l0_stats s = u_stats(h);
    CHECK(s.pins == 60 && s.pinned_bytes == 60 * 1500);
    flood_from_child(h, 3 * info.arena_size, 10000);
    s = u_stats(h);
    u_print_stats("reader pins held, after flood", &s);
    CHECK(s.pins == 60);
    CHECK(s.segments_limbo > 0);
    CHECK_REGION(h);
    u_inc(&sync[1]);
    u_wait_counter(&sync[2], 1, 30);
    s = u_stats(h);
    CHECK(s.pins == 0 && s.pinned_bytes == 0);
    u_inc(&sync[3]);
    CHECK_CHILD(reader, 30);
    flood_from_child(h, info.arena_size / 2, 90000);
    s = u_stats(h);
    CHECK(s.segments_limbo == 0);
    U_FINISH(h, name);
}

/* ----------------------------------------------------- fork inheritance */

static void verify_range(cachee_l0 *h, uint32_t first, uint32_t n, uint64_t seq) {
    uint8_t buf[4096];
    for (uint32_t id = first; id < first + n; id++) {
        cachee_l0_item it;
        int rc = u_get_val(h, id, buf, sizeof buf, &it);
        if (rc != 0) {
            fprintf(stderr, "  pid %d: get(k:%u) = %d (%s)\n", (int)getpid(), id, rc,
                    cachee_l0_strerror(rc));
            exit(1);
        }
        CHECK(u_value_equals(buf, it.value_len, id, seq) == 0);
    }
}

TEST(fork_inheritance_children_and_grandchildren) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "inherit", 16 * MiB, 0, 65536, 0);
    for (uint32_t id = 0; id < 500; id++) OK(u_set_val_ex(h, id, 1, 100 + id, 0, 0));
    volatile uint64_t *sync = u_shm(4096);
    enum { C = 3, G = 2, TOTAL = 1 + C + C * G };
    pid_t kids[C];
    for (int c = 0; c < C; c++) {
        kids[c] = u_fork();
        if (kids[c] != 0) continue;
        /* child: read what the parent wrote before fork, right away */
        verify_range(h, 0, 500, 1);
        uint32_t mine = 1000 + (uint32_t)c * 100;
        for (uint32_t id = mine; id < mine + 50; id++) OK(u_set_val_ex(h, id, 2, 300, 0, 0));
        pid_t gk[G];
        for (int g = 0; g < G; g++) {
            gk[g] = u_fork();
            if (gk[g] != 0) continue;
            verify_range(h, 0, 500, 1);
            verify_range(h, mine, 50, 2);
            uint32_t gm = 5000 + (uint32_t)(c * G + g) * 100;
            for (uint32_t id = gm; id < gm + 20; id++) OK(u_set_val_ex(h, id, 3, 200, 0, 0));
            cachee_l0_view v;
            OK(cachee_l0_get_pinned(h, "k:7", 3, &v));
            CHECK(u_value_equals(v.data, v.len, 7, 1) == 0);
            OK(cachee_l0_release(h, &v));
            u_inc(&sync[0]); /* alive and registered */
            u_wait_counter(&sync[1], 1, 60);
            _exit(0);
        }
        u_inc(&sync[0]);
        u_wait_counter(&sync[1], 1, 60);
        for (int g = 0; g < G; g++) CHECK_CHILD(gk[g], 30);
        for (int g = 0; g < G; g++)
            verify_range(h, 5000 + (uint32_t)(c * G + g) * 100, 20, 3);
        _exit(0);
    }
    u_wait_counter(&sync[0], TOTAL - 1, 60);
    cachee_l0_stats s = u_stats(h);
    printf("  %llu processes attached at once\n", (unsigned long long)s.live_procs);
    CHECK(s.live_procs == TOTAL);
    /* everybody's writes are visible here */
    for (int c = 0; c < C; c++) {
        verify_range(h, 1000 + (uint32_t)c * 100, 50, 2);
        for (int g = 0; g < G; g++)
            verify_range(h, 5000 + (uint32_t)(c * G + g) * 100, 20, 3);
    }
    u_inc(&sync[1]);
    for (int c = 0; c < C; c++) CHECK_CHILD(kids[c], 60);
    s = u_stats(h);
    CHECK(s.live_procs == 1);
    CHECK(s.reaped_procs == TOTAL - 1);
    CHECK(s.sets == 500 + C * 50 + C * G * 20);
    CHECK(s.pins == 0);
    verify_range(h, 0, 500, 1);
    U_FINISH(h, name);
}

/* Concurrent creation of one region: tests/c/test_create_race.c. */

int main(int argc, char **argv) { return l0test_main(argc, argv); }
