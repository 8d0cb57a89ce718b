/*
 * cache_admin.c -- SharedCache administration: stats, check, close, unlink,
 * the context manager (__enter__/__exit__) and _region.  The long engine
 * calls (statistics, the invariant check) run with the GIL released, holding
 * a reference to the region so that a close() meanwhile cannot unmap it.
 */
#include "cache.h"
#include "tiers.h"
#include "vcache.h"

void cache_release(CacheObject *c) {
    vcache_clear(c);
    c->h = NULL; /* closed from here on, also for threads in tier calls */
    tiers_demote_stop(c->region);
    /* The tiers first: waits for tier calls in flight (GIL released), and
     * their L0 handle shares the region handle's process slot. */
    tiers_close(c);
    Py_CLEAR(c->region); /* views keep the mapping until they are freed */
}

static int dict_u64(PyObject *d, const char *name, unsigned long long v) {
    PyObject *o = PyLong_FromUnsignedLongLong(v);
    int rc = o ? PyDict_SetItemString(d, name, o) : -1;
    Py_XDECREF(o);
    return rc;
}

PyObject *cache_stats(CacheObject *c, PyObject *unused) {
    (void)unused;
    if (cache_check_open(c) < 0) return NULL;
    cachee_l0_stats s;
    cachee_l0_info in;
    int rc;
    RegionObject *region = c->region;
    cachee_l0 *h = c->h;
    Py_INCREF(region);
    Py_BEGIN_ALLOW_THREADS
    rc = cachee_l0_stats_get(h, &s);
    Py_END_ALLOW_THREADS
    if (rc == 0) cachee_l0_info_get(h, &in);
    Py_DECREF(region);
    if (rc != 0) return raise_l0(rc, NULL);
    if (cache_check_open(c) < 0) return NULL; /* closed meanwhile */
    PyObject *d = PyDict_New();
    if (d == NULL) return NULL;
    struct {
        const char *name;
        unsigned long long v;
    } rows[] = {
        {"hits", s.hits}, {"misses", s.misses}, {"sets", s.sets},
        {"deletes", s.deletes}, {"evictions", s.evictions},
        {"expirations", s.expirations}, {"reinsertions", s.reinsertions},
        {"set_failures", s.set_failures}, {"entries", s.entries},
        {"capacity_bytes", s.capacity_bytes}, {"used_bytes", s.used_bytes},
        {"free_bytes", s.free_bytes}, {"pinned_bytes", s.pinned_bytes},
        {"pins", s.pins}, {"limbo_bytes", s.limbo_bytes},
        {"live_processes", s.live_procs}, {"reaped_processes", s.reaped_procs},
        {"region_size", in.region_size}, {"value_max", in.value_max},
        {"max_entries", in.max_entries}, {"segment_size", in.segment_size},
        {"segments", in.segments}, {"max_procs", in.max_procs},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (dict_u64(d, rows[i].name, rows[i].v) < 0) {
            Py_DECREF(d);
            return NULL;
        }
    if (PyDict_SetItemString(d, "path", c->region->path) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    if (tiers_configured(c)) {
        /* None until this process has used the tiers (and in a fork child). */
        PyObject *t = tiers_stats(c);
        if (t == NULL || PyDict_SetItemString(d, "tiers", t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(t);
        if (dict_u64(d, "l1_bytes", c->l1_bytes) < 0 || tiers_demote_stats(c, d) < 0) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}

PyObject *cache_check(CacheObject *c, PyObject *unused) {
    (void)unused;
    if (cache_check_open(c) < 0) return NULL;
    char msg[512];
    int rc;
    RegionObject *region = c->region;
    cachee_l0 *h = c->h;
    Py_INCREF(region);
    Py_BEGIN_ALLOW_THREADS
    rc = cachee_l0_check(h, msg, sizeof msg);
    Py_END_ALLOW_THREADS
    Py_DECREF(region);
    if (rc == CACHEE_L0_E_CORRUPT) {
        PyErr_Format(cachee_state()->CorruptRegionError, "region check failed: %s", msg);
        return NULL;
    }
    if (rc != 0) return raise_l0(rc, NULL);
    Py_RETURN_NONE;
}

PyObject *cache_close(CacheObject *c, PyObject *unused) {
    (void)unused;
    cache_release(c);
    Py_RETURN_NONE;
}

PyObject *cache_unlink(CacheObject *c, PyObject *unused) {
    (void)unused;
    if (cache_check_open(c) < 0) return NULL;
    PyObject *b = NULL;
    if (!PyUnicode_FSConverter(c->region->path, &b)) return NULL;
    int rc = cachee_l0_unlink(PyBytes_AS_STRING(b));
    Py_DECREF(b);
    if (rc != 0 && rc != CACHEE_L0_E_NO_REGION) return raise_l0(rc, NULL);
    Py_RETURN_NONE;
}

PyObject *cache_enter(CacheObject *c, PyObject *unused) {
    (void)unused;
    if (cache_check_open(c) < 0) return NULL;
    Py_INCREF(c);
    return (PyObject *)c;
}

PyObject *cache_exit(CacheObject *c, PyObject *args) {
    (void)args;
    return cache_close(c, NULL);
}

PyObject *cache_region(CacheObject *c, PyObject *unused) {
    (void)unused;
    if (cache_check_open(c) < 0) return NULL;
    Py_INCREF(c->region);
    return (PyObject *)c->region;
}
