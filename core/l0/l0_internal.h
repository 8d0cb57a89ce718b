/*
 * l0_internal.h -- private declarations shared by the files of the L0 engine.
 *
 * The shared layout and the protocols are specified in include/cachee_l0.h;
 * this file holds the process-private side: the handle, the validated copy
 * of the geometry, atomics, and accessors that turn offsets into pointers.
 * Every accessor that takes an index read from shared memory is given an
 * index the caller has already bounds-checked.
 */
#ifndef CACHEE_L0_INTERNAL_H
#define CACHEE_L0_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "cachee_l0.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define L0_LIKELY(x) __builtin_expect(!!(x), 1)
#define L0_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define L0_HEADER_BYTES 4096u
#define L0_SLOT_BYTES 128u
#define L0_SEG_BYTES 64u
#define L0_SHARD_BYTES 256u
#define L0_ENTRY_BYTES 16u
#define L0_RECORD_HEADER 32u
#define L0_LINE 64u /* a cache line */

/* Live bytes, in percent of the arena, above which eviction drops records
 * (below it, reclaiming a segment copies every live record forward). */
#define L0_PRESSURE_PERCENT 85u
/* Share of segments the small FIFO may hold before eviction takes from it. */
#define L0_SMALL_PERCENT 10u
/* Index load limits, in percent of a shard's slots: a shard whose live
 * entries reach LIVE_MAX evicts down to LIVE_LOW in one batch (then rebuilds
 * once), and rebuilds when live entries plus tombstones pass USED_MAX. */
#define L0_LIVE_MAX_PERCENT 80u
#define L0_LIVE_LOW_PERCENT 70u
#define L0_USED_MAX_PERCENT 85u
/* Bounded waits of readers before they take the slow path. */
#define L0_SPIN_TORN 256
#define L0_SPIN_LAYOUT 4096
#define L0_READ_RETRIES 100000
/* Reaping during refills at most this often. */
#define L0_REAP_INTERVAL_NS 1000000000ll
#define L0_MAX_ANCESTORS 16
#define L0_ANCESTOR_COPIED (1ull << 63)

_Static_assert(sizeof(struct cachee_l0_shm_header) <= L0_HEADER_BYTES,
               "header must fit its page");
_Static_assert(sizeof(struct cachee_l0_shm_slot) == L0_SLOT_BYTES, "slot");
_Static_assert(sizeof(struct cachee_l0_shm_seg) == L0_SEG_BYTES, "seg");
_Static_assert(sizeof(struct cachee_l0_shm_shard) == L0_SHARD_BYTES, "shard");
_Static_assert(sizeof(struct cachee_l0_shm_entry) == L0_ENTRY_BYTES, "entry");
_Static_assert(sizeof(struct cachee_l0_shm_record) == L0_RECORD_HEADER,
               "record header");

/* ---------------------------------------------------------------------
 * Geometry: a pure function of the creation parameters (layout.c).
 * --------------------------------------------------------------------- */

/** Creation parameters; everything else is derived from them. */
typedef struct l0_params {
    uint64_t size;
    uint64_t seg_size;
    uint64_t max_procs;
    uint64_t max_entries;
    uint32_t flags; /* only CACHEE_L0_HUGEPAGES matters to the layout */
    uint32_t hugetlb_page; /* 0, or the huge page size of a hugetlbfs file */
} l0_params;

/** The derived layout, copied into private memory and trusted from then on. */
typedef struct l0_geom {
    uint64_t region_size, seg_size, nsegs, max_entries, nshards, shard_slots;
    uint64_t max_procs, ring_cap, ghost_n;
    uint64_t slots_off, pins_off, segs_off, gens_off, rings_off, free_off;
    uint64_t ghost_off, shards_off, index_off, arena_off;
    uint64_t keygen_n, keygen_off; /* key generation table */
    uint64_t arena_size;   /* nsegs * seg_size */
    uint64_t arena_units;  /* arena_size / 64: bound of an entry's loc */
    uint64_t record_max;   /* largest record (an extent of nsegs/4) */
    uint64_t value_max;    /* reported value limit (key+meta <= 64) */
    uint32_t seg_shift;    /* log2(seg_size) */
    uint32_t shard_shift;  /* 64 - log2(nshards); 64 when nshards == 1 */
    uint32_t live_max;     /* per shard: CLOCK-evict above this */
    uint32_t used_max;     /* per shard: rebuild above this (live + tombs) */
    uint32_t small_target; /* segments the small FIFO may hold */
    uint32_t live_low;     /* per shard: a CLOCK batch evicts down to this */
    uint64_t clock_stride; /* CLOCK visits slot hand * stride mod shard_slots */
} l0_geom;

