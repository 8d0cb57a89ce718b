/*
 * cachee.h -- the C ABI of libcachee.so, the Go core of cachee.
 *
 * Two headers make up cachee's C API.  include/cachee_l0.h is the engine of
 * the shared-memory table (L0): runtime-free C, compiled into every user,
 * and the specification of every byte of a region.  This one is the ABI of
 * the tiers above and below it, in libcachee.so.  ARCHITECTURE.md says how
 * they fit together.
 *
 * libcachee.so is built from capi/ (package main, //export functions) with
 * `go build -buildmode=c-shared`.  It holds the tier engine (core/tiers):
 * the per-process L1 (otter, W-TinyLFU), the promotion of values into L0 and
 * their demotion out of it, the loaders and the tier statistics.  (The
 * machine's disk tier and the fleet's Redis will run in the tier agent, a
 * process of its own; see ARCHITECTURE.md.)  L0 itself, the shared-memory
 * table, is NOT reached through this ABI by the Python extension: the
 * extension reads and writes L0 directly (include/cachee_l0.h) and calls
 * libcachee only for what L0 cannot serve.  libcachee opens its own L0
 * handle on the same region, sharing the caller's process slot
 * ("share_slot" in cachee_open's configuration).
 *
 * THE GO RUNTIME AND fork()
 * ---------------------------------------------------------------------
 * Loading libcachee.so starts a Go runtime, and a Go runtime does not survive
 * fork() without exec (ARCHITECTURE.md, "Why the engine is C").  So:
 *   - a caller loads libcachee.so lazily (dlopen), the first time a process
 *     needs a tier beyond L0, never at import;
 *   - a caller records the pid that loaded it and, in a forked child, calls
 *     nothing here (the call could hang before it could return an error).
 *     The Python extension raises cachee.ForkError instead.
 *   - as a second line of defence every function below returns
 *     CACHEE_E_FORKED in a child, checked in C before the call enters the Go
 *     runtime at all, without a system call: a pthread_atfork child
 *     handler installed when the library is loaded marks the child, and a
 *     page advised MADV_WIPEONFORK, which the kernel zeroes in every child,
 *     also catches children made without fork() (a raw clone()); on a
 *     kernel older than 4.14 getpid() is compared with the pid that loaded
 *     the library instead.  (cachee_abi_version and cachee_value_free need
 *     no Go and work anywhere.)  The caller's own check is still the one that counts: a
 *     thread of the child that entered the runtime before this check was
 *     added could not be helped.
 *
 * HANDLES, MEMORY, THREADS
 * ---------------------------------------------------------------------
 * - A cache is named by a cachee_t handle: a non-zero integer, never a
 *   pointer.  Handles are not reused within a process.  0 is never valid.
 * - No Go pointer crosses the boundary.  Every buffer passed in is owned by
 *   the caller and only read during the call.  Memory handed out (the bytes
 *   of a cachee_value) is allocated with malloc by libcachee and owned by the
 *   caller from then on; release it with cachee_value_free() (never with
 *   free(): see cachee_value).
 * - Every function may be called from any thread, concurrently, on the same
 *   handle.  Functions that can block (tier I/O) do not hold
 *   any lock of the caller's; callers release their own locks (the GIL)
 *   around them.
 * - cachee_close() waits for calls in flight on the handle, then frees
 *   everything it owns; later calls with the handle return CACHEE_E_HANDLE.
 *
 * ERRORS
 * ---------------------------------------------------------------------
 * Every function returns CACHEE_OK (0), a positive status (CACHEE_NOTFOUND),
 * or a negative error code below.  A failed call changes nothing.  The text
 * of the last error on a handle (its cause, naming the tier, the L0 code and
 * the operation) is read with cachee_last_error(); errors of cachee_open,
 * which has no handle yet, are read with handle 0.  The message is per
 * handle: with several threads failing at once, the last failure wins.
 * Codes -32000..-32999 are libcachee's; an L0 error surfaces as
 * CACHEE_E_L0 with the L0 code (-31xxx, include/cachee_l0.h) in the message.
 */
#ifndef CACHEE_H
#define CACHEE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of this ABI; cachee_abi_version() returns the library's.  A caller
 *  refuses a library whose major version differs from the header's. */
#define CACHEE_ABI_VERSION 1

/** A cache handle (non-zero). */
typedef uint64_t cachee_t;

/* ------------------------------------------------------------ statuses */

/** Success. */
#define CACHEE_OK 0
/** Not an error: no tier holds the key (or it expired / was deleted). */
#define CACHEE_NOTFOUND 1

