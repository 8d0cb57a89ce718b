/*
 * index.c -- the sharded open-addressing index: lock-free lookups for
 * readers, locked lookups and intent-logged publication for writers, CLOCK
 * eviction when a shard's index fills, in-place rebuild and crash repair.
 * See THE INDEX AND THE PUBLISH PROTOCOL and CRASH RECOVERY in cachee_l0.h.
 */
#include "l0_internal.h"

static uint64_t next_slot(const l0_geom *g, uint64_t i) {
    return i + 1 == g->shard_slots ? 0 : i + 1;
}

bool l0_record_sane(const l0_geom *g, const struct cachee_l0_shm_record *r,
                    uint64_t off, uint32_t gen) {
    if (r->magic != CACHEE_L0_RECORD_MAGIC || r->gen != gen) return false;
    if (r->meta_len > CACHEE_L0_META_MAX || r->value_len > g->record_max) return false;
    uint64_t len = l0_rec_len(r);
    if (off >= g->arena_size) return false;
    if (l0_rec_extent(r)) {
        if ((off & (g->seg_size - 1)) != 0) return false;
        return len <= g->arena_size - off;
    }
    return len <= g->seg_size - (off & (g->seg_size - 1));
}

/* 1: usable record (header copied), 0: stale entry, -1: corrupt. */
static int entry_record(const cachee_l0 *h, uint64_t w0, uint64_t w1,
                        uint64_t *off, uint64_t *seg,
                        struct cachee_l0_shm_record *rec) {
    uint64_t loc = l0_e_loc(w1);
    if (loc >= h->g.arena_units) return -1;
    *off = loc * CACHEE_L0_RECORD_ALIGN;
    *seg = *off >> h->g.seg_shift;
    /* Header, key, metadata and value are adjacent lines: ask for all of
     * them at once so their misses overlap instead of following one
     * another. */
    l0_prefetch_record(h, *off, w1);
    uint32_t gen = l0_e_gen(w0);
    if (L0_LOAD_ACQ(&l0_gens(h)[*seg]) != gen) return 0;
    memcpy(rec, l0_arena_ro(h, *off), sizeof *rec);
    if (l0_record_sane(&h->g, rec, *off, gen)) return 1;
    L0_FENCE_ACQ();
    return L0_LOAD(&l0_gens(h)[*seg]) != gen ? 0 : -1;
}

bool l0_entry_record(const cachee_l0 *h, uint64_t w0, uint64_t w1,
                     uint64_t *off, uint64_t *seg,
                     struct cachee_l0_shm_record *rec) {
    return l0_e_kind(w1) == CACHEE_L0_ENTRY_LIVE &&
           entry_record(h, w0, w1, off, seg, rec) == 1;
}

/*
 * A reader waited too long for a rebuild to end (odd layout sequence) or for
 * an entry to stop being torn (`idx`, or UINT64_MAX): take the shard lock,
 * which repairs the shard if its writer died.  Under the lock no writer can be
 * in the middle of anything, so if the condition still holds the region is
 * damaged: repair the shard now rather than spin.
 */
static void reader_slow_path(cachee_l0 *h, uint64_t shard, uint64_t idx) {
    if (l0_shard_lock(h, shard) != 0) return;
    struct cachee_l0_shm_shard *sh = l0_shard(h, shard);
    bool damaged = (L0_LOAD(&sh->layout_seq) & 1) != 0;
    if (idx < h->g.shard_slots) {
        const struct cachee_l0_shm_entry *e = &l0_entries(h, shard)[idx];
        damaged |= l0_e_ver(L0_LOAD(&e->w0)) != l0_e_ver(L0_LOAD(&e->w1));
    }
    if (damaged) l0_shard_repair(h, shard);
    l0_shard_unlock(h, shard);
}

