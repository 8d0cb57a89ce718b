/*
 * cache.c -- SharedCache: the cache users touch.
 *
 * Reads take no lock and copy nothing they do not return.  get() copies the
 * value straight from shared memory into a new bytes object and validates the
 * copy (optimistic read).  get_numpy() returns a read-only ndarray over the
 * shared memory itself; because building an ndarray costs more than the whole
 * lookup, each cache keeps a small table of the arrays it handed out, one
 * slot per key hash, and hands the same array out again while the stored
 * version it shows (loc, gen) is still the key's current one and the array is
 * unmodified (same dtype object, shape, data pointer).  A cached array pins its
 * version, so a new version of the key replaces it at once, the table is
 * small and direct-mapped, entries whose version was reclaimed are dropped a
 * few at a time, and all of them when a write finds the region full.
 */
#include <math.h>
#include <time.h>

#include "ext.h"
#include "npy.h"
#include "tiers.h"

#define GIL_RELEASE_BYTES (64 * 1024)

static PyObject *region_hook; /* callable(region) set by cachee/__init__.py */

/* ------------------------------------------------------------ helpers */

static int check_open(CacheObject *c) {
    if (__builtin_expect(c->h == NULL, 0)) {
        PyErr_SetString(errors.ClosedError, "operation on a closed SharedCache");
        return -1;
    }
    return 0;
}

int cache_check_open(CacheObject *c) { return check_open(c); }

static void vcache_drop(VCacheEntry *e) {
    Py_CLEAR(e->arr);
    Py_CLEAR(e->key);
}

static void vcache_clear(CacheObject *c) {
    if (c->vcache == NULL) return;
    for (uint32_t i = 0; i <= c->vcache_mask; i++) vcache_drop(&c->vcache[i]);
}

/* Drop cached arrays whose version was reclaimed (their pin is what keeps
 * the segment from being reused).  n entries from the sweep cursor, or all. */
static void vcache_sweep(CacheObject *c, uint32_t n) {
    if (c->vcache == NULL) return;
    uint32_t size = c->vcache_mask + 1;
    if (n > size) n = size;
    for (uint32_t i = 0; i < n; i++) {
        VCacheEntry *e = &c->vcache[c->sweep++ & c->vcache_mask];
        if (e->arr == NULL) continue;
        cachee_l0_view probe;
        memset(&probe, 0, sizeof probe);
        probe.loc = e->loc;
        probe.gen = e->gen;
        if (cachee_l0_read_validate(c->h, &probe) != 0) vcache_drop(e);
    }
}

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

/* TTL in seconds (None, int or float) to nanoseconds (0 = never). */
static int ttl_ns(PyObject *ttl, uint64_t *out) {
    *out = 0;
    if (ttl == NULL || ttl == Py_None) return 0;
    double s = PyFloat_AsDouble(ttl);
    if (s == -1.0 && PyErr_Occurred()) {
        PyErr_Format(PyExc_TypeError, "ttl is a number of seconds or None, not %.100s",
                     Py_TYPE(ttl)->tp_name);
        return -1;
    }
    if (!(s > 0) || !isfinite(s) || s > 9.0e9) {
        PyErr_Format(PyExc_ValueError,
                     "ttl must be a positive, finite number of seconds (got %R)", ttl);
        return -1;
    }
    double ns = s * 1e9;
    *out = ns < 1.0 ? 1 : (uint64_t)ns;
    return 0;
}

/* Store bytes (+meta) under a key, releasing the GIL for large values. */
static int store_one(CacheObject *c, const KeyBytes *k, const void *data, size_t len,
                     const void *meta, size_t meta_len, uint64_t ttl, uint32_t flags) {
    if (len > c->region->value_max) {
        PyErr_Format(errors.ValueTooLargeError,
                     "value of %zu bytes is larger than this region accepts "
                     "(%llu bytes)",
                     len, (unsigned long long)c->region->value_max);
        return -1;
    }
    int rc;
    if (len >= GIL_RELEASE_BYTES) {
        /* Another thread may close() meanwhile: our reference keeps the
         * region (and the handle) alive until we are done. */
        RegionObject *r = c->region;
        cachee_l0 *h = c->h;
        Py_INCREF(r);
        Py_BEGIN_ALLOW_THREADS
        rc = cachee_l0_set(h, k->data, (size_t)k->len, data, len, meta, meta_len, ttl,
                           flags);
        Py_END_ALLOW_THREADS
        Py_DECREF(r);
        if (c->h == NULL) { /* closed while we wrote */
            if (rc != 0 && rc != CACHEE_L0_EXISTS) {
                raise_l0(rc, NULL);
                return -1;
            }
            return rc == CACHEE_L0_EXISTS;
        }
    } else {
        rc = cachee_l0_set(c->h, k->data, (size_t)k->len, data, len, meta, meta_len,
                           ttl, flags);
    }
    if (rc == CACHEE_L0_E_FULL && c->vcache != NULL) {
        /* Arrays this process cached may be what pins the space. */
        vcache_sweep(c, UINT32_MAX);
        rc = cachee_l0_set(c->h, k->data, (size_t)k->len, data, len, meta, meta_len,
                           ttl, flags);
    }
    if (rc == CACHEE_L0_EXISTS) return 1;
    if (rc != 0) {
        raise_l0(rc, NULL);
        return -1;
    }
    /* Tiers loaded in this process: drop its L1 copy, write through below. */
    if (__builtin_expect(c->tier_h != 0, 0) &&
        tiers_after_set(c, k, data, len, meta, meta_len, ttl) < 0)
        return -1;
    return 0;
}

