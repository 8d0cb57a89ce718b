/*
 * test_crash.c -- processes killed with SIGKILL at any moment.
 *
 * Black box: writers killed at random moments (0-20 ms after they start),
 * many times, while other writers run.  After each kill another process
 * must be able to write the same keys promptly (no lock stays held; on an
 * idle machine it takes microseconds, the bound is PROMPT_S),
 * cachee_l0_check must pass, and every value committed before the kill
 * (the writers log "about to write seq" and "seq written" in shared memory)
 * must be readable with its exact value, or with the value of the write
 * that was in flight when the writer died.  Readers killed while holding
 * many pins: their pins are reclaimed and the segments kept for them leave
 * LIMBO.  Writers killed under heavy eviction pressure (global lock taken
 * constantly): the region stays usable and consistent.
 *
 * White box (the engine's private header): a process dies holding the
 * global lock, a shard lock, in the middle of publishing an entry, in the
 * middle of a shard rebuild, between the steps of a refill, and holding the
 * reservation of a large extent.  Each must be repaired by the next process.
 *
 * L0TEST_LONG=1 multiplies the number of kills.
 */
#define _GNU_SOURCE
#include "l0test.h"
#include "l0util.h"
#include "l0_internal.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)

static int total_kills;

/* "Promptly": the bound on a call that must not wait for a dead process.
 * The engine takes a dead holder's lock at once (EOWNERDEAD) and sleeps on a
 * lock in slices of 20 ms, so an idle machine needs microseconds to
 * milliseconds; a lock that stays held makes the call hang (the alarm below
 * ends it).  The bound is generous so that a slow, loaded machine (ASan, two
 * shared cores) never fails it. */
#define PROMPT_S 10.0
/* Ends a test whose call hangs (SIGALRM), far above PROMPT_S. */
#define HANG_S 120u

static void alarm_guard(unsigned secs) { alarm(secs); }

/* Diagnostics: every OPEN segment, its extent and the state of its owner. */
static void dump_open_segments(cachee_l0 *h) {
    for (uint64_t i = 0; i < h->g.nsegs; i++) {
        const struct cachee_l0_shm_seg *sg = l0_seg(h, i);
        if (sg->state != CACHEE_L0_SEG_OPEN) continue;
        uint32_t ost = sg->owner >= 1 && sg->owner <= h->g.max_procs
                           ? l0_slot(h, sg->owner - 1)->state
                           : 99;
        fprintf(stderr, "    segment %llu OPEN: extent %u, owner slot %u (slot state %u%s)\n",
                (unsigned long long)i, sg->extent, sg->owner - 1, ost,
                ost == CACHEE_L0_SLOT_FREE ? ": owner gone" : "");
    }
}

/* ------------------------------------------------- logged writers */

#define ROLE_KEYS 400u
#define ROLES 5u /* 0-2: victims, 3-4: background writers */

typedef struct klog {
    uint64_t intent; /* seq about to be written */
    uint64_t done;   /* last seq whose set returned 0 */
} klog;

static size_t vlen_of(uint32_t id, uint64_t seq) {
    return U_VHDR + (size_t)(u_mix(((uint64_t)id << 32) ^ seq) % 100);
}

static uint32_t role_key(uint32_t role, uint32_t j) { return role * 1000 + j; }

/* One logged write of key id; returns the set's result. */
static int logged_set(cachee_l0 *h, klog *lg, uint32_t id, uint8_t *buf) {
    klog *L = &lg[id];
    uint64_t a = __atomic_load_n(&L->intent, __ATOMIC_ACQUIRE);
    uint64_t b = __atomic_load_n(&L->done, __ATOMIC_ACQUIRE);
    uint64_t seq = (a > b ? a : b) + 1;
    __atomic_store_n(&L->intent, seq, __ATOMIC_SEQ_CST);
    size_t len = vlen_of(id, seq);
    u_make_value(buf, len, id, seq);
    char k[32];
    size_t kl = u_key(k, sizeof k, id);
    int rc = cachee_l0_set(h, k, kl, buf, len, NULL, 0, 0, 0);
    if (rc == 0) __atomic_store_n(&L->done, seq, __ATOMIC_SEQ_CST);
    return rc;
}

/* A writer process for one role: runs until killed.  Each write is read
 * back.  After `budget` writes (0: no limit) it idles, so that the total
 * written stays below the arena and nothing is evicted; so it does once the
 * writers sharing the counter `shared` (NULL: none) have made BG_WRITES
 * writes between them.  (Background writers write one record a millisecond
 * for as long as the test runs: without that cap, a test slowed down enough
 * by a loaded machine would fill the arena and evict.) */
