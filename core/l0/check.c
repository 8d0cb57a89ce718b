/*
 * check.c -- cachee_l0_check: validate every invariant of a region.  Used by
 * the tests after crashes and corruption, and by `cachee check`.
 */
#include "l0_internal.h"
#include <stdlib.h>

static int check_header(cachee_l0 *h, char *msg, size_t cap) {
    const struct cachee_l0_shm_header *hd = l0_hdr(h);
    const l0_geom *g = &h->g;
    if (memcmp(hd->magic, CACHEE_L0_MAGIC, 8) != 0)
        return l0_fail(msg, cap, "header: bad magic");
    if (hd->format != l0_format_word())
        return l0_fail(msg, cap, "header: format word changed");
    if (hd->ready != CACHEE_L0_READY_MARK)
        return l0_fail(msg, cap, "header: ready mark missing");
    if (hd->region_size != g->region_size || hd->nsegs != g->nsegs ||
        hd->seg_size != g->seg_size || hd->nshards != g->nshards ||
        hd->shard_slots != g->shard_slots || hd->arena_off != g->arena_off ||
        hd->index_off != g->index_off || hd->max_procs != g->max_procs)
        return l0_fail(msg, cap, "header: geometry changed since open");
    return 0;
}

/* Entries of one shard; shard lock and global lock held. */
static int check_shard(cachee_l0 *h, uint64_t shard, char *msg, size_t cap) {
    const l0_geom *g = &h->g;
    const struct cachee_l0_shm_shard *sh = l0_shard(h, shard);
    const struct cachee_l0_shm_entry *E = l0_entries(h, shard);
    uint64_t n = g->shard_slots;
    if (sh->intent_active)
        return l0_fail(msg, cap, "shard %lu: intent left active",
                       (unsigned long)shard);
    if (sh->layout_seq & 1)
        return l0_fail(msg, cap, "shard %lu: layout sequence odd",
                       (unsigned long)shard);
    uint32_t live = 0, tombs = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t w0 = E[i].w0, w1 = E[i].w1;
        uint32_t kind = l0_e_kind(w1);
        if (l0_e_ver(w0) != l0_e_ver(w1))
            return l0_fail(msg, cap, "shard %lu slot %lu: torn entry",
                           (unsigned long)shard, (unsigned long)i);
        if (kind == 3)
            return l0_fail(msg, cap, "shard %lu slot %lu: bad kind",
                           (unsigned long)shard, (unsigned long)i);
        live += kind == CACHEE_L0_ENTRY_LIVE;
        tombs += kind == CACHEE_L0_ENTRY_TOMB;
        if (kind != CACHEE_L0_ENTRY_LIVE) continue;
        uint64_t loc = l0_e_loc(w1);
        if (loc >= g->arena_units)
            return l0_fail(msg, cap, "shard %lu slot %lu: loc out of arena",
                           (unsigned long)shard, (unsigned long)i);
        uint64_t off = loc * CACHEE_L0_RECORD_ALIGN, seg = off >> g->seg_shift;
        if (l0_gens(h)[seg] != l0_e_gen(w0)) continue; /* stale: allowed */
        uint32_t st = l0_seg(h, seg)->state;
        if (st != CACHEE_L0_SEG_OPEN && st != CACHEE_L0_SEG_SEALED &&
            st != CACHEE_L0_SEG_RECLAIMING)
            return l0_fail(msg, cap,
                           "shard %lu slot %lu: current entry in segment %lu "
                           "of state %u",
                           (unsigned long)shard, (unsigned long)i,
                           (unsigned long)seg, st);
        struct cachee_l0_shm_record r;
        memcpy(&r, l0_arena_ro(h, off), sizeof r);
        if (!l0_record_sane(g, &r, off, l0_e_gen(w0)))
            return l0_fail(msg, cap, "shard %lu slot %lu: bad record at %lu",
                           (unsigned long)shard, (unsigned long)i,
                           (unsigned long)off);
        if ((l0_w1_live(off, l0_rec_len(&r)) ^ w1) & ~(uint64_t)0 >> (64 - L0_VER_SHIFT))
            return l0_fail(msg, cap, "shard %lu slot %lu: entry's line count %u is "
                           "not the record's",
                           (unsigned long)shard, (unsigned long)i, l0_e_lines(w1));
        uint64_t hash;
        if (!l0_rec_hash(h, off, &r, &hash) || l0_shard_of(g, hash) != shard ||
            l0_tag_of(hash) != l0_e_tag(w0))
            return l0_fail(msg, cap, "shard %lu slot %lu: hash mismatch",
                           (unsigned long)shard, (unsigned long)i);
        /* Reachable from its home without crossing an EMPTY slot, and no
         * other current entry of the same key on the way. */
        for (uint64_t p = l0_home_of(g, hash); p != i; p = p + 1 == n ? 0 : p + 1) {
            uint64_t p0 = E[p].w0, p1 = E[p].w1;
            if (l0_e_kind(p1) == CACHEE_L0_ENTRY_EMPTY)
                return l0_fail(msg, cap,
                               "shard %lu slot %lu: unreachable from home %lu",
                               (unsigned long)shard, (unsigned long)i,
                               (unsigned long)l0_home_of(g, hash));
            uint64_t o2, s2;
            struct cachee_l0_shm_record r2;
            if (l0_entry_record(h, p0, p1, &o2, &s2, &r2) && r2.hash_lo == r.hash_lo &&
                r2.key_len == r.key_len &&
                memcmp(l0_arena_ro(h, o2) + L0_RECORD_HEADER,
                       l0_arena_ro(h, off) + L0_RECORD_HEADER, r.key_len) == 0)
                return l0_fail(msg, cap, "shard %lu: key at slots %lu and %lu",
                               (unsigned long)shard, (unsigned long)p,
                               (unsigned long)i);
        }
    }
    if (live != sh->live || tombs != sh->tombs)
        return l0_fail(msg, cap,
                       "shard %lu: counters live=%u tombs=%u, table has %u/%u",
                       (unsigned long)shard, sh->live, sh->tombs, live, tombs);
    if (live > g->live_max)
        return l0_fail(msg, cap, "shard %lu: %u live entries over limit %u",
                       (unsigned long)shard, live, g->live_max);
    return 0;
}

