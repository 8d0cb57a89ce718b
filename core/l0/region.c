/*
 * region.c -- creating, opening, validating, closing and unlinking regions.
 *
 * Creation is race-free without waiting: the creator builds the header in an
 * unnamed file (O_TMPFILE), takes the init lock, links the file into place
 * (link fails if another creator won), reserves the memory, initialises the
 * tables and writes the ready mark last.  Openers validate everything before
 * they use anything, and keep a private copy of the geometry.
 */
#include "l0_internal.h"
#include "l0_ofd.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>

#define L0_ALL_FLAGS                                                        \
    (CACHEE_L0_CREATE | CACHEE_L0_EXCLUSIVE | CACHEE_L0_ALLOW_FOREIGN_OWNER | \
     CACHEE_L0_ALLOW_LOOSE_MODE | CACHEE_L0_ALLOW_ANY_FS | CACHEE_L0_HUGEPAGES)
#define L0_RESTART 1 /* internal: start the open over */

#ifdef L0_TEST_POINTS
void (*l0_test_point)(int point);
#endif

void cachee_l0_options_init(cachee_l0_options *opts) {
    if (opts) memset(opts, 0, sizeof *opts);
}

/* ---------------------------------------------------------------- paths */

static int resolve_path(const char *path, char out[PATH_MAX]) {
    if (path == NULL || path[0] == '\0') return CACHEE_L0_E_BAD_PATH;
    const char *slash = strrchr(path, '/');
    const char *last = slash ? slash + 1 : path;
    if (last[0] == '\0' || strcmp(last, ".") == 0 || strcmp(last, "..") == 0 ||
        strlen(last) > NAME_MAX)
        return CACHEE_L0_E_BAD_PATH;
    int n = slash ? snprintf(out, PATH_MAX, "%s", path)
                  : snprintf(out, PATH_MAX, "/dev/shm/%s", path);
    if (n < 0 || n >= PATH_MAX) return CACHEE_L0_E_BAD_PATH;
    return 0;
}

static void dir_of(const char *full, char dir[PATH_MAX]) {
    const char *slash = strrchr(full, '/');
    if (slash == NULL) {
        strcpy(dir, ".");
    } else if (slash == full) {
        strcpy(dir, "/");
    } else {
        size_t n = (size_t)(slash - full);
        memcpy(dir, full, n);
        dir[n] = '\0';
    }
}

/* ------------------------------------------------------- file checks */

typedef struct fs_info {
    int is_shm;
    int hugetlbfs;
    uint64_t hpage;
} fs_info;

static int fs_of(int fd, fs_info *fi) {
    struct statfs sf;
    if (fstatfs(fd, &sf) != 0) return errno;
    fi->hugetlbfs = (uint32_t)sf.f_type == (uint32_t)HUGETLBFS_MAGIC;
    fi->is_shm = fi->hugetlbfs || (uint32_t)sf.f_type == (uint32_t)TMPFS_MAGIC;
    fi->hpage = fi->hugetlbfs ? (uint64_t)sf.f_bsize : 0;
    return 0;
}

/* Ownership, permissions and filesystem of an opened region file. */
static int check_file(int fd, uint32_t flags, uint32_t mode, fs_info *fi,
                      struct stat *st) {
    if (fstat(fd, st) != 0) return errno;
    if (!S_ISREG(st->st_mode)) return CACHEE_L0_E_UNSAFE_PATH;
    if (st->st_uid != geteuid() && !(flags & CACHEE_L0_ALLOW_FOREIGN_OWNER))
        return CACHEE_L0_E_OWNER;
    if ((st->st_mode & 07777 & ~mode) != 0 &&
        !(flags & CACHEE_L0_ALLOW_LOOSE_MODE))
        return CACHEE_L0_E_MODE;
    int rc = fs_of(fd, fi);
    if (rc != 0) return rc;
    if (!fi->is_shm && !(flags & CACHEE_L0_ALLOW_ANY_FS))
        return CACHEE_L0_E_NOT_SHM;
    return 0;
}

static uint64_t header_map_len(const fs_info *fi) {
    return fi->hugetlbfs && fi->hpage > L0_HEADER_BYTES ? fi->hpage
                                                        : L0_HEADER_BYTES;
}

/* ------------------------------------------------------------ creation */