#define BG_WRITES 12000u
static void role_writer(cachee_l0 *h, klog *lg, uint32_t role, int throttle_us,
                        uint64_t seed, uint64_t budget, volatile uint64_t *shared) {
    u_rng r = u_rng_seed(seed);
    uint8_t buf[1024], back[1024];
    for (uint64_t n = 0;; n++) {
        if ((budget && n >= budget) ||
            (shared && __atomic_fetch_add(shared, 1, __ATOMIC_RELAXED) >= BG_WRITES)) {
            for (;;) pause();
        }
        uint32_t id = role_key(role, (uint32_t)u_below(&r, ROLE_KEYS));
        int rc = logged_set(h, lg, id, buf);
        if (rc != 0) {
            fprintf(stderr, "  writer role %u: set(k:%u) = %d (%s)\n", role, id, rc,
                    cachee_l0_strerror(rc));
            _exit(2);
        }
        char k[32];
        size_t kl = u_key(k, sizeof k, id);
        cachee_l0_item it;
        memset(&it, 0, sizeof it);
        rc = cachee_l0_get(h, k, kl, back, sizeof back, &it);
        if (rc != 0 || u_verify_value(back, it.value_len, id, NULL) != 0) {
            fprintf(stderr, "  writer role %u: read back k:%u = %d\n", role, id, rc);
            _exit(3);
        }
        if (throttle_us) u_sleep_ms(throttle_us / 1000.0);
    }
}

/* Every key of a role (whose writer is dead) holds its committed value or
 * the value that was in flight. */
static void verify_role(cachee_l0 *h, klog *lg, uint32_t role, uint64_t *nvals) {
    uint8_t buf[1024];
    for (uint32_t j = 0; j < ROLE_KEYS; j++) {
        uint32_t id = role_key(role, j);
        uint64_t done = __atomic_load_n(&lg[id].done, __ATOMIC_ACQUIRE);
        uint64_t intent = __atomic_load_n(&lg[id].intent, __ATOMIC_ACQUIRE);
        cachee_l0_item it;
        int rc = u_get_val(h, id, buf, sizeof buf, &it);
        if (rc == CACHEE_L0_NOTFOUND) {
            if (done != 0) {
                fprintf(stderr, "  k:%u: committed seq %llu lost (not found)\n", id,
                        (unsigned long long)done);
                exit(1);
            }
            continue;
        }
        if (rc != 0) {
            fprintf(stderr, "  k:%u: get = %d (%s)\n", id, rc, cachee_l0_strerror(rc));
            exit(1);
        }
        uint64_t seq = 0;
        if (u_verify_value(buf, it.value_len, id, &seq) != 0) {
            fprintf(stderr, "  k:%u: torn value (len %llu)\n", id,
                    (unsigned long long)it.value_len);
            exit(1);
        }
        if (seq != done && seq != intent) {
            fprintf(stderr, "  k:%u: holds seq %llu; committed %llu, in flight %llu\n",
                    id, (unsigned long long)seq, (unsigned long long)done,
                    (unsigned long long)intent);
            exit(1);
        }
        CHECK(it.value_len == vlen_of(id, seq));
        CHECK(u_value_equals(buf, it.value_len, id, seq) == 0);
        (*nvals)++;
    }
}

/* After a kill: this process writes some of the dead writer's keys; each
 * set must complete promptly (PROMPT_S). Returns the slowest, in seconds. */
static double timed_sets(cachee_l0 *h, klog *lg, uint32_t role, u_rng *r) {
    uint8_t buf[1024];
    double worst = 0;
    alarm_guard(HANG_S); /* a lock held forever ends the test, not the CI job */
    for (int i = 0; i < 5; i++) {
        uint32_t id = role_key(role, (uint32_t)u_below(r, ROLE_KEYS));
        double t0 = l0test_now();
        OK(logged_set(h, lg, id, buf));
        double dt = l0test_now() - t0;
        if (dt > worst) worst = dt;
    }
    alarm_guard(0);
    if (worst >= PROMPT_S) fprintf(stderr, "  a set after the kill took %.3f s\n", worst);
    CHECK(worst < PROMPT_S);
    return worst;
}

static pid_t spawn_role(cachee_l0 *h, klog *lg, uint32_t role, int throttle_us,
                        uint64_t seed, uint64_t budget, volatile uint64_t *shared) {
    pid_t pid = u_fork();
    if (pid == 0) {
        role_writer(h, lg, role, throttle_us, seed, budget, shared);
        _exit(0);
    }
    return pid;
}

/* u_kill_and_reap, counted in total_kills. */
static void kill_and_reap(pid_t pid) {
    u_kill_and_reap(pid);
    total_kills++;
}

static void still_running(pid_t pid) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
        char d[64];
        u_describe_status(d, sizeof d, st);
        fprintf(stderr, "  background writer %d died: %s\n", (int)pid, d);
        exit(1);
    }
}

