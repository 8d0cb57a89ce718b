/*
 * segments.c -- the log-structured allocator: reservations in a process's
 * open segment, refills, sealing, the FIFO rings and the free stack, LIMBO,
 * large extents, and the repair of all of it from the segment table.
 * See SEGMENTS in cachee_l0.h.  Everything named *_locked runs under the
 * global lock.
 */
#include "l0_internal.h"
#include <stdlib.h>

static uint64_t word_seg(uint64_t w) { return (w >> 32) - 1; }
static uint32_t word_fill(uint64_t w) { return (uint32_t)w; }
static uint64_t make_word(uint64_t seg, uint64_t fill) {
    return ((seg + 1) << 32) | fill;
}

/* ------------------------------------------------------ rings and stack */

static void rebuild_free_stack_locked(cachee_l0 *h);
static void rebuild_rings_locked(cachee_l0 *h);

/* The queue and stack bounds live in shared memory: a damaged header must not
 * send us around a loop 2^40 times or outside the stack.  Out of range means
 * corruption; the structures are rebuilt from the segment table. */
static void sane_queues_locked(cachee_l0 *h) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    if (hd->nfree > h->g.nsegs) rebuild_free_stack_locked(h);
    for (unsigned c = 0; c < 2; c++)
        if (hd->ring_tail[c] < hd->ring_head[c] ||
            hd->ring_tail[c] - hd->ring_head[c] > h->g.ring_cap) {
            rebuild_rings_locked(h);
            break;
        }
}

static bool ring_entry_valid(cachee_l0 *h, unsigned cls, uint64_t e) {
    uint64_t seg = (uint32_t)e;
    if (seg >= h->g.nsegs) return false;
    struct cachee_l0_shm_seg *s = l0_seg(h, seg);
    return s->state == CACHEE_L0_SEG_SEALED && s->cls == cls &&
           (uint32_t)s->seal_seq == (uint32_t)(e >> 32);
}

static void ring_compact_locked(cachee_l0 *h, unsigned cls) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    sane_queues_locked(h);
    uint64_t *ring = l0_ring(h, cls), cap = h->g.ring_cap;
    uint64_t out = hd->ring_head[cls];
    for (uint64_t i = hd->ring_head[cls]; i < hd->ring_tail[cls]; i++) {
        uint64_t e = ring[i % cap];
        if (ring_entry_valid(h, cls, e)) ring[out++ % cap] = e;
    }
    hd->ring_tail[cls] = out;
}

static void ring_push_locked(cachee_l0 *h, unsigned cls, uint64_t seg) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    if (hd->ring_tail[cls] - hd->ring_head[cls] >= h->g.ring_cap)
        ring_compact_locked(h, cls);
    uint64_t e = seg | ((uint64_t)(uint32_t)l0_seg(h, seg)->seal_seq << 32);
    l0_ring(h, cls)[hd->ring_tail[cls] % h->g.ring_cap] = e;
    hd->ring_tail[cls]++;
}

static int64_t ring_pop_locked(cachee_l0 *h, unsigned cls) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    sane_queues_locked(h);
    while (hd->ring_head[cls] < hd->ring_tail[cls]) {
        uint64_t e = l0_ring(h, cls)[hd->ring_head[cls] % h->g.ring_cap];
        hd->ring_head[cls]++;
        if (ring_entry_valid(h, cls, e)) return (int64_t)(uint32_t)e;
    }
    return -1;
}

static void push_free_locked(cachee_l0 *h, uint64_t seg) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    if (hd->nfree < h->g.nsegs) l0_free_stack(h)[hd->nfree++] = (uint32_t)seg;
}

static int64_t pop_free_locked(cachee_l0 *h) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    sane_queues_locked(h);
    while (hd->nfree > 0) {
        uint32_t seg = l0_free_stack(h)[--hd->nfree];
        if (seg < h->g.nsegs && l0_seg(h, seg)->state == CACHEE_L0_SEG_FREE)
            return seg;
    }
    return -1;
}

static void rebuild_free_stack_locked(cachee_l0 *h) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    hd->nfree = 0;
    for (uint64_t i = h->g.nsegs; i-- > 0;)
        if (l0_seg(h, i)->state == CACHEE_L0_SEG_FREE) push_free_locked(h, i);
}

