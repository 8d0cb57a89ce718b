/*
 * cache_type.c -- the SharedCache type: construction (arguments, engine
 * options, opening the region), the classmethod open(), dealloc, GC
 * support, repr, the getset, the one method table and the type object.
 * The methods themselves are in cache_read.c, cache_write.c,
 * cache_admin.c, batch.c and loaders.c (declared in cache.h).
 */
#include <math.h>

#include "cache.h"
#include "tiers.h"
#include "vcache.h"

/* -------------------------------------------------------- construction */

/* What SharedCache(...) was called with (the type's docstring lists them),
 * and what the tiers' arguments turn into. */
typedef struct {
    PyObject *path, *size_gb, *size_bytes, *l1; /* borrowed */
    unsigned int mode, segment_size, max_procs;
    int create, huge, foreign, loose, anyfs;
    unsigned long long max_entries;
    double timeout;
    int view_cache;
    const char *promote;
    int promote_i;     /* l1_promote: 0 tinylfu, 1 always, 2 never */
    uint64_t l1_bytes; /* l1_bytes, 0 for None */
} CacheArgs;

/* l1_promote by name; -1 with ValueError. */
static int promote_of(const char *promote) {
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
    return promote_i;
}

/* l1_bytes: None (0) or an int of bytes up to 2**50.  0, or -1 with an
 * exception. */
static int l1_bytes_of(PyObject *l1, uint64_t *out) {
    *out = 0;
    if (l1 == Py_None) return 0;
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
    *out = (uint64_t)v;
    return 0;
}

/* Parse SharedCache's arguments into *a, l1_promote and l1_bytes checked.
 * 0, or -1 with an exception. */
static int parse_args(PyObject *args, PyObject *kw, CacheArgs *a) {
    static char *kwlist[] = {"path", "size_gb", "size_bytes", "mode", "create",
                             "max_entries", "segment_size", "max_procs", "huge_pages",
                             "allow_foreign_owner", "allow_loose_mode", "allow_any_fs",
                             "open_timeout", "view_cache", "l1_bytes", "l1_promote", NULL};
    *a = (CacheArgs){.path = NULL, .size_gb = NULL, .size_bytes = Py_None, .l1 = Py_None,
                     .mode = 0600, .create = 1, .timeout = 5.0, .view_cache = 1024,
                     .promote = "tinylfu"};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO$OIpKIIppppdiOs", kwlist, &a->path,
                                     &a->size_gb, &a->size_bytes, &a->mode, &a->create,
                                     &a->max_entries, &a->segment_size, &a->max_procs,
                                     &a->huge, &a->foreign, &a->loose, &a->anyfs,
                                     &a->timeout, &a->view_cache, &a->l1, &a->promote))
        return -1;
    if ((a->promote_i = promote_of(a->promote)) < 0) return -1;
    return l1_bytes_of(a->l1, &a->l1_bytes);
}

/* The engine's options for *a, checked.  *default_size is set when neither
 * size_gb nor size_bytes was given: attach to any size, create 2 GiB.  0,
 * or -1 with an exception. */
static int region_options(const CacheArgs *a, cachee_l0_options *o, int *default_size) {
    CacheeState *st = cachee_state();
    cachee_l0_options_init(o);
    *default_size = 0;
    if (a->size_bytes != Py_None) {
        o->size = PyLong_AsUnsignedLongLong(a->size_bytes);
        if (PyErr_Occurred()) {
            PyErr_SetString(st->RegionSizeError, "size_bytes must be a positive integer");
            return -1;
        }
    } else if (a->size_gb == NULL) {
        *default_size = 1; /* attach to any size; create 2 GiB */
    } else if (a->size_gb != Py_None) {
        double gb = PyFloat_AsDouble(a->size_gb);
        if (gb == -1.0 && PyErr_Occurred()) return -1;
        if (!(gb > 0) || !isfinite(gb) || gb > 16384.0) {
            PyErr_Format(st->RegionSizeError,
                         "size_gb must be a positive number of GiB up to 16384 (got %R)",
                         a->size_gb);
            return -1;
        }
        o->size = (uint64_t)(gb * (double)(1ull << 30));
    }
    if (a->mode > 0777) {
        PyErr_SetString(PyExc_ValueError, "mode must be permission bits (e.g. 0o600)");
        return -1;
    }
    if (!(a->timeout >= 0) || a->timeout > 3600) {
        PyErr_SetString(PyExc_ValueError, "open_timeout must be 0..3600 seconds");
        return -1;
    }
    if (a->view_cache < 0 || a->view_cache > (1 << 20)) {
        PyErr_SetString(PyExc_ValueError, "view_cache must be 0..1048576");
        return -1;
    }
    o->mode = a->mode;
    o->flags = (a->create ? CACHEE_L0_CREATE : 0) | (a->huge ? CACHEE_L0_HUGEPAGES : 0) |
               (a->foreign ? CACHEE_L0_ALLOW_FOREIGN_OWNER : 0) |
               (a->loose ? CACHEE_L0_ALLOW_LOOSE_MODE : 0) |
               (a->anyfs ? CACHEE_L0_ALLOW_ANY_FS : 0);
    o->max_entries = a->max_entries;
    o->segment_size = a->segment_size;
    o->max_procs = a->max_procs;
    o->open_timeout_ms = (uint32_t)(a->timeout * 1000.0);
    return 0;
}

