/*
 * test_loadlock.c -- loader locks (cachee_l0_load_trylock / _unlock / _held):
 * exclusion between processes and between threads of one process, one
 * loader among many processes missing the same key, release when the
 * descriptor closes or the holder exits, takeover when the holder is
 * SIGKILLed, fork while a lock is held, independence from the region's own
 * locks, and bad arguments.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "l0test.h"
#include "l0util.h"

#define MiB (1ull << 20)

/* A new region whose name is removed at once: the tests and their children
 * use the handle only (test cases end with _exit, so nothing runs at exit to
 * remove names later).  Loader locks reopen the file through /proc/self/fd. */
static cachee_l0 *fresh(const char *tag) {
    char name[128];
    u_name(name, sizeof name, tag);
    cachee_l0 *h = u_create(name, 8 * MiB, 0);
    OK(cachee_l0_unlink(name));
    return h;
}

static int held(cachee_l0 *h, uint64_t hash) {
    int v = -1;
    OK(cachee_l0_load_held(h, hash, &v));
    CHECK(v == 0 || v == 1);
    return v;
}

TEST(lock_unlock_basic) {
    cachee_l0 *h = fresh("ll-basic");
    uint64_t hash = cachee_l0_hash("k", 1);
    CHECK(held(h, hash) == 0);
    int t = -7;
    OK(cachee_l0_load_trylock(h, hash, &t));
    CHECK(t >= 0);
    CHECK(held(h, hash) == 1);
    /* A second attempt, same process, same thread: a new description. */
    int t2 = 5;
    CHECK_RC(cachee_l0_load_trylock(h, hash, &t2), CACHEE_L0_E_BUSY);
    CHECK(t2 == -1);
    /* Another key is independent. */
    int t3 = -1;
    OK(cachee_l0_load_trylock(h, cachee_l0_hash("other", 5), &t3));
    CHECK(t3 >= 0 && t3 != t);
    OK(cachee_l0_load_unlock(h, t));
    CHECK(held(h, hash) == 0);
    OK(cachee_l0_load_trylock(h, hash, &t));
    OK(cachee_l0_load_unlock(h, t));
    OK(cachee_l0_load_unlock(h, t3));
    /* Keys that agree in the low 40 bits of their hash share a lock. */
    OK(cachee_l0_load_trylock(h, 0x1234, &t));
    CHECK_RC(cachee_l0_load_trylock(h, 0x1234 | (7ull << 40), &t2),
             CACHEE_L0_E_BUSY);
    OK(cachee_l0_load_unlock(h, t));
    CHECK(strstr(cachee_l0_strerror(CACHEE_L0_E_BUSY), "loader lock") != NULL);
    CHECK_REGION(h);
    OK(cachee_l0_close(h));
}

TEST(bad_arguments) {
    cachee_l0 *h = fresh("ll-bad");
    int t = 3;
    CHECK_RC(cachee_l0_load_trylock(NULL, 1, &t), CACHEE_L0_E_INVAL);
    CHECK(t == -1);
    CHECK_RC(cachee_l0_load_trylock(h, 1, NULL), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_load_unlock(NULL, 0), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_load_unlock(h, -1), CACHEE_L0_E_INVAL);
    int v;
    CHECK_RC(cachee_l0_load_held(NULL, 1, &v), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_load_held(h, 1, NULL), CACHEE_L0_E_INVAL);
    /* A descriptor of another file is refused and left open. */
    int other = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(other >= 0);
    CHECK_RC(cachee_l0_load_unlock(h, other), CACHEE_L0_E_INVAL);
    CHECK(fcntl(other, F_GETFD) >= 0);
    close(other);
    /* A closed descriptor: EBADF. */
    OK(cachee_l0_load_trylock(h, 1, &t));
    OK(cachee_l0_load_unlock(h, t));
    CHECK_RC(cachee_l0_load_unlock(h, t), EBADF);
    /* A token of another region is refused. */
    cachee_l0 *h2 = fresh("ll-bad2");
    OK(cachee_l0_load_trylock(h2, 1, &t));
    CHECK_RC(cachee_l0_load_unlock(h, t), CACHEE_L0_E_INVAL);
    CHECK(held(h2, 1) == 1);
    OK(cachee_l0_load_unlock(h2, t));
    OK(cachee_l0_close(h2));
    OK(cachee_l0_close(h));
}

