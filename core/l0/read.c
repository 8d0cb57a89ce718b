/*
 * read.c -- lookups: copying reads, optimistic reads, pinned (zero-copy)
 * reads, batches, contains and count.  Readers take no lock; see READERS in
 * cachee_l0.h.
 */
#include "l0_internal.h"

static bool expired(const struct cachee_l0_shm_record *r) {
    return r->expires_ns != 0 && l0_now_ns() >= r->expires_ns;
}

/* Raise a record's frequency while it is below 3 (the only write a hit
 * makes to shared memory, and only until the counter saturates).  The
 * segment must be pinned: an unpinned lookup may have found bytes that were
 * reused since, and a stray increment would corrupt another value. */
static void touch_pinned(cachee_l0 *h, const l0_found *f) {
    uint8_t *fq = &((struct cachee_l0_shm_record *)l0_arena_rw(h, f->off))->freq;
    uint8_t cur = L0_LOAD(fq);
    if (cur < 3) L0_STORE(fq, (uint8_t)(cur + 1));
}

static void touch(cachee_l0 *h, uint64_t slot, const l0_found *f) {
    if (f->rec.freq >= 3) return; /* saturated: a hot key writes nothing */
    if (!l0_pin_if_current(h, slot, f->seg, f->gen)) return;
    touch_pinned(h, f);
    l0_unpin(h, slot, f->seg, 0);
}

static void fill_view(const cachee_l0 *h, const l0_found *f, cachee_l0_view *v) {
    const uint8_t *base = l0_arena_ro(h, f->off);
    v->data = base + l0_rec_value_off(&f->rec);
    v->len = f->rec.value_len;
    v->meta = base + L0_RECORD_HEADER + f->rec.key_len;
    v->meta_len = f->rec.meta_len;
    v->gen = f->gen;
    v->loc = f->off / CACHEE_L0_RECORD_ALIGN;
    v->version = f->rec.version;
    v->expires_ns = f->rec.expires_ns;
    v->key_hash = f->hash;
    v->pin_ = 0;
    v->pin_owner_ = 0;
}

/* Find a live, unexpired key of hash `hash`; counts the hit or miss. */
static int find_live_hashed(cachee_l0 *h, uint64_t slot, uint64_t hash,
                            const void *key, size_t key_len, l0_found *f,
                            bool count) {
    int rc = l0_lookup(h, hash, key, key_len, f);
    struct cachee_l0_shm_slot *sl = l0_slot(h, slot);
    if (rc == 0 && L0_UNLIKELY(expired(&f->rec))) rc = CACHEE_L0_NOTFOUND;
    if (count) {
        if (rc == 0) l0_stat_add(sl, CACHEE_L0_STAT_HITS, 1);
        else if (rc == CACHEE_L0_NOTFOUND) l0_stat_add(sl, CACHEE_L0_STAT_MISSES, 1);
    }
    return rc;
}

static int find_live(cachee_l0 *h, uint64_t slot, const void *key,
                     size_t key_len, l0_found *f, bool count) {
    return find_live_hashed(h, slot, cachee_l0_hash(key, key_len), key, key_len, f,
                            count);
}

int cachee_l0_read_begin(cachee_l0 *h, const void *key, size_t key_len,
                         cachee_l0_view *v) {
    if (v == NULL) return CACHEE_L0_E_INVAL;
    uint64_t slot;
    int rc = l0_enter(h, key, key_len, &slot);
    if (rc != 0) return rc;
    l0_found f;
    if ((rc = find_live(h, slot, key, key_len, &f, true)) != 0) return rc;
    touch(h, slot, &f);
    fill_view(h, &f, v);
    return 0;
}

int cachee_l0_read_validate(const cachee_l0 *h, const cachee_l0_view *v) {
    if (h == NULL || v == NULL) return CACHEE_L0_E_INVAL;
    uint64_t seg = (v->loc * CACHEE_L0_RECORD_ALIGN) >> h->g.seg_shift;
    if (seg >= h->g.nsegs) return CACHEE_L0_E_INVAL;
    L0_FENCE_ACQ();
    return L0_LOAD(&l0_gens(h)[seg]) == v->gen ? 0 : CACHEE_L0_E_RETRY;
}

