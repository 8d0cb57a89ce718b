/*
 * benchutil.h -- helpers shared by the C benchmarks of the L0 engine
 * (the programs in bench/l0): clocks, a fast random stream, fixed-width keys, a start
 * barrier for processes, prefaulting and inspecting the mappings of a region,
 * the machine description every benchmark prints, and unlinking every region
 * a benchmark created, also when it is interrupted.
 *
 * Header-only (static functions); uses only the public API in cachee_l0.h.
 */
#ifndef CACHEE_BENCHUTIL_H
#define CACHEE_BENCHUTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cachee_l0.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Helpers a program may not use: no unused-function warnings. */
#define BU_FN static __attribute__((unused))
#define BU_LIKELY(x) __builtin_expect(!!(x), 1)
#define BU_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define BU_KEY_LEN 16u
#define BU_MiB (1024.0 * 1024.0)
#define BU_GiB (1024.0 * 1024.0 * 1024.0)

/* ---------------------------------------------------------------- time */

static inline int64_t bu_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static inline void bu_sleep_ns(int64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000ll), (long)(ns % 1000000000ll)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------- random */

/* wyrand: one multiply per number, good enough to pick keys uniformly. */
typedef struct bu_rng {
    uint64_t s;
} bu_rng;

static inline uint64_t bu_mix64(uint64_t x) { /* splitmix64 finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline void bu_rng_seed(bu_rng *r, uint64_t seed) {
    r->s = bu_mix64(seed + 0x9e3779b97f4a7c15ull);
}

static inline uint64_t bu_rng_next(bu_rng *r) {
    r->s += 0xa0761d6478bd642full;
    __uint128_t m = (__uint128_t)r->s * (r->s ^ 0xe7037ed1a0b428dbull);
    return (uint64_t)(m >> 64) ^ (uint64_t)m;
}

/* Uniform in [0, n) (Lemire's multiply-shift, bias negligible here). */
static inline uint64_t bu_below(uint64_t x, uint64_t n) {
    return (uint64_t)(((__uint128_t)x * n) >> 64);
}

/* ---------------------------------------------------------------- keys */

/* Key number i as 16 bytes: "cachee:b" then i as 8 native-endian bytes. */
static inline void bu_key(uint8_t out[BU_KEY_LEN], uint64_t i) {
    memcpy(out, "cachee:b", 8);
    memcpy(out + 8, &i, 8);
}

/* The first 8 bytes of every benchmark value hold its key number. */
static inline uint64_t bu_load64(const void *p) {
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static inline uint64_t bu_align64(uint64_t x) { return (x + 63) & ~63ull; }

/* Bytes one record takes in the arena (see RECORDS in cachee_l0.h). */
static inline uint64_t bu_record_bytes(uint64_t key_len, uint64_t value_len) {
    uint64_t a = value_len >= 4096 ? 64 : 16; /* the value's alignment */
    uint64_t value_off = (32 + key_len + a - 1) & ~(a - 1);
    return (value_off + value_len + 15) & ~15ull;
}

/* ------------------------------------------------------------- errors */

BU_FN void bu_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
BU_FN void bu_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FATAL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2); /* atexit handlers unlink the regions */
}

/* ------------------------------------------------------ region cleanup */

#define BU_MAX_REGIONS 16
static char bu_regions[BU_MAX_REGIONS][4096];
static volatile sig_atomic_t bu_nregions;
static pid_t bu_owner_pid;

BU_FN void bu_unlink_all(void) {
    for (int i = 0; i < bu_nregions; i++)
        if (bu_regions[i][0]) unlink(bu_regions[i]); /* async-signal-safe */
}

BU_FN void bu_atexit(void) {
    if (getpid() == bu_owner_pid) bu_unlink_all();
}

