/*
 * tiers.c -- the tiers beyond L0 (L1 today), through libcachee.so, the Go
 * core (include/cachee.h), loaded lazily and fork-safely.
 *
 * WHY LAZILY.  Loading libcachee.so starts a Go runtime, and a Go runtime
 * does not survive fork() without exec (ARCHITECTURE.md).  So the library is
 * dlopen'ed the first time a process NEEDS a tier: a read that misses L0 on
 * a cache configured with l1_bytes.  Never at import, never when a
 * SharedCache is constructed (l1_bytes or not), never for a write (a process
 * that never loaded the tiers has an empty L1 and nothing to invalidate).
 *
 * FORK.  The pid that loaded the library is recorded and a pthread_atfork
 * child handler (registered when the library is loaded, not before) marks
 * every child: there, L0 keeps working and every operation that would need
 * the tiers raises cachee.ForkError, which says what to do.  Writes in such
 * a child reach L0 only (its L1, a copy of the parent's memory, can never be
 * read).  A process forked BEFORE any tier was used loads its own runtime
 * at its first miss (the gunicorn --preload model: configure at import,
 * use after fork).
 *
 * WHERE.  libcachee.so next to this extension module (the cachee package
 * directory), or the file named by CACHEE_LIBCACHEE.  Missing: the build had
 * no Go toolchain; TiersUnavailableError says how to get it.
 *
 * THREADS.  Every call into libcachee runs with the GIL released.  Loading
 * and opening are serialised by one process-wide mutex.  Handles are integers
 * that libcachee never reuses, and cachee_close waits for calls in flight, so
 * a close() racing a read in another thread yields ClosedError, never a
 * use-after-free.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "cachee.h"
#include "ext.h"
#include "npy.h"
#include "tiers.h"

typedef struct {
    int (*abi_version)(void);
    int (*open)(const char *, size_t, cachee_t *);
    int (*close)(cachee_t);
    int (*get)(cachee_t, const void *, size_t, uint32_t, cachee_value *);
    void (*value_free)(cachee_value *);
    int (*set)(cachee_t, const void *, size_t, const void *, size_t, const void *, size_t,
               int64_t, uint32_t);
    int (*del)(cachee_t, const void *, size_t);
    int (*stats)(cachee_t, char *, size_t, size_t *);
    int (*last_error)(cachee_t, char *, size_t, size_t *);
    int (*demote)(cachee_t, const cachee_record *, size_t, size_t *);
    int64_t (*open_handles)(void);
    int64_t (*goroutines)(void);
} TierApi;

static pthread_mutex_t tier_mu = PTHREAD_MUTEX_INITIALIZER;
static TierApi api;
static void *tier_lib;              /* dlopen handle; never closed (Go cannot unload) */
static int tier_ok;                 /* symbols resolved and ABI accepted */
static pid_t tier_pid;              /* the process that loaded it */
static volatile int tier_forked;    /* set in every fork() child after loading */
static int atfork_done;
static char tier_err[1024];         /* why loading failed (sticky) */
static char tier_path[4096];        /* the file loaded (or tried) */

static void tier_child(void) { tier_forked = 1; }

int tiers_forked(void) { return tier_forked; }

/* The directory of this extension module: libcachee.so lives beside it. */
static int lib_path(char *out, size_t cap) {
    const char *env = getenv("CACHEE_LIBCACHEE");
    if (env && env[0]) {
        snprintf(out, cap, "%s", env);
        return 0;
    }
    Dl_info info;
    if (dladdr((void *)&lib_path, &info) == 0 || info.dli_fname == NULL) return -1;
    const char *slash = strrchr(info.dli_fname, '/');
    size_t dir = slash ? (size_t)(slash - info.dli_fname) : 0;
    if (dir == 0)
        snprintf(out, cap, "./libcachee.so");
    else
        snprintf(out, cap, "%.*s/libcachee.so", (int)dir, info.dli_fname);
    return 0;
}

