/*
 * meta.c -- dtype and shape stored beside a value, so get_numpy can rebuild
 * the array without the caller repeating them.  No pickle: the dtype is kept
 * as its array-protocol string (numpy's dtype.str), which round-trips for
 * every fixed-size, non-structured, non-object dtype.
 *
 * Layouts (little-endian):
 *   'n' code_ndim:u8 shape[ndim]:u32
 *       compact: code_ndim = dtype code << 2 | ndim, for arrays of at most 3
 *       dimensions, each below 2^32, of a native-order dtype of the table
 *       below (bool, ints, floats, complex): 6 bytes for a vector, so a
 *       512-byte vector with a short key takes 560 bytes of the region
 *   'N' '1' ndim:u8 dtype_len:u8 dtype[dtype_len] shape[ndim]:i64
 *       any other fixed-size dtype (byte-swapped, datetime, strings, ...)
 *   'N' '2' ndim:u8 0:u8 itemsize:u32 descr_len:u16 descr[descr_len]
 *       shape[ndim]:i64
 * The last form is for structured dtypes: descr is repr(dtype.descr), a
 * Python literal read back with ast.literal_eval (never eval, never pickle).
 *
 * Decoding the first two forms needs no numpy (itemsize, struct format and
 * kind come from the dtype string); the numpy descriptor is made only when
 * an array is built.  The last form needs numpy to decode.
 */
#include "ext.h"
#include "npy.h"

#define META_MAGIC0 'N'
#define META_MAGIC1 '1'
#define META_COMPACT 'n'
#define COMPACT_NDIM_MAX 3
#define NDIM_MAX 64

/* The dtypes of the compact form, by code (1..), as numpy's dtype.str in
 * native byte order (regions never cross machines: the format word holds
 * the byte order). */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE "<"
#else
#define NATIVE ">"
#endif
static const struct {
    const char *str;
    char kind;
    uint8_t itemsize;
} compact_dtypes[] = {
    {"", 0, 0},
    {"|b1", 'b', 1},          {"|i1", 'i', 1},          {"|u1", 'u', 1},
    {NATIVE "i2", 'i', 2},    {NATIVE "u2", 'u', 2},    {NATIVE "i4", 'i', 4},
    {NATIVE "u4", 'u', 4},    {NATIVE "i8", 'i', 8},    {NATIVE "u8", 'u', 8},
    {NATIVE "f2", 'f', 2},    {NATIVE "f4", 'f', 4},    {NATIVE "f8", 'f', 8},
    {NATIVE "c8", 'c', 8},    {NATIVE "c16", 'c', 16},
};
#undef NATIVE
#define COMPACT_CODES (sizeof compact_dtypes / sizeof compact_dtypes[0])

/* The compact code of a dtype string, or 0. */
static unsigned compact_code(const char *s) {
    for (unsigned c = 1; c < COMPACT_CODES; c++)
        if (strcmp(compact_dtypes[c].str, s) == 0) return c;
    return 0;
}

/* ----------------------------------------------------- dtype strings */

static int native_order(char c) {
    const uint16_t probe = 1;
    int little = *(const uint8_t *)&probe;
    return c == '|' || c == '=' || (little ? c == '<' : c == '>');
}

/* Parse "<f4", "|u1", "<M8[ns]", "<U5": kind and itemsize.  0 or -1. */
static int dtype_parse(const char *s, size_t n, char *kind, Py_ssize_t *itemsize) {
    /* No 'O': an object dtype over shared bytes would turn another process's
     * bytes into PyObject pointers. */
    if (n < 3 || !strchr("<>|=", s[0]) || !strchr("biufcmMSUV", s[1])) return -1;
    Py_ssize_t v = 0;
    size_t i = 2;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        v = v * 10 + (s[i] - '0');
        if (v > (1 << 30)) return -1;
    }
    if (i == 2 || v <= 0) return -1;
    if (i < n && s[i] != '[') return -1;
    *kind = s[1];
    *itemsize = s[1] == 'U' ? 4 * v : v;
    return 0;
}

/* The struct-module format of a dtype string (raw bytes of the item's width
 * when struct has no letter for it). */
