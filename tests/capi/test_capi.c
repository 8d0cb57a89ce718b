/*
 * test_capi.c -- the C ABI of libcachee.so (include/cachee.h), exercised
 * from C.  Each test runs in a forked child (tests/c/l0test.h) that loads
 * the library with dlopen, the way the Python extension does: a process
 * must load the Go runtime after fork, never before.  The L0 engine is
 * compiled in (hidden symbols, like the extension) to create regions and to
 * look at L0 directly.
 *
 *   build/test_capi [TEST]   (LIBCACHEE=path/to/libcachee.so, default
 *                             build/libcachee.so)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cachee.h"
#include "l0test.h"

/* The ABI, resolved with dlsym. */
static struct {
    int (*abi_version)(void);
    int (*open)(const char *, size_t, cachee_t *);
    int (*close)(cachee_t);
    int (*get)(cachee_t, const void *, size_t, uint32_t, cachee_value *);
    void (*value_free)(cachee_value *);
    int (*set)(cachee_t, const void *, size_t, const void *, size_t,
               const void *, size_t, int64_t, uint32_t);
    int (*del)(cachee_t, const void *, size_t);
    int (*stats)(cachee_t, char *, size_t, size_t *);
    int (*last_error)(cachee_t, char *, size_t, size_t *);
    int64_t (*open_handles)(void);
    int64_t (*goroutines)(void);
} api;

static void load(void) {
    const char *path = getenv("LIBCACHEE");
    if (path == NULL) path = "build/libcachee.so";
    void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (so == NULL) {
        fprintf(stderr, "  dlopen %s: %s\n", path, dlerror());
        exit(1);
    }
#define SYM(f, name)                                                  \
    do {                                                              \
        *(void **)&api.f = dlsym(so, name);                           \
        if (api.f == NULL) {                                          \
            fprintf(stderr, "  missing symbol %s\n", name);           \
            exit(1);                                                  \
        }                                                             \
    } while (0)
    SYM(abi_version, "cachee_abi_version");
    SYM(open, "cachee_open");
    SYM(close, "cachee_close");
    SYM(get, "cachee_get");
    SYM(value_free, "cachee_value_free");
    SYM(set, "cachee_set");
    SYM(del, "cachee_delete");
    SYM(stats, "cachee_stats");
    SYM(last_error, "cachee_last_error");
    SYM(open_handles, "cachee_open_handles");
    SYM(goroutines, "cachee_goroutines");
}

/* Create a region of `mb` MiB named after the test; returns its name. */
static const char *make_region(const char *tag, unsigned mb) {
    const char *name = l0test_region(tag);
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    o.size = (uint64_t)mb << 20;
    o.flags = CACHEE_L0_CREATE;
    cachee_l0 *h;
    OK(cachee_l0_open(name, &o, &h));
    OK(cachee_l0_close(h));
    return name;
}

static cachee_t open_cache(const char *name, long l1_bytes) {
    char cfg[512];
    int n = snprintf(cfg, sizeof cfg, "{\"path\": \"%s\", \"l1_bytes\": %ld}",
                     name, l1_bytes);
    cachee_t h = 0;
    CHECK_RC(api.open(cfg, (size_t)n, &h), CACHEE_OK);
    CHECK(h != 0);
    return h;
}

static void last_error(cachee_t h, char *buf, size_t cap) {
    size_t n = 0;
    CHECK_RC(api.last_error(h, buf, cap, &n), CACHEE_OK);
}