int l0_lookup(cachee_l0 *h, uint64_t hash, const void *key, size_t key_len,
              l0_found *f) {
    const l0_geom *g = &h->g;
    uint64_t shard = l0_shard_of(g, hash);
    const struct cachee_l0_shm_shard *sh = l0_shard(h, shard);
    const struct cachee_l0_shm_entry *E =
        (const struct cachee_l0_shm_entry *)(h->ro + g->index_off +
                                             shard * g->shard_slots *
                                                 L0_ENTRY_BYTES);
    uint64_t home = l0_home_of(g, hash);
    uint32_t tag = l0_tag_of(hash);

    for (int attempt = 0; attempt < L0_READ_RETRIES; attempt++) {
        uint32_t seq = L0_LOAD_ACQ(&sh->layout_seq);
        if (L0_UNLIKELY(seq & 1)) {
            for (int i = 0; i < L0_SPIN_LAYOUT && (seq & 1); i++) {
                l0_cpu_relax();
                seq = L0_LOAD_ACQ(&sh->layout_seq);
            }
            if (seq & 1) reader_slow_path(h, shard, UINT64_MAX);
            continue;
        }
        uint64_t i = home;
        bool retry = false;
        for (uint64_t step = 0; step < g->shard_slots; step++, i = next_slot(g, i)) {
            uint64_t w1 = L0_LOAD_ACQ(&E[i].w1);
            uint64_t w0 = L0_LOAD_ACQ(&E[i].w0);
            if (L0_UNLIKELY(l0_e_ver(w0) != l0_e_ver(w1))) {
                int spins = 0;
                do {
                    l0_cpu_relax();
                    w1 = L0_LOAD_ACQ(&E[i].w1);
                    w0 = L0_LOAD_ACQ(&E[i].w0);
                } while (l0_e_ver(w0) != l0_e_ver(w1) && ++spins < L0_SPIN_TORN);
                if (l0_e_ver(w0) != l0_e_ver(w1)) {
                    reader_slow_path(h, shard, i);
                    retry = true;
                    break;
                }
            }
            uint32_t kind = l0_e_kind(w1);
            if (kind == CACHEE_L0_ENTRY_EMPTY) break;
            if (kind != CACHEE_L0_ENTRY_LIVE || l0_e_tag(w0) != tag) continue;
            int ok = entry_record(h, w0, w1, &f->off, &f->seg, &f->rec);
            if (ok == 0) continue;
            if (ok < 0) return CACHEE_L0_E_CORRUPT;
            if (f->rec.hash_lo != (uint32_t)hash || f->rec.key_len != key_len) continue;
            if (memcmp(l0_arena_ro(h, f->off) + L0_RECORD_HEADER, key, key_len) != 0) {
                f->gen = l0_e_gen(w0);
                if (!l0_still_valid(h, f)) {
                    retry = true; /* the bytes moved under the compare */
                    break;
                }
                continue;
            }
            f->slot_idx = i;
            f->gen = l0_e_gen(w0);
            f->hash = hash;
            return 0;
        }
        if (retry) continue;
        L0_FENCE_ACQ();
        if (L0_LOAD(&sh->layout_seq) == seq) return CACHEE_L0_NOTFOUND;
    }
    return CACHEE_L0_E_CORRUPT;
}

int l0_entry_is(cachee_l0 *h, uint64_t hash, uint64_t loc, uint32_t gen) {
    const l0_geom *g = &h->g;
    uint64_t shard = l0_shard_of(g, hash);
    const struct cachee_l0_shm_shard *sh = l0_shard(h, shard);
    const struct cachee_l0_shm_entry *E =
        (const struct cachee_l0_shm_entry *)(h->ro + g->index_off +
                                             shard * g->shard_slots * L0_ENTRY_BYTES);
    if (loc >= g->arena_units) return 0;
    uint64_t seg = (loc * CACHEE_L0_RECORD_ALIGN) >> g->seg_shift;
    if (L0_LOAD_ACQ(&sh->layout_seq) & 1) return 0;
    uint32_t tag = l0_tag_of(hash);
    uint64_t i = l0_home_of(g, hash);
    for (uint64_t step = 0; step < g->shard_slots; step++, i = next_slot(g, i)) {
        uint64_t w1 = L0_LOAD_ACQ(&E[i].w1);
        uint64_t w0 = L0_LOAD_ACQ(&E[i].w0);
        if (l0_e_ver(w0) != l0_e_ver(w1)) return 0; /* being written: ask again */
        uint32_t kind = l0_e_kind(w1);
        if (kind == CACHEE_L0_ENTRY_EMPTY) return 0;
        if (kind == CACHEE_L0_ENTRY_LIVE && l0_e_tag(w0) == tag &&
            l0_e_loc(w1) == loc && l0_e_gen(w0) == gen)
            return L0_LOAD_ACQ(&l0_gens(h)[seg]) == gen;
    }
    return 0;
}