BU_FN void bu_on_signal(int sig) {
    bu_unlink_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Call once at the start of main: regions tracked with bu_track are unlinked
 * at exit (of this process) and on SIGINT/SIGTERM/SIGHUP/SIGQUIT. */
BU_FN void bu_cleanup_install(void) {
    bu_owner_pid = getpid();
    atexit(bu_atexit);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = bu_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
}

/* A fresh region path in dir (NULL: /dev/shm) and remember it for cleanup
 * (until bu_region_remove). */
BU_FN const char *bu_region_path(const char *dir, const char *tag) {
    static unsigned seq;
    int i;
    for (i = 0; i < bu_nregions; i++)
        if (bu_regions[i][0] == 0) break;
    if (i == BU_MAX_REGIONS) bu_die("too many regions at once");
    char *p = bu_regions[i];
    snprintf(p, sizeof bu_regions[0], "%.3000s/cachee-bench-%.64s-%d-%u",
             dir ? dir : "/dev/shm", tag, (int)getpid(), seq++);
    unlink(p); /* a leftover of a killed run with the same pid */
    if (i == bu_nregions) bu_nregions = bu_nregions + 1;
    return p;
}

/* Unlink a tracked region now (it stays valid for handles still open). */
BU_FN void bu_region_remove(const char *path) {
    unlink(path);
    for (int i = 0; i < bu_nregions; i++)
        if (strcmp(bu_regions[i], path) == 0) bu_regions[i][0] = 0;
}

/* ------------------------------------------------------ start barrier */

/* Children report readiness on one pipe and block on another; closing the
 * write end of the second one releases all of them at the same moment. */
typedef struct bu_gang {
    int ready[2];
    int go[2];
} bu_gang;

BU_FN void bu_gang_init(bu_gang *g) {
    if (pipe(g->ready) != 0 || pipe(g->go) != 0) bu_die("pipe: %s", strerror(errno));
}

/* In a child: announce readiness, then block until the parent releases. */
BU_FN void bu_gang_child_wait(bu_gang *g) {
    close(g->ready[0]);
    close(g->go[1]);
    char c = 1;
    if (write(g->ready[1], &c, 1) != 1) _exit(3);
    close(g->ready[1]);
    ssize_t n;
    while ((n = read(g->go[0], &c, 1)) < 0 && errno == EINTR) {
    }
    close(g->go[0]);
}

/* In the parent: wait until n children are ready (or died: returns the
 * number that reported), then release them all. */
BU_FN int bu_gang_release(bu_gang *g, int n) {
    close(g->ready[1]);
    close(g->go[0]);
    int got = 0;
    char c;
    while (got < n) {
        ssize_t r = read(g->ready[0], &c, 1);
        if (r == 1) got++;
        else if (r < 0 && errno == EINTR) continue;
        else break; /* every child closed its end: some died before ready */
    }
    close(g->ready[0]);
    close(g->go[1]);
    return got;
}

/* Memory shared with children created by fork (results, stop flag). */
BU_FN void *bu_shared_alloc(size_t len) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) bu_die("mmap shared: %s", strerror(errno));
    memset(p, 0, len);
    return p;
}

