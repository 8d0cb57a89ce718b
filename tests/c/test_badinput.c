/*
 * test_badinput.c -- every documented error of cachee_l0_open, set, get,
 * delete and unlink, and hostile files where a region is expected.  After
 * each failing call nothing stored may have changed: reference keys keep
 * their values, counters do not move, files are byte-for-byte the same, and
 * cachee_l0_check passes.
 */
#define _GNU_SOURCE
#include "l0test.h"
#include "l0util.h"

#include <dirent.h>
#include <stddef.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/vfs.h>

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define NREF 20u

/* Reference keys 0..NREF-1 with values (id, 77). */
static void ref_fill(cachee_l0 *h) {
    for (uint32_t i = 0; i < NREF; i++) OK(u_set_val(h, i, 77, 50 + i * 13));
}

static void ref_verify(cachee_l0 *h) {
    uint8_t buf[1024];
    for (uint32_t i = 0; i < NREF; i++) {
        cachee_l0_item it;
        OK(u_get_val(h, i, buf, sizeof buf, &it));
        CHECK(it.value_len == 50 + i * 13);
        CHECK(u_value_equals(buf, it.value_len, i, 77) == 0);
    }
    CHECK_REGION(h);
}

/* A region with reference data for the "nothing changed" checks. */
static cachee_l0 *ref_region(char *name, size_t cap, const char *tag) {
    cachee_l0 *h = u_new(name, cap, tag, 2 * MiB, 16 * KiB);
    ref_fill(h);
    return h;
}

/* The same, with its /dev/shm path in path[256]. */
static cachee_l0 *ref_region_at(char *name, size_t cap, char path[256],
                                const char *tag) {
    cachee_l0 *h = ref_region(name, cap, tag);
    u_shm_path(path, 256, name);
    return h;
}

/* A handle opened on name with options o (NULL: the defaults) sees the
 * reference data; it is closed again. */
static void ref_verify_opened(const char *name, const cachee_l0_options *o) {
    cachee_l0 *h = NULL;
    OK(cachee_l0_open(name, o, &h));
    CHECK(h != NULL);
    ref_verify(h);
    OK(cachee_l0_close(h));
}

/* The last lines of a test with reference data: it is intact (and
 * cachee_l0_check passes), then the handle closes and the region goes. */
#define REF_FINISH(h, name)                                                  \
    do {                                                                     \
        ref_verify(h);                                                       \
        U_CLOSE_UNLINK(h, name);                                             \
    } while (0)

/* Counters that a failed call must not move. */
typedef struct snap {
    cachee_l0_stats s;
    int64_t count;
} snap;

static snap take(cachee_l0 *h) {
    snap x = {u_stats(h), cachee_l0_count(h)};
    return x;
}

static void same(cachee_l0 *h, const snap *a, int line) {
    snap b = take(h);
    if (b.s.sets != a->s.sets || b.s.deletes != a->s.deletes ||
        b.s.hits != a->s.hits || b.s.misses != a->s.misses ||
        b.s.set_failures != a->s.set_failures || b.s.evictions != a->s.evictions ||
        b.s.pins != a->s.pins || b.count != a->count) {
        fprintf(stderr, "  line %d: a failed call changed the counters\n", line);
        u_print_stats("before", &a->s);
        u_print_stats("after", &b.s);
        exit(1);
    }
}

/* The call must fail with `code` and change nothing in region h. */
#define FAILS(h, call, code)                                                 \
    do {                                                                     \
        snap a_ = take(h);                                                   \
        CHECK_RC(call, code);                                                \
        same(h, &a_, __LINE__);                                              \
        ref_verify(h);                                                       \
    } while (0)

static cachee_l0_options opts(uint64_t size, uint32_t flags) {
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    o.size = size;
    o.flags = flags;
    o.open_timeout_ms = 300;
    return o;
}

/* Open must fail with `code`, leave *out NULL. */
static void open_fails(const char *path, const cachee_l0_options *o, int code,
                       int line) {
    cachee_l0 *h = (cachee_l0 *)&h; /* garbage: must be reset to NULL */
    int rc = cachee_l0_open(path, o, &h);
    if (rc != code) {
        fprintf(stderr, "  line %d: open(%.80s%s) = %d (%s), want %d (%s)\n", line,
                path, strlen(path) > 80 ? "..." : "", rc, cachee_l0_strerror(rc),
                code, cachee_l0_strerror(code));
        if (rc == 0) cachee_l0_close(h);
        exit(1);
    }
    CHECK(h == NULL);
}
#define OPEN_FAILS(path, o, code) open_fails((path), (o), (code), __LINE__)

/* Opening the existing file at path fails with `code`, with and without
 * CACHEE_L0_CREATE. */
static void open_and_create_fail(const char *path, int code, int line) {
    cachee_l0_options o = opts(0, 0);
    open_fails(path, &o, code, line);
    o = opts(2 * MiB, CACHEE_L0_CREATE);
    open_fails(path, &o, code, line);
}
#define OPEN_AND_CREATE_FAIL(path, code) open_and_create_fail((path), (code), __LINE__)

/* ------------------------------------------------------------ open */

TEST(open_null_and_unknown_flags) {
    char name[128], path[256], rname[128];
    cachee_l0 *ref = ref_region(rname, sizeof rname, "nref");
    u_name_path(name, sizeof name, path, sizeof path, "null");
    u_track(name);
    cachee_l0_options o = opts(2 * MiB, CACHEE_L0_CREATE);
    CHECK_RC(cachee_l0_open(name, &o, NULL), CACHEE_L0_E_INVAL);
    OPEN_FAILS(NULL, &o, CACHEE_L0_E_INVAL);
    uint32_t bad_flags[] = {0x40u, 0x80u, 0x100u, 0x80000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
        o = opts(2 * MiB, CACHEE_L0_CREATE | bad_flags[i]);
        OPEN_FAILS(name, &o, CACHEE_L0_E_INVAL);
        CHECK(!u_exists(path));
    }
    uint32_t bad_modes[] = {01000u, 02600u, 04600u, 07777u, 0x10000u};
    for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
        o = opts(2 * MiB, CACHEE_L0_CREATE);
        o.mode = bad_modes[i];
        OPEN_FAILS(name, &o, CACHEE_L0_E_INVAL);
        CHECK(!u_exists(path));
    }
    /* Unknown flags are refused for an existing region too. */
    o = opts(0, 0x40u);
    OPEN_FAILS(rname, &o, CACHEE_L0_E_INVAL);
    /* opts NULL means the defaults: open an existing region. */
    ref_verify_opened(rname, NULL);
    OPEN_FAILS(name, NULL, CACHEE_L0_E_NO_REGION);
    CHECK(!u_exists(path));
    REF_FINISH(ref, rname);
}