/* ------------------------------------------------------------ writers */

static struct cachee_l0_shm_entry *entries_rw(cachee_l0 *h, uint64_t shard) {
    return l0_entries(h, shard);
}

int l0_find_locked(cachee_l0 *h, uint64_t shard, uint64_t hash,
                   const void *key, size_t key_len, l0_wfind *w) {
    const l0_geom *g = &h->g;
    struct cachee_l0_shm_entry *E = entries_rw(h, shard);
    uint32_t tag = l0_tag_of(hash);
    w->found = 0;
    w->expired = 0;
    w->free_idx = UINT64_MAX;
    uint64_t i = l0_home_of(g, hash);
    for (uint64_t step = 0; step < g->shard_slots; step++, i = next_slot(g, i)) {
        uint64_t w0 = L0_LOAD(&E[i].w0), w1 = L0_LOAD(&E[i].w1);
        uint32_t kind = l0_e_kind(w1);
        if (kind == CACHEE_L0_ENTRY_EMPTY) {
            if (w->free_idx == UINT64_MAX) w->free_idx = i;
            return 0;
        }
        if (kind != CACHEE_L0_ENTRY_LIVE) {
            if (w->free_idx == UINT64_MAX) w->free_idx = i;
            continue;
        }
        /* Stale (its segment was reclaimed) or out of the arena: reusable.
         * Both are told from the index and the dense generation array; the
         * record itself is read only when the tag matches, so a probe
         * through a long cluster costs index lines, not a record miss per
         * entry. */
        uint64_t loc = l0_e_loc(w1);
        if (loc >= g->arena_units ||
            L0_LOAD_ACQ(&l0_gens(h)[(loc * CACHEE_L0_RECORD_ALIGN) >> g->seg_shift]) !=
                l0_e_gen(w0)) {
            if (w->free_idx == UINT64_MAX) w->free_idx = i;
            continue;
        }
        if (l0_e_tag(w0) != tag) continue;
        l0_found *f = &w->f;
        int ok = entry_record(h, w0, w1, &f->off, &f->seg, &f->rec);
        if (ok != 1) {
            /* Stale (its segment was reclaimed) or corrupt: reusable. */
            if (w->free_idx == UINT64_MAX) w->free_idx = i;
            continue;
        }
        if (f->rec.hash_lo != (uint32_t)hash ||
            f->rec.key_len != key_len ||
            memcmp(l0_arena_ro(h, f->off) + L0_RECORD_HEADER, key, key_len) != 0)
            continue;
        f->slot_idx = i;
        f->gen = l0_e_gen(w0);
        f->hash = hash;
        w->found = 1;
        w->slot_idx = i;
        w->expired = f->rec.expires_ns != 0 && l0_now_ns() >= f->rec.expires_ns;
        return 0;
    }
    return 0;
}