/* store_one, then what the write evicted from L0 goes to L1 (one call). */
static int store(CacheObject *c, const KeyBytes *k, const void *data, size_t len,
                 const void *meta, size_t meta_len, uint64_t ttl, uint32_t flags) {
    int rc = store_one(c, k, data, len, meta, meta_len, ttl, flags);
    if (__builtin_expect(c->tier_h != 0, 0)) tiers_demote_drain(c, 1);
    return rc;
}

/* A bytes-like value, C-contiguous. */
static int value_buffer(PyObject *value, Py_buffer *b) {
    if (PyUnicode_Check(value)) {
        PyErr_SetString(PyExc_TypeError,
                        "cachee values are bytes-like objects; encode str values "
                        "first (e.g. value.encode())");
        return -1;
    }
    if (PyObject_GetBuffer(value, b, PyBUF_SIMPLE) < 0) {
        if (PyErr_ExceptionMatches(PyExc_BufferError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError,
                         "value must be a contiguous bytes-like object (%.100s is not)",
                         Py_TYPE(value)->tp_name);
        }
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ reading */

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
    PyErr_SetString(errors.CorruptRegionError, "value kept changing under a read");
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
    PyErr_SetString(errors.CorruptRegionError, "value kept changing under a read");
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

static PyObject *cache_get(CacheObject *c, PyObject *const *args, Py_ssize_t n) {
    if (n < 1 || n > 2) {
        PyErr_SetString(PyExc_TypeError, "get(key, default=None)");
        return NULL;
    }
    if (check_open(c) < 0) return NULL;
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

static PyObject *cache_getitem(CacheObject *c, PyObject *key) {
    if (check_open(c) < 0) return NULL;
    KeyBytes k;
    if (key_get(key, &k) < 0) return NULL;
    int missing;
    PyObject *out = cache_read_bytes_tiered(c, &k, &missing);
    if (missing) PyErr_SetObject(PyExc_KeyError, key);
    return out;
}

static PyObject *cache_get_view(CacheObject *c, PyObject *key) {
    if (check_open(c) < 0) return NULL;
    KeyBytes k;
    if (key_get(key, &k) < 0) return NULL;
    int missing;
    ViewObject *v = read_view(c, &k, &missing, NULL);
    if (missing) Py_RETURN_NONE;
    return (PyObject *)v;
}

static PyObject *cache_get_buffer(CacheObject *c, PyObject *key) {
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

static PyObject *cache_get_numpy(CacheObject *c, PyObject *const *args,
                                 Py_ssize_t nargs, PyObject *kwnames) {
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
    if (check_open(c) < 0 || numpy_ready() < 0) return NULL;
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
    PyErr_SetString(errors.CorruptRegionError, "value kept changing under a read");
    return NULL;
}

/* The value the way it was stored: bytes for a value stored with set()
 * (a copy), a read-only ndarray over shared memory for one stored with
 * set_numpy().  One pinned read, so the kind and the bytes agree. */
static PyObject *cache_get_stored(CacheObject *c, PyObject *const *args, Py_ssize_t n) {
    if (n < 1 || n > 2) {
        PyErr_SetString(PyExc_TypeError, "_get_stored(key, default=None)");
        return NULL;
    }
    if (check_open(c) < 0) return NULL;
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

/* ------------------------------------------------------------ writing */

static PyObject *cache_set(CacheObject *c, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames) {
    PyObject *key = NULL, *value = NULL, *ttl = Py_None;
    if (nargs >= 1) key = args[0];
    if (nargs >= 2) value = args[1];
    if (nargs >= 3) ttl = args[2];
    if (nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "set(key, value, ttl=None)");
        return NULL;
    }
    if (kwnames) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            const char *kn = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, i));
            if (kn && strcmp(kn, "ttl") == 0) ttl = args[nargs + i];
            else if (kn && strcmp(kn, "value") == 0) value = args[nargs + i];
            else if (kn && strcmp(kn, "key") == 0) key = args[nargs + i];
            else {
                PyErr_Format(PyExc_TypeError, "set() got an unexpected keyword %R",
                             PyTuple_GET_ITEM(kwnames, i));
                return NULL;
            }
        }
    }
    if (key == NULL || value == NULL) {
        PyErr_SetString(PyExc_TypeError, "set(key, value, ttl=None)");
        return NULL;
    }
    if (check_open(c) < 0) return NULL;
    KeyBytes k;
    uint64_t ttl_v;
    if (key_get(key, &k) < 0 || ttl_ns(ttl, &ttl_v) < 0) return NULL;
    Py_buffer b;
    if (value_buffer(value, &b) < 0) return NULL;
    int rc = store(c, &k, b.buf, (size_t)b.len, NULL, 0, ttl_v, 0);
    PyBuffer_Release(&b);
    if (rc < 0) return NULL;
    Py_RETURN_NONE;
}

