/*
 * evict.c -- making space: S3-FIFO over segments.  An evictor takes the
 * oldest sealed segment of the small FIFO (when over its share) or of the
 * main FIFO, walks its records, reinserts the live ones that were read since
 * they were written (small) or whose frequency is above zero (main), evicts
 * the others, then finishes the segment (generation, pins, FREE or LIMBO).
 * See EVICTION in cachee_l0.h.
 */
#include "l0_internal.h"
#include <stdlib.h>

int64_t l0_pick_victim_locked(cachee_l0 *h, bool pressure);
void l0_requeue_locked(cachee_l0 *h, uint64_t seg);

/* One record found in a victim segment. */
typedef struct victim_rec {
    uint64_t hash;  /* the key's (hashed from the record's key bytes) */
    uint32_t shard;
    uint32_t off;   /* offset within the segment */
} victim_rec;

/* Walk the records of a normal segment; returns how many were collected.
 * The walk stops at the first thing that is not a record of this generation
 * (the end of the fill, or a reservation whose writer died). */
static size_t collect(cachee_l0 *h, uint64_t seg, victim_rec *out, size_t cap) {
    uint64_t base = seg << h->g.seg_shift;
    uint64_t fill = l0_seg(h, seg)->fill;
    uint32_t gen = L0_LOAD_ACQ(&l0_gens(h)[seg]);
    if (fill > h->g.seg_size) fill = h->g.seg_size;
    size_t n = 0;
    for (uint64_t off = 0; off + L0_RECORD_HEADER <= fill && n < cap;) {
        struct cachee_l0_shm_record r;
        memcpy(&r, l0_arena_ro(h, base + off), sizeof r);
        if (!l0_record_sane(&h->g, &r, base + off, gen) || l0_rec_extent(&r)) break;
        if (!l0_rec_dead(&r)) {
            uint64_t hash;
            if (!l0_rec_hash(h, base + off, &r, &hash)) break;
            out[n].hash = hash;
            out[n].shard = (uint32_t)l0_shard_of(&h->g, hash);
            out[n].off = (uint32_t)off;
            n++;
        }
        off += l0_rec_len(&r);
    }
    return n;
}

/* Group records by shard (counting sort, stable), so each shard lock is
 * taken once per victim. */
static void group_by_shard(victim_rec *recs, victim_rec *tmp, size_t n) {
    uint32_t count[257] = {0};
    for (size_t i = 0; i < n; i++) count[(recs[i].shard & 255) + 1]++;
    for (unsigned s = 1; s <= 256; s++) count[s] += count[s - 1];
    for (size_t i = 0; i < n; i++) tmp[count[recs[i].shard & 255]++] = recs[i];
    memcpy(recs, tmp, n * sizeof *recs);
}

/*
 * Decide the fate of one record whose live entry is `idx` (shard locked).
 * Hot records are reinserted (S3-FIFO); cold ones are evicted while *excess
 * (live bytes above the pressure mark) lasts, and copied forward otherwise.
 * may_reinsert false (making room for an extent) evicts everything.
 */
static void settle(cachee_l0 *h, uint64_t slot, uint64_t shard, uint64_t idx,
                   uint64_t off, const struct cachee_l0_shm_record *r,
                   uint64_t hash, unsigned cls, bool may_reinsert,
                   int64_t *excess, int64_t now) {
    struct cachee_l0_shm_slot *sl = l0_slot(h, slot);
    if (r->expires_ns != 0 && now >= r->expires_ns) {
        l0_entry_kill(h, shard, idx);
        l0_stat_add(sl, CACHEE_L0_STAT_EXPIRATIONS, 1);
        return;
    }
    uint8_t freq = L0_LOAD(&((struct cachee_l0_shm_record *)l0_arena_rw(h, off))->freq);
    if (freq > 3) freq = 3;
    if (may_reinsert && freq > 0) {
        uint8_t nf = cls == CACHEE_L0_SMALL ? 0 : (uint8_t)(freq - 1);
        if (l0_reinsert_locked(h, slot, shard, idx, off, r, hash, CACHEE_L0_MAIN, nf) == 0) {
            l0_stat_add(sl, CACHEE_L0_STAT_REINSERTIONS, 1);
            return;
        }
    } else if (may_reinsert && *excess <= 0) {
        /* No pressure: this is garbage collection, keep the record (in the
         * main FIFO, so the small one drains). */
        if (l0_reinsert_locked(h, slot, shard, idx, off, r, hash, CACHEE_L0_MAIN, 0) == 0)
            return;
    }
    l0_evict_notify(h, off, r, hash);
    l0_entry_kill(h, shard, idx);
    *excess -= (int64_t)l0_rec_len(r);
    l0_stat_add(sl, CACHEE_L0_STAT_EVICTIONS, 1);
    if (cls == CACHEE_L0_SMALL) l0_ghost_add(h, hash);
}

