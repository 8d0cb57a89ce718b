/*
 * batch.c -- get_many and get_numpy_batch: many keys per call.
 *
 * Recommendation and ranking requests read hundreds of features at once.
 * Looked up one by one, every key pays two dependent cache misses (its index
 * entry, then its record) before the next key starts.  Here the keys go to
 * the engine in pieces of BATCH_PIECE, and cachee_l0_read_many overlaps the
 * misses of each group of keys (hash all, request their index entries, then
 * their records, then look each up); the values are copied right after,
 * while they are in the CPU caches, and each copy is validated (an
 * optimistic read: no pin, no shared write).  A key whose value was
 * rewritten under the copy is read again on its own.
 */
#include "cache.h"
#include "npy.h"
#include "tiers.h"

/* Keys per call into the engine: a few groups, small enough that the values
 * requested are still cached when they are copied. */
#define BATCH_PIECE 64

/* The keys of items [from, from + m) of seq into kp/kl; -1 with an
 * exception for a bad key. */
static int piece_keys(PyObject *seq, Py_ssize_t from, size_t m, const void **kp,
                      size_t *kl) {
    for (size_t j = 0; j < m; j++) {
        KeyBytes k;
        if (key_get(PySequence_Fast_GET_ITEM(seq, from + (Py_ssize_t)j), &k) < 0) return -1;
        kp[j] = k.data;
        kl[j] = (size_t)k.len;
    }
    return 0;
}

/* ------------------------------------------------------------ get_many */

PyObject *cache_get_many(CacheObject *c, PyObject *keys) {
    if (cache_check_open(c) < 0) return NULL;
    PyObject *seq = PySequence_Fast(keys, "get_many takes an iterable of keys");
    if (seq == NULL) return NULL;
    /* Tier reads release the GIL, and a close() in another thread may drop
     * the cache's reference meanwhile: ours keeps the mapping of the views. */
    RegionObject *region = c->region;
    cachee_l0 *h = c->h;
    Py_INCREF(region);
    PyObject *out = PyDict_New();
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    const void *kp[BATCH_PIECE];
    size_t kl[BATCH_PIECE];
    cachee_l0_view vs[BATCH_PIECE];
    int res[BATCH_PIECE];
    for (Py_ssize_t from = 0; out && from < n; from += BATCH_PIECE) {
        size_t m = (size_t)(n - from < BATCH_PIECE ? n - from : BATCH_PIECE);
        if (piece_keys(seq, from, m, kp, kl) < 0) {
            Py_CLEAR(out);
            break;
        }
        int rc = cachee_l0_read_many(h, m, kp, kl, vs, res);
        if (rc != 0) {
            raise_l0(rc, NULL);
            Py_CLEAR(out);
            break;
        }
        for (size_t j = 0; out && j < m; j++) {
            PyObject *key = PySequence_Fast_GET_ITEM(seq, from + (Py_ssize_t)j);
            KeyBytes k = {kp[j], (Py_ssize_t)kl[j]};
            PyObject *v = NULL;
            int missing = 0;
            if (res[j] == 0) {
                v = PyBytes_FromStringAndSize(vs[j].data, (Py_ssize_t)vs[j].len);
                if (v != NULL && cachee_l0_read_validate(h, &vs[j]) != 0) {
                    Py_CLEAR(v); /* rewritten under the copy: read it alone */
                    v = cache_read_bytes_tiered(c, &k, &missing);
                }
            } else if (res[j] == CACHEE_L0_NOTFOUND) {
                v = cache_tier_bytes(c, &k, &missing);
            } else {
                raise_l0(res[j], NULL);
            }
            if (missing) continue;
            if (v == NULL || PyDict_SetItem(out, key, v) < 0) Py_CLEAR(out);
            Py_XDECREF(v);
        }
    }
    Py_DECREF(region);
    Py_DECREF(seq);
    return out;
}

/* ----------------------------------------------------- get_numpy_batch */

/* What get_numpy_batch knows once the first value is in. */
typedef struct {
    cachee_l0 *h;       /* the region's handle (the call holds the region) */
    PyObject *seq;      /* the keys */
    PyObject *dtype;    /* asked for, or None */
    PyObject *out;      /* the result, allocated for the first value */
    char *dst;          /* its data */
    uint64_t each;      /* bytes per value */
    uint8_t meta[CACHEE_L0_META_MAX]; /* the first value's metadata */
    uint32_t meta_len;
} Stack;