int l0_find_exact_locked(cachee_l0 *h, uint64_t shard, uint64_t hash,
                         uint64_t off, uint32_t gen, uint64_t *idx) {
    const l0_geom *g = &h->g;
    struct cachee_l0_shm_entry *E = entries_rw(h, shard);
    uint32_t tag = l0_tag_of(hash);
    uint64_t loc = off / CACHEE_L0_RECORD_ALIGN;
    uint64_t i = l0_home_of(g, hash);
    for (uint64_t step = 0; step < g->shard_slots; step++, i = next_slot(g, i)) {
        uint64_t w0 = L0_LOAD(&E[i].w0), w1 = L0_LOAD(&E[i].w1);
        uint32_t kind = l0_e_kind(w1);
        if (kind == CACHEE_L0_ENTRY_EMPTY) break;
        if (kind == CACHEE_L0_ENTRY_LIVE && l0_e_tag(w0) == tag &&
            l0_e_loc(w1) == loc && l0_e_gen(w0) == gen) {
            *idx = i;
            return 0;
        }
    }
    return CACHEE_L0_NOTFOUND;
}

/* Store one entry through the shard's intent, so that a writer killed
 * between the two stores leaves something repair can finish. */
static void entry_store(struct cachee_l0_shm_shard *sh,
                        struct cachee_l0_shm_entry *e, uint64_t idx,
                        uint64_t w0_body, uint64_t w1_body) {
    uint64_t ver = (uint64_t)((l0_e_ver(L0_LOAD(&e->w1)) + 1) & 0xffffu);
    uint64_t w0 = (ver << L0_VER_SHIFT) | w0_body;
    uint64_t w1 = (ver << L0_VER_SHIFT) | w1_body;
    sh->intent_slot = (uint32_t)idx;
    sh->intent_w0 = w0;
    sh->intent_w1 = w1;
    L0_STORE_REL(&sh->intent_active, 1u);
    L0_STORE_REL(&e->w0, w0);
    L0_STORE_REL(&e->w1, w1);
    L0_STORE_REL(&sh->intent_active, 0u);
}

/* Keep live/tombs in step with a kind change. */
static void count_change(struct cachee_l0_shm_shard *sh, uint32_t from,
                         uint32_t to) {
    if (from == to) return;
    if (from == CACHEE_L0_ENTRY_LIVE) sh->live--;
    if (from == CACHEE_L0_ENTRY_TOMB) sh->tombs--;
    if (to == CACHEE_L0_ENTRY_LIVE) sh->live++;
    if (to == CACHEE_L0_ENTRY_TOMB) sh->tombs++;
}

/* Add (sign 1) or remove (sign -1) the bytes of the record a current LIVE
 * entry points to from its segment's live_bytes (see GARBAGE AND PRESSURE). */
static void live_account(cachee_l0 *h, uint64_t w0, uint64_t w1, int64_t sign) {
    if (l0_e_kind(w1) != CACHEE_L0_ENTRY_LIVE) return;
    uint64_t loc = l0_e_loc(w1);
    uint32_t slot_plus1 = h->reg->slot_plus1;
    if (loc >= h->g.arena_units || slot_plus1 == 0) return;
    uint64_t off = loc * CACHEE_L0_RECORD_ALIGN, seg = off >> h->g.seg_shift;
    /* The shard lock does not stop an evictor from reclaiming the segment:
     * pin it before touching its bytes. */
    if (!l0_pin_if_current(h, slot_plus1 - 1, seg, l0_e_gen(w0))) return;
    struct cachee_l0_shm_record r;
    memcpy(&r, l0_arena_ro(h, off), sizeof r);
    uint64_t len = r.value_len > h->g.record_max ? h->g.record_max
                   : r.meta_len > CACHEE_L0_META_MAX ? 0 : l0_rec_len(&r);
    __atomic_fetch_add(&l0_seg(h, seg)->live_bytes, sign * (int64_t)len,
                       __ATOMIC_RELAXED);
    if (sign < 0) /* after the entry stopped pointing here (see entry_set) */
        __atomic_fetch_or(&((struct cachee_l0_shm_record *)l0_arena_rw(h, off))->flags,
                          (uint8_t)CACHEE_L0_RECORD_DEAD, __ATOMIC_RELAXED);
    l0_unpin(h, slot_plus1 - 1, seg, 0);
}

/* Store an entry.  account: the record the entry pointed to stops being
 * live and the new one starts (false when an entry merely moves, in a
 * rebuild). */
