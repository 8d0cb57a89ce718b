/*
 * npy.c -- the numpy C API, imported the first time an array is asked for.
 * `import cachee` does not import numpy: numpy loads OpenBLAS, which starts a
 * thread pool, and cachee promises that importing it starts no thread.
 */
#define CACHEE_NPY_OWNER
#include "ext.h"
#include "npy.h"

static int imported;

int numpy_ready(void) {
    if (imported) return 0;
    if (_import_array() < 0) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_Format(PyExc_ImportError,
                     "cachee needs numpy for arrays (pip install numpy): %S",
                     value ? value : Py_None);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return -1;
    }
    imported = 1;
    return 0;
}
