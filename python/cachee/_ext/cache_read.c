/*
 * cache_read.c -- SharedCache reads: get, [], get_view, get_buffer,
 * get_numpy, _get_stored, in, _l0_contains, len.
 *
 * Reads take no lock and copy nothing they do not return.  get() copies the
 * value straight from shared memory into a new bytes object and validates the
 * copy (optimistic read).  get_numpy() returns a read-only ndarray over the
 * shared memory itself, and hands the same array out again while it is
 * still current (the view cache: vcache.c).  A miss in L0 goes on to the
 * tiers when the cache has them (tiers.c).
 */
#include "cache.h"
#include "npy.h"
#include "tiers.h"
#include "vcache.h"

/* Copy a value into a new bytes object; NULL with KeyError-free miss when
 * *missing is set. */
static PyObject *read_bytes(CacheObject *c, const KeyBytes *k, int *missing) {
    *missing = 0;
    for (int attempt = 0; attempt < 1000; attempt++) {
        cachee_l0_view v;
        int rc = cachee_l0_read_begin(c->h, k->data, (size_t)k->len, &v);
        if (rc == CACHEE_L0_NOTFOUND) {
            *missing = 1;
            return NULL;
        }
        if (rc != 0) return raise_l0(rc, NULL);
        PyObject *out = PyBytes_FromStringAndSize(v.data, (Py_ssize_t)v.len);
        if (out == NULL) return NULL;
        if (cachee_l0_read_validate(c->h, &v) == 0) return out;
        Py_DECREF(out); /* overwritten while we copied: read again */
    }
    PyErr_SetString(cachee_state()->CorruptRegionError, "value kept changing under a read");
    return NULL;
}

/* A pinned View of a key, or NULL (with *missing set on a miss). */
static ViewObject *read_view(CacheObject *c, const KeyBytes *k, int *missing,
                             cachee_l0_view *vout) {
    *missing = 0;
    for (int attempt = 0; attempt < 1000; attempt++) {
        cachee_l0_view v;
        int rc = cachee_l0_read_begin(c->h, k->data, (size_t)k->len, &v);
        if (rc == CACHEE_L0_NOTFOUND) {
            *missing = 1;
            return NULL;
        }
        if (rc != 0) return (ViewObject *)raise_l0(rc, NULL);
        rc = cachee_l0_pin_view(c->h, &v);
        if (rc == CACHEE_L0_E_RETRY) continue;
        if (rc != 0) return (ViewObject *)raise_l0(rc, NULL);
        if (vout) *vout = v;
        ValueLayout l;
        if (meta_decode(v.meta, v.meta_len, v.len, &l) < 0) {
            cachee_l0_release(c->h, &v);
            return NULL;
        }
        return view_new(c->region, &v, &l);
    }
    PyErr_SetString(cachee_state()->CorruptRegionError, "value kept changing under a read");
    return NULL;
}

/* After an L0 miss: the value from the tiers as a bytes copy, or NULL with
 * *missing set (no tiers configured, or a miss there too), or NULL with an
 * exception. */
PyObject *cache_tier_bytes(CacheObject *c, const KeyBytes *k, int *missing) {
    *missing = 1;
    if (!tiers_configured(c)) return NULL;
    cachee_value v;
    int rc = tiers_get(c, k, 0, &v);
    if (rc <= 0) {
        if (rc < 0) *missing = 0;
        return NULL;
    }
    *missing = 0;
    PyObject *out = PyBytes_FromStringAndSize(v.data, (Py_ssize_t)v.len);
    tiers_value_free(&v);
    return out;
}

/* read_bytes, then the tiers on a miss. */
PyObject *cache_read_bytes_tiered(CacheObject *c, const KeyBytes *k, int *missing) {
    PyObject *out = read_bytes(c, k, missing);
    if (*missing) out = cache_tier_bytes(c, k, missing);
    return out;
}

PyObject *cache_get(CacheObject *c, PyObject *const *args, Py_ssize_t n) {
    if (n < 1 || n > 2) {
        PyErr_SetString(PyExc_TypeError, "get(key, default=None)");
        return NULL;
    }
    if (cache_check_open(c) < 0) return NULL;
    KeyBytes k;
    if (key_get(args[0], &k) < 0) return NULL;
    int missing;
    PyObject *out = cache_read_bytes_tiered(c, &k, &missing);
    if (missing) {
        PyObject *dflt = n > 1 ? args[1] : Py_None;
        Py_INCREF(dflt);
        return dflt;
    }
    return out;
}

