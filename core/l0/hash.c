/*
 * hash.c -- XXH3-64 (seed 0) of keys, from the header-only libxxhash, and
 * the wall clock used for expiry.
 */
#include "l0_internal.h"
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <time.h>

uint64_t cachee_l0_hash(const void *data, size_t len) {
    return XXH3_64bits(data, len);
}

int64_t l0_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}
