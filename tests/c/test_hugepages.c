/*
 * test_hugepages.c -- CACHEE_L0_HUGEPAGES on a tmpfs mounted with
 * huge=advise: the region's memory really comes in 2 MiB pages, and a tmpfs
 * too small for it still fails at creation with E_NO_SPACE (the reservation
 * goes through MADV_POPULATE_WRITE on that path, not posix_fallocate).  On a
 * tmpfs without huge= (a default /dev/shm), the creator collapses the region
 * into 2 MiB pages (MADV_COLLAPSE), and every process maps it with 2 MiB
 * page-table entries.  Needs root (mount); skips with a note otherwise.
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

/* Bytes of this process's mappings of `path` mapped with 2 MiB entries
 * (ShmemPmdMapped of /proc/self/smaps), and whether every one of them
 * starts on a 2 MiB boundary. */
static long pmd_mapped_kb(const char *path, int *aligned) {
    FILE *f = fopen("/proc/self/smaps", "r");
    CHECK(f != NULL);
    char line[4096];
    int ours = 0;
    long kb = 0, v;
    *aligned = 1;
    while (fgets(line, sizeof line, f)) {
        unsigned long start, end;
        char name[4096];
        name[0] = '\0';
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %4095s", &start, &end, name) >= 2 &&
            strchr(line, '-') < strchr(line, ' ')) {
            ours = strcmp(name, path) == 0;
            if (ours && start % (2 * MiB) != 0) *aligned = 0;
            continue;
        }
        if (ours && sscanf(line, "ShmemPmdMapped: %ld kB", &v) == 1) kb += v;
    }
    fclose(f);
    return kb;
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
    U_CLOSE_UNLINK(h, path);
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

TEST(hugepages_flag_collapses_the_region_on_a_plain_tmpfs) {
    char dir[256];
    if (mount_tmpfs(dir, sizeof dir, "size=96m") != 0) return; /* no huge= */
    char path[512];
    snprintf(path, sizeof path, "%s/region", dir);
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    o.size = 64 * MiB;
    o.flags = CACHEE_L0_CREATE | CACHEE_L0_HUGEPAGES;
    cachee_l0 *h = NULL;
    OK(cachee_l0_open(path, &o, &h));
    char v[512];
    memset(v, 9, sizeof v);
    for (int i = 0; i < 1000; i++) {
        char k[32];
        int kl = snprintf(k, sizeof k, "k%d", i);
        OK(cachee_l0_set(h, k, (size_t)kl, v, sizeof v, NULL, 0, 0, 0));
    }
    int aligned = 0;
    long kb = pmd_mapped_kb(path, &aligned);
    printf("  creator: %ld kB of its mappings in 2 MiB entries\n", kb);
    CHECK(aligned);
    if (kb == 0) {
        printf("  note: this kernel did not collapse the region (MADV_COLLAPSE needs "
               "Linux 6.1 and shmem_enabled other than deny): skipped\n");
    } else {
        CHECK(kb >= 32 * 1024);
        /* Another process maps the same huge pages with 2 MiB entries. */
        volatile uint64_t *sync = u_shm(4096);
        pid_t pid = u_fork();
        if (pid == 0) {
            cachee_l0 *c = u_attach(path);
            char out[512];
            for (int i = 0; i < 1000; i++) {
                char k[32];
                int kl = snprintf(k, sizeof k, "k%d", i);
                OK(cachee_l0_get(c, k, (size_t)kl, out, sizeof out, NULL));
                CHECK(memcmp(out, v, sizeof v) == 0);
            }
            int al = 0;
            sync[0] = (uint64_t)pmd_mapped_kb(path, &al);
            sync[1] = (uint64_t)al;
            OK(cachee_l0_close(c));
            _exit(0);
        }
        CHECK_CHILD(pid, 60);
        printf("  another process: %llu kB in 2 MiB entries\n", (unsigned long long)sync[0]);
        CHECK(sync[1] == 1 && sync[0] > 0);
    }
    OK(cachee_l0_check(h, NULL, 0));
    U_CLOSE_UNLINK(h, path);
    unmount(dir);
}

/* Without the flag the mappings are 2 MiB-aligned all the same (so a region
 * on a huge= mount gets 2 MiB entries without asking). */
TEST(mappings_are_2mib_aligned) {
    char name[128], path[256];
    u_name(name, sizeof name, "align");
    u_shm_path(path, sizeof path, name);
    cachee_l0 *h = u_create(name, 16 * MiB, 0);
    int aligned = 0;
    (void)pmd_mapped_kb(path, &aligned);
    CHECK(aligned);
    U_CLOSE_UNLINK(h, name);
}

int main(int argc, char **argv) { return l0test_main(argc, argv); }
