/*
 * module.c -- the cachee._cachee extension module: its state, the module
 * functions (one table), and the types of this directory.  Importing it
 * starts no thread and loads no Go runtime (the tiers beyond L0 are loaded
 * lazily: tiers.c).
 *
 * State.  What the module keeps lives in its state (CacheeState, ext.h):
 * the exception classes and the region hook.  cachee_state() finds it by
 * the module's definition, as msgspec does; only error paths and
 * construction call it, so no read or write that succeeds pays for the
 * lookup.  The types stay static: a heap type would have get_numpy look its
 * View type up in the state on every hit, and the module keeps single-phase
 * initialisation (one instance per process), as before.
 */
#include "ext.h"
#include "tiers.h"

static struct PyModuleDef module_def;

CacheeState *cachee_state(void) {
    return (CacheeState *)PyModule_GetState(PyState_FindModule(&module_def));
}

static PyObject *mod_unlink(PyObject *m, PyObject *path) {
    (void)m;
    PyObject *b = NULL;
    if (!PyUnicode_FSConverter(path, &b)) return NULL;
    int rc = cachee_l0_unlink(PyBytes_AS_STRING(b));
    if (rc != 0) {
        raise_l0(rc, PyBytes_AS_STRING(b));
        Py_DECREF(b);
        return NULL;
    }
    Py_DECREF(b);
    Py_RETURN_NONE;
}

static PyObject *mod_hash(PyObject *m, PyObject *key) {
    (void)m;
    KeyBytes k;
    if (key_get(key, &k) < 0) return NULL;
    return PyLong_FromUnsignedLongLong(cachee_l0_hash(k.data, (size_t)k.len));
}

static PyObject *mod_set_region_hook(PyObject *m, PyObject *fn) {
    CacheeState *st = PyModule_GetState(m);
    Py_XINCREF(fn);
    Py_XSETREF(st->region_hook, fn == Py_None ? (Py_DECREF(fn), NULL) : fn);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"unlink", (PyCFunction)mod_unlink, METH_O,
     "unlink(path)\n\nRemove a region's name (a bare name means /dev/shm/NAME).  "
     "Refuses files that are not cachee regions."},
    {"key_hash", (PyCFunction)mod_hash, METH_O,
     "key_hash(key) -> int\n\nXXH3-64 of the key's bytes (str keys as UTF-8): the hash "
     "every cachee implementation uses."},
    {"_tiers_state", (PyCFunction)tiers_state, METH_NOARGS,
     "Internal: whether libcachee.so is loaded in this process, by which pid, "
     "whether this is a fork child of that process, the path, the load error."},
    {"_tiers_goroutines", (PyCFunction)tiers_goroutines, METH_NOARGS,
     "Internal: (goroutines, open tier handles) of libcachee, or None."},
    {"_set_region_hook", (PyCFunction)mod_set_region_hook, METH_O,
     "Internal: callable(region) run for every region opened (fork hooks)."},
    {NULL, NULL, 0, NULL},
};

static int module_traverse(PyObject *m, visitproc visit, void *arg) {
    CacheeState *st = PyModule_GetState(m);
    Py_VISIT(st->region_hook);
    return errors_traverse(st, visit, arg);
}

static int module_clear(PyObject *m) {
    CacheeState *st = PyModule_GetState(m);
    Py_CLEAR(st->region_hook);
    errors_clear(st);
    return 0;
}

static void module_free(void *m) { module_clear((PyObject *)m); }

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "cachee._cachee",
    .m_doc = "Native core of cachee: the shared-memory engine and its Python types.",
    .m_size = sizeof(CacheeState),
    .m_methods = module_methods,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

static int add_type(PyObject *m, PyTypeObject *t, const char *name) {
    if (PyType_Ready(t) < 0) return -1;
    Py_INCREF(t);
    if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
        Py_DECREF(t);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__cachee(void) {
    /* Imported again (after del sys.modules[...]): the module made the
     * first time, with its state (as m_size = -1 gave back its objects). */
    PyObject *m = PyState_FindModule(&module_def);
    if (m != NULL) {
        Py_INCREF(m);
        return m;
    }
    /* numpy is imported lazily (see npy.c). */
    m = PyModule_Create(&module_def);
    if (m == NULL) return NULL;
    if (errors_init(PyModule_GetState(m)) < 0 ||
        add_type(m, &Region_Type, "_Region") < 0 || add_type(m, &View_Type, "View") < 0 ||
        add_type(m, &SharedCache_Type, "SharedCache") < 0 ||
        PyModule_AddIntConstant(m, "KEY_MAX", CACHEE_L0_KEY_MAX) < 0 ||
        PyModule_AddIntConstant(m, "META_MAX", CACHEE_L0_META_MAX) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
