/*
 * test_create_race.c -- many processes creating and opening one region at
 * the same moment (what `uvicorn --workers 12` or gunicorn without
 * --preload does at every start).
 *
 * Every opener must succeed, every process must map the same file, and
 * every mapping must carry the region's path in /proc/PID/maps (not
 * "/dev/shm/#<inode> (deleted)", the name of the creator's unnamed file).
 *
 * The bug this guards against: an opener read "not ready", the creator then
 * published the ready mark and released its init lock, and the opener, now
 * seeing no lock holder, took the healthy region for an abandoned one and
 * unlinked it.  Other openers then got UNSAFE_PATH (ready, 0 links), and
 * the processes split over two regions.  `creator_finishes_between_checks`
 * forces that interleaving with test points; `many_openers_many_rounds`
 * is the stress form (L0TEST_LONG=1: thousands of rounds).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "l0_internal.h" /* l0_test_point (built with -DL0_TEST_POINTS) */
#include "l0util.h"

#define MiB (1024ull * 1024ull)

/*
 * The inode of the file that this process maps at `path`, read from
 * /proc/self/maps.  Fails the test if a mapping of it is shown under
 * another name (e.g. "(deleted)"), or if there is none.
 */
static uint64_t mapped_inode(const char *path) {
    struct stat st;
    CHECK(stat(path, &st) == 0);
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL);
    char line[4096];
    uint64_t ino = 0;
    int named = 0, other = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long inode = 0;
        int off = 0;
        /* start-end perms offset dev inode path */
        if (sscanf(line, "%*s %*s %*s %*s %llu %n", &inode, &off) < 1 || inode == 0)
            continue;
        char *name = line + off;
        name[strcspn(name, "\n")] = '\0';
        if (strcmp(name, path) == 0) {
            named++;
            if (ino == 0) ino = inode;
            CHECK(ino == inode); /* one file behind the name */
        } else if (inode == (unsigned long long)st.st_ino &&
                   strncmp(name, "/dev/shm/", 9) == 0) {
            fprintf(stderr, "  mapping of the region shown as '%s'\n", name);
            other++;
        }
    }
    fclose(f);
    CHECK(other == 0);
    CHECK(named >= 2); /* the read-write and the read-only mapping */
    return ino;
}

static cachee_l0_options create_opts(void) {
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    o.size = 4 * MiB;
    o.flags = CACHEE_L0_CREATE;
    o.open_timeout_ms = 60000; /* a loaded machine: never the reason to fail */
    return o;
}

/* Leave at `path` a region whose creator died after linking it and before
 * the ready mark: a real region with the mark cleared. */
static void plant_abandoned(const char *name, const char *path) {
    cachee_l0_options o = create_opts();
    o.flags |= CACHEE_L0_EXCLUSIVE;
    cachee_l0 *h = NULL;
    OK(cachee_l0_open(name, &o, &h));
    OK(cachee_l0_close(h));
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    uint32_t zero = 0;
    CHECK(pwrite(fd, &zero, 4, offsetof(struct cachee_l0_shm_header, ready)) == 4);
    close(fd);
}

/*
 * P processes open one name at the same moment, round after round.  The
 * rounds cycle through what the name holds when they start: nothing (they
 * race to create it), a ready region (they attach), an abandoned one (one of
 * them replaces it, the others wait for the replacement), and nothing again
 * with CACHEE_L0_EXCLUSIVE (exactly one creates it, the others are told it
 * exists).
 */