TEST(open_bad_sizes) {
    char name[128], path[256], rname[128];
    cachee_l0 *ref = ref_region(rname, sizeof rname, "sref");
    u_name_path(name, sizeof name, path, sizeof path, "size");
    u_track(name);
    struct {
        uint64_t size;
        uint32_t seg, procs;
        uint64_t entries;
        const char *what;
    } cases[] = {
        {0, 0, 0, 0, "size 0"},
        {1, 0, 0, 0, "size 1"},
        {CACHEE_L0_SIZE_MIN - 1, 0, 0, 0, "size below 1 MiB"},
        {CACHEE_L0_SIZE_MAX + 1, 0, 0, 0, "size above 16 TiB"},
        {UINT64_MAX, 0, 0, 0, "size UINT64_MAX"},
        {4 * MiB, 3000, 0, 0, "segment 3000"},
        {4 * MiB, 12 * KiB, 0, 0, "segment 12 KiB"},
        {4 * MiB, 2 * KiB, 0, 0, "segment 2 KiB (below minimum)"},
        {4 * MiB, 128 * MiB, 0, 0, "segment 128 MiB (above maximum)"},
        {4 * MiB, 0x80000000u, 0, 0, "segment 2 GiB"},
        {1 * MiB, 1 * MiB, 0, 0, "one segment"},
        {4 * MiB, 1 * MiB, 0, 0, "fewer than 8 segments"},
        {4 * MiB, 0, 70000, 0, "max_procs 70000"},
        {4 * MiB, 0, CACHEE_L0_PROCS_MAX + 1, 0, "max_procs 65537"},
        {4 * MiB, 0, 0, 4 * MiB / 16 + 1, "max_entries > size/16"},
        {4 * MiB, 0, 0, UINT64_MAX, "max_entries UINT64_MAX"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cachee_l0_options o = opts(cases[i].size, CACHEE_L0_CREATE);
        o.segment_size = cases[i].seg;
        o.max_procs = cases[i].procs;
        o.max_entries = cases[i].entries;
        cachee_l0 *h = (cachee_l0 *)&o;
        int rc = cachee_l0_open(name, &o, &h);
        if (rc != CACHEE_L0_E_SIZE) {
            fprintf(stderr, "  %s: open = %d (%s), want E_SIZE\n", cases[i].what, rc,
                    cachee_l0_strerror(rc));
            exit(1);
        }
        CHECK(h == NULL);
        if (u_exists(path)) {
            fprintf(stderr, "  %s: a file was left at %s\n", cases[i].what, path);
            exit(1);
        }
    }
    /* The smallest size, the default max_procs. */
    cachee_l0_options o = opts(CACHEE_L0_SIZE_MIN, CACHEE_L0_CREATE);
    cachee_l0 *h = NULL;
    OK(cachee_l0_open(name, &o, &h));
    cachee_l0_info info = u_info(h);
    CHECK(info.region_size == CACHEE_L0_SIZE_MIN);
    CHECK(info.max_procs == CACHEE_L0_PROCS_DEFAULT);
    CHECK(info.segments >= 8);
    OK(u_set_val(h, 1, 1, 100));
    U_FINISH(h, name);
    REF_FINISH(ref, rname);
}

TEST(open_bad_paths) {
    char rname[128];
    cachee_l0 *ref = ref_region(rname, sizeof rname, "pref");
    static char longpath[PATH_MAX + 64];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    static char longabs[PATH_MAX + 64];
    memcpy(longabs, "/dev/shm/", 9);
    memset(longabs + 9, 'b', sizeof longabs - 10);
    longabs[sizeof longabs - 1] = '\0';
    const char *bad[] = {"",         ".",           "..",          "/dev/shm/",
                         "/dev/shm/.", "/dev/shm/..", "somedir/",   "/",
                         longpath,   longabs};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cachee_l0_options o = opts(2 * MiB, CACHEE_L0_CREATE);
        OPEN_FAILS(bad[i], &o, CACHEE_L0_E_BAD_PATH);
        o = opts(0, 0);
        OPEN_FAILS(bad[i], &o, CACHEE_L0_E_BAD_PATH);
        int rc = cachee_l0_unlink(bad[i]);
        if (rc != CACHEE_L0_E_BAD_PATH) {
            fprintf(stderr, "  unlink(%.40s) = %d (%s)\n", bad[i], rc,
                    cachee_l0_strerror(rc));
            exit(1);
        }
    }
    CHECK_RC(cachee_l0_unlink(NULL), CACHEE_L0_E_BAD_PATH);
    CHECK(u_exists("/dev/shm"));
    REF_FINISH(ref, rname);
}

/* A name longer than the filesystem allows (NAME_MAX = 255) is "too long":
 * the documented answer is E_BAD_PATH, not a raw errno. */
TEST(open_name_too_long) {
    char name[300];
    memset(name, 'n', 299);
    name[299] = '\0';
    cachee_l0_options o = opts(2 * MiB, CACHEE_L0_CREATE);
    OPEN_FAILS(name, &o, CACHEE_L0_E_BAD_PATH);
    o = opts(0, 0);
    OPEN_FAILS(name, &o, CACHEE_L0_E_BAD_PATH);
    CHECK_RC(cachee_l0_unlink(name), CACHEE_L0_E_BAD_PATH);
}

TEST(open_symlink_refused_target_untouched) {
    char rname[128], target[160], link_[256], dangling[256], plain[256];
    cachee_l0 *ref = ref_region(rname, sizeof rname, "symt");
    u_shm_path(target, sizeof target, rname);
    snprintf(link_, sizeof link_, "%.150s-link", target);
    snprintf(dangling, sizeof dangling, "%.150s-dangling", target);
    snprintf(plain, sizeof plain, "%.150s-plain", target);
    u_track_plain(link_);
    u_track_plain(dangling);
    u_track_plain(plain);
    OK(cachee_l0_close(ref));
    size_t len0 = 0;
    uint8_t *before = u_read_file(target, &len0);
    CHECK(symlink(target, link_) == 0);

    OPEN_AND_CREATE_FAIL(link_, CACHEE_L0_E_UNSAFE_PATH);
    cachee_l0_options o = opts(2 * MiB, CACHEE_L0_CREATE | CACHEE_L0_EXCLUSIVE);
    OPEN_FAILS(link_, &o, CACHEE_L0_E_UNSAFE_PATH);
    o = opts(0, CACHEE_L0_ALLOW_FOREIGN_OWNER | CACHEE_L0_ALLOW_LOOSE_MODE |
                    CACHEE_L0_ALLOW_ANY_FS);
    OPEN_FAILS(link_, &o, CACHEE_L0_E_UNSAFE_PATH);
    CHECK_RC(cachee_l0_unlink(link_), CACHEE_L0_E_UNSAFE_PATH);
    struct stat st;
    CHECK(lstat(link_, &st) == 0 && S_ISLNK(st.st_mode)); /* still there */

    /* The target is byte for byte what it was. */
    size_t len1 = 0;
    uint8_t *after = u_read_file(target, &len1);
    CHECK(len0 == len1 && memcmp(before, after, len0) == 0);
    free(before);
    free(after);
    ref = u_attach(rname);
    ref_verify(ref);

    /* A dangling symlink: CREATE must not create its target. */
    char missing[256];
    snprintf(missing, sizeof missing, "%.150s-missing", target);
    u_track_plain(missing);
    CHECK(symlink(missing, dangling) == 0);
    o = opts(2 * MiB, CACHEE_L0_CREATE);
    OPEN_FAILS(dangling, &o, CACHEE_L0_E_UNSAFE_PATH);
    CHECK(!u_exists(missing));

    /* A symlink to a plain file: refused, file unchanged. */
    u_write_file(plain, "not a region, just bytes", 24, 0600);
    unlink(link_);
    CHECK(symlink(plain, link_) == 0);
    o = opts(2 * MiB, CACHEE_L0_CREATE);
    OPEN_FAILS(link_, &o, CACHEE_L0_E_UNSAFE_PATH);
    size_t pl = 0;
    uint8_t *pb = u_read_file(plain, &pl);
    CHECK(pl == 24 && memcmp(pb, "not a region, just bytes", 24) == 0);
    free(pb);

    unlink(link_);
    unlink(dangling);
    unlink(plain);
    REF_FINISH(ref, rname);
}