TEST(writers_killed_committed_values_survive) {
    char name[128];
    u_name(name, sizeof name, "killw");
    /* Records are at most 64 + 64 + 192 bytes; a victim writes at most
     * 2500 of them (~10 ms of work) per life; background writers one per
     * millisecond: about 25 MB in CI mode, below the ~30 MB arena. */
    int kills = u_long_mode() ? 300 : 40;
    uint64_t size = u_long_mode() ? 256 * MiB : 32 * MiB;
    const uint64_t budget = 2500;
    cachee_l0 *h = u_create_opts(name, size, 0, 65536, 0);
    klog *lg = u_shm(sizeof(klog) * ROLES * 1000);
    volatile uint64_t *bg_writes = u_shm(4096); /* [0]: background writes */
    u_rng r = u_rng_seed(99);
    pid_t bg[2];
    for (int b = 0; b < 2; b++)
        bg[b] = spawn_role(h, lg, 3 + (uint32_t)b, 1000, 500 + (uint64_t)b, 0, bg_writes);
    double worst = 0, t0 = l0test_now();
    uint64_t verified = 0;
    for (int round = 0; round < kills; round++) {
        uint32_t role;
        pid_t victim;
        if (round % 8 == 7) { /* now and then a background writer dies */
            int b = (int)u_below(&r, 2);
            role = 3 + (uint32_t)b;
            victim = bg[b];
            u_sleep_ms((double)u_below(&r, 21));
            kill_and_reap(victim);
            bg[b] = 0;
        } else {
            role = (uint32_t)round % 3;
            victim = spawn_role(h, lg, role, 0, 1000 + (uint64_t)round, budget, NULL);
            u_sleep_ms((double)u_below(&r, 21));
            kill_and_reap(victim);
        }
        double w = timed_sets(h, lg, role, &r);
        if (w > worst) worst = w;
        CHECK_REGION(h);
        verify_role(h, lg, role, &verified);
        for (int b = 0; b < 2; b++) {
            if (bg[b] == 0) bg[b] = spawn_role(h, lg, 3 + (uint32_t)b, 1000,
                                              700 + (uint64_t)round, 0, bg_writes);
            else still_running(bg[b]);
        }
    }
    for (int b = 0; b < 2; b++) kill_and_reap(bg[b]);
    for (uint32_t role = 0; role < ROLES; role++) verify_role(h, lg, role, &verified);
    cachee_l0_stats s = u_stats(h);
    u_print_stats("end", &s);
    printf("  kills survived: %d in %.1f s; slowest set after a kill %.3f s; "
           "%llu committed values verified; %llu background writes\n",
           total_kills, l0test_now() - t0, worst, (unsigned long long)verified,
           (unsigned long long)(bg_writes[0] < BG_WRITES ? bg_writes[0] : BG_WRITES));
    printf("  arena %llu bytes, used %llu\n", (unsigned long long)s.capacity_bytes,
           (unsigned long long)s.used_bytes);
    CHECK(s.evictions == 0); /* premise: sized so that nothing is evicted */
    CHECK(s.pins == 0);
    CHECK(s.live_procs == 1);
    CHECK(s.segments_reclaiming == 0);
    U_FINISH(h, name);
}

/* ----------------------------------------- kills under eviction pressure */

static void churn_writer(cachee_l0 *h, uint32_t id, uint32_t nkeys, uint64_t seg) {
    u_rng r = u_rng_seed(3000 + id + (uint64_t)getpid());
    uint8_t *buf = malloc(4 * seg);
    CHECK(buf != NULL);
    uint64_t n = 0;
    for (;;) {
        uint32_t key = (uint32_t)u_below(&r, nkeys);
        char k[32];
        size_t kl = u_key(k, sizeof k, key);
        uint64_t dice = u_below(&r, 100);
        if (dice < 10) {
            int rc = cachee_l0_delete(h, k, kl);
            if (rc != 0 && rc != CACHEE_L0_NOTFOUND) _exit(3);
            continue;
        }
        size_t len = dice < 13 ? seg + u_below(&r, 2 * seg) : U_VHDR + u_below(&r, 3000);
        u_make_value(buf, len, key, ((uint64_t)id << 40) | n++);
        int rc = cachee_l0_set(h, k, kl, buf, len, NULL, 0, 0, 0);
        if (rc != 0 && rc != CACHEE_L0_E_FULL) {
            fprintf(stderr, "  churn writer: set = %d (%s)\n", rc, cachee_l0_strerror(rc));
            _exit(3);
        }
        if (dice > 90) { /* some reads, some pins */
            cachee_l0_view v;
            int g = cachee_l0_get_pinned(h, k, kl, &v);
            if (g == 0) {
                if (u_verify_value(v.data, v.len, key, NULL) != 0) _exit(4);
                if (cachee_l0_release(h, &v) != 0) _exit(5);
            } else if (g != CACHEE_L0_NOTFOUND) {
                _exit(6);
            }
        }
    }
}

static void sample_reads(cachee_l0 *h, uint32_t nkeys, u_rng *r, uint64_t seg) {
    uint8_t *buf = malloc(4 * seg);
    CHECK(buf != NULL);
    for (int i = 0; i < 200; i++) {
        uint32_t key = (uint32_t)u_below(r, nkeys);
        cachee_l0_item it;
        int rc = u_get_val(h, key, buf, 4 * seg, &it);
        if (rc == CACHEE_L0_NOTFOUND) continue;
        if (rc != 0)
            fprintf(stderr, "  get(k:%u) = %d (%s)\n", key, rc, cachee_l0_strerror(rc));
        OK(rc);
        if (u_verify_value(buf, it.value_len, key, NULL) != 0) {
            fprintf(stderr, "  k:%u: torn value after a kill\n", key);
            exit(1);
        }
    }
    free(buf);
}

