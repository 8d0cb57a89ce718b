/*
 * ext.h -- private declarations of the cachee CPython extension.
 *
 * The extension compiles the L0 engine in (core/l0, hidden symbols) and
 * exposes three types:
 *   _Region      owns one engine handle; kept alive by the SharedCache that
 *                opened it and by every View, so closing a cache while views
 *                exist defers the unmap until the last view is gone;
 *   View         a pinned value: read-only buffer protocol and DLPack; its
 *                pin is released when it is freed;
 *   SharedCache  the user-facing cache (get/set/..., numpy views).
 */
#ifndef CACHEE_EXT_H
#define CACHEE_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "cachee_l0.h"

/* ------------------------------------------------------------- _Region */

typedef struct {
    PyObject_HEAD
    cachee_l0 *h;          /* closed when the object is freed */
    uint64_t value_max;
    PyObject *path;        /* str */
    PyObject *weakreflist;
    struct DemoteQueue *demoteq; /* eviction hook's queue (tiers.c), or NULL */
} RegionObject;

extern PyTypeObject Region_Type;
/** Open a region; returns a new reference or NULL with an exception. */
RegionObject *region_open(const char *path, const cachee_l0_options *o);

/* ---------------------------------------------------------------- View */

/** Element type and shape of a stored value (numpy metadata or raw bytes),
 *  decoded without numpy: numpy is imported only when an array is asked
 *  for (importing it starts OpenBLAS threads). */
typedef struct {
    char dtype[32];        /* numpy dtype.str, NUL-terminated ("|u1" for raw) */
    int ndim;
    int64_t shape[64];
    char format[16];       /* struct-module format for the buffer protocol */
    Py_ssize_t itemsize;
    char kind;             /* numpy dtype kind, 'u' for raw bytes */
    int raw;               /* stored without numpy metadata (set()) */
    PyObject *descr;       /* numpy descriptor, only once something set it */
} ValueLayout;

typedef struct {
    PyObject_VAR_HEAD      /* ob_size: ndim */
    RegionObject *region;  /* strong reference: keeps the mapping */
    cachee_l0_view v;      /* pinned */
    PyObject *descr;       /* PyArray_Descr*, owned; NULL until needed */
    char dtype[32];        /* numpy dtype.str */
    Py_ssize_t itemsize;
    Py_ssize_t exports;    /* live buffer exports */
    char format[16];       /* struct-module format for the buffer protocol */
    char kind;
    char raw;
    Py_ssize_t dims[1];    /* shape[ndim], then strides[ndim] */
} ViewObject;

#define VIEW_NDIM(o) ((int)Py_SIZE(o))
#define VIEW_SHAPE(o) ((o)->dims)
#define VIEW_STRIDES(o) ((o)->dims + Py_SIZE(o))

extern PyTypeObject View_Type;
/** Wrap a pinned engine view whose layout was decoded (takes over the pin
 *  and the layout's descr; on failure both are released). */
ViewObject *view_new(RegionObject *region, const cachee_l0_view *v,
                     ValueLayout *layout);
/** Build an ndarray over a view (read-only, zero copy). */
PyObject *view_to_ndarray(ViewObject *view);

/* ------------------------------------------------------ numpy metadata */

/** Encode dtype and shape of a C-contiguous array into meta (<= 4096 B).
 *  Returns the length, or -1 with TypeError/ValueError set. */
Py_ssize_t meta_encode(PyObject *array, uint8_t *meta, size_t cap);
/** The numpy C API, imported on first use.  0, or -1 with ImportError. */
int numpy_ready(void);
/** The numpy descriptor of a dtype string (new reference; imports numpy). */
PyObject *descr_for(const char *dtype);
/** Decode stored metadata for a value of `len` bytes into *out (without
 *  numpy).  Raw values (no numpy metadata) decode as 1-D uint8.  -1 with an
 *  exception. */
int meta_decode(const void *meta, uint32_t meta_len, uint64_t len,
                ValueLayout *out);
/** Check a decoded layout against what the caller asked for.  A raw value
 *  (stored with set()) is reinterpreted as the dtype and shape asked for,
 *  when they fit its length.  0, or -1 with MismatchError/TypeError. */
int meta_check(ValueLayout *l, uint64_t len, PyObject *shape, PyObject *dtype);
void layout_clear(ValueLayout *l);
/** 1 if metadata marks a value stored as raw bytes (set()), 0 if an array. */
int meta_is_raw(const void *meta, uint32_t meta_len);

/* --------------------------------------------------------- module state */

