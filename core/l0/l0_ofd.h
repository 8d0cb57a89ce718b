/*
 * l0_ofd.h -- OFD byte-range locks on the region file (see ofd.c).
 */
#ifndef CACHEE_L0_OFD_H
#define CACHEE_L0_OFD_H

#include "l0_internal.h"

/** Take a write lock on [start, start+len) without waiting.
 *  Returns 0, EAGAIN if another description holds it, or an errno value. */
int l0_ofd_trylock(int fd, uint64_t start, uint64_t len);
/** Release our description's lock on [start, start+len). */
int l0_ofd_unlock(int fd, uint64_t start, uint64_t len);
/** 1 if a description other than fd's holds a lock overlapping the range,
 *  0 if none does, or a negative errno value. */
int l0_ofd_held_elsewhere(int fd, uint64_t start, uint64_t len);

/**
 * Open the file `fd` refers to again, as a new open file description (via
 * /proc/self/fd, else `path` if it still names the same inode).  Liveness
 * locks live on a description that is never mapped: a mapping keeps its
 * description (and so its locks) alive as long as the mapping exists, also
 * in children that inherited it.  Returns the new fd, or a negative errno or
 * CACHEE_L0_E_NO_REGION.
 */
int l0_open_same(int fd, const char *path);

#endif