/* Wait for a child; returns 0 if it exited with 0, else prints why. */
BU_FN int bu_wait_child(pid_t pid, const char *what) {
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    if (WIFSIGNALED(st))
        fprintf(stderr, "ENGINE? %s: child %d killed by signal %d (%s)\n", what,
                (int)pid, WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        fprintf(stderr, "%s: child %d exited with %d\n", what, (int)pid,
                WEXITSTATUS(st));
    return -1;
}

/* --------------------------------------------- files, sysfs, /proc info */

/* Copy a string, truncating to fit cap (cap > 0). */
BU_FN void bu_copy(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* First line of a file, without the newline; "" if unreadable. */
BU_FN const char *bu_read_line(const char *path, char *buf, size_t cap) {
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return buf;
    if (!fgets(buf, (int)cap, f)) buf[0] = 0;
    fclose(f);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
    return buf;
}

/* The selected value of a sysfs choice file ("always [madvise] never"). */
BU_FN const char *bu_sysfs_choice(const char *path, char *buf, size_t cap) {
    char line[512];
    bu_read_line(path, line, sizeof line);
    char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
    if (a && b) {
        *b = 0;
        bu_copy(buf, cap, a + 1);
    } else {
        bu_copy(buf, cap, line[0] ? line : "?");
    }
    return buf;
}

/* A value in kB from /proc/meminfo ("ShmemHugePages"), -1 if absent. */
BU_FN long long bu_meminfo_kb(const char *key) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[256];
    size_t kl = strlen(key);
    long long v = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtoll(line + kl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* The mount (longest prefix in /proc/mounts) holding path: fs type and
 * options.  Returns 0 if found. */
BU_FN int bu_mount_of(const char *path, char *mnt, size_t mcap, char *type,
                       size_t tcap, char *opts, size_t ocap) {
    FILE *f = fopen("/proc/mounts", "r");
    if (!f) return -1;
    char dev[512], dir[1024], ty[64], op[1024];
    size_t best = 0;
    int found = -1;
    while (fscanf(f, "%511s %1023s %63s %1023s %*d %*d", dev, dir, ty, op) == 4) {
        size_t dl = strlen(dir);
        bool prefix = strncmp(path, dir, dl) == 0 &&
                      (path[dl] == '/' || path[dl] == 0 || strcmp(dir, "/") == 0);
        if (prefix && dl >= best) {
            best = dl;
            found = 0;
            snprintf(mnt, mcap, "%s", dir);
            snprintf(type, tcap, "%s", ty);
            snprintf(opts, ocap, "%s", op);
        }
    }
    fclose(f);
    return found;
}

/* The huge= option of a tmpfs mount's options ("never" when absent). */
BU_FN const char *bu_tmpfs_huge_opt(const char *opts, char *buf, size_t cap) {
    const char *p = strstr(opts, "huge=");
    if (!p) {
        snprintf(buf, cap, "never (no huge= option)");
        return buf;
    }
    p += 5;
    size_t n = strcspn(p, ",");
    snprintf(buf, cap, "%.*s", (int)n, p);
    return buf;
}

/* Print the machine: nproc, CPU model, kernel, memory, THP settings. */
BU_FN void bu_print_machine(FILE *out) {
    char model[256] = "?", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    c++;
                    while (*c == ' ' || *c == '\t') c++;
                    snprintf(model, sizeof model, "%s", c);
                    size_t n = strlen(model);
                    if (n && model[n - 1] == '\n') model[n - 1] = 0;
                }
                break;
            }
        }
        fclose(f);
    }
    struct utsname u;
    if (uname(&u) != 0) memset(&u, 0, sizeof u);
    char thp[64], shm[64];
    bu_sysfs_choice("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof thp);
    bu_sysfs_choice("/sys/kernel/mm/transparent_hugepage/shmem_enabled", shm, sizeof shm);
    fprintf(out, "machine: nproc=%ld (configured %ld)  cpu=\"%s\"\n",
            sysconf(_SC_NPROCESSORS_ONLN), sysconf(_SC_NPROCESSORS_CONF), model);
    char load[128];
    bu_read_line("/proc/loadavg", load, sizeof load);
    fprintf(out, "         kernel=%s %s  mem=%.1f GiB  thp.enabled=%s  thp.shmem_enabled=%s\n",
            u.release, u.machine, (double)bu_meminfo_kb("MemTotal") / BU_MiB, thp, shm);
    fprintf(out, "         loadavg at start: %s (other load on the machine skews the numbers)\n",
            load);
}

/* ------------------------------------------- mappings of a region file */

typedef struct bu_maps {
    int nmaps;               /* mappings of the file in this process */
    uint64_t size;           /* bytes mapped */
    uint64_t rss;            /* bytes resident */
    uint64_t pmd_mapped;     /* ShmemPmdMapped + FilePmdMapped */
    uint64_t hugetlb;        /* Shared_Hugetlb + Private_Hugetlb */
    uint64_t kernel_page_kb; /* largest KernelPageSize among them */
    int thp_eligible;        /* mappings with THPeligible: 1 */
} bu_maps;

/* The mappings of the region are recognised by device and inode: the
 * process that created a region maps the unnamed file it built (O_TMPFILE),
 * whose name in /proc/self/maps is not the region's path. */
typedef struct bu_file_id {
    unsigned maj, min;
    unsigned long ino;
} bu_file_id;

