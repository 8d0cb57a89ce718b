/*
 * write.c -- set, delete, and the copy-forward used by eviction.  A write
 * builds the whole record in its reservation, then publishes it with one
 * entry update under the shard lock (MVCC); see WRITES in cachee_l0.h.
 */
#include "l0_internal.h"

void l0_shard_make_room(cachee_l0 *h, uint64_t slot, uint64_t shard);

/* A promotion (cachee_l0_promote): store only if absent and the key's
 * generation is still `expect`; the generation is not bumped. */
#define L0_SET_PROMOTE 0x100u

static int set_impl(cachee_l0 *h, const void *key, size_t key_len,
                    const void *value, size_t value_len, const void *meta,
                    size_t meta_len, int64_t expires, uint32_t flags,
                    uint32_t expect);

int cachee_l0_set(cachee_l0 *h, const void *key, size_t key_len,
                  const void *value, size_t value_len, const void *meta,
                  size_t meta_len, uint64_t ttl_ns, uint32_t flags) {
    if (h == NULL || (flags & ~CACHEE_L0_IF_ABSENT)) return CACHEE_L0_E_INVAL;
    int64_t expires = 0;
    if (ttl_ns > 0) {
        int64_t now = l0_now_ns();
        if (ttl_ns > (uint64_t)(INT64_MAX - now)) return CACHEE_L0_E_INVAL;
        expires = now + (int64_t)ttl_ns;
    }
    return set_impl(h, key, key_len, value, value_len, meta, meta_len, expires,
                    flags, 0);
}

int cachee_l0_promote(cachee_l0 *h, const void *key, size_t key_len,
                      const void *value, size_t value_len, const void *meta,
                      size_t meta_len, int64_t expires_ns,
                      uint32_t expect_gen) {
    if (h == NULL || expires_ns < 0) return CACHEE_L0_E_INVAL;
    if (expires_ns != 0 && l0_now_ns() >= expires_ns) return CACHEE_L0_STALE;
    return set_impl(h, key, key_len, value, value_len, meta, meta_len,
                    expires_ns, CACHEE_L0_IF_ABSENT | L0_SET_PROMOTE,
                    expect_gen);
}

static int set_impl(cachee_l0 *h, const void *key, size_t key_len,
                    const void *value, size_t value_len, const void *meta,
                    size_t meta_len, int64_t expires, uint32_t flags,
                    uint32_t expect) {
    if ((value == NULL && value_len > 0) || (meta == NULL && meta_len > 0))
        return CACHEE_L0_E_INVAL;
    int rc = l0_check_key(key, key_len);
    if (rc != 0) return rc;
    if (meta_len > CACHEE_L0_META_MAX) return CACHEE_L0_E_META_TOO_LARGE;
    if (value_len > h->g.value_max) return CACHEE_L0_E_VALUE_TOO_LARGE;
    uint64_t len = l0_record_len(key_len, meta_len, value_len);
    if (len > h->g.record_max) return CACHEE_L0_E_VALUE_TOO_LARGE;
    uint64_t slot;
    if ((rc = l0_my_slot(h, &slot)) != 0) return rc;
    struct cachee_l0_shm_slot *sl = l0_slot(h, slot);
    uint64_t hash = cachee_l0_hash(key, key_len);
    uint64_t shard = l0_shard_of(&h->g, hash);

    l0_space sp;
    rc = l0_reserve(h, slot, CACHEE_L0_SMALL, len, true, &sp);
    if (rc != 0) {
        if (rc == CACHEE_L0_E_FULL) l0_stat_add(sl, CACHEE_L0_STAT_SET_FAILURES, 1);
        return rc;
    }
    uint8_t *dst = l0_arena_rw(h, sp.off);
    struct cachee_l0_shm_record *r = (struct cachee_l0_shm_record *)dst;
    memset(r, 0, sizeof *r);
    r->magic = CACHEE_L0_RECORD_MAGIC;
    r->gen = sp.gen;
    r->hash_lo = (uint32_t)hash;
    r->value_len = (uint32_t)value_len; /* value_max < 4 GiB */
    r->expires_ns = expires;
    r->key_len = (uint16_t)key_len;
    r->meta_len = (uint16_t)meta_len;
    r->flags = len > h->g.seg_size ? CACHEE_L0_RECORD_EXTENT : 0;
    memcpy(dst + L0_RECORD_HEADER, key, key_len);
    if (meta_len) memcpy(dst + L0_RECORD_HEADER + key_len, meta, meta_len);
    if (value_len) memcpy(dst + l0_value_off(key_len, meta_len, value_len), value, value_len);

    if ((rc = l0_shard_lock(h, shard)) != 0) {
        l0_reserve_done(h, slot, &sp, len);
        return rc;
    }
    struct cachee_l0_shm_shard *sh = l0_shard(h, shard);
    l0_shard_make_room(h, slot, shard);
    l0_wfind w;
    l0_find_locked(h, shard, hash, key, key_len, &w);
    if (w.found && !w.expired && (flags & CACHEE_L0_IF_ABSENT)) {
        l0_shard_unlock(h, shard);
        l0_reserve_done(h, slot, &sp, len); /* the record stays unreachable */
        return CACHEE_L0_EXISTS;
    }
    uint32_t *genp = l0_gen_of(h, hash);
    if ((flags & L0_SET_PROMOTE) &&
        __atomic_load_n(genp, __ATOMIC_SEQ_CST) != expect) {
        l0_shard_unlock(h, shard);
        l0_reserve_done(h, slot, &sp, len);
        return CACHEE_L0_STALE;
    }
    uint8_t freq = 0;
    if (w.found && !w.expired) {
        freq = L0_LOAD(&((struct cachee_l0_shm_record *)l0_arena_rw(h, w.f.off))->freq);
        if (freq > 3) freq = 3;
    } else if (l0_ghost_hit(h, hash)) {
        freq = 1;
    }
    if (w.found && w.expired) l0_stat_add(sl, CACHEE_L0_STAT_EXPIRATIONS, 1);
    uint64_t idx = w.found ? w.slot_idx : w.free_idx;
    if (idx == UINT64_MAX) { /* cannot happen below the live limit */
        l0_shard_unlock(h, shard);
        l0_reserve_done(h, slot, &sp, len);
        l0_stat_add(sl, CACHEE_L0_STAT_SET_FAILURES, 1);
        return CACHEE_L0_E_FULL;
    }
    r->freq = freq;
    r->version = (uint32_t)++sh->version;
    /* KEY GENERATIONS: bumped before the new value is published. */
    if (!(flags & L0_SET_PROMOTE)) __atomic_fetch_add(genp, 1, __ATOMIC_SEQ_CST);
    l0_entry_publish(h, shard, idx, l0_w0_body(l0_tag_of(hash), sp.gen),
                     l0_w1_live(sp.off, len));
    l0_shard_maintain(h, slot, shard);
    l0_shard_unlock(h, shard);
    l0_reserve_done(h, slot, &sp, len);
    l0_stat_add(sl, CACHEE_L0_STAT_SETS, 1);
    return 0;
}