static void entry_write(cachee_l0 *h, uint64_t shard, uint64_t idx,
                        uint64_t w0_body, uint64_t w1_body, bool account) {
    struct cachee_l0_shm_shard *sh = l0_shard(h, shard);
    struct cachee_l0_shm_entry *e = &entries_rw(h, shard)[idx];
    uint64_t old0 = L0_LOAD(&e->w0), old1 = L0_LOAD(&e->w1);
    const uint64_t body = (1ull << L0_VER_SHIFT) - 1;
    bool same = (old0 & body) == w0_body && (old1 & body) == w1_body;
    entry_store(sh, e, idx, w0_body, w1_body);
    if (account && !same) {
        live_account(h, old0, old1, -1);
        live_account(h, w0_body, w1_body, 1);
    }
    count_change(sh, l0_e_kind(old1), l0_e_kind(w1_body));
}

static void entry_set(cachee_l0 *h, uint64_t shard, uint64_t idx,
                      uint64_t w0_body, uint64_t w1_body) {
    entry_write(h, shard, idx, w0_body, w1_body, true);
}

void l0_entry_publish(cachee_l0 *h, uint64_t shard, uint64_t idx,
                      uint64_t w0_body, uint64_t w1_body) {
    entry_set(h, shard, idx, w0_body, w1_body);
}

static void entry_empty(cachee_l0 *h, uint64_t shard, uint64_t idx) {
    entry_set(h, shard, idx, 0, l0_w1_body(CACHEE_L0_ENTRY_EMPTY, 0));
}

void l0_entry_kill(cachee_l0 *h, uint64_t shard, uint64_t idx) {
    const l0_geom *g = &h->g;
    struct cachee_l0_shm_entry *E = entries_rw(h, shard);
    /* A tombstone followed by an empty slot ends no probe path: make it and
     * the tombstones before it empty. */
    if (l0_e_kind(L0_LOAD(&E[next_slot(g, idx)].w1)) != CACHEE_L0_ENTRY_EMPTY) {
        entry_set(h, shard, idx, 0, l0_w1_body(CACHEE_L0_ENTRY_TOMB, 0));
        return;
    }
    entry_empty(h, shard, idx);
    uint64_t i = idx;
    for (uint64_t step = 1; step < g->shard_slots; step++) {
        i = i == 0 ? g->shard_slots - 1 : i - 1;
        if (l0_e_kind(L0_LOAD(&E[i].w1)) != CACHEE_L0_ENTRY_TOMB) break;
        entry_empty(h, shard, i);
    }
}

/* Evict one entry of the shard by CLOCK over its slots; false if none.
 * The hand visits slot hand * clock_stride mod shard_slots, a permutation of
 * the slots, rather than the slots in order: evicting neighbours one after
 * another would leave one part of the table nearly empty and the rest
 * nearly full, and linear probing through a nearly full part costs a probe
 * per entry of an ever longer cluster (see EVICTION in cachee_l0.h). */
static bool clock_evict_one(cachee_l0 *h, uint64_t slot, uint64_t shard) {
    const l0_geom *g = &h->g;
    struct cachee_l0_shm_shard *sh = l0_shard(h, shard);
    struct cachee_l0_shm_entry *E = entries_rw(h, shard);
    for (uint64_t step = 0; step < 4 * g->shard_slots; step++) {
        uint64_t hand = sh->hand % g->shard_slots;
        sh->hand = (uint32_t)next_slot(g, hand);
        uint64_t i = hand * g->clock_stride % g->shard_slots;
        uint64_t w0 = L0_LOAD(&E[i].w0), w1 = L0_LOAD(&E[i].w1);
        if (l0_e_kind(w1) != CACHEE_L0_ENTRY_LIVE) continue;
        uint64_t off, seg;
        struct cachee_l0_shm_record r;
        if (entry_record(h, w0, w1, &off, &seg, &r) == 1 &&
            l0_pin_if_current(h, slot, seg, l0_e_gen(w0))) {
            uint8_t *fq = &((struct cachee_l0_shm_record *)l0_arena_rw(h, off))->freq;
            uint8_t f = L0_LOAD(fq);
            if (f > 0 && f <= 3) L0_STORE(fq, (uint8_t)(f - 1));
            bool hot = f > 0 && f <= 3;
            uint64_t hash;
            if (!hot && l0_rec_hash(h, off, &r, &hash)) l0_evict_notify(h, off, &r, hash);
            l0_unpin(h, slot, seg, 0);
            if (hot) continue;
            l0_stat_add(l0_slot(h, slot), CACHEE_L0_STAT_EVICTIONS, 1);
        }
        l0_entry_kill(h, shard, i);
        return true;
    }
    return false;
}