static int cache_setitem(CacheObject *c, PyObject *key, PyObject *value) {
    if (check_open(c) < 0) return -1;
    KeyBytes k;
    if (key_get(key, &k) < 0) return -1;
    if (value == NULL) { /* del cache[key] */
        int rc = cachee_l0_delete(c->h, k.data, (size_t)k.len);
        if (rc != 0 && rc != CACHEE_L0_NOTFOUND) {
            raise_l0(rc, NULL);
            return -1;
        }
        int tr = c->tier_h ? tiers_after_delete(c, &k) : 0;
        if (tr < 0) return -1;
        if (rc == CACHEE_L0_NOTFOUND && tr == 0) {
            PyErr_SetObject(PyExc_KeyError, key);
            return -1;
        }
        return 0;
    }
    Py_buffer b;
    if (value_buffer(value, &b) < 0) return -1;
    int rc = store(c, &k, b.buf, (size_t)b.len, NULL, 0, 0, 0);
    PyBuffer_Release(&b);
    return rc < 0 ? -1 : 0;
}

static PyObject *cache_add(CacheObject *c, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"key", "value", "ttl", NULL};
    PyObject *key, *value, *ttl = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O", kwlist, &key, &value, &ttl))
        return NULL;
    if (check_open(c) < 0) return NULL;
    KeyBytes k;
    uint64_t ttl_v;
    if (key_get(key, &k) < 0 || ttl_ns(ttl, &ttl_v) < 0) return NULL;
    Py_buffer b;
    if (value_buffer(value, &b) < 0) return NULL;
    int rc = store(c, &k, b.buf, (size_t)b.len, NULL, 0, ttl_v, CACHEE_L0_IF_ABSENT);
    PyBuffer_Release(&b);
    if (rc < 0) return NULL;
    return PyBool_FromLong(rc == 0);
}

