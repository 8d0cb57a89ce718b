/*
 * test_fork.c -- a process that used the handle forks; the child uses the
 * inherited handle at once, at depth 1, 2 and 3, with any call as its first;
 * every process sees the others' writes; live_procs counts them and drops
 * when they exit (their slots are reaped, and reused).  The fork hand-off
 * (cachee_l0_fork_prepare/parent/child) keeps views pinned in the parent
 * valid in the child after the parent released them, at any depth; without
 * it, children still work and releasing an inherited view is harmless.
 */
#define _GNU_SOURCE
#include "l0test.h"
#include "l0util.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)



/* Wait (polling stats, which reaps) until live_procs == want (a hang guard
 * of u_patience(10) s). */
static void wait_live(cachee_l0 *h, uint64_t want) {
    double t0 = l0test_now();
    for (;;) {
        cachee_l0_stats s = u_stats(h);
        if (s.live_procs == want) return;
        if (l0test_now() - t0 > u_patience(10)) {
            fprintf(stderr, "  live_procs stays %llu, want %llu\n",
                    (unsigned long long)s.live_procs, (unsigned long long)want);
            exit(1);
        }
        u_sleep_ms(2);
    }
}

/* Wait until stats.pins == want (other processes release theirs). */
static void wait_pins(cachee_l0 *h, uint64_t want) {
    double t0 = l0test_now();
    for (;;) {
        cachee_l0_stats s = u_stats(h);
        if (s.pins == want) return;
        if (l0test_now() - t0 > u_patience(10)) {
            fprintf(stderr, "  pins stay %llu, want %llu\n",
                    (unsigned long long)s.pins, (unsigned long long)want);
            exit(1);
        }
        u_sleep_ms(2);
    }
}

/* Another process writes `bytes` of fresh keys (evicts everything else). */
static void flood(cachee_l0 *h, uint64_t bytes, uint32_t first) {
    pid_t pid = u_fork();
    if (pid == 0) {
        uint64_t done = 0;
        for (uint32_t id = first; done < bytes; id++) {
            OK(u_set_val(h, id, 9, 900));
            done += 900;
        }
        _exit(0);
    }
    CHECK_CHILD(pid, 60);
}

/* --------------------------------------------------------- depth 1-3 */

/* The processes of a chain at depth 1..3 (each forks the next); the
 * first call differs per depth. */
static void chain(cachee_l0 *h, volatile uint64_t *sync) {
    for (int depth = 1;; depth++) {
        cachee_l0_view v;
        if (depth == 1) {
            OK(u_set_val(h, 1, 1, 300)); /* first call: a write */
            u_expect_val(h, 0, 1);
        } else if (depth == 2) {
            OK(cachee_l0_get_pinned(h, "k:0", 3, &v)); /* first call: a pin */
            CHECK(u_value_equals(v.data, v.len, 0, 1) == 0);
            OK(cachee_l0_release(h, &v));
            OK(u_set_val(h, 2, 1, 300));
        } else {
            u_expect_val(h, 1, 1); /* first call: a copying read */
            OK(u_set_val(h, 3, 1, 300));
        }
        OK(cachee_l0_get_pinned(h, "k:1", 3, &v));
        CHECK(u_value_equals(v.data, v.len, 1, 1) == 0);
        OK(cachee_l0_release(h, &v));
        u_inc(&sync[0]); /* written */
        pid_t kid = 0;
        if (depth < 3) {
            kid = u_fork();
            if (kid == 0) continue; /* the child is the next depth */
        }
        u_wait_counter(&sync[0], 3, 30);
        for (uint32_t id = 0; id <= 3; id++) u_expect_val(h, id, 1); /* all writes */
        u_inc(&sync[1]); /* has read everything */
        /* leave in order: the deepest first, when the root says so */
        u_wait_counter(&sync[2 + (3 - depth)], 1, 30);
        if (kid) CHECK_CHILD(kid, 30);
        _exit(0);
    }
}