PyObject *cache_getitem(CacheObject *c, PyObject *key) {
    if (cache_check_open(c) < 0) return NULL;
    KeyBytes k;
    if (key_get(key, &k) < 0) return NULL;
    int missing;
    PyObject *out = cache_read_bytes_tiered(c, &k, &missing);
    if (missing) PyErr_SetObject(PyExc_KeyError, key);
    return out;
}

PyObject *cache_get_view(CacheObject *c, PyObject *key) {
    if (cache_check_open(c) < 0) return NULL;
    KeyBytes k;
    if (key_get(key, &k) < 0) return NULL;
    int missing;
    ViewObject *v = read_view(c, &k, &missing, NULL);
    if (missing) Py_RETURN_NONE;
    return (PyObject *)v;
}

PyObject *cache_get_buffer(CacheObject *c, PyObject *key) {
    PyObject *v = cache_get_view(c, key);
    if (v == Py_None && tiers_configured(c)) {
        /* L1 hits are copies: a read-only memoryview of private bytes. */
        KeyBytes k;
        int missing;
        if (key_get(key, &k) < 0) return NULL;
        PyObject *b = cache_tier_bytes(c, &k, &missing);
        if (missing) return v;
        Py_DECREF(v);
        if (b == NULL) return NULL;
        PyObject *mv = PyMemoryView_FromObject(b);
        Py_DECREF(b);
        return mv;
    }
    if (v == NULL || v == Py_None) return v;
    PyObject *mv = PyMemoryView_FromObject(v);
    Py_DECREF(v);
    return mv;
}

PyObject *cache_get_numpy(CacheObject *c, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames) {
    static const char *const names[] = {"key", "shape", "dtype", "default"};
    PyObject *key = NULL, *shape = Py_None, *dtype = Py_None, *dflt = Py_None;
    PyObject **slots[] = {&key, &shape, &dtype, &dflt};
    if (nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "get_numpy(key, shape=None, dtype=None, default=None)");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) *slots[i] = args[i];
    if (kwnames) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            const char *kn = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, i));
            int found = 0;
            for (int j = 1; kn && j < 4; j++)
                if (strcmp(kn, names[j]) == 0) {
                    *slots[j] = args[nargs + i];
                    found = 1;
                }
            if (!found) {
                PyErr_Format(PyExc_TypeError, "get_numpy() got an unexpected keyword %R",
                             PyTuple_GET_ITEM(kwnames, i));
                return NULL;
            }
        }
    }
    if (key == NULL) {
        PyErr_SetString(PyExc_TypeError, "get_numpy() missing the key");
        return NULL;
    }
    if (cache_check_open(c) < 0 || numpy_ready() < 0) return NULL;
    KeyBytes k;
    if (key_get(key, &k) < 0) return NULL;
    int want_args = shape != Py_None || dtype != Py_None;

    /* Fast path: the array handed out last time for this key, if the index
     * still points the key at that very version (one index probe, no record
     * read) and nobody changed the array. */
    if (c->vcache != NULL && !want_args) {
        uint64_t hash = cachee_l0_hash(k.data, (size_t)k.len);
        VCacheEntry *e = vcache_slot(c, hash);
        if (e->arr && e->hash == hash && same_key(e->key, key, &k) &&
            (e->expires_ns == 0 || now_ns() < e->expires_ns) && array_intact(e->arr) &&
            cachee_l0_is_current(c->h, hash, e->loc, e->gen) == 1) {
            Py_INCREF(e->arr);
            return e->arr;
        }
    }

    for (int attempt = 0; attempt < 1000; attempt++) {
        cachee_l0_view v;
        int rc = cachee_l0_read_begin(c->h, k.data, (size_t)k.len, &v);
        if (rc == CACHEE_L0_NOTFOUND) {
            if (tiers_configured(c)) {
                cachee_value tv;
                int tr = tiers_get(c, &k, 0, &tv);
                if (tr < 0) return NULL;
                if (tr == 1) {
                    PyObject *arr = tiers_copy_to_ndarray(&tv, shape, dtype);
                    tiers_value_free(&tv);
                    return arr;
                }
            }
            Py_INCREF(dflt);
            return dflt;
        }
        if (rc != 0) return raise_l0(rc, NULL);
        VCacheEntry *e = c->vcache_mask != UINT32_MAX ? vcache_slot(c, v.key_hash) : NULL;
        if (e && e->arr && e->loc == v.loc && e->gen == v.gen && array_intact(e->arr)) {
            ViewObject *view = (ViewObject *)PyArray_BASE((PyArrayObject *)e->arr);
            if (!want_args) {
                Py_INCREF(e->arr);
                return e->arr;
            }
            if (!view->raw) {
                ValueLayout l;
                if (meta_decode(v.meta, v.meta_len, v.len, &l) < 0) return NULL;
                int bad = meta_check(&l, v.len, shape, dtype) < 0;
                layout_clear(&l);
                if (bad) return NULL;
                Py_INCREF(e->arr);
                return e->arr;
            }
        }
        /* Pin before decoding: the metadata of an unpinned read may belong
         * to a segment reused meanwhile (a decode error would be spurious). */
        rc = cachee_l0_pin_view(c->h, &v);
        if (rc == CACHEE_L0_E_RETRY) continue;
        if (rc != 0) return raise_l0(rc, NULL);
        ValueLayout l;
        if (meta_decode(v.meta, v.meta_len, v.len, &l) < 0) {
            cachee_l0_release(c->h, &v);
            return NULL;
        }
        if (want_args && meta_check(&l, v.len, shape, dtype) < 0) {
            layout_clear(&l);
            cachee_l0_release(c->h, &v);
            return NULL;
        }
        int cacheable = e != NULL && !(l.raw && want_args);
        if (e != NULL) vcache_sweep(c, 2);
        ViewObject *view = view_new(c->region, &v, &l);
        if (view == NULL) return NULL;
        PyObject *arr = view_to_ndarray(view);
        Py_DECREF(view);
        if (arr == NULL) return NULL;
        if (cacheable) {
            Py_INCREF(arr);
            Py_XSETREF(e->arr, arr);
            Py_INCREF(key);
            Py_XSETREF(e->key, key);
            e->hash = v.key_hash;
            e->loc = v.loc;
            e->gen = v.gen;
            e->expires_ns = v.expires_ns;
        }
        return arr;
    }
    PyErr_SetString(cachee_state()->CorruptRegionError, "value kept changing under a read");
    return NULL;
}