TEST(open_directory_refused) {
    char name[128], path[256], rname[128];
    cachee_l0 *ref = ref_region(rname, sizeof rname, "dref");
    u_name_path(name, sizeof name, path, sizeof path, "dir");
    u_track_plain(path);
    CHECK(mkdir(path, 0700) == 0);
    OPEN_AND_CREATE_FAIL(name, CACHEE_L0_E_UNSAFE_PATH);
    CHECK_RC(cachee_l0_unlink(name), CACHEE_L0_E_UNSAFE_PATH);
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(rmdir(path) == 0);
    REF_FINISH(ref, rname);
}

TEST(open_non_region_file_unchanged) {
    char name[128], path[256], rname[128];
    cachee_l0 *ref = ref_region(rname, sizeof rname, "nrref");
    u_name_path(name, sizeof name, path, sizeof path, "plain");
    u_track_plain(path);
    static uint8_t data[3 * 4096];
    u_rng r = u_rng_seed(5);
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)u_next(&r);
    size_t lens[] = {sizeof data, 8192, 4096, 100, 1, 0};
    for (size_t c = 0; c < sizeof lens / sizeof lens[0]; c++) {
        for (int zero = 0; zero < 2; zero++) {
            static uint8_t content[sizeof data];
            memcpy(content, data, lens[c]);
            if (zero) memset(content, 0, lens[c]);
            u_write_file(path, content, lens[c], 0600);
            OPEN_AND_CREATE_FAIL(name, CACHEE_L0_E_NOT_REGION);
            cachee_l0_options o = opts(2 * MiB, CACHEE_L0_CREATE | CACHEE_L0_EXCLUSIVE);
            OPEN_FAILS(name, &o, CACHEE_L0_E_REGION_EXISTS);
            CHECK_RC(cachee_l0_unlink(name), CACHEE_L0_E_NOT_REGION);
            size_t got = 0;
            uint8_t *now = u_read_file(path, &got);
            if (got != lens[c] || memcmp(now, content, got) != 0) {
                fprintf(stderr, "  file of %zu bytes (zero=%d) was changed\n",
                        lens[c], zero);
                exit(1);
            }
            free(now);
            struct stat st;
            CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
        }
    }
    /* A file that starts with the magic but nothing else of a region. */
    static uint8_t fake[8192];
    memset(fake, 0, sizeof fake);
    memcpy(fake, CACHEE_L0_MAGIC, 8);
    u_write_file(path, fake, sizeof fake, 0600);
    cachee_l0_options o = opts(0, 0);
    OPEN_FAILS(name, &o, CACHEE_L0_E_FORMAT);
    size_t got = 0;
    uint8_t *now = u_read_file(path, &got);
    CHECK(got == sizeof fake && memcmp(now, fake, got) == 0);
    free(now);
    unlink(path);
    REF_FINISH(ref, rname);
}

TEST(open_format_or_magic_changed) {
    char name[128], path[256];
    cachee_l0 *h = ref_region_at(name, sizeof name, path, "fmt");
    uint64_t fmt, bad;
    u_peek(path, 8, &fmt, 8);
    /* Each byte of the format word matters. */
    for (int byte = 0; byte < 8; byte++) {
        bad = fmt ^ (1ull << (8 * byte));
        u_poke(path, 8, &bad, 8);
        OPEN_AND_CREATE_FAIL(name, CACHEE_L0_E_FORMAT);
        uint64_t now;
        u_peek(path, 8, &now, 8);
        CHECK(now == bad); /* refused, not "repaired" */
    }
    /* A handle opened before the change notices in check. */
    char msg[256];
    CHECK_RC(cachee_l0_check(h, msg, sizeof msg), CACHEE_L0_E_CORRUPT);
    CHECK(msg[0] != '\0');
    u_poke(path, 8, &fmt, 8);
    ref_verify(h);

    /* Magic. */
    char magic[8];
    u_peek(path, 0, magic, 8);
    CHECK(memcmp(magic, CACHEE_L0_MAGIC, 8) == 0);
    for (int byte = 0; byte < 8; byte++) {
        char bm[8];
        memcpy(bm, magic, 8);
        bm[byte] ^= 0x20;
        u_poke(path, 0, bm, 8);
        OPEN_AND_CREATE_FAIL(name, CACHEE_L0_E_NOT_REGION);
        CHECK_RC(cachee_l0_unlink(name), CACHEE_L0_E_NOT_REGION);
        CHECK(u_exists(path));
    }
    CHECK_RC(cachee_l0_check(h, msg, sizeof msg), CACHEE_L0_E_CORRUPT);
    u_poke(path, 0, magic, 8);
    ref_verify_opened(name, NULL);
    REF_FINISH(h, name);
}

/* Geometry in the header that contradicts itself or the file. */
TEST(open_geometry_inconsistent) {
    char name[128], path[256];
    cachee_l0 *h = ref_region_at(name, sizeof name, path, "geo");
    OK(cachee_l0_close(h));
    /* offsets of header fields (see struct cachee_l0_shm_header) */
#define F(x) {offsetof(struct cachee_l0_shm_header, x), #x}
    const struct {
        off_t off;
        const char *what;
    } fields[] = {
        F(region_size), F(seg_size),  F(nsegs),     F(nshards),
        F(shard_slots), F(max_procs), F(ring_cap),  F(ghost_n),
        F(slots_off),   F(pins_off),  F(segs_off),  F(gens_off),
        F(rings_off),   F(free_off),  F(ghost_off), F(shards_off),
        F(index_off),   F(arena_off),
    };
#undef F
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        uint64_t v, w;
        u_peek(path, fields[i].off, &v, 8);
        w = v + 4096;
        u_poke(path, fields[i].off, &w, 8);
        cachee_l0 *x = NULL;
        int rc = cachee_l0_open(name, NULL, &x);
        if (rc == 0 || x != NULL) {
            fprintf(stderr, "  %s changed: open succeeded\n", fields[i].what);
            exit(1);
        }
        CHECK(rc == CACHEE_L0_E_CORRUPT || rc == CACHEE_L0_E_SIZE_MISMATCH);
        u_poke(path, fields[i].off, &v, 8);
    }
    h = u_attach(name);
    REF_FINISH(h, name);
}