TEST(many_openers_many_rounds) {
    char name[128], path[256];
    u_name(name, sizeof name, "crace");
    u_shm_path(path, sizeof path, name);
    u_track(name);
    enum { P = 12 };
    int rounds = u_long_mode() ? 3000 : 160;
    volatile uint64_t *sync = u_shm(4096);
    int kinds[4] = {0, 0, 0, 0};
    static const char *const kind_name[4] = {"fresh", "existing", "abandoned", "exclusive"};
    for (int round = 0; round < rounds; round++) {
        int kind = round % 4; /* 0 fresh, 1 existing, 2 abandoned, 3 exclusive */
        int excl = kind == 3;
        if (kind == 0 || kind == 3) {
            int rc = cachee_l0_unlink(name);
            CHECK(rc == 0 || rc == CACHEE_L0_E_NO_REGION);
        } else if (kind == 2) {
            OK(cachee_l0_unlink(name));
            plant_abandoned(name, path);
        }
        struct stat before;
        int existed = stat(path, &before) == 0;
        memset((void *)sync, 0, 4096);
        pid_t pids[P];
        for (int p = 0; p < P; p++) {
            pids[p] = u_fork();
            if (pids[p] != 0) continue;
            cachee_l0_options o = create_opts();
            if (excl) o.flags |= CACHEE_L0_EXCLUSIVE;
            u_inc(&sync[0]);
            while (__atomic_load_n(&sync[0], __ATOMIC_ACQUIRE) < P)
                sched_yield(); /* start together */
            cachee_l0 *h = NULL;
            int rc = cachee_l0_open(name, &o, &h);
            if (excl && rc == CACHEE_L0_E_REGION_EXISTS) {
                u_inc(&sync[3]);
                _exit(0);
            }
            if (rc != 0)
                fprintf(stderr, "  round %d (%s), process %d: %d (%s)\n", round,
                        kind_name[kind], p, rc, cachee_l0_strerror(rc));
            OK(rc);
            __atomic_store_n(&sync[8 + p], mapped_inode(path), __ATOMIC_RELEASE);
            char k[16];
            snprintf(k, sizeof k, "p%d", p);
            OK(cachee_l0_set(h, k, strlen(k), k, strlen(k), NULL, 0, 0, 0));
            u_inc(&sync[1]);
            u_wait_counter(&sync[1], excl ? 1 : P, 60);
            for (int q = 0; q < (excl ? 0 : P); q++) { /* everyone's write is visible */
                char kq[16], buf[16];
                snprintf(kq, sizeof kq, "p%d", q);
                cachee_l0_item it;
                memset(&it, 0, sizeof it);
                OK(cachee_l0_get(h, kq, strlen(kq), buf, sizeof buf, &it));
                CHECK(it.value_len == strlen(kq) && memcmp(buf, kq, it.value_len) == 0);
            }
            OK(cachee_l0_close(h));
            _exit(0);
        }
        for (int p = 0; p < P; p++) CHECK_CHILD(pids[p], 120);
        struct stat st;
        CHECK(stat(path, &st) == 0);
        CHECK(st.st_nlink == 1);
        if (excl) { /* one creator; the others were told it exists */
            CHECK(sync[1] == 1 && sync[3] == P - 1);
        } else {
            for (int p = 0; p < P; p++) CHECK(sync[8 + p] == (uint64_t)st.st_ino);
        }
        if (kind == 1) CHECK(existed && st.st_ino == before.st_ino);
        if (kind == 2) CHECK(existed && st.st_ino != before.st_ino);
        kinds[kind]++;
    }
    cachee_l0 *h = u_attach(name);
    CHECK_REGION(h);
    CHECK(u_stats(h).live_procs == 1);
    U_CLOSE_UNLINK(h, name);
    printf("  %d rounds of %d processes: %d fresh, %d existing, %d abandoned, %d exclusive; "
           "0 failures\n", rounds, P, kinds[0], kinds[1], kinds[2], kinds[3]);
}

/* ------------------------------------------- the forced interleaving */

static volatile uint64_t *tp_sync; /* [0] linked [1] opener saw [2] created */

static void creator_point(int point) {
    if (point != L0_TP_CREATE_LINKED) return;
    u_inc(&tp_sync[0]);
    u_wait_counter(&tp_sync[1], 1, 60); /* until the opener read "not ready" */
}

static void opener_point(int point) {
    if (point != L0_TP_OPEN_SAW_BUILDING || tp_sync[1] != 0) return;
    u_inc(&tp_sync[1]);
    u_wait_counter(&tp_sync[2], 1, 60); /* until the creator is done */
}

/*
 * An opener reads "not ready"; before it looks at the init lock, the
 * creator publishes the mark and releases the lock.  The opener must then
 * use that region, not replace it.
 */