/** A pointer, length, flag or option is invalid (NULL with a non-zero
 *  length, key longer than CACHEE_KEY_MAX, unknown flag bits). */
#define CACHEE_E_INVALID (-32001)
/** The handle is 0, unknown, or already closed. */
#define CACHEE_E_HANDLE (-32002)
/** The configuration document of cachee_open is not valid JSON, has an
 *  unknown field, or a field of the wrong type or range. */
#define CACHEE_E_CONFIG (-32003)
/** The caller's output buffer is too small; the size needed was stored. */
#define CACHEE_E_TOO_SMALL (-32004)
/** L0 returned an error (the region is missing, damaged, full, ...); the
 *  message has the L0 code and its text. */
#define CACHEE_E_L0 (-32005)
/** A tier failed (I/O error, timeout, connection refused) and no higher tier
 *  could serve the call.  A read that a higher tier serves never fails on a
 *  lower tier's error; the error is counted in the stats instead. */
#define CACHEE_E_TIER (-32006)
/** A tier did not answer within its deadline. */
#define CACHEE_E_TIMEOUT (-32007)
/** This process is a fork() child of the process that started the Go
 *  runtime; nothing here can run.  Load the library after fork (e.g. in a
 *  gunicorn post_fork hook), or use spawn / forkserver. */
#define CACHEE_E_FORKED (-32008)
/** Out of memory (malloc failed, or a value larger than the tier allows). */
#define CACHEE_E_NOMEM (-32009)
/** A bug: a Go panic was recovered at the boundary; the message has it. */
#define CACHEE_E_INTERNAL (-32010)

/** Longest key accepted, in bytes (the L0 limit). */
#define CACHEE_KEY_MAX 65535

/* ------------------------------------------------------------ values */

/** Tiers, as reported in cachee_value.tier and in the stats. */
enum cachee_tier {
    CACHEE_TIER_L0 = 0,   /**< the shared-memory table */
    CACHEE_TIER_L1 = 1,   /**< this process's otter cache */
    CACHEE_TIER_NVME = 2, /**< the machine's NVMe file (later issue) */
    CACHEE_TIER_REDIS = 3 /**< the fleet's Redis (later issue) */
};

/** A value handed out by cachee_get.  data and meta are copies owned by the
 *  caller, in ONE block that libcachee malloc'ed: the value bytes at its
 *  start (so data is aligned as malloc aligns), the metadata right after
 *  them (meta == data + len when both are present).  Either is NULL when its
 *  length is 0.  Release the block with cachee_value_free(), never with
 *  free(data) / free(meta): meta is not the start of a block.  (Earlier
 *  builds of ABI 1 made two blocks; the struct is unchanged, and a caller
 *  that releases values only with cachee_value_free() is unaffected.) */
typedef struct cachee_value {
    void *data;           /**< value bytes */
    size_t len;           /**< their length */
    void *meta;           /**< metadata bytes stored beside the value (dtype and
                               shape of arrays, as the Python package writes
                               them); opaque to libcachee */
    size_t meta_len;      /**< their length */
    int64_t expires_ns;   /**< absolute expiry, CLOCK_REALTIME ns; 0 = none */
    int32_t tier;         /**< enum cachee_tier that served the value */
    uint32_t flags;       /**< CACHEE_VALUE_* bits */
} cachee_value;

/** cachee_value.flags: the value was admitted into L0 by this call (a
 *  following L0 read finds it there). */
#define CACHEE_VALUE_PROMOTED 1u

/* ------------------------------------------------------------ flags */

/** cachee_get: the caller has just missed L0 itself; start at L1. */
#define CACHEE_GET_SKIP_L0 1u
/** cachee_get: never promote into L0 on this read. */
#define CACHEE_GET_NO_PROMOTE 2u

/** cachee_set: store only if L0 holds no live value for the key
 *  (returns CACHEE_EXISTS and stores nothing otherwise). */
#define CACHEE_SET_IF_ABSENT 1u
/** cachee_set: the caller has already written the value into L0 itself;
 *  write it to the tiers below only. */
#define CACHEE_SET_SKIP_L0 2u

/* ------------------------------------------------------------ functions */

/** The ABI version of the loaded library (CACHEE_ABI_VERSION it was built
 *  with).  Never fails; does not start anything beyond the Go runtime. */
int cachee_abi_version(void);

