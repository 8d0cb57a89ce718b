/*
 * test_index.c -- the index when it, not the arena, is what fills up.
 *
 * With more keys than max_entries and room to spare in the arena, every set
 * of a new key needs an index slot.  The engine once evicted one entry per
 * set, in slot order: each set left a tombstone, a shard rebuild (a record
 * read per live entry) came every few dozen sets, and the slot-order sweep
 * left part of each shard nearly full, where probes ran through clusters of
 * hundreds of entries.  Sets became 20-30x slower than with room.  These
 * tests bound the work without timing anything: rebuilds per set (counted in
 * the shard), and the length of the probe a miss or an insert makes, measured
 * on the table itself.  They also check that values stay exact and that a
 * writer killed anywhere in that path leaves a region that repairs itself.
 *
 * White box: includes the engine's private header.
 */
#define _GNU_SOURCE
#include "l0test.h"
#include "l0util.h"
#include "l0_internal.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)

static uint64_t total_rebuilds(cachee_l0 *h) {
    uint64_t n = 0;
    for (uint64_t s = 0; s < h->g.nshards; s++) n += l0_shard(h, s)->rebuilds;
    return n;
}

/* Mean, over every slot of every shard, of the number of slots a probe that
 * starts there reads before it meets an EMPTY slot: the cost of a miss and
 * of inserting a new key.  Linear probing with entries spread evenly at 80%
 * load gives about 13; a table whose density is uneven gives hundreds. */
static double mean_probe(cachee_l0 *h) {
    const l0_geom *g = &h->g;
    uint64_t n = g->shard_slots;
    double sum = 0;
    for (uint64_t s = 0; s < g->nshards; s++) {
        const struct cachee_l0_shm_entry *E = l0_entries(h, s);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t d = 1, j = i;
            while (l0_e_kind(E[j].w1) != CACHEE_L0_ENTRY_EMPTY && d < n) {
                j = j + 1 == n ? 0 : j + 1;
                d++;
            }
            sum += (double)d;
        }
    }
    return sum / (double)(n * g->nshards);
}

/* Every key id in [0, n) is absent or holds exactly (id, seq); returns how
 * many are present. */
static uint64_t expect_exact_or_absent(cachee_l0 *h, uint32_t n, uint64_t seq) {
    uint64_t present = 0;
    uint8_t buf[512];
    for (uint32_t id = 0; id < n; id++) {
        cachee_l0_item it;
        int rc = u_get_val(h, id, buf, sizeof buf, &it);
        if (rc == CACHEE_L0_NOTFOUND) continue;
        OK(rc);
        CHECK(u_value_equals(buf, it.value_len, id, seq) == 0);
        present++;
    }
    return present;
}

TEST(index_full_sets_rebuild_rarely) {
    char name[128];
    u_name(name, sizeof name, "ixfull");
    /* 2048 entries: 2731 slots in 2 shards; the arena holds ~60k records. */
    cachee_l0 *h = u_create_opts(name, 8 * MiB, 64 * KiB, 2048, 0);
    const l0_geom *g = &h->g;
    CHECK(g->nshards == 2);
    uint64_t cap = g->nshards * g->live_max;
    const uint32_t nkeys = 30000;
    uint64_t rebuilds_at_full = 0, sets_at_full = 0;
    for (uint32_t id = 0; id < nkeys; id++) {
        OK(u_set_val(h, id, 1, 64));
        if (id + 1 == cap) {
            rebuilds_at_full = total_rebuilds(h);
            sets_at_full = id + 1;
        }
    }
    cachee_l0_stats st = u_stats(h);
    CHECK(st.set_failures == 0);
    CHECK(st.segments_free > 0); /* the arena never filled: only the index */
    uint64_t sets = nkeys - sets_at_full;
    uint64_t rebuilds = total_rebuilds(h) - rebuilds_at_full;
    /* One rebuild per eviction batch: a batch frees live_max - live_low slots
     * of a shard, so at most sets / (that, less a margin) rebuilds. */
    uint64_t batch = g->live_max - g->live_low;
    CHECK(batch >= g->shard_slots / 20);
    uint64_t bound = sets * 5 / (batch * 4) + g->nshards;
    printf("  %lu sets past a full index: %lu rebuilds (bound %lu), %lu "
           "evictions, %lu entries of %lu, mean probe %.1f slots\n",
           (unsigned long)sets, (unsigned long)rebuilds, (unsigned long)bound,
           (unsigned long)st.evictions, (unsigned long)st.entries,
           (unsigned long)cap, mean_probe(h));
    CHECK(rebuilds <= bound);
    /* Evictions keep the shards evenly loaded, so probes stay short. */
    CHECK(mean_probe(h) < 40.0);
    /* The index holds about max_entries (75% of its slots) on average. */
    CHECK(st.entries >= g->nshards * g->live_low && st.entries <= cap);
    CHECK(expect_exact_or_absent(h, nkeys, 1) == st.entries);
    U_FINISH(h, name);
}

/* The eviction batch keeps hot keys: a key read between sets survives many
 * rounds of index pressure (CLOCK gives it a second chance). */
