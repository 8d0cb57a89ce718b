/*
 * cache.h -- SharedCache internals, shared by the files that implement it:
 *   cache_read.c   get, [], get_view, get_buffer, get_numpy, _get_stored,
 *                  in, _l0_contains, len
 *   cache_write.c  set, [] =, add, set_numpy, delete, del [], set_many
 *   cache_admin.c  stats, check, close, unlink, with, _region
 *   batch.c        get_many, get_numpy_batch
 *   loaders.c      _load_lock, _load_unlock, get_or_load, memoize
 *   vcache.c       the table of ndarrays get_numpy hands out (vcache.h)
 *   cache_type.c   construction, the method table and the type object
 * The object itself (CacheObject) is declared in ext.h: tiers.c reads it.
 */
#ifndef CACHEE_CACHE_H
#define CACHEE_CACHE_H

#include "ext.h"

/** 0 if the cache is open, else -1 with ClosedError. */
static inline int cache_check_open(CacheObject *c) {
    if (__builtin_expect(c->h == NULL, 0)) {
        PyErr_SetString(cachee_state()->ClosedError, "operation on a closed SharedCache");
        return -1;
    }
    return 0;
}

/** Close c in this process: drop its cached arrays, stop demotion, close its
 *  tiers and let go of the region (views keep the mapping until they are
 *  freed).  close(), tp_clear and a second __init__ (cache_admin.c). */
void cache_release(CacheObject *c);

/** A copy of key's value from L0, else from the tiers; NULL with *missing
 *  set on a miss everywhere, NULL without it on an error (cache_read.c). */
PyObject *cache_read_bytes_tiered(CacheObject *c, const KeyBytes *k, int *missing);
/** The same from the tiers only (after an L0 miss). */
PyObject *cache_tier_bytes(CacheObject *c, const KeyBytes *k, int *missing);

/* ------------------------------------------------------------ methods */
/* Listed by cache_type.c's method table, mapping and sequence slots. */

/* cache_read.c */
PyObject *cache_get(CacheObject *c, PyObject *const *args, Py_ssize_t n);
PyObject *cache_getitem(CacheObject *c, PyObject *key);
PyObject *cache_get_view(CacheObject *c, PyObject *key);
PyObject *cache_get_buffer(CacheObject *c, PyObject *key);
PyObject *cache_get_numpy(CacheObject *c, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames);
PyObject *cache_get_stored(CacheObject *c, PyObject *const *args, Py_ssize_t n);
int cache_contains(CacheObject *c, PyObject *key);
PyObject *cache_l0_contains(CacheObject *c, PyObject *key);
Py_ssize_t cache_len(CacheObject *c);

/* cache_write.c */
PyObject *cache_set(CacheObject *c, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames);
int cache_setitem(CacheObject *c, PyObject *key, PyObject *value);
PyObject *cache_add(CacheObject *c, PyObject *args, PyObject *kw);
PyObject *cache_set_numpy(CacheObject *c, PyObject *args, PyObject *kw);
PyObject *cache_delete(CacheObject *c, PyObject *key);
PyObject *cache_set_many(CacheObject *c, PyObject *args, PyObject *kw);

/* cache_admin.c */
PyObject *cache_stats(CacheObject *c, PyObject *unused);
PyObject *cache_check(CacheObject *c, PyObject *unused);
PyObject *cache_close(CacheObject *c, PyObject *unused);
PyObject *cache_unlink(CacheObject *c, PyObject *unused);
PyObject *cache_enter(CacheObject *c, PyObject *unused);
PyObject *cache_exit(CacheObject *c, PyObject *args);
PyObject *cache_region(CacheObject *c, PyObject *unused);

/* batch.c */
PyObject *cache_get_many(CacheObject *c, PyObject *keys);
PyObject *cache_get_numpy_batch(CacheObject *c, PyObject *args, PyObject *kw);

/* loaders.c: _load_lock, _load_unlock; get_or_load and memoize forward to
 * cachee._loaders. */
PyObject *cache_load_lock(CacheObject *c, PyObject *args);
PyObject *cache_load_unlock(CacheObject *c, PyObject *args);
PyObject *cache_get_or_load(CacheObject *c, PyObject *args, PyObject *kw);
PyObject *cache_memoize(CacheObject *c, PyObject *args, PyObject *kw);

#endif