/* Load the library once per process (tier_mu held, GIL released). */
static void load_locked(void) {
    if (tier_lib != NULL || tier_err[0]) return;
    if (lib_path(tier_path, sizeof tier_path) < 0) {
        snprintf(tier_err, sizeof tier_err, "cannot locate the cachee package directory");
        return;
    }
    void *lib = dlopen(tier_path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *e = dlerror();
        snprintf(tier_err, sizeof tier_err, "%s", e ? e : "dlopen failed");
        return;
    }
    tier_lib = lib;
    tier_pid = getpid();
    if (!atfork_done) {
        pthread_atfork(NULL, NULL, tier_child);
        atfork_done = 1;
    }
    struct {
        void **slot;
        const char *name;
    } syms[] = {
        {(void **)&api.abi_version, "cachee_abi_version"},
        {(void **)&api.open, "cachee_open"},
        {(void **)&api.close, "cachee_close"},
        {(void **)&api.get, "cachee_get"},
        {(void **)&api.value_free, "cachee_value_free"},
        {(void **)&api.set, "cachee_set"},
        {(void **)&api.del, "cachee_delete"},
        {(void **)&api.stats, "cachee_stats"},
        {(void **)&api.last_error, "cachee_last_error"},
        {(void **)&api.demote, "cachee_demote"},
        {(void **)&api.open_handles, "cachee_open_handles"},
        {(void **)&api.goroutines, "cachee_goroutines"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        *syms[i].slot = dlsym(lib, syms[i].name);
        if (*syms[i].slot == NULL) {
            snprintf(tier_err, sizeof tier_err, "the library lacks the symbol %s (a "
                     "libcachee.so of another version?)", syms[i].name);
            return;
        }
    }
    int v = api.abi_version();
    if (v != CACHEE_ABI_VERSION) {
        snprintf(tier_err, sizeof tier_err, "the library has ABI version %d, this extension "
                 "needs %d (rebuild cachee so both come from one tree)", v,
                 CACHEE_ABI_VERSION);
        return;
    }
    tier_ok = 1;
}

static PyObject *raise_fork(void) {
    PyErr_Format(cachee_state()->ForkError,
                 "this process (pid %d) was forked from process %d after that process "
                 "had loaded cachee's tiers (libcachee.so, a Go runtime, which does not "
                 "survive fork()): L0 works here, the tiers cannot.  Configure the cache "
                 "(l1_bytes=...) at import if you like, but use it only after the fork "
                 "(e.g. gunicorn post_fork, Celery worker_process_init, or the first "
                 "request), or start workers with spawn/forkserver",
                 (int)getpid(), (int)tier_pid);
    return NULL;
}

static PyObject *raise_unavailable(void) {
    PyErr_Format(cachee_state()->TiersUnavailableError,
                 "l1_bytes needs libcachee.so (cachee's Go core), which could not be "
                 "loaded from %s: %s.  It is built by `pip install .` (or `python setup.py "
                 "build_ext --inplace`) when the Go toolchain (go 1.22+) is on PATH; "
                 "install Go and reinstall cachee, or use SharedCache without l1_bytes",
                 tier_path[0] ? tier_path : "the cachee package", tier_err);
    return NULL;
}

/* An error of libcachee as an exception (code < 0). */
static PyObject *raise_tier(cachee_t h, int code, const char *op) {
    char msg[1024];
    msg[0] = '\0';
    size_t n = 0;
    if (tier_ok && code != CACHEE_E_FORKED) api.last_error(h, msg, sizeof msg, &n);
    switch (code) {
    case CACHEE_E_FORKED: return raise_fork();
    case CACHEE_E_HANDLE:
        PyErr_SetString(cachee_state()->ClosedError,
                        "operation on a closed SharedCache (tiers)");
        return NULL;
    case CACHEE_E_INVALID:
        PyErr_Format(PyExc_ValueError, "%s: %s", op, msg[0] ? msg : "invalid argument");
        return NULL;
    case CACHEE_E_NOMEM:
        PyErr_Format(PyExc_MemoryError, "%s: %s", op, msg[0] ? msg : "out of memory");
        return NULL;
    default:
        PyErr_Format(cachee_state()->TierError, "%s failed (libcachee code %d): %s", op,
                     code, msg[0] ? msg : "no message");
        return NULL;
    }
}

/* Append s as a JSON string. */
static int json_str(char *out, size_t cap, size_t *n, const char *s) {
    size_t i = *n;
    if (i + 1 >= cap) return -1;
    out[i++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (i + 7 >= cap) return -1;
        if (*p == '"' || *p == '\\') {
            out[i++] = '\\';
            out[i++] = (char)*p;
        } else if (*p < 0x20) {
            i += (size_t)snprintf(out + i, cap - i, "\\u%04x", *p);
        } else {
            out[i++] = (char)*p;
        }
    }
    if (i + 1 >= cap) return -1;
    out[i++] = '"';
    *n = i;
    return 0;
}

static void demote_activate(CacheObject *c);

/* The tier handle of c, opening it (and loading the library) if needed.
 * 0 with *out, or -1 with an exception.  GIL held on entry and exit. */
static int tier_handle(CacheObject *c, cachee_t *out) {
    if (tier_forked) {
        raise_fork();
        return -1;
    }
    if (c->tier_h) {
        *out = c->tier_h;
        return 0;
    }
    if (c->region == NULL || c->h == NULL) {
        PyErr_SetString(cachee_state()->ClosedError, "operation on a closed SharedCache");
        return -1;
    }
    PyObject *pb = NULL;
    if (!PyUnicode_FSConverter(c->region->path, &pb)) return -1;
    char cfg[8192];
    size_t n = (size_t)snprintf(cfg, sizeof cfg, "{\"path\":");
    int bad = json_str(cfg, sizeof cfg, &n, PyBytes_AS_STRING(pb)) < 0;
    Py_DECREF(pb);
    /* The Go core's L0 handle uses this process's slot (ours): one process
     * counts once, and takes one of the region's max_procs slots. */
    uint64_t token = 0;
    int trc;
    RegionObject *region = c->region;
    Py_INCREF(region); /* a close() in another thread cannot unmap it */
    Py_BEGIN_ALLOW_THREADS
    trc = cachee_l0_registration(region->h, &token);
    Py_END_ALLOW_THREADS
    Py_DECREF(region);
    if (trc != 0) {
        raise_l0(trc, NULL);
        return -1;
    }
    if (!bad) {
        static const char *const promote[] = {"tinylfu", "always", "never"};
        int w = snprintf(cfg + n, sizeof cfg - n,
                         ",\"l1_bytes\":%llu,\"allow_foreign_owner\":%s,\"promote\":\"%s\","
                         "\"share_slot\":%llu}",
                         (unsigned long long)c->l1_bytes, c->allow_foreign ? "true" : "false",
                         promote[c->promote >= 0 && c->promote <= 2 ? c->promote : 0],
                         (unsigned long long)token);
        bad = w < 0 || (size_t)w >= sizeof cfg - n;
        if (!bad) n += (size_t)w;
    }
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "region path too long for the tier configuration");
        return -1;
    }
    int rc = 0, opened = 0;
    cachee_t h = 0;
    char msg[1024] = "";
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&tier_mu);
    load_locked();
    if (tier_ok && !tier_forked) {
        rc = api.open(cfg, n, &h);
        if (rc == CACHEE_OK) opened = 1;
        else api.last_error(0, msg, sizeof msg, NULL);
    }
    pthread_mutex_unlock(&tier_mu);
    Py_END_ALLOW_THREADS
    /* Decide with the GIL held: another thread may have opened the tiers of
     * this cache, or closed the cache, while we were opening. */
    if (opened && (c->h == NULL || c->tier_h != 0)) {
        int closed = c->h == NULL;
        cachee_t mine = h;
        Py_BEGIN_ALLOW_THREADS
        api.close(mine);
        Py_END_ALLOW_THREADS
        if (closed || c->tier_h == 0) {
            PyErr_SetString(cachee_state()->ClosedError, "operation on a closed SharedCache");
            return -1;
        }
        *out = c->tier_h;
        return 0;
    }
    if (opened) {
        c->tier_h = h;
        demote_activate(c);
    }
    if (tier_forked) {
        raise_fork();
        return -1;
    }
    if (!tier_ok) {
        raise_unavailable();
        return -1;
    }
    if (!opened) {
        if (rc == CACHEE_E_FORKED) raise_fork();
        else
            PyErr_Format(cachee_state()->TierError,
                         "opening the tiers of %R failed (libcachee code "
                         "%d): %s", c->region ? c->region->path : Py_None, rc, msg);
        return -1;
    }
    *out = h;
    return 0;
}