/** Compute the layout; returns 0 or CACHEE_L0_E_SIZE. */
int l0_layout(const l0_params *p, l0_geom *g);
/** The format word of this build. */
uint64_t l0_format_word(void);

/* ---------------------------------------------------------------------
 * The handle.
 * --------------------------------------------------------------------- */

/**
 * Per-process registration, in a MADV_WIPEONFORK page: a forked child reads
 * zeroes here and registers again on its first operation.
 */
typedef struct l0_reg {
    uint32_t slot_plus1;   /* our slot + 1; 0 = not registered here */
    uint32_t slot_gen;
    uint32_t lockbyte;     /* which liveness byte (0/1) our OFD holds */
    int32_t spin;          /* registration spinlock, 0 = unlocked */
    pid_t pid;             /* for kernels without MADV_WIPEONFORK */
    uint32_t shared;       /* the slot is another handle's (share_slot) */
} l0_reg;

struct cachee_l0 {
    int fd;                 /* region; its OFD carries our liveness lock */
    pid_t opener_pid;       /* process whose open file description fd is */
    int wipe_ok;            /* MADV_WIPEONFORK worked */
    uint8_t *rw;            /* read-write mapping */
    const uint8_t *ro;      /* read-only mapping (views point here) */
    l0_reg *reg;            /* wipe-on-fork page */
    l0_geom g;              /* validated private copy */
    uint32_t hdr_flags;
    uint32_t hugetlbfs;
    /* fork hand-off and pin ownership (not wiped: a child needs them) */
    uint64_t reg_id;        /* (slot << 32) | gen of the last registration */
    uint32_t nancestors;
    /* Registrations of the processes this one was forked from: with
     * L0_ANCESTOR_COPIED when their pins were handed to us (release them
     * here), without it when they were not (the pin is the ancestor's). */
    uint64_t ancestors[L0_MAX_ANCESTORS];
    /* eviction hook (cachee_l0_set_evict_hook), process-private */
    cachee_l0_evict_fn evict_fn;
    void *evict_arg;
    uint32_t prepared_plus1; /* fork_prepare: the child's slot + 1 */
    uint32_t prepared_gen;
    int prepared_fd;         /* fork_prepare: the description holding the
                                child's byte 0 until both sides close it */
    char path[PATH_MAX];
};

/* ---------------------------------------------------------------------
 * Test points: places where a test pauses a process to force an
 * interleaving that is otherwise a matter of luck (tests/c/test_create_race.c).
 * Only builds with -DL0_TEST_POINTS (the C test suites) have them; in every
 * other build they compile to nothing.
 * --------------------------------------------------------------------- */

enum l0_test_point_id {
    L0_TP_CREATE_LINKED = 1,     /* creator: file linked, not ready yet */
    L0_TP_OPEN_SAW_BUILDING = 2, /* opener: read "not ready" */
};
#ifdef L0_TEST_POINTS
extern void (*l0_test_point)(int point);
#define L0_TEST_POINT(p)                                                    \
    do {                                                                    \
        if (l0_test_point) l0_test_point(p);                                \
    } while (0)
#else
#define L0_TEST_POINT(p) ((void)0)
#endif

/* ---------------------------------------------------------------------
 * Atomics (GCC builtins; shared memory between processes).
 * --------------------------------------------------------------------- */

#define L0_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define L0_LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define L0_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define L0_STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define L0_FENCE_ACQ() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define L0_FENCE_SEQ() __atomic_thread_fence(__ATOMIC_SEQ_CST)

static inline void l0_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ---------------------------------------------------------------------
 * Accessors.
 * --------------------------------------------------------------------- */