TEST(index_full_hot_keys_stay) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "ixhot", 8 * MiB, 64 * KiB, 1024, 0);
    const uint32_t hot = 50;
    for (uint32_t id = 0; id < hot; id++) OK(u_set_val(h, id, 1, 64));
    uint8_t buf[256];
    for (uint32_t id = hot; id < 20000; id++) {
        OK(u_set_val(h, id, 1, 64));
        char k[32];
        size_t kl = u_key(k, sizeof k, id % hot);
        (void)cachee_l0_get(h, k, kl, buf, sizeof buf, NULL);
    }
    uint32_t kept = 0;
    for (uint32_t id = 0; id < hot; id++) {
        char k[32];
        size_t kl = u_key(k, sizeof k, id);
        kept += cachee_l0_get(h, k, kl, buf, sizeof buf, NULL) == 0;
    }
    printf("  %u of %u hot keys kept\n", kept, hot);
    CHECK(kept == hot);
    U_FINISH(h, name);
}

/*
 * White box: a writer dies in the middle of the one-sweep rebuild, after it
 * made tombstones EMPTY and before it moved the entries behind them, so
 * those entries cannot be reached from their home.  The next process to take
 * the shard lock must repair it so that every key is found again.
 */
TEST(killed_mid_rebuild_sweep) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "ixsweep", 4 * MiB, 16 * KiB, 256, 0);
    const l0_geom *g = &h->g;
    CHECK(g->nshards == 1);
    /* Load the shard to just below its limit, then delete every other key:
     * tombstones inside long clusters. */
    uint32_t n = g->live_max - 1;
    for (uint32_t id = 0; id < n; id++) OK(u_set_val(h, id, 1, 64));
    for (uint32_t id = 0; id < n; id += 2) {
        char k[32];
        size_t kl = u_key(k, sizeof k, id);
        OK(cachee_l0_delete(h, k, kl));
    }
    const struct cachee_l0_shm_entry *E = l0_entries(h, 0);
    uint64_t tombs = 0;
    for (uint64_t i = 0; i < g->shard_slots; i++)
        tombs += l0_e_kind(E[i].w1) == CACHEE_L0_ENTRY_TOMB;
    CHECK(tombs > 10);

    volatile uint64_t *sync = u_shm(4096);
    pid_t pid = u_fork();
    if (pid == 0) {
        uint64_t slot;
        OK(l0_my_slot(h, &slot));
        OK(l0_shard_lock(h, 0));
        struct cachee_l0_shm_shard *sh = l0_shard(h, 0);
        struct cachee_l0_shm_entry *W = l0_entries(h, 0);
        __atomic_store_n(&sh->layout_seq, sh->layout_seq | 1u, __ATOMIC_RELEASE);
        /* What the sweep does first to a tombstone: make it EMPTY (the
         * versions of both words stay equal, so the entry is not torn); it
         * got two thirds of the way. */
        for (uint64_t i = g->shard_slots / 3; i < g->shard_slots; i++) {
            uint64_t w1 = W[i].w1;
            if (l0_e_kind(w1) != CACHEE_L0_ENTRY_TOMB) continue;
            uint64_t ver = (uint64_t)((l0_e_ver(w1) + 1) & 0xffffu);
            __atomic_store_n(&W[i].w0, ver << L0_VER_SHIFT, __ATOMIC_RELEASE);
            __atomic_store_n(&W[i].w1,
                             (ver << L0_VER_SHIFT) |
                                 l0_w1_body(CACHEE_L0_ENTRY_EMPTY, 0),
                             __ATOMIC_RELEASE);
        }
        u_inc(&sync[0]);
        for (;;) pause();
    }
    u_wait_counter(&sync[0], 1, 30);
    u_kill_and_reap(pid);
    munmap((void *)sync, 4096);
    for (uint32_t id = 1; id < n; id += 2) u_expect_val(h, id, 1);
    CHECK_REGION(h);
    CHECK(expect_exact_or_absent(h, n, 1) == n / 2);
    U_CLOSE_UNLINK(h, name);
}

/*
 * Black box: writers that set new keys into a full index (an eviction batch
 * and a rebuild every few dozen sets) are killed at random moments.  After
 * each kill the region must pass cachee_l0_check and every key must be
 * absent or hold its exact value.
 */
TEST(writers_killed_with_index_full) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "ixkill", 4 * MiB, 16 * KiB, 256, 0);
    int rounds = u_long_mode() ? 100 : 20;
    u_rng r = u_rng_seed(42);
    const uint32_t span = 4000;
    for (int round = 0; round < rounds; round++) {
        pid_t pid = u_fork();
        if (pid == 0) {
            for (uint64_t i = 0;; i++)
                OK(u_set_val(h, (uint32_t)((i * 7919 + (uint64_t)round * 131) % span),
                             1, 64));
        }
        u_sleep_ms(1.0 + (double)u_below(&r, 20));
        u_kill_and_reap(pid);
        CHECK_REGION(h);
        (void)expect_exact_or_absent(h, span, 1);
        for (uint32_t id = 0; id < 64; id++) OK(u_set_val(h, span + id, 1, 64));
        (void)expect_exact_or_absent(h, span + 64, 1);
    }
    U_FINISH(h, name);
}

int main(int argc, char **argv) { return l0test_main(argc, argv); }
