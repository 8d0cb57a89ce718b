/*
 * errors.c -- engine return codes to Python exceptions.  The classes are
 * defined in cachee/_errors.py and looked up once at import, into the
 * module's state (CacheeState, ext.h).
 */
#include <errno.h>

#include "ext.h"

#define ERROR_CLASS(name) {offsetof(CacheeState, name), #name}

/* The classes of cachee._errors the state holds, by name. */
static const struct {
    size_t offset;
    const char *name;
} error_classes[] = {
    ERROR_CLASS(CacheError),
    ERROR_CLASS(ClosedError),
    ERROR_CLASS(MismatchError),
    ERROR_CLASS(KeyTooLargeError),
    ERROR_CLASS(ValueTooLargeError),
    ERROR_CLASS(CacheFullError),
    ERROR_CLASS(TooManyPinsError),
    ERROR_CLASS(TooManyProcessesError),
    ERROR_CLASS(NotARegionError),
    ERROR_CLASS(FormatError),
    ERROR_CLASS(CorruptRegionError),
    ERROR_CLASS(RegionSizeError),
    ERROR_CLASS(RegionOwnerError),
    ERROR_CLASS(LoosePermissionsError),
    ERROR_CLASS(UnsafePathError),
    ERROR_CLASS(NotSharedMemoryError),
    ERROR_CLASS(NoSpaceError),
    ERROR_CLASS(NotReadyError),
    ERROR_CLASS(RegionNotFoundError),
    ERROR_CLASS(RegionExistsError),
    ERROR_CLASS(LockError),
    ERROR_CLASS(InvalidKeyError),
    ERROR_CLASS(LoadTimeoutError),
    ERROR_CLASS(ForkError),
    ERROR_CLASS(TiersUnavailableError),
    ERROR_CLASS(TierError),
};
#define N_ERROR_CLASSES (sizeof error_classes / sizeof error_classes[0])

static PyObject **error_slot(CacheeState *st, size_t i) {
    return (PyObject **)((char *)st + error_classes[i].offset);
}

int errors_init(CacheeState *st) {
    PyObject *m = PyImport_ImportModule("cachee._errors");
    if (m == NULL) return -1;
    for (size_t i = 0; i < N_ERROR_CLASSES; i++) {
        PyObject **slot = error_slot(st, i);
        *slot = PyObject_GetAttrString(m, error_classes[i].name);
        if (*slot == NULL) {
            Py_DECREF(m);
            return -1;
        }
    }
    Py_DECREF(m);
    return 0;
}

int errors_traverse(CacheeState *st, visitproc visit, void *arg) {
    for (size_t i = 0; i < N_ERROR_CLASSES; i++) Py_VISIT(*error_slot(st, i));
    return 0;
}

void errors_clear(CacheeState *st) {
    for (size_t i = 0; i < N_ERROR_CLASSES; i++) Py_CLEAR(*error_slot(st, i));
}

void key_empty_error(void) {
    PyErr_SetString(cachee_state()->InvalidKeyError, "cachee keys must not be empty");
}

void key_too_large_error(const KeyBytes *k) {
    PyErr_Format(cachee_state()->KeyTooLargeError,
                 "key of %zd bytes is longer than the limit of %u bytes",
                 k->len, CACHEE_L0_KEY_MAX);
}

PyObject *raise_l0(int code, const char *context) {
    CacheeState *st = cachee_state();
    PyObject *type = st->CacheError;
    switch (code) {
    case CACHEE_L0_E_INVAL: type = PyExc_ValueError; break;
    case CACHEE_L0_E_KEY_TOO_LARGE: type = st->KeyTooLargeError; break;
    case CACHEE_L0_E_VALUE_TOO_LARGE:
    case CACHEE_L0_E_META_TOO_LARGE: type = st->ValueTooLargeError; break;
    case CACHEE_L0_E_FULL: type = st->CacheFullError; break;
    case CACHEE_L0_E_TOO_MANY_PINS: type = st->TooManyPinsError; break;
    case CACHEE_L0_E_TOO_MANY_PROCS: type = st->TooManyProcessesError; break;
    case CACHEE_L0_E_NOT_REGION: type = st->NotARegionError; break;
    case CACHEE_L0_E_FORMAT: type = st->FormatError; break;
    case CACHEE_L0_E_CORRUPT: type = st->CorruptRegionError; break;
    case CACHEE_L0_E_SIZE:
    case CACHEE_L0_E_SIZE_MISMATCH: type = st->RegionSizeError; break;
    case CACHEE_L0_E_OWNER: type = st->RegionOwnerError; break;
    case CACHEE_L0_E_MODE: type = st->LoosePermissionsError; break;
    case CACHEE_L0_E_UNSAFE_PATH:
    case CACHEE_L0_E_BAD_PATH: type = st->UnsafePathError; break;
    case CACHEE_L0_E_NOT_SHM: type = st->NotSharedMemoryError; break;
    case CACHEE_L0_E_NO_SPACE: type = st->NoSpaceError; break;
    case CACHEE_L0_E_NOT_READY: type = st->NotReadyError; break;
    case CACHEE_L0_E_NO_REGION: type = st->RegionNotFoundError; break;
    case CACHEE_L0_E_REGION_EXISTS: type = st->RegionExistsError; break;
    case CACHEE_L0_E_LOCK: type = st->LockError; break;
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