static inline struct cachee_l0_shm_header *l0_hdr(const cachee_l0 *h) {
    return (struct cachee_l0_shm_header *)h->rw;
}
static inline struct cachee_l0_shm_slot *l0_slot(const cachee_l0 *h,
                                                 uint64_t s) {
    return (struct cachee_l0_shm_slot *)(h->rw + h->g.slots_off +
                                         s * L0_SLOT_BYTES);
}
static inline uint16_t *l0_pins_row(const cachee_l0 *h, uint64_t s) {
    return (uint16_t *)(h->rw + h->g.pins_off + s * h->g.nsegs * 2);
}
static inline struct cachee_l0_shm_seg *l0_seg(const cachee_l0 *h,
                                               uint64_t seg) {
    return (struct cachee_l0_shm_seg *)(h->rw + h->g.segs_off +
                                        seg * L0_SEG_BYTES);
}
static inline uint32_t *l0_gens(const cachee_l0 *h) {
    return (uint32_t *)(h->rw + h->g.gens_off);
}
static inline uint64_t *l0_ring(const cachee_l0 *h, unsigned cls) {
    return (uint64_t *)(h->rw + h->g.rings_off + cls * h->g.ring_cap * 8);
}
static inline uint32_t *l0_free_stack(const cachee_l0 *h) {
    return (uint32_t *)(h->rw + h->g.free_off);
}
static inline uint32_t *l0_ghost(const cachee_l0 *h) {
    return (uint32_t *)(h->rw + h->g.ghost_off);
}
static inline uint32_t *l0_keygens(const cachee_l0 *h) {
    return (uint32_t *)(h->rw + h->g.keygen_off);
}
/* The generation counter of a key hash (see KEY GENERATIONS). */
static inline uint32_t *l0_gen_of(const cachee_l0 *h, uint64_t hash) {
    return &l0_keygens(h)[CACHEE_L0_KEYGEN_INDEX(hash, h->g.keygen_n)];
}
static inline struct cachee_l0_shm_shard *l0_shard(const cachee_l0 *h,
                                                   uint64_t i) {
    return (struct cachee_l0_shm_shard *)(h->rw + h->g.shards_off +
                                          i * L0_SHARD_BYTES);
}
static inline struct cachee_l0_shm_entry *l0_entries(const cachee_l0 *h,
                                                     uint64_t shard) {
    return (struct cachee_l0_shm_entry *)(h->rw + h->g.index_off +
                                          shard * h->g.shard_slots *
                                              L0_ENTRY_BYTES);
}
/* Arena pointers by byte offset within the arena. */
static inline uint8_t *l0_arena_rw(const cachee_l0 *h, uint64_t off) {
    return h->rw + h->g.arena_off + off;
}
static inline const uint8_t *l0_arena_ro(const cachee_l0 *h, uint64_t off) {
    return h->ro + h->g.arena_off + off;
}

/* ---------------------------------------------------------------------
 * Index entries.
 * --------------------------------------------------------------------- */

#define L0_VER_SHIFT 48
#define L0_KIND_SHIFT 46
#define L0_LINES_SHIFT 40
#define L0_LINES_MAX 63u
#define L0_LOC_MASK ((1ull << 40) - 1)

static inline uint32_t l0_e_ver(uint64_t w) { return (uint32_t)(w >> 48); }
static inline uint32_t l0_e_tag(uint64_t w0) {
    return (uint32_t)(w0 >> 32) & 0xffffu;
}
static inline uint32_t l0_e_gen(uint64_t w0) { return (uint32_t)w0; }
static inline uint32_t l0_e_kind(uint64_t w1) {
    return (uint32_t)(w1 >> L0_KIND_SHIFT) & 3u;
}
static inline uint64_t l0_e_loc(uint64_t w1) { return w1 & L0_LOC_MASK; }
static inline uint32_t l0_e_lines(uint64_t w1) {
    return (uint32_t)(w1 >> L0_LINES_SHIFT) & L0_LINES_MAX;
}
static inline uint64_t l0_w0_body(uint32_t tag, uint32_t gen) {
    return ((uint64_t)tag << 32) | gen;
}
static inline uint64_t l0_w1_body(uint32_t kind, uint64_t loc) {
    return ((uint64_t)kind << L0_KIND_SHIFT) | (loc & L0_LOC_MASK);
}
/* The body of a LIVE entry for a record of `len` bytes at arena offset off. */
static inline uint64_t l0_w1_live(uint64_t off, uint64_t len) {
    uint64_t lines = ((off & (L0_LINE - 1)) + len + L0_LINE - 1) / L0_LINE;
    if (lines > L0_LINES_MAX) lines = L0_LINES_MAX;
    return l0_w1_body(CACHEE_L0_ENTRY_LIVE, off / CACHEE_L0_RECORD_ALIGN) |
           lines << L0_LINES_SHIFT;
}