void l0_shard_maintain(cachee_l0 *h, uint64_t slot, uint64_t shard) {
    struct cachee_l0_shm_shard *sh = l0_shard(h, shard);
    while (sh->live > h->g.live_max)
        if (!clock_evict_one(h, slot, shard)) break;
    if (sh->live + sh->tombs > h->g.used_max) l0_shard_rebuild(h, shard);
}

/*
 * Make room before an insert that would exceed the live limit.  When the
 * index, not the arena, is what fills up, every set of a new key needs a
 * slot.  Evicting one entry per set would leave one tombstone per set and a
 * rebuild (a pass over the whole shard, a record read per live entry) every
 * few dozen sets.  Instead evict a batch, down to live_low, and rebuild once
 * now: the batch's slots become EMPTY and the next sets of new keys take
 * them without evicting or rebuilding, so a rebuild is amortised over
 * live_max - live_low sets (10% of the shard).
 */
void l0_shard_make_room(cachee_l0 *h, uint64_t slot, uint64_t shard);
void l0_shard_make_room(cachee_l0 *h, uint64_t slot, uint64_t shard) {
    struct cachee_l0_shm_shard *sh = l0_shard(h, shard);
    if (sh->live >= h->g.live_max) {
        while (sh->live > h->g.live_low)
            if (!clock_evict_one(h, slot, shard)) break;
        l0_shard_rebuild(h, shard);
        return;
    }
    if (sh->live + sh->tombs >= h->g.used_max) l0_shard_rebuild(h, shard);
}

/* ------------------------------------------------------------ rebuild */

static bool same_body(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1) {
    const uint64_t m = (1ull << L0_VER_SHIFT) - 1;
    return (a0 & m) == (b0 & m) && (a1 & m) == (b1 & m);
}

/* A LIVE entry that a rebuild keeps: current, sane and not expired; with
 * `thorough` (repair), its key must also hash to this shard and to the
 * entry's tag.  On true, *home is its home slot, which depends only on the
 * hash's low 32 bits (stored in the record), so a normal rebuild hashes
 * nothing. */
static bool rebuild_keeps(cachee_l0 *h, uint64_t shard, uint64_t w0,
                          uint64_t w1, int64_t now, bool thorough, uint64_t *home) {
    uint64_t off, seg, hash;
    struct cachee_l0_shm_record r;
    if (l0_e_kind(w1) != CACHEE_L0_ENTRY_LIVE ||
        entry_record(h, w0, w1, &off, &seg, &r) != 1)
        return false;
    if (thorough && (!l0_rec_hash(h, off, &r, &hash) || l0_e_tag(w0) != l0_tag_of(hash) ||
                     l0_shard_of(&h->g, hash) != shard))
        return false;
    if (r.expires_ns != 0 && now >= r.expires_ns) return false;
    *home = l0_home_of(&h->g, r.hash_lo);
    return true;
}

/* Move the live entry at i to the first EMPTY slot on its probe path from
 * `home` (a copy is written before the original is cleared), or drop it if
 * a copy of it comes first (a duplicate a crashed rebuild left).  Returns
 * true if it moved. */