TEST(fork_depth_1_2_3_immediate_use) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "depth", 4 * MiB, 16 * KiB);
    OK(u_set_val(h, 0, 1, 300));
    volatile uint64_t *sync = u_shm(4096);
    pid_t kid = u_fork();
    if (kid == 0) chain(h, sync);
    u_wait_counter(&sync[1], 3, 30);
    for (uint32_t id = 0; id <= 3; id++) u_expect_val(h, id, 1);
    cachee_l0_stats s = u_stats(h);
    CHECK(s.live_procs == 4);
    CHECK(s.sets == 4);
    CHECK_REGION(h);
    for (uint64_t left = 3; left >= 1; left--) {
        u_inc(&sync[2 + (3 - left)]); /* depth `left` may go */
        wait_live(h, left);
    }
    CHECK_CHILD(kid, 30);
    s = u_stats(h);
    CHECK(s.live_procs == 1);
    CHECK(s.reaped_procs == 3);
    CHECK(s.pins == 0);
    U_FINISH(h, name);
}

/* Every entry point works as the first call of a forked child. */
TEST(fork_any_call_first) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "first", 4 * MiB, 16 * KiB);
    for (uint32_t id = 0; id < 20; id++) OK(u_set_val(h, id, 1, 200));
    enum { NCALLS = 13 };
    for (int call = 0; call < NCALLS; call++) {
        pid_t pid = u_fork();
        if (pid == 0) {
            uint8_t buf[512];
            cachee_l0_view v;
            cachee_l0_stats s;
            const void *keys[1] = {"k:3"};
            size_t lens[1] = {3};
            int res[1];
            switch (call) {
            case 0: OK(u_set_val(h, 100, 1, 100)); break;
            case 1: OK(cachee_l0_get(h, "k:3", 3, buf, sizeof buf, NULL)); break;
            case 2: OK(cachee_l0_read_begin(h, "k:3", 3, &v)); break;
            case 3:
                OK(cachee_l0_get_pinned(h, "k:3", 3, &v));
                OK(cachee_l0_release(h, &v));
                break;
            case 4:
                OK(cachee_l0_get_many(h, 1, keys, lens, &v, res));
                OK(res[0]);
                OK(cachee_l0_release(h, &v));
                break;
            case 5: CHECK_RC(cachee_l0_contains(h, "k:3", 3), 1); break;
            case 6: CHECK_RC(cachee_l0_delete(h, "nope", 4), CACHEE_L0_NOTFOUND); break;
            case 7: OK(cachee_l0_stats_get(h, &s)); break;
            case 8: CHECK(cachee_l0_reap(h) >= 0); break;
            case 9: CHECK_REGION(h); break;
            case 10: CHECK(cachee_l0_count(h) >= 20); break;
            case 11: OK(cachee_l0_fork_prepare(h)); OK(cachee_l0_fork_parent(h)); break;
            case 12: break; /* nothing but close */
            }
            /* and then everything else works */
            OK(u_set_val(h, 200 + (uint32_t)call, 1, 150));
            u_expect_val(h, 5, 1);
            OK(cachee_l0_get_pinned(h, "k:6", 3, &v));
            OK(cachee_l0_release(h, &v));
            OK(cachee_l0_stats_get(h, &s));
            CHECK(s.live_procs >= 2);
            if (call % 2 == 0) OK(cachee_l0_close(h)); /* half of them close */
            _exit(0);
        }
        CHECK_CHILD(pid, 30);
        /* the parent is untouched by whatever the child did */
        wait_live(h, 1);
        u_expect_val(h, 200 + (uint32_t)call, 1);
        OK(u_set_val(h, 300 + (uint32_t)call, 1, 100));
        CHECK_REGION(h);
    }
    cachee_l0_stats s = u_stats(h);
    CHECK(s.live_procs == 1);
    CHECK(s.pins == 0);
    U_CLOSE_UNLINK(h, name);
}

/* A child that closes the inherited handle without ever using it must not
 * take the parent's registration with it. */
TEST(fork_child_closes_unused_handle) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "cclose", 4 * MiB, 16 * KiB);
    OK(u_set_val(h, 1, 1, 100));
    cachee_l0_view v;
    OK(cachee_l0_get_pinned(h, "k:1", 3, &v));
    for (int i = 0; i < 3; i++) {
        pid_t pid = u_fork();
        if (pid == 0) {
            OK(cachee_l0_close(h));
            _exit(0);
        }
        CHECK_CHILD(pid, 10);
    }
    /* another process reaps: the parent must still count as alive */
    pid_t pid = u_fork();
    if (pid == 0) {
        cachee_l0 *h2 = u_attach(name);
        CHECK(cachee_l0_reap(h2) == 0);
        cachee_l0_stats s = u_stats(h2);
        CHECK(s.live_procs == 2);
        CHECK(s.pins == 1);
        OK(cachee_l0_close(h2));
        _exit(0);
    }
    CHECK_CHILD(pid, 10);
    cachee_l0_stats s = u_stats(h);
    CHECK(s.live_procs == 1 && s.pins == 1);
    OK(cachee_l0_release(h, &v));
    CHECK(u_stats(h).reaped_procs == 0);
    U_FINISH(h, name);
}

