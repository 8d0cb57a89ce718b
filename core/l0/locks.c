/*
 * locks.c -- robust process-shared mutexes.  The next process to lock a
 * mutex whose owner died gets EOWNERDEAD, repairs the data the lock protects
 * (see CRASH RECOVERY in cachee_l0.h), then marks the mutex consistent.
 */
#include "l0_internal.h"
#include <errno.h>
#include <time.h>

int l0_mutex_init(pthread_mutex_t *m) {
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc != 0) return rc;
    rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rc == 0) rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (rc == 0) rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return rc;
}

/*
 * Lock in slices of 20 ms: when a waiter is SIGKILLed the futex wake-up meant
 * for it can be lost (measured with a bare glibc robust mutex on Linux 6.18 /
 * glibc 2.36: waiters asleep for seconds on a free mutex), and an untimed
 * wait would sleep until some other process happened to take the lock.
 */
static int lock_wait(pthread_mutex_t *m) {
    int rc = pthread_mutex_trylock(m);
    while (rc == EBUSY) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        rc = pthread_mutex_timedlock(m, &ts);
        if (rc == ETIMEDOUT) rc = pthread_mutex_trylock(m);
    }
    return rc;
}

static int lock_robust(cachee_l0 *h, pthread_mutex_t *m,
                       void (*repair)(cachee_l0 *, uint64_t), uint64_t arg) {
    int rc = lock_wait(m);
    if (L0_LIKELY(rc == 0)) return 0;
    if (rc == EOWNERDEAD) {
        repair(h, arg);
        if (pthread_mutex_consistent(m) != 0) {
            pthread_mutex_unlock(m);
            return CACHEE_L0_E_LOCK;
        }
        return 0;
    }
    return CACHEE_L0_E_LOCK;
}

static void repair_shard(cachee_l0 *h, uint64_t s) { l0_shard_repair(h, s); }
static void repair_global(cachee_l0 *h, uint64_t unused) {
    (void)unused;
    l0_repair_global(h);
}

int l0_shard_lock(cachee_l0 *h, uint64_t s) {
    return lock_robust(h, &l0_shard(h, s)->lock, repair_shard, s);
}

void l0_shard_unlock(cachee_l0 *h, uint64_t s) {
    pthread_mutex_unlock(&l0_shard(h, s)->lock);
}

int l0_global_lock(cachee_l0 *h) {
    return lock_robust(h, &l0_hdr(h)->global_lock, repair_global, 0);
}

void l0_global_unlock(cachee_l0 *h) {
    pthread_mutex_unlock(&l0_hdr(h)->global_lock);
}