static void dtype_format(const char *s, char kind, Py_ssize_t itemsize,
                         char *out, size_t cap) {
    const char *f = NULL;
    if (native_order(s[0])) {
        switch (kind) {
        case 'b': f = itemsize == 1 ? "?" : NULL; break;
        case 'i':
            f = itemsize == 1 ? "b" : itemsize == 2 ? "h" : itemsize == 4 ? "i"
                : itemsize == 8 ? "q" : NULL;
            break;
        case 'u':
            f = itemsize == 1 ? "B" : itemsize == 2 ? "H" : itemsize == 4 ? "I"
                : itemsize == 8 ? "Q" : NULL;
            break;
        case 'f':
            f = itemsize == 2 ? "e" : itemsize == 4 ? "f" : itemsize == 8 ? "d" : NULL;
            break;
        case 'c': f = itemsize == 8 ? "Zf" : itemsize == 16 ? "Zd" : NULL; break;
        default: break;
        }
    }
    if (f) { /* a short literal: no snprintf on the hot path of get_numpy */
        size_t n = strlen(f) < cap ? strlen(f) : cap - 1;
        memcpy(out, f, n);
        out[n] = '\0';
    } else {
        snprintf(out, cap, "%zds", itemsize);
    }
}

/* ------------------------------------------------ numpy descriptors */

/* The last few descriptors made, found by a string compare. */
#define RECENT 8
static struct {
    char str[32];
    PyObject *descr;
} recent[RECENT];
static unsigned recent_next;

PyObject *descr_for(const char *dtype) {
    for (unsigned i = 0; i < RECENT; i++)
        if (recent[i].descr && strcmp(recent[i].str, dtype) == 0) {
            Py_INCREF(recent[i].descr);
            return recent[i].descr;
        }
    if (numpy_ready() < 0) return NULL;
    PyObject *str = PyUnicode_FromString(dtype);
    PyArray_Descr *d = NULL;
    if (str == NULL || !PyArray_DescrConverter(str, &d)) {
        Py_XDECREF(str);
        PyErr_Clear();
        PyErr_Format(cachee_state()->CorruptRegionError,
                     "stored dtype '%.32s' is not a numpy dtype", dtype);
        return NULL;
    }
    Py_DECREF(str);
    /* What numpy made must be exactly what we parsed: fixed-size, no Python
     * objects anywhere, the same item size. */
    char kind;
    Py_ssize_t isz;
    if (PyDataType_REFCHK(d) || dtype_parse(dtype, strlen(dtype), &kind, &isz) < 0 ||
        PyDataType_ELSIZE(d) != isz) {
        Py_DECREF(d);
        PyErr_Format(cachee_state()->CorruptRegionError,
                     "stored dtype '%.32s' is not a storable fixed-size dtype", dtype);
        return NULL;
    }
    unsigned i = recent_next++ % RECENT;
    Py_XSETREF(recent[i].descr, (PyObject *)d);
    snprintf(recent[i].str, sizeof recent[i].str, "%s", dtype);
    Py_INCREF(d);
    return (PyObject *)d;
}

/* ----------------------------------------------------------- encode */

/* A dtype we can store and rebuild exactly. */
static int descr_storable(PyArray_Descr *d, PyObject **str_out) {
    if (PyDataType_REFCHK(d) || d->type_num == NPY_OBJECT) {
        PyErr_SetString(PyExc_TypeError,
                        "arrays of Python objects cannot live in shared memory "
                        "(object dtype); convert to a fixed-size dtype first");
        return -1;
    }
    if (PyDataType_HASSUBARRAY(d)) {
        PyErr_SetString(PyExc_TypeError,
                        "sub-array dtypes are not supported by set_numpy; give the "
                        "sub-array's shape to the array instead");
        return -1;
    }
    if (PyDataType_ELSIZE(d) == 0) {
        PyErr_SetString(PyExc_TypeError,
                        "flexible dtypes without a size (e.g. 'S0') are not supported");
        return -1;
    }
    PyObject *s = PyObject_GetAttrString((PyObject *)d, "str");
    if (s == NULL) return -1;
    Py_ssize_t n;
    const char *c = PyUnicode_AsUTF8AndSize(s, &n);
    char kind;
    Py_ssize_t isz;
    if (c == NULL || n < 3 || n >= 32 || dtype_parse(c, (size_t)n, &kind, &isz) < 0 ||
        isz != PyDataType_ELSIZE(d)) {
        Py_DECREF(s);
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "dtype %R cannot be stored", (PyObject *)d);
        return -1;
    }
    *str_out = s;
    return 0;
}

