/* robust_lost_wakeup.c -- found by the torture harness (stalled writers in
 * l0_global_lock / l0_shard_lock, core/l0/locks.c:22), reduced to glibc and
 * the kernel alone: no cachee code.
 *
 *   gcc -O2 -o /tmp/rlw tests/torture/repro/robust_lost_wakeup.c -lpthread
 *   /tmp/rlw 40             # plain pthread_mutex_lock: waiters get stuck
 *   TIMED=1 /tmp/rlw 40     # pthread_mutex_timedlock in 20 ms slices: none
 *
 * Robust process-shared mutex + SIGKILL of random contenders: is a waiter
 * ever left asleep on an unlocked (or owner-died) mutex?  Exit status 1 if so.
 * Workers loop: wait while paused; lock; short critical section; unlock.
 * The supervisor kills a random worker every 0-3 ms, restarts it, and after
 * each kill pauses the others (at their loop top) for 300 ms and looks for
 * a worker that stays inside pthread_mutex_lock for > 250 ms.  */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NW 4
struct shm {
    pthread_mutex_t m;
    volatile int pause;
    volatile int64_t in_lock_since[NW]; /* ns, 0 = not in lock() */
    volatile int64_t ops[NW];
    volatile int ownerdead;
};
static struct shm *S;
static int64_t now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000ll + t.tv_nsec; }

static void worker(int w) {
    for (;;) {
        while (S->pause) usleep(50);
        S->in_lock_since[w] = now_ns();
        int rc;
        if (getenv("TIMED")) {
            /* the mitigation: wait at most 20 ms at a time, then look again */
            do {
                struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 20000000; if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
                rc = pthread_mutex_timedlock(&S->m, &ts);
            } while (rc == ETIMEDOUT);
        } else rc = pthread_mutex_lock(&S->m);
        if (rc == EOWNERDEAD) { __sync_fetch_and_add(&S->ownerdead, 1); pthread_mutex_consistent(&S->m); }
        else if (rc != 0) { fprintf(stderr, "lock rc %d\n", rc); _exit(1); }
        S->in_lock_since[w] = 0;
        for (volatile int i = 0; i < 200; i++) {}
        pthread_mutex_unlock(&S->m);
        S->ops[w]++;
    }
}

static pid_t spawn(int w) { pid_t p = fork(); if (p == 0) worker(w); return p; }

int main(int argc, char **argv) {
    int seconds = argc > 1 ? atoi(argv[1]) : 30;
    S = mmap(NULL, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_t a; pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&S->m, &a);
    pid_t pids[NW];
    for (int w = 0; w < NW; w++) pids[w] = spawn(w);
    srand(getpid());
    int64_t end = now_ns() + seconds * 1000000000ll;
    long kills = 0, stuck = 0;
    while (now_ns() < end) {
        usleep(rand() % 3000);
        int v = rand() % NW;
        kill(pids[v], SIGKILL); waitpid(pids[v], NULL, 0); kills++;
        S->in_lock_since[v] = 0;
        S->pause = 1;
        usleep(300000);
        for (int w = 0; w < NW; w++) {
            int64_t t = S->in_lock_since[w];
            if (w != v && t && now_ns() - t > 250000000ll) {
                usleep(2000000); /* still there 2 s later, nobody else locking? */
                if (S->in_lock_since[w] != t) continue;
            }
            if (w != v && t && now_ns() - t > 250000000ll) {
                stuck++;
                fprintf(stderr, "kill %ld: worker %d (pid %d) in lock() for %.0f ms; futex word now %#x (victim pid %d)\n",
                        kills, w, pids[w], (now_ns() - t) / 1e6, *(volatile unsigned *)&S->m, pids[v]);
            }
        }
        S->pause = 0;
        pids[v] = spawn(v);
    }
    for (int w = 0; w < NW; w++) { kill(pids[w], SIGKILL); waitpid(pids[w], NULL, 0); }
    long ops = 0; for (int w = 0; w < NW; w++) ops += S->ops[w];
    printf("kills %ld, ops %ld, EOWNERDEAD %d, waiters stuck %ld\n", kills, ops, S->ownerdead, stuck);
    return stuck != 0;
}