int cachee_l0_get(cachee_l0 *h, const void *key, size_t key_len, void *buf,
                  size_t cap, cachee_l0_item *item) {
    if (h == NULL || (buf == NULL && cap > 0)) return CACHEE_L0_E_INVAL;
    if (item && item->meta_buf == NULL && item->meta_cap > 0)
        return CACHEE_L0_E_INVAL;
    uint64_t slot;
    int rc = l0_enter(h, key, key_len, &slot);
    if (rc != 0) return rc;
    for (int attempt = 0; attempt < L0_READ_RETRIES; attempt++) {
        l0_found f;
        if ((rc = find_live(h, slot, key, key_len, &f, attempt == 0)) != 0)
            return rc;
        cachee_l0_view v;
        fill_view(h, &f, &v);
        bool small_buf = v.len > cap ||
                         (item && v.meta_len > item->meta_cap && item->meta_buf);
        if (!small_buf) {
            if (v.len) memcpy(buf, v.data, v.len);
            if (item && item->meta_buf && v.meta_len)
                memcpy(item->meta_buf, v.meta, v.meta_len);
        }
        if (!l0_still_valid(h, &f)) continue;
        if (item) {
            item->value_len = v.len;
            item->version = v.version;
            item->expires_ns = v.expires_ns;
            item->meta_len = v.meta_len;
        }
        if (small_buf) return CACHEE_L0_E_BUFFER_TOO_SMALL;
        touch(h, slot, &f);
        return 0;
    }
    return CACHEE_L0_E_CORRUPT;
}

/* Pin the version found and make sure it was not reclaimed meanwhile
 * (Dekker's protocol with the evictor; see PINS). */
static int pin_found(cachee_l0 *h, uint64_t slot, const l0_found *f,
                     cachee_l0_view *v) {
    int rc = l0_pin(h, slot, f->seg, f->rec.value_len);
    if (rc != 0) return rc;
    if (__atomic_load_n(&l0_gens(h)[f->seg], __ATOMIC_SEQ_CST) != f->gen) {
        l0_unpin(h, slot, f->seg, f->rec.value_len);
        return CACHEE_L0_E_RETRY;
    }
    fill_view(h, f, v);
    v->pin_ = f->seg + 1;
    v->pin_owner_ = h->reg_id;
    return 0;
}

int cachee_l0_pin_view(cachee_l0 *h, cachee_l0_view *v) {
    if (h == NULL || v == NULL || v->pin_ != 0 || v->data == NULL)
        return CACHEE_L0_E_INVAL;
    uint64_t seg = (v->loc * CACHEE_L0_RECORD_ALIGN) >> h->g.seg_shift;
    if (v->loc >= h->g.arena_units) return CACHEE_L0_E_INVAL;
    uint64_t slot;
    int rc = l0_my_slot(h, &slot);
    if (rc != 0) return rc;
    if ((rc = l0_pin(h, slot, seg, v->len)) != 0) return rc;
    if (__atomic_load_n(&l0_gens(h)[seg], __ATOMIC_SEQ_CST) != v->gen) {
        l0_unpin(h, slot, seg, v->len);
        return CACHEE_L0_E_RETRY;
    }
    v->pin_ = seg + 1;
    v->pin_owner_ = h->reg_id;
    return 0;
}

static int get_pinned_hashed(cachee_l0 *h, uint64_t slot, uint64_t hash,
                             const void *key, size_t key_len, cachee_l0_view *v) {
    for (int attempt = 0; attempt < L0_READ_RETRIES; attempt++) {
        l0_found f;
        int rc = find_live_hashed(h, slot, hash, key, key_len, &f, attempt == 0);
        if (rc != 0) return rc;
        rc = pin_found(h, slot, &f, v);
        if (rc == CACHEE_L0_E_RETRY) continue;
        if (rc == 0 && f.rec.freq < 3) touch_pinned(h, &f);
        return rc;
    }
    return CACHEE_L0_E_CORRUPT;
}

int cachee_l0_get_pinned(cachee_l0 *h, const void *key, size_t key_len,
                         cachee_l0_view *v) {
    if (v == NULL) return CACHEE_L0_E_INVAL;
    uint64_t slot;
    int rc = l0_enter(h, key, key_len, &slot);
    return rc != 0 ? rc
                   : get_pinned_hashed(h, slot, cachee_l0_hash(key, key_len), key,
                                       key_len, v);
}

/* ------------------------------------------------------------ batches */

/*
 * The first two stages of a group (see cachee_l0_read_many): hash the keys
 * and request their home index entries; then read those entries (plain
 * loads, a hint only: the lookup that follows checks everything) and
 * request the records of the ones whose tag matches.  rc[j] gets the key's
 * argument check (0, or the error that is its result).
 */