TEST(fork_many_children_slots_reaped_and_reused) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "many", 4 * MiB, 16 * KiB, 0, 8);
    OK(u_set_val(h, 0, 1, 100));
    int n = u_long_mode() ? 400 : 60;
    int closed = 0;
    for (int i = 0; i < n; i++) { /* far more children than slots */
        pid_t pid = u_fork();
        if (pid == 0) {
            OK(u_set_val(h, 1000 + (uint32_t)i, 1, 100));
            u_expect_val(h, 0, 1);
            if (i % 3 == 0) OK(cachee_l0_close(h));
            _exit(0);
        }
        if (i % 3 == 0) closed++;
        CHECK_CHILD(pid, 10);
    }
    for (int i = 0; i < n; i++) u_expect_val(h, 1000 + (uint32_t)i, 1);
    cachee_l0_stats s = u_stats(h);
    CHECK(s.live_procs == 1);
    CHECK(s.reaped_procs == (uint64_t)(n - closed));
    CHECK(s.sets == (uint64_t)n + 1);
    /* seven at once fill the table; all alive are counted */
    volatile uint64_t *sync = u_shm(4096);
    pid_t pids[7];
    for (int i = 0; i < 7; i++) {
        pids[i] = u_fork();
        if (pids[i] == 0) {
            u_expect_val(h, 0, 1);
            u_inc(&sync[0]);
            u_wait_counter(&sync[1], 1, 30);
            _exit(0);
        }
    }
    u_wait_counter(&sync[0], 7, 30);
    CHECK(u_stats(h).live_procs == 8);
    u_inc(&sync[1]);
    for (int i = 0; i < 7; i++) CHECK_CHILD(pids[i], 10);
    wait_live(h, 1);
    U_FINISH(h, name);
}

/* ------------------------------------------------------------ hand-off */

static pid_t fork_with_handoff(cachee_l0 *h) {
    u_before_fork();
    OK(cachee_l0_fork_prepare(h));
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        u_child_setup(parent);
        OK(cachee_l0_fork_child(h));
        return 0;
    }
    OK(cachee_l0_fork_parent(h));
    CHECK(pid > 0);
    return pid;
}

TEST(fork_handoff_view_survives_in_child) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "handoff", 4 * MiB, 16 * KiB, 16384, 0);
    cachee_l0_info info = u_info(h);
    OK(u_set_val(h, 1, 1, 5000));
    cachee_l0_view v;
    OK(cachee_l0_get_pinned(h, "k:1", 3, &v));
    uint8_t *copy = malloc(v.len);
    CHECK(copy != NULL);
    memcpy(copy, v.data, v.len);
    for (uint32_t id = 100; id < 140; id++) OK(u_set_val(h, id, 1, 1000)); /* roll */
    OK(u_set_val(h, 1, 2, 5000)); /* the pinned version is no longer current */
    volatile uint64_t *sync = u_shm(4096);

    pid_t pid = fork_with_handoff(h);
    if (pid == 0) {
        u_inc(&sync[0]);
        u_wait_counter(&sync[1], 1, 60); /* parent released, region flooded */
        CHECK(memcmp(v.data, copy, v.len) == 0);
        CHECK(u_value_equals(v.data, v.len, 1, 1) == 0);
        cachee_l0_stats s = u_stats(h);
        CHECK(s.pins == 1 && s.pinned_bytes == 5000);
        OK(cachee_l0_release(h, &v));
        CHECK_RC(cachee_l0_release(h, &v), CACHEE_L0_E_BAD_PIN);
        s = u_stats(h);
        CHECK(s.pins == 0 && s.pinned_bytes == 0);
        /* the child goes on as a normal user */
        OK(u_set_val(h, 2, 1, 100));
        u_expect_val(h, 2, 1);
        _exit(0);
    }
    u_wait_counter(&sync[0], 1, 30);
    cachee_l0_stats s = u_stats(h);
    CHECK(s.live_procs == 2);
    CHECK(s.pins == 2); /* ours and the child's copy */
    OK(cachee_l0_release(h, &v));
    CHECK_RC(cachee_l0_release(h, &v), CACHEE_L0_E_BAD_PIN);
    s = u_stats(h);
    CHECK(s.pins == 1 && s.pinned_bytes == 5000);
    flood(h, 3 * info.arena_size, 10000);
    s = u_stats(h);
    u_print_stats("child's inherited pin, after flood", &s);
    CHECK(s.pins == 1);
    CHECK(s.segments_limbo == 1); /* kept for the child's view only */
    u_inc(&sync[1]);
    CHECK_CHILD(pid, 30);
    u_expect_val(h, 2, 1);
    flood(h, info.arena_size / 2, 90000);
    s = u_stats(h);
    CHECK(s.pins == 0 && s.segments_limbo == 0);
    CHECK(s.live_procs == 1);
    free(copy);
    U_FINISH(h, name);
}