/* The first value fixes dtype and shape: decode its metadata (a private
 * copy) and allocate the result.  0 or -1 with an exception. */
static int stack_start(Stack *s, Py_ssize_t n, const void *meta, uint32_t meta_len,
                       uint64_t len) {
    if (meta_len > sizeof s->meta) {
        PyErr_SetString(cachee_state()->CorruptRegionError, "stored metadata is too long");
        return -1;
    }
    memcpy(s->meta, meta, meta_len);
    s->meta_len = meta_len;
    s->each = len;
    ValueLayout first;
    if (meta_decode(s->meta, meta_len, len, &first) < 0) return -1;
    if (meta_check(&first, len, Py_None, s->dtype) < 0 ||
        (first.descr == NULL && (first.descr = descr_for(first.dtype)) == NULL)) {
        layout_clear(&first);
        return -1;
    }
    npy_intp dims[65];
    dims[0] = (npy_intp)n;
    for (int d = 0; d < first.ndim; d++) dims[d + 1] = (npy_intp)first.shape[d];
    Py_INCREF(first.descr); /* stolen below */
    s->out = PyArray_Empty(first.ndim + 1, dims, (PyArray_Descr *)first.descr, 0);
    layout_clear(&first);
    if (s->out == NULL) return -1;
    s->dst = PyArray_DATA((PyArrayObject *)s->out);
    return 0;
}

/* A later value must have the first one's dtype and shape.  Identical
 * metadata says so at once; otherwise both are decoded and compared.
 * meta/len may be shared memory not yet validated: only the outcome of a
 * validated read is kept.  0, or -1 with MismatchError/CorruptRegionError. */
static int stack_same(Stack *s, Py_ssize_t i, const void *meta, uint32_t meta_len,
                      uint64_t len) {
    if (len == s->each && meta_len == s->meta_len && memcmp(meta, s->meta, meta_len) == 0)
        return 0;
    ValueLayout first, li;
    if (meta_decode(s->meta, s->meta_len, s->each, &first) < 0) return -1;
    if (meta_decode(meta, meta_len, len, &li) < 0) {
        layout_clear(&first);
        return -1;
    }
    int bad = meta_check(&li, len, Py_None, s->dtype) < 0 ||
              meta_check(&first, s->each, Py_None, s->dtype) < 0;
    int same = !bad && li.ndim == first.ndim && len == s->each &&
               strcmp(li.dtype, first.dtype) == 0;
    if (same && !li.dtype[0]) /* structured: compare the descriptors */
        same = PyArray_EquivTypes((PyArray_Descr *)li.descr, (PyArray_Descr *)first.descr);
    for (int d = 0; same && d < li.ndim; d++) same = li.shape[d] == first.shape[d];
    layout_clear(&li);
    layout_clear(&first);
    if (bad) return -1;
    if (!same) {
        PyErr_Format(cachee_state()->MismatchError,
                     "get_numpy_batch: value of key %R does not have the dtype and "
                     "shape of the first key's value, so they cannot be stacked",
                     PySequence_Fast_GET_ITEM(s->seq, i));
        return -1;
    }
    return 0;
}

/* Put value i (data/meta of len bytes) into the result.  0 or -1. */
static int stack_put(Stack *s, Py_ssize_t i, Py_ssize_t n, const void *data,
                     uint64_t len, const void *meta, uint32_t meta_len) {
    if (s->out == NULL) {
        if (stack_start(s, n, meta, meta_len, len) < 0) return -1;
    } else if (stack_same(s, i, meta, meta_len, len) < 0) {
        return -1;
    }
    memcpy(s->dst + (size_t)i * s->each, data, s->each);
    return 0;
}

/* Key i alone, after its batched read was overwritten under the copy:
 * read, put, validate, as often as it takes.  0 or -1. */
