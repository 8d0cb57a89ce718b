/*
 * latency.c -- lookup latency of the L0 engine over a multi-GB region, with
 * and without huge pages.
 *
 * For each page kind a region of --size bytes (default 4 GiB) is created,
 * filled to ~85% of its arena with --value byte values (default 256 B),
 * every page of its mappings is prefaulted (MADV_POPULATE_*), and then one
 * process times random cachee_l0_get calls (copy-out) over all the keys:
 *   dependent    the next key is computed from the value just read, so
 *                lookups cannot overlap: this is the latency of one get
 *   independent  keys from a random stream: the CPU may overlap consecutive
 *                lookups; this is the cost per get in a tight loop
 * Each is repeated --reps times (default 5); the table shows the median and
 * the spread (min..max) in ns per get.
 *
 * Page kinds:
 *   4k        the region on tmpfs (--dir, default /dev/shm), no flag
 *   thp       the same with CACHEE_L0_HUGEPAGES (MADV_HUGEPAGE) for every
 *             --thp-dir (default /dev/shm).  Whether a tmpfs file gets
 *             transparent huge pages depends on the huge= option of its
 *             mount and on /sys/kernel/mm/transparent_hugepage/shmem_enabled
 *             ("force" / "deny" override the mount); both are printed
 *   hugetlbfs the region on a hugetlbfs mount (--hugetlb-dir, or the first
 *             mounted hugetlbfs with enough free huge pages)
 * The program never changes system settings; bench/run.sh does that when
 * asked (BENCH_HUGEPAGES=1).  Whether huge pages were used is read from
 * /proc/self/smaps (ShmemPmdMapped/FilePmdMapped, *_Hugetlb) for the
 * mappings of the region in this process.
 */
#include "benchutil.h"

#include <getopt.h>

typedef struct cfg {
    uint64_t size, value, gets;
    double fill;
    int reps;
    const char *dir;
    const char *thp_dirs[8];
    int nthp;
    const char *hugetlb_dir;
    bool no_hugetlb;
} cfg;

static int g_bugs;

typedef struct result {
    bool ran;
    char skip[256];
    uint64_t region, keys;
    double fill_rate;
    double dep_ns[32], ind_ns[32];
    bu_maps maps;
    long long shmem_huge_kb; /* ShmemHugePages after fill, minus before */
    uint64_t errors;
    double other; /* CPUs busy with other work during the timed gets */
} result;

static double time_gets(cachee_l0 *h, uint64_t n, uint64_t m, uint8_t *buf,
                        uint64_t cap, bool dependent, uint64_t seed, uint64_t *errors) {
    uint8_t key[BU_KEY_LEN];
    bu_rng rng;
    bu_rng_seed(&rng, seed);
    uint64_t k = bu_below(bu_rng_next(&rng), n), bad = 0;
    int64_t t0 = bu_now_ns();
    for (uint64_t i = 0; i < m; i++) {
        bu_key(key, k);
        int rc = cachee_l0_get(h, key, BU_KEY_LEN, buf, cap, NULL);
        if (BU_UNLIKELY(rc != 0 || bu_load64(buf) != k)) {
            if (bad++ == 0)
                fprintf(stderr, "ENGINE? get of key %llu: %s%s\n", (unsigned long long)k,
                        cachee_l0_strerror(rc), rc == 0 ? " but the value is another key's" : "");
        }
        if (dependent) /* the next key depends on the bytes just read */
            k = bu_below(bu_mix64(bu_load64(buf) + i), n);
        else
            k = bu_below(bu_rng_next(&rng), n);
    }
    int64_t t1 = bu_now_ns();
    *errors += bad;
    return (double)(t1 - t0) / (double)m;
}

