/*
 * errors.c -- engine return codes to Python exceptions.  The classes are
 * defined in cachee/_errors.py and looked up once at import.
 */
#include <errno.h>

#include "ext.h"

ErrorTypes errors;

int errors_init(void) {
    PyObject *m = PyImport_ImportModule("cachee._errors");
    if (m == NULL) return -1;
    struct {
        PyObject **slot;
        const char *name;
    } table[] = {
        {&errors.CacheError, "CacheError"},
        {&errors.ClosedError, "ClosedError"},
        {&errors.MismatchError, "MismatchError"},
        {&errors.KeyTooLargeError, "KeyTooLargeError"},
        {&errors.ValueTooLargeError, "ValueTooLargeError"},
        {&errors.CacheFullError, "CacheFullError"},
        {&errors.TooManyPinsError, "TooManyPinsError"},
        {&errors.TooManyProcessesError, "TooManyProcessesError"},
        {&errors.NotARegionError, "NotARegionError"},
        {&errors.FormatError, "FormatError"},
        {&errors.CorruptRegionError, "CorruptRegionError"},
        {&errors.RegionSizeError, "RegionSizeError"},
        {&errors.RegionOwnerError, "RegionOwnerError"},
        {&errors.LoosePermissionsError, "LoosePermissionsError"},
        {&errors.UnsafePathError, "UnsafePathError"},
        {&errors.NotSharedMemoryError, "NotSharedMemoryError"},
        {&errors.NoSpaceError, "NoSpaceError"},
        {&errors.NotReadyError, "NotReadyError"},
        {&errors.RegionNotFoundError, "RegionNotFoundError"},
        {&errors.RegionExistsError, "RegionExistsError"},
        {&errors.LockError, "LockError"},
        {&errors.InvalidKeyError, "InvalidKeyError"},
        {&errors.LoadTimeoutError, "LoadTimeoutError"},
        {&errors.ForkError, "ForkError"},
        {&errors.TiersUnavailableError, "TiersUnavailableError"},
        {&errors.TierError, "TierError"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        *table[i].slot = PyObject_GetAttrString(m, table[i].name);
        if (*table[i].slot == NULL) {
            Py_DECREF(m);
            return -1;
        }
    }
    Py_DECREF(m);
    return 0;
}

PyObject *raise_l0(int code, const char *context) {
    PyObject *type = errors.CacheError;
    switch (code) {
    case CACHEE_L0_E_INVAL: type = PyExc_ValueError; break;
    case CACHEE_L0_E_KEY_TOO_LARGE: type = errors.KeyTooLargeError; break;
    case CACHEE_L0_E_VALUE_TOO_LARGE:
    case CACHEE_L0_E_META_TOO_LARGE: type = errors.ValueTooLargeError; break;
    case CACHEE_L0_E_FULL: type = errors.CacheFullError; break;
    case CACHEE_L0_E_TOO_MANY_PINS: type = errors.TooManyPinsError; break;
    case CACHEE_L0_E_TOO_MANY_PROCS: type = errors.TooManyProcessesError; break;
    case CACHEE_L0_E_NOT_REGION: type = errors.NotARegionError; break;
    case CACHEE_L0_E_FORMAT: type = errors.FormatError; break;
    case CACHEE_L0_E_CORRUPT: type = errors.CorruptRegionError; break;
    case CACHEE_L0_E_SIZE:
    case CACHEE_L0_E_SIZE_MISMATCH: type = errors.RegionSizeError; break;
    case CACHEE_L0_E_OWNER: type = errors.RegionOwnerError; break;
    case CACHEE_L0_E_MODE: type = errors.LoosePermissionsError; break;
    case CACHEE_L0_E_UNSAFE_PATH:
    case CACHEE_L0_E_BAD_PATH: type = errors.UnsafePathError; break;
    case CACHEE_L0_E_NOT_SHM: type = errors.NotSharedMemoryError; break;
    case CACHEE_L0_E_NO_SPACE: type = errors.NoSpaceError; break;
    case CACHEE_L0_E_NOT_READY: type = errors.NotReadyError; break;
    case CACHEE_L0_E_NO_REGION: type = errors.RegionNotFoundError; break;
    case CACHEE_L0_E_REGION_EXISTS: type = errors.RegionExistsError; break;
    case CACHEE_L0_E_LOCK: type = errors.LockError; break;
    default: break;
    }
    if (code > 0) {
        errno = code;
        PyErr_SetFromErrno(PyExc_OSError);
        return NULL;
    }
    if (context)
        PyErr_Format(type, "%s: %s", context, cachee_l0_strerror(code));
    else
        PyErr_SetString(type, cachee_l0_strerror(code));
    return NULL;
}
