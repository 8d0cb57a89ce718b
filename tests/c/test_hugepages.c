/*
 * test_hugepages.c -- CACHEE_L0_HUGEPAGES on a tmpfs mounted with
 * huge=advise: the region's memory really comes in 2 MiB pages, and a tmpfs
 * too small for it still fails at creation with E_NO_SPACE (the reservation
 * goes through MADV_POPULATE_WRITE on that path, not posix_fallocate).
 * Needs root (mount); skips with a note otherwise.
 */
#include <sys/stat.h>
#include <sys/vfs.h>

#include "l0test.h"
#include "l0util.h"

#define MiB (1024ull * 1024ull)

/* ShmemHugePages from /proc/meminfo, in kB (-1 if absent). */
static long shmem_huge_kb(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (f == NULL) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "ShmemHugePages: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* Mount a tmpfs with the given options on a fresh directory; 0 if mounted. */
static int mount_tmpfs(char *dir, size_t cap, const char *opts) {
    snprintf(dir, cap, "/tmp/cachee-test-huge-%d", (int)getpid());
    if (mkdir(dir, 0700) != 0) return -1;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o %s tmpfs '%s' 2>/dev/null", opts, dir);
    if (system(cmd) != 0) {
        rmdir(dir);
        printf("  note: cannot mount a tmpfs with %s here (not root?): skipped\n", opts);
        return -1;
    }
    u_track_mount(dir);
    return 0;
}

static void unmount(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "umount '%s'", dir);
    CHECK(system(cmd) == 0);
    CHECK(rmdir(dir) == 0);
    u_nmounts = 0;
}

TEST(hugepages_flag_gives_huge_pages_on_huge_advise_tmpfs) {
    char dir[256];
    if (mount_tmpfs(dir, sizeof dir, "size=96m,huge=advise") != 0) return;
    char path[512];
    snprintf(path, sizeof path, "%s/region", dir);
    long before = shmem_huge_kb();
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    o.size = 64 * MiB;
    o.flags = CACHEE_L0_CREATE | CACHEE_L0_HUGEPAGES;
    cachee_l0 *h = NULL;
    OK(cachee_l0_open(path, &o, &h));
    long after = shmem_huge_kb();
    printf("  ShmemHugePages %ld kB -> %ld kB\n", before, after);
    if (before >= 0) CHECK(after - before >= 32 * 1024); /* most of 64 MiB */
    cachee_l0_info in;
    OK(cachee_l0_info_get(h, &in));
    CHECK(in.flags & CACHEE_L0_HUGEPAGES);
    char v[512];
    memset(v, 7, sizeof v);
    for (int i = 0; i < 1000; i++) {
        char k[32];
        int kl = snprintf(k, sizeof k, "k%d", i);
        OK(cachee_l0_set(h, k, (size_t)kl, v, sizeof v, NULL, 0, 0, 0));
    }
    char out[512];
    OK(cachee_l0_get(h, "k999", 4, out, sizeof out, NULL));
    CHECK(memcmp(out, v, sizeof v) == 0);
    OK(cachee_l0_check(h, NULL, 0));
    OK(cachee_l0_close(h));
    OK(cachee_l0_unlink(path));
    unmount(dir);
}

TEST(hugepages_flag_on_too_small_tmpfs_is_no_space) {
    char dir[256];
    if (mount_tmpfs(dir, sizeof dir, "size=8m,huge=advise") != 0) return;
    char path[512];
    snprintf(path, sizeof path, "%s/region", dir);
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    o.size = 64 * MiB;
    o.flags = CACHEE_L0_CREATE | CACHEE_L0_HUGEPAGES;
    cachee_l0 *h = NULL;
    CHECK_RC(cachee_l0_open(path, &o, &h), CACHEE_L0_E_NO_SPACE);
    CHECK(h == NULL);
    struct stat st;
    CHECK(stat(path, &st) != 0); /* nothing left behind */
    unmount(dir);
}

int main(int argc, char **argv) { return l0test_main(argc, argv); }
