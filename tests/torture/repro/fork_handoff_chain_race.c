/* fork_handoff_chain_race.c -- cachee_l0_fork_parent() failed with EAGAIN in
 * a hand-off child that forked (with hand-off) again before its own parent
 * had returned from cachee_l0_fork_parent().  Seen as a flake of
 * tests/c/test_fork.c fork_handoff_depth_3 on a loaded 2-core machine
 * ("test_fork.c:287: cachee_l0_fork_parent(h) returned 11 (Resource
 * temporarily unavailable)"); here the parent is made slow on purpose.
 * FIXED in core/l0/procs.c: the hand-off no longer moves the parent's
 * liveness; test_fork.c handoff_child_forks_before_its_parent_returns is
 * the regression test.  This program now exits 0.
 *
 *   gcc -O1 -g -Iinclude -Icore/l0 -o /tmp/fhr \
 *       tests/torture/repro/fork_handoff_chain_race.c core/l0/[a-z]*.c -lpthread
 *   /tmp/fhr          # exited 1 and printed "child: fork_parent = 11" before the fix
 *
 * The mechanism, before the fix: (core/l0/procs.c): fork_prepare claims the child's slot C by
 * locking liveness byte (C, 0) through the parent's description D.  After
 * fork(), fork_child moves the child to a new description and locks (C, 1)
 * (lockbyte = 1); byte (C, 0) stays held by D until the *parent* drops D in
 * fork_parent (reopen + close).  When the child forks with hand-off in turn,
 * its fork_parent switches its liveness to the other byte, nb = 1 - 1 = 0,
 * and l0_ofd_trylock(C, 0) fails with EAGAIN as long as the grandparent has
 * not yet reached its fork_parent (descheduled right after fork()).  The
 * hand-off of the grandchild is then half done: the child's fork_parent
 * returns an error, while the grandchild's fork_child succeeds.  Worse, the
 * failed fork_parent has already replaced the child's description (reopen)
 * and closed its copy of the old one, which held the child's liveness byte
 * (C, 1): once the grandchild drops its inherited copy, the child holds no
 * liveness byte at all, and the next reaper retires its slot (its pins, its
 * open segments) while it is alive.  The Python extension ignores the error
 * of fork_parent (python/cachee/_ext/region.c, region_fork_parent), so a
 * forked worker that forks again at once (multiprocessing, gunicorn) can
 * lose its slot silently.  This program shows both: exit 1, and
 * "live_procs 1 (want 2)" after the reap.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <signal.h>

#include "cachee_l0.h"

int main(void) {
    char name[64];
    snprintf(name, sizeof name, "cachee-torture-%d-fhr", (int)getpid());
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    o.size = 4 << 20;
    o.flags = CACHEE_L0_CREATE | CACHEE_L0_EXCLUSIVE;
    cachee_l0 *h = NULL;
    int rc = cachee_l0_open(name, &o, &h);
    if (rc != 0) {
        fprintf(stderr, "open: %s\n", cachee_l0_strerror(rc));
        return 2;
    }
    rc = cachee_l0_set(h, "k", 1, "v", 1, NULL, 0, 0, 0); /* registers */
    if (rc == 0) rc = cachee_l0_fork_prepare(h);
    if (rc != 0) {
        fprintf(stderr, "setup: %d\n", rc);
        cachee_l0_unlink(name);
        return 2;
    }
    int ready[2], go[2];
    if (pipe(ready) != 0 || pipe(go) != 0) return 2;
    pid_t pid = fork();
    if (pid == 0) {
        /* the child: adopts its slot, then forks with hand-off at once */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int r1 = cachee_l0_fork_child(h);
        int r2 = cachee_l0_fork_prepare(h);
        pid_t g = fork();
        if (g == 0) {
            int r3 = cachee_l0_fork_child(h);
            _exit(r3 == 0 ? 0 : 3);
        }
        int r4 = cachee_l0_fork_parent(h);
        int st = 0;
        waitpid(g, &st, 0);
        printf("child: fork_child = %d, fork_prepare = %d, fork_parent = %d (%s), "
               "grandchild exit %d\n", r1, r2, r4, strerror(r4 > 0 ? r4 : 0),
               WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        fflush(stdout);
        char b = 'r';
        if (write(ready[1], &b, 1) != 1 || read(go[0], &b, 1) != 1) _exit(2);
        _exit(r1 == 0 && r2 == 0 && r4 == 0 ? 0 : 1); /* alive until now */
    }
    usleep(500 * 1000); /* the parent is descheduled between fork and fork_parent */
    rc = cachee_l0_fork_parent(h);
    char b;
    if (read(ready[0], &b, 1) != 1) return 2;
    /* the child is alive (it waits for `go`): it must not be reaped */
    int reaped = cachee_l0_reap(h);
    cachee_l0_stats s;
    cachee_l0_stats_get(h, &s);
    printf("parent: fork_parent = %d; with the child alive: reap() = %d, "
           "live_procs %llu (want 2)\n", rc, reaped, (unsigned long long)s.live_procs);
    if (write(go[1], "g", 1) != 1) return 2;
    int st = 0;
    waitpid(pid, &st, 0);
    printf("parent: child exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    cachee_l0_close(h);
    cachee_l0_unlink(name);
    return rc == 0 && s.live_procs == 2 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