/* Hash -> shard, home slot and tag. */
static inline uint64_t l0_shard_of(const l0_geom *g, uint64_t hash) {
    return g->shard_shift >= 64 ? 0 : hash >> g->shard_shift;
}
static inline uint64_t l0_home_of(const l0_geom *g, uint64_t hash) {
    return ((hash & 0xffffffffull) * g->shard_slots) >> 32;
}
static inline uint32_t l0_tag_of(uint64_t hash) {
    return (uint32_t)(hash >> 32) & 0xffffu;
}

/* ---------------------------------------------------------------------
 * Records.
 * --------------------------------------------------------------------- */

static inline uint64_t l0_align_rec(uint64_t x) {
    return (x + CACHEE_L0_RECORD_ALIGN - 1) & ~(uint64_t)(CACHEE_L0_RECORD_ALIGN - 1);
}
/* Values from this length on start on a 64-byte boundary (else 16). */
#define L0_VALUE_ALIGN64_FROM 4096u
/* Where a record's value starts and how long the record is: derived from the
 * lengths (see struct cachee_l0_shm_record).  Callers bound value_len by the
 * region's record_max first, so nothing here overflows. */
static inline uint64_t l0_value_off(uint64_t key_len, uint64_t meta_len,
                                    uint64_t value_len) {
    uint64_t a = value_len >= L0_VALUE_ALIGN64_FROM ? 64 : 16;
    return (L0_RECORD_HEADER + key_len + meta_len + a - 1) & ~(a - 1);
}
static inline uint64_t l0_record_len(uint64_t key_len, uint64_t meta_len,
                                     uint64_t value_len) {
    return l0_align_rec(l0_value_off(key_len, meta_len, value_len) + value_len);
}
static inline uint64_t l0_rec_value_off(const struct cachee_l0_shm_record *r) {
    return l0_value_off(r->key_len, r->meta_len, r->value_len);
}
static inline uint64_t l0_rec_len(const struct cachee_l0_shm_record *r) {
    return l0_record_len(r->key_len, r->meta_len, r->value_len);
}
static inline bool l0_rec_dead(const struct cachee_l0_shm_record *r) {
    return (r->flags & CACHEE_L0_RECORD_DEAD) != 0;
}
static inline bool l0_rec_extent(const struct cachee_l0_shm_record *r) {
    return (r->flags & CACHEE_L0_RECORD_EXTENT) != 0;
}

/* Lines of a record a reader asks for at once: beyond a KiB the hardware
 * prefetcher has found the stream by itself. */
#define L0_PREFETCH_LINES 16u

/* Ask for the lines of the record at arena offset off (< arena_size) that a
 * LIVE entry's w1 points at: all of them up to L0_PREFETCH_LINES, so they
 * arrive together with the header.  A hint only: nothing here is trusted.
 * Always inlined: GCC 12 finds a function that only prefetches free of side
 * effects (pure-const analysis) and deletes the calls to it. */
__attribute__((always_inline)) static inline void l0_prefetch_record(const cachee_l0 *h,
                                                                    uint64_t off, uint64_t w1) {
    uint64_t first = off & ~(uint64_t)(L0_LINE - 1);
    uint64_t n = l0_e_lines(w1), room = (h->g.arena_size - first) / L0_LINE;
    if (n > L0_PREFETCH_LINES) n = L0_PREFETCH_LINES;
    if (n > room) n = room;
    const uint8_t *p = l0_arena_ro(h, first);
    for (uint64_t i = 0; i < n; i++) __builtin_prefetch(p + i * L0_LINE);
}

/**
 * Validate a record header copied into private memory, found at arena offset
 * `off`.  Checks magic, generation, length arithmetic and that the record lies
 * inside its segment (or the arena, for an extent).  The hash and key are the
 * caller's business.  Returns true if the header can be used.
 */