static void run_case(const cfg *c, const char *dir, uint32_t flags, const char *tag,
                     result *r) {
    memset(r, 0, sizeof *r);
    uint64_t rec = bu_record_bytes(BU_KEY_LEN, c->value);
    double per_key = (double)rec + 1.3 * 16 * 4 / 3;
    uint64_t nkeys = (uint64_t)((double)c->size * c->fill / per_key);
    uint64_t max_entries = nkeys + nkeys * 3 / 10 + 64;
    const char *path = bu_region_path(dir, tag);
    long long huge0 = bu_meminfo_kb("ShmemHugePages");
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    o.size = c->size;
    o.flags = CACHEE_L0_CREATE | CACHEE_L0_EXCLUSIVE | flags;
    o.max_entries = max_entries;
    cachee_l0 *h = NULL;
    int rc = cachee_l0_open(path, &o, &h);
    if (rc != 0) {
        snprintf(r->skip, sizeof r->skip, "cannot create %.150s: %.70s", path, cachee_l0_strerror(rc));
        bu_region_remove(path);
        return;
    }
    cachee_l0_info info;
    cachee_l0_info_get(h, &info);
    r->region = info.region_size;
    if (nkeys > (uint64_t)((double)info.arena_size * 0.9 / (double)rec))
        nkeys = (uint64_t)((double)info.arena_size * 0.9 / (double)rec);
    r->keys = nkeys;

    /* fill */
    uint8_t *v = calloc(1, bu_align64(c->value + 64));
    if (!v) bu_die("calloc");
    uint8_t key[BU_KEY_LEN];
    uint64_t fails = 0;
    int64_t t0 = bu_now_ns();
    for (uint64_t k = 0; k < nkeys; k++) {
        memcpy(v, &k, 8);
        bu_key(key, k);
        rc = cachee_l0_set(h, key, BU_KEY_LEN, v, c->value, NULL, 0, 0, 0);
        if (rc != 0 && fails++ == 0)
            fprintf(stderr, "fill: set of key %llu: %s\n", (unsigned long long)k,
                    cachee_l0_strerror(rc));
    }
    r->fill_rate = (double)nkeys / ((double)(bu_now_ns() - t0) / 1e9);
    cachee_l0_stats st;
    cachee_l0_stats_get(h, &st);
    if (fails || st.evictions || st.entries != nkeys) {
        fprintf(stderr, "%s: fill left %llu entries of %llu (%llu failed sets, %llu evictions)\n",
                tag, (unsigned long long)st.entries, (unsigned long long)nkeys,
                (unsigned long long)fails, (unsigned long long)st.evictions);
        g_bugs++;
    }

    /* prefault every page of both mappings, then look at what we got */
    bu_prefault(info.path);
    bu_maps_of(info.path, &r->maps);
    long long huge1 = bu_meminfo_kb("ShmemHugePages");
    r->shmem_huge_kb = huge0 >= 0 && huge1 >= 0 ? huge1 - huge0 : -1;

    uint64_t cap = c->value + 64;
    uint8_t *buf = aligned_alloc(64, bu_align64(cap));
    if (!buf) bu_die("aligned_alloc");
    /* warm-up: caches, TLB, branch predictors */
    time_gets(h, nkeys, c->gets / 4 + 1, buf, cap, false, 99, &r->errors);
    bu_cpu cpu0, cpu1;
    bu_cpu_sample(&cpu0);
    for (int i = 0; i < c->reps; i++) {
        r->dep_ns[i] = time_gets(h, nkeys, c->gets, buf, cap, true, 1000 + (uint64_t)i, &r->errors);
        r->ind_ns[i] = time_gets(h, nkeys, c->gets, buf, cap, false, 2000 + (uint64_t)i, &r->errors);
    }
    bu_cpu_sample(&cpu1);
    r->other = bu_cpu_other(&cpu0, &cpu1) + bu_cpu_steal(&cpu0, &cpu1);
    if (r->errors) g_bugs++;
    free(buf);
    free(v);
    char msg[512];
    if ((rc = cachee_l0_check(h, msg, sizeof msg)) != 0) {
        fprintf(stderr, "ENGINE? %s: cachee_l0_check: %s: %s\n", tag, cachee_l0_strerror(rc), msg);
        g_bugs++;
    }
    cachee_l0_close(h);
    bu_region_remove(path);
    r->ran = true;
}

static void describe_dir(const char *dir, char *out, size_t cap) {
    char mnt[1024], type[64], opts[1024], huge[128];
    if (bu_mount_of(dir, mnt, sizeof mnt, type, sizeof type, opts, sizeof opts) != 0) {
        snprintf(out, cap, "%s (mount unknown)", dir);
        return;
    }
    if (strcmp(type, "tmpfs") == 0)
        snprintf(out, cap, "%.400s: tmpfs mounted on %.400s, huge=%.100s", dir, mnt,
                 bu_tmpfs_huge_opt(opts, huge, sizeof huge));
    else
        snprintf(out, cap, "%.400s: %.60s mounted on %.400s (%.400s)", dir, type, mnt, opts);
}