TEST(open_hard_link_refused) {
    char name[128], path[256], path2[300];
    cachee_l0 *h = ref_region_at(name, sizeof name, path, "hlink");
    snprintf(path2, sizeof path2, "%s-second", path);
    u_track_plain(path2);
    CHECK(link(path, path2) == 0);
    OPEN_AND_CREATE_FAIL(name, CACHEE_L0_E_UNSAFE_PATH);
    cachee_l0_options o = opts(0, 0);
    OPEN_FAILS(path2, &o, CACHEE_L0_E_UNSAFE_PATH);
    /* The handle opened before keeps working. */
    ref_verify(h);
    CHECK(unlink(path2) == 0);
    ref_verify_opened(name, NULL);
    U_CLOSE_UNLINK(h, name);
}

TEST(open_loose_mode) {
    char name[128], path[256];
    cachee_l0 *h = ref_region_at(name, sizeof name, path, "mode");
    mode_t loose[] = {0666, 0644, 0640, 0604, 0700, 0610, 04600, 01600};
    for (size_t i = 0; i < sizeof loose / sizeof loose[0]; i++) {
        CHECK(chmod(path, loose[i]) == 0);
        OPEN_AND_CREATE_FAIL(name, CACHEE_L0_E_MODE);
        struct stat st;
        CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == loose[i]);
        cachee_l0_options o = opts(0, CACHEE_L0_ALLOW_LOOSE_MODE);
        ref_verify_opened(name, &o);
    }
    /* Asking for the mode the file has is not loose. */
    CHECK(chmod(path, 0666) == 0);
    cachee_l0_options o = opts(0, 0);
    o.mode = 0666;
    cachee_l0 *x = NULL;
    OK(cachee_l0_open(name, &o, &x));
    OK(cachee_l0_close(x));
    /* Stricter than asked is fine. */
    CHECK(chmod(path, 0400) == 0);
    ref_verify_opened(name, NULL);
    CHECK(chmod(path, 0600) == 0);
    REF_FINISH(h, name);
}

TEST(open_foreign_owner) {
    if (geteuid() != 0) {
        printf("  note: not root, chown impossible: skipped\n");
        return;
    }
    char name[128], path[256];
    cachee_l0 *h = ref_region_at(name, sizeof name, path, "owner");
    CHECK(chown(path, 65534, 65534) == 0);
    OPEN_AND_CREATE_FAIL(name, CACHEE_L0_E_OWNER);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_uid == 65534);
    cachee_l0_options o = opts(0, CACHEE_L0_ALLOW_FOREIGN_OWNER);
    ref_verify_opened(name, &o);
    CHECK(chown(path, 0, 0) == 0);
    REF_FINISH(h, name);
}

TEST(open_missing_exists_size_mismatch) {
    char name[128], path[256], missing[128], mpath[256];
    cachee_l0 *h = ref_region_at(name, sizeof name, path, "mism");
    u_name_path(missing, sizeof missing, mpath, sizeof mpath, "missing");
    u_track(missing);
    cachee_l0_options o = opts(0, 0);
    OPEN_FAILS(missing, &o, CACHEE_L0_E_NO_REGION);
    o = opts(2 * MiB, 0);
    OPEN_FAILS(missing, &o, CACHEE_L0_E_NO_REGION);
    o = opts(2 * MiB, CACHEE_L0_EXCLUSIVE); /* EXCLUSIVE alone creates nothing */
    OPEN_FAILS(missing, &o, CACHEE_L0_E_NO_REGION);
    CHECK(!u_exists(mpath));

    o = opts(2 * MiB, CACHEE_L0_CREATE | CACHEE_L0_EXCLUSIVE);
    OPEN_FAILS(name, &o, CACHEE_L0_E_REGION_EXISTS);
    o = opts(0, CACHEE_L0_CREATE | CACHEE_L0_EXCLUSIVE);
    OPEN_FAILS(name, &o, CACHEE_L0_E_REGION_EXISTS);

    uint64_t other[] = {4 * MiB, 2 * MiB - 1, 2 * MiB + 1, CACHEE_L0_SIZE_MIN};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        o = opts(other[i], 0);
        OPEN_FAILS(name, &o, CACHEE_L0_E_SIZE_MISMATCH);
        o = opts(other[i], CACHEE_L0_CREATE);
        OPEN_FAILS(name, &o, CACHEE_L0_E_SIZE_MISMATCH);
    }
    struct stat st;
    CHECK(stat(path, &st) == 0 && (uint64_t)st.st_size == 2 * MiB);
    REF_FINISH(h, name);
    CHECK_RC(cachee_l0_unlink(name), CACHEE_L0_E_NO_REGION);
}

/* A directory that is not tmpfs or hugetlbfs, or NULL. */
static const char *non_shm_dir(void) {
    static const char *cands[] = {"/tmp", "/var/tmp", "/root", "/work"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        struct statfs sf;
        if (statfs(cands[i], &sf) != 0) continue;
        if ((uint32_t)sf.f_type == (uint32_t)TMPFS_MAGIC ||
            (uint32_t)sf.f_type == (uint32_t)HUGETLBFS_MAGIC)
            continue;
        if (access(cands[i], W_OK) != 0) continue;
        return cands[i];
    }
    return NULL;
}

static int count_dir_entries(const char *dir, const char *containing) {
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (containing == NULL || strstr(e->d_name, containing) != NULL) n++;
    }
    closedir(d);
    return n;
}

TEST(open_not_on_tmpfs) {
    const char *dir = non_shm_dir();
    if (dir == NULL) {
        printf("  note: no writable non-tmpfs directory: skipped\n");
        return;
    }
    char name[128], path[512];
    u_name(name, sizeof name, "notshm");
    snprintf(path, sizeof path, "%s/%s", dir, name);
    u_track(path);
    cachee_l0_options o = opts(2 * MiB, CACHEE_L0_CREATE);
    OPEN_FAILS(path, &o, CACHEE_L0_E_NOT_SHM);
    CHECK(!u_exists(path));
    CHECK(count_dir_entries(dir, name) == 0); /* no hidden init file either */

    /* Allowed explicitly, it works; reopening without the flag is refused. */
    o = opts(2 * MiB, CACHEE_L0_CREATE | CACHEE_L0_ALLOW_ANY_FS);
    cachee_l0 *h = NULL;
    OK(cachee_l0_open(path, &o, &h));
    ref_fill(h);
    ref_verify(h);
    OK(cachee_l0_close(h));
    o = opts(0, 0);
    OPEN_FAILS(path, &o, CACHEE_L0_E_NOT_SHM);
    o = opts(0, CACHEE_L0_ALLOW_ANY_FS);
    OK(cachee_l0_open(path, &o, &h));
    ref_verify(h);
    U_CLOSE_UNLINK(h, path);
    CHECK(!u_exists(path));
}

