/*
 * cache_write.c -- SharedCache writes: set, [] =, add, set_numpy, delete,
 * del [], set_many, and the helpers they share (ttl, value buffers, store).
 *
 * A write goes to L0.  A value of GIL_RELEASE_BYTES or more is stored with
 * the GIL released.  When the region is full, the arrays this process cached
 * (vcache.c) may be what pins the space: they are dropped and the write is
 * tried once more.  When the tiers are loaded in this process, the write
 * then drops this process's L1 copy and what it evicted from L0 goes to L1
 * (tiers.c).
 */
#include <math.h>

#include "cache.h"
#include "npy.h"
#include "tiers.h"
#include "vcache.h"

#define GIL_RELEASE_BYTES (64 * 1024)

/* ------------------------------------------------------------ helpers */

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
        PyErr_Format(cachee_state()->ValueTooLargeError,
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

/* ------------------------------------------------------------ writing */

PyObject *cache_set(CacheObject *c, PyObject *const *args, Py_ssize_t nargs,
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
    if (cache_check_open(c) < 0) return NULL;
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

int cache_setitem(CacheObject *c, PyObject *key, PyObject *value) {
    if (cache_check_open(c) < 0) return -1;
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

/* The (key, value, ttl=None) arguments of add and set_numpy (kwlist names
 * the second one): the cache open, the key, the value object, the TTL.
 * 0 or -1 with an exception. */
static int key_value_ttl(CacheObject *c, PyObject *args, PyObject *kw, char **kwlist,
                         KeyBytes *k, PyObject **value, uint64_t *ttl_v) {
    PyObject *key, *ttl = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O", kwlist, &key, value, &ttl))
        return -1;
    if (cache_check_open(c) < 0 || key_get(key, k) < 0 || ttl_ns(ttl, ttl_v) < 0) return -1;
    return 0;
}

PyObject *cache_add(CacheObject *c, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"key", "value", "ttl", NULL};
    KeyBytes k;
    PyObject *value;
    uint64_t ttl_v;
    if (key_value_ttl(c, args, kw, kwlist, &k, &value, &ttl_v) < 0) return NULL;
    Py_buffer b;
    if (value_buffer(value, &b) < 0) return NULL;
    int rc = store(c, &k, b.buf, (size_t)b.len, NULL, 0, ttl_v, CACHEE_L0_IF_ABSENT);
    PyBuffer_Release(&b);
    if (rc < 0) return NULL;
    return PyBool_FromLong(rc == 0);
}

PyObject *cache_set_numpy(CacheObject *c, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"key", "array", "ttl", NULL};
    KeyBytes k;
    PyObject *array;
    uint64_t ttl_v;
    if (key_value_ttl(c, args, kw, kwlist, &k, &array, &ttl_v) < 0) return NULL;
    uint8_t meta[CACHEE_L0_META_MAX];
    Py_ssize_t mlen = meta_encode(array, meta, sizeof meta);
    if (mlen < 0) return NULL;
    PyArrayObject *a = (PyArrayObject *)array;
    int rc = store(c, &k, PyArray_DATA(a), (size_t)PyArray_NBYTES(a), meta,
                   (size_t)mlen, ttl_v, 0);
    if (rc < 0) return NULL;
    Py_RETURN_NONE;
}

PyObject *cache_delete(CacheObject *c, PyObject *key) {
    if (cache_check_open(c) < 0) return NULL;
    KeyBytes k;
    if (key_get(key, &k) < 0) return NULL;
    int rc = cachee_l0_delete(c->h, k.data, (size_t)k.len);
    if (rc != 0 && rc != CACHEE_L0_NOTFOUND) return raise_l0(rc, NULL);
    /* Tiers loaded here: drop this process's L1 copy (and the lower tiers'). */
    int tr = c->tier_h ? tiers_after_delete(c, &k) : 0;
    if (tr < 0) return NULL;
    return PyBool_FromLong(rc == 0 || tr == 1);
}

/* ----------------------------------------------------------- set_many */

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

/* One pass over the (key, value) pairs of set_many.  store == 0: check
 * every key and value (the first pass, so that bad input changes nothing);
 * store == 1: write them.  0, or -1 with an exception set. */
static int set_many_pass(CacheObject *c, PyObject *list, uint64_t ttl_v, int store) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *p = PyList_GET_ITEM(list, i);
        KeyBytes k;
        Py_buffer b;
        if (key_get(PyTuple_GET_ITEM(p, 0), &k) < 0 ||
            value_buffer(PyTuple_GET_ITEM(p, 1), &b) < 0)
            return -1;
        size_t len = (size_t)b.len;
        if (!store) {
            PyBuffer_Release(&b);
            if (len > c->region->value_max) {
                PyErr_Format(cachee_state()->ValueTooLargeError,
                             "value of %zu bytes is larger than this region accepts", len);
                return -1;
            }
            continue;
        }
        int rc = store_one(c, &k, b.buf, len, NULL, 0, ttl_v, 0);
        PyBuffer_Release(&b);
        if (c->tier_h) tiers_demote_drain(c, rc < 0); /* when half full */
        if (rc < 0) return -1;
    }
    return 0;
}

PyObject *cache_set_many(CacheObject *c, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"items", "ttl", NULL};
    PyObject *items, *ttl = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O", kwlist, &items, &ttl)) return NULL;
    if (cache_check_open(c) < 0) return NULL;
    uint64_t ttl_v;
    if (ttl_ns(ttl, &ttl_v) < 0) return NULL;
    PyObject *list = pairs_of(items);
    if (list == NULL) return NULL;
    int rc = set_many_pass(c, list, ttl_v, 0);
    if (rc == 0) rc = set_many_pass(c, list, ttl_v, 1);
    Py_DECREF(list);
    if (rc < 0) return NULL;
    if (c->tier_h) tiers_demote_drain(c, 1);
    Py_RETURN_NONE;
}