int cachee_l0_delete(cachee_l0 *h, const void *key, size_t key_len) {
    uint64_t slot;
    int rc = l0_enter(h, key, key_len, &slot);
    if (rc != 0) return rc;
    uint64_t hash = cachee_l0_hash(key, key_len);
    uint64_t shard = l0_shard_of(&h->g, hash);
    if ((rc = l0_shard_lock(h, shard)) != 0) return rc;
    /* KEY GENERATIONS: a delete bumps even an absent key's generation, so
     * that copies other processes keep outside L0 are dropped too. */
    __atomic_fetch_add(l0_gen_of(h, hash), 1, __ATOMIC_SEQ_CST);
    l0_wfind w;
    l0_find_locked(h, shard, hash, key, key_len, &w);
    if (w.found) {
        l0_entry_kill(h, shard, w.slot_idx);
        l0_stat_add(l0_slot(h, slot), w.expired ? CACHEE_L0_STAT_EXPIRATIONS
                                                : CACHEE_L0_STAT_DELETES, 1);
    }
    l0_shard_unlock(h, shard);
    return w.found && !w.expired ? 0 : CACHEE_L0_NOTFOUND;
}

int l0_reinsert_locked(cachee_l0 *h, uint64_t slot, uint64_t shard,
                       uint64_t idx, uint64_t src,
                       const struct cachee_l0_shm_record *rec, uint64_t hash,
                       unsigned cls, uint8_t freq) {
    l0_space sp;
    uint64_t len = l0_rec_len(rec);
    int rc = l0_reserve(h, slot, cls, len, false, &sp);
    if (rc != 0) return rc;
    uint8_t *dst = l0_arena_rw(h, sp.off);
    memcpy(dst, l0_arena_ro(h, src), len);
    struct cachee_l0_shm_record *r = (struct cachee_l0_shm_record *)dst;
    memcpy(r, rec, sizeof *r); /* the validated header, not a re-read */
    r->gen = sp.gen;
    r->freq = freq;
    l0_entry_publish(h, shard, idx, l0_w0_body(l0_tag_of(hash), sp.gen),
                     l0_w1_live(sp.off, len));
    l0_reserve_done(h, slot, &sp, len);
    return 0;
}