TEST(open_no_space_on_small_tmpfs) {
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/cachee-test-mnt-%d", (int)getpid());
    CHECK(mkdir(dir, 0700) == 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=8m tmpfs '%s' 2>/dev/null", dir);
    if (system(cmd) != 0) {
        rmdir(dir);
        printf("  note: cannot mount a tmpfs here (not root?): skipped\n");
        return;
    }
    u_track_mount(dir);
    struct statfs sf0;
    CHECK(statfs(dir, &sf0) == 0);
    char path[512];
    snprintf(path, sizeof path, "%s/region", dir);

    cachee_l0_options o = opts(64 * MiB, CACHEE_L0_CREATE);
    OPEN_FAILS(path, &o, CACHEE_L0_E_NO_SPACE);
    CHECK(!u_exists(path));
    CHECK(count_dir_entries(dir, NULL) == 0);
    struct statfs sf1;
    CHECK(statfs(dir, &sf1) == 0);
    CHECK(sf1.f_bfree == sf0.f_bfree); /* the reservation was given back */

    /* What fits, works; a second region that does not fit is refused. */
    o = opts(4 * MiB, CACHEE_L0_CREATE);
    cachee_l0 *h = NULL;
    OK(cachee_l0_open(path, &o, &h));
    ref_fill(h);
    char path2[600];
    snprintf(path2, sizeof path2, "%s/second", dir);
    o = opts(6 * MiB, CACHEE_L0_CREATE);
    OPEN_FAILS(path2, &o, CACHEE_L0_E_NO_SPACE);
    CHECK(!u_exists(path2));
    CHECK(count_dir_entries(dir, NULL) == 1);
    ref_verify(h);
    U_CLOSE_UNLINK(h, path);
    snprintf(cmd, sizeof cmd, "umount '%s'", dir);
    CHECK(system(cmd) == 0);
    CHECK(rmdir(dir) == 0);
    u_nmounts = 0;
}

/* A region whose creator died after linking it and before the ready mark:
 * simulated by clearing the ready mark of a real region. */
TEST(open_abandoned_region) {
    char name[128], path[256];
    cachee_l0 *h = ref_region_at(name, sizeof name, path, "aband");
    OK(cachee_l0_close(h));
    uint32_t ready;
    u_peek(path, 24, &ready, 4);
    CHECK(ready == CACHEE_L0_READY_MARK);
    uint32_t zero = 0;
    u_poke(path, 24, &zero, 4);
    size_t len0 = 0;
    uint8_t *before = u_read_file(path, &len0);
    struct stat st0;
    CHECK(stat(path, &st0) == 0);

    /* Nobody holds the init lock: refused at once, without waiting for a
     * creator.  The timeout is long so that "at once" (well under it) can
     * be told apart from "waited it out" on any machine. */
    cachee_l0_options o = opts(0, 0);
    o.open_timeout_ms = 30000;
    double t0 = l0test_now();
    OPEN_FAILS(name, &o, CACHEE_L0_E_NOT_READY);
    double dt = l0test_now() - t0;
    printf("  abandoned region refused after %.3f s (timeout 30 s)\n", dt);
    CHECK(dt < 15.0);
    size_t len1 = 0;
    uint8_t *after = u_read_file(path, &len1);
    CHECK(len0 == len1 && memcmp(before, after, len0) == 0);
    free(before);
    free(after);

    /* CREATE replaces it with a fresh region. */
    o = opts(2 * MiB, CACHEE_L0_CREATE);
    h = NULL;
    OK(cachee_l0_open(name, &o, &h));
    struct stat st1;
    CHECK(stat(path, &st1) == 0);
    CHECK(st1.st_ino != st0.st_ino);
    uint8_t buf[64];
    CHECK_RC(cachee_l0_get(h, "k:0", 3, buf, sizeof buf, NULL), CACHEE_L0_NOTFOUND);
    ref_fill(h);
    REF_FINISH(h, name);
}

/* While the init lock is held (a creator at work), openers wait up to
 * open_timeout_ms, then give up; once the creator finishes they succeed. */
TEST(open_waits_for_creator) {
    char name[128], path[256];
    cachee_l0 *h = ref_region_at(name, sizeof name, path, "wait");
    OK(cachee_l0_close(h));
    uint32_t zero = 0, mark = CACHEE_L0_READY_MARK;
    u_poke(path, 24, &zero, 4);

    volatile uint64_t *sync = u_shm(4096);
    pid_t pid = u_fork();
    if (pid == 0) { /* the "creator" */
        int fd = open(path, O_RDWR);
        struct flock fl;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        fl.l_start = CACHEE_L0_LOCK_INIT;
        fl.l_len = 1;
        if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) != 0) _exit(2);
        u_inc(&sync[0]);
        u_wait_counter(&sync[1], 1, 30); /* parent: finish now */
        u_sleep_ms(200);
        if (pwrite(fd, &mark, 4, 24) != 4) _exit(3);
        fl.l_type = F_UNLCK;
        fcntl(fd, F_OFD_SETLK, &fl);
        close(fd);
        _exit(0);
    }
    u_wait_counter(&sync[0], 1, 10);
    cachee_l0_options o = opts(0, 0);
    o.open_timeout_ms = 300;
    double t0 = l0test_now();
    OPEN_FAILS(name, &o, CACHEE_L0_E_NOT_READY);
    double dt = l0test_now() - t0;
    printf("  busy creator: gave up after %.3f s (timeout 0.3 s)\n", dt);
    /* Waits out its timeout (the deadline is taken inside the call, so at
     * least 0.3 s), and gives up then: below the default timeout of 5 s,
     * which an opener ignoring open_timeout_ms would wait. */
    CHECK(dt >= 0.29 && dt < 4.5);
    o = opts(2 * MiB, CACHEE_L0_CREATE);
    o.open_timeout_ms = 300;
    OPEN_FAILS(name, &o, CACHEE_L0_E_NOT_READY); /* not abandoned: no replace */

    /* The creator finishes 0.2 s after it is told to (t0 is read before
     * that): the opener waits for it, then gets the region.  The timeout
     * only has to outlast a creator slowed down by a loaded machine. */
    o = opts(0, 0);
    o.open_timeout_ms = 60000;
    t0 = l0test_now();
    u_inc(&sync[1]);
    h = NULL;
    OK(cachee_l0_open(name, &o, &h));
    dt = l0test_now() - t0;
    printf("  opened %.3f s after the creator was told to finish\n", dt);
    CHECK(dt >= 0.15 && dt < 30.0);
    ref_verify(h);
    CHECK_CHILD(pid, 10);
    U_CLOSE_UNLINK(h, name);
}

/* A creator gives up (for example E_NO_SPACE): it unlinks its half-built
 * file and releases the init lock.  An opener waiting for it must not wait
 * for a file that no longer has a name: with CREATE it makes the region. */
