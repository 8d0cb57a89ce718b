/*
 * errors.c -- descriptions of the engine's return codes.
 */
#include "l0_internal.h"

#include <stdarg.h>
#include <stdio.h>

const char *cachee_l0_strerror(int code) {
    switch (code) {
    case CACHEE_L0_OK: return "success";
    case CACHEE_L0_NOTFOUND: return "key not found";
    case CACHEE_L0_EXISTS: return "key already present";
    case CACHEE_L0_STALE:
        return "the key was written since the copy was read (or it expired)";
    case CACHEE_L0_E_INVAL: return "invalid argument";
    case CACHEE_L0_E_KEY_TOO_LARGE: return "key longer than 65535 bytes";
    case CACHEE_L0_E_VALUE_TOO_LARGE:
        return "value longer than this region accepts (see value_max)";
    case CACHEE_L0_E_META_TOO_LARGE: return "metadata longer than 4096 bytes";
    case CACHEE_L0_E_FULL:
        return "region full: the space left is pinned by live views or being "
               "written; release views or use a larger region";
    case CACHEE_L0_E_TOO_MANY_PINS:
        return "too many pins: this process holds 65535 views on one segment";
    case CACHEE_L0_E_TOO_MANY_PROCS:
        return "every process slot of the region belongs to a live process "
               "(raise max_procs when creating it)";
    case CACHEE_L0_E_NOT_REGION: return "file is not a cachee region";
    case CACHEE_L0_E_FORMAT:
        return "region was created by an incompatible version of cachee "
               "(format mismatch); unlink it or use another path";
    case CACHEE_L0_E_CORRUPT: return "region is corrupt (failed validation)";
    case CACHEE_L0_E_SIZE:
        return "invalid region size or parameters (at least 1 MiB, at most "
               "16 TiB, room for 8 segments)";
    case CACHEE_L0_E_SIZE_MISMATCH:
        return "existing region has a different size than requested";
    case CACHEE_L0_E_OWNER: return "region file is owned by another user";
    case CACHEE_L0_E_MODE:
        return "region file permissions are wider than the requested mode";
    case CACHEE_L0_E_UNSAFE_PATH:
        return "region path is a symbolic link, not a regular file, or has "
               "hard links";
    case CACHEE_L0_E_NOT_SHM:
        return "region path is not on tmpfs or hugetlbfs";
    case CACHEE_L0_E_NO_SPACE:
        return "not enough space on the filesystem for the region (in Docker "
               "raise --shm-size; /dev/shm is 64 MiB by default)";
    case CACHEE_L0_E_NOT_READY:
        return "region was not finished by its creator in time (or its "
               "creator died)";
    case CACHEE_L0_E_BUFFER_TOO_SMALL: return "buffer too small for the value";
    case CACHEE_L0_E_RETRY: return "value changed during an optimistic read";
    case CACHEE_L0_E_BAD_PIN: return "view is not pinned (released twice?)";
    case CACHEE_L0_E_NO_REGION: return "region does not exist";
    case CACHEE_L0_E_REGION_EXISTS: return "region already exists";
    case CACHEE_L0_E_BAD_PATH: return "invalid region path or name";
    case CACHEE_L0_E_LOCK: return "a region lock is unrecoverable";
    case CACHEE_L0_E_BUSY:
        return "the loader lock of this key is held by another process or "
               "thread (it is computing the value)";
    default: break;
    }
    if (code > 0) return strerror(code);
    return "unknown cachee error code";
}

int l0_fail(char *msg, size_t cap, const char *fmt, ...) {
    if (msg && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, cap, fmt, ap);
        va_end(ap);
    }
    return CACHEE_L0_E_CORRUPT;
}
