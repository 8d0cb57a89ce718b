/*
 * loadlock.c -- loader locks: one process computes a missing value while the
 * others wait for it (see "Loader locks" in cachee_l0.h).
 *
 * A lock is an OFD write lock on one byte of the region file, far above the
 * init and liveness bytes, taken through a fresh open file description per
 * lock: threads exclude each other like processes, and the kernel drops the
 * lock when its holder dies.  The token handed out is that description's
 * descriptor.
 */
#include "l0_internal.h"
#include "l0_ofd.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

_Static_assert(CACHEE_L0_LOCK_LOAD_BASE >
                   CACHEE_L0_LOCK_SLOTS + 2ull * CACHEE_L0_PROCS_MAX,
               "loader locks must not overlap the liveness bytes");
_Static_assert(CACHEE_L0_LOCK_LOAD_BASE + CACHEE_L0_LOCK_LOAD_MASK <
                   (uint64_t)INT64_MAX,
               "loader lock bytes must be valid file offsets");

static uint64_t load_byte(uint64_t key_hash) {
    return CACHEE_L0_LOCK_LOAD_BASE + (key_hash & CACHEE_L0_LOCK_LOAD_MASK);
}

int cachee_l0_load_trylock(cachee_l0 *h, uint64_t key_hash, int *token) {
    if (token) *token = -1;
    if (h == NULL || token == NULL) return CACHEE_L0_E_INVAL;
    int fd = l0_open_same(h->fd, h->path);
    if (fd < 0) return fd == CACHEE_L0_E_NO_REGION ? fd : -fd;
    int rc = l0_ofd_trylock(fd, load_byte(key_hash), 1);
    if (rc != 0) {
        close(fd);
        return rc == EAGAIN ? CACHEE_L0_E_BUSY : rc;
    }
    *token = fd;
    return 0;
}

/* Is fd a descriptor of the same file as the region's? */
static int same_file(const cachee_l0 *h, int fd) {
    struct stat a, b;
    if (fstat(fd, &a) != 0) return -errno;
    if (fstat(h->fd, &b) != 0) return -errno;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int cachee_l0_load_unlock(cachee_l0 *h, int token) {
    if (h == NULL || token < 0) return CACHEE_L0_E_INVAL;
    int same = same_file(h, token);
    if (same < 0) return -same;
    if (same == 0) return CACHEE_L0_E_INVAL;
    /* Unlock explicitly before closing: a child forked meanwhile may share
     * the description, and close() alone would leave the lock to it. */
    int rc = l0_ofd_unlock(token, CACHEE_L0_LOCK_LOAD_BASE,
                           CACHEE_L0_LOCK_LOAD_MASK + 1);
    if (close(token) != 0 && rc == 0 && errno != EINTR) rc = errno;
    return rc;
}

int cachee_l0_load_held(cachee_l0 *h, uint64_t key_hash, int *held) {
    if (h == NULL || held == NULL) return CACHEE_L0_E_INVAL;
    /* h->fd never holds a loader lock, so every holder is "elsewhere". */
    int rc = l0_ofd_held_elsewhere(h->fd, load_byte(key_hash), 1);
    if (rc < 0) return -rc;
    *held = rc;
    return 0;
}