int tiers_get(CacheObject *c, const KeyBytes *k, uint32_t flags, cachee_value *out) {
    memset(out, 0, sizeof *out);
    cachee_t h;
    if (tier_handle(c, &h) < 0) return -1;
    tiers_demote_drain(c, 1); /* what was just evicted is looked for in L1 */
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = api.get(h, k->data, (size_t)k->len, flags | CACHEE_GET_SKIP_L0, out);
    Py_END_ALLOW_THREADS
    if (rc == CACHEE_OK) return 1;
    if (rc == CACHEE_NOTFOUND) return 0;
    raise_tier(h, rc, "reading the tiers");
    return -1;
}

void tiers_value_free(cachee_value *v) {
    if (tier_ok && (v->data || v->meta)) api.value_free(v);
}

int tiers_loaded(CacheObject *c) { return c->tier_h != 0 && !tier_forked; }

int tiers_after_set(CacheObject *c, const KeyBytes *k, const void *data, size_t len,
                    const void *meta, size_t meta_len, uint64_t ttl) {
    if (!tiers_loaded(c)) return 0; /* never loaded here (or a fork child): no L1 copy */
    cachee_t h = c->tier_h;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = api.set(h, k->data, (size_t)k->len, data, len, meta, meta_len, (int64_t)ttl,
                 CACHEE_SET_SKIP_L0);
    Py_END_ALLOW_THREADS
    if (rc == CACHEE_OK) return 0;
    raise_tier(h, rc, "writing to the tiers (L0 holds the new value)");
    return -1;
}