/* A mounted hugetlbfs whose page size has enough free pages, or NULL. */
static const char *find_hugetlbfs(uint64_t size, char *buf, size_t cap, char *why, size_t wcap) {
    FILE *f = fopen("/proc/mounts", "r");
    long long free_pages = bu_meminfo_kb("HugePages_Free");
    long long page_kb = bu_meminfo_kb("Hugepagesize");
    char dev[512], dir[1024], ty[64], op[1024];
    const char *found = NULL;
    int mounts = 0;
    while (f && fscanf(f, "%511s %1023s %63s %1023s %*d %*d", dev, dir, ty, op) == 4) {
        if (strcmp(ty, "hugetlbfs") != 0) continue;
        mounts++;
        /* only mounts of the default huge page size are checked here */
        if (strstr(op, "pagesize=") && !strstr(op, "pagesize=2M") && page_kb == 2048) continue;
        if (free_pages * page_kb * 1024 >= (long long)size && access(dir, W_OK) == 0) {
            snprintf(buf, cap, "%s", dir);
            found = buf;
            break;
        }
    }
    if (f) fclose(f);
    if (!found)
        snprintf(why, wcap, "%d hugetlbfs mount(s), HugePages_Free=%lld x %lld kB, need %llu MiB",
                 mounts, free_pages, page_kb, (unsigned long long)(size >> 20));
    return found;
}

static void print_row(const cfg *c, const char *kind, const result *r) {
    char rs[32];
    if (!r->ran) {
        printf("%-16s skipped: %s\n", kind, r->skip);
        return;
    }
    double d[32], in[32];
    memcpy(d, r->dep_ns, sizeof d);
    memcpy(in, r->ind_ns, sizeof in);
    double dm = bu_median(d, c->reps), im = bu_median(in, c->reps);
    const bu_maps *m = &r->maps;
    uint64_t huge = m->pmd_mapped + m->hugetlb;
    char used[128];
    uint64_t resident = m->rss + m->hugetlb; /* hugetlb pages are not in Rss */
    if (huge)
        snprintf(used, sizeof used, "yes: %.0f%% of %s resident mapped in %s pages",
                 100.0 * (double)huge / (double)(resident ? resident : 1),
                 bu_fmt_bytes(resident, rs, sizeof rs),
                 m->hugetlb ? "hugetlb" : "2 MiB THP");
    else
        snprintf(used, sizeof used, "no: %s resident in %llu kB pages, THPeligible %d/%d",
                 bu_fmt_bytes(m->rss, rs, sizeof rs), (unsigned long long)m->kernel_page_kb,
                 m->thp_eligible, m->nmaps);
    printf("%-16s %9s %9llu %8.2f %9.1f %7.1f-%-7.1f %9.1f %7.1f-%-7.1f %5.2f  %s\n", kind,
           bu_fmt_bytes(r->region, rs, sizeof rs), (unsigned long long)r->keys, r->fill_rate / 1e6,
           dm, d[0], d[c->reps - 1], im, in[0], in[c->reps - 1], r->other, used);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: latency [options]\n"
            "  -s, --size SZ         region size (default 4G)\n"
            "  -v, --value B         value bytes (default 256)\n"
            "  -f, --fill F          fraction of the region filled with records (default 0.85)\n"
            "  -n, --gets N          gets per repetition (default 2M)\n"
            "  -r, --reps N          repetitions (default 5)\n"
            "  -d, --dir DIR         tmpfs directory of the 4 KiB page run (default /dev/shm)\n"
            "      --thp-dir DIR     tmpfs directory of a CACHEE_L0_HUGEPAGES run (repeatable;\n"
            "                        default /dev/shm; 'none' for no such run)\n"
            "      --hugetlb-dir DIR hugetlbfs directory (default: first mounted hugetlbfs with\n"
            "                        enough free pages; 'none' to skip)\n"
            "      --quick           --size 512M --gets 300k (explicit flags still win)\n");
}

