/*
 * keygen.c -- key generations and the eviction hook: what a process needs
 * to keep copies of L0 values outside L0 (the Go engine's L1) coherent with
 * what every other process writes.  See KEY GENERATIONS and EVICTION HOOK in
 * cachee_l0.h.
 */
#include "l0_internal.h"

uint32_t cachee_l0_generation(const cachee_l0 *h, uint64_t key_hash) {
    if (h == NULL) return 0;
    return __atomic_load_n(l0_gen_of(h, key_hash), __ATOMIC_SEQ_CST);
}

const uint32_t *cachee_l0_generation_table(const cachee_l0 *h,
                                           uint32_t *count) {
    if (h == NULL) return NULL;
    if (count != NULL) *count = (uint32_t)h->g.keygen_n;
    return (const uint32_t *)(h->ro + h->g.keygen_off);
}

int cachee_l0_set_evict_hook(cachee_l0 *h, cachee_l0_evict_fn fn, void *arg) {
    if (h == NULL) return CACHEE_L0_E_INVAL;
    h->evict_fn = fn;
    h->evict_arg = fn != NULL ? arg : NULL;
    return 0;
}

void l0_evict_notify(cachee_l0 *h, uint64_t off,
                     const struct cachee_l0_shm_record *rec, uint64_t hash) {
    cachee_l0_evict_fn fn = h->evict_fn;
    if (fn == NULL) return;
    if (rec->expires_ns != 0 && l0_now_ns() >= rec->expires_ns) return;
    const uint8_t *p = l0_arena_ro(h, off);
    cachee_l0_evicted e;
    e.key_hash = hash;
    e.key = p + L0_RECORD_HEADER;
    e.key_len = rec->key_len;
    e.meta = p + L0_RECORD_HEADER + rec->key_len;
    e.meta_len = rec->meta_len;
    e.value = p + l0_rec_value_off(rec);
    e.value_len = rec->value_len;
    e.expires_ns = rec->expires_ns;
    e.generation = __atomic_load_n(l0_gen_of(h, hash), __ATOMIC_SEQ_CST);
    e.reserved_ = 0;
    fn(h->evict_arg, &e);
}
