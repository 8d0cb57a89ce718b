/*
 * npy.h -- include the numpy C API the same way in every file of the
 * extension (the table is defined in npy.c).
 */
#ifndef CACHEE_NPY_H
#define CACHEE_NPY_H
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL cachee_ARRAY_API
#ifndef CACHEE_NPY_OWNER
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>
#endif