bool l0_record_sane(const l0_geom *g, const struct cachee_l0_shm_record *r,
                    uint64_t off, uint32_t gen);

/**
 * The whole XXH3-64 of the key of the record at arena offset `off`, whose
 * header *r (a private copy) passed l0_record_sane: a record stores only the
 * hash's low 32 bits, so code that needs all of it (an evictor looking for
 * the record's entry, a rebuild, the checker) hashes the key that follows
 * the header.  Returns false if the result disagrees with r->hash_lo: the
 * bytes are not what the header describes (garbage, or reused meanwhile).
 */
static inline bool l0_rec_hash(const cachee_l0 *h, uint64_t off,
                               const struct cachee_l0_shm_record *r, uint64_t *hash) {
    *hash = cachee_l0_hash(l0_arena_ro(h, off) + L0_RECORD_HEADER, r->key_len);
    return (uint32_t)*hash == r->hash_lo;
}

/* ---------------------------------------------------------------------
 * Clock, hashing.
 * --------------------------------------------------------------------- */

int64_t l0_now_ns(void);

/* ---------------------------------------------------------------------
 * Locks (locks.c).
 * --------------------------------------------------------------------- */

/** Initialise a robust process-shared mutex in shared memory. */
int l0_mutex_init(pthread_mutex_t *m);
/** Lock shard `s`, repairing it if its previous owner died. */
int l0_shard_lock(cachee_l0 *h, uint64_t s);
void l0_shard_unlock(cachee_l0 *h, uint64_t s);
/** Lock the global state, repairing it if its previous owner died. */
int l0_global_lock(cachee_l0 *h);
void l0_global_unlock(cachee_l0 *h);

/* ---------------------------------------------------------------------
 * Process slots (procs.c).
 * --------------------------------------------------------------------- */

int l0_register_slow(cachee_l0 *h);

/** Give this process its own open file description at h->fd (a forked
 *  child shares its parent's). */
int l0_reopen_fd(cachee_l0 *h);

/** Our slot index, registering this process first if needed. */
static inline int l0_my_slot(cachee_l0 *h, uint64_t *slot) {
    uint32_t s = h->reg->slot_plus1;
    if (L0_UNLIKELY(s == 0 || (!h->wipe_ok && h->reg->pid != getpid()))) {
        int rc = l0_register_slow(h);
        if (rc != 0) return rc;
        s = h->reg->slot_plus1;
    }
    *slot = s - 1;
    return 0;
}
/** Release this process's slot (close). */
void l0_unregister(cachee_l0 *h);
/** Use the slot named by a cachee_l0_registration token of another handle
 *  of this process (open with share_slot).  0 or CACHEE_L0_E_INVAL. */
int l0_share_slot(cachee_l0 *h, uint64_t token);
/** Reap dead slots; global lock held.  Returns slots reaped. */
int l0_reap_locked(cachee_l0 *h);
/** True if some live process holds a pin on segments [seg, seg+n). */
bool l0_pinned_locked(cachee_l0 *h, uint64_t seg, uint64_t n);

/** Validate a key argument: CACHEE_L0_E_INVAL (NULL or empty) or
 *  CACHEE_L0_E_KEY_TOO_LARGE. */
static inline int l0_check_key(const void *key, size_t key_len) {
    if (key == NULL || key_len == 0) return CACHEE_L0_E_INVAL;
    if (key_len > CACHEE_L0_KEY_MAX) return CACHEE_L0_E_KEY_TOO_LARGE;
    return 0;
}

/** The prologue of every keyed call: handle and key checked, then this
 *  process's slot (registering it on first use). */
static inline int l0_enter(cachee_l0 *h, const void *key, size_t key_len,
                           uint64_t *slot) {
    if (h == NULL) return CACHEE_L0_E_INVAL;
    int rc = l0_check_key(key, key_len);
    return rc != 0 ? rc : l0_my_slot(h, slot);
}

/* Per-process counters: no read-modify-write on the hot path (see stats). */
static inline void l0_stat_add(struct cachee_l0_shm_slot *sl, unsigned id,
                               uint64_t n) {
    uint64_t *c = id < 4 ? &sl->stat_hot[id] : &sl->stat_cold[id - 4];
    L0_STORE(c, L0_LOAD(c) + n);
}