/** The state of the cachee._cachee module (PyModule_GetState; module.c):
 *  the exception classes and the region hook.  Static because they are per
 *  process by nature: the numpy C API table (npy.c), libcachee.so with its
 *  fork bookkeeping (tiers.c), and the type objects (module.c says why). */
typedef struct {
    /* Exception classes, looked up from cachee._errors at module init. */
    PyObject *CacheError, *ClosedError, *MismatchError, *KeyTooLargeError,
        *ValueTooLargeError, *CacheFullError, *TooManyPinsError,
        *TooManyProcessesError, *NotARegionError, *FormatError,
        *CorruptRegionError, *RegionSizeError, *RegionOwnerError,
        *LoosePermissionsError, *UnsafePathError, *NotSharedMemoryError,
        *NoSpaceError, *NotReadyError, *RegionNotFoundError,
        *RegionExistsError, *LockError, *InvalidKeyError, *LoadTimeoutError,
        *ForkError, *TiersUnavailableError, *TierError;
    /* callable(region) run for every region a SharedCache opens, or NULL:
     * cachee/__init__.py registers fork hooks with it (_set_region_hook). */
    PyObject *region_hook;
} CacheeState;

/** The state of the imported module, found by its definition
 *  (PyState_FindModule, as msgspec does).  For error paths and
 *  construction only: no hot path needs it (a read or write that succeeds
 *  never calls it).  Valid with the GIL held while the module is imported,
 *  that is until the interpreter clears its module table at exit. */
CacheeState *cachee_state(void);

/* -------------------------------------------------------------- errors */

/** Raise the exception matching an engine return code; returns NULL. */
PyObject *raise_l0(int code, const char *context);
/** Look the exception classes up from cachee._errors into st (module
 *  init); 0, or -1 with an exception.  traverse and clear for the module's
 *  m_traverse and m_clear. */
int errors_init(CacheeState *st);
int errors_traverse(CacheeState *st, visitproc visit, void *arg);
void errors_clear(CacheeState *st);

/* ---------------------------------------------------------------- keys */

/** A key as bytes: borrowed from a str (UTF-8) or bytes object. */
typedef struct {
    const char *data;
    Py_ssize_t len;
} KeyBytes;

/** Raise InvalidKeyError (an empty key), KeyTooLargeError (key k).  Out of
 *  line, in errors.c: looking the module state up inside key_get would
 *  cost every caller a register (callgrind: two instructions a get). */
void key_empty_error(void);
void key_too_large_error(const KeyBytes *k);

/** Extract a key; 0 or -1 with TypeError/ValueError/KeyTooLargeError. */
static inline int key_get(PyObject *key, KeyBytes *k) {
    if (PyUnicode_CheckExact(key) || PyUnicode_Check(key)) {
        k->data = PyUnicode_AsUTF8AndSize(key, &k->len);
        if (k->data == NULL) return -1;
    } else if (PyBytes_Check(key)) {
        k->data = PyBytes_AS_STRING(key);
        k->len = PyBytes_GET_SIZE(key);
    } else {
        PyErr_Format(PyExc_TypeError, "cachee keys are str or bytes, not %.100s",
                     Py_TYPE(key)->tp_name);
        return -1;
    }
    if (k->len == 0) {
        key_empty_error();
        return -1;
    }
    if ((size_t)k->len > CACHEE_L0_KEY_MAX) {
        key_too_large_error(k);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------- SharedCache */

typedef struct {
    PyObject *arr;   /* ndarray whose base is a View; NULL when empty */
    PyObject *key;   /* the key it was read for (str or bytes) */
    uint64_t hash;   /* cachee_l0_hash of the key */
    uint64_t loc;    /* identity of the stored version */
    uint32_t gen;
    int64_t expires_ns;
} VCacheEntry;

typedef struct {
    PyObject_HEAD
    RegionObject *region; /* NULL once closed */
    cachee_l0 *h;         /* region->h, NULL once closed */
    VCacheEntry *vcache;
    uint32_t vcache_mask; /* size - 1, or UINT32_MAX when disabled */
    uint32_t sweep;       /* next entry checked for staleness */
    PyObject *weakreflist;
    uint64_t l1_bytes;    /* L1 capacity asked for; 0: no tiers */
    int allow_foreign;    /* passed on to the tiers */
    int promote;          /* 0 tinylfu, 1 always, 2 never (passed on) */
    uint64_t tier_h;      /* libcachee handle (cachee_t) once opened here */
} CacheObject;

extern PyTypeObject SharedCache_Type;
/* Its methods and what their files share: cache.h. */

#endif