/**
 * Open a cache over an existing L0 region.
 *
 * config is a JSON object (config_len bytes, not NUL-terminated):
 *   "path"      string, required: the region's path (as in cachee_l0_open)
 *   "l1_bytes"  integer >= 0: capacity of L1 in bytes, counting key, value
 *               and metadata of every entry; 0 or absent: no L1
 *   "promote"   string: "tinylfu" (default: admit a value read from a lower
 *               tier into L0 when its estimated access frequency is higher
 *               than that of what L0 would evict), "always", "never"
 *   "demote"    bool, default true: values this process sees leave L0
 *               (evicted, not deleted or expired) go into L1
 *   "allow_foreign_owner" bool, default false: as in cachee_l0_open
 *   "share_slot" integer: a cachee_l0_registration token of the caller's own
 *               L0 handle on the same region; the cache's L0 handle then
 *               uses that handle's process slot (one process, one slot), and
 *               that handle must stay open until cachee_close returns.  A
 *               token naming no live slot of this process: CACHEE_E_L0
 * Unknown fields are refused (CACHEE_E_CONFIG) so a typo is never ignored.
 *
 * On success stores the handle in *out.  Errors: CACHEE_E_INVALID (NULL
 * config or out), CACHEE_E_CONFIG, CACHEE_E_L0 (the region cannot be
 * opened: missing, not a region, foreign owner, ...), CACHEE_E_NOMEM (also
 * when 65536 handles are open in this process), CACHEE_E_FORKED.  The message is read with cachee_last_error(0, ...).
 */
int cachee_open(const char *config, size_t config_len, cachee_t *out);

/**
 * Close a handle: waits for its calls in flight, drops L1, closes its L0
 * handle and stops every goroutine it started.  Errors: CACHEE_E_HANDLE,
 * CACHEE_E_FORKED.
 */
int cachee_close(cachee_t h);

/**
 * Read key through the tiers, in order (L0 unless CACHEE_GET_SKIP_L0, L1,
 * then the lower tiers).  A value found below L0 is offered to L0 (see
 * "promote") and to the tiers above the one that served it.
 *
 * Returns CACHEE_OK and fills *out (owned by the caller), CACHEE_NOTFOUND
 * (out zeroed), or an error: CACHEE_E_INVALID (key NULL with key_len > 0,
 * key_len 0 or > CACHEE_KEY_MAX, out NULL, unknown flags), CACHEE_E_HANDLE,
 * CACHEE_E_TIER (every tier that could hold the key failed), CACHEE_E_L0,
 * CACHEE_E_NOMEM, CACHEE_E_FORKED.
 */
int cachee_get(cachee_t h, const void *key, size_t key_len, uint32_t flags,
               cachee_value *out);

/** Release what cachee_get handed out (the one block holding data and
 *  meta) and zero *v.  NULL, and a zeroed value, are no-ops. */
void cachee_value_free(cachee_value *v);

/**
 * Store key -> value (with meta, opaque) in L0 (unless CACHEE_SET_SKIP_L0)
 * and write it through to the persistent tiers below (NVMe, Redis); L1 of
 * this process drops any copy it holds.  ttl_ns > 0 sets an expiry honoured
 * by every tier; 0 means none.
 *
 * CACHEE_SET_IF_ABSENT: store only if L0 has no live value for the key;
 * returns CACHEE_EXISTS and stores nothing when it has one.
 *
 * Errors: CACHEE_E_INVALID (as cachee_get; value NULL with len > 0; ttl_ns
 * < 0), CACHEE_E_HANDLE, CACHEE_E_L0 (L0 refused: too large, full of pinned
 * data...), CACHEE_E_TIER (a write-through tier failed; L0 holds the value),
 * CACHEE_E_FORKED.
 */
int cachee_set(cachee_t h, const void *key, size_t key_len, const void *value,
               size_t value_len, const void *meta, size_t meta_len,
               int64_t ttl_ns, uint32_t flags);

/** Not an error: cachee_set with CACHEE_SET_IF_ABSENT found the key. */
#define CACHEE_EXISTS 2

/**
 * Delete key from every tier (L0, this process's L1, the tiers below).  A
 * key absent everywhere is not an error (returns CACHEE_NOTFOUND).  Errors:
 * CACHEE_E_INVALID, CACHEE_E_HANDLE, CACHEE_E_L0, CACHEE_E_TIER (a lower
 * tier failed: L0 and L1 no longer hold the key), CACHEE_E_FORKED.
 */
int cachee_delete(cachee_t h, const void *key, size_t key_len);