/* repr(descr) read back as a dtype: ast.literal_eval, then numpy.dtype. */
static PyObject *descr_from_repr(const char *s, size_t n) {
    PyObject *ast = PyImport_ImportModule("ast");
    if (ast == NULL) return NULL;
    PyObject *lit = PyObject_CallMethod(ast, "literal_eval", "s#", s, (Py_ssize_t)n);
    Py_DECREF(ast);
    if (lit == NULL) return NULL;
    PyArray_Descr *d = NULL;
    int ok = PyArray_DescrConverter(lit, &d);
    Py_DECREF(lit);
    return ok ? (PyObject *)d : NULL;
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int b = 0; b < 8; b++) p[b] = (uint8_t)(v >> (8 * b));
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int b = 0; b < 8; b++) v |= (uint64_t)p[b] << (8 * b);
    return v;
}

static Py_ssize_t meta_encode_structured(PyArrayObject *a, uint8_t *meta, size_t cap) {
    PyArray_Descr *d = PyArray_DESCR(a);
    PyObject *descr = PyObject_GetAttrString((PyObject *)d, "descr");
    PyObject *r = descr ? PyObject_Repr(descr) : NULL;
    Py_XDECREF(descr);
    if (r == NULL) return -1;
    Py_ssize_t rlen;
    const char *rs = PyUnicode_AsUTF8AndSize(r, &rlen);
    int ndim = PyArray_NDIM(a);
    size_t need = rs ? 10 + (size_t)rlen + 8 * (size_t)ndim : 0;
    if (rs == NULL || need > cap || rlen > 65535) {
        Py_DECREF(r);
        if (!PyErr_Occurred())
            PyErr_SetString(cachee_state()->ValueTooLargeError,
                            "the structured dtype's description is too long to store");
        return -1;
    }
    /* It must read back as the same layout, or get_numpy could not rebuild
     * the array. */
    PyObject *back = descr_from_repr(rs, (size_t)rlen);
    int same = back && PyArray_EquivTypes((PyArray_Descr *)back, d) &&
               PyDataType_ELSIZE((PyArray_Descr *)back) == PyDataType_ELSIZE(d);
    Py_XDECREF(back);
    if (!same) {
        Py_DECREF(r);
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError,
                     "structured dtype %R cannot be stored and rebuilt exactly",
                     (PyObject *)d);
        return -1;
    }
    meta[0] = META_MAGIC0;
    meta[1] = '2';
    meta[2] = (uint8_t)ndim;
    meta[3] = 0;
    uint32_t isz = (uint32_t)PyDataType_ELSIZE(d);
    for (int b = 0; b < 4; b++) meta[4 + b] = (uint8_t)(isz >> (8 * b));
    meta[8] = (uint8_t)rlen;
    meta[9] = (uint8_t)(rlen >> 8);
    memcpy(meta + 10, rs, (size_t)rlen);
    Py_DECREF(r);
    uint8_t *p = meta + 10 + rlen;
    for (int i = 0; i < ndim; i++, p += 8) put_u64(p, (uint64_t)PyArray_DIM(a, i));
    return (Py_ssize_t)need;
}