/* Hand-off down a chain: each level inherits the view, hands it on, then
 * releases its own copy; the deepest process still has the exact bytes
 * after the region was overwritten three times over. */
TEST(fork_handoff_depth_3) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "handoff3", 4 * MiB, 16 * KiB, 16384, 0);
    cachee_l0_info info = u_info(h);
    OK(u_set_val(h, 1, 1, 3000));
    cachee_l0_view v;
    OK(cachee_l0_get_pinned(h, "k:1", 3, &v));
    uint8_t copy[3000];
    memcpy(copy, v.data, v.len);
    for (uint32_t id = 100; id < 140; id++) OK(u_set_val(h, id, 1, 1000));
    OK(cachee_l0_delete(h, "k:1", 3));
    volatile uint64_t *sync = u_shm(4096);
    pid_t top = fork_with_handoff(h);
    if (top == 0) {
        for (int depth = 1;; depth++) {
            CHECK(memcmp(v.data, copy, v.len) == 0);
            if (depth == 3) {
                u_inc(&sync[0]);
                u_wait_counter(&sync[1], 1, 60); /* flooded */
                CHECK(memcmp(v.data, copy, v.len) == 0);
                CHECK(u_stats(h).pins == 1);
                OK(cachee_l0_release(h, &v));
                CHECK_RC(cachee_l0_release(h, &v), CACHEE_L0_E_BAD_PIN);
                CHECK(u_stats(h).pins == 0);
                _exit(0);
            }
            pid_t kid = fork_with_handoff(h);
            if (kid == 0) continue; /* one level deeper */
            OK(cachee_l0_release(h, &v)); /* this level's copy */
            CHECK_CHILD(kid, 60);
            _exit(0);
        }
    }
    OK(cachee_l0_release(h, &v));
    u_wait_counter(&sync[0], 1, 30);
    wait_pins(h, 1); /* only the deepest child's copy is left */
    cachee_l0_stats s = u_stats(h);
    CHECK(s.live_procs == 4);
    flood(h, 3 * info.arena_size, 10000);
    CHECK(u_stats(h).segments_limbo == 1);
    u_inc(&sync[1]);
    CHECK_CHILD(top, 60);
    s = u_stats(h);
    CHECK(s.pins == 0 && s.live_procs == 1);
    U_FINISH(h, name);
}

/* A hand-off child that forks with hand-off again before its own parent
 * has returned from cachee_l0_fork_parent (here: the parent waits until the
 * child and grandchild are done): every call succeeds, and the child, alive,
 * keeps its slot through a reap (it used to lose its liveness bytes:
 * tests/torture/repro/fork_handoff_chain_race.c). */
TEST(handoff_child_forks_before_its_parent_returns) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "handoffchain", 4 * MiB, 16 * KiB);
    OK(u_set_val(h, 1, 1, 100));
    volatile uint64_t *sync = u_shm(4096);
    OK(cachee_l0_fork_prepare(h));
    pid_t pid = u_fork();
    if (pid == 0) {
        OK(cachee_l0_fork_child(h));
        OK(cachee_l0_fork_prepare(h));
        pid_t g = u_fork();
        if (g == 0) {
            OK(cachee_l0_fork_child(h));
            OK(u_set_val(h, 3, 1, 100));
            _exit(0);
        }
        OK(cachee_l0_fork_parent(h));
        CHECK_CHILD(g, 60);
        u_inc(&sync[0]);                  /* grandchild gone */
        u_wait_counter(&sync[1], 1, 60);  /* the parent reaped */
        OK(u_set_val(h, 2, 1, 100));      /* our slot still works */
        u_expect_val(h, 3, 1);
        _exit(0);
    }
    u_wait_counter(&sync[0], 1, 60); /* only now does the parent return */
    OK(cachee_l0_fork_parent(h));
    CHECK(cachee_l0_reap(h) >= 0); /* the grandchild's slot, at most */
    CHECK(u_stats(h).live_procs == 2); /* we and the live child */
    u_inc(&sync[1]);
    CHECK_CHILD(pid, 60);
    u_expect_val(h, 2, 1);
    wait_live(h, 1);
    U_FINISH(h, name);
}

