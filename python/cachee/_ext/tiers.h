/*
 * tiers.h -- the tiers beyond L0 through libcachee.so (see tiers.c).
 * Include after ext.h.
 */
#ifndef CACHEE_TIERS_H
#define CACHEE_TIERS_H

#include "cachee.h"

/** Is c configured with tiers (l1_bytes > 0)?  Nothing is loaded yet. */
static inline int tiers_configured(const CacheObject *c) { return c->l1_bytes > 0; }
/** Are the tiers of c open in this process (and usable: not a fork child)? */
int tiers_loaded(CacheObject *c);
/** 1 in a fork() child of a process that loaded libcachee.so. */
int tiers_forked(void);
/** Read k below L0 (loads and opens the tiers on first use; GIL released
 *  for the call).  1 hit (*out filled: release with tiers_value_free), 0
 *  miss, -1 with an exception (ForkError, TiersUnavailableError, ...). */
int tiers_get(CacheObject *c, const KeyBytes *k, uint32_t flags, cachee_value *out);
void tiers_value_free(cachee_value *v);
/** After an L0 write or delete: let the tiers drop this process's L1 copy
 *  (and write through below).  Nothing when the tiers are not loaded here.
 *  0 (delete: 0/1), or -1 with an exception. */
int tiers_after_set(CacheObject *c, const KeyBytes *k, const void *data, size_t len,
                    const void *meta, size_t meta_len, uint64_t ttl_ns);
int tiers_after_delete(CacheObject *c, const KeyBytes *k);
/** The "tiers" list of cachee_stats, or None when not loaded here. */
PyObject *tiers_stats(CacheObject *c);
/** Close c's tier handle (no call into the library in a fork child). */
void tiers_close(CacheObject *c);
/* Demotion.  The L0 handle of a cache with l1_bytes gets an eviction hook
 * (registered at construction, while no other thread can use the handle)
 * that copies every record this handle evicts into a bounded C queue, but
 * only while the tiers are loaded in this process (not a fork child).
 * After each write the queue goes to L1 in one cachee_demote call. */
/** Register the hook and its queue on c's region.  0, or -1 with an
 *  exception. */
int tiers_demote_setup(CacheObject *c);
/** Hand what the queue holds to L1 (one call, GIL released); with force 0
 *  only when it is over half full.  Failures are counted, never raised: the
 *  write that evicted has succeeded. */
void tiers_demote_drain(CacheObject *c, int force);
/** Stop queueing and drop what waits (close). */
void tiers_demote_stop(RegionObject *r);
/** Free the queue (region dealloc, after cachee_l0_close).  NULL: no-op. */
void tiers_demote_free(struct DemoteQueue *q);
/** Add {"queued", "dropped", "failed", "pending_bytes", "cap_bytes"} as
 *  d["demotion"].  0 or -1. */
int tiers_demote_stats(CacheObject *c, PyObject *d);
/** A read-only ndarray over a private copy of a tier value. */
PyObject *tiers_copy_to_ndarray(const cachee_value *v, PyObject *shape, PyObject *dtype);
/** Module functions: _tiers_state() -> dict, _tiers_goroutines(). */
PyObject *tiers_state(PyObject *mod, PyObject *unused);
PyObject *tiers_goroutines(PyObject *mod, PyObject *unused);

#endif