TEST(open_creator_gives_up_while_waiting) {
    char name[128], path[256];
    cachee_l0 *h = ref_region_at(name, sizeof name, path, "giveup");
    OK(cachee_l0_close(h));
    uint32_t zero = 0;
    u_poke(path, 24, &zero, 4);
    volatile uint64_t *sync = u_shm(4096);
    pid_t pid = u_fork();
    if (pid == 0) {
        int fd = open(path, O_RDWR);
        struct flock fl;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        fl.l_start = CACHEE_L0_LOCK_INIT;
        fl.l_len = 1;
        if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) != 0) _exit(2);
        u_inc(&sync[0]);
        u_wait_counter(&sync[1], 1, 30);
        u_sleep_ms(200);
        unlink(path); /* what create_region does when it fails */
        close(fd);    /* releases the init lock */
        _exit(0);
    }
    u_wait_counter(&sync[0], 1, 10);
    u_inc(&sync[1]);
    /* The opener must notice that the file lost its name and create the
     * region, not wait out its timeout: a long timeout (which a slow
     * creator never reaches) and a bound well under it. */
    cachee_l0_options o = opts(2 * MiB, CACHEE_L0_CREATE);
    o.open_timeout_ms = 60000;
    double t0 = l0test_now();
    h = NULL;
    int rc = cachee_l0_open(name, &o, &h);
    double dt = l0test_now() - t0;
    printf("  open(CREATE) returned %d after %.3f s (creator gave up after 0.2 s)\n",
           rc, dt);
    CHECK_CHILD(pid, 10);
    OK(rc);
    CHECK(dt < 30.0);
    ref_fill(h);
    REF_FINISH(h, name);
}

/* ------------------------------------------------------ set/get/delete */

