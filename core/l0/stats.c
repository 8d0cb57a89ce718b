/*
 * stats.c -- counters summed over the processes of a region.
 */
#include "l0_internal.h"

int cachee_l0_stats_get(cachee_l0 *h, cachee_l0_stats *out) {
    if (h == NULL || out == NULL) return CACHEE_L0_E_INVAL;
    memset(out, 0, sizeof *out);
    uint64_t slot;
    int rc = l0_my_slot(h, &slot); /* our own description before reaping */
    if (rc != 0) return rc;
    if ((rc = l0_global_lock(h)) != 0) return rc;
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    l0_reap_locked(h);
    uint64_t seg = h->g.seg_size;
    out->segments_free = hd->nfree;
    out->segments_open = hd->nopen;
    out->segments_small = hd->nsealed[CACHEE_L0_SMALL];
    out->segments_main = hd->nsealed[CACHEE_L0_MAIN];
    out->segments_limbo = hd->nlimbo;
    out->segments_reclaiming = hd->nreclaiming;
    out->reaped_procs = hd->reaped;
    uint64_t totals[CACHEE_L0_NSTATS];
    for (unsigned k = 0; k < CACHEE_L0_NSTATS; k++) totals[k] = hd->retired[k];
    l0_global_unlock(h);

    uint64_t hwm = L0_LOAD_ACQ(&hd->slots_hwm);
    for (uint64_t s = 0; s < hwm && s < h->g.max_procs; s++) {
        struct cachee_l0_shm_slot *sl = l0_slot(h, s);
        if (L0_LOAD_ACQ(&sl->state) == CACHEE_L0_SLOT_FREE) continue;
        out->live_procs++;
        out->pins += L0_LOAD(&sl->npins);
        out->pinned_bytes += L0_LOAD(&sl->pinned_bytes);
        for (unsigned k = 0; k < CACHEE_L0_NSTATS; k++)
            totals[k] += L0_LOAD(k < 4 ? &sl->stat_hot[k] : &sl->stat_cold[k - 4]);
    }
    out->hits = totals[CACHEE_L0_STAT_HITS];
    out->misses = totals[CACHEE_L0_STAT_MISSES];
    out->sets = totals[CACHEE_L0_STAT_SETS];
    out->deletes = totals[CACHEE_L0_STAT_DELETES];
    out->evictions = totals[CACHEE_L0_STAT_EVICTIONS];
    out->expirations = totals[CACHEE_L0_STAT_EXPIRATIONS];
    out->reinsertions = totals[CACHEE_L0_STAT_REINSERTIONS];
    out->set_failures = totals[CACHEE_L0_STAT_SET_FAILURES];
    out->entries = (uint64_t)cachee_l0_count(h);
    out->capacity_bytes = h->g.arena_size;
    out->free_bytes = out->segments_free * seg;
    out->limbo_bytes = out->segments_limbo * seg;
    out->used_bytes = (out->segments_open + out->segments_small +
                       out->segments_main + out->segments_reclaiming) * seg;
    return 0;
}