/* Without hand-off: children work (lazy registration); a view inherited
 * from the parent is protected by the parent's pin, and releasing it in the
 * child is harmless. */
TEST(fork_without_handoff) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "nohand", 4 * MiB, 16 * KiB);
    OK(u_set_val(h, 1, 1, 2000));
    cachee_l0_view v;
    OK(cachee_l0_get_pinned(h, "k:1", 3, &v));
    pid_t pid = u_fork();
    if (pid == 0) {
        CHECK(u_value_equals(v.data, v.len, 1, 1) == 0);
        OK(cachee_l0_release(h, &v)); /* correct, and does not disturb the parent */
        cachee_l0_stats s = u_stats(h);
        CHECK(s.pins == 1);
        CHECK(s.live_procs == 2);
        cachee_l0_view w;
        OK(cachee_l0_get_pinned(h, "k:1", 3, &w));
        CHECK(u_stats(h).pins == 2);
        OK(cachee_l0_release(h, &w));
        CHECK_RC(cachee_l0_release(h, &w), CACHEE_L0_E_BAD_PIN);
        OK(u_set_val(h, 2, 1, 100));
        _exit(0);
    }
    CHECK_CHILD(pid, 30);
    cachee_l0_stats s = u_stats(h);
    CHECK(s.pins == 1 && s.pinned_bytes == 2000);
    CHECK(s.live_procs == 1);
    CHECK(u_value_equals(v.data, v.len, 1, 1) == 0);
    OK(cachee_l0_release(h, &v));
    CHECK(u_stats(h).pins == 0);
    u_expect_val(h, 2, 1);
    U_FINISH(h, name);
}

/* prepare + parent without a child adopting the slot (fork failed, or the
 * child never called fork_child): the prepared slot and its pin copies are
 * reclaimed. */
TEST(fork_prepare_without_adoption) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "noadopt", 4 * MiB, 16 * KiB);
    OK(u_set_val(h, 1, 1, 700));
    cachee_l0_view v;
    OK(cachee_l0_get_pinned(h, "k:1", 3, &v));

    /* as if fork() had failed */
    OK(cachee_l0_fork_prepare(h));
    OK(cachee_l0_fork_parent(h));
    CHECK(cachee_l0_reap(h) == 1);
    cachee_l0_stats s = u_stats(h);
    CHECK(s.live_procs == 1 && s.pins == 1);

    /* a child that never calls fork_child: it registers lazily */
    OK(cachee_l0_fork_prepare(h));
    pid_t pid = u_fork();
    if (pid == 0) {
        OK(u_set_val(h, 2, 1, 100));
        CHECK(u_value_equals(v.data, v.len, 1, 1) == 0);
        _exit(0);
    }
    OK(cachee_l0_fork_parent(h));
    CHECK_CHILD(pid, 30);
    wait_live(h, 1);
    s = u_stats(h);
    CHECK(s.pins == 1 && s.pinned_bytes == 700);
    u_expect_val(h, 2, 1);
    OK(cachee_l0_release(h, &v));
    CHECK(u_stats(h).pins == 0);
    /* the parent still hands off correctly afterwards */
    OK(cachee_l0_get_pinned(h, "k:1", 3, &v));
    pid = fork_with_handoff(h);
    if (pid == 0) {
        CHECK(u_stats(h).pins == 2);
        OK(cachee_l0_release(h, &v));
        _exit(0);
    }
    CHECK_CHILD(pid, 30);
    wait_live(h, 1);
    CHECK(u_stats(h).pins == 1);
    OK(cachee_l0_release(h, &v));
    CHECK(u_stats(h).pins == 0);
    U_FINISH(h, name);
}

int main(int argc, char **argv) { return l0test_main(argc, argv); }