TEST(writers_killed_under_eviction_pressure) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "killev", 2 * MiB, 16 * KiB, 4096, 0);
    cachee_l0_info info = u_info(h);
    const uint32_t nkeys = 3000;
    int kills = u_long_mode() ? 400 : 50;
    enum { NW = 3 };
    pid_t w[NW];
    u_rng r = u_rng_seed(4242);
    for (int i = 0; i < NW; i++) {
        w[i] = u_fork();
        if (w[i] == 0) churn_writer(h, (uint32_t)i, nkeys, info.segment_size);
    }
    double worst = 0, t0 = l0test_now();
    int before = total_kills;
    for (int round = 0; round < kills; round++) {
        int i = (int)u_below(&r, NW);
        u_sleep_ms((double)u_below(&r, 21));
        kill_and_reap(w[i]);
        /* this process can write (and so take the locks) promptly */
        alarm_guard(HANG_S);
        for (int j = 0; j < 3; j++) {
            double t = l0test_now();
            char k[32];
            size_t kl = u_key(k, sizeof k, (uint32_t)u_below(&r, nkeys));
            int rc = cachee_l0_set(h, k, kl, "x", 1, NULL, 0, 0, 0);
            CHECK(rc == 0 || rc == CACHEE_L0_E_FULL);
            rc = cachee_l0_delete(h, k, kl);
            CHECK(rc == 0 || rc == CACHEE_L0_NOTFOUND);
            cachee_l0_stats st; /* takes the global lock */
            OK(cachee_l0_stats_get(h, &st));
            double dt = l0test_now() - t;
            if (dt > worst) worst = dt;
        }
        alarm_guard(0);
        CHECK(worst < PROMPT_S);
        CHECK_REGION(h);
        sample_reads(h, nkeys, &r, info.segment_size);
        for (int j = 0; j < NW; j++)
            if (j != i) still_running(w[j]);
        w[i] = u_fork();
        if (w[i] == 0) churn_writer(h, (uint32_t)i + 10 * (uint32_t)round, nkeys,
                                    info.segment_size);
    }
    for (int i = 0; i < NW; i++) kill_and_reap(w[i]);
    CHECK(cachee_l0_reap(h) >= 0);
    cachee_l0_stats s = u_stats(h);
    u_print_stats("end", &s);
    printf("  kills survived: %d in %.1f s; slowest write+stats after a kill %.3f s\n",
           total_kills - before, l0test_now() - t0, worst);
    CHECK(s.live_procs == 1);
    CHECK(s.pins == 0 && s.pinned_bytes == 0);
    CHECK(s.segments_reclaiming == 0);
    /* dead writers' open segments were sealed: only ours may be open */
    if (s.segments_open > 2) {
        fprintf(stderr, "  %llu segments still OPEN after every writer died\n",
                (unsigned long long)s.segments_open);
        dump_open_segments(h);
    }
    CHECK(s.segments_open <= 2);
    U_FINISH(h, name);
}

/* ----------------------------------------------- readers killed with pins */