void l0_segments_init(cachee_l0 *h) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    uint32_t *gens = l0_gens(h);
    for (uint64_t i = 0; i < h->g.nsegs; i++) {
        struct cachee_l0_shm_seg *s = l0_seg(h, i);
        memset(s, 0, sizeof *s);
        s->state = CACHEE_L0_SEG_FREE;
        s->extent = 1;
        gens[i] = 1;
    }
    hd->seal_seq = 1;
    rebuild_free_stack_locked(h);
}

/* ------------------------------------------------------------- states */

static void free_extent_locked(cachee_l0 *h, uint64_t seg) {
    uint64_t k = l0_seg(h, seg)->extent;
    if (k < 1 || seg + k > h->g.nsegs) k = 1;
    for (uint64_t i = seg; i < seg + k; i++) {
        struct cachee_l0_shm_seg *s = l0_seg(h, i);
        s->state = CACHEE_L0_SEG_FREE;
        s->extent = 1;
        s->owner = 0;
        s->fill = 0;
        push_free_locked(h, i);
    }
}

static void bump_gens(cachee_l0 *h, uint64_t seg, uint64_t k) {
    uint32_t *gens = l0_gens(h);
    for (uint64_t i = seg; i < seg + k && i < h->g.nsegs; i++) {
        uint32_t g = gens[i] + 1;
        if (g == 0) g = 1;
        __atomic_store_n(&gens[i], g, __ATOMIC_SEQ_CST);
    }
}

static void seal_locked(cachee_l0 *h, uint64_t seg, uint64_t fill) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    struct cachee_l0_shm_seg *s = l0_seg(h, seg);
    if (s->state != CACHEE_L0_SEG_OPEN) return;
    uint64_t k = s->extent ? s->extent : 1;
    if (fill > k * h->g.seg_size) fill = k * h->g.seg_size;
    s->fill = (uint32_t)(fill > UINT32_MAX ? UINT32_MAX : fill);
    s->seal_seq = hd->seal_seq++;
    s->state = CACHEE_L0_SEG_SEALED;
    hd->nopen -= k;
    hd->nsealed[s->cls & 1] += k;
    ring_push_locked(h, s->cls & 1, seg);
}

void l0_seal_slot_locked(cachee_l0 *h, uint64_t slot) {
    struct cachee_l0_shm_slot *sl = l0_slot(h, slot);
    for (unsigned cls = 0; cls < 2; cls++) {
        uint64_t w = __atomic_exchange_n(&sl->open[cls], 0, __ATOMIC_ACQ_REL);
        if (w == 0) continue;
        uint64_t seg = word_seg(w);
        if (seg < h->g.nsegs) seal_locked(h, seg, word_fill(w));
    }
}

void l0_release_segments_of_locked(cachee_l0 *h, uint64_t slot) {
    l0_seal_slot_locked(h, slot);
    for (uint64_t seg = 0; seg < h->g.nsegs; seg++) {
        struct cachee_l0_shm_seg *s = l0_seg(h, seg);
        if (s->owner != slot + 1) continue;
        if (s->state == CACHEE_L0_SEG_OPEN) {
            /* An extent being written (not in the open words), or a segment
             * a refill opened and never installed: seal it whole; a
             * half-written record in it is simply not found by eviction. */
            seal_locked(h, seg, (uint64_t)(s->extent ? s->extent : 1) * h->g.seg_size);
        } else if (s->state == CACHEE_L0_SEG_RECLAIMING) {
            l0_finish_reclaim_locked(h, seg);
        }
    }
}

void l0_finish_reclaim_locked(cachee_l0 *h, uint64_t seg) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    struct cachee_l0_shm_seg *s = l0_seg(h, seg);
    uint64_t k = s->extent ? s->extent : 1;
    bump_gens(h, seg, k);
    hd->nreclaiming -= k;
    if (l0_pinned_locked(h, seg, 1)) {
        s->state = CACHEE_L0_SEG_LIMBO;
        hd->nlimbo += k;
    } else {
        free_extent_locked(h, seg);
    }
}

void l0_release_limbo_locked(cachee_l0 *h) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    if (hd->nlimbo == 0) return;
    for (uint64_t seg = 0; seg < h->g.nsegs; seg++) {
        struct cachee_l0_shm_seg *s = l0_seg(h, seg);
        if (s->state != CACHEE_L0_SEG_LIMBO || l0_pinned_locked(h, seg, 1))
            continue;
        hd->nlimbo -= s->extent ? s->extent : 1;
        free_extent_locked(h, seg);
    }
}