int tiers_after_delete(CacheObject *c, const KeyBytes *k) {
    if (!tiers_loaded(c)) return 0;
    cachee_t h = c->tier_h;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = api.del(h, k->data, (size_t)k->len);
    Py_END_ALLOW_THREADS
    if (rc == CACHEE_OK || rc == CACHEE_NOTFOUND) return rc == CACHEE_OK;
    raise_tier(h, rc, "deleting from the tiers");
    return -1;
}

PyObject *tiers_stats(CacheObject *c) {
    if (!tiers_loaded(c)) Py_RETURN_NONE;
    cachee_t h = c->tier_h;
    size_t cap = 4096, n = 0;
    for (int attempt = 0; attempt < 4; attempt++) {
        char *buf = PyMem_Malloc(cap);
        if (buf == NULL) return PyErr_NoMemory();
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = api.stats(h, buf, cap, &n);
        Py_END_ALLOW_THREADS
        if (rc == CACHEE_E_TOO_SMALL) {
            PyMem_Free(buf);
            cap = n + 64;
            continue;
        }
        if (rc != CACHEE_OK) {
            PyMem_Free(buf);
            return raise_tier(h, rc, "tier statistics");
        }
        PyObject *text = PyUnicode_DecodeUTF8(buf, (Py_ssize_t)n, "strict");
        PyMem_Free(buf);
        if (text == NULL) return NULL;
        PyObject *json = PyImport_ImportModule("json");
        PyObject *doc = json ? PyObject_CallMethod(json, "loads", "O", text) : NULL;
        Py_XDECREF(json);
        Py_DECREF(text);
        if (doc == NULL) return NULL;
        PyObject *tiers = PyDict_Check(doc) ? PyDict_GetItemString(doc, "tiers") : NULL;
        Py_XINCREF(tiers);
        Py_DECREF(doc);
        if (tiers == NULL) {
            PyErr_SetString(cachee_state()->TierError,
                            "tier statistics without a \"tiers\" list");
            return NULL;
        }
        return tiers;
    }
    PyErr_SetString(cachee_state()->TierError, "tier statistics keep growing");
    return NULL;
}

void tiers_close(CacheObject *c) {
    if (c->region) tiers_demote_stop(c->region);
    cachee_t h = c->tier_h;
    c->tier_h = 0;
    if (h == 0 || tier_forked || !tier_ok) return; /* a child must not call in */
    Py_BEGIN_ALLOW_THREADS
    api.close(h);
    Py_END_ALLOW_THREADS
}