/* Process every record of a RECLAIMING normal segment. */
static void process_segment(cachee_l0 *h, uint64_t slot, uint64_t seg,
                            unsigned cls, bool may_reinsert, int64_t *excess) {
    size_t cap = h->g.seg_size / (L0_RECORD_HEADER + CACHEE_L0_RECORD_ALIGN);
    victim_rec stackbuf[2 * 256];
    victim_rec *recs = cap <= 256 ? stackbuf : malloc(2 * cap * sizeof *recs);
    if (recs == NULL) {
        recs = stackbuf;
        cap = 256;
    }
    size_t n = collect(h, seg, recs, cap);
    group_by_shard(recs, recs + cap, n);
    uint64_t base = seg << h->g.seg_shift;
    uint32_t gen = L0_LOAD_ACQ(&l0_gens(h)[seg]);
    int64_t now = l0_now_ns();
    for (size_t i = 0; i < n;) {
        uint64_t shard = recs[i].shard;
        if (l0_shard_lock(h, shard) != 0) {
            i++;
            continue; /* entries pointing here go stale with the generation */
        }
        for (; i < n && recs[i].shard == shard; i++) {
            uint64_t off = base + recs[i].off;
            struct cachee_l0_shm_record r;
            memcpy(&r, l0_arena_ro(h, off), sizeof r);
            uint64_t idx;
            if (l0_find_exact_locked(h, shard, recs[i].hash, off, gen, &idx) != 0)
                continue; /* overwritten or deleted already */
            settle(h, slot, shard, idx, off, &r, recs[i].hash, cls, may_reinsert,
                   excess, now);
        }
        l0_shard_maintain(h, slot, shard);
        l0_shard_unlock(h, shard);
    }
    if (recs != stackbuf) free(recs);
}

/* An extent holds one record.  Returns true if it was requeued in place. */
static bool process_extent(cachee_l0 *h, uint64_t slot, uint64_t seg,
                           unsigned cls, bool may_requeue, int64_t excess) {
    uint64_t off = seg << h->g.seg_shift;
    uint32_t gen = L0_LOAD_ACQ(&l0_gens(h)[seg]);
    struct cachee_l0_shm_record r;
    memcpy(&r, l0_arena_ro(h, off), sizeof r);
    uint64_t hash;
    if (!l0_record_sane(&h->g, &r, off, gen) || !l0_rec_extent(&r) || l0_rec_dead(&r) ||
        !l0_rec_hash(h, off, &r, &hash))
        return false;
    uint64_t shard = l0_shard_of(&h->g, hash);
    if (l0_shard_lock(h, shard) != 0) return false;
    uint64_t idx;
    bool requeued = false;
    if (l0_find_exact_locked(h, shard, hash, off, gen, &idx) == 0) {
        struct cachee_l0_shm_record *rw =
            (struct cachee_l0_shm_record *)l0_arena_rw(h, off);
        uint8_t freq = L0_LOAD(&rw->freq);
        bool expired = r.expires_ns != 0 && l0_now_ns() >= r.expires_ns;
        bool keep = freq > 0 || excess <= 0;
        if (may_requeue && !expired && keep && l0_global_lock(h) == 0) {
            if (freq > 0) L0_STORE(&rw->freq, (uint8_t)(freq > 3 ? 2 : freq - 1));
            l0_requeue_locked(h, seg);
            l0_global_unlock(h);
            l0_stat_add(l0_slot(h, slot), CACHEE_L0_STAT_REINSERTIONS, 1);
            requeued = true;
        } else {
            int64_t all = INT64_MAX;
            settle(h, slot, shard, idx, off, &r, hash, cls, false, &all, l0_now_ns());
        }
    }
    l0_shard_unlock(h, shard);
    return requeued;
}

void l0_reclaim_records(cachee_l0 *h, uint64_t slot, uint64_t seg, int64_t *excess) {
    struct cachee_l0_shm_seg *s = l0_seg(h, seg);
    if (s->extent > 1) process_extent(h, slot, seg, s->cls & 1, false, INT64_MAX);
    else process_segment(h, slot, seg, s->cls & 1, true, excess);
}

int l0_make_space(cachee_l0 *h, uint64_t slot, bool force) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    int rc = l0_global_lock(h);
    if (rc != 0) return rc;
    int64_t target = (int64_t)(h->g.arena_size / 100 * L0_PRESSURE_PERCENT);
    if (hd->live_total_age++ % 16 == 0) hd->live_total = l0_live_total_locked(h);
    int64_t excess = force ? INT64_MAX : hd->live_total - target;
    int64_t victim = l0_pick_victim_locked(h, excess > 0);
    if (victim < 0) {
        l0_global_unlock(h);
        return CACHEE_L0_E_FULL;
    }
    struct cachee_l0_shm_seg *s = l0_seg(h, (uint64_t)victim);
    unsigned cls = s->cls & 1;
    uint64_t k = s->extent ? s->extent : 1;
    s->state = CACHEE_L0_SEG_RECLAIMING;
    s->owner = (uint32_t)(slot + 1);
    s->owner_gen = L0_LOAD(&l0_slot(h, slot)->gen);
    hd->nsealed[cls] -= k;
    hd->nreclaiming += k;
    l0_global_unlock(h);

    bool requeued = false;
    if (k > 1) requeued = process_extent(h, slot, (uint64_t)victim, cls, true, excess);
    else process_segment(h, slot, (uint64_t)victim, cls, true, &excess);
    if (requeued) return 0;

    if ((rc = l0_global_lock(h)) != 0) return rc;
    if (s->state == CACHEE_L0_SEG_RECLAIMING && s->owner == slot + 1)
        l0_finish_reclaim_locked(h, (uint64_t)victim);
    l0_global_unlock(h);
    return 0;
}