/* The path argument (default /dev/shm/cachee) as file-system bytes (new
 * reference), or NULL with an exception. */
static PyObject *path_bytes(PyObject *path) {
    if (path == NULL) path = PyUnicode_FromString("/dev/shm/cachee");
    else Py_INCREF(path);
    if (path == NULL) return NULL;
    PyObject *pb = NULL;
    int ok = PyUnicode_FSConverter(path, &pb);
    Py_DECREF(path);
    return ok ? pb : NULL;
}

/* Open the region at path with options o.  Without a size, create=True
 * attaches to what exists, or (default_size) creates 2 GiB when nothing
 * does.  The errors say what to do: a missing region that needs a size, an
 * existing one of another size. */
static RegionObject *open_region(const char *path, const cachee_l0_options *opts,
                                 int create, int default_size) {
    CacheeState *st = cachee_state();
    cachee_l0_options o = *opts;
    if (create && o.size == 0) {
        /* Attach to whatever exists; creating needs a size. */
        o.flags &= ~CACHEE_L0_CREATE;
    }
    RegionObject *r = region_open(path, &o);
    if (r == NULL && create && default_size &&
        PyErr_ExceptionMatches(st->RegionNotFoundError)) {
        /* Nothing there: create it with the default size.  If another
         * process created one meanwhile, attach to that one. */
        PyErr_Clear();
        cachee_l0_options oc = o;
        oc.size = 2ull << 30;
        oc.flags |= CACHEE_L0_CREATE;
        r = region_open(path, &oc);
        if (r == NULL && PyErr_ExceptionMatches(st->RegionSizeError)) {
            PyErr_Clear();
            r = region_open(path, &o);
        }
    }
    if (r == NULL && create && o.size == 0 && !default_size &&
        PyErr_ExceptionMatches(st->RegionNotFoundError)) {
        PyErr_Clear();
        PyErr_Format(st->RegionSizeError,
                     "%s does not exist, and creating it needs size_gb or size_bytes",
                     path);
    } else if (r == NULL && PyErr_ExceptionMatches(st->RegionSizeError) && o.size) {
        /* Say what exists when the size differs. */
        cachee_l0_options any;
        cachee_l0_options_init(&any);
        any.flags = o.flags & ~CACHEE_L0_CREATE;
        any.mode = o.mode;
        cachee_l0 *tmp = NULL;
        if (cachee_l0_open(path, &any, &tmp) == 0) {
            cachee_l0_info in;
            cachee_l0_info_get(tmp, &in);
            cachee_l0_close(tmp);
            PyErr_Clear();
            PyErr_Format(st->RegionSizeError,
                         "the region at %s already exists with %llu bytes, not the "
                         "%llu asked for: open it with size_gb=None, or unlink it",
                         path, (unsigned long long)in.region_size,
                         (unsigned long long)o.size);
        }
    }
    return r;
}

/* Make c the cache of region r (takes the reference): its tiers' settings,
 * demotion, the view cache, then the region hook (fork hooks). */
static int cache_attach(CacheObject *c, RegionObject *r, const CacheArgs *a) {
    c->region = r;
    c->h = r->h;
    c->l1_bytes = a->l1_bytes;
    c->allow_foreign = a->foreign;
    c->promote = a->promote_i;
    c->tier_h = 0;
    if (a->l1_bytes > 0 && tiers_demote_setup(c) < 0) return -1;
    if (vcache_alloc(c, a->view_cache) < 0) return -1;
    PyObject *hook = cachee_state()->region_hook;
    if (hook) {
        PyObject *res = PyObject_CallOneArg(hook, (PyObject *)r);
        if (res == NULL) return -1;
        Py_DECREF(res);
    }
    return 0;
}

static int cache_init(CacheObject *c, PyObject *args, PyObject *kw) {
    CacheArgs a;
    if (parse_args(args, kw, &a) < 0) return -1;
    if (c->region) cache_release(c); /* __init__ called twice */
    cachee_l0_options o;
    int default_size;
    if (region_options(&a, &o, &default_size) < 0) return -1;
    PyObject *pb = path_bytes(a.path);
    if (pb == NULL) return -1;
    RegionObject *r = open_region(PyBytes_AS_STRING(pb), &o, a.create, default_size);
    Py_DECREF(pb);
    if (r == NULL) return -1;
    return cache_attach(c, r, &a);
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

/* ------------------------------------------------------ the object */

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
    cache_release(c);
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

/* ---------------------------------------------------------- the type */

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