TEST(version_and_round_trip) {
    load();
    CHECK(api.abi_version() == CACHEE_ABI_VERSION);
    const char *name = make_region("rt", 8);
    cachee_t h = open_cache(name, 1 << 20);
    CHECK(api.open_handles() == 1);
    CHECK_RC(api.set(h, "k", 1, "hello", 5, "m1", 2, 0, 0), CACHEE_OK);
    cachee_value v;
    CHECK_RC(api.get(h, "k", 1, 0, &v), CACHEE_OK);
    CHECK(v.len == 5 && memcmp(v.data, "hello", 5) == 0);
    CHECK(v.meta_len == 2 && memcmp(v.meta, "m1", 2) == 0);
    CHECK(v.tier == CACHEE_TIER_L0 && v.expires_ns == 0);
    api.value_free(&v);
    CHECK(v.data == NULL && v.meta == NULL && v.len == 0);
    api.value_free(NULL);
    /* an empty value and a TTL */
    CHECK_RC(api.set(h, "e", 1, NULL, 0, NULL, 0, 60000000000ll, 0), CACHEE_OK);
    CHECK_RC(api.get(h, "e", 1, 0, &v), CACHEE_OK);
    CHECK(v.len == 0 && v.data == NULL && v.expires_ns > 0);
    api.value_free(&v);
    /* IF_ABSENT */
    CHECK_RC(api.set(h, "k", 1, "x", 1, NULL, 0, 0, CACHEE_SET_IF_ABSENT), CACHEE_EXISTS);
    /* delete, then a miss */
    CHECK_RC(api.del(h, "k", 1), CACHEE_OK);
    CHECK_RC(api.del(h, "k", 1), CACHEE_NOTFOUND);
    CHECK_RC(api.get(h, "k", 1, 0, &v), CACHEE_NOTFOUND);
    CHECK(v.data == NULL && v.len == 0);
    CHECK_RC(api.close(h), CACHEE_OK);
    CHECK(api.open_handles() == 0);
    cachee_l0_unlink(name);
}

TEST(value_sizes_one_block) {
    /* Values and metadata around the sizes where cachee_get switches from
     * its scratch to a block made by Go; each comes back whole, in one block
     * that cachee_value_free releases (data first, meta right after it). */
    load();
    const char *name = make_region("sizes", 16);
    cachee_t h = open_cache(name, 0);
    static const size_t dl[] = {0, 1, 64, 4095, 4096, 4097, 100000};
    static const size_t ml[] = {0, 1, 511, 512, 513, 4096};
    unsigned char *val = malloc(100000), *meta = malloc(4096);
    CHECK(val != NULL && meta != NULL);
    for (size_t i = 0; i < 100000; i++) val[i] = (unsigned char)(i * 7 + 1);
    for (size_t i = 0; i < 4096; i++) meta[i] = (unsigned char)(i * 13 + 5);
    for (size_t a = 0; a < sizeof dl / sizeof dl[0]; a++) {
        for (size_t b = 0; b < sizeof ml / sizeof ml[0]; b++) {
            char key[32];
            int kn = snprintf(key, sizeof key, "s-%zu-%zu", dl[a], ml[b]);
            CHECK_RC(api.set(h, key, (size_t)kn, dl[a] ? val : NULL, dl[a],
                             ml[b] ? meta : NULL, ml[b], 0, 0),
                     CACHEE_OK);
            cachee_value v;
            CHECK_RC(api.get(h, key, (size_t)kn, 0, &v), CACHEE_OK);
            CHECK(v.len == dl[a] && v.meta_len == ml[b] && v.tier == CACHEE_TIER_L0);
            CHECK((v.data == NULL) == (dl[a] == 0) && (v.meta == NULL) == (ml[b] == 0));
            if (dl[a]) {
                CHECK(memcmp(v.data, val, dl[a]) == 0);
                CHECK((uintptr_t)v.data % 16 == 0);
            }
            if (ml[b]) CHECK(memcmp(v.meta, meta, ml[b]) == 0);
            if (dl[a] && ml[b]) CHECK((unsigned char *)v.meta == (unsigned char *)v.data + v.len);
            api.value_free(&v);
            CHECK(v.data == NULL && v.meta == NULL && v.len == 0 && v.meta_len == 0);
        }
    }
    free(val);
    free(meta);
    CHECK_RC(api.close(h), CACHEE_OK);
    cachee_l0_unlink(name);
}