BU_FN bu_file_id bu_file_id_of(const char *path) {
    struct stat st;
    bu_file_id id = {0, 0, 0};
    if (stat(path, &st) == 0) {
        id.maj = major(st.st_dev);
        id.min = minor(st.st_dev);
        id.ino = (unsigned long)st.st_ino;
    }
    return id;
}

/* Is a /proc/self/maps (or smaps header) line a mapping of file `id`?
 * Stores the range and whether it is writable. */
BU_FN bool bu_maps_line_is(const char *line, bu_file_id id, uintptr_t *a, uintptr_t *b,
                           bool *w) {
    unsigned long lo, hi, ino;
    unsigned long long off;
    unsigned maj, min;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s %llx %x:%x %lu", &lo, &hi, perms, &off, &maj, &min, &ino) != 7)
        return false;
    *a = lo;
    *b = hi;
    *w = perms[1] == 'w';
    return id.ino != 0 && ino == id.ino && maj == id.maj && min == id.min;
}

/* Prefault every page of every mapping of `path` (the resolved path from
 * cachee_l0_info) in this process: MADV_POPULATE_WRITE for writable
 * mappings, MADV_POPULATE_READ for read-only ones; if the kernel lacks them,
 * read one byte per 4 KiB.  Returns the bytes prefaulted. */
BU_FN uint64_t bu_prefault(const char *path) {
    bu_file_id id = bu_file_id_of(path);
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) bu_die("/proc/self/maps: %s", strerror(errno));
    char line[8192];
    struct {
        uintptr_t a, b;
        bool w;
    } m[16];
    int nm = 0;
    while (fgets(line, sizeof line, f) && nm < 16)
        if (bu_maps_line_is(line, id, &m[nm].a, &m[nm].b, &m[nm].w)) nm++;
    fclose(f);
    uint64_t total = 0;
    for (int i = 0; i < nm; i++) {
        size_t len = m[i].b - m[i].a;
        if (madvise((void *)m[i].a, len, m[i].w ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) != 0) {
            volatile const uint8_t *p = (const uint8_t *)m[i].a;
            uint8_t sink = 0;
            for (size_t o = 0; o < len; o += 4096) sink ^= p[o];
            (void)sink;
        }
        total += len;
    }
    return total;
}

/* Sum the smaps fields of the mappings of `path` in this process. */
BU_FN void bu_maps_of(const char *path, bu_maps *out) {
    memset(out, 0, sizeof *out);
    bu_file_id id = bu_file_id_of(path);
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return;
    char line[8192];
    bool in = false;
    while (fgets(line, sizeof line, f)) {
        uintptr_t a, b;
        bool w;
        char key[64];
        unsigned long long v;
        if (sscanf(line, "%63[^: ]: %llu", key, &v) != 2) { /* a mapping header */
            in = bu_maps_line_is(line, id, &a, &b, &w);
            if (in) {
                out->nmaps++;
                out->size += b - a;
            }
            continue;
        }
        if (!in) continue;
        if (strcmp(key, "Rss") == 0) out->rss += v * 1024;
        else if (strcmp(key, "ShmemPmdMapped") == 0 || strcmp(key, "FilePmdMapped") == 0)
            out->pmd_mapped += v * 1024;
        else if (strcmp(key, "Shared_Hugetlb") == 0 || strcmp(key, "Private_Hugetlb") == 0)
            out->hugetlb += v * 1024;
        else if (strcmp(key, "KernelPageSize") == 0 && v > out->kernel_page_kb)
            out->kernel_page_kb = v;
        else if (strcmp(key, "THPeligible") == 0 && v == 1)
            out->thp_eligible++;
    }
    fclose(f);
}

/* ---------------------------------------------- CPU used by other work */

/* A sample of the machine's busy CPU time, the hypervisor's steal time and
 * the CPU time of this process and its waited-for children.  Between two
 * samples, busy - own is the work of everybody else: a benchmark point that
 * ran while other CPUs were busy is not a clean measurement. */
typedef struct bu_cpu {
    double busy_s, steal_s, own_s, wall_s;
} bu_cpu;