TEST(release_on_close_and_exit) {
    cachee_l0 *h = fresh("ll-close");
    int t;
    OK(cachee_l0_load_trylock(h, 42, &t));
    close(t); /* closing the descriptor drops the lock */
    CHECK(held(h, 42) == 0);
    /* A child that takes the lock and exits without unlocking. */
    pid_t pid = u_fork();
    if (pid == 0) {
        int ct;
        OK(cachee_l0_load_trylock(h, 42, &ct));
        _exit(0);
    }
    CHECK_CHILD(pid, 10);
    CHECK(held(h, 42) == 0);
    OK(cachee_l0_load_trylock(h, 42, &t));
    OK(cachee_l0_load_unlock(h, t));
    OK(cachee_l0_close(h));
}

TEST(takeover_after_sigkill) {
    cachee_l0 *h = fresh("ll-kill");
    volatile uint64_t *sh = u_shm(4096);
    pid_t pid = u_fork();
    if (pid == 0) {
        int ct;
        OK(cachee_l0_load_trylock(h, 77, &ct));
        u_inc(&sh[0]);
        for (;;) pause(); /* "computing" forever */
    }
    u_wait_counter(&sh[0], 1, 10);
    int t;
    CHECK_RC(cachee_l0_load_trylock(h, 77, &t), CACHEE_L0_E_BUSY);
    CHECK(held(h, 77) == 1);
    kill(pid, SIGKILL);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st));
    /* The kernel dropped the dead holder's lock: take over at once. */
    OK(cachee_l0_load_trylock(h, 77, &t));
    OK(cachee_l0_load_unlock(h, t));
    CHECK_REGION(h);
    OK(cachee_l0_close(h));
}

/* N processes miss the same keys at once; each key is computed once. */
TEST(one_loader_among_processes) {
    enum { NPROC = 16, NKEYS = 8 };
    cachee_l0 *h = fresh("ll-procs");
    volatile uint64_t *sh = u_shm(4096); /* [0] start, [1+k] loads of key k */
    pid_t pids[NPROC];
    for (int p = 0; p < NPROC; p++) {
        pids[p] = u_fork();
        if (pids[p] != 0) continue;
        u_wait_counter(&sh[0], 1, 10);
        for (int k = 0; k < NKEYS; k++) {
            char key[32];
            int kl = snprintf(key, sizeof key, "load:%d", k);
            uint64_t hash = cachee_l0_hash(key, (size_t)kl);
            double t0 = l0test_now();
            double backoff = 1;
            for (;;) {
                if (cachee_l0_contains(h, key, (size_t)kl) == 1) break;
                int t;
                int rc = cachee_l0_load_trylock(h, hash, &t);
                if (rc == 0) {
                    if (cachee_l0_contains(h, key, (size_t)kl) != 1) {
                        u_inc(&sh[1 + k]);
                        u_sleep_ms(20); /* compute */
                        OK(cachee_l0_set(h, key, (size_t)kl, "v", 1, NULL, 0, 0, 0));
                    }
                    OK(cachee_l0_load_unlock(h, t));
                    break;
                }
                CHECK_RC(rc, CACHEE_L0_E_BUSY);
                CHECK(l0test_now() - t0 < u_patience(20)); /* a hang guard */
                u_sleep_ms(backoff);
                if (backoff < 10) backoff *= 2;
            }
        }
        _exit(0);
    }
    u_inc(&sh[0]);
    for (int p = 0; p < NPROC; p++) CHECK_CHILD(pids[p], 60);
    for (int k = 0; k < NKEYS; k++) {
        if (sh[1 + k] != 1)
            fprintf(stderr, "  key %d loaded %llu times\n", k,
                    (unsigned long long)sh[1 + k]);
        CHECK(sh[1 + k] == 1);
    }
    CHECK_REGION(h);
    OK(cachee_l0_close(h));
}