/* Seal every open segment of every process (stealing), so they can be
 * evicted.  Their owners notice at their next compare-and-swap. */
static void steal_all_locked(cachee_l0 *h) {
    uint64_t hwm = L0_LOAD(&l0_hdr(h)->slots_hwm);
    for (uint64_t s = 0; s < hwm && s < h->g.max_procs; s++)
        if (L0_LOAD(&l0_slot(h, s)->state) != CACHEE_L0_SLOT_FREE)
            l0_seal_slot_locked(h, s);
}

int64_t l0_live_total_locked(cachee_l0 *h) {
    int64_t total = 0;
    for (uint64_t i = 0; i < h->g.nsegs; i++) {
        struct cachee_l0_shm_seg *s = l0_seg(h, i);
        if (s->state != CACHEE_L0_SEG_OPEN && s->state != CACHEE_L0_SEG_SEALED &&
            s->state != CACHEE_L0_SEG_RECLAIMING)
            continue;
        int64_t b = L0_LOAD(&s->live_bytes);
        if (b > 0) total += b;
    }
    return total;
}

/* The oldest valid entry of a ring, without popping it (stale entries at the
 * head are dropped); -1 if empty. */
static int64_t ring_peek_locked(cachee_l0 *h, unsigned cls) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    sane_queues_locked(h);
    while (hd->ring_head[cls] < hd->ring_tail[cls]) {
        uint64_t e = l0_ring(h, cls)[hd->ring_head[cls] % h->g.ring_cap];
        if (ring_entry_valid(h, cls, e)) return (int64_t)(uint32_t)e;
        hd->ring_head[cls]++;
    }
    return -1;
}

/*
 * Choose the next segment to reclaim.  Under pressure, S3-FIFO: the small
 * FIFO while it is over its share, else the main one.  Without pressure the
 * work is garbage collection: the oldest sealed segment of either FIFO, the
 * one most likely to hold garbage.
 */
int64_t l0_pick_victim_locked(cachee_l0 *h, bool pressure);
int64_t l0_pick_victim_locked(cachee_l0 *h, bool pressure) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    unsigned first = hd->nsealed[CACHEE_L0_SMALL] > h->g.small_target
                         ? CACHEE_L0_SMALL
                         : CACHEE_L0_MAIN;
    if (!pressure) {
        int64_t a = ring_peek_locked(h, CACHEE_L0_SMALL);
        int64_t b = ring_peek_locked(h, CACHEE_L0_MAIN);
        if (a >= 0 && b >= 0)
            first = l0_seg(h, (uint64_t)a)->seal_seq < l0_seg(h, (uint64_t)b)->seal_seq
                        ? CACHEE_L0_SMALL
                        : CACHEE_L0_MAIN;
    }
    int64_t seg = ring_pop_locked(h, first);
    if (seg < 0) seg = ring_pop_locked(h, 1 - first);
    if (seg < 0) {
        steal_all_locked(h);
        seg = ring_pop_locked(h, first);
        if (seg < 0) seg = ring_pop_locked(h, 1 - first);
    }
    return seg;
}

/* Requeue a hot extent on the MAIN FIFO without copying it. */
void l0_requeue_locked(cachee_l0 *h, uint64_t seg);
void l0_requeue_locked(cachee_l0 *h, uint64_t seg) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    struct cachee_l0_shm_seg *s = l0_seg(h, seg);
    uint64_t k = s->extent ? s->extent : 1;
    s->cls = CACHEE_L0_MAIN;
    s->seal_seq = hd->seal_seq++;
    s->state = CACHEE_L0_SEG_SEALED;
    hd->nreclaiming -= k;
    hd->nsealed[CACHEE_L0_MAIN] += k;
    ring_push_locked(h, CACHEE_L0_MAIN, seg);
}

/* --------------------------------------------------------- reservation */

static void maybe_reap_locked(cachee_l0 *h) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    int64_t now = l0_now_ns();
    if (now - L0_LOAD(&hd->last_reap_ns) < L0_REAP_INTERVAL_NS) return;
    L0_STORE(&hd->last_reap_ns, now);
    l0_reap_locked(h);
}

/* Free segments ordinary writers leave to evictors, so that reinsertion of
 * hot records has somewhere to go while no other segment is free. */
#define L0_EVICT_RESERVE 2u

