/*
 * abi_internal.h -- what abi.c and the Go side of the ABI share, not part
 * of include/cachee.h.
 *
 * How cachee_get hands a value out: in ONE block malloc'ed by libcachee, the
 * value bytes first (so `data` is aligned as malloc aligns), the metadata
 * right after them; cachee_value_free frees the block (data, or meta when
 * the value is empty).  cachee_get passes the Go side a scratch buffer on
 * its own stack: a value and metadata that fit it are copied there by Go,
 * and abi.c then makes the block itself, with no cgo call from Go; larger
 * ones are put in a block by Go through one cgo call (cachee_abi_block).
 */
#ifndef CACHEE_ABI_INTERNAL_H
#define CACHEE_ABI_INTERNAL_H

#include <stddef.h>
#include "cachee.h"

/* Scratch of cachee_get: value bytes, then metadata bytes. */
#define CACHEE_ABI_SCRATCH_DATA 4096
#define CACHEE_ABI_SCRATCH_META 512

/* Status of cacheeGo_get (never returned to the caller): *out is filled but
 * for data and meta, whose bytes are at the start of the two parts of the
 * scratch. */
#define CACHEE_ABI_IN_SCRATCH 1000

/* Copy d (dn bytes) and m (mn bytes) into one new block and point out->data
 * and out->meta into it (NULL for an empty one).  0, or -1 when malloc
 * failed (out untouched). */
int cachee_abi_block(const void *d, size_t dn, const void *m, size_t mn, cachee_value *out);

#endif