static PyObject *cache_set_numpy(CacheObject *c, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"key", "array", "ttl", NULL};
    PyObject *key, *array, *ttl = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O", kwlist, &key, &array, &ttl))
        return NULL;
    if (check_open(c) < 0) return NULL;
    KeyBytes k;
    uint64_t ttl_v;
    if (key_get(key, &k) < 0 || ttl_ns(ttl, &ttl_v) < 0) return NULL;
    uint8_t meta[CACHEE_L0_META_MAX];
    Py_ssize_t mlen = meta_encode(array, meta, sizeof meta);
    if (mlen < 0) return NULL;
    PyArrayObject *a = (PyArrayObject *)array;
    int rc = store(c, &k, PyArray_DATA(a), (size_t)PyArray_NBYTES(a), meta,
                   (size_t)mlen, ttl_v, 0);
    if (rc < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *cache_delete(CacheObject *c, PyObject *key) {
    if (check_open(c) < 0) return NULL;
    KeyBytes k;
    if (key_get(key, &k) < 0) return NULL;
    int rc = cachee_l0_delete(c->h, k.data, (size_t)k.len);
    if (rc != 0 && rc != CACHEE_L0_NOTFOUND) return raise_l0(rc, NULL);
    /* Tiers loaded here: drop this process's L1 copy (and the lower tiers'). */
    int tr = c->tier_h ? tiers_after_delete(c, &k) : 0;
    if (tr < 0) return NULL;
    return PyBool_FromLong(rc == 0 || tr == 1);
}

static int cache_contains(CacheObject *c, PyObject *key) {
    if (check_open(c) < 0) return -1;
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
static PyObject *cache_l0_contains(CacheObject *c, PyObject *key) {
    if (check_open(c) < 0) return NULL;
    KeyBytes k;
    if (key_get(key, &k) < 0) return NULL;
    int rc = cachee_l0_contains(c->h, k.data, (size_t)k.len);
    if (rc < 0) return raise_l0(rc, NULL);
    return PyBool_FromLong(rc);
}

static Py_ssize_t cache_len(CacheObject *c) {
    if (check_open(c) < 0) return -1;
    return (Py_ssize_t)cachee_l0_count(c->h);
}

/* ------------------------------------------------------------ batches */

/* Items of a mapping or an iterable of pairs, as a list of 2-tuples. */
static PyObject *pairs_of(PyObject *items) {
    PyObject *src = PyDict_Check(items) ? PyDict_Items(items)
                    : PyObject_HasAttrString(items, "items")
                        ? PyObject_CallMethod(items, "items", NULL)
                        : (Py_INCREF(items), items);
    if (src == NULL) return NULL;
    PyObject *list = PySequence_List(src);
    Py_DECREF(src);
    if (list == NULL) return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *p = PyList_GET_ITEM(list, i);
        if (!PyTuple_Check(p) || PyTuple_GET_SIZE(p) != 2) {
            PyObject *t = PySequence_Tuple(p);
            if (t == NULL || PyTuple_GET_SIZE(t) != 2) {
                Py_XDECREF(t);
                Py_DECREF(list);
                PyErr_SetString(PyExc_TypeError,
                                "set_many takes a mapping or an iterable of (key, value) pairs");
                return NULL;
            }
            PyList_SET_ITEM(list, i, t);
            Py_DECREF(p);
        }
    }
    return list;
}

static PyObject *cache_set_many(CacheObject *c, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"items", "ttl", NULL};
    PyObject *items, *ttl = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O", kwlist, &items, &ttl)) return NULL;
    if (check_open(c) < 0) return NULL;
    uint64_t ttl_v;
    if (ttl_ns(ttl, &ttl_v) < 0) return NULL;
    PyObject *list = pairs_of(items);
    if (list == NULL) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(list);
    /* Validate everything first, so bad input changes nothing. */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PyList_GET_ITEM(list, i);
        KeyBytes k;
        Py_buffer b;
        if (key_get(PyTuple_GET_ITEM(p, 0), &k) < 0 ||
            value_buffer(PyTuple_GET_ITEM(p, 1), &b) < 0) {
            Py_DECREF(list);
            return NULL;
        }
        size_t len = (size_t)b.len;
        PyBuffer_Release(&b);
        if (len > c->region->value_max) {
            Py_DECREF(list);
            PyErr_Format(errors.ValueTooLargeError,
                         "value of %zu bytes is larger than this region accepts", len);
            return NULL;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PyList_GET_ITEM(list, i);
        KeyBytes k;
        Py_buffer b;
        if (key_get(PyTuple_GET_ITEM(p, 0), &k) < 0 ||
            value_buffer(PyTuple_GET_ITEM(p, 1), &b) < 0) {
            Py_DECREF(list);
            return NULL;
        }
        int rc = store_one(c, &k, b.buf, (size_t)b.len, NULL, 0, ttl_v, 0);
        PyBuffer_Release(&b);
        if (c->tier_h) tiers_demote_drain(c, rc < 0); /* when half full */
        if (rc < 0) {
            Py_DECREF(list);
            return NULL;
        }
    }
    Py_DECREF(list);
    if (c->tier_h) tiers_demote_drain(c, 1);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------- stats and admin */

static int dict_u64(PyObject *d, const char *name, unsigned long long v) {
    PyObject *o = PyLong_FromUnsignedLongLong(v);
    int rc = o ? PyDict_SetItemString(d, name, o) : -1;
    Py_XDECREF(o);
    return rc;
}

static PyObject *cache_stats(CacheObject *c, PyObject *unused) {
    (void)unused;
    if (check_open(c) < 0) return NULL;
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
    if (check_open(c) < 0) return NULL; /* closed meanwhile */
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

static PyObject *cache_check(CacheObject *c, PyObject *unused) {
    (void)unused;
    if (check_open(c) < 0) return NULL;
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
        PyErr_Format(errors.CorruptRegionError, "region check failed: %s", msg);
        return NULL;
    }
    if (rc != 0) return raise_l0(rc, NULL);
    Py_RETURN_NONE;
}

static PyObject *cache_close(CacheObject *c, PyObject *unused) {
    (void)unused;
    vcache_clear(c);
    c->h = NULL; /* closed from here on, also for threads in tier calls */
    tiers_demote_stop(c->region);
    /* The tiers first: waits for tier calls in flight (GIL released), and
     * their L0 handle shares the region handle's process slot. */
    tiers_close(c);
    Py_CLEAR(c->region); /* views keep the mapping until they are freed */
    Py_RETURN_NONE;
}

static PyObject *cache_unlink(CacheObject *c, PyObject *unused) {
    (void)unused;
    if (check_open(c) < 0) return NULL;
    PyObject *b = NULL;
    if (!PyUnicode_FSConverter(c->region->path, &b)) return NULL;
    int rc = cachee_l0_unlink(PyBytes_AS_STRING(b));
    Py_DECREF(b);
    if (rc != 0 && rc != CACHEE_L0_E_NO_REGION) return raise_l0(rc, NULL);
    Py_RETURN_NONE;
}

static PyObject *cache_enter(CacheObject *c, PyObject *unused) {
    (void)unused;
    if (check_open(c) < 0) return NULL;
    Py_INCREF(c);
    return (PyObject *)c;
}

static PyObject *cache_exit(CacheObject *c, PyObject *args) {
    (void)args;
    return cache_close(c, NULL);
}

static PyObject *cache_region(CacheObject *c, PyObject *unused) {
    (void)unused;
    if (check_open(c) < 0) return NULL;
    Py_INCREF(c->region);
    return (PyObject *)c->region;
}

/* -------------------------------------------------------- construction */

static int cache_init(CacheObject *c, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"path", "size_gb", "size_bytes", "mode", "create",
                             "max_entries", "segment_size", "max_procs", "huge_pages",
                             "allow_foreign_owner", "allow_loose_mode", "allow_any_fs",
                             "open_timeout", "view_cache", "l1_bytes", "l1_promote", NULL};
    PyObject *path = NULL, *size_gb = NULL, *size_bytes = Py_None;
    unsigned int mode = 0600, segment_size = 0, max_procs = 0;
    int create = 1, huge = 0, foreign = 0, loose = 0, anyfs = 0;
    unsigned long long max_entries = 0;
    double timeout = 5.0;
    int view_cache = 1024;
    int default_size = 0;
    PyObject *l1 = Py_None;
    const char *promote = "tinylfu";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO$OIpKIIppppdiOs", kwlist, &path,
                                     &size_gb, &size_bytes, &mode, &create, &max_entries,
                                     &segment_size, &max_procs, &huge, &foreign, &loose,
                                     &anyfs, &timeout, &view_cache, &l1, &promote))
        return -1;
    int promote_i = strcmp(promote, "tinylfu") == 0  ? 0
                    : strcmp(promote, "always") == 0 ? 1
                    : strcmp(promote, "never") == 0  ? 2
                                                     : -1;
    if (promote_i < 0) {
        PyErr_Format(PyExc_ValueError,
                     "l1_promote must be 'tinylfu', 'always' or 'never' (got '%s')",
                     promote);
        return -1;
    }
    uint64_t l1_bytes = 0;
    if (l1 != Py_None) {
        /* Only recorded: nothing is loaded until a read misses L0. */
        if (!PyLong_Check(l1) || PyBool_Check(l1)) {
            PyErr_Format(PyExc_TypeError, "l1_bytes must be an int (bytes) or None, not %.100s",
                         Py_TYPE(l1)->tp_name);
            return -1;
        }
        int over = 0;
        long long v = PyLong_AsLongLongAndOverflow(l1, &over);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (over || v < 0 || v > (1ll << 50)) {
            PyErr_Format(PyExc_ValueError, "l1_bytes must be 0..2**50 bytes (got %R)", l1);
            return -1;
        }
        l1_bytes = (uint64_t)v;
    }
    if (c->region) { /* __init__ called twice */
        vcache_clear(c);
        c->h = NULL;
        tiers_demote_stop(c->region);
        tiers_close(c);
        Py_CLEAR(c->region);
    }
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    if (size_bytes != Py_None) {
        o.size = PyLong_AsUnsignedLongLong(size_bytes);
        if (PyErr_Occurred()) {
            PyErr_SetString(errors.RegionSizeError, "size_bytes must be a positive integer");
            return -1;
        }
    } else if (size_gb == NULL) {
        default_size = 1; /* attach to any size; create 2 GiB */
    } else if (size_gb != Py_None) {
        double gb = PyFloat_AsDouble(size_gb);
        if (gb == -1.0 && PyErr_Occurred()) return -1;
        if (!(gb > 0) || !isfinite(gb) || gb > 16384.0) {
            PyErr_Format(errors.RegionSizeError,
                         "size_gb must be a positive number of GiB up to 16384 (got %R)",
                         size_gb);
            return -1;
        }
        o.size = (uint64_t)(gb * (double)(1ull << 30));
    }
    if (mode > 0777) {
        PyErr_SetString(PyExc_ValueError, "mode must be permission bits (e.g. 0o600)");
        return -1;
    }
    if (!(timeout >= 0) || timeout > 3600) {
        PyErr_SetString(PyExc_ValueError, "open_timeout must be 0..3600 seconds");
        return -1;
    }
    if (view_cache < 0 || view_cache > (1 << 20)) {
        PyErr_SetString(PyExc_ValueError, "view_cache must be 0..1048576");
        return -1;
    }
    o.mode = mode;
    o.flags = (create ? CACHEE_L0_CREATE : 0) | (huge ? CACHEE_L0_HUGEPAGES : 0) |
              (foreign ? CACHEE_L0_ALLOW_FOREIGN_OWNER : 0) |
              (loose ? CACHEE_L0_ALLOW_LOOSE_MODE : 0) |
              (anyfs ? CACHEE_L0_ALLOW_ANY_FS : 0);
    o.max_entries = max_entries;
    o.segment_size = segment_size;
    o.max_procs = max_procs;
    o.open_timeout_ms = (uint32_t)(timeout * 1000.0);
    if (path == NULL) path = PyUnicode_FromString("/dev/shm/cachee");
    else Py_INCREF(path);
    if (path == NULL) return -1;
    PyObject *pb = NULL;
    int ok = PyUnicode_FSConverter(path, &pb);
    Py_DECREF(path);
    if (!ok) return -1;
    if (create && o.size == 0) {
        /* Attach to whatever exists; creating needs a size. */
        o.flags &= ~CACHEE_L0_CREATE;
    }
    RegionObject *r = region_open(PyBytes_AS_STRING(pb), &o);
    if (r == NULL && create && default_size &&
        PyErr_ExceptionMatches(errors.RegionNotFoundError)) {
        /* Nothing there: create it with the default size.  If another
         * process created one meanwhile, attach to that one. */
        PyErr_Clear();
        cachee_l0_options oc = o;
        oc.size = 2ull << 30;
        oc.flags |= CACHEE_L0_CREATE;
        r = region_open(PyBytes_AS_STRING(pb), &oc);
        if (r == NULL && PyErr_ExceptionMatches(errors.RegionSizeError)) {
            PyErr_Clear();
            r = region_open(PyBytes_AS_STRING(pb), &o);
        }
    }
    if (r == NULL && create && o.size == 0 && !default_size &&
        PyErr_ExceptionMatches(errors.RegionNotFoundError)) {
        PyErr_Clear();
        PyErr_Format(errors.RegionSizeError,
                     "%s does not exist, and creating it needs size_gb or size_bytes",
                     PyBytes_AS_STRING(pb));
    } else if (r == NULL && PyErr_ExceptionMatches(errors.RegionSizeError) && o.size) {
        /* Say what exists when the size differs. */
        cachee_l0_options any;
        cachee_l0_options_init(&any);
        any.flags = o.flags & ~CACHEE_L0_CREATE;
        any.mode = o.mode;
        cachee_l0 *tmp = NULL;
        if (cachee_l0_open(PyBytes_AS_STRING(pb), &any, &tmp) == 0) {
            cachee_l0_info in;
            cachee_l0_info_get(tmp, &in);
            cachee_l0_close(tmp);
            PyErr_Clear();
            PyErr_Format(errors.RegionSizeError,
                         "the region at %s already exists with %llu bytes, not the "
                         "%llu asked for: open it with size_gb=None, or unlink it",
                         PyBytes_AS_STRING(pb), (unsigned long long)in.region_size,
                         (unsigned long long)o.size);
        }
    }
    Py_DECREF(pb);
    if (r == NULL) return -1;
    c->region = r;
    c->h = r->h;
    c->l1_bytes = l1_bytes;
    c->allow_foreign = foreign;
    c->promote = promote_i;
    c->tier_h = 0;
    if (l1_bytes > 0 && tiers_demote_setup(c) < 0) return -1;
    PyMem_Free(c->vcache);
    c->vcache = NULL;
    c->vcache_mask = UINT32_MAX;
    if (view_cache > 0) {
        uint32_t n = 1;
        while (n < (uint32_t)view_cache) n *= 2;
        c->vcache = PyMem_Calloc(n, sizeof *c->vcache);
        if (c->vcache == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->vcache_mask = n - 1;
    }
    if (region_hook) {
        PyObject *res = PyObject_CallOneArg(region_hook, (PyObject *)r);
        if (res == NULL) return -1;
        Py_DECREF(res);
    }
    return 0;
}