/* The value the way it was stored: bytes for a value stored with set()
 * (a copy), a read-only ndarray over shared memory for one stored with
 * set_numpy().  One pinned read, so the kind and the bytes agree. */
PyObject *cache_get_stored(CacheObject *c, PyObject *const *args, Py_ssize_t n) {
    if (n < 1 || n > 2) {
        PyErr_SetString(PyExc_TypeError, "_get_stored(key, default=None)");
        return NULL;
    }
    if (cache_check_open(c) < 0) return NULL;
    KeyBytes k;
    if (key_get(args[0], &k) < 0) return NULL;
    int missing;
    ViewObject *view = read_view(c, &k, &missing, NULL);
    if (missing && tiers_configured(c)) {
        cachee_value tv;
        int tr = tiers_get(c, &k, 0, &tv);
        if (tr < 0) return NULL;
        if (tr == 1) {
            PyObject *out = meta_is_raw(tv.meta, (uint32_t)tv.meta_len)
                                ? PyBytes_FromStringAndSize(tv.data, (Py_ssize_t)tv.len)
                                : tiers_copy_to_ndarray(&tv, Py_None, Py_None);
            tiers_value_free(&tv);
            return out;
        }
    }
    if (missing) {
        PyObject *dflt = n > 1 ? args[1] : Py_None;
        Py_INCREF(dflt);
        return dflt;
    }
    if (view == NULL) return NULL;
    PyObject *out;
    if (view->raw) {
        out = PyBytes_FromStringAndSize(view->v.data, (Py_ssize_t)view->v.len);
    } else {
        out = numpy_ready() < 0 ? NULL : view_to_ndarray(view);
    }
    Py_DECREF(view);
    return out;
}

int cache_contains(CacheObject *c, PyObject *key) {
    if (cache_check_open(c) < 0) return -1;
    KeyBytes k;
    if (key_get(key, &k) < 0) return -1;
    int rc = cachee_l0_contains(c->h, k.data, (size_t)k.len);
    if (rc < 0) {
        raise_l0(rc, NULL);
        return -1;
    }
    if (rc == 0 && tiers_configured(c)) {
        cachee_value tv;
        int tr = tiers_get(c, &k, CACHEE_GET_NO_PROMOTE, &tv);
        if (tr < 0) return -1;
        if (tr == 1) tiers_value_free(&tv);
        return tr;
    }
    return rc;
}

/* _l0_contains(key): in L0 only, without touching its frequency (tests). */
PyObject *cache_l0_contains(CacheObject *c, PyObject *key) {
    if (cache_check_open(c) < 0) return NULL;
    KeyBytes k;
    if (key_get(key, &k) < 0) return NULL;
    int rc = cachee_l0_contains(c->h, k.data, (size_t)k.len);
    if (rc < 0) return raise_l0(rc, NULL);
    return PyBool_FromLong(rc);
}

Py_ssize_t cache_len(CacheObject *c) {
    if (cache_check_open(c) < 0) return -1;
    return (Py_ssize_t)cachee_l0_count(c->h);
}