TEST(readers_killed_holding_pins) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "killr", 8 * MiB, 16 * KiB, 16384, 0);
    cachee_l0_info info = u_info(h);
    const uint32_t nkeys = 400;
    uint8_t val[1500];
    for (uint32_t id = 0; id < nkeys; id++) {
        u_make_value(val, sizeof val, id, 1);
        char k[32];
        size_t kl = u_key(k, sizeof k, id);
        OK(cachee_l0_set(h, k, kl, val, sizeof val, NULL, 0, 0, 0));
    }
    /* this process keeps three pins throughout */
    cachee_l0_view mine[3];
    const char *mk[3] = {"k:0", "k:200", "k:399"};
    for (int i = 0; i < 3; i++) OK(cachee_l0_get_pinned(h, mk[i], strlen(mk[i]), &mine[i]));
    uint64_t my_bytes = 3 * sizeof val;
    int rounds = u_long_mode() ? 30 : 6;
    enum { R = 4 };
    volatile uint64_t *sync = u_shm(4096);
    u_rng r = u_rng_seed(77);
    int before = total_kills;
    uint32_t flood_id = 100000;
    for (int round = 0; round < rounds; round++) {
        memset((void *)sync, 0, 4096);
        bool at_rest = round % 2 == 0; /* else: killed while still pinning */
        pid_t pids[R];
        for (int i = 0; i < R; i++) {
            pids[i] = u_fork();
            if (pids[i] != 0) continue;
            u_rng rr = u_rng_seed(round * 10 + i);
            uint64_t n = 0, bytes = 0;
            int target = 100 + (int)u_below(&rr, 100);
            for (int p = 0; p < target || !at_rest; p++) {
                uint32_t id = (uint32_t)u_below(&rr, nkeys);
                char k[32];
                size_t kl = u_key(k, sizeof k, id);
                cachee_l0_view v;
                int rc = cachee_l0_get_pinned(h, k, kl, &v);
                if (rc == CACHEE_L0_NOTFOUND) continue;
                /* A reader that is killed late (a slow machine) has pinned
                 * some segment 65535 times: refused, and it goes on. */
                if (rc == CACHEE_L0_E_TOO_MANY_PINS && !at_rest) continue;
                if (rc != 0) _exit(2);
                if (u_verify_value(v.data, v.len, id, NULL) != 0) _exit(3);
                n++;
                bytes += v.len; /* never released */
            }
            __atomic_store_n(&sync[8 + 2 * i], n, __ATOMIC_RELEASE);
            __atomic_store_n(&sync[9 + 2 * i], bytes, __ATOMIC_RELEASE);
            u_inc(&sync[0]);
            for (;;) pause();
        }
        uint64_t pins = 0, bytes = 0;
        if (at_rest) {
            u_wait_counter(&sync[0], R, 30);
            for (int i = 0; i < R; i++) {
                pins += sync[8 + 2 * i];
                bytes += sync[9 + 2 * i];
            }
            cachee_l0_stats s = u_stats(h);
            CHECK(s.pins == 3 + pins);
            CHECK(s.pinned_bytes == my_bytes + bytes);
            /* evict everything: pinned segments go to LIMBO */
            pid_t f = u_fork();
            if (f == 0) {
                uint64_t done = 0;
                for (uint32_t id = flood_id; done < 3 * info.arena_size; id++) {
                    u_make_value(val, 1000, id, 2);
                    char k[32];
                    size_t kl = u_key(k, sizeof k, id);
                    OK(cachee_l0_set(h, k, kl, val, 1000, NULL, 0, 0, 0));
                    done += 1000;
                }
                _exit(0);
            }
            CHECK_CHILD(f, 60);
            flood_id += 20000;
            s = u_stats(h);
            CHECK(s.segments_limbo > 0);
            CHECK(s.pins == 3 + pins);
        } else {
            u_sleep_ms((double)u_below(&r, 21));
        }
        for (int i = 0; i < R; i++) kill_and_reap(pids[i]);
        int reaped = cachee_l0_reap(h);
        CHECK(reaped >= 0 && reaped <= R);
        cachee_l0_stats s = u_stats(h);
        if (s.pins != 3 || s.pinned_bytes != my_bytes)
            u_print_stats("after killing the readers", &s);
        CHECK(s.pins == 3);
        CHECK(s.pinned_bytes == my_bytes);
        CHECK(s.live_procs == 1);
        /* only segments this process pins may stay in LIMBO */
        CHECK(s.segments_limbo <= 3);
        CHECK_REGION(h);
        for (int i = 0; i < 3; i++) {
            CHECK(u_verify_value(mine[i].data, mine[i].len, UINT32_MAX, NULL) == 0);
        }
        /* the keys are still readable and exact where present */
        for (uint32_t id = 0; id < nkeys; id += 37) {
            char k[32];
            size_t kl = u_key(k, sizeof k, id);
            uint8_t b[1600];
            cachee_l0_item it;
            memset(&it, 0, sizeof it);
            int rc = cachee_l0_get(h, k, kl, b, sizeof b, &it);
            CHECK(rc == 0 || rc == CACHEE_L0_NOTFOUND);
            if (rc == 0) CHECK(u_value_equals(b, it.value_len, id, 1) == 0);
        }
    }
    for (int i = 0; i < 3; i++) OK(cachee_l0_release(h, &mine[i]));
    pid_t f = u_fork();
    if (f == 0) { /* refills release what LIMBO still holds */
        for (uint32_t id = 900000; id < 900000 + 200; id++) {
            u_make_value(val, 1000, id, 2);
            char k[32];
            size_t kl = u_key(k, sizeof k, id);
            OK(cachee_l0_set(h, k, kl, val, 1000, NULL, 0, 0, 0));
        }
        _exit(0);
    }
    CHECK_CHILD(f, 60);
    cachee_l0_stats s = u_stats(h);
    u_print_stats("end", &s);
    printf("  readers killed holding pins: %d\n", total_kills - before);
    CHECK(s.pins == 0 && s.pinned_bytes == 0);
    CHECK(s.segments_limbo == 0);
    U_FINISH(h, name);
}

/* --------------------------------------------------------- white box */



static cachee_l0 *crash_region(char *name, size_t cap, const char *tag) {
    u_name(name, cap, tag);
    cachee_l0 *h = u_create_opts(name, 4 * MiB, 16 * KiB, 4096, 0);
    for (uint32_t id = 0; id < 300; id++) OK(u_set_val(h, id, 1, 100 + id));
    return h;
}

/* Run `damage` in a child that then waits to be killed; kill it. */
static void die_while(cachee_l0 *h, void (*damage)(cachee_l0 *, void *), void *arg) {
    volatile uint64_t *sync = u_shm(4096);
    pid_t pid = u_fork();
    if (pid == 0) {
        uint64_t slot;
        OK(l0_my_slot(h, &slot));
        damage(h, arg);
        u_inc(&sync[0]);
        for (;;) pause();
    }
    u_wait_counter(&sync[0], 1, 30);
    kill_and_reap(pid);
    munmap((void *)sync, 4096);
}

/* This process must get through `what` promptly (PROMPT_S). */
#define PROMPTLY(what, call)                                                 \
    do {                                                                     \
        alarm_guard(HANG_S);                                                 \
        double t_ = l0test_now();                                            \
        call;                                                                \
        double dt_ = l0test_now() - t_;                                      \
        alarm_guard(0);                                                      \
        printf("  %s: %.4f s after the kill\n", what, dt_);                  \
        CHECK(dt_ < PROMPT_S);                                               \
    } while (0)