BU_FN void bu_cpu_sample(bu_cpu *c) {
    memset(c, 0, sizeof *c);
    double hz = (double)sysconf(_SC_CLK_TCK);
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long us = 0, ni = 0, sy = 0, id = 0, io = 0, irq = 0, sirq = 0, st = 0;
    if (f) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &us, &ni, &sy, &id, &io,
                   &irq, &sirq, &st) < 4)
            us = ni = sy = irq = sirq = st = 0;
        fclose(f);
    }
    c->busy_s = (double)(us + ni + sy + irq + sirq) / hz;
    c->steal_s = (double)st / hz;
    struct rusage a, b;
    getrusage(RUSAGE_SELF, &a);
    getrusage(RUSAGE_CHILDREN, &b);
    c->own_s = (double)(a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec +
                        b.ru_stime.tv_sec) +
               (double)(a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec +
                        b.ru_stime.tv_usec) / 1e6;
    c->wall_s = (double)bu_now_ns() / 1e9;
}

/* CPUs kept busy by other processes between two samples (average). */
BU_FN double bu_cpu_other(const bu_cpu *a, const bu_cpu *b) {
    double w = b->wall_s - a->wall_s;
    double v = w > 0 ? ((b->busy_s - a->busy_s) - (b->own_s - a->own_s)) / w : 0;
    return v < 0 ? 0 : v;
}

/* CPUs stolen by the hypervisor between two samples (average). */
BU_FN double bu_cpu_steal(const bu_cpu *a, const bu_cpu *b) {
    double w = b->wall_s - a->wall_s;
    return w > 0 ? (b->steal_s - a->steal_s) / w : 0;
}

/* ------------------------------------------------------------ numbers */

BU_FN int bu_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (sorts them). */
BU_FN double bu_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bu_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* "4G", "512M", "64k", "1000" -> bytes (binary units). */
BU_FN uint64_t bu_parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0) bu_die("bad size: %s", s);
    switch (*end) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
    case 't': case 'T': v *= 1024.0 * 1024 * 1024 * 1024; break;
    case 0: break;
    default: bu_die("bad size: %s", s);
    }
    return (uint64_t)v;
}

/* "1M" keys etc.: decimal-ish counts accept k/M suffixes as powers of 10. */
BU_FN uint64_t bu_parse_count(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0) bu_die("bad count: %s", s);
    if (*end == 'k' || *end == 'K') v *= 1e3;
    else if (*end == 'm' || *end == 'M') v *= 1e6;
    else if (*end != 0) bu_die("bad count: %s", s);
    return (uint64_t)v;
}

/* "1.5G" style byte counts for tables. */
BU_FN const char *bu_fmt_bytes(uint64_t b, char *buf, size_t cap) {
    if (b >= (1ull << 30)) snprintf(buf, cap, "%.1f GiB", (double)b / BU_GiB);
    else if (b >= (1ull << 20)) snprintf(buf, cap, "%.0f MiB", (double)b / BU_MiB);
    else snprintf(buf, cap, "%.0f KiB", (double)b / 1024);
    return buf;
}

/* Open (creating exclusively) a region, or die with the engine's message. */
BU_FN cachee_l0 *bu_create(const char *path, uint64_t size, uint64_t max_entries,
                            uint32_t extra_flags) {
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    o.size = size;
    o.flags = CACHEE_L0_CREATE | CACHEE_L0_EXCLUSIVE | extra_flags;
    o.max_entries = max_entries;
    cachee_l0 *h = NULL;
    int rc = cachee_l0_open(path, &o, &h);
    if (rc != 0) bu_die("cachee_l0_open(%s, size %llu): %s", path,
                        (unsigned long long)size, cachee_l0_strerror(rc));
    return h;
}

/* Open an existing region (in a child). Returns NULL and prints on error. */
BU_FN cachee_l0 *bu_attach(const char *path) {
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    cachee_l0 *h = NULL;
    int rc = cachee_l0_open(path, &o, &h);
    if (rc != 0) {
        fprintf(stderr, "cachee_l0_open(%s): %s\n", path, cachee_l0_strerror(rc));
        return NULL;
    }
    return h;
}

#endif /* CACHEE_BENCHUTIL_H */