PyObject *tiers_copy_to_ndarray(const cachee_value *v, PyObject *shape, PyObject *dtype) {
    if (numpy_ready() < 0) return NULL;
    ValueLayout l;
    if (meta_decode(v->meta, (uint32_t)v->meta_len, v->len, &l) < 0) return NULL;
    if ((shape != Py_None || dtype != Py_None) && meta_check(&l, v->len, shape, dtype) < 0) {
        layout_clear(&l);
        return NULL;
    }
    PyObject *copy = PyBytes_FromStringAndSize(v->data, (Py_ssize_t)v->len);
    if (copy == NULL || (l.descr == NULL && (l.descr = descr_for(l.dtype)) == NULL)) {
        Py_XDECREF(copy);
        layout_clear(&l);
        return NULL;
    }
    npy_intp dims[64];
    for (int i = 0; i < l.ndim; i++) dims[i] = (npy_intp)l.shape[i];
    PyArray_Descr *d = (PyArray_Descr *)l.descr;
    Py_INCREF(d); /* stolen below */
    PyObject *arr = PyArray_NewFromDescr(&PyArray_Type, d, l.ndim, dims, NULL,
                                         PyBytes_AS_STRING(copy), NPY_ARRAY_C_CONTIGUOUS,
                                         NULL);
    layout_clear(&l);
    if (arr == NULL) {
        Py_DECREF(copy);
        return NULL;
    }
    if (PyArray_SetBaseObject((PyArrayObject *)arr, copy) < 0) { /* steals copy */
        Py_DECREF(arr);
        return NULL;
    }
    PyArray_UpdateFlags((PyArrayObject *)arr, NPY_ARRAY_ALIGNED);
    return arr;
}

PyObject *tiers_state(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    return Py_BuildValue("{s:O,s:O,s:i,s:O,s:s,s:s}", "loaded", tier_lib ? Py_True : Py_False,
                         "usable", tier_ok && !tier_forked ? Py_True : Py_False, "pid",
                         (int)tier_pid, "forked", tier_forked ? Py_True : Py_False, "path",
                         tier_path, "error", tier_err);
}

PyObject *tiers_goroutines(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    if (!tier_ok || tier_forked) Py_RETURN_NONE;
    int64_t g, hnd;
    Py_BEGIN_ALLOW_THREADS
    g = api.goroutines();
    hnd = api.open_handles();
    Py_END_ALLOW_THREADS
    return Py_BuildValue("(LL)", (long long)g, (long long)hnd);
}

/* ------------------------------------------------------------ demotion */

/* The engine's eviction queue (EVICTION QUEUE in cachee_l0.h), plus what
 * only the extension counts. */
struct DemoteQueue {
    cachee_l0_evq *q;
    uint64_t demoted, failed; /* atomic */
};

#define DEMOTE_CAP_MIN (8u << 20)
#define DEMOTE_CAP_MAX (64u << 20)

/* The eviction hook: runs on the evicting thread, under an L0 shard lock,
 * maybe without the GIL.  A fork child (whose copy of the queue's mutex may
 * be held by a thread that no longer exists) never gets past the first
 * line; elsewhere the engine's hook copies the record or counts a drop. */
static void demote_hook(void *arg, const cachee_l0_evicted *e) {
    if (tier_forked) return;
    cachee_l0_evq_hook(((struct DemoteQueue *)arg)->q, e);
}

int tiers_demote_setup(CacheObject *c) {
    RegionObject *r = c->region;
    if (r == NULL || r->demoteq != NULL) return 0;
    uint64_t cap = c->l1_bytes / 4;
    if (cap < DEMOTE_CAP_MIN) cap = DEMOTE_CAP_MIN;
    if (cap > DEMOTE_CAP_MAX) cap = DEMOTE_CAP_MAX;
    struct DemoteQueue *dq = calloc(1, sizeof *dq);
    if (dq == NULL || (dq->q = cachee_l0_evq_new(cap)) == NULL) {
        free(dq);
        PyErr_NoMemory();
        return -1;
    }
    cachee_l0_evq_set_active(dq->q, 0); /* until the tiers are loaded here */
    r->demoteq = dq;
    /* The handle was opened by this constructor: no other thread uses it
     * yet, as cachee_l0_set_evict_hook requires. */
    cachee_l0_set_evict_hook(r->h, demote_hook, dq);
    return 0;
}