static uint64_t shard_of_key(cachee_l0 *h, const char *k) {
    return l0_shard_of(&h->g, cachee_l0_hash(k, strlen(k)));
}

static void hold_global(cachee_l0 *h, void *arg) {
    (void)arg;
    OK(l0_global_lock(h));
    /* half-way through popping a free segment */
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    hd->nfree--;
}

TEST(killed_holding_global_lock) {
    char name[128];
    cachee_l0 *h = crash_region(name, sizeof name, "wbglob");
    die_while(h, hold_global, NULL);
    cachee_l0_stats s;
    PROMPTLY("stats (global lock)", OK(cachee_l0_stats_get(&*h, &s)));
    CHECK_REGION(h);
    PROMPTLY("reap", CHECK(cachee_l0_reap(h) >= 0));
    /* refills need the global lock: write a few segments' worth */
    PROMPTLY("writes that refill", for (uint32_t id = 1000; id < 1100; id++)
                                        OK(u_set_val(h, id, 2, 1000)));
    for (uint32_t id = 0; id < 300; id++) u_expect_val(h, id, 1);
    s = u_stats(h);
    CHECK(s.live_procs == 1 && s.reaped_procs == 1);
    U_FINISH(h, name);
}

static void hold_shard(cachee_l0 *h, void *arg) {
    OK(l0_shard_lock(h, shard_of_key(h, (const char *)arg)));
}

TEST(killed_holding_shard_lock) {
    char name[128];
    cachee_l0 *h = crash_region(name, sizeof name, "wbshard");
    die_while(h, hold_shard, "k:1");
    u_expect_val(h, 1, 1); /* readers take no lock */
    PROMPTLY("set on the shard", OK(u_set_val(h, 1, 2, 500)));
    u_expect_val(h, 1, 2);
    PROMPTLY("delete on the shard", OK(cachee_l0_delete(h, "k:1", 3)));
    CHECK_REGION(h);
    for (uint32_t id = 2; id < 300; id++) u_expect_val(h, id, 1);
    U_CLOSE_UNLINK(h, name);
}

/*
 * A waiter whose futex wake-up is lost must not sleep on a free lock.  Seen
 * under SIGKILL storms (tests/torture/repro/robust_lost_wakeup.c: glibc
 * robust mutexes on Linux 6.x left waiters asleep for seconds on an unlocked
 * mutex).  Reproduced here without luck: the lock word names a fake owner, a
 * child blocks on it, then the word is cleared with no FUTEX_WAKE.
 */
TEST(lost_wakeup_on_free_lock) {
    char name[128];
    cachee_l0 *h = crash_region(name, sizeof name, "wblost");
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    volatile uint64_t *sync = u_shm(4096);
    int *word = (int *)&hd->global_lock.__data.__lock;
    __atomic_store_n(word, (int)getpid(), __ATOMIC_RELEASE); /* "held" */
    pid_t pid = u_fork();
    if (pid == 0) {
        u_inc(&sync[0]);
        OK(l0_global_lock(h));
        u_inc(&sync[1]);
        l0_global_unlock(h);
        _exit(0);
    }
    u_wait_counter(&sync[0], 1, 30);
    /* the child is asleep in the kernel (on the lock: it does nothing else) */
    u_wait_asleep(pid, 30);
    CHECK(__atomic_load_n(&sync[1], __ATOMIC_ACQUIRE) == 0);
    double t0 = l0test_now();
    __atomic_store_n(word, 0, __ATOMIC_RELEASE); /* freed, nobody woken */
    double cap = u_patience(3.0); /* a waiter that never wakes */
    while (__atomic_load_n(&sync[1], __ATOMIC_ACQUIRE) == 0 && l0test_now() - t0 < cap)
        usleep(1000);
    double dt = l0test_now() - t0;
    printf("  waiter took the lock %.4f s after it was freed\n", dt);
    if (dt >= PROMPT_S) kill_and_reap(pid);
    CHECK(dt < PROMPT_S);
    CHECK_CHILD(pid, 10);
    cachee_l0_stats s;
    OK(cachee_l0_stats_get(h, &s)); /* takes the lock the child released */
    CHECK_REGION(h);
    munmap((void *)sync, 4096);
    U_CLOSE_UNLINK(h, name);
}

/* Die between the two stores of a publication: the entry is torn (w0 has
 * the new version, w1 the old), the intent says what was being written. */
static void torn_publish(cachee_l0 *h, void *arg) {
    const char *k = arg;
    uint64_t hash = cachee_l0_hash(k, strlen(k));
    uint64_t shard = l0_shard_of(&h->g, hash);
    OK(l0_shard_lock(h, shard));
    l0_wfind w;
    l0_find_locked(h, shard, hash, k, strlen(k), &w);
    CHECK(w.found);
    struct cachee_l0_shm_shard *sh = l0_shard(h, shard);
    struct cachee_l0_shm_entry *e = &l0_entries(h, shard)[w.slot_idx];
    const uint64_t body = (1ull << L0_VER_SHIFT) - 1;
    uint64_t ver = (uint64_t)((l0_e_ver(e->w1) + 1) & 0xffffu);
    uint64_t nw0 = (ver << L0_VER_SHIFT) | (e->w0 & body);
    uint64_t nw1 = (ver << L0_VER_SHIFT) | (e->w1 & body);
    sh->intent_slot = (uint32_t)w.slot_idx;
    sh->intent_w0 = nw0;
    sh->intent_w1 = nw1;
    __atomic_store_n(&sh->intent_active, 1u, __ATOMIC_RELEASE);
    __atomic_store_n(&e->w0, nw0, __ATOMIC_RELEASE); /* ... and no w1 */
}