static bool rebuild_move(cachee_l0 *h, uint64_t shard, uint64_t i,
                         uint64_t home, uint64_t w0, uint64_t w1) {
    const l0_geom *g = &h->g;
    struct cachee_l0_shm_entry *E = entries_rw(h, shard);
    const uint64_t m = (1ull << L0_VER_SHIFT) - 1;
    const uint64_t empty = l0_w1_body(CACHEE_L0_ENTRY_EMPTY, 0);
    for (uint64_t p = home; p != i; p = next_slot(g, p)) {
        uint64_t p0 = L0_LOAD(&E[p].w0), p1 = L0_LOAD(&E[p].w1);
        if (l0_e_kind(p1) == CACHEE_L0_ENTRY_EMPTY) {
            entry_write(h, shard, p, w0 & m, w1 & m, false);
            entry_write(h, shard, i, 0, empty, false);
            return true;
        }
        if (same_body(p0, p1, w0, w1)) { /* duplicate from a crash */
            entry_write(h, shard, i, 0, empty, false);
            return false;
        }
    }
    return false;
}

/* Ask for the record of the entry at slot i early (a hint only). */
static void rebuild_prefetch(const cachee_l0 *h,
                             const struct cachee_l0_shm_entry *E, uint64_t i) {
    uint64_t w1 = L0_LOAD(&E[i].w1);
    uint64_t loc = l0_e_loc(w1);
    if (l0_e_kind(w1) == CACHEE_L0_ENTRY_LIVE && loc < h->g.arena_units)
        __builtin_prefetch(l0_arena_ro(h, loc * CACHEE_L0_RECORD_ALIGN));
}

#define L0_REBUILD_PREFETCH 8u

/*
 * Rebuild a shard in place (see REBUILD in cachee_l0.h).  `thorough` is for
 * repair, where the table may be in any state a crash or a hostile process
 * left: clean everything, then move entries in as many passes as it takes.
 * Otherwise the table is consistent (every live entry reachable from its
 * home without crossing an EMPTY slot), so one sweep does both at once: it
 * starts after a slot that is EMPTY, which no probe path crosses, so when it
 * reaches an entry every slot between the entry's home and the entry has
 * already been cleaned, and every move frees only slots the sweep has yet to
 * reach.  One record read per live entry, prefetched ahead of the sweep.
 */