Py_ssize_t meta_encode(PyObject *obj, uint8_t *meta, size_t cap) {
    if (numpy_ready() < 0) return -1;
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "set_numpy takes a numpy.ndarray, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    if (!PyArray_IS_C_CONTIGUOUS(a)) {
        PyErr_SetString(PyExc_TypeError,
                        "set_numpy needs a C-contiguous array (got a strided view); "
                        "pass numpy.ascontiguousarray(arr)");
        return -1;
    }
    int ndim = PyArray_NDIM(a);
    if (ndim > NDIM_MAX) {
        PyErr_Format(PyExc_TypeError, "arrays of more than %d dimensions are not supported",
                     NDIM_MAX);
        return -1;
    }
    if (PyDataType_HASFIELDS(PyArray_DESCR(a))) {
        if (PyDataType_REFCHK(PyArray_DESCR(a))) {
            PyErr_SetString(PyExc_TypeError,
                            "structured arrays with Python-object fields cannot live "
                            "in shared memory; use fixed-size fields");
            return -1;
        }
        return meta_encode_structured(a, meta, cap);
    }
    PyObject *dstr = NULL;
    if (descr_storable(PyArray_DESCR(a), &dstr) < 0) return -1;
    Py_ssize_t slen;
    const char *s = PyUnicode_AsUTF8AndSize(dstr, &slen);
    unsigned code = ndim <= COMPACT_NDIM_MAX ? compact_code(s) : 0;
    for (int i = 0; code && i < ndim; i++)
        if ((uint64_t)PyArray_DIM(a, i) > UINT32_MAX) code = 0;
    if (code && 2u + 4u * (unsigned)ndim <= cap) {
        Py_DECREF(dstr);
        meta[0] = META_COMPACT;
        meta[1] = (uint8_t)(code << 2 | (unsigned)ndim);
        uint8_t *p = meta + 2;
        for (int i = 0; i < ndim; i++, p += 4) {
            uint32_t v = (uint32_t)PyArray_DIM(a, i);
            for (int b = 0; b < 4; b++) p[b] = (uint8_t)(v >> (8 * b));
        }
        return 2 + 4 * ndim;
    }
    size_t need = 4 + (size_t)slen + 8 * (size_t)ndim;
    if (need > cap) {
        Py_DECREF(dstr);
        PyErr_SetString(cachee_state()->ValueTooLargeError, "array metadata too long");
        return -1;
    }
    meta[0] = META_MAGIC0;
    meta[1] = META_MAGIC1;
    meta[2] = (uint8_t)ndim;
    meta[3] = (uint8_t)slen;
    memcpy(meta + 4, s, (size_t)slen);
    Py_DECREF(dstr);
    uint8_t *p = meta + 4 + slen;
    for (int i = 0; i < ndim; i++, p += 8) put_u64(p, (uint64_t)PyArray_DIM(a, i));
    return (Py_ssize_t)need;
}

/* ----------------------------------------------------------- decode */

void layout_clear(ValueLayout *l) { Py_CLEAR(l->descr); }

static void layout_raw(ValueLayout *out, uint64_t len) {
    memset(out, 0, sizeof *out);
    strcpy(out->dtype, "|u1");
    out->ndim = 1;
    out->shape[0] = (int64_t)len;
    out->itemsize = 1;
    out->kind = 'u';
    out->raw = 1;
    strcpy(out->format, "B");
}

/* Shape (ndim little-endian integers of `width` bytes, 8 or 4, at p) and
 * the element count check, for every form. */
static int decode_shape(ValueLayout *out, const uint8_t *p, uint64_t len, int width) {
    uint64_t count = 1;
    for (int i = 0; i < out->ndim; i++, p += width) {
        uint64_t v = width == 8 ? get_u64(p)
                                : p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
                                      (uint64_t)p[3] << 24;
        if (v > (uint64_t)INT64_MAX) return -1;
        out->shape[i] = (int64_t)v;
        if (v != 0 && count > UINT64_MAX / v) return -1;
        count *= v;
    }
    if (count > UINT64_MAX / (uint64_t)out->itemsize ||
        count * (uint64_t)out->itemsize != len)
        return -1;
    return 0;
}