/**
 * Pin segment `seg` and check that its generation is still `gen`.  True: its
 * bytes cannot be reused until l0_unpin(h, slot, seg, 0), so the caller may
 * write to a record there (frequency, dead byte).  False: nothing is held.
 * Every write into a record the caller did not reserve goes through this.
 */
bool l0_pin_if_current(cachee_l0 *h, uint64_t slot, uint64_t seg, uint32_t gen);

/* Pins of this process's slot on one segment. */
int l0_pin(cachee_l0 *h, uint64_t slot, uint64_t seg, uint64_t bytes);
void l0_unpin(cachee_l0 *h, uint64_t slot, uint64_t seg, uint64_t bytes);

/* ---------------------------------------------------------------------
 * Segments (segments.c).
 * --------------------------------------------------------------------- */

/** Where a new record goes: arena offset and the segment's generation. */
typedef struct l0_space {
    uint64_t off;   /* arena byte offset of the record */
    uint64_t seg;   /* segment (head of the extent) pinned for the writer */
    uint32_t gen;
    uint32_t cls;
} l0_space;

/**
 * Reserve `len` bytes for a record of class `cls` and pin the segment for
 * the writer.  may_evict=false (an evictor reinserting) never evicts: it
 * returns CACHEE_L0_E_FULL when no free segment is at hand.
 */
int l0_reserve(cachee_l0 *h, uint64_t slot, unsigned cls, uint64_t len,
               bool may_evict, l0_space *sp);
/** After the record is published (or abandoned): seal a finished extent
 *  and drop the writer's pin. */
void l0_reserve_done(cachee_l0 *h, uint64_t slot, const l0_space *sp,
                     uint64_t len);
/** Seal both open segments of `slot`; global lock held. */
void l0_seal_slot_locked(cachee_l0 *h, uint64_t slot);
/** Return every segment `slot` holds (open words, extents being written,
 *  segments being reclaimed) to the region (close, reap); global lock held. */
void l0_release_segments_of_locked(cachee_l0 *h, uint64_t slot);
/** Free LIMBO segments whose pins are gone; global lock held. */
void l0_release_limbo_locked(cachee_l0 *h);
/** Finish a reclaim: bump generations, then FREE or LIMBO; global lock
 *  held. */
void l0_finish_reclaim_locked(cachee_l0 *h, uint64_t seg);
/** Rebuild free stack, rings and counters from the segment table. */
void l0_repair_global(cachee_l0 *h);
/** Segment table initialisation for a new region. */
void l0_segments_init(cachee_l0 *h);

/* ---------------------------------------------------------------------
 * Index (index.c).
 * --------------------------------------------------------------------- */

/** Result of a lookup. */
typedef struct l0_found {
    uint64_t slot_idx;   /* index entry within the shard */
    uint64_t off;        /* arena offset of the record */
    uint64_t seg;        /* its (head) segment */
    uint64_t hash;       /* the key's XXH3-64 */
    uint32_t gen;
    uint32_t pad_;
    struct cachee_l0_shm_record rec; /* private copy of the header */
} l0_found;

/**
 * Lock-free lookup (readers).  Returns 0 with *f filled, CACHEE_L0_NOTFOUND,
 * or CACHEE_L0_E_CORRUPT.  Expiry is not checked here.
 */
int l0_lookup(cachee_l0 *h, uint64_t hash, const void *key, size_t key_len,
              l0_found *f);
/** 1 if the index entry of a key with `hash` points at (loc, gen) in a
 *  segment whose generation is still gen; 0 otherwise.  Lock-free. */
int l0_entry_is(cachee_l0 *h, uint64_t hash, uint64_t loc, uint32_t gen);
/** True if the record's segment generation is still f->gen. */
static inline bool l0_still_valid(const cachee_l0 *h, const l0_found *f) {
    L0_FENCE_ACQ();
    return L0_LOAD(&l0_gens(h)[f->seg]) == f->gen;
}

/** Writer's lookup under the shard lock: the key's live entry (found=1) and
 *  the first reusable slot on its path (or UINT64_MAX when none). */
