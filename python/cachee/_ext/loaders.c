/*
 * loaders.c -- the native half of SharedCache.get_or_load and memoize.
 *
 * _load_lock(key, timeout) waits, with the GIL released, until either the
 * key is in L0 (returns -1) or this thread holds the key's loader lock
 * (returns the token, >= 0); it polls L0 and retries the lock with a backoff
 * of 1 ms doubling to 10 ms, and raises LoadTimeoutError at the deadline.
 * Signals are checked between slices of at most 50 ms, so Ctrl-C interrupts
 * a wait.  _load_unlock(token) releases.  The loader locks are the engine's
 * (cachee_l0_load_trylock): per key, across processes and threads, dropped
 * by the kernel when their holder dies.
 *
 * get_or_load and memoize forward to cachee/_loaders.py, which calls fn and
 * stores its value; Python is where exceptions, callables and serializers
 * are easiest to get right.
 */
#include <errno.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
    if (s <= 0) return;
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL); /* a signal cuts it short: we check them soon */
}

#define SLICE_S 0.05
#define BACKOFF_MIN_S 0.001
#define BACKOFF_MAX_S 0.010

PyObject *cache_load_lock(CacheObject *c, PyObject *args) {
    PyObject *key;
    double timeout;
    if (!PyArg_ParseTuple(args, "Od:_load_lock", &key, &timeout)) return NULL;
    if (cache_check_open(c) < 0) return NULL;
    KeyBytes k;
    if (key_get(key, &k) < 0) return NULL;
    if (isnan(timeout)) {
        PyErr_SetString(PyExc_ValueError, "timeout must be a number of seconds");
        return NULL;
    }
    /* Keep the region (and so the engine handle) alive while the GIL is
     * released, even if another thread closes the cache meanwhile. */
    RegionObject *region = c->region;
    Py_INCREF(region);
    cachee_l0 *h = region->h;
    uint64_t hash = cachee_l0_hash(k.data, (size_t)k.len);
    double start = mono_now();
    double deadline = timeout < 0 || isinf(timeout) ? INFINITY : start + timeout;
    double backoff = BACKOFF_MIN_S;
    PyObject *result = NULL;
    for (;;) {
        int rc = 0, tok = -1, present = 0, timed_out = 0;
        Py_BEGIN_ALLOW_THREADS
        double slice_end = mono_now() + SLICE_S;
        for (;;) {
            int cr = cachee_l0_contains(h, k.data, (size_t)k.len);
            if (cr == 1) {
                present = 1;
                break;
            }
            if (cr < 0) {
                rc = cr;
                break;
            }
            rc = cachee_l0_load_trylock(h, hash, &tok);
            if (rc != CACHEE_L0_E_BUSY) break;
            double now = mono_now();
            if (now >= deadline) {
                timed_out = 1;
                break;
            }
            if (now >= slice_end) break; /* check signals, then go on */
            double nap = backoff;
            if (nap > deadline - now) nap = deadline - now;
            sleep_s(nap);
            backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
        }
        Py_END_ALLOW_THREADS
        if (present) {
            result = PyLong_FromLong(-1);
            break;
        }
        if (rc == 0) {
            result = PyLong_FromLong(tok);
            if (result == NULL) cachee_l0_load_unlock(h, tok);
            break;
        }
        if (timed_out) {
            PyErr_Format(cachee_state()->LoadTimeoutError,
                         "waited %ld ms for another process or thread to compute the "
                         "value of key %R; it neither appeared nor did the loader "
                         "become free (raise timeout=, or look for a stuck loader)",
                         (long)((mono_now() - start) * 1000.0), key);
            break;
        }
        if (rc != CACHEE_L0_E_BUSY) {
            raise_l0(rc, "loader lock");
            break;
        }
        if (PyErr_CheckSignals() < 0) break;
    }
    Py_DECREF(region);
    return result;
}

PyObject *cache_load_unlock(CacheObject *c, PyObject *args) {
    int tok;
    if (!PyArg_ParseTuple(args, "i:_load_unlock", &tok)) return NULL;
    /* Unlocking must work even after close(): then the descriptor is closed
     * directly (the lock goes with it). */
    if (c->h == NULL) {
        if (tok >= 0) close(tok);
        Py_RETURN_NONE;
    }
    int rc = cachee_l0_load_unlock(c->h, tok);
    if (rc != 0) return raise_l0(rc, "loader unlock");
    Py_RETURN_NONE;
}

/* Forward SharedCache.NAME(*args, **kw) to cachee._loaders.NAME(self, ...). */
static PyObject *forward(CacheObject *c, const char *name, PyObject *args, PyObject *kw) {
    static PyObject *mod;
    if (mod == NULL) {
        mod = PyImport_ImportModule("cachee._loaders");
        if (mod == NULL) return NULL;
    }
    PyObject *fn = PyObject_GetAttrString(mod, name);
    if (fn == NULL) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *full = PyTuple_New(n + 1);
    if (full == NULL) {
        Py_DECREF(fn);
        return NULL;
    }
    Py_INCREF(c);
    PyTuple_SET_ITEM(full, 0, (PyObject *)c);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = PyTuple_GET_ITEM(args, i);
        Py_INCREF(a);
        PyTuple_SET_ITEM(full, i + 1, a);
    }
    PyObject *res = PyObject_Call(fn, full, kw);
    Py_DECREF(full);
    Py_DECREF(fn);
    return res;
}

PyObject *cache_get_or_load(CacheObject *c, PyObject *args, PyObject *kw) {
    return forward(c, "get_or_load", args, kw);
}

PyObject *cache_memoize(CacheObject *c, PyObject *args, PyObject *kw) {
    return forward(c, "memoize", args, kw);
}