/* The tiers of c were just opened here: start queueing. */
static void demote_activate(CacheObject *c) {
    struct DemoteQueue *dq = c->region ? c->region->demoteq : NULL;
    if (dq == NULL || tier_forked) return;
    cachee_l0_evq_set_active(dq->q, 1);
}

void tiers_demote_drain(CacheObject *c, int force) {
    RegionObject *r = c->region;
    struct DemoteQueue *dq = r ? r->demoteq : NULL;
    if (dq == NULL || !cachee_l0_evq_pending(dq->q)) return;
    if (!tiers_loaded(c)) return; /* closed, or a fork child: leave it */
    if (!force) {
        cachee_l0_evq_stats st;
        cachee_l0_evq_stats_get(dq->q, &st);
        if (st.bytes < st.cap / 2) return;
    }
    cachee_t h = c->tier_h;
    Py_INCREF(r); /* the queue lives as long as the region */
    int rc = CACHEE_OK;
    size_t stored = 0;
    Py_BEGIN_ALLOW_THREADS
    size_t n;
    cachee_l0_evrec *list = cachee_l0_evq_take(dq->q, &n);
    cachee_record *recs = n ? malloc(n * sizeof *recs) : NULL;
    if (recs != NULL) {
        size_t i = 0;
        for (cachee_l0_evrec *e = list; e && i < n; e = e->next, i++) {
            cachee_record *rec = &recs[i];
            rec->key = e->data;
            rec->key_len = e->key_len;
            rec->meta = e->meta_len ? e->data + e->key_len : NULL;
            rec->meta_len = e->meta_len;
            rec->value = e->value_len ? e->data + e->key_len + e->meta_len : NULL;
            rec->value_len = e->value_len;
            rec->expires_ns = e->expires_ns;
            rec->generation = e->generation;
            rec->reserved_ = 0;
        }
        rc = api.demote(h, recs, i, &stored);
        free(recs);
    } else if (n) {
        rc = CACHEE_E_NOMEM;
    }
    cachee_l0_evq_release(dq->q, list);
    Py_END_ALLOW_THREADS
    __atomic_add_fetch(&dq->demoted, stored, __ATOMIC_RELAXED);
    /* CACHEE_E_HANDLE: closed by another thread meanwhile. */
    if (rc != CACHEE_OK && rc != CACHEE_E_HANDLE)
        __atomic_add_fetch(&dq->failed, 1, __ATOMIC_RELAXED);
    /* Last: a close() in another thread may have dropped every other
     * reference, and the queue dies with the region. */
    Py_DECREF(r);
}

void tiers_demote_stop(RegionObject *r) {
    struct DemoteQueue *dq = r ? r->demoteq : NULL;
    if (dq == NULL) return;
    cachee_l0_evq_set_active(dq->q, 0);
    if (tier_forked) return; /* the mutex may be held by a thread the child lacks */
    cachee_l0_evq_release(dq->q, cachee_l0_evq_take(dq->q, NULL));
}

void tiers_demote_free(struct DemoteQueue *dq) {
    if (dq == NULL) return;
    if (tier_forked) return; /* leave the parent's copy alone (see stop) */
    cachee_l0_evq_free(dq->q);
    free(dq);
}

int tiers_demote_stats(CacheObject *c, PyObject *d) {
    struct DemoteQueue *dq = c->region ? c->region->demoteq : NULL;
    if (dq == NULL) return 0;
    cachee_l0_evq_stats st = {0, 0, 0, 0};
    if (!tier_forked) cachee_l0_evq_stats_get(dq->q, &st);
    PyObject *o = Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:n,s:n}", "queued", (unsigned long long)st.queued, "dropped",
        (unsigned long long)st.dropped, "demoted",
        (unsigned long long)__atomic_load_n(&dq->demoted, __ATOMIC_RELAXED), "failed",
        (unsigned long long)__atomic_load_n(&dq->failed, __ATOMIC_RELAXED), "pending_bytes",
        (Py_ssize_t)st.bytes, "cap_bytes", (Py_ssize_t)st.cap);
    if (o == NULL) return -1;
    int rc = PyDict_SetItemString(d, "demotion", o);
    Py_DECREF(o);
    return rc;
}