/* Get a free segment, evicting when allowed.  Global lock held on entry and
 * on return (it is dropped while evicting).  Returns the segment, or -1 with
 * *rc set.  An evictor (may_evict false) may use the reserve. */
static int64_t take_free_segment(cachee_l0 *h, uint64_t slot, bool may_evict,
                                 int *rc) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    uint64_t rounds = 0;
    for (;;) {
        l0_release_limbo_locked(h);
        if (!may_evict || hd->nfree > L0_EVICT_RESERVE) {
            int64_t seg = pop_free_locked(h);
            if (seg >= 0) return seg;
            if (!may_evict) {
                *rc = CACHEE_L0_E_FULL;
                return -1;
            }
        }
        maybe_reap_locked(h);
        if (hd->nfree > L0_EVICT_RESERVE) continue;
        l0_global_unlock(h);
        /* Reclaiming copies live records forward; if a whole sweep of the
         * FIFOs gained nothing, evict regardless of the pressure mark. */
        int e = l0_make_space(h, slot, ++rounds > h->g.nsegs / 2 + 8);
        int lrc = l0_global_lock(h);
        if (lrc != 0) {
            *rc = lrc;
            return -1;
        }
        if (e != 0) {
            /* Nothing left to evict: reap now, then take the reserve. */
            l0_reap_locked(h);
            l0_release_limbo_locked(h);
            int64_t seg = pop_free_locked(h);
            if (seg >= 0) return seg;
            *rc = e;
            return -1;
        }
    }
}