static void fill_header(struct cachee_l0_shm_header *hd, const l0_geom *g,
                        uint32_t flags) {
    memcpy(hd->magic, CACHEE_L0_MAGIC, 8);
    hd->format = l0_format_word();
    hd->region_size = g->region_size;
    hd->ready = 0;
    hd->flags = flags & CACHEE_L0_HUGEPAGES;
    hd->created_ns = l0_now_ns();
    hd->creator_pid = (uint32_t)getpid();
    hd->seg_size = g->seg_size;
    hd->nsegs = g->nsegs;
    hd->max_entries = g->max_entries;
    hd->nshards = g->nshards;
    hd->shard_slots = g->shard_slots;
    hd->max_procs = g->max_procs;
    hd->ring_cap = g->ring_cap;
    hd->ghost_n = g->ghost_n;
    hd->slots_off = g->slots_off;
    hd->pins_off = g->pins_off;
    hd->segs_off = g->segs_off;
    hd->gens_off = g->gens_off;
    hd->rings_off = g->rings_off;
    hd->free_off = g->free_off;
    hd->ghost_off = g->ghost_off;
    hd->shards_off = g->shards_off;
    hd->index_off = g->index_off;
    hd->arena_off = g->arena_off;
    hd->keygen_n = g->keygen_n;
    hd->keygen_off = g->keygen_off;
}

/* Initialise locks and tables of a freshly reserved (zeroed) region. */
static int init_tables(uint8_t *rw, const l0_geom *g) {
    cachee_l0 tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.rw = rw;
    tmp.ro = rw;
    tmp.g = *g;
    struct cachee_l0_shm_header *hd = l0_hdr(&tmp);
    int rc = l0_mutex_init(&hd->global_lock);
    if (rc != 0) return rc;
    for (uint64_t s = 0; s < g->nshards; s++) {
        rc = l0_mutex_init(&l0_shard(&tmp, s)->lock);
        if (rc != 0) return rc;
    }
    l0_segments_init(&tmp);
    return 0;
}

static int tmpfile_in(const char *dir, const char *full, uint32_t mode,
                      char named[PATH_MAX], int *fd_out) {
    named[0] = '\0';
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        /* No O_TMPFILE here: a hidden name, linked into place the same way. */
        const char *base = strrchr(full, '/');
        base = base ? base + 1 : full;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int n = snprintf(named, PATH_MAX, "%s/.%s.cachee-init.%d.%ld", dir, base,
                         (int)getpid(), (long)ts.tv_nsec);
        if (n < 0 || n >= PATH_MAX) return CACHEE_L0_E_BAD_PATH;
        fd = open(named, O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0) named[0] = '\0';
    }
    if (fd < 0) return errno;
    *fd_out = fd;
    return 0;
}

static int link_into_place(int fd, const char *named, const char *full) {
    if (named[0] != '\0') {
        int rc = link(named, full) == 0 ? 0 : errno;
        unlink(named);
        return rc;
    }
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, full, AT_SYMLINK_FOLLOW) == 0) return 0;
    if (errno != ENOENT) return errno;
    /* No /proc: AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH, try it anyway. */
    return linkat(fd, "", AT_FDCWD, full, AT_EMPTY_PATH) == 0 ? 0 : errno;
}