static void group_prefetch(const cachee_l0 *h, size_t m, const void *const *keys,
                           const size_t *key_lens, uint64_t *hs, int *rc) {
    const l0_geom *g = &h->g;
    for (size_t j = 0; j < m; j++) {
        rc[j] = l0_check_key(keys[j], key_lens[j]);
        if (rc[j] != 0) continue;
        hs[j] = cachee_l0_hash(keys[j], key_lens[j]);
        __builtin_prefetch(&l0_entries(h, l0_shard_of(g, hs[j]))[l0_home_of(g, hs[j])]);
    }
    for (size_t j = 0; j < m; j++) {
        if (rc[j] != 0) continue;
        const struct cachee_l0_shm_entry *e =
            &l0_entries(h, l0_shard_of(g, hs[j]))[l0_home_of(g, hs[j])];
        uint64_t w0 = L0_LOAD(&e->w0), w1 = L0_LOAD(&e->w1);
        uint64_t loc = l0_e_loc(w1);
        if (l0_e_kind(w1) != CACHEE_L0_ENTRY_LIVE || l0_e_tag(w0) != l0_tag_of(hs[j]) ||
            loc >= g->arena_units)
            continue;
        l0_prefetch_record(h, loc * CACHEE_L0_RECORD_ALIGN, w1);
    }
}

/* One key of a batch whose index entry and record were requested. */
static int read_one(cachee_l0 *h, uint64_t slot, uint64_t hash, const void *key,
                    size_t key_len, cachee_l0_view *v) {
    l0_found f;
    int rc = find_live_hashed(h, slot, hash, key, key_len, &f, true);
    if (rc != 0) return rc;
    touch(h, slot, &f);
    fill_view(h, &f, v);
    return 0;
}

/* The batch loop of read_many (pinned false) and get_many (pinned true). */
static int batch(cachee_l0 *h, size_t n, const void *const *keys,
                 const size_t *key_lens, cachee_l0_view *views, int *results,
                 bool pinned) {
    if (h == NULL || (n > 0 && (keys == NULL || key_lens == NULL || views == NULL ||
                                results == NULL)))
        return CACHEE_L0_E_INVAL;
    uint64_t slot;
    int rc = l0_my_slot(h, &slot);
    if (rc != 0) return rc;
    uint64_t hs[CACHEE_L0_BATCH_GROUP];
    for (size_t base = 0; base < n; base += CACHEE_L0_BATCH_GROUP) {
        size_t m = n - base < CACHEE_L0_BATCH_GROUP ? n - base : CACHEE_L0_BATCH_GROUP;
        group_prefetch(h, m, keys + base, key_lens + base, hs, results + base);
        for (size_t j = 0; j < m; j++) {
            size_t i = base + j;
            memset(&views[i], 0, sizeof views[i]);
            if (results[i] != 0) continue;
            results[i] = pinned ? get_pinned_hashed(h, slot, hs[j], keys[i], key_lens[i],
                                                    &views[i])
                                : read_one(h, slot, hs[j], keys[i], key_lens[i], &views[i]);
        }
    }
    return 0;
}

int cachee_l0_read_many(cachee_l0 *h, size_t n, const void *const *keys,
                        const size_t *key_lens, cachee_l0_view *views,
                        int *results) {
    return batch(h, n, keys, key_lens, views, results, false);
}

int cachee_l0_get_many(cachee_l0 *h, size_t n, const void *const *keys,
                       const size_t *key_lens, cachee_l0_view *views,
                       int *results) {
    return batch(h, n, keys, key_lens, views, results, true);
}

int cachee_l0_is_current(cachee_l0 *h, uint64_t key_hash, uint64_t loc,
                         uint32_t gen) {
    if (h == NULL) return CACHEE_L0_E_INVAL;
    uint64_t slot;
    int rc = l0_my_slot(h, &slot);
    if (rc != 0) return rc;
    rc = l0_entry_is(h, key_hash, loc, gen);
    if (rc == 1) l0_stat_add(l0_slot(h, slot), CACHEE_L0_STAT_HITS, 1);
    return rc;
}

int cachee_l0_contains(cachee_l0 *h, const void *key, size_t key_len) {
    uint64_t slot;
    int rc = l0_enter(h, key, key_len, &slot);
    if (rc != 0) return rc;
    l0_found f;
    rc = find_live(h, slot, key, key_len, &f, false);
    if (rc == 0) return 1;
    return rc == CACHEE_L0_NOTFOUND ? 0 : rc;
}

int64_t cachee_l0_count(cachee_l0 *h) {
    if (h == NULL) return 0;
    int64_t n = 0;
    for (uint64_t s = 0; s < h->g.nshards; s++)
        n += (int64_t)L0_LOAD(&l0_shard(h, s)->live);
    return n < 0 ? 0 : n;
}