/* Install a fresh open segment with our reservation in it. */
static int refill(cachee_l0 *h, uint64_t slot, unsigned cls, uint64_t len,
                  bool may_evict, bool fresh, l0_space *sp) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    struct cachee_l0_shm_slot *sl = l0_slot(h, slot);
    int rc = l0_global_lock(h);
    if (rc != 0) return rc;
    int64_t seg;
    for (;;) {
        uint64_t w = L0_LOAD_ACQ(&sl->open[cls]);
        if (w != 0 && word_fill(w) + len <= h->g.seg_size && !fresh) {
            l0_global_unlock(h); /* another thread refilled */
            return CACHEE_L0_E_RETRY;
        }
        fresh = false;
        if (w != 0) {
            if (!__atomic_compare_exchange_n(&sl->open[cls], &w, 0, false,
                                             __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
                continue;
            if (word_seg(w) < h->g.nsegs) seal_locked(h, word_seg(w), word_fill(w));
        }
        seg = take_free_segment(h, slot, may_evict, &rc);
        if (seg < 0) {
            l0_global_unlock(h);
            return rc;
        }
        if (L0_LOAD_ACQ(&sl->open[cls]) == 0) break;
        push_free_locked(h, (uint64_t)seg); /* raced with a sibling thread */
    }
    struct cachee_l0_shm_seg *s = l0_seg(h, (uint64_t)seg);
    s->state = CACHEE_L0_SEG_OPEN;
    L0_STORE(&s->live_bytes, (int64_t)0);
    s->cls = cls;
    s->owner = (uint32_t)(slot + 1);
    s->owner_gen = L0_LOAD(&sl->gen);
    s->extent = 1;
    s->fill = 0;
    hd->nopen++;
    rc = l0_pin(h, slot, (uint64_t)seg, 0);
    if (rc != 0) {
        seal_locked(h, (uint64_t)seg, 0);
        l0_global_unlock(h);
        return rc;
    }
    sp->gen = L0_LOAD_ACQ(&l0_gens(h)[seg]); /* before anyone can seal it */
    L0_STORE_REL(&sl->open[cls], make_word((uint64_t)seg, len));
    l0_global_unlock(h);
    sp->seg = (uint64_t)seg;
    sp->off = (uint64_t)seg << h->g.seg_shift;
    sp->cls = cls;
    return 0;
}

/*
 * Find a window of at least k contiguous segments that can all be taken: it
 * starts at a FREE segment or a sealed head and grows over FREE segments and
 * whole, unpinned sealed extents (free_only: FREE segments only) until it
 * covers k.  Of all such windows, the one holding the fewest live bytes (the
 * least to copy or evict).  Returns its start and stores its length (>= k)
 * in *len, or -1.
 */
static int64_t find_window_locked(cachee_l0 *h, uint64_t k, bool free_only,
                                  uint64_t *len) {
    uint64_t n = h->g.nsegs;
    if (k > n) return -1;
    int64_t best = -1;
    int64_t best_live = INT64_MAX;
    uint64_t budget = 1u << 20; /* segment visits: bounded work on huge regions */
    uint64_t first = l0_hdr(h)->large_cursor % n;
    for (uint64_t t = 0; t < n && best_live > 0 && budget > 0; t++) {
        uint64_t start = (first + t) % n, i = start;
        int64_t live = 0;
        while (i < n && i - start < k && budget > 0) {
            struct cachee_l0_shm_seg *s = l0_seg(h, i);
            uint64_t ext = s->extent ? s->extent : 1;
            budget--;
            if (s->state == CACHEE_L0_SEG_FREE) {
                i++;
            } else if (!free_only && s->state == CACHEE_L0_SEG_SEALED &&
                       i + ext <= n && !l0_pinned_locked(h, i, 1)) {
                int64_t b = L0_LOAD(&s->live_bytes);
                live += b > 0 ? b : 0;
                i += ext;
            } else {
                break;
            }
        }
        if (i - start >= k && live < best_live) {
            best = (int64_t)start;
            best_live = live;
            *len = i - start;
        }
    }
    return best;
}

/* Reserve an extent of k contiguous segments for one large record.  Every
 * segment of the chosen window becomes RECLAIMING and ours (a reaper finishes
 * them if we die), sealed extents in it are evicted, the first k segments
 * become one OPEN extent and the rest go back to the free stack, unless a
 * reader pinned a piece meanwhile (then all of it is released and another
 * window is tried). */
static int reserve_extent(cachee_l0 *h, uint64_t slot, uint64_t len,
                          l0_space *sp) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    uint64_t k = (len + h->g.seg_size - 1) >> h->g.seg_shift;
    if (k * h->g.seg_size > h->g.record_max) return CACHEE_L0_E_VALUE_TOO_LARGE;
    int rc = l0_global_lock(h);
    if (rc != 0) return rc;
    uint32_t me = (uint32_t)(slot + 1);
    for (int attempt = 0; attempt < 16; attempt++) {
        l0_release_limbo_locked(h);
        uint64_t wlen = 0;
        int64_t start = find_window_locked(h, k, true, &wlen);
        if (start < 0) {
            if (attempt == 1) l0_reap_locked(h);
            if (attempt >= 2) steal_all_locked(h);
            start = find_window_locked(h, k, false, &wlen);
        }
        if (start < 0) continue;
        uint64_t lo = (uint64_t)start, hi = lo + wlen;
        bool busy = false;
        for (uint64_t i = lo; i < hi;) {
            struct cachee_l0_shm_seg *s = l0_seg(h, i);
            uint64_t ext = s->extent ? s->extent : 1;
            if (s->state == CACHEE_L0_SEG_SEALED) {
                hd->nsealed[s->cls & 1] -= ext;
                busy = true;
            } else {
                s->extent = 1;
                s->fill = 0;
                ext = 1;
            }
            s->state = CACHEE_L0_SEG_RECLAIMING;
            s->owner = me;
            hd->nreclaiming += ext;
            i += ext;
        }
        rebuild_free_stack_locked(h);
        hd->large_cursor = hi;
        if (busy) {
            /* Below the pressure mark the live records of the window are
             * copied out (garbage collection); above it, evicted. */
            int64_t target = (int64_t)(h->g.arena_size / 100 * L0_PRESSURE_PERCENT);
            int64_t excess = l0_live_total_locked(h) - target;
            l0_global_unlock(h);
            for (uint64_t i = lo; i < hi;) {
                struct cachee_l0_shm_seg *s = l0_seg(h, i);
                uint64_t ext = s->extent ? s->extent : 1;
                if (s->fill > 0) l0_reclaim_records(h, slot, i, &excess);
                i += ext;
            }
            if ((rc = l0_global_lock(h)) != 0) return rc;
        }
        /* Generations first, then pins (see PINS). */
        bool pinned = false, lost = false;
        for (uint64_t i = lo; i < hi;) {
            struct cachee_l0_shm_seg *s = l0_seg(h, i);
            uint64_t ext = s->extent ? s->extent : 1;
            if (s->state != CACHEE_L0_SEG_RECLAIMING || s->owner != me) {
                lost = true; /* a repair took it back; give up this window */
                i += ext;
                continue;
            }
            bump_gens(h, i, ext);
            if (l0_pinned_locked(h, i, 1)) pinned = true;
            i += ext;
        }
        if (pinned || lost) {
            for (uint64_t i = lo; i < hi;) {
                struct cachee_l0_shm_seg *s = l0_seg(h, i);
                uint64_t ext = s->extent ? s->extent : 1;
                if (s->state == CACHEE_L0_SEG_RECLAIMING && s->owner == me)
                    l0_finish_reclaim_locked(h, i);
                i += ext;
            }
            continue;
        }
        hd->nreclaiming -= wlen;
        for (uint64_t i = lo; i < hi; i++) {
            struct cachee_l0_shm_seg *s = l0_seg(h, i);
            s->extent = 1;
            s->fill = 0;
            if (i >= lo + k) { /* surplus of the window */
                s->state = CACHEE_L0_SEG_FREE;
                s->owner = 0;
                push_free_locked(h, i);
            } else if (i > lo) {
                s->state = CACHEE_L0_SEG_BODY;
                s->owner = (uint32_t)lo;
            }
        }
        struct cachee_l0_shm_seg *head = l0_seg(h, lo);
        head->state = CACHEE_L0_SEG_OPEN;
        L0_STORE(&head->live_bytes, (int64_t)0);
        head->cls = CACHEE_L0_SMALL;
        head->owner = me;
        head->owner_gen = L0_LOAD(&l0_slot(h, slot)->gen);
        head->extent = (uint32_t)k;
        hd->nopen += k;
        rc = l0_pin(h, slot, lo, 0);
        sp->gen = L0_LOAD_ACQ(&l0_gens(h)[lo]); /* under the lock */
        l0_global_unlock(h);
        if (rc != 0) return rc;
        sp->seg = lo;
        sp->off = lo << h->g.seg_shift;
        sp->cls = CACHEE_L0_SMALL;
        return 0;
    }
    l0_global_unlock(h);
    return CACHEE_L0_E_FULL;
}

