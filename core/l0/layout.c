/*
 * layout.c -- the region's geometry as a pure function of its creation
 * parameters, and the format word.  Creator and openers run the same code,
 * so an opener can require that every offset in a header equals what it
 * computes itself.
 */
#include "l0_internal.h"

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

static uint64_t pow2_floor(uint64_t x) {
    uint64_t p = 1;
    while (p <= x / 2) p *= 2;
    return p;
}

static uint64_t pow2_ceil(uint64_t x) {
    uint64_t p = 1;
    while (p < x) p *= 2;
    return p;
}

static unsigned log2u(uint64_t x) {
    unsigned n = 0;
    while ((1ull << n) < x) n++;
    return n;
}

/* Offsets of every table for a given number of segments. */
static void place_tables(l0_geom *g, uint64_t arena_align) {
    g->ring_cap = g->nsegs + 1;
    g->slots_off = L0_HEADER_BYTES;
    g->pins_off = align_up(g->slots_off + g->max_procs * L0_SLOT_BYTES, 4096);
    g->segs_off = align_up(g->pins_off + g->max_procs * g->nsegs * 2, 64);
    g->gens_off = align_up(g->segs_off + g->nsegs * L0_SEG_BYTES, 64);
    g->rings_off = align_up(g->gens_off + g->nsegs * 4, 64);
    g->free_off = align_up(g->rings_off + 2 * g->ring_cap * 8, 64);
    g->ghost_off = align_up(g->free_off + g->nsegs * 4, 64);
    g->keygen_off = align_up(g->ghost_off + g->ghost_n * 4, 64);
    g->shards_off = align_up(g->keygen_off + g->keygen_n * 4, 4096);
    g->index_off = align_up(g->shards_off + g->nshards * L0_SHARD_BYTES, 4096);
    g->arena_off = align_up(
        g->index_off + g->nshards * g->shard_slots * L0_ENTRY_BYTES,
        arena_align);
}

static uint64_t gcd_u64(uint64_t a, uint64_t b) {
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

int l0_layout(const l0_params *p, l0_geom *g) {
    memset(g, 0, sizeof *g);
    if (p->size < CACHEE_L0_SIZE_MIN || p->size > CACHEE_L0_SIZE_MAX)
        return CACHEE_L0_E_SIZE;
    if (p->seg_size < CACHEE_L0_SEG_MIN || p->seg_size > CACHEE_L0_SEG_MAX ||
        (p->seg_size & (p->seg_size - 1)) != 0)
        return CACHEE_L0_E_SIZE;
    if (p->max_procs < 1 || p->max_procs > CACHEE_L0_PROCS_MAX)
        return CACHEE_L0_E_SIZE;
    if (p->max_entries < 1 || p->max_entries > p->size / 16)
        return CACHEE_L0_E_SIZE;

    g->region_size = p->size;
    g->seg_size = p->seg_size;
    g->max_procs = p->max_procs;
    g->max_entries = p->max_entries;

    uint64_t slots_total = (p->max_entries * 4 + 2) / 3;
    if (slots_total < 64) slots_total = 64;
    uint64_t nshards = pow2_floor(slots_total / 1024);
    if (nshards < 1) nshards = 1;
    if (nshards > 256) nshards = 256;
    g->nshards = nshards;
    g->shard_slots = (slots_total + nshards - 1) / nshards;
    if (g->shard_slots < 16) g->shard_slots = 16;
    if (g->shard_slots > (1ull << 31)) return CACHEE_L0_E_SIZE;
    g->ghost_n = pow2_ceil(p->max_entries < 1024 ? 1024 : p->max_entries);
    /* 4 counters per entry the index holds: copies outside L0 (L1 may hold
     * many times what L0 holds) are invalidated by other keys' writes only
     * as often as a write lands on their counter.  At most 1/32 of the
     * region (a small region with a large index would otherwise give a
     * quarter of its bytes to the table). */
    uint64_t keygen_cap = pow2_floor(p->size / 128);
    if (keygen_cap > CACHEE_L0_KEYGEN_MAX) keygen_cap = CACHEE_L0_KEYGEN_MAX;
    if (keygen_cap < 1024) keygen_cap = 1024;
    g->keygen_n = 4 * g->ghost_n < keygen_cap ? 4 * g->ghost_n : keygen_cap;

    uint64_t arena_align = p->seg_size < (2u << 20) ? p->seg_size : (2u << 20);
    if (p->hugetlb_page > arena_align) arena_align = p->hugetlb_page;

    /* Fixpoint: tables shrink as segments do, so iterate downwards. */
    g->nsegs = p->size / p->seg_size;
    for (int i = 0; i < 64; i++) {
        place_tables(g, arena_align);
        if (g->arena_off >= p->size) return CACHEE_L0_E_SIZE;
        uint64_t n = (p->size - g->arena_off) / p->seg_size;
        if (n >= g->nsegs) break;
        g->nsegs = n;
    }
    place_tables(g, arena_align);
    if (g->nsegs < 8 || g->nsegs > 0xfffffff0ull) return CACHEE_L0_E_SIZE;
    if (g->arena_off + g->nsegs * g->seg_size > p->size) return CACHEE_L0_E_SIZE;

    g->arena_size = g->nsegs * g->seg_size;
    g->arena_units = g->arena_size / CACHEE_L0_RECORD_ALIGN;
    g->seg_shift = log2u(g->seg_size);
    g->shard_shift = 64 - log2u(g->nshards);
    g->live_max = (uint32_t)(g->shard_slots * L0_LIVE_MAX_PERCENT / 100);
    g->used_max = (uint32_t)(g->shard_slots * L0_USED_MAX_PERCENT / 100);
    if (g->live_max < 1) g->live_max = 1;
    g->live_low = (uint32_t)(g->shard_slots * L0_LIVE_LOW_PERCENT / 100);
    if (g->live_low >= g->live_max) g->live_low = g->live_max - 1;
    /* A stride near n / golden ratio, coprime to n: consecutive CLOCK steps
     * land far apart, so evictions thin the table evenly (see EVICTION). */
    uint64_t n = g->shard_slots, st = n * 618 / 1000;
    if (st < 1) st = 1;
    while (gcd_u64(st, n) != 1) st++;
    g->clock_stride = st;
    g->small_target = (uint32_t)(g->nsegs * L0_SMALL_PERCENT / 100);
    if (g->small_target < 1) g->small_target = 1;
    uint64_t extent_max = g->nsegs / 4 ? g->nsegs / 4 : 1;
    g->record_max = extent_max * g->seg_size;
    g->value_max = g->record_max - 2 * 64; /* header + key/meta of 64 B */
    if (g->value_max > UINT32_MAX - 4096) /* a record's value_len is 32 bits */
        g->value_max = UINT32_MAX - 4096;
    return 0;
}

uint64_t l0_format_word(void) {
    const uint16_t probe = 1;
    uint64_t little = *(const uint8_t *)&probe;
    return ((uint64_t)CACHEE_L0_LAYOUT_VERSION << 56) |
           ((uint64_t)sizeof(pthread_mutex_t) << 48) |
           ((uint64_t)L0_ENTRY_BYTES << 40) |
           ((uint64_t)(L0_SLOT_BYTES / 8) << 32) |
           ((uint64_t)L0_RECORD_HEADER << 24) |
           ((uint64_t)(L0_SHARD_BYTES / 8) << 16) |
           ((uint64_t)L0_SEG_BYTES << 8) | ((uint64_t)sizeof(void *) << 1) |
           little;
}