/* Threads of one process exclude each other. */
static cachee_l0 *th_h;
static int th_inside, th_entries, th_busy;

static void *th_run(void *arg) {
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        int t;
        int rc = cachee_l0_load_trylock(th_h, 99, &t);
        if (rc == CACHEE_L0_E_BUSY) {
            __atomic_fetch_add(&th_busy, 1, __ATOMIC_RELAXED);
            sched_yield();
            continue;
        }
        CHECK(rc == 0);
        int in = __atomic_add_fetch(&th_inside, 1, __ATOMIC_ACQ_REL);
        CHECK(in == 1);
        __atomic_fetch_add(&th_entries, 1, __ATOMIC_RELAXED);
        sched_yield();
        __atomic_sub_fetch(&th_inside, 1, __ATOMIC_ACQ_REL);
        CHECK(cachee_l0_load_unlock(th_h, t) == 0);
    }
    return NULL;
}

TEST(exclusion_between_threads) {
    th_h = fresh("ll-threads");
    pthread_t th[4];
    for (int i = 0; i < 4; i++) CHECK(pthread_create(&th[i], NULL, th_run, NULL) == 0);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    printf("  %d entries, %d busy\n", th_entries, th_busy);
    CHECK(th_entries > 0);
    CHECK(held(th_h, 99) == 0);
    OK(cachee_l0_close(th_h));
}

/* A child forked while the parent holds a lock shares it; the parent's
 * unlock releases it even while the child keeps the descriptor open. */
TEST(fork_while_held) {
    cachee_l0 *h = fresh("ll-fork");
    volatile uint64_t *sh = u_shm(4096);
    int t;
    OK(cachee_l0_load_trylock(h, 5, &t));
    pid_t pid = u_fork();
    if (pid == 0) {
        /* Inherited: the lock is held by "us" too; a fresh try is refused. */
        int ct;
        CHECK_RC(cachee_l0_load_trylock(h, 5, &ct), CACHEE_L0_E_BUSY);
        u_inc(&sh[0]);
        u_wait_counter(&sh[1], 1, 10); /* parent unlocked */
        CHECK(fcntl(t, F_GETFD) >= 0); /* still open here */
        OK(cachee_l0_load_trylock(h, 5, &ct));
        OK(cachee_l0_load_unlock(h, ct));
        close(t); /* the child's reference, never load_unlock */
        _exit(0);
    }
    u_wait_counter(&sh[0], 1, 10);
    OK(cachee_l0_load_unlock(h, t));
    CHECK(held(h, 5) == 0);
    u_inc(&sh[1]);
    CHECK_CHILD(pid, 10);
    OK(cachee_l0_close(h));
}

/* Holding loader locks disturbs neither liveness nor the region's locks. */
TEST(independent_of_region_locks) {
    cachee_l0 *h = fresh("ll-indep");
    int toks[64];
    for (int i = 0; i < 64; i++) OK(cachee_l0_load_trylock(h, (uint64_t)i * 0x9E3779B97F4A7C15ull, &toks[i]));
    cachee_l0_stats s = u_stats(h);
    CHECK(s.live_procs == 1);
    pid_t pid = u_fork();
    if (pid == 0) {
        OK(u_set_val(h, 1, 1, 100));
        cachee_l0_stats cs = u_stats(h);
        CHECK(cs.live_procs == 2);
        _exit(0);
    }
    CHECK_CHILD(pid, 10);
    u_expect_val(h, 1, 1);
    /* The child is gone, the parent alive: reaping counts exactly one. */
    s = u_stats(h);
    CHECK(s.live_procs == 1);
    CHECK_REGION(h);
    for (int i = 0; i < 64; i++) OK(cachee_l0_load_unlock(h, toks[i]));
    OK(cachee_l0_close(h));
}

int main(int argc, char **argv) { return l0test_main(argc, argv); }