int l0_reserve(cachee_l0 *h, uint64_t slot, unsigned cls, uint64_t len,
               bool may_evict, l0_space *sp) {
    if (len > h->g.seg_size) {
        if (!may_evict) return CACHEE_L0_E_FULL;
        return reserve_extent(h, slot, len, sp);
    }
    struct cachee_l0_shm_slot *sl = l0_slot(h, slot);
    for (;;) {
        uint64_t w = L0_LOAD_ACQ(&sl->open[cls]);
        bool fresh = false; /* this segment cannot take our pin: use another */
        if (w != 0 && word_fill(w) + len <= h->g.seg_size &&
            word_seg(w) < h->g.nsegs) {
            uint64_t seg = word_seg(w);
            int rc = l0_pin(h, slot, seg, 0);
            if (rc == 0) {
                /* The generation is read before the reservation is visible:
                 * if the segment is sealed and reclaimed after our CAS, its
                 * generation moves past this one and our entry is merely
                 * stale.  Read after, it could carry the new generation into
                 * a segment that is reused when we unpin. */
                uint32_t gen = __atomic_load_n(&l0_gens(h)[seg], __ATOMIC_SEQ_CST);
                if (__atomic_compare_exchange_n(&sl->open[cls], &w, w + len, false,
                                                __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
                    sp->seg = seg;
                    sp->off = (seg << h->g.seg_shift) + word_fill(w);
                    sp->gen = gen;
                    sp->cls = cls;
                    return 0;
                }
                l0_unpin(h, slot, seg, 0);
                continue;
            }
            if (rc != CACHEE_L0_E_TOO_MANY_PINS) return rc;
            fresh = true; /* our views hold 65535 pins on it */
        }
        int rc = refill(h, slot, cls, len, may_evict, fresh, sp);
        if (rc != CACHEE_L0_E_RETRY) return rc;
    }
}

void l0_reserve_done(cachee_l0 *h, uint64_t slot, const l0_space *sp,
                     uint64_t len) {
    if (len > h->g.seg_size && l0_global_lock(h) == 0) {
        seal_locked(h, sp->seg, len);
        l0_global_unlock(h);
    }
    l0_unpin(h, slot, sp->seg, 0);
}

/* ------------------------------------------------------------- repair */

static int cmp_seal(const void *a, const void *b, void *hv) {
    cachee_l0 *h = hv;
    uint64_t x = l0_seg(h, *(const uint32_t *)a)->seal_seq;
    uint64_t y = l0_seg(h, *(const uint32_t *)b)->seal_seq;
    return x < y ? -1 : x > y;
}

void l0_repair_global(cachee_l0 *h) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    uint64_t n = h->g.nsegs;
    /* Extents: a BODY must belong to a live head that covers it. */
    for (uint64_t i = 0; i < n; i++) {
        struct cachee_l0_shm_seg *s = l0_seg(h, i);
        if (s->state > CACHEE_L0_SEG_BODY) s->state = CACHEE_L0_SEG_FREE;
        if (s->state != CACHEE_L0_SEG_BODY) {
            if (s->extent < 1 || i + s->extent > n) s->extent = 1;
            continue;
        }
        uint64_t head = s->owner;
        struct cachee_l0_shm_seg *hs = head < n ? l0_seg(h, head) : NULL;
        if (hs == NULL || head >= i || hs->state == CACHEE_L0_SEG_FREE ||
            hs->state == CACHEE_L0_SEG_BODY || head + hs->extent <= i) {
            s->state = CACHEE_L0_SEG_FREE;
            s->extent = 1;
            bump_gens(h, i, 1);
        }
    }
    /* Orphan OPEN segments (a refill died before installing them). */
    for (uint64_t i = 0; i < n; i++) {
        struct cachee_l0_shm_seg *s = l0_seg(h, i);
        if (s->state != CACHEE_L0_SEG_OPEN || s->extent > 1) continue;
        bool referenced = false;
        if (s->owner >= 1 && s->owner <= h->g.max_procs) {
            struct cachee_l0_shm_slot *sl = l0_slot(h, s->owner - 1);
            for (unsigned c = 0; c < 2; c++) {
                uint64_t w = L0_LOAD(&sl->open[c]);
                if (w != 0 && word_seg(w) == i) referenced = true;
            }
        }
        if (!referenced) {
            s->fill = (uint32_t)h->g.seg_size;
            s->seal_seq = hd->seal_seq++;
            s->state = CACHEE_L0_SEG_SEALED;
        }
    }
    /* Counters, free stack and rings from the table. */
    hd->nopen = hd->nlimbo = hd->nreclaiming = 0;
    hd->nsealed[0] = hd->nsealed[1] = 0;
    uint64_t maxseq = 0;
    uint32_t *order = NULL;
    for (uint64_t i = 0; i < n; i++) {
        struct cachee_l0_shm_seg *s = l0_seg(h, i);
        uint64_t k = s->state == CACHEE_L0_SEG_BODY ? 0 : s->extent;
        switch (s->state) {
        case CACHEE_L0_SEG_OPEN: hd->nopen += k; break;
        case CACHEE_L0_SEG_LIMBO: hd->nlimbo += k; break;
        case CACHEE_L0_SEG_RECLAIMING: hd->nreclaiming += k; break;
        case CACHEE_L0_SEG_SEALED:
            s->cls &= 1;
            hd->nsealed[s->cls] += k;
            break;
        default: break;
        }
        if (s->seal_seq > maxseq) maxseq = s->seal_seq;
    }
    if (hd->seal_seq <= maxseq) hd->seal_seq = maxseq + 1;
    free(order);
    rebuild_rings_locked(h);
    rebuild_free_stack_locked(h);
}

/* Both FIFOs from the segment table, in seal order. */
static void rebuild_rings_locked(cachee_l0 *h) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    uint64_t n = h->g.nsegs, nsealed = 0;
    for (unsigned c = 0; c < 2; c++) hd->ring_head[c] = hd->ring_tail[c] = 0;
    uint32_t *order = malloc(n * sizeof *order);
    if (order == NULL) return; /* sealed segments wait for the next repair */
    for (uint64_t i = 0; i < n; i++)
        if (l0_seg(h, i)->state == CACHEE_L0_SEG_SEALED) order[nsealed++] = (uint32_t)i;
    qsort_r(order, nsealed, sizeof *order, cmp_seal, h);
    for (uint64_t j = 0; j < nsealed; j++) {
        unsigned c = l0_seg(h, order[j])->cls & 1;
        uint64_t e = order[j] | ((uint64_t)(uint32_t)l0_seg(h, order[j])->seal_seq << 32);
        l0_ring(h, c)[hd->ring_tail[c]++ % h->g.ring_cap] = e;
    }
    free(order);
}