/* Segment table, free stack, rings, slots; global lock held. */
static int check_segments(cachee_l0 *h, char *msg, size_t cap) {
    const l0_geom *g = &h->g;
    const struct cachee_l0_shm_header *hd = l0_hdr(h);
    uint64_t n = g->nsegs, counts[6] = {0}, sealed[2] = {0};
    for (uint64_t i = 0; i < n; i++) {
        const struct cachee_l0_shm_seg *s = l0_seg(h, i);
        if (s->state > CACHEE_L0_SEG_BODY)
            return l0_fail(msg, cap, "segment %lu: bad state %u",
                           (unsigned long)i, s->state);
        if (l0_gens(h)[i] == 0)
            return l0_fail(msg, cap, "segment %lu: generation 0", (unsigned long)i);
        if (s->state == CACHEE_L0_SEG_BODY) {
            const struct cachee_l0_shm_seg *hs =
                s->owner < n ? l0_seg(h, s->owner) : NULL;
            if (hs == NULL || s->owner >= i || s->owner + hs->extent <= i ||
                hs->state == CACHEE_L0_SEG_FREE || hs->state == CACHEE_L0_SEG_BODY)
                return l0_fail(msg, cap, "segment %lu: orphan extent body",
                               (unsigned long)i);
            continue;
        }
        if (s->extent < 1 || i + s->extent > n)
            return l0_fail(msg, cap, "segment %lu: bad extent %u",
                           (unsigned long)i, s->extent);
        for (uint64_t j = i + 1; j < i + s->extent; j++)
            if (l0_seg(h, j)->state != CACHEE_L0_SEG_BODY || l0_seg(h, j)->owner != i)
                return l0_fail(msg, cap, "segment %lu: extent body %lu missing",
                               (unsigned long)i, (unsigned long)j);
        counts[s->state] += s->extent;
        if (s->state == CACHEE_L0_SEG_SEALED) {
            if (s->cls > 1)
                return l0_fail(msg, cap, "segment %lu: bad class", (unsigned long)i);
            sealed[s->cls] += s->extent;
        }
        if (s->state == CACHEE_L0_SEG_OPEN &&
            (s->owner < 1 || s->owner > g->max_procs ||
             l0_slot(h, s->owner - 1)->state == CACHEE_L0_SLOT_FREE))
            return l0_fail(msg, cap, "segment %lu: open, but its owner slot is free",
                           (unsigned long)i);
        if (s->state == CACHEE_L0_SEG_OPEN && s->extent == 1) {
            const struct cachee_l0_shm_slot *sl =
                s->owner >= 1 && s->owner <= g->max_procs ? l0_slot(h, s->owner - 1)
                                                          : NULL;
            bool ref = false;
            for (unsigned c = 0; sl && c < 2; c++)
                ref |= sl->open[c] != 0 && (sl->open[c] >> 32) - 1 == i;
            if (!ref)
                return l0_fail(msg, cap, "segment %lu: open but no owner uses it",
                               (unsigned long)i);
        }
    }
    if (counts[CACHEE_L0_SEG_OPEN] != hd->nopen ||
        counts[CACHEE_L0_SEG_LIMBO] != hd->nlimbo ||
        counts[CACHEE_L0_SEG_RECLAIMING] != hd->nreclaiming ||
        sealed[0] != hd->nsealed[0] || sealed[1] != hd->nsealed[1])
        return l0_fail(msg, cap,
                       "segment counters: open %lu/%lu limbo %lu/%lu reclaiming "
                       "%lu/%lu small %lu/%lu main %lu/%lu (counted/recorded)",
                       (unsigned long)counts[1], (unsigned long)hd->nopen,
                       (unsigned long)counts[4], (unsigned long)hd->nlimbo,
                       (unsigned long)counts[3], (unsigned long)hd->nreclaiming,
                       (unsigned long)sealed[0], (unsigned long)hd->nsealed[0],
                       (unsigned long)sealed[1], (unsigned long)hd->nsealed[1]);
    uint8_t *seen = calloc(n, 1);
    if (seen == NULL) return 0; /* cannot check the rest without memory */
    int rc = 0;
    if (hd->nfree != counts[CACHEE_L0_SEG_FREE]) {
        rc = l0_fail(msg, cap, "free stack holds %lu, table has %lu free",
                     (unsigned long)hd->nfree, (unsigned long)counts[0]);
        goto out;
    }
    for (uint64_t j = 0; j < hd->nfree; j++) {
        uint32_t s = l0_free_stack(h)[j];
        if (s >= n || l0_seg(h, s)->state != CACHEE_L0_SEG_FREE || seen[s]) {
            rc = l0_fail(msg, cap, "free stack entry %lu (segment %u) invalid",
                         (unsigned long)j, s);
            goto out;
        }
        seen[s] = 1;
    }
    memset(seen, 0, n);
    for (unsigned c = 0; c < 2; c++) {
        if (hd->ring_tail[c] < hd->ring_head[c] ||
            hd->ring_tail[c] - hd->ring_head[c] > g->ring_cap) {
            rc = l0_fail(msg, cap, "ring %u: bad head/tail", c);
            goto out;
        }
        for (uint64_t j = hd->ring_head[c]; j < hd->ring_tail[c]; j++) {
            uint64_t e = l0_ring(h, c)[j % g->ring_cap];
            uint64_t s = (uint32_t)e;
            if (s >= n) continue;
            const struct cachee_l0_shm_seg *sg = l0_seg(h, s);
            if (sg->state != CACHEE_L0_SEG_SEALED || sg->cls != c ||
                (uint32_t)sg->seal_seq != (uint32_t)(e >> 32))
                continue; /* stale entry: skipped when popped */
            if (seen[s]) {
                rc = l0_fail(msg, cap, "ring %u: segment %lu queued twice", c,
                             (unsigned long)s);
                goto out;
            }
            seen[s] = 1;
        }
    }
    for (uint64_t i = 0; i < n; i++)
        if (l0_seg(h, i)->state == CACHEE_L0_SEG_SEALED && !seen[i]) {
            rc = l0_fail(msg, cap, "segment %lu: sealed but in no FIFO",
                         (unsigned long)i);
            goto out;
        }
    for (uint64_t s = 0; s < g->max_procs; s++) {
        const struct cachee_l0_shm_slot *sl = l0_slot(h, s);
        if (sl->state > CACHEE_L0_SLOT_PREPARED) {
            rc = l0_fail(msg, cap, "slot %lu: bad state", (unsigned long)s);
            goto out;
        }
        if (sl->state != CACHEE_L0_SLOT_FREE) continue;
        if (sl->npins != 0 || sl->open[0] != 0 || sl->open[1] != 0) {
            rc = l0_fail(msg, cap, "slot %lu: free but holds pins or segments",
                         (unsigned long)s);
            goto out;
        }
    }
out:
    free(seen);
    return rc;
}

int cachee_l0_check(cachee_l0 *h, char *msg, size_t msg_cap) {
    if (h == NULL) return CACHEE_L0_E_INVAL;
    if (msg && msg_cap) msg[0] = '\0';
    int rc = check_header(h, msg, msg_cap);
    if (rc != 0) return rc;
    for (uint64_t s = 0; s < h->g.nshards && rc == 0; s++) {
        if ((rc = l0_shard_lock(h, s)) != 0) return rc;
        if ((rc = l0_global_lock(h)) == 0) {
            rc = check_shard(h, s, msg, msg_cap);
            l0_global_unlock(h);
        }
        l0_shard_unlock(h, s);
    }
    if (rc != 0) return rc;
    if ((rc = l0_global_lock(h)) != 0) return rc;
    rc = check_segments(h, msg, msg_cap);
    l0_global_unlock(h);
    return rc;
}
