/*
 * vcache.h -- the view cache of a SharedCache (vcache.c): the ndarrays
 * get_numpy handed out, one slot per key hash, handed out again while the
 * stored version they show is still the key's current one.  The checks a
 * hit makes are inline here: get_numpy runs them on every call.
 */
#ifndef CACHEE_VCACHE_H
#define CACHEE_VCACHE_H

#include <time.h>

#include "ext.h"
#include "npy.h"

/** Allocate c's table for view_cache entries (rounded up to a power of
 *  two; 0 disables it), freeing any previous one.  0, or -1 with
 *  MemoryError. */
int vcache_alloc(CacheObject *c, int view_cache);
/** Drop every cached array (close, tp_clear, a second __init__). */
void vcache_clear(CacheObject *c);
/** Drop cached arrays whose version was reclaimed: n entries from the sweep
 *  cursor, or all (UINT32_MAX). */
void vcache_sweep(CacheObject *c, uint32_t n);

/* Is stored key object `a` the key `b` (whose bytes are k)? */
static inline int same_key(PyObject *a, PyObject *b, const KeyBytes *k) {
    if (a == b) return 1;
    if (a == NULL) return 0;
    KeyBytes ka;
    if (PyUnicode_Check(a)) {
        ka.data = PyUnicode_AsUTF8AndSize(a, &ka.len);
        if (ka.data == NULL) {
            PyErr_Clear();
            return 0;
        }
    } else {
        ka.data = PyBytes_AS_STRING(a);
        ka.len = PyBytes_GET_SIZE(a);
    }
    return ka.len == k->len && memcmp(ka.data, k->data, (size_t)k->len) == 0;
}

static inline int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static inline VCacheEntry *vcache_slot(CacheObject *c, uint64_t key_hash) {
    return &c->vcache[(uint32_t)(key_hash >> 20) & c->vcache_mask];
}

/* The array we handed out is still exactly what we built. */
static inline int array_intact(PyObject *arr) {
    PyArrayObject *a = (PyArrayObject *)arr;
    ViewObject *view = (ViewObject *)PyArray_BASE(a);
    if (view == NULL || Py_TYPE(view) != &View_Type) return 0;
    if (PyArray_DATA(a) != (void *)view->v.data ||
        (PyObject *)PyArray_DESCR(a) != view->descr ||
        PyArray_NDIM(a) != VIEW_NDIM(view) || !PyArray_IS_C_CONTIGUOUS(a))
        return 0;
    const npy_intp *dims = PyArray_DIMS(a);
    for (int i = 0; i < VIEW_NDIM(view); i++)
        if (dims[i] != VIEW_SHAPE(view)[i]) return 0;
    return 1;
}

#endif