TEST(killed_mid_publish_torn_entry) {
    char name[128];
    cachee_l0 *h = crash_region(name, sizeof name, "wbtorn");
    die_while(h, torn_publish, "k:2");
    /* a reader meets the torn entry, waits, then repairs through the lock */
    PROMPTLY("read of the torn entry", u_expect_val(h, 2, 1));
    CHECK_REGION(h);
    PROMPTLY("set of the torn key", OK(u_set_val(h, 2, 2, 300)));
    u_expect_val(h, 2, 2);
    for (uint32_t id = 3; id < 300; id++) u_expect_val(h, id, 1);
    U_FINISH(h, name);
}

/* Die in the middle of a shard rebuild: layout sequence odd. */
static void odd_layout(cachee_l0 *h, void *arg) {
    uint64_t shard = shard_of_key(h, (const char *)arg);
    OK(l0_shard_lock(h, shard));
    struct cachee_l0_shm_shard *sh = l0_shard(h, shard);
    __atomic_store_n(&sh->layout_seq, sh->layout_seq | 1u, __ATOMIC_RELEASE);
}

TEST(killed_mid_rebuild_odd_layout) {
    char name[128];
    cachee_l0 *h = crash_region(name, sizeof name, "wbodd");
    die_while(h, odd_layout, "k:3");
    PROMPTLY("read in the shard", u_expect_val(h, 3, 1));
    uint8_t b[8];
    /* a miss in that shard is confirmed too */
    char miss[32];
    uint64_t sh3 = shard_of_key(h, "k:3");
    uint32_t m = 100000;
    do {
        snprintf(miss, sizeof miss, "absent:%u", m++);
    } while (shard_of_key(h, miss) != sh3);
    PROMPTLY("miss in the shard",
              CHECK_RC(cachee_l0_get(h, miss, strlen(miss), b, sizeof b, NULL),
                       CACHEE_L0_NOTFOUND));
    CHECK_REGION(h);
    for (uint32_t id = 0; id < 300; id++) u_expect_val(h, id, 1);
    U_CLOSE_UNLINK(h, name);
}

/* Die in a refill after taking a free segment and marking it OPEN, before
 * installing it in the slot (the segment is orphaned). */
static void orphan_open(cachee_l0 *h, void *arg) {
    (void)arg;
    uint64_t slot;
    OK(l0_my_slot(h, &slot));
    OK(l0_global_lock(h));
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    CHECK(hd->nfree > 0);
    uint32_t seg = l0_free_stack(h)[--hd->nfree];
    struct cachee_l0_shm_seg *s = l0_seg(h, seg);
    s->state = CACHEE_L0_SEG_OPEN;
    s->cls = CACHEE_L0_SMALL;
    s->owner = (uint32_t)(slot + 1);
    s->extent = 1;
    s->fill = 0;
    hd->nopen++;
}

TEST(killed_between_refill_steps) {
    char name[128];
    cachee_l0 *h = crash_region(name, sizeof name, "wbrefill");
    cachee_l0_stats s0 = u_stats(h);
    die_while(h, orphan_open, NULL);
    cachee_l0_stats s;
    PROMPTLY("stats", OK(cachee_l0_stats_get(h, &s)));
    CHECK(s.segments_open == s0.segments_open); /* the orphan was sealed */
    CHECK_REGION(h);
    /* and the space comes back: write the arena twice over */
    cachee_l0_info info = u_info(h);
    for (uint32_t id = 5000; id < 5000 + 2 * info.arena_size / 1000; id++)
        OK(u_set_val(h, id, 3, 1000));
    U_FINISH(h, name);
}

/* Die holding the reservation of a large extent (a big value being
 * copied): reaping must return the extent's segments to the region. */
static void big_reservation(cachee_l0 *h, void *arg) {
    uint64_t len = *(uint64_t *)arg;
    uint64_t slot;
    OK(l0_my_slot(h, &slot));
    l0_space sp;
    OK(l0_reserve(h, slot, CACHEE_L0_SMALL, len, true, &sp));
    memset(l0_arena_rw(h, sp.off), 0xab, (size_t)(len / 2)); /* half copied */
}