TEST(set_bad_arguments) {
    char name[128];
    cachee_l0 *h = ref_region(name, sizeof name, "setbad");
    cachee_l0_info info = u_info(h);
    uint8_t *big = calloc(1, CACHEE_L0_KEY_MAX + 2);
    CHECK(big != NULL);
    static uint8_t meta[CACHEE_L0_META_MAX + 1];
    const char *k = "k:3"; /* an existing reference key */

    CHECK_RC(cachee_l0_set(NULL, "a", 1, "v", 1, NULL, 0, 0, 0), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_set(h, NULL, 5, "v", 1, NULL, 0, 0, 0), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_set(h, NULL, 0, "v", 1, NULL, 0, 0, 0), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_set(h, "", 0, "v", 1, NULL, 0, 0, 0), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_set(h, big, CACHEE_L0_KEY_MAX + 1, "v", 1, NULL, 0, 0, 0),
          CACHEE_L0_E_KEY_TOO_LARGE);
    FAILS(h, cachee_l0_set(h, big, SIZE_MAX, "v", 1, NULL, 0, 0, 0),
          CACHEE_L0_E_KEY_TOO_LARGE);
    FAILS(h, cachee_l0_set(h, k, 3, NULL, 10, NULL, 0, 0, 0), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_set(h, k, 3, "v", 1, NULL, 3, 0, 0), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_set(h, k, 3, "v", 1, meta, CACHEE_L0_META_MAX + 1, 0, 0),
          CACHEE_L0_E_META_TOO_LARGE);
    FAILS(h, cachee_l0_set(h, "new", 3, "v", 1, meta, CACHEE_L0_META_MAX + 1, 0, 0),
          CACHEE_L0_E_META_TOO_LARGE);
    uint32_t flags[] = {0x02u, 0x04u, 0x100u, 0x80000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        FAILS(h, cachee_l0_set(h, k, 3, "v", 1, NULL, 0, 0, flags[i]),
              CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_set(h, k, 3, "v", 1, NULL, 0, UINT64_MAX, 0), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_set(h, k, 3, "v", 1, NULL, 0, (uint64_t)INT64_MAX, 0),
          CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_set(h, "new", 3, "v", 1, NULL, 0, UINT64_MAX - 5, 0),
          CACHEE_L0_E_INVAL);
    /* Too large values: never read (a huge length with a tiny buffer). */
    FAILS(h, cachee_l0_set(h, k, 3, "v", info.value_max + 1, NULL, 0, 0, 0),
          CACHEE_L0_E_VALUE_TOO_LARGE);
    FAILS(h, cachee_l0_set(h, k, 3, "v", SIZE_MAX, NULL, 0, 0, 0),
          CACHEE_L0_E_VALUE_TOO_LARGE);
    FAILS(h, cachee_l0_set(h, k, 3, "v", SIZE_MAX / 2, NULL, 0, 0, 0),
          CACHEE_L0_E_VALUE_TOO_LARGE);
    FAILS(h, cachee_l0_set(h, "new", 3, "v", info.arena_size, NULL, 0, 0, 0),
          CACHEE_L0_E_VALUE_TOO_LARGE);
    /* IF_ABSENT on a present key. */
    FAILS(h, cachee_l0_set(h, k, 3, "v", 1, NULL, 0, 0, CACHEE_L0_IF_ABSENT),
          CACHEE_L0_EXISTS);
    /* Valid edge cases still work afterwards. */
    OK(cachee_l0_set(h, big, CACHEE_L0_KEY_MAX, "v", 1, meta, CACHEE_L0_META_MAX,
                     1000000000ull * 3600, 0));
    uint8_t buf[8];
    OK(cachee_l0_get(h, big, CACHEE_L0_KEY_MAX, buf, sizeof buf, NULL));
    CHECK(buf[0] == 'v');
    free(big);
    REF_FINISH(h, name);
}

TEST(get_bad_arguments) {
    char name[128];
    cachee_l0 *h = ref_region(name, sizeof name, "getbad");
    uint8_t *big = calloc(1, CACHEE_L0_KEY_MAX + 2);
    CHECK(big != NULL);
    uint8_t buf[1024];
    cachee_l0_item it;
    cachee_l0_view v;
    memset(&it, 0, sizeof it);
    CHECK_RC(cachee_l0_get(NULL, "k:1", 3, buf, sizeof buf, NULL), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_get(h, NULL, 3, buf, sizeof buf, NULL), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_get(h, "k:1", 0, buf, sizeof buf, NULL), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_get(h, big, CACHEE_L0_KEY_MAX + 1, buf, sizeof buf, NULL),
          CACHEE_L0_E_KEY_TOO_LARGE);
    FAILS(h, cachee_l0_get(h, "k:1", 3, NULL, 5, NULL), CACHEE_L0_E_INVAL);
    it.meta_buf = NULL;
    it.meta_cap = 5;
    FAILS(h, cachee_l0_get(h, "k:1", 3, buf, sizeof buf, &it), CACHEE_L0_E_INVAL);

    CHECK_RC(cachee_l0_read_begin(NULL, "k:1", 3, &v), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_read_begin(h, "k:1", 3, NULL), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_read_begin(h, NULL, 3, &v), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_read_begin(h, "", 0, &v), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_read_begin(h, big, CACHEE_L0_KEY_MAX + 1, &v),
          CACHEE_L0_E_KEY_TOO_LARGE);
    CHECK_RC(cachee_l0_get_pinned(NULL, "k:1", 3, &v), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_get_pinned(h, "k:1", 3, NULL), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_get_pinned(h, NULL, 3, &v), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_get_pinned(h, "", 0, &v), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_get_pinned(h, big, CACHEE_L0_KEY_MAX + 1, &v),
          CACHEE_L0_E_KEY_TOO_LARGE);
    CHECK_RC(cachee_l0_contains(NULL, "k:1", 3), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_contains(h, NULL, 3), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_contains(h, "", 0), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_contains(h, big, CACHEE_L0_KEY_MAX + 1),
          CACHEE_L0_E_KEY_TOO_LARGE);

    /* validate / release with NULL or forged views */
    CHECK_RC(cachee_l0_read_validate(NULL, &v), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_read_validate(h, NULL), CACHEE_L0_E_INVAL);
    memset(&v, 0, sizeof v);
    v.loc = UINT64_MAX / 64;
    CHECK_RC(cachee_l0_read_validate(h, &v), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_release(NULL, &v), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_release(h, NULL), CACHEE_L0_E_INVAL);
    memset(&v, 0, sizeof v);
    FAILS(h, cachee_l0_release(h, &v), CACHEE_L0_E_BAD_PIN);
    v.pin_ = UINT64_MAX;
    FAILS(h, cachee_l0_release(h, &v), CACHEE_L0_E_BAD_PIN);
    /* A real pin released twice, and a copy of a released view. */
    OK(cachee_l0_get_pinned(h, "k:2", 3, &v));
    cachee_l0_view copy = v;
    OK(cachee_l0_release(h, &v));
    FAILS(h, cachee_l0_release(h, &v), CACHEE_L0_E_BAD_PIN);
    FAILS(h, cachee_l0_release(h, &copy), CACHEE_L0_E_BAD_PIN);
    free(big);
    REF_FINISH(h, name);
}

TEST(delete_bad_arguments) {
    char name[128];
    cachee_l0 *h = ref_region(name, sizeof name, "delbad");
    uint8_t *big = calloc(1, CACHEE_L0_KEY_MAX + 2);
    CHECK(big != NULL);
    CHECK_RC(cachee_l0_delete(NULL, "k:1", 3), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_delete(h, NULL, 3), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_delete(h, NULL, 0), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_delete(h, "k:1", 0), CACHEE_L0_E_INVAL);
    FAILS(h, cachee_l0_delete(h, big, CACHEE_L0_KEY_MAX + 1), CACHEE_L0_E_KEY_TOO_LARGE);
    FAILS(h, cachee_l0_delete(h, "k:1x", 4), CACHEE_L0_NOTFOUND);
    FAILS(h, cachee_l0_delete(h, "k:", 2), CACHEE_L0_NOTFOUND);
    free(big);
    REF_FINISH(h, name);
}

TEST(unlink_errors) {
    char name[128], path[256], tmp[300];
    cachee_l0 *h = ref_region_at(name, sizeof name, path, "unl");
    CHECK_RC(cachee_l0_unlink(""), CACHEE_L0_E_BAD_PATH);
    CHECK_RC(cachee_l0_unlink("."), CACHEE_L0_E_BAD_PATH);
    CHECK_RC(cachee_l0_unlink(".."), CACHEE_L0_E_BAD_PATH);
    snprintf(tmp, sizeof tmp, "%s-absent", name);
    CHECK_RC(cachee_l0_unlink(tmp), CACHEE_L0_E_NO_REGION);
    snprintf(tmp, sizeof tmp, "%s-link", path);
    u_track_plain(tmp);
    CHECK(symlink(path, tmp) == 0);
    CHECK_RC(cachee_l0_unlink(tmp), CACHEE_L0_E_UNSAFE_PATH);
    CHECK(u_exists(tmp));
    unlink(tmp);
    snprintf(tmp, sizeof tmp, "%s-dir", path);
    u_track_plain(tmp);
    CHECK(mkdir(tmp, 0700) == 0);
    CHECK_RC(cachee_l0_unlink(tmp), CACHEE_L0_E_UNSAFE_PATH);
    CHECK(rmdir(tmp) == 0);
    snprintf(tmp, sizeof tmp, "%s-plain", path);
    u_track_plain(tmp);
    static uint8_t junk[8192];
    memset(junk, 0x5a, sizeof junk);
    u_write_file(tmp, junk, sizeof junk, 0600);
    CHECK_RC(cachee_l0_unlink(tmp), CACHEE_L0_E_NOT_REGION);
    CHECK(u_exists(tmp));
    u_write_file(tmp, junk, 10, 0600); /* shorter than a header */
    CHECK_RC(cachee_l0_unlink(tmp), CACHEE_L0_E_NOT_REGION);
    CHECK(u_exists(tmp));
    unlink(tmp);
    ref_verify(h);
    /* Unlinking a region in use: the name goes, users keep working. */
    OK(cachee_l0_unlink(name));
    CHECK(!u_exists(path));
    ref_verify(h);
    OK(u_set_val(h, 100, 1, 100));
    CHECK_RC(cachee_l0_unlink(name), CACHEE_L0_E_NO_REGION);
    OK(cachee_l0_close(h));
}

TEST(null_handle_everywhere) {
    cachee_l0_stats s;
    cachee_l0_info i;
    char msg[64];
    CHECK_RC(cachee_l0_stats_get(NULL, &s), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_info_get(NULL, &i), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_check(NULL, msg, sizeof msg), CACHEE_L0_E_INVAL);
    CHECK(cachee_l0_reap(NULL) < 0);
    CHECK(cachee_l0_count(NULL) == 0);
    CHECK_RC(cachee_l0_close(NULL), 0);
    CHECK_RC(cachee_l0_fork_prepare(NULL), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_fork_parent(NULL), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_fork_child(NULL), CACHEE_L0_E_INVAL);
    char name[128];
    cachee_l0 *h = ref_region(name, sizeof name, "nullh");
    CHECK_RC(cachee_l0_stats_get(h, NULL), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_info_get(h, NULL), CACHEE_L0_E_INVAL);
    OK(cachee_l0_check(h, NULL, 0)); /* msg may be NULL */
    /* without hand-off prepared, parent/child are no-ops */
    OK(cachee_l0_fork_parent(h));
    OK(cachee_l0_fork_child(h));
    REF_FINISH(h, name);
}

/* Every slot taken by a live process: the next process gets
 * E_TOO_MANY_PROCS (and changes nothing); when one exits, its slot is
 * reclaimed and the newcomer gets in. */
TEST(too_many_procs) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "procs", 2 * MiB, 16 * KiB, 0, 2);
    ref_fill(h); /* this process: slot 1 of 2 */
    volatile uint64_t *sync = u_shm(4096);
    pid_t a = u_fork();
    if (a == 0) {
        ref_verify(h); /* slot 2 of 2 */
        u_inc(&sync[0]);
        u_wait_counter(&sync[1], 1, 30);
        _exit(0);
    }
    u_wait_counter(&sync[0], 1, 10);
    pid_t b = u_fork();
    if (b == 0) {
        uint8_t buf[64];
        cachee_l0_view v;
        cachee_l0_stats s;
        CHECK_RC(cachee_l0_set(h, "b", 1, "v", 1, NULL, 0, 0, 0),
                 CACHEE_L0_E_TOO_MANY_PROCS);
        CHECK_RC(cachee_l0_get(h, "k:1", 3, buf, sizeof buf, NULL),
                 CACHEE_L0_E_TOO_MANY_PROCS);
        CHECK_RC(cachee_l0_get_pinned(h, "k:1", 3, &v), CACHEE_L0_E_TOO_MANY_PROCS);
        CHECK_RC(cachee_l0_read_begin(h, "k:1", 3, &v), CACHEE_L0_E_TOO_MANY_PROCS);
        CHECK_RC(cachee_l0_delete(h, "k:1", 3), CACHEE_L0_E_TOO_MANY_PROCS);
        CHECK_RC(cachee_l0_contains(h, "k:1", 3), CACHEE_L0_E_TOO_MANY_PROCS);
        CHECK_RC(cachee_l0_stats_get(h, &s), CACHEE_L0_E_TOO_MANY_PROCS);
        u_inc(&sync[2]);
        u_wait_counter(&sync[3], 1, 30); /* A has exited */
        OK(cachee_l0_set(h, "b", 1, "v", 1, NULL, 0, 0, 0));
        ref_verify(h);
        _exit(0);
    }
    u_wait_counter(&sync[2], 1, 10);
    cachee_l0_stats s = u_stats(h);
    CHECK(s.live_procs == 2);
    CHECK(s.sets == NREF);
    ref_verify(h);
    u_inc(&sync[1]);
    CHECK_CHILD(a, 10);
    u_inc(&sync[3]);
    CHECK_CHILD(b, 10);
    s = u_stats(h);
    CHECK(s.sets == NREF + 1);
    CHECK(s.live_procs == 1);
    CHECK(s.reaped_procs == 2);
    REF_FINISH(h, name);
}