static int reserve(int fd, uint64_t off, uint64_t len) {
    int rc;
    do {
        rc = posix_fallocate(fd, (off_t)off, (off_t)len);
    } while (rc == EINTR);
    if (rc == ENOSPC) return CACHEE_L0_E_NO_SPACE;
    return rc;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define L0_HUGE_ALIGN (2ull << 20)

/*
 * mmap of the whole region at an address aligned to 2 MiB, so that the
 * kernel can map it with 2 MiB page-table entries wherever the file has huge
 * pages (a default tmpfs mount does not align its mappings by itself).  On
 * hugetlbfs the kernel aligns to the file's own page size.
 */
static void *map_region(uint64_t len, int prot, int fd, const fs_info *fi) {
    if (len < L0_HUGE_ALIGN || fi->hugetlbfs)
        return mmap(NULL, len, prot, MAP_SHARED, fd, 0);
    uint8_t *res = mmap(NULL, len + L0_HUGE_ALIGN, PROT_NONE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (res == MAP_FAILED) return MAP_FAILED;
    uint8_t *at = (uint8_t *)(((uintptr_t)res + L0_HUGE_ALIGN - 1) &
                              ~(uintptr_t)(L0_HUGE_ALIGN - 1));
    void *p = mmap(at, len, prot, MAP_SHARED | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        munmap(res, len + L0_HUGE_ALIGN);
        errno = e;
        return MAP_FAILED;
    }
    if (at > res) munmap(res, (size_t)(at - res));
    uint8_t *end = at + len, *rend = res + len + L0_HUGE_ALIGN;
    if (rend > end) munmap(end, (size_t)(rend - end));
    return p;
}

/* Huge pages asked for on tmpfs (hugetlbfs has them by construction). */
static bool huge_tmpfs(const l0_params *p, const fs_info *fi) {
    return (p->flags & CACHEE_L0_HUGEPAGES) && fi->is_shm && !fi->hugetlbfs;
}

/* Defaults for parameters left at 0. */
static void fill_params(const cachee_l0_options *o, l0_params *p) {
    memset(p, 0, sizeof *p);
    p->size = o->size;
    p->flags = o->flags & CACHEE_L0_HUGEPAGES;
    if (o->segment_size) {
        p->seg_size = o->segment_size;
    } else {
        uint64_t s = 16u << 10;
        while (s < (1u << 20) && s * 2 <= o->size / 1024) s *= 2;
        p->seg_size = s;
    }
    p->max_procs = o->max_procs ? o->max_procs : CACHEE_L0_PROCS_DEFAULT;
    p->max_entries = o->max_entries ? o->max_entries : o->size / 512;
    if (p->max_entries < 64) p->max_entries = 64;
}

/*
 * Create a new region at `full`.  Returns 0 with *fd_out open on it (ready,
 * init lock released), EEXIST if another creator linked first, or an error.
 */
static int create_region(const char *full, const cachee_l0_options *o,
                         uint32_t mode, int *fd_out) {
    l0_params p;
    fill_params(o, &p);
    l0_geom g;
    int rc = l0_layout(&p, &g); /* reject bad sizes before touching files */
    if (rc != 0) return rc;

    char dir[PATH_MAX], named[PATH_MAX];
    dir_of(full, dir);
    int fd = -1;
    rc = tmpfile_in(dir, full, mode, named, &fd);
    if (rc != 0) return rc;

    uint8_t *hmap = MAP_FAILED, *rw = MAP_FAILED;
    uint64_t hlen = 0;
    int linked = 0;
    fs_info fi = {0, 0, 0};
    if (fchmod(fd, mode) != 0 || (rc = fs_of(fd, &fi)) != 0) {
        rc = rc ? rc : errno;
        goto fail;
    }
    if (!fi.is_shm && !(o->flags & CACHEE_L0_ALLOW_ANY_FS)) {
        rc = CACHEE_L0_E_NOT_SHM;
        goto fail;
    }
    if (fi.hugetlbfs) {
        p.hugetlb_page = (uint32_t)fi.hpage;
        p.size -= p.size % fi.hpage;
        if ((rc = l0_layout(&p, &g)) != 0) goto fail;
    }
    if (ftruncate(fd, (off_t)g.region_size) != 0) {
        rc = errno;
        goto fail;
    }
    hlen = header_map_len(&fi);
    if ((rc = reserve(fd, 0, hlen)) != 0) goto fail;
    hmap = mmap(NULL, hlen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (hmap == MAP_FAILED) {
        rc = errno;
        goto fail;
    }
    struct cachee_l0_shm_header *hd = (struct cachee_l0_shm_header *)hmap;
    fill_header(hd, &g, p.flags);
    if ((rc = l0_ofd_trylock(fd, CACHEE_L0_LOCK_INIT, 1)) != 0) goto fail;
    if ((rc = link_into_place(fd, named, full)) != 0) goto fail;
    linked = 1;
    /* From here the name is visible: openers wait while we hold the lock. */
    L0_TEST_POINT(L0_TP_CREATE_LINKED);
    if (huge_tmpfs(&p, &fi)) {
        /* Reserve by populating an advised mapping: fallocate would
         * allocate small pages before any mapping could ask for huge ones. */
        rw = map_region(g.region_size, PROT_READ | PROT_WRITE, fd, &fi);
        if (rw == MAP_FAILED) {
            rc = errno;
            goto fail;
        }
        madvise(rw, g.region_size, MADV_HUGEPAGE);
        if (madvise(rw, g.region_size, MADV_POPULATE_WRITE) != 0) {
            if (errno == EFAULT || errno == ENOMEM) {
                rc = CACHEE_L0_E_NO_SPACE;
                goto fail;
            }
            if ((rc = reserve(fd, 0, g.region_size)) != 0) goto fail; /* old kernel */
        }
    } else {
        if ((rc = reserve(fd, 0, g.region_size)) != 0) goto fail;
        rw = map_region(g.region_size, PROT_READ | PROT_WRITE, fd, &fi);
        if (rw == MAP_FAILED) {
            rc = errno;
            goto fail;
        }
    }
    if ((rc = init_tables(rw, &g)) != 0) goto fail;
    munmap(rw, g.region_size);
    L0_STORE_REL(&hd->ready, CACHEE_L0_READY_MARK);
    munmap(hmap, hlen);
    l0_ofd_unlock(fd, CACHEE_L0_LOCK_INIT, 1);
    *fd_out = fd;
    return 0;

fail:
    if (rw != MAP_FAILED) munmap(rw, g.region_size);
    if (hmap != MAP_FAILED) munmap(hmap, hlen);
    if (linked) unlink(full); /* ours: nobody else may remove it while we
                                 hold the init lock */
    else if (named[0] != '\0') unlink(named);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------- opening */

static int sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    return nanosleep(&ts, NULL);
}

/* What the header of the region file at fd says: L0_HDR_READY,
 * L0_HDR_BUILDING (no ready mark yet), or an error code. */
enum { L0_HDR_READY = 0, L0_HDR_BUILDING = 1 };

static int read_ready(int fd, const fs_info *fi) {
    struct stat st;
    if (fstat(fd, &st) != 0) return errno;
    uint64_t hlen = header_map_len(fi);
    if ((uint64_t)st.st_size < L0_HEADER_BYTES || (uint64_t)st.st_size < hlen)
        return CACHEE_L0_E_NOT_REGION;
    const struct cachee_l0_shm_header *hd =
        mmap(NULL, hlen, PROT_READ, MAP_SHARED, fd, 0);
    if (hd == MAP_FAILED) return errno;
    int bad_magic = memcmp(hd->magic, CACHEE_L0_MAGIC, 8) != 0;
    int bad_format = hd->format != l0_format_word();
    int ready = L0_LOAD_ACQ(&hd->ready) == CACHEE_L0_READY_MARK;
    munmap((void *)hd, hlen);
    if (bad_magic) return CACHEE_L0_E_NOT_REGION;
    if (bad_format) return CACHEE_L0_E_FORMAT;
    return ready ? L0_HDR_READY : L0_HDR_BUILDING;
}

/* The number of names the file at fd has now (0: it was unlinked). */
static int links_of(int fd, nlink_t *n) {
    struct stat st;
    if (fstat(fd, &st) != 0) return errno;
    *n = st.st_nlink;
    return 0;
}

/*
 * Wait until the region at fd carries the ready mark.  Returns 0 (ready),
 * L0_RESTART (the file lost its name: a creator gave up, an abandoned
 * region was replaced, or the region was unlinked; open the path again),
 * or an error.
 *
 * The states a file found at the path can be in, and what they mean:
 *   ready, 1 name        a region: use it.
 *   any,   0 names       removed since we opened it: open the path again.
 *   ready, 2+ names      a hard link to a region: refused (UNSAFE_PATH).
 *   not ready, init lock held elsewhere
 *                        its creator is building it: wait.
 *   not ready, init lock free
 *                        either its creator died, or it finished between our
 *                        read of the mark and our test of the lock.  Only
 *                        with the init lock taken (so no creator can be
 *                        running) is the mark read again and the file
 *                        replaced if it is still not ready.
 * The link count is read after the mark: a creator links its file before
 * it publishes the mark, and links it exactly once.
 */
static int wait_ready(int fd, const char *full, const fs_info *fi,
                      uint32_t flags, int64_t deadline) {
    for (;;) {
        int state = read_ready(fd, fi);
        if (state != L0_HDR_READY && state != L0_HDR_BUILDING) return state;
        nlink_t links = 0;
        int rc = links_of(fd, &links);
        if (rc != 0) return rc;
        if (links == 0) return L0_RESTART;
        if (state == L0_HDR_READY)
            return links == 1 ? 0 : CACHEE_L0_E_UNSAFE_PATH;

        L0_TEST_POINT(L0_TP_OPEN_SAW_BUILDING);
        int held = l0_ofd_held_elsewhere(fd, CACHEE_L0_LOCK_INIT, 1);
        if (held < 0) return -held;
        if (held) {
            if (l0_now_ns() > deadline) return CACHEE_L0_E_NOT_READY;
            sleep_ms(1);
            continue;
        }
        /* Nobody holds the init lock.  A creator publishes the mark before
         * it releases the lock, so if the mark is still missing now, the
         * creator died. */
        state = read_ready(fd, fi);
        if (state == L0_HDR_READY) continue;
        if (state != L0_HDR_BUILDING) return state;
        if ((rc = links_of(fd, &links)) != 0) return rc;
        if (links == 0) return L0_RESTART;
        if (links != 1) return CACHEE_L0_E_UNSAFE_PATH;
        if (!(flags & CACHEE_L0_CREATE)) return CACHEE_L0_E_NOT_READY;
        /* Abandoned: replace it.  The init lock makes one opener do it. */
        if (l0_ofd_trylock(fd, CACHEE_L0_LOCK_INIT, 1) != 0) {
            sleep_ms(1); /* another opener is replacing it */
            continue;
        }
        struct stat was, now;
        if (links_of(fd, &links) == 0 && links == 1 && fstat(fd, &was) == 0 &&
            stat(full, &now) == 0 && now.st_dev == was.st_dev &&
            now.st_ino == was.st_ino)
            unlink(full);
        l0_ofd_unlock(fd, CACHEE_L0_LOCK_INIT, 1);
        return L0_RESTART;
    }
}

/* Validate geometry and map the region. */
static int attach(int fd, const char *full, const cachee_l0_options *o,
                  const fs_info *fi, const struct stat *st, cachee_l0 **out) {
    uint64_t hlen = header_map_len(fi);
    const struct cachee_l0_shm_header *hd =
        mmap(NULL, hlen, PROT_READ, MAP_SHARED, fd, 0);
    if (hd == MAP_FAILED) return errno;
    struct cachee_l0_shm_header copy;
    memcpy(&copy, hd, sizeof copy);
    munmap((void *)hd, hlen);

    if (o->size != 0 && o->size != copy.region_size &&
        !(fi->hugetlbfs && o->size - o->size % fi->hpage == copy.region_size))
        return CACHEE_L0_E_SIZE_MISMATCH;
    if (copy.region_size != (uint64_t)st->st_size) return CACHEE_L0_E_CORRUPT;
    l0_params p;
    memset(&p, 0, sizeof p);
    p.size = copy.region_size;
    p.seg_size = copy.seg_size;
    p.max_procs = copy.max_procs;
    p.max_entries = copy.max_entries;
    p.flags = copy.flags & CACHEE_L0_HUGEPAGES;
    p.hugetlb_page = (uint32_t)fi->hpage;
    l0_geom g;
    if (copy.seg_size > CACHEE_L0_SEG_MAX || l0_layout(&p, &g) != 0)
        return CACHEE_L0_E_CORRUPT;
    if (g.nsegs != copy.nsegs || g.nshards != copy.nshards ||
        g.shard_slots != copy.shard_slots || g.ring_cap != copy.ring_cap ||
        g.ghost_n != copy.ghost_n || g.slots_off != copy.slots_off ||
        g.pins_off != copy.pins_off || g.segs_off != copy.segs_off ||
        g.gens_off != copy.gens_off || g.rings_off != copy.rings_off ||
        g.free_off != copy.free_off || g.ghost_off != copy.ghost_off ||
        g.shards_off != copy.shards_off || g.index_off != copy.index_off ||
        g.arena_off != copy.arena_off || g.keygen_n != copy.keygen_n ||
        g.keygen_off != copy.keygen_off)
        return CACHEE_L0_E_CORRUPT;

    cachee_l0 *h = calloc(1, sizeof *h);
    if (h == NULL) return ENOMEM;
    h->fd = -1;
    h->prepared_fd = -1;
    h->opener_pid = getpid();
    h->g = g;
    h->hdr_flags = copy.flags;
    h->hugetlbfs = (uint32_t)fi->hugetlbfs;
    snprintf(h->path, sizeof h->path, "%s", full);
    int rc = 0;
    void *rw = map_region(g.region_size, PROT_READ | PROT_WRITE, fd, fi);
    void *ro = rw == MAP_FAILED ? MAP_FAILED : map_region(g.region_size, PROT_READ, fd, fi);
    void *reg = ro == MAP_FAILED ? MAP_FAILED
                                 : mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (reg == MAP_FAILED) {
        rc = errno;
        if (ro != MAP_FAILED) munmap(ro, g.region_size);
        if (rw != MAP_FAILED) munmap(rw, g.region_size);
        free(h);
        return rc;
    }
    /* Liveness locks go on a description that is never mapped (see
     * l0_open_same); the mapping keeps its own. */
    int lfd = l0_open_same(fd, full);
    if (lfd < 0) {
        munmap(reg, 4096);
        munmap(ro, g.region_size);
        munmap(rw, g.region_size);
        free(h);
        return lfd == CACHEE_L0_E_NO_REGION ? lfd : -lfd;
    }
    h->fd = lfd;
    h->rw = rw;
    h->ro = ro;
    h->reg = reg;
    h->wipe_ok = madvise(reg, 4096, MADV_WIPEONFORK) == 0;
    h->reg->pid = getpid();
    if ((copy.flags & CACHEE_L0_HUGEPAGES) && !fi->hugetlbfs) {
        madvise(rw, g.region_size, MADV_HUGEPAGE);
        madvise(ro, g.region_size, MADV_HUGEPAGE);
    }
    *out = h;
    return 0;
}

/*
 * A region created with CACHEE_L0_HUGEPAGES on tmpfs whose mount gave it
 * small pages: collapse it into 2 MiB pages now (see CACHEE_L0_HUGEPAGES).
 * Best effort: the region is ready and in use; a kernel that refuses (older
 * than 6.1, shmem_enabled=deny, no free huge pages) leaves small pages.
 */
static void collapse_huge(cachee_l0 *h) {
    if (!(h->hdr_flags & CACHEE_L0_HUGEPAGES) || h->hugetlbfs) return;
    madvise(h->rw, h->g.region_size, MADV_COLLAPSE);
}

/*
 * The creator's descriptor refers to the unnamed file it built (O_TMPFILE):
 * mappings made through it show as "/dev/shm/#<inode> (deleted)" in
 * /proc/PID/maps and lsof even after the file got its name.  Open the name
 * instead, so that every process, the creator included, shows the region's
 * path.  Keeps fd if the name no longer refers to the same file.
 */
static int reopen_by_name(int fd, const char *full) {
    int nfd = open(full, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (nfd < 0) return fd;
    struct stat a, b;
    if (fstat(nfd, &a) == 0 && fstat(fd, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
        close(fd);
        return nfd;
    }
    close(nfd);
    return fd;
}

int cachee_l0_open(const char *path, const cachee_l0_options *opts,
                   cachee_l0 **out) {
    if (out == NULL) return CACHEE_L0_E_INVAL;
    *out = NULL;
    if (path == NULL) return CACHEE_L0_E_INVAL;
    cachee_l0_options o;
    if (opts) o = *opts;
    else cachee_l0_options_init(&o);
    if (o.flags & ~L0_ALL_FLAGS) return CACHEE_L0_E_INVAL;
    uint32_t mode = o.mode ? o.mode : 0600;
    if (mode & ~0777u) return CACHEE_L0_E_INVAL;
    char full[PATH_MAX];
    int rc = resolve_path(path, full);
    if (rc != 0) return rc;
    int64_t deadline =
        l0_now_ns() + (int64_t)(o.open_timeout_ms ? o.open_timeout_ms : 5000) *
                          1000000ll;

    for (int attempt = 0; attempt < 64; attempt++) {
        int fd = open(full, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        int created = 0;
        if (fd < 0) {
            int e = errno;
            if (e == ELOOP) return CACHEE_L0_E_UNSAFE_PATH;
            if (e == EISDIR) return CACHEE_L0_E_UNSAFE_PATH;
            if (e != ENOENT) return e;
            if (!(o.flags & CACHEE_L0_CREATE)) return CACHEE_L0_E_NO_REGION;
            rc = create_region(full, &o, mode, &fd);
            if (rc == EEXIST) continue; /* another creator won: open theirs */
            if (rc != 0) return rc;
            fd = reopen_by_name(fd, full);
            created = 1;
        } else if ((o.flags & CACHEE_L0_CREATE) &&
                   (o.flags & CACHEE_L0_EXCLUSIVE)) {
            close(fd);
            return CACHEE_L0_E_REGION_EXISTS;
        }
        struct stat st;
        fs_info fi = {0, 0, 0};
        rc = check_file(fd, o.flags, mode, &fi, &st);
        if (rc == 0) rc = wait_ready(fd, full, &fi, o.flags, deadline);
        if (rc == 0) {
            cachee_l0_options ao = o;
            if (created) ao.size = 0; /* hugetlbfs may have rounded it */
            rc = attach(fd, full, &ao, &fi, &st, out);
        }
        close(fd); /* the handle has its own descriptor and mappings */
        if (rc == 0 && o.share_slot != 0 &&
            (rc = l0_share_slot(*out, o.share_slot)) != 0) {
            cachee_l0_close(*out);
            *out = NULL;
            return rc;
        }
        if (rc == 0 && created) collapse_huge(*out);
        if (rc == 0) return 0;
        if (rc != L0_RESTART) return rc;
    }
    return CACHEE_L0_E_NOT_READY;
}

int cachee_l0_close(cachee_l0 *h) {
    if (h == NULL) return 0;
    int rc = 0;
    if (h->reg->slot_plus1 != 0 && !h->reg->shared &&
        (h->wipe_ok || h->reg->pid == getpid()))
        l0_unregister(h);
    if (munmap(h->rw, h->g.region_size) != 0) rc = errno;
    if (munmap((void *)h->ro, h->g.region_size) != 0) rc = errno;
    munmap(h->reg, 4096);
    if (h->prepared_fd >= 0) close(h->prepared_fd);
    if (close(h->fd) != 0 && rc == 0) rc = errno;
    free(h);
    return rc;
}

int cachee_l0_unlink(const char *path) {
    char full[PATH_MAX];
    int rc = resolve_path(path, full);
    if (rc != 0) return rc;
    /* O_NONBLOCK: a FIFO planted at the name must not hang us. */
    int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT) return CACHEE_L0_E_NO_REGION;
        if (errno == ELOOP) return CACHEE_L0_E_UNSAFE_PATH;
        return errno;
    }
    struct stat st;
    fs_info fi = {0, 0, 0};
    if (fstat(fd, &st) != 0 || fs_of(fd, &fi) != 0) {
        rc = errno;
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return CACHEE_L0_E_UNSAFE_PATH;
    }
    uint64_t hlen = header_map_len(&fi);
    if ((uint64_t)st.st_size < hlen) {
        close(fd);
        return CACHEE_L0_E_NOT_REGION;
    }
    const char *m = mmap(NULL, hlen, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return errno;
    int is_region = memcmp(m, CACHEE_L0_MAGIC, 8) == 0;
    munmap((void *)m, hlen);
    if (!is_region) return CACHEE_L0_E_NOT_REGION;
    return unlink(full) == 0 ? 0 : errno;
}

int cachee_l0_info_get(const cachee_l0 *h, cachee_l0_info *out) {
    if (h == NULL || out == NULL) return CACHEE_L0_E_INVAL;
    memset(out, 0, sizeof *out);
    out->region_size = h->g.region_size;
    out->arena_size = h->g.arena_size;
    out->value_max = h->g.value_max;
    out->max_entries = h->g.max_entries;
    out->segment_size = (uint32_t)h->g.seg_size;
    out->segments = (uint32_t)h->g.nsegs;
    out->max_procs = (uint32_t)h->g.max_procs;
    out->shards = (uint32_t)h->g.nshards;
    out->shard_slots = (uint32_t)h->g.shard_slots;
    out->flags = h->hdr_flags;
    out->hugetlbfs = h->hugetlbfs;
    snprintf(out->path, sizeof out->path, "%s", h->path);
    return 0;
}