typedef struct l0_wfind {
    int found;
    int expired;
    uint64_t slot_idx;   /* entry of the key, when found */
    uint64_t free_idx;   /* first EMPTY/TOMB/stale slot on the path */
    l0_found f;
} l0_wfind;
int l0_find_locked(cachee_l0 *h, uint64_t shard, uint64_t hash,
                   const void *key, size_t key_len, l0_wfind *w);
/** Publish w0/w1 bodies at entry `idx` of `shard` through the intent. */
void l0_entry_publish(cachee_l0 *h, uint64_t shard, uint64_t idx,
                      uint64_t w0_body, uint64_t w1_body);
/** Turn entry `idx` (LIVE) into a tombstone; shard counters updated. */
void l0_entry_kill(cachee_l0 *h, uint64_t shard, uint64_t idx);
/** Make room / clean up after inserts (CLOCK eviction, rebuild). */
void l0_shard_maintain(cachee_l0 *h, uint64_t slot, uint64_t shard);
/** Rebuild the shard in place (lock held). */
void l0_shard_rebuild(cachee_l0 *h, uint64_t shard);
/** Repair after the owner of the shard lock died (lock held). */
void l0_shard_repair(cachee_l0 *h, uint64_t shard);
/** Find the entry pointing at exactly (off, gen) for a record of `hash`. */
int l0_find_exact_locked(cachee_l0 *h, uint64_t shard, uint64_t hash,
                         uint64_t off, uint32_t gen, uint64_t *idx);
/** Read a record header into private memory if its entry is not stale.
 *  Returns true when the header is sane and the generation current. */
bool l0_entry_record(const cachee_l0 *h, uint64_t w0, uint64_t w1,
                     uint64_t *off, uint64_t *seg,
                     struct cachee_l0_shm_record *rec);

/** Ghost filter (S3-FIFO). */
static inline void l0_ghost_add(const cachee_l0 *h, uint64_t hash) {
    uint32_t *gh = l0_ghost(h);
    L0_STORE(&gh[(hash >> 7) & (h->g.ghost_n - 1)], (uint32_t)hash | 1u);
}
static inline bool l0_ghost_hit(const cachee_l0 *h, uint64_t hash) {
    uint32_t *gh = l0_ghost(h);
    uint32_t *e = &gh[(hash >> 7) & (h->g.ghost_n - 1)];
    if (L0_LOAD(e) != ((uint32_t)hash | 1u)) return false;
    L0_STORE(e, 0u);
    return true;
}

/* ---------------------------------------------------------------------
 * Eviction (evict.c).
 * --------------------------------------------------------------------- */

/** Reclaim one victim segment; returns 0 (space may now be free) or E_FULL.
 *  force: evict cold records even below the pressure mark. */
int l0_make_space(cachee_l0 *h, uint64_t slot, bool force);
/** Empty a RECLAIMING segment we own without finishing it: live records
 *  are copied elsewhere while *excess (live bytes above the pressure mark)
 *  is <= 0, else evicted (and *excess decreases).  Extents are evicted. */
void l0_reclaim_records(cachee_l0 *h, uint64_t slot, uint64_t seg, int64_t *excess);
/** Sum of live_bytes of the segments in use; global lock held. */
int64_t l0_live_total_locked(cachee_l0 *h);

/* ---------------------------------------------------------------------
 * Writing (write.c), shared with eviction.
 * --------------------------------------------------------------------- */

/**
 * Copy the record at arena offset `src` into a fresh reservation of class cls and
 * publish it at entry `idx` (shard lock held).  Returns 0 or E_FULL.
 */
int l0_reinsert_locked(cachee_l0 *h, uint64_t slot, uint64_t shard,
                       uint64_t idx, uint64_t src,
                       const struct cachee_l0_shm_record *rec, uint64_t hash,
                       unsigned cls, uint8_t freq);

/** Call the handle's eviction hook, if any, for the live record at arena
 *  offset `off` whose key (of hash `hash`) is being evicted (shard lock
 *  held). */
void l0_evict_notify(cachee_l0 *h, uint64_t off,
                     const struct cachee_l0_shm_record *rec, uint64_t hash);

/* Error formatting for check(). */
int l0_fail(char *msg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* CACHEE_L0_INTERNAL_H */