/* A view released through a handle that did not pin it is "a foreign
 * view": E_BAD_PIN, and the pin stays with its owner. */
TEST(release_foreign_view) {
    char name[128];
    cachee_l0 *h = ref_region(name, sizeof name, "foreign");
    cachee_l0 *h2 = u_attach(name);
    cachee_l0_view v;
    OK(cachee_l0_get_pinned(h2, "k:5", 3, &v));
    CHECK(u_stats(h).pins == 1);
    cachee_l0_view copy = v;
    CHECK_RC(cachee_l0_release(h, &copy), CACHEE_L0_E_BAD_PIN);
    CHECK(u_stats(h).pins == 1);
    /* A forged view naming a segment and no owner. */
    cachee_l0_view forged;
    memset(&forged, 0, sizeof forged);
    forged.pin_ = 1;
    CHECK_RC(cachee_l0_release(h, &forged), CACHEE_L0_E_BAD_PIN);
    OK(cachee_l0_release(h2, &v));
    CHECK(u_stats(h).pins == 0);
    OK(cachee_l0_close(h2));
    REF_FINISH(h, name);
}

/* 65535 pins of one process on one segment is the limit; the next pin is
 * refused with E_TOO_MANY_PINS and everything else goes on. */
TEST(too_many_pins) {
    char name[128];
    cachee_l0 *h = ref_region(name, sizeof name, "pins");
    /* Push the reference keys out of this process's open segment, so that
     * only readers pin theirs. */
    for (uint32_t i = 1000; i < 1100; i++) OK(u_set_val(h, i, 1, 1000));
    const uint32_t max = CACHEE_L0_PINS_PER_SEGMENT_MAX;
    cachee_l0_view *views = malloc((size_t)(max + 1) * sizeof *views);
    CHECK(views != NULL);
    for (uint32_t i = 0; i < max; i++) OK(cachee_l0_get_pinned(h, "k:4", 3, &views[i]));
    cachee_l0_view extra;
    memset(&extra, 0, sizeof extra);
    CHECK_RC(cachee_l0_get_pinned(h, "k:4", 3, &extra), CACHEE_L0_E_TOO_MANY_PINS);
    cachee_l0_stats s = u_stats(h);
    CHECK(s.pins == max);
    CHECK(s.pinned_bytes == (uint64_t)max * (50 + 4 * 13));
    /* A key in another segment can still be pinned. */
    OK(cachee_l0_get_pinned(h, "k:1099", 6, &extra));
    OK(cachee_l0_release(h, &extra));
    /* Batches report the limit per key. */
    const void *keys[2] = {"k:4", "k:1099"};
    size_t lens[2] = {3, 6};
    cachee_l0_view bv[2];
    int res[2];
    OK(cachee_l0_get_many(h, 2, keys, lens, bv, res));
    CHECK_RC(res[0], CACHEE_L0_E_TOO_MANY_PINS);
    CHECK_RC(res[1], 0);
    OK(cachee_l0_release(h, &bv[1]));
    for (uint32_t i = 0; i < max; i++) OK(cachee_l0_release(h, &views[i]));
    s = u_stats(h);
    CHECK(s.pins == 0 && s.pinned_bytes == 0);
    OK(cachee_l0_get_pinned(h, "k:4", 3, &extra));
    OK(cachee_l0_release(h, &extra));
    free(views);
    REF_FINISH(h, name);
}

/* The same limit reached on the segment this process is appending to: a
 * write is not a view, and E_TOO_MANY_PINS is not among the documented
 * errors of cachee_l0_set, so the write must still succeed. */
TEST(set_succeeds_with_max_pins_on_own_open_segment) {
    char name[128];
    cachee_l0 *h = ref_region(name, sizeof name, "wpins");
    OK(cachee_l0_set(h, "hot", 3, "value", 5, NULL, 0, 0, 0)); /* open segment */
    const uint32_t max = CACHEE_L0_PINS_PER_SEGMENT_MAX;
    cachee_l0_view *views = malloc((size_t)max * sizeof *views);
    CHECK(views != NULL);
    for (uint32_t i = 0; i < max; i++) OK(cachee_l0_get_pinned(h, "hot", 3, &views[i]));
    int rc = cachee_l0_set(h, "next", 4, "v", 1, NULL, 0, 0, 0);
    if (rc != 0)
        fprintf(stderr, "  set while this process holds %u pins on its open segment "
                        "= %d (%s)\n", max, rc, cachee_l0_strerror(rc));
    for (uint32_t i = 0; i < max; i++) OK(cachee_l0_release(h, &views[i]));
    free(views);
    CHECK_RC(rc, 0);
    uint8_t buf[8];
    OK(cachee_l0_get(h, "next", 4, buf, sizeof buf, NULL));
    REF_FINISH(h, name);
}

int main(int argc, char **argv) { return l0test_main(argc, argv); }
