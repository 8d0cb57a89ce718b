/*
 * module.c -- the cachee._cachee extension module: registers the types of
 * this directory and the module functions (one table).  Importing it starts
 * no thread and loads no Go runtime (the tiers beyond L0 are loaded lazily:
 * tiers.c).
 */
#include "ext.h"
#include "tiers.h"

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
    {"_set_region_hook", (PyCFunction)cache_set_region_hook, METH_O,
     "Internal: callable(region) run for every region opened (fork hooks)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "cachee._cachee",
    .m_doc = "Native core of cachee: the shared-memory engine and its Python types.",
    .m_size = -1,
    .m_methods = module_methods,
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
    /* numpy is imported lazily (see _ext/npy.c). */
    if (errors_init() < 0) return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL) return NULL;
    if (add_type(m, &Region_Type, "_Region") < 0 || add_type(m, &View_Type, "View") < 0 ||
        add_type(m, &SharedCache_Type, "SharedCache") < 0 ||
        PyModule_AddIntConstant(m, "KEY_MAX", CACHEE_L0_KEY_MAX) < 0 ||
        PyModule_AddIntConstant(m, "META_MAX", CACHEE_L0_META_MAX) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