static int decode_structured(const uint8_t *m, uint32_t meta_len, uint64_t len,
                             ValueLayout *out) {
    if (meta_len < 10 || m[2] > NDIM_MAX) goto corrupt;
    uint32_t isz = m[4] | (uint32_t)m[5] << 8 | (uint32_t)m[6] << 16 | (uint32_t)m[7] << 24;
    size_t rlen = m[8] | (size_t)m[9] << 8;
    if (isz == 0 || (size_t)meta_len != 10 + rlen + 8u * m[2]) goto corrupt;
    if (numpy_ready() < 0) return -1;
    out->descr = descr_from_repr((const char *)m + 10, rlen);
    if (out->descr == NULL || PyDataType_REFCHK((PyArray_Descr *)out->descr) ||
        PyDataType_ELSIZE((PyArray_Descr *)out->descr) != (Py_ssize_t)isz) {
        Py_CLEAR(out->descr);
        PyErr_Clear();
        goto corrupt;
    }
    out->dtype[0] = '\0'; /* described by descr only */
    out->ndim = m[2];
    out->itemsize = isz;
    out->kind = 'V';
    snprintf(out->format, sizeof out->format, "%us", isz);
    if (decode_shape(out, m + 10 + rlen, len, 8) < 0) {
        Py_CLEAR(out->descr);
        goto corrupt;
    }
    return 0;
corrupt:
    PyErr_SetString(cachee_state()->CorruptRegionError,
                    "stored structured-array metadata is malformed");
    return -1;
}

int meta_is_raw(const void *meta, uint32_t meta_len) {
    const uint8_t *m = meta;
    return !(meta_len >= 2 && ((m[0] == META_MAGIC0 && (m[1] == META_MAGIC1 || m[1] == '2')) ||
                               m[0] == META_COMPACT));
}

static int meta_corrupt(void) {
    PyErr_SetString(cachee_state()->CorruptRegionError,
                    "stored array metadata is malformed or does not match the "
                    "value's length");
    return -1;
}

static int decode_compact(const uint8_t *m, uint32_t meta_len, uint64_t len,
                          ValueLayout *out) {
    memset(out, 0, sizeof *out);
    unsigned code = m[1] >> 2, ndim = m[1] & 3u;
    if (code == 0 || code >= COMPACT_CODES || meta_len != 2u + 4u * ndim)
        return meta_corrupt();
    memcpy(out->dtype, compact_dtypes[code].str, strlen(compact_dtypes[code].str) + 1);
    out->kind = compact_dtypes[code].kind;
    out->itemsize = compact_dtypes[code].itemsize;
    out->ndim = (int)ndim;
    if (decode_shape(out, m + 2, len, 4) < 0) return meta_corrupt();
    dtype_format(out->dtype, out->kind, out->itemsize, out->format, sizeof out->format);
    return 0;
}

int meta_decode(const void *meta, uint32_t meta_len, uint64_t len,
                ValueLayout *out) {
    const uint8_t *m = meta;
    if (meta_len >= 2 && m[0] == META_COMPACT) return decode_compact(m, meta_len, len, out);
    if (meta_len >= 2 && m[0] == META_MAGIC0 && m[1] == '2') {
        memset(out, 0, sizeof *out);
        return decode_structured(m, meta_len, len, out);
    }
    if (meta_len < 2 || m[0] != META_MAGIC0 || m[1] != META_MAGIC1) {
        layout_raw(out, len);
        return 0;
    }
    memset(out, 0, sizeof *out);
    if (meta_len < 4 || m[2] > NDIM_MAX || m[3] < 3 || m[3] >= sizeof out->dtype ||
        (size_t)meta_len != 4u + m[3] + 8u * m[2])
        return meta_corrupt();
    memcpy(out->dtype, m + 4, m[3]);
    out->dtype[m[3]] = '\0';
    if (dtype_parse(out->dtype, m[3], &out->kind, &out->itemsize) < 0) return meta_corrupt();
    out->ndim = m[2];
    if (decode_shape(out, m + 4 + m[3], len, 8) < 0) return meta_corrupt();
    dtype_format(out->dtype, out->kind, out->itemsize, out->format, sizeof out->format);
    return 0;
}

/* ------------------------------------------------------------ check */

/* The dtype a caller asked for, or NULL (None). */
static int want_descr(PyObject *dtype, PyArray_Descr **out) {
    *out = NULL;
    if (dtype == NULL || dtype == Py_None) return 0;
    if (numpy_ready() < 0) return -1;
    if (!PyArray_DescrConverter2(dtype, out) || *out == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "dtype is not a numpy dtype");
        return -1;
    }
    return 0;
}

/* The shape a caller asked for: 1 (dims filled; () is a shape too), 0 for
 * None, -1 with an exception. */