static void rebuild_impl(cachee_l0 *h, uint64_t shard, bool thorough) {
    const l0_geom *g = &h->g;
    struct cachee_l0_shm_shard *sh = l0_shard(h, shard);
    struct cachee_l0_shm_entry *E = entries_rw(h, shard);
    uint64_t n = g->shard_slots;
    uint32_t seq = L0_LOAD(&sh->layout_seq);
    if (seq & 1) seq++;
    L0_STORE_REL(&sh->layout_seq, seq + 1);
    L0_FENCE_SEQ();
    int64_t now = l0_now_ns();

    uint64_t orig_empty = n;
    for (uint64_t i = 0; i < n && orig_empty == n; i++)
        if (l0_e_kind(L0_LOAD(&E[i].w1)) == CACHEE_L0_ENTRY_EMPTY) orig_empty = i;

    if (!thorough && orig_empty != n) {
        for (uint64_t k = 1; k < n && k <= L0_REBUILD_PREFETCH; k++)
            rebuild_prefetch(h, E, (orig_empty + k) % n);
        for (uint64_t k = 1; k < n; k++) {
            uint64_t i = (orig_empty + k) % n;
            if (k + L0_REBUILD_PREFETCH < n)
                rebuild_prefetch(h, E, (i + L0_REBUILD_PREFETCH) % n);
            uint64_t w0 = L0_LOAD(&E[i].w0), w1 = L0_LOAD(&E[i].w1);
            if (l0_e_kind(w1) == CACHEE_L0_ENTRY_EMPTY) continue;
            uint64_t home;
            if (!rebuild_keeps(h, shard, w0, w1, now, false, &home)) {
                entry_empty(h, shard, i);
                continue;
            }
            (void)rebuild_move(h, shard, i, home, w0, w1);
        }
        L0_STORE_REL(&sh->layout_seq, seq + 2);
        sh->rebuilds++;
        return;
    }

    /* Phase A: tombstones, stale, corrupt and expired entries become EMPTY. */
    for (uint64_t i = 0; i < n; i++) {
        uint64_t w0 = L0_LOAD(&E[i].w0), w1 = L0_LOAD(&E[i].w1);
        uint64_t home;
        if (l0_e_kind(w1) == CACHEE_L0_ENTRY_EMPTY ||
            rebuild_keeps(h, shard, w0, w1, now, thorough, &home))
            continue;
        entry_empty(h, shard, i);
    }
    /* Phase B: move every live entry to the first empty slot of its probe
     * path, pass after pass until nothing moves. */
    for (int pass = 0; pass < 64; pass++) {
        uint64_t e0 = n;
        for (uint64_t i = 0; e0 == n && i < n; i++)
            if (l0_e_kind(L0_LOAD(&E[i].w1)) == CACHEE_L0_ENTRY_EMPTY) e0 = i;
        if (e0 == n) break; /* full of live entries: nothing can move */
        bool moved = false;
        for (uint64_t k = 1; k <= n; k++) {
            uint64_t i = (e0 + k) % n;
            uint64_t w0 = L0_LOAD(&E[i].w0), w1 = L0_LOAD(&E[i].w1);
            if (l0_e_kind(w1) != CACHEE_L0_ENTRY_LIVE) continue;
            uint64_t off, seg;
            struct cachee_l0_shm_record r;
            if (entry_record(h, w0, w1, &off, &seg, &r) != 1) {
                entry_empty(h, shard, i); /* went stale meanwhile */
                continue;
            }
            moved |= rebuild_move(h, shard, i, l0_home_of(g, r.hash_lo), w0, w1);
        }
        if (!moved) break;
    }
    L0_STORE_REL(&sh->layout_seq, seq + 2);
    sh->rebuilds++;
}

void l0_shard_rebuild(cachee_l0 *h, uint64_t shard) {
    rebuild_impl(h, shard, false);
}

void l0_shard_repair(cachee_l0 *h, uint64_t shard) {
    const l0_geom *g = &h->g;
    struct cachee_l0_shm_shard *sh = l0_shard(h, shard);
    struct cachee_l0_shm_entry *E = entries_rw(h, shard);
    if (L0_LOAD(&sh->intent_active) && sh->intent_slot < g->shard_slots) {
        L0_STORE_REL(&E[sh->intent_slot].w0, sh->intent_w0);
        L0_STORE_REL(&E[sh->intent_slot].w1, sh->intent_w1);
    }
    L0_STORE(&sh->intent_active, 0u);
    /* Anything still torn (a hostile or damaged region) is dropped. */
    for (uint64_t i = 0; i < g->shard_slots; i++) {
        uint64_t w0 = L0_LOAD(&E[i].w0), w1 = L0_LOAD(&E[i].w1);
        if (l0_e_ver(w0) != l0_e_ver(w1) || l0_e_kind(w1) == 3) {
            L0_STORE(&E[i].w0, (uint64_t)l0_e_ver(w1) << L0_VER_SHIFT);
            L0_STORE(&E[i].w1, ((uint64_t)l0_e_ver(w1) << L0_VER_SHIFT) |
                                   l0_w1_body(CACHEE_L0_ENTRY_TOMB, 0));
        }
    }
    /* Counters are recomputed, so the rebuild starts from the truth. */
    uint32_t live = 0, tombs = 0;
    for (uint64_t i = 0; i < g->shard_slots; i++) {
        uint32_t k = l0_e_kind(L0_LOAD(&E[i].w1));
        live += k == CACHEE_L0_ENTRY_LIVE;
        tombs += k == CACHEE_L0_ENTRY_TOMB;
    }
    sh->live = live;
    sh->tombs = tombs;
    rebuild_impl(h, shard, true);
}