static int stack_one(Stack *s, Py_ssize_t i, Py_ssize_t n, const KeyBytes *k) {
    for (int attempt = 0; attempt < 1000; attempt++) {
        cachee_l0_view v;
        int rc = cachee_l0_read_begin(s->h, k->data, (size_t)k->len, &v);
        if (rc == CACHEE_L0_NOTFOUND) {
            PyErr_Format(PyExc_KeyError, "get_numpy_batch: key %R is not in the cache",
                         PySequence_Fast_GET_ITEM(s->seq, i));
            return -1;
        }
        if (rc != 0) {
            raise_l0(rc, NULL);
            return -1;
        }
        /* A first value decoded from bytes that then moved would size the
         * result wrongly: copy its metadata, validate, then decode. */
        uint8_t meta[CACHEE_L0_META_MAX];
        uint32_t ml = v.meta_len <= sizeof meta ? v.meta_len : 0;
        memcpy(meta, v.meta, ml);
        if (s->out == NULL && cachee_l0_read_validate(s->h, &v) != 0) continue;
        rc = stack_put(s, i, n, v.data, v.len, meta, ml);
        /* A refusal (mismatch, bad metadata) counts only if the bytes it
         * judged were a consistent snapshot. */
        if (cachee_l0_read_validate(s->h, &v) != 0) {
            PyErr_Clear();
            continue;
        }
        return rc;
    }
    PyErr_SetString(cachee_state()->CorruptRegionError, "value kept changing under a read");
    return -1;
}

PyObject *cache_get_numpy_batch(CacheObject *c, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"keys", "dtype", NULL};
    PyObject *keys, *dtype = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O", kwlist, &keys, &dtype)) return NULL;
    if (cache_check_open(c) < 0 || numpy_ready() < 0) return NULL;
    PyObject *seq = PySequence_Fast(keys, "get_numpy_batch takes a sequence of keys");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n == 0) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "get_numpy_batch needs at least one key");
        return NULL;
    }
    Stack *s = PyMem_Malloc(sizeof *s);
    if (s == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    RegionObject *region = c->region; /* see cache_get_many */
    Py_INCREF(region);
    s->h = c->h;
    s->seq = seq;
    s->dtype = dtype;
    s->out = NULL;
    /* Every key is checked before anything is read (TypeError, empty,
     * too long): the same errors, in the same order, as one by one. */
    for (Py_ssize_t i = 0; i < n; i++) {
        KeyBytes k;
        if (key_get(PySequence_Fast_GET_ITEM(seq, i), &k) < 0) goto fail;
    }
    const void *kp[BATCH_PIECE];
    size_t kl[BATCH_PIECE];
    cachee_l0_view vs[BATCH_PIECE];
    int res[BATCH_PIECE];
    for (Py_ssize_t from = 0; from < n; from += BATCH_PIECE) {
        size_t m = (size_t)(n - from < BATCH_PIECE ? n - from : BATCH_PIECE);
        if (piece_keys(seq, from, m, kp, kl) < 0) goto fail;
        int rc = cachee_l0_read_many(s->h, m, kp, kl, vs, res);
        if (rc != 0) {
            raise_l0(rc, NULL);
            goto fail;
        }
        for (size_t j = 0; j < m; j++) {
            Py_ssize_t i = from + (Py_ssize_t)j;
            KeyBytes k = {kp[j], (Py_ssize_t)kl[j]};
            if (res[j] == 0) {
                if (s->out == NULL) { /* see stack_one */
                    if (stack_one(s, i, n, &k) < 0) goto fail;
                    continue;
                }
                rc = stack_put(s, i, n, vs[j].data, vs[j].len, vs[j].meta, vs[j].meta_len);
                if (cachee_l0_read_validate(s->h, &vs[j]) != 0) {
                    /* rewritten under the copy: whatever stack_put decided
                     * about those bytes, read the key again alone */
                    PyErr_Clear();
                    if (stack_one(s, i, n, &k) < 0) goto fail;
                } else if (rc < 0) {
                    goto fail;
                }
                continue;
            }
            if (res[j] != CACHEE_L0_NOTFOUND) {
                raise_l0(res[j], NULL);
                goto fail;
            }
            cachee_value tv;
            int tr = tiers_configured(c) ? tiers_get(c, &k, 0, &tv) : 0;
            if (tr < 0) goto fail;
            if (tr == 0) {
                PyErr_Format(PyExc_KeyError, "get_numpy_batch: key %R is not in the cache",
                             PySequence_Fast_GET_ITEM(seq, i));
                goto fail;
            }
            /* served by a tier: a private copy */
            rc = stack_put(s, i, n, tv.data, tv.len, tv.meta, (uint32_t)tv.meta_len);
            tiers_value_free(&tv);
            if (rc < 0) goto fail;
        }
    }
    PyObject *out = s->out;
    PyMem_Free(s);
    Py_DECREF(region);
    Py_DECREF(seq);
    return out;
fail:
    Py_XDECREF(s->out);
    PyMem_Free(s);
    Py_DECREF(region);
    Py_DECREF(seq);
    return NULL;
}
