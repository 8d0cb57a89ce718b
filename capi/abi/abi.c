/*
 * abi.c -- the exported C functions of libcachee.so (include/cachee.h).
 *
 * Each one checks, in C and before it enters the Go runtime, that this
 * process is not a fork() child of the process that started the runtime (a
 * pthread_atfork child handler marks it; the pid of the loading process is
 * compared too), then calls the Go implementation (cacheeGo_*, abi.go).
 * cachee_value_free needs no Go at all.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cachee.h"
#include "abi_internal.h"
#include "_cgo_export.h"

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

#define API __attribute__((visibility("default")))

/* The fork check runs on every call, so it makes no system call (getpid()
 * is one, ~100-200 ns on a VM).  A page advised MADV_WIPEONFORK (Linux >=
 * 4.14) holds a 1 in this process and reads 0 in any child the kernel
 * creates from it, with fork() or a raw clone() that runs no atfork
 * handler.  Where the advice is refused, getpid() is compared with the pid
 * of the loading process instead.  The atfork handler marks children of
 * fork() either way. */
static volatile int forked;
static pid_t loader_pid;
static volatile const unsigned char *alive;

static void on_fork_child(void) { forked = 1; }

__attribute__((constructor)) static void abi_init(void) {
    loader_pid = getpid();
    pthread_atfork(NULL, NULL, on_fork_child);
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0) pg = 4096;
    void *p = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    if (madvise(p, (size_t)pg, MADV_WIPEONFORK) != 0) {
        munmap(p, (size_t)pg);
        return;
    }
    *(unsigned char *)p = 1;
    alive = p;
}

static inline int in_child(void) {
    if (__builtin_expect(forked, 0)) return 1;
    if (__builtin_expect(alive != NULL, 1)) return *alive == 0;
    return loader_pid != 0 && getpid() != loader_pid;
}

API int cachee_abi_version(void) { return CACHEE_ABI_VERSION; }

API int cachee_open(const char *config, size_t config_len, cachee_t *out) {
    if (in_child()) return CACHEE_E_FORKED;
    return cacheeGo_open((char *)config, config_len, out);
}

API int cachee_close(cachee_t h) {
    if (in_child()) return CACHEE_E_FORKED;
    return cacheeGo_close(h);
}

__attribute__((visibility("hidden"))) int cachee_abi_block(const void *d, size_t dn, const void *m,
                                                         size_t mn, cachee_value *out) {
    if (dn == 0 && mn == 0) {
        out->data = out->meta = NULL;
        return 0;
    }
    if (dn > SIZE_MAX - mn) return -1;
    unsigned char *b = malloc(dn + mn);
    if (b == NULL) return -1;
    if (dn) memcpy(b, d, dn);
    if (mn) memcpy(b + dn, m, mn);
    out->data = dn ? b : NULL;
    out->meta = mn ? b + dn : NULL;
    return 0;
}

API int cachee_get(cachee_t h, const void *key, size_t key_len, uint32_t flags,
                   cachee_value *out) {
    if (in_child()) return CACHEE_E_FORKED;
    if (out == NULL) return cacheeGo_get(h, (void *)key, key_len, flags, out, NULL);
    unsigned char scratch[CACHEE_ABI_SCRATCH_DATA + CACHEE_ABI_SCRATCH_META];
    int rc = cacheeGo_get(h, (void *)key, key_len, flags, out, scratch);
    if (rc != CACHEE_ABI_IN_SCRATCH) return rc;
    if (cachee_abi_block(scratch, out->len, scratch + CACHEE_ABI_SCRATCH_DATA, out->meta_len,
                         out) != 0) {
        size_t n = out->len + out->meta_len;
        memset(out, 0, sizeof *out);
        return cacheeGo_nomem(h, n);
    }
    return CACHEE_OK;
}

API void cachee_value_free(cachee_value *v) {
    if (v == NULL) return;
    free(v->data != NULL ? v->data : v->meta); /* one block: see abi_internal.h */
    memset(v, 0, sizeof *v);
}

API int cachee_set(cachee_t h, const void *key, size_t key_len,
                   const void *value, size_t value_len, const void *meta,
                   size_t meta_len, int64_t ttl_ns, uint32_t flags) {
    if (in_child()) return CACHEE_E_FORKED;
    return cacheeGo_set(h, (void *)key, key_len, (void *)value, value_len,
                        (void *)meta, meta_len, ttl_ns, flags);
}

API int cachee_delete(cachee_t h, const void *key, size_t key_len) {
    if (in_child()) return CACHEE_E_FORKED;
    return cacheeGo_delete(h, (void *)key, key_len);
}

API int cachee_stats(cachee_t h, char *buf, size_t cap, size_t *len) {
    if (in_child()) return CACHEE_E_FORKED;
    return cacheeGo_stats(h, buf, cap, len);
}

API int cachee_last_error(cachee_t h, char *buf, size_t cap, size_t *len) {
    if (in_child()) return CACHEE_E_FORKED;
    return cacheeGo_last_error(h, buf, cap, len);
}

API int cachee_demote(cachee_t h, const cachee_record *recs, size_t n, size_t *stored) {
    if (in_child()) return CACHEE_E_FORKED;
    return cacheeGo_demote(h, (cachee_record *)recs, n, stored);
}

API int64_t cachee_open_handles(void) {
    if (in_child()) return CACHEE_E_FORKED;
    return cacheeGo_open_handles();
}

API int64_t cachee_goroutines(void) {
    if (in_child()) return CACHEE_E_FORKED;
    return cacheeGo_goroutines();
}