TEST(errors_documented) {
    load();
    const char *name = make_region("err", 8);
    char msg[512];
    cachee_t h = 0;
    cachee_value v;
    size_t n;
    /* cachee_open: NULL, bad JSON, unknown field, wrong type, missing region */
    CHECK_RC(api.open(NULL, 0, &h), CACHEE_E_INVALID);
    CHECK_RC(api.open("{}", 2, NULL), CACHEE_E_INVALID);
    CHECK_RC(api.open("{", 1, &h), CACHEE_E_CONFIG);
    last_error(0, msg, sizeof msg);
    CHECK(strstr(msg, "config") != NULL);
    const char *unk = "{\"path\":\"x\",\"l1_byte\":1}";
    CHECK_RC(api.open(unk, strlen(unk), &h), CACHEE_E_CONFIG);
    const char *typ = "{\"path\":\"x\",\"l1_bytes\":\"big\"}";
    CHECK_RC(api.open(typ, strlen(typ), &h), CACHEE_E_CONFIG);
    const char *neg = "{\"path\":\"x\",\"l1_bytes\":-1}";
    CHECK_RC(api.open(neg, strlen(neg), &h), CACHEE_E_CONFIG);
    const char *pro = "{\"path\":\"x\",\"promote\":\"sometimes\"}";
    CHECK_RC(api.open(pro, strlen(pro), &h), CACHEE_E_CONFIG);
    CHECK_RC(api.open("{}", 2, &h), CACHEE_E_CONFIG);
    const char *missing = "{\"path\":\"cachee-test-no-such-region-xyz\"}";
    CHECK_RC(api.open(missing, strlen(missing), &h), CACHEE_E_L0);
    last_error(0, msg, sizeof msg);
    CHECK(strstr(msg, "-31023") != NULL); /* CACHEE_L0_E_NO_REGION */
    CHECK(h == 0);

    h = open_cache(name, 0);
    /* bad handles */
    CHECK_RC(api.get(0, "k", 1, 0, &v), CACHEE_E_HANDLE);
    CHECK_RC(api.get(h + 1000, "k", 1, 0, &v), CACHEE_E_HANDLE);
    CHECK_RC(api.set(h + 1000, "k", 1, "v", 1, NULL, 0, 0, 0), CACHEE_E_HANDLE);
    CHECK_RC(api.del(h + 1000, "k", 1), CACHEE_E_HANDLE);
    CHECK_RC(api.stats(h + 1000, NULL, 0, &n), CACHEE_E_HANDLE);
    CHECK_RC(api.last_error(h + 1000, msg, sizeof msg, &n), CACHEE_E_HANDLE);
    CHECK_RC(api.close(h + 1000), CACHEE_E_HANDLE);
    /* bad keys, values, flags */
    CHECK_RC(api.get(h, NULL, 1, 0, &v), CACHEE_E_INVALID);
    CHECK_RC(api.get(h, "k", 0, 0, &v), CACHEE_E_INVALID);
    CHECK_RC(api.get(h, "k", CACHEE_KEY_MAX + 1, 0, &v), CACHEE_E_INVALID);
    CHECK_RC(api.get(h, "k", 1, 0x80, &v), CACHEE_E_INVALID);
    CHECK_RC(api.get(h, "k", 1, 0, NULL), CACHEE_E_INVALID);
    last_error(h, msg, sizeof msg);
    CHECK(strstr(msg, "cachee_get") != NULL);
    CHECK_RC(api.set(h, NULL, 1, "v", 1, NULL, 0, 0, 0), CACHEE_E_INVALID);
    CHECK_RC(api.set(h, "k", 1, NULL, 1, NULL, 0, 0, 0), CACHEE_E_INVALID);
    CHECK_RC(api.set(h, "k", 1, "v", 1, NULL, 3, 0, 0), CACHEE_E_INVALID);
    CHECK_RC(api.set(h, "k", 1, "v", 1, NULL, 0, -1, 0), CACHEE_E_INVALID);
    CHECK_RC(api.set(h, "k", 1, "v", 1, NULL, 0, 0, 0x40), CACHEE_E_INVALID);
    CHECK_RC(api.set(h, "k", 1, "v", 1, NULL, 0, 0,
                     CACHEE_SET_IF_ABSENT | CACHEE_SET_SKIP_L0), CACHEE_E_INVALID);
    CHECK_RC(api.del(h, NULL, 0), CACHEE_E_INVALID);
    /* L0 refuses: metadata too large, value too large */
    static char big[8192];
    CHECK_RC(api.set(h, "k", 1, "v", 1, big, sizeof big, 0, 0), CACHEE_E_L0);
    last_error(h, msg, sizeof msg);
    CHECK(strstr(msg, "-31005") != NULL);
    size_t huge = 8u << 20;
    char *hv = calloc(1, huge);
    CHECK_RC(api.set(h, "k", 1, hv, huge, NULL, 0, 0, 0), CACHEE_E_L0);
    free(hv);
    /* stats: too small, then enough */
    CHECK_RC(api.stats(h, NULL, 0, &n), CACHEE_E_TOO_SMALL);
    CHECK(n > 0);
    CHECK_RC(api.stats(h, NULL, 5, &n), CACHEE_E_INVALID);
    CHECK_RC(api.stats(h, msg, 0, NULL), CACHEE_E_INVALID);
    char *sb = malloc(n);
    size_t n2 = 0;
    CHECK_RC(api.stats(h, sb, n, &n2), CACHEE_OK);
    CHECK(n2 == n && sb[0] == '{' && memmem(sb, n, "\"tiers\"", 7) != NULL);
    free(sb);
    /* last_error: truncation, NULL buffer with cap, length only */
    CHECK_RC(api.last_error(h, NULL, 4, &n), CACHEE_E_INVALID);
    CHECK_RC(api.last_error(h, NULL, 0, &n), CACHEE_OK);
    CHECK(n > 4);
    char small[4];
    CHECK_RC(api.last_error(h, small, sizeof small, NULL), CACHEE_OK);
    CHECK(strlen(small) == 3);
    /* closed handle */
    CHECK_RC(api.close(h), CACHEE_OK);
    CHECK_RC(api.close(h), CACHEE_E_HANDLE);
    CHECK_RC(api.get(h, "k", 1, 0, &v), CACHEE_E_HANDLE);
    /* handles are not reused */
    cachee_t h2 = open_cache(name, 0);
    CHECK(h2 != h);
    CHECK_RC(api.close(h2), CACHEE_OK);
    cachee_l0_unlink(name);
}