TEST(creator_finishes_between_checks) {
    char name[128], path[256];
    u_name(name, sizeof name, "cfin");
    u_shm_path(path, sizeof path, name);
    u_track(name);
    tp_sync = u_shm(4096);
    pid_t creator = u_fork();
    if (creator == 0) {
        l0_test_point = creator_point;
        cachee_l0_options o = create_opts();
        o.flags |= CACHEE_L0_EXCLUSIVE;
        cachee_l0 *h = NULL;
        OK(cachee_l0_open(name, &o, &h));
        __atomic_store_n(&tp_sync[8], mapped_inode(path), __ATOMIC_RELEASE);
        OK(cachee_l0_set(h, "creator", 7, "c", 1, NULL, 0, 0, 0));
        u_inc(&tp_sync[2]);
        u_wait_counter(&tp_sync[3], 1, 60); /* keep it open until the end */
        OK(cachee_l0_close(h));
        _exit(0);
    }
    u_wait_counter(&tp_sync[0], 1, 60); /* linked, not ready */
    pid_t opener = u_fork();
    if (opener == 0) {
        l0_test_point = opener_point;
        cachee_l0_options o = create_opts();
        cachee_l0 *h = NULL;
        OK(cachee_l0_open(name, &o, &h));
        CHECK(tp_sync[1] == 1); /* the interleaving did happen */
        __atomic_store_n(&tp_sync[9], mapped_inode(path), __ATOMIC_RELEASE);
        char buf[4];
        OK(cachee_l0_get(h, "creator", 7, buf, sizeof buf, NULL));
        OK(cachee_l0_close(h));
        _exit(0);
    }
    CHECK_CHILD(opener, 60);
    u_inc(&tp_sync[3]);
    CHECK_CHILD(creator, 60);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK(tp_sync[8] == (uint64_t)st.st_ino);
    CHECK(tp_sync[9] == (uint64_t)st.st_ino);
    OK(cachee_l0_unlink(name));
}

/* A region unlinked after an opener opened the file and before it looked at
 * it: the opener opens the name again, and creates a region there. */
static void unlink_point(int point) {
    if (point != L0_TP_OPEN_SAW_BUILDING || tp_sync[0] != 0) return;
    u_inc(&tp_sync[0]);
    const char *path = (const char *)&tp_sync[16];
    CHECK(unlink(path) == 0);
}

TEST(region_unlinked_while_opening) {
    char name[128], path[256];
    u_name(name, sizeof name, "cunl");
    u_shm_path(path, sizeof path, name);
    u_track(name);
    tp_sync = u_shm(4096);
    snprintf((char *)&tp_sync[16], 256, "%s", path);
    plant_abandoned(name, path); /* "not ready": the opener reaches the point */
    struct stat was;
    CHECK(stat(path, &was) == 0);
    pid_t pid = u_fork();
    if (pid == 0) {
        l0_test_point = unlink_point;
        cachee_l0_options o = create_opts();
        cachee_l0 *h = NULL;
        OK(cachee_l0_open(name, &o, &h));
        CHECK(tp_sync[0] == 1);
        __atomic_store_n(&tp_sync[8], mapped_inode(path), __ATOMIC_RELEASE);
        OK(cachee_l0_close(h));
        _exit(0);
    }
    CHECK_CHILD(pid, 60);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK(st.st_ino != was.st_ino && tp_sync[8] == (uint64_t)st.st_ino);
    OK(cachee_l0_unlink(name));
}

/* The creator itself shows the path in /proc/self/maps, from its first
 * mapping of the region on, and so does a second handle. */
TEST(creator_mappings_carry_the_path) {
    char name[128], path[256];
    u_name(name, sizeof name, "cmap");
    u_shm_path(path, sizeof path, name);
    cachee_l0 *h = u_create(name, 4 * MiB, 0);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK(mapped_inode(path) == (uint64_t)st.st_ino);
    cachee_l0 *h2 = u_attach(name);
    CHECK(mapped_inode(path) == (uint64_t)st.st_ino);
    OK(cachee_l0_close(h2));
    U_CLOSE_UNLINK(h, name);
}

int main(int argc, char **argv) { return l0test_main(argc, argv); }