static PyObject *cache_open(PyTypeObject *type, PyObject *args, PyObject *kw) {
    PyObject *kwargs = kw ? PyDict_Copy(kw) : PyDict_New();
    if (kwargs == NULL) return NULL;
    if (PyDict_SetItemString(kwargs, "create", Py_False) < 0 ||
        (PyDict_GetItemString(kwargs, "size_gb") == NULL &&
         PyDict_SetItemString(kwargs, "size_gb", Py_None) < 0)) {
        Py_DECREF(kwargs);
        return NULL;
    }
    PyObject *res = PyObject_Call((PyObject *)type, args, kwargs);
    Py_DECREF(kwargs);
    return res;
}

static void cache_dealloc(CacheObject *c) {
    PyObject_GC_UnTrack(c);
    if (c->weakreflist) PyObject_ClearWeakRefs((PyObject *)c);
    tiers_close(c);
    vcache_clear(c);
    PyMem_Free(c->vcache);
    Py_XDECREF(c->region);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static int cache_traverse(CacheObject *c, visitproc visit, void *arg) {
    Py_VISIT(c->region);
    if (c->vcache)
        for (uint32_t i = 0; i <= c->vcache_mask; i++) {
            Py_VISIT(c->vcache[i].arr);
            Py_VISIT(c->vcache[i].key);
        }
    return 0;
}

static int cache_clear_refs(CacheObject *c) {
    vcache_clear(c);
    c->h = NULL;
    tiers_demote_stop(c->region);
    tiers_close(c);
    Py_CLEAR(c->region);
    return 0;
}

static PyObject *cache_repr(CacheObject *c) {
    if (c->region == NULL) return PyUnicode_FromString("<cachee.SharedCache closed>");
    return PyUnicode_FromFormat("<cachee.SharedCache %R>", c->region->path);
}

static PyObject *cache_get_path(CacheObject *c, void *x) {
    (void)x;
    if (c->region == NULL) Py_RETURN_NONE;
    Py_INCREF(c->region->path);
    return c->region->path;
}
static PyObject *cache_get_closed(CacheObject *c, void *x) {
    (void)x;
    return PyBool_FromLong(c->h == NULL);
}

PyObject *cache_set_region_hook(PyObject *mod, PyObject *fn) {
    (void)mod;
    Py_XINCREF(fn);
    Py_XSETREF(region_hook, fn == Py_None ? (Py_DECREF(fn), NULL) : fn);
    Py_RETURN_NONE;
}

static PyMethodDef cache_methods[] = {
    {"get", (PyCFunction)(void (*)(void))cache_get, METH_FASTCALL,
     "get(key, default=None) -> bytes\n\nA copy of the value, or default."},
    {"get_buffer", (PyCFunction)cache_get_buffer, METH_O,
     "get_buffer(key) -> memoryview | None\n\nA read-only memoryview of the value in "
     "shared memory (no copy), valid as long as it lives."},
    {"get_view", (PyCFunction)cache_get_view, METH_O,
     "get_view(key) -> View | None\n\nThe value pinned in shared memory: buffer protocol, "
     "DLPack, .numpy()."},
    {"get_numpy", (PyCFunction)(void (*)(void))cache_get_numpy,
     METH_FASTCALL | METH_KEYWORDS,
     "get_numpy(key, shape=None, dtype=None, default=None) -> numpy.ndarray\n\n"
     "A read-only array whose buffer is the shared memory (no copy).  shape and dtype, "
     "when given, must match what was stored (MismatchError otherwise); a value stored "
     "as raw bytes is viewed as that dtype and shape."},
    {"get_numpy_batch", (PyCFunction)(void (*)(void))cache_get_numpy_batch,
     METH_VARARGS | METH_KEYWORDS,
     "get_numpy_batch(keys, dtype=None) -> numpy.ndarray\n\nThe values of keys stacked "
     "into one new array of shape (len(keys), *shape) (one copy).  KeyError for a "
     "missing key, MismatchError if they do not stack."},
    {"get_many", (PyCFunction)cache_get_many, METH_O,
     "get_many(keys) -> dict\n\nCopies of the values of the keys that are present."},
    {"set", (PyCFunction)(void (*)(void))cache_set, METH_FASTCALL | METH_KEYWORDS,
     "set(key, value, ttl=None)\n\nStore a bytes-like value; ttl in seconds."},
    {"add", (PyCFunction)(void (*)(void))cache_add, METH_VARARGS | METH_KEYWORDS,
     "add(key, value, ttl=None) -> bool\n\nStore only if the key is absent; True if stored."},
    {"set_numpy", (PyCFunction)(void (*)(void))cache_set_numpy, METH_VARARGS | METH_KEYWORDS,
     "set_numpy(key, array, ttl=None)\n\nStore a C-contiguous array with its dtype and "
     "shape."},
    {"set_many", (PyCFunction)(void (*)(void))cache_set_many, METH_VARARGS | METH_KEYWORDS,
     "set_many(items, ttl=None)\n\nStore a mapping or iterable of (key, value) pairs.  "
     "All keys and values are checked before anything is stored."},
    {"delete", (PyCFunction)cache_delete, METH_O,
     "delete(key) -> bool\n\nRemove the key; True if it was present."},
    {"stats", (PyCFunction)cache_stats, METH_NOARGS,
     "stats() -> dict\n\nCounters summed over every process using the region."},
    {"check", (PyCFunction)cache_check, METH_NOARGS,
     "check()\n\nValidate every invariant of the region; CorruptRegionError if one fails."},
    {"close", (PyCFunction)cache_close, METH_NOARGS,
     "close()\n\nClose the cache in this process.  Views already handed out stay valid "
     "until they are freed."},
    {"unlink", (PyCFunction)cache_unlink, METH_NOARGS,
     "unlink()\n\nRemove the region's name; processes using it keep it until they close."},
    {"open", (PyCFunction)(void (*)(void))cache_open, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "SharedCache.open(path, **options)\n\nAttach to an existing region only."},
    {"_region", (PyCFunction)cache_region, METH_NOARGS, NULL},
    {"_get_stored", (PyCFunction)(void (*)(void))cache_get_stored, METH_FASTCALL, NULL},
    {"_l0_contains", (PyCFunction)cache_l0_contains, METH_O, NULL},
    {"_load_lock", (PyCFunction)cache_load_lock, METH_VARARGS, NULL},
    {"_load_unlock", (PyCFunction)cache_load_unlock, METH_VARARGS, NULL},
    {"get_or_load", (PyCFunction)(void (*)(void))cache_get_or_load,
     METH_VARARGS | METH_KEYWORDS,
     "get_or_load(key, fn, *, ttl=None, timeout=30.0)\n\n"
     "The value of key; on a miss, fn(key) computes it, in one process (or thread) "
     "only, while the others that miss the same key wait for it (GIL released), at "
     "most timeout seconds (LoadTimeoutError).  fn returns bytes-like (stored with "
     "set(), returned as bytes) or a numpy array (stored with set_numpy(), returned "
     "as a read-only view).  If fn raises, the exception propagates to its caller, "
     "nothing is stored, and a waiter computes the value itself."},
    {"memoize", (PyCFunction)(void (*)(void))cache_memoize, METH_VARARGS | METH_KEYWORDS,
     "memoize(ttl=None, key=None, serializer=None)\n\n"
     "Decorator: cache a function's results in this cache with get_or_load (one "
     "computation per key across every process).  See cachee._loaders.memoize."},
    {"__enter__", (PyCFunction)cache_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)cache_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef cache_getset[] = {
    {"path", (getter)cache_get_path, NULL, "Path of the region.", NULL},
    {"closed", (getter)cache_get_closed, NULL, "True after close().", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMappingMethods cache_as_mapping = {
    (lenfunc)cache_len,
    (binaryfunc)cache_getitem,
    (objobjargproc)cache_setitem,
};

static PySequenceMethods cache_as_sequence = {
    .sq_contains = (objobjproc)cache_contains,
};

PyTypeObject SharedCache_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "cachee.SharedCache",
    .tp_basicsize = sizeof(CacheObject),
    .tp_dealloc = (destructor)cache_dealloc,
    .tp_repr = (reprfunc)cache_repr,
    .tp_as_sequence = &cache_as_sequence,
    .tp_as_mapping = &cache_as_mapping,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "SharedCache(path='/dev/shm/cachee', size_gb=2, *, size_bytes=None, "
              "mode=0o600, create=True, max_entries=0, segment_size=0, max_procs=0, "
              "huge_pages=False, allow_foreign_owner=False, allow_loose_mode=False, "
              "allow_any_fs=False, open_timeout=5.0, view_cache=1024, l1_bytes=None, "
              "l1_promote='tinylfu')\n\n"
              "A cache in shared memory that every process on the machine reads "
              "without a copy.",
    .tp_traverse = (traverseproc)cache_traverse,
    .tp_clear = (inquiry)cache_clear_refs,
    .tp_weaklistoffset = offsetof(CacheObject, weakreflist),
    .tp_methods = cache_methods,
    .tp_getset = cache_getset,
    .tp_init = (initproc)cache_init,
    .tp_new = PyType_GenericNew,
};
