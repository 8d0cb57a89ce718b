/*
 * procs.c -- process slots: registration, liveness, reaping of dead
 * processes, pins, and the fork() hand-off.  See PROCESS SLOTS and PINS in
 * cachee_l0.h.
 */
#include "l0_internal.h"
#include "l0_ofd.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/stat.h>

static uint64_t lock_byte(uint64_t slot, uint32_t which) {
    return CACHEE_L0_LOCK_SLOTS + 2 * slot + which;
}

static void spin_lock(int32_t *l) {
    for (;;) {
        int32_t z = 0;
        if (__atomic_compare_exchange_n(l, &z, 1, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return;
        sched_yield();
    }
}

static void spin_unlock(int32_t *l) { L0_STORE_REL(l, 0); }

/* Process start time in clock ticks since boot (diagnostics only). */
static uint64_t start_time(void) {
    FILE *f = fopen("/proc/self/stat", "re");
    if (f == NULL) return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL) return 0;
    unsigned long long v = 0;
    /* after ") " come fields 3..; starttime is field 22 */
    int field = 2;
    for (char *q = p + 1; *q; q++) {
        if (*q == ' ') {
            field++;
            if (field == 22) {
                sscanf(q + 1, "%llu", &v);
                break;
            }
        }
    }
    return v;
}

int l0_reopen_fd(cachee_l0 *h) {
    int nfd = l0_open_same(h->fd, h->path);
    if (nfd < 0) return nfd == CACHEE_L0_E_NO_REGION ? nfd : -nfd;
    if (dup3(nfd, h->fd, O_CLOEXEC) < 0) {
        int e = errno;
        close(nfd);
        return e;
    }
    close(nfd);
    h->opener_pid = getpid();
    return 0;
}

static void hwm_raise(cachee_l0 *h, uint64_t n) {
    uint64_t *p = &l0_hdr(h)->slots_hwm;
    uint64_t cur = L0_LOAD(p);
    while (cur < n && !__atomic_compare_exchange_n(p, &cur, n, false,
                                                   __ATOMIC_RELEASE,
                                                   __ATOMIC_RELAXED)) {
    }
}

/*
 * Claim a FREE slot: lock its liveness byte `which` through the description
 * of fd, then move it to `state`.  Returns 0 with *slot and *gen, or
 * CACHEE_L0_E_TOO_MANY_PROCS.
 */
static int claim_slot(cachee_l0 *h, int fd, uint32_t state, uint32_t which,
                      uint64_t *slot, uint32_t *gen) {
    for (uint64_t i = 0; i < h->g.max_procs; i++) {
        struct cachee_l0_shm_slot *sl = l0_slot(h, i);
        if (L0_LOAD_ACQ(&sl->state) != CACHEE_L0_SLOT_FREE) continue;
        if (l0_ofd_trylock(fd, lock_byte(i, which), 1) != 0) continue;
        uint32_t expect = CACHEE_L0_SLOT_FREE;
        if (!__atomic_compare_exchange_n(&sl->state, &expect, state, false,
                                         __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            l0_ofd_unlock(fd, lock_byte(i, which), 1);
            continue;
        }
        uint32_t g = L0_LOAD(&sl->gen) + 1;
        L0_STORE(&sl->gen, g);
        L0_STORE(&sl->pid, (uint32_t)getpid());
        L0_STORE(&sl->prepared_by, 0u);
        L0_STORE(&sl->start_time, start_time());
        L0_STORE(&sl->open[0], 0ull);
        L0_STORE(&sl->open[1], 0ull);
        L0_STORE(&sl->npins, 0ull);
        L0_STORE(&sl->pinned_bytes, 0ull);
        for (unsigned k = 0; k < 4; k++) {
            L0_STORE(&sl->stat_hot[k], 0ull);
            L0_STORE(&sl->stat_cold[k], 0ull);
        }
        memset(l0_pins_row(h, i), 0, h->g.nsegs * 2);
        hwm_raise(h, i + 1);
        *slot = i;
        *gen = g;
        return 0;
    }
    return CACHEE_L0_E_TOO_MANY_PROCS;
}

int l0_register_slow(cachee_l0 *h) {
    l0_reg *r = h->reg;
    if (!h->wipe_ok && r->pid != getpid()) memset(r, 0, sizeof *r);
    spin_lock(&r->spin);
    if (r->slot_plus1 != 0) {
        spin_unlock(&r->spin);
        return 0;
    }
    int rc = 0;
    if (h->opener_pid != getpid()) {
        /* A forked child: our description is our parent's.  Get our own
         * before we lock anything or judge anyone's liveness.  Views we
         * inherited keep our parent's pins (no hand-off): remember whose,
         * so releasing them here is recognised and leaves them alone. */
        rc = l0_reopen_fd(h);
        uint32_t n = 0;
        uint64_t known[L0_MAX_ANCESTORS];
        if (h->reg_id != 0) known[n++] = h->reg_id;
        for (uint32_t i = 0; i < h->nancestors && n < L0_MAX_ANCESTORS; i++)
            known[n++] = h->ancestors[i] & ~L0_ANCESTOR_COPIED;
        memcpy(h->ancestors, known, n * sizeof known[0]);
        h->nancestors = n;
        h->prepared_plus1 = 0;
    }
    uint64_t slot = 0;
    uint32_t gen = 0;
    if (rc == 0) rc = claim_slot(h, h->fd, CACHEE_L0_SLOT_ACTIVE, 0, &slot, &gen);
    if (rc == CACHEE_L0_E_TOO_MANY_PROCS && l0_global_lock(h) == 0) {
        int n = l0_reap_locked(h);
        l0_global_unlock(h);
        if (n > 0) rc = claim_slot(h, h->fd, CACHEE_L0_SLOT_ACTIVE, 0, &slot, &gen);
    }
    if (rc == 0) {
        r->slot_gen = gen;
        r->lockbyte = 0;
        r->pid = getpid();
        h->reg_id = (slot << 32) | gen;
        L0_STORE_REL(&r->slot_plus1, (uint32_t)(slot + 1));
    }
    spin_unlock(&r->spin);
    return rc;
}

int cachee_l0_registration(cachee_l0 *h, uint64_t *token) {
    if (h == NULL || token == NULL) return CACHEE_L0_E_INVAL;
    uint64_t slot;
    int rc = l0_my_slot(h, &slot);
    if (rc != 0) return rc;
    *token = ((slot + 1) << 32) | h->reg->slot_gen;
    return 0;
}

int l0_share_slot(cachee_l0 *h, uint64_t token) {
    uint64_t slot = (token >> 32) - 1;
    uint32_t gen = (uint32_t)token;
    if ((token >> 32) == 0 || slot >= h->g.max_procs) return CACHEE_L0_E_INVAL;
    struct cachee_l0_shm_slot *sl = l0_slot(h, slot);
    /* The slot must be ACTIVE, of this registration (gen), of this process,
     * and alive (its owner's description holds a liveness byte). */
    if (L0_LOAD_ACQ(&sl->state) != CACHEE_L0_SLOT_ACTIVE ||
        L0_LOAD(&sl->gen) != gen || L0_LOAD(&sl->pid) != (uint32_t)getpid() ||
        l0_ofd_held_elsewhere(h->fd, lock_byte(slot, 0), 2) != 1)
        return CACHEE_L0_E_INVAL;
    l0_reg *r = h->reg;
    r->slot_gen = gen;
    r->lockbyte = 0;
    r->pid = getpid();
    r->shared = 1;
    h->reg_id = (slot << 32) | gen;
    L0_STORE_REL(&r->slot_plus1, (uint32_t)(slot + 1));
    return 0;
}

/* Return everything a slot holds to the region; global lock held. */
static void retire_slot_locked(cachee_l0 *h, uint64_t s) {
    struct cachee_l0_shm_header *hd = l0_hdr(h);
    struct cachee_l0_shm_slot *sl = l0_slot(h, s);
    l0_release_segments_of_locked(h, s);
    memset(l0_pins_row(h, s), 0, h->g.nsegs * 2);
    L0_STORE(&sl->npins, 0ull);
    L0_STORE(&sl->pinned_bytes, 0ull);
    for (unsigned k = 0; k < CACHEE_L0_NSTATS; k++) {
        uint64_t *c = k < 4 ? &sl->stat_hot[k] : &sl->stat_cold[k - 4];
        hd->retired[k] += L0_LOAD(c);
        L0_STORE(c, 0ull);
    }
    L0_STORE(&sl->prepared_by, 0u);
    L0_STORE_REL(&sl->state, (uint32_t)CACHEE_L0_SLOT_FREE);
}

void l0_unregister(cachee_l0 *h) {
    uint64_t s = h->reg->slot_plus1 - 1;
    if (l0_global_lock(h) == 0) {
        retire_slot_locked(h, s);
        l0_release_limbo_locked(h);
        l0_global_unlock(h);
    }
    l0_ofd_unlock(h->fd, lock_byte(s, 0), 2);
    h->reg->slot_plus1 = 0;
}

int l0_reap_locked(cachee_l0 *h) {
    uint64_t mine = h->reg->slot_plus1 ? h->reg->slot_plus1 - 1 : UINT64_MAX;
    uint64_t hwm = L0_LOAD_ACQ(&l0_hdr(h)->slots_hwm);
    if (hwm > h->g.max_procs) hwm = h->g.max_procs;
    int n = 0;
    for (uint64_t s = 0; s < hwm; s++) {
        if (s == mine || s + 1 == h->prepared_plus1) continue;
        if (L0_LOAD_ACQ(&l0_slot(h, s)->state) == CACHEE_L0_SLOT_FREE) continue;
        if (l0_ofd_held_elsewhere(h->fd, lock_byte(s, 0), 2) != 0) continue;
        retire_slot_locked(h, s);
        n++;
    }
    if (n > 0) {
        l0_hdr(h)->reaped += (uint64_t)n;
        l0_release_limbo_locked(h);
    }
    return n;
}

int cachee_l0_reap(cachee_l0 *h) {
    if (h == NULL) return CACHEE_L0_E_INVAL;
    uint64_t slot;
    int rc = l0_my_slot(h, &slot); /* own description first */
    if (rc != 0) return rc;
    if ((rc = l0_global_lock(h)) != 0) return rc;
    int n = l0_reap_locked(h);
    L0_STORE(&l0_hdr(h)->last_reap_ns, l0_now_ns());
    l0_global_unlock(h);
    return n;
}

/* ---------------------------------------------------------------- pins */

int l0_pin(cachee_l0 *h, uint64_t slot, uint64_t seg, uint64_t bytes) {
    struct cachee_l0_shm_slot *sl = l0_slot(h, slot);
    uint16_t *cell = &l0_pins_row(h, slot)[seg];
    __atomic_fetch_add(&sl->npins, 1, __ATOMIC_SEQ_CST);
    uint16_t old = __atomic_fetch_add(cell, 1, __ATOMIC_SEQ_CST);
    if (L0_UNLIKELY(old == UINT16_MAX)) {
        __atomic_fetch_sub(cell, 1, __ATOMIC_RELAXED);
        __atomic_fetch_sub(&sl->npins, 1, __ATOMIC_RELAXED);
        return CACHEE_L0_E_TOO_MANY_PINS;
    }
    if (bytes) __atomic_fetch_add(&sl->pinned_bytes, bytes, __ATOMIC_RELAXED);
    return 0;
}

void l0_unpin(cachee_l0 *h, uint64_t slot, uint64_t seg, uint64_t bytes) {
    struct cachee_l0_shm_slot *sl = l0_slot(h, slot);
    if (bytes) __atomic_fetch_sub(&sl->pinned_bytes, bytes, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&l0_pins_row(h, slot)[seg], 1, __ATOMIC_RELEASE);
    __atomic_fetch_sub(&sl->npins, 1, __ATOMIC_RELEASE);
}

bool l0_pin_if_current(cachee_l0 *h, uint64_t slot, uint64_t seg, uint32_t gen) {
    if (seg >= h->g.nsegs || l0_pin(h, slot, seg, 0) != 0) return false;
    if (__atomic_load_n(&l0_gens(h)[seg], __ATOMIC_SEQ_CST) == gen) return true;
    l0_unpin(h, slot, seg, 0);
    return false;
}

bool l0_pinned_locked(cachee_l0 *h, uint64_t seg, uint64_t n) {
    L0_FENCE_SEQ();
    uint64_t hwm = L0_LOAD_ACQ(&l0_hdr(h)->slots_hwm);
    if (hwm > h->g.max_procs) hwm = h->g.max_procs;
    for (uint64_t s = 0; s < hwm; s++) {
        struct cachee_l0_shm_slot *sl = l0_slot(h, s);
        if (__atomic_load_n(&sl->npins, __ATOMIC_SEQ_CST) == 0) continue;
        const uint16_t *row = l0_pins_row(h, s);
        for (uint64_t i = seg; i < seg + n && i < h->g.nsegs; i++)
            if (__atomic_load_n(&row[i], __ATOMIC_SEQ_CST) != 0) return true;
    }
    return false;
}

/* 2: pins of `owner` were copied to us; 1: owner is an ancestor whose pins
 * were not; 0: not an ancestor. */
static int ancestry(const cachee_l0 *h, uint64_t owner) {
    for (uint32_t i = 0; i < h->nancestors; i++)
        if ((h->ancestors[i] & ~L0_ANCESTOR_COPIED) == owner)
            return (h->ancestors[i] & L0_ANCESTOR_COPIED) ? 2 : 1;
    return 0;
}

int cachee_l0_release(cachee_l0 *h, cachee_l0_view *v) {
    if (h == NULL || v == NULL) return CACHEE_L0_E_INVAL;
    if (v->pin_ == 0 || v->pin_ > h->g.nsegs) return CACHEE_L0_E_BAD_PIN;
    uint64_t seg = v->pin_ - 1;
    uint64_t slot;
    int rc = l0_my_slot(h, &slot);
    if (rc != 0) return rc;
    int from = v->pin_owner_ == h->reg_id ? 2 : ancestry(h, v->pin_owner_);
    if (from == 0) return CACHEE_L0_E_BAD_PIN; /* not ours, not inherited */
    if (from == 2) {
        if (L0_LOAD(&l0_pins_row(h, slot)[seg]) == 0) return CACHEE_L0_E_BAD_PIN;
        l0_unpin(h, slot, seg, v->len);
    }
    /* from == 1: inherited through fork without hand-off; the pin is the
     * ancestor's, which releases it with its own copy of the view. */
    v->pin_ = 0;
    return 0;
}

/* ------------------------------------------------------ fork hand-off */

/*
 * The hand-off (see PROCESS SLOTS in cachee_l0.h).  prepare claims the
 * child's slot c by locking its liveness byte (c, 0) through a description
 * opened for this hand-off only (prepared_fd), which fork() shares between
 * parent and child; the parent's own liveness stays where it is.  parent
 * closes the parent's copy; child locks (c, 1) through a description of its
 * own, makes the slot ACTIVE, then closes its copy, which releases (c, 0).
 * At no moment does a live process hold neither of its bytes, whatever the
 * order in which parent, child and grandchildren run.
 */
int cachee_l0_fork_prepare(cachee_l0 *h) {
    if (h == NULL) return CACHEE_L0_E_INVAL;
    uint64_t me;
    int rc = l0_my_slot(h, &me);
    if (rc != 0) return rc;
    h->prepared_plus1 = 0;
    if (h->prepared_fd >= 0) { /* a prepare never followed by parent/child */
        close(h->prepared_fd);
        h->prepared_fd = -1;
    }
    /* A shared slot's pins are another handle's to hand over. */
    if (h->reg->shared) return 0;
    int efd = l0_open_same(h->fd, h->path);
    if (efd < 0) return efd == CACHEE_L0_E_NO_REGION ? efd : -efd;
    uint64_t c;
    uint32_t gen;
    rc = claim_slot(h, efd, CACHEE_L0_SLOT_PREPARED, 0, &c, &gen);
    if (rc != 0) {
        close(efd);
        return rc;
    }
    struct cachee_l0_shm_slot *src = l0_slot(h, me), *dst = l0_slot(h, c);
    const uint16_t *srow = l0_pins_row(h, me);
    uint16_t *drow = l0_pins_row(h, c);
    for (uint64_t i = 0; i < h->g.nsegs; i++) L0_STORE(&drow[i], L0_LOAD(&srow[i]));
    L0_STORE(&dst->pinned_bytes, L0_LOAD(&src->pinned_bytes));
    L0_STORE(&dst->prepared_by, (uint32_t)(me + 1));
    __atomic_store_n(&dst->npins, L0_LOAD(&src->npins), __ATOMIC_SEQ_CST);
    h->prepared_plus1 = (uint32_t)(c + 1);
    h->prepared_gen = gen;
    h->prepared_fd = efd;
    return 0;
}

int cachee_l0_fork_parent(cachee_l0 *h) {
    if (h == NULL) return CACHEE_L0_E_INVAL;
    h->prepared_plus1 = 0;
    /* The child keeps (c, 0) through its copy until it holds (c, 1); if
     * fork() failed, nobody holds it now and the slot is reaped. */
    if (h->prepared_fd >= 0) {
        close(h->prepared_fd);
        h->prepared_fd = -1;
    }
    return 0;
}

int cachee_l0_fork_child(cachee_l0 *h) {
    if (h == NULL) return CACHEE_L0_E_INVAL;
    int efd = h->prepared_fd; /* our copy of the hand-off description */
    h->prepared_fd = -1;
    if (h->prepared_plus1 == 0) {
        if (efd >= 0) close(efd);
        return 0;
    }
    uint64_t c = h->prepared_plus1 - 1;
    uint32_t gen = h->prepared_gen;
    h->prepared_plus1 = 0;
    l0_reg *r = h->reg;
    memset(r, 0, sizeof *r);
    struct cachee_l0_shm_slot *sl = l0_slot(h, c);
    int rc = l0_reopen_fd(h); /* our own description, not the parent's */
    bool locked = false;
    if (rc == 0) {
        rc = l0_ofd_trylock(h->fd, lock_byte(c, 1), 1);
        locked = rc == 0;
    }
    uint32_t expect = CACHEE_L0_SLOT_PREPARED;
    if (rc == 0 && (L0_LOAD(&sl->gen) != gen ||
                    !__atomic_compare_exchange_n(&sl->state, &expect,
                                                 CACHEE_L0_SLOT_ACTIVE, false,
                                                 __ATOMIC_ACQ_REL,
                                                 __ATOMIC_RELAXED)))
        rc = CACHEE_L0_E_LOCK;
    if (efd >= 0) close(efd); /* (c, 0) goes once the parent closed its copy */
    if (rc != 0) {
        if (locked) l0_ofd_unlock(h->fd, lock_byte(c, 1), 1);
        h->nancestors = 0;
        return rc;
    }
    L0_STORE(&sl->pid, (uint32_t)getpid());
    L0_STORE(&sl->start_time, start_time());
    L0_STORE(&sl->prepared_by, 0u);
    if (h->nancestors == L0_MAX_ANCESTORS) {
        memmove(h->ancestors, h->ancestors + 1,
                (L0_MAX_ANCESTORS - 1) * sizeof h->ancestors[0]);
        h->nancestors--;
    }
    h->ancestors[h->nancestors++] = h->reg_id | L0_ANCESTOR_COPIED;
    h->reg_id = (c << 32) | gen;
    r->slot_gen = gen;
    r->lockbyte = 1;
    r->pid = getpid();
    L0_STORE_REL(&r->slot_plus1, (uint32_t)(c + 1));
    return 0;
}