TEST(forked_child_refused) {
    load();
    const char *name = make_region("fork", 8);
    cachee_t h = open_cache(name, 0);
    pid_t pid = fork();
    if (pid == 0) {
        cachee_value v;
        int a = api.get(h, "k", 1, 0, &v);
        int b = api.set(h, "k", 1, "v", 1, NULL, 0, 0, 0);
        cachee_t h2;
        int c = api.open("{}", 2, &h2);
        _exit(a == CACHEE_E_FORKED && b == CACHEE_E_FORKED &&
                      c == CACHEE_E_FORKED && api.open_handles() == CACHEE_E_FORKED
                  ? 0
                  : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_RC(api.close(h), CACHEE_OK);
    cachee_l0_unlink(name);
}

TEST(cloned_child_refused) {
    /* A child made by a raw clone() runs no atfork handler: the check must
     * still refuse (the MADV_WIPEONFORK page, or getpid()). */
    load();
    const char *name = make_region("clone", 8);
    cachee_t h = open_cache(name, 0);
    pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, NULL);
    if (pid == 0) {
        cachee_value v;
        int a = api.get(h, "k", 1, 0, &v);
        int b = api.set(h, "k", 1, "v", 1, NULL, 0, 0, 0);
        syscall(SYS_exit_group, a == CACHEE_E_FORKED && b == CACHEE_E_FORKED &&
                                        api.open_handles() == CACHEE_E_FORKED
                                    ? 0
                                    : 1);
    }
    CHECK(pid > 0);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_RC(api.open_handles(), 1);
    CHECK_RC(api.close(h), CACHEE_OK);
    cachee_l0_unlink(name);
}

TEST(l1_serves_after_l0_delete_elsewhere_never) {
    /* A value in L1 must not survive a delete made directly in L0 by another
     * handle (another process would do the same). */
    load();
    const char *name = make_region("gen", 8);
    cachee_t h = open_cache(name, 4 << 20);
    CHECK_RC(api.set(h, "k", 1, "v1", 2, NULL, 0, 0, 0), CACHEE_OK);
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    cachee_l0 *l0;
    OK(cachee_l0_open(name, &o, &l0));
    OK(cachee_l0_delete(l0, "k", 1));
    cachee_value v;
    CHECK_RC(api.get(h, "k", 1, 0, &v), CACHEE_NOTFOUND);
    CHECK_RC(api.get(h, "k", 1, CACHEE_GET_SKIP_L0, &v), CACHEE_NOTFOUND);
    OK(cachee_l0_close(l0));
    CHECK_RC(api.close(h), CACHEE_OK);
    cachee_l0_unlink(name);
}

struct worker {
    cachee_t h;
    int id;
    int failures;
};

static void *work(void *arg) {
    struct worker *w = arg;
    char key[32], val[64];
    for (int i = 0; i < 2000; i++) {
        int k = (i * 7 + w->id) % 200;
        int kn = snprintf(key, sizeof key, "key-%d", k);
        int vn = snprintf(val, sizeof val, "value-of-%d", k);
        if (i % 3 == 0) {
            if (api.set(w->h, key, (size_t)kn, val, (size_t)vn, NULL, 0, 0, 0) != 0)
                w->failures++;
        } else if (i % 17 == 0) {
            int rc = api.del(w->h, key, (size_t)kn);
            if (rc != CACHEE_OK && rc != CACHEE_NOTFOUND) w->failures++;
        } else {
            cachee_value v;
            int rc = api.get(w->h, key, (size_t)kn, 0, &v);
            if (rc == CACHEE_OK) {
                if (v.len != (size_t)vn || memcmp(v.data, val, (size_t)vn) != 0)
                    w->failures++;
                api.value_free(&v);
            } else if (rc != CACHEE_NOTFOUND) {
                w->failures++;
            }
        }
    }
    return NULL;
}

TEST(threads_then_no_leak) {
    load();
    const char *name = make_region("thr", 16);
    int64_t g0 = api.goroutines();
    cachee_t h = open_cache(name, 1 << 20);
    enum { N = 8 };
    pthread_t t[N];
    struct worker w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct worker){h, i, 0};
        CHECK(pthread_create(&t[i], NULL, work, &w[i]) == 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].failures == 0);
    }
    CHECK_RC(api.close(h), CACHEE_OK);
    CHECK(api.open_handles() == 0);
    /* goroutines return to what they were before the first open (they are
     * given up to 30 s, a hang guard: a loaded machine is slow to run them
     * to their end) */
    int64_t g = 0;
    for (int i = 0; i < 3000; i++) {
        g = api.goroutines();
        if (g <= g0) break;
        usleep(10000);
    }
    if (g > g0) fprintf(stderr, "  goroutines %ld, were %ld\n", (long)g, (long)g0);
    CHECK(g <= g0);
    cachee_l0_unlink(name);
}

int main(int argc, char **argv) { return l0test_main(argc, argv); }