TEST(killed_writing_large_value_extent_reclaimed) {
    char name[128];
    cachee_l0 *h = crash_region(name, sizeof name, "wbext");
    cachee_l0_info info = u_info(h);
    cachee_l0_stats s0 = u_stats(h);
    uint64_t len = 5 * info.segment_size;
    die_while(h, big_reservation, &len);
    CHECK(cachee_l0_reap(h) == 1);
    cachee_l0_stats s = u_stats(h);
    u_print_stats("after the writer of an extent died", &s);
    if (s.segments_open != s0.segments_open) {
        fprintf(stderr, "  %llu segments OPEN after reaping (before: %llu)\n",
                (unsigned long long)s.segments_open,
                (unsigned long long)s0.segments_open);
        dump_open_segments(h);
    }
    CHECK(s.segments_open == s0.segments_open);
    CHECK_REGION(h);
    /* the space is usable again: the arena twice over, then a large value */
    for (uint32_t id = 5000; id < 5000 + 2 * info.arena_size / 1000; id++)
        OK(u_set_val(h, id, 3, 1000));
    s = u_stats(h);
    CHECK(s.segments_open == s0.segments_open);
    OK(u_set_val(h, 7, 4, info.value_max / 2));
    U_FINISH(h, name);
}

/* The same, black box: a writer of large values killed at random. */
TEST(large_value_writers_killed) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "killbig", 8 * MiB, 64 * KiB, 4096, 0);
    cachee_l0_info info = u_info(h);
    int kills = u_long_mode() ? 100 : 15;
    u_rng r = u_rng_seed(5150);
    int before = total_kills;
    int leaked_rounds = 0;
    for (int round = 0; round < kills; round++) {
        pid_t pid = u_fork();
        if (pid == 0) {
            u_rng rr = u_rng_seed((uint64_t)round);
            uint8_t *buf = malloc(info.value_max);
            CHECK(buf != NULL);
            for (uint32_t n = 0;; n++) {
                size_t len = info.segment_size + u_below(&rr, info.value_max / 2);
                u_make_value(buf, len, n % 8, n);
                char k[32];
                size_t kl = u_key(k, sizeof k, n % 8);
                int rc = cachee_l0_set(h, k, kl, buf, len, NULL, 0, 0, 0);
                if (rc != 0 && rc != CACHEE_L0_E_FULL) _exit(2);
            }
        }
        u_sleep_ms(1 + (double)u_below(&r, 20));
        kill_and_reap(pid);
        CHECK(cachee_l0_reap(h) >= 0);
        cachee_l0_stats s = u_stats(h);
        if (s.segments_open != 0) leaked_rounds++;
        CHECK_REGION(h);
    }
    cachee_l0_stats s = u_stats(h);
    u_print_stats("end", &s);
    printf("  kills survived: %d; rounds that left OPEN segments behind: %d\n",
           total_kills - before, leaked_rounds);
    if (s.segments_open != 0) dump_open_segments(h);
    CHECK(s.segments_open == 0); /* nobody is writing: nothing may stay open */
    CHECK(s.pins == 0 && s.segments_reclaiming == 0);
    U_FINISH(h, name);
}

/* A process that opened the region itself, registered and pinned, forks a
 * child that uses the handle too (so the child has its own registration),
 * then is killed.  The child still lives.  The dead process's slot and pins
 * must be reclaimed now, not when its children exit: the spec ties liveness
 * to the process ("whatever kills it"). */
TEST(opener_killed_while_forked_child_lives) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "opener", 4 * MiB, 16 * KiB, 4096, 0);
    for (uint32_t id = 0; id < 50; id++) OK(u_set_val(h, id, 1, 500));
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0); /* we wait for the orphan */
    volatile uint64_t *sync = u_shm(4096);
    pid_t x = u_fork();
    if (x == 0) {
        cachee_l0 *hx = u_attach(name); /* its own open, its own mapping */
        cachee_l0_view v[5];
        for (int i = 0; i < 5; i++) {
            char k[32];
            size_t kl = u_key(k, sizeof k, (uint32_t)i * 10);
            OK(cachee_l0_get_pinned(hx, k, kl, &v[i]));
        }
        u_before_fork();
        pid_t y = fork(); /* survives its parent */
        if (y == 0) {
            u_expect_val(hx, 1, 1); /* registers on its own */
            u_inc(&sync[1]);
            double t0 = l0test_now();
            while (!__atomic_load_n(&sync[2], __ATOMIC_ACQUIRE) &&
                   l0test_now() - t0 < u_patience(60))
                u_sleep_ms(5);
            _exit(0);
        }
        u_wait_counter(&sync[1], 1, 30);
        __atomic_store_n(&sync[3], (uint64_t)y, __ATOMIC_RELEASE);
        u_inc(&sync[0]);
        for (;;) pause();
    }
    u_wait_counter(&sync[0], 1, 30);
    pid_t y = (pid_t)sync[3];
    cachee_l0_stats s = u_stats(h);
    CHECK(s.live_procs == 3 && s.pins == 5);
    kill_and_reap(x);
    int n = cachee_l0_reap(h);
    s = u_stats(h);
    if (s.live_procs != 2 || s.pins != 0)
        fprintf(stderr, "  after the opener died (its child alive): reap() = %d, "
                        "live_procs %llu (want 2), pins %llu (want 0)\n",
                n, (unsigned long long)s.live_procs, (unsigned long long)s.pins);
    u_inc(&sync[2]); /* let the orphan go */
    int st = 0;
    waitpid(y, &st, 0);
    CHECK(s.live_procs == 2);
    CHECK(s.pins == 0 && s.pinned_bytes == 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    U_FINISH(h, name);
}

int main(int argc, char **argv) { return l0test_main(argc, argv); }