/**
 * Statistics of every tier as a JSON object into buf (cap bytes, not
 * NUL-terminated); the length is stored in *len.  Shape:
 *   {"tiers": [{"name": "l1", "hits": n, "misses": n, "promotions": n,
 *               "demotions": n, "errors": n, "entries": n, "bytes": n,
 *               "capacity_bytes": n,
 *               "latency_ns": {"bounds": [..], "counts": [..]}}, ...]}
 * Errors: CACHEE_E_TOO_SMALL (*len = size needed), CACHEE_E_INVALID,
 * CACHEE_E_HANDLE, CACHEE_E_FORKED.
 */
int cachee_stats(cachee_t h, char *buf, size_t cap, size_t *len);

/**
 * The message of the last error on handle h (0: of cachee_open) into buf
 * (cap bytes, NUL-terminated, truncated to fit); *len (if not NULL) gets
 * its full length without the NUL.  An empty string when there was none.
 * Returns CACHEE_OK, CACHEE_E_HANDLE or CACHEE_E_INVALID (buf NULL with cap
 * > 0).  Never overwrites the message itself.
 */
int cachee_last_error(cachee_t h, char *buf, size_t cap, size_t *len);

/** A record for cachee_demote: a value that L0 evicted through a handle the
 *  caller owns (its own cachee_l0 handle: the Python extension's), as the
 *  eviction hook reported it (cachee_l0_evicted in include/cachee_l0.h).
 *  Every pointer is the caller's and only read during the call. */
typedef struct cachee_record {
    const void *key;      /**< key bytes (1..CACHEE_KEY_MAX) */
    size_t key_len;
    const void *value;    /**< value bytes (NULL only when value_len is 0) */
    size_t value_len;
    const void *meta;     /**< metadata (NULL only when meta_len is 0; at most
                               CACHEE_L0_META_MAX = 4096 bytes) */
    size_t meta_len;
    int64_t expires_ns;   /**< absolute expiry, CLOCK_REALTIME ns; 0 = none */
    uint32_t generation;  /**< the key's L0 generation AT EVICTION:
                               cachee_l0_evicted.generation, read by the hook
                               under the shard lock, never re-read later */
    uint32_t reserved_;   /**< must be 0 */
} cachee_record;

/**
 * Demotion of records evicted elsewhere in this process: put each of the n
 * records (recs[0..n-1]) into this process's L1, exactly as the engine does
 * with what its own L0 handle evicts ("demote").  A caller that writes L0
 * through its own cachee_l0 handle registers an eviction hook on it
 * (cachee_l0_set_evict_hook) that copies each evicted record, then hands the
 * copies here after the write, in one call for all of them.
 *
 * Per record, without failing the call:
 *   - a record whose key's L0 generation is no longer `generation` (the key
 *     was written or deleted since the eviction, by any process) is
 *     skipped: a value overwritten or deleted meanwhile is never
 *     resurrected.  The L1 copy keeps `generation`, so a later write or
 *     delete anywhere makes it a miss as well (every L1 hit compares it
 *     with the current generation);
 *   - an expired record, or one heavier than L1's capacity, is skipped;
 *   - every record counts as an L0 victim for the admission policy
 *     ("promote": "tinylfu"), whether L1 takes it or not.
 * Records stored count as "demotions" of tier "l1" in cachee_stats.
 * Without L1 (l1_bytes 0, or "demote": false) nothing is stored.
 *
 * *stored (if not NULL) gets the number of records L1 took.  n == 0 is a
 * no-op (recs may be NULL then).  Every record is checked before any is
 * stored, so an invalid one changes nothing.
 *
 * Errors: CACHEE_E_INVALID (recs NULL with n > 0; a record with key NULL,
 * key_len 0 or > CACHEE_KEY_MAX, value or meta NULL with a non-zero length,
 * meta_len > 4096, expires_ns < 0, reserved_ != 0), CACHEE_E_HANDLE,
 * CACHEE_E_NOMEM, CACHEE_E_FORKED.
 */
int cachee_demote(cachee_t h, const cachee_record *recs, size_t n, size_t *stored);

/** Number of open handles in this process (for leak checks);
 *  CACHEE_E_FORKED in a forked child. */
int64_t cachee_open_handles(void);

/** Number of goroutines in this process (for leak checks: after every
 *  handle is closed it returns to what it was before the first open, once
 *  the goroutines a Close stops have exited); CACHEE_E_FORKED in a forked
 *  child. */
int64_t cachee_goroutines(void);

#ifdef __cplusplus
}
#endif
#endif /* CACHEE_H */
