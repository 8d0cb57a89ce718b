/*
 * vcache.c -- the view cache: the table of ndarrays a SharedCache handed out.
 *
 * Building an ndarray costs more than the whole lookup, so each cache keeps
 * a small table of the arrays get_numpy() handed out, one slot per key hash,
 * and hands the same array out again while the stored version it shows
 * (loc, gen) is still the key's current one and the array is unmodified
 * (same dtype object, shape, data pointer).  A cached array pins its
 * version, so a new version of the key replaces it at once, the table is
 * small and direct-mapped, entries whose version was reclaimed are dropped a
 * few at a time, and all of them when a write finds the region full.
 *
 * The lookup itself is in get_numpy (cache_read.c) with the inline checks of
 * vcache.h; this file allocates, sweeps and clears the table.
 */
#include "vcache.h"

int vcache_alloc(CacheObject *c, int view_cache) {
    PyMem_Free(c->vcache);
    c->vcache = NULL;
    c->vcache_mask = UINT32_MAX;
    if (view_cache > 0) {
        uint32_t n = 1;
        while (n < (uint32_t)view_cache) n *= 2;
        c->vcache = PyMem_Calloc(n, sizeof *c->vcache);
        if (c->vcache == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->vcache_mask = n - 1;
    }
    return 0;
}

static void vcache_drop(VCacheEntry *e) {
    Py_CLEAR(e->arr);
    Py_CLEAR(e->key);
}

void vcache_clear(CacheObject *c) {
    if (c->vcache == NULL) return;
    for (uint32_t i = 0; i <= c->vcache_mask; i++) vcache_drop(&c->vcache[i]);
}

/* Drop cached arrays whose version was reclaimed (their pin is what keeps
 * the segment from being reused).  n entries from the sweep cursor, or all. */
void vcache_sweep(CacheObject *c, uint32_t n) {
    if (c->vcache == NULL) return;
    uint32_t size = c->vcache_mask + 1;
    if (n > size) n = size;
    for (uint32_t i = 0; i < n; i++) {
        VCacheEntry *e = &c->vcache[c->sweep++ & c->vcache_mask];
        if (e->arr == NULL) continue;
        cachee_l0_view probe;
        memset(&probe, 0, sizeof probe);
        probe.loc = e->loc;
        probe.gen = e->gen;
        if (cachee_l0_read_validate(c->h, &probe) != 0) vcache_drop(e);
    }
}