int main(int argc, char **argv) {
    bu_cleanup_install();
    cfg c = {.size = 4ull << 30, .value = 256, .gets = 2000000, .fill = 0.85, .reps = 5,
             .dir = "/dev/shm"};
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--quick") == 0) {
            c.size = 512ull << 20;
            c.gets = 300000;
        }
    enum { O_THP = 256, O_HUGETLB, O_QUICK };
    static const struct option lo[] = {
        {"size", 1, 0, 's'}, {"value", 1, 0, 'v'}, {"fill", 1, 0, 'f'},
        {"gets", 1, 0, 'n'}, {"reps", 1, 0, 'r'}, {"dir", 1, 0, 'd'},
        {"thp-dir", 1, 0, O_THP}, {"hugetlb-dir", 1, 0, O_HUGETLB},
        {"quick", 0, 0, O_QUICK}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int o;
    bool thp_none = false;
    while ((o = getopt_long(argc, argv, "s:v:f:n:r:d:h", lo, NULL)) != -1) {
        switch (o) {
        case 's': c.size = bu_parse_size(optarg); break;
        case 'v': c.value = bu_parse_size(optarg); break;
        case 'f': c.fill = atof(optarg); break;
        case 'n': c.gets = bu_parse_count(optarg); break;
        case 'r': c.reps = atoi(optarg); break;
        case 'd': c.dir = optarg; break;
        case O_THP:
            if (strcmp(optarg, "none") == 0) thp_none = true;
            else if (c.nthp < 8) c.thp_dirs[c.nthp++] = optarg;
            break;
        case O_HUGETLB:
            if (strcmp(optarg, "none") == 0) c.no_hugetlb = true;
            else c.hugetlb_dir = optarg;
            break;
        case O_QUICK: break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (c.reps < 1 || c.reps > 32 || c.value < 8 || c.fill <= 0 || c.fill > 0.95 || c.gets < 1)
        bu_die("bad arguments (see --help)");
    if (c.nthp == 0 && !thp_none) c.thp_dirs[c.nthp++] = "/dev/shm";

    printf("cachee L0 lookup latency benchmark\n");
    bu_print_machine(stdout);
    char shm[64], buf[2048];
    bu_sysfs_choice("/sys/kernel/mm/transparent_hugepage/shmem_enabled", shm, sizeof shm);
    printf("config: region %llu MiB, %llu B values, %.0f%% filled, %llu gets x %d repetitions,"
           " copy-out cachee_l0_get, 1 process\n",
           (unsigned long long)(c.size >> 20), (unsigned long long)c.value, c.fill * 100,
           (unsigned long long)c.gets, c.reps);
    printf("thp: shmem_enabled=%s (applies to tmpfs files only as deny/force; otherwise the\n"
           "     mount's huge= option decides: never/always/within_size/advise)\n", shm);
    describe_dir(c.dir, buf, sizeof buf);
    printf("4k dir:  %s\n", buf);
    for (int i = 0; i < c.nthp; i++) {
        describe_dir(c.thp_dirs[i], buf, sizeof buf);
        printf("thp dir: %s\n", buf);
    }
    char hbuf[1024], why[256] = "";
    const char *hdir = c.no_hugetlb ? NULL
                       : c.hugetlb_dir ? c.hugetlb_dir
                                       : find_hugetlbfs(c.size, hbuf, sizeof hbuf, why, sizeof why);
    if (hdir) {
        describe_dir(hdir, buf, sizeof buf);
        printf("hugetlb: %s; HugePages_Free=%lld x %lld kB\n", buf,
               bu_meminfo_kb("HugePages_Free"), bu_meminfo_kb("Hugepagesize"));
    }
    fflush(stdout);

    int ncases = 0;
    const char *kinds[12];
    static result res[12];
    run_case(&c, c.dir, 0, "lat4k", &res[ncases]);
    kinds[ncases++] = "4k tmpfs";
    for (int i = 0; i < c.nthp; i++) {
        static char names[8][40];
        snprintf(names[i], sizeof names[i], "thp tmpfs #%d", i + 1);
        run_case(&c, c.thp_dirs[i], CACHEE_L0_HUGEPAGES, "latthp", &res[ncases]);
        kinds[ncases++] = c.nthp > 1 ? names[i] : "thp tmpfs";
    }
    if (hdir) {
        run_case(&c, hdir, 0, "lathtlb", &res[ncases]);
    } else {
        memset(&res[ncases], 0, sizeof res[ncases]);
        snprintf(res[ncases].skip, sizeof res[ncases].skip, "%s",
                 c.no_hugetlb ? "--hugetlb-dir none" : why);
    }
    kinds[ncases++] = "hugetlbfs";

    printf("\n%-16s %9s %9s %8s %9s %-15s %9s %-15s %5s  %s\n", "page kind", "region", "keys",
           "fill M/s", "dep p50", "dep min-max", "ind p50", "ind min-max", "other",
           "huge pages in use (this process's mappings)");
    for (int i = 0; i < ncases; i++) print_row(&c, kinds[i], &res[i]);
    printf("(ns per get; dep = dependent chain, the latency of one get; ind = independent keys;"
           " p50 = median of %d repetitions;\n other = CPUs busy with other processes or stolen"
           " by the hypervisor while timing; fill = sets/s while filling, page faults included)\n",
           c.reps);
    for (int i = 0; i < ncases; i++)
        if (res[i].ran && res[i].shmem_huge_kb > 0)
            printf("%s: ShmemHugePages grew by %lld MiB during the run\n", kinds[i],
                   res[i].shmem_huge_kb / 1024);
    if (g_bugs) {
        printf("\nlatency: %d problem(s) that may be engine bugs; see stderr\n", g_bugs);
        return 1;
    }
    return 0;
}