static int want_shape(PyObject *shape, PyArray_Dims *dims) {
    dims->ptr = NULL;
    dims->len = 0;
    if (shape == NULL || shape == Py_None) return 0;
    if (numpy_ready() < 0) return -1;
    return PyArray_IntpConverter(shape, dims) ? 1 : -1;
}

/* Reinterpret a raw value as dtype/shape (each optional). */
static int reinterpret(ValueLayout *l, uint64_t len, PyObject *shape,
                       PyObject *dtype) {
    PyArray_Descr *d;
    if (want_descr(dtype, &d) < 0) return -1;
    if (d != NULL) {
        PyObject *s = NULL;
        if (descr_storable(d, &s) < 0) {
            Py_DECREF(d);
            return -1;
        }
        Py_ssize_t isz = PyDataType_ELSIZE(d);
        if (len % (uint64_t)isz != 0) {
            PyErr_Format(cachee_state()->MismatchError,
                         "value of %llu bytes is not a whole number of %zd-byte items",
                         (unsigned long long)len, isz);
            Py_DECREF(s);
            Py_DECREF(d);
            return -1;
        }
        snprintf(l->dtype, sizeof l->dtype, "%s", PyUnicode_AsUTF8(s));
        Py_DECREF(s);
        Py_XSETREF(l->descr, (PyObject *)d);
        l->itemsize = isz;
        l->kind = l->dtype[1];
        l->ndim = 1;
        l->shape[0] = (int64_t)(len / (uint64_t)isz);
        dtype_format(l->dtype, l->kind, l->itemsize, l->format, sizeof l->format);
    }
    PyArray_Dims dims;
    int given = want_shape(shape, &dims);
    if (given < 0) return -1;
    if (given) {
        uint64_t count = 1;
        int ok = dims.len <= NDIM_MAX;
        for (int i = 0; ok && i < dims.len; i++) {
            uint64_t v = (uint64_t)dims.ptr[i];
            ok = dims.ptr[i] >= 0 && (v == 0 || count <= UINT64_MAX / v);
            count *= v;
        }
        if (ok && count > UINT64_MAX / (uint64_t)l->itemsize) ok = 0;
        if (!ok || count * (uint64_t)l->itemsize != len) {
            PyDimMem_FREE(dims.ptr);
            PyErr_Format(cachee_state()->MismatchError,
                         "value of %llu bytes does not have shape %R",
                         (unsigned long long)len, shape);
            return -1;
        }
        l->ndim = dims.len;
        for (int i = 0; i < dims.len; i++) l->shape[i] = dims.ptr[i];
        PyDimMem_FREE(dims.ptr);
    }
    return 0;
}

int meta_check(ValueLayout *l, uint64_t len, PyObject *shape, PyObject *dtype) {
    if (l->raw) return reinterpret(l, len, shape, dtype);
    PyArray_Descr *want;
    if (want_descr(dtype, &want) < 0) return -1;
    if (want != NULL) {
        PyObject *have = l->dtype[0] ? descr_for(l->dtype) : (Py_XINCREF(l->descr), l->descr);
        if (have == NULL) {
            Py_DECREF(want);
            return -1;
        }
        int same = PyArray_EquivTypes(want, (PyArray_Descr *)have);
        if (!same)
            PyErr_Format(cachee_state()->MismatchError, "stored dtype is %S, not %S", have,
                         (PyObject *)want);
        Py_DECREF(have);
        Py_DECREF(want);
        if (!same) return -1;
    }
    PyArray_Dims dims;
    int given = want_shape(shape, &dims);
    if (given < 0) return -1;
    if (given) {
        int ok = dims.len == l->ndim;
        for (int i = 0; ok && i < dims.len; i++) ok = dims.ptr[i] == l->shape[i];
        PyDimMem_FREE(dims.ptr);
        if (!ok) {
            PyObject *stored = PyTuple_New(l->ndim);
            for (int i = 0; stored && i < l->ndim; i++)
                PyTuple_SET_ITEM(stored, i, PyLong_FromLongLong(l->shape[i]));
            PyErr_Format(cachee_state()->MismatchError, "stored shape is %S, not %R",
                         stored ? stored : Py_None, shape);
            Py_XDECREF(stored);
            return -1;
        }
    }
    return 0;
}
