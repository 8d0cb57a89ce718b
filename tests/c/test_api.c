/*
 * test_api.c -- semantics of the L0 API in one process: round trips, reads
 * of every kind, pins, IF_ABSENT, delete, contains, count, TTL, large
 * extents, eviction, batches, statistics, reopening, info, the hash.
 * cachee_l0_check must pass after every scenario.
 */
#define _GNU_SOURCE
#include "l0test.h"
#include "l0util.h"

#include <setjmp.h>

#define KiB (1ull << 10)
#define MiB (1ull << 20)

static int set_str(cachee_l0 *h, const char *k, const char *v, const char *m) {
    return cachee_l0_set(h, k, strlen(k), v, strlen(v), m, m ? strlen(m) : 0, 0, 0);
}

/* The value of key k must be exactly v (copying read). */
static void expect_str(cachee_l0 *h, const char *k, const char *v) {
    char buf[256];
    cachee_l0_item it;
    memset(&it, 0, sizeof it);
    int rc = cachee_l0_get(h, k, strlen(k), buf, sizeof buf, &it);
    if (rc != 0) {
        fprintf(stderr, "  get(%s) = %d (%s)\n", k, rc, cachee_l0_strerror(rc));
        exit(1);
    }
    CHECK(it.value_len == strlen(v));
    CHECK(memcmp(buf, v, strlen(v)) == 0);
}

/* ------------------------------------------------------------------ */

TEST(roundtrip_value_and_meta) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "rt", 4 * MiB, 16 * KiB);

    OK(set_str(h, "alpha", "hello world", "m1"));
    char buf[64], meta[16];
    cachee_l0_item it;
    memset(&it, 0, sizeof it);
    it.meta_buf = meta;
    it.meta_cap = sizeof meta;
    OK(cachee_l0_get(h, "alpha", 5, buf, sizeof buf, &it));
    CHECK(it.value_len == 11 && memcmp(buf, "hello world", 11) == 0);
    CHECK(it.meta_len == 2 && memcmp(meta, "m1", 2) == 0);
    CHECK(it.expires_ns == 0);
    uint64_t v1 = it.version;

    /* Overwrite: new value, no metadata, higher version. */
    OK(set_str(h, "alpha", "second value", NULL));
    memset(&it, 0, sizeof it);
    it.meta_buf = meta;
    it.meta_cap = sizeof meta;
    OK(cachee_l0_get(h, "alpha", 5, buf, sizeof buf, &it));
    CHECK(it.value_len == 12 && memcmp(buf, "second value", 12) == 0);
    CHECK(it.meta_len == 0);
    CHECK(it.version > v1);

    /* item may be NULL. */
    memset(buf, 0, sizeof buf);
    OK(cachee_l0_get(h, "alpha", 5, buf, sizeof buf, NULL));
    CHECK(memcmp(buf, "second value", 12) == 0);

    /* Empty value (NULL allowed with length 0). */
    OK(cachee_l0_set(h, "empty", 5, NULL, 0, NULL, 0, 0, 0));
    memset(&it, 0xff, sizeof it);
    it.meta_buf = NULL;
    it.meta_cap = 0;
    OK(cachee_l0_get(h, "empty", 5, NULL, 0, &it));
    CHECK(it.value_len == 0 && it.meta_len == 0);
    cachee_l0_view v;
    OK(cachee_l0_get_pinned(h, "empty", 5, &v));
    CHECK(v.len == 0 && v.meta_len == 0);
    OK(cachee_l0_release(h, &v));

    /* Binary keys: NUL bytes are part of the key. */
    OK(cachee_l0_set(h, "a\0b", 3, "AB", 2, NULL, 0, 0, 0));
    OK(cachee_l0_set(h, "a\0c", 3, "AC", 2, NULL, 0, 0, 0));
    OK(cachee_l0_get(h, "a\0b", 3, buf, sizeof buf, NULL));
    CHECK(memcmp(buf, "AB", 2) == 0);
    OK(cachee_l0_get(h, "a\0c", 3, buf, sizeof buf, NULL));
    CHECK(memcmp(buf, "AC", 2) == 0);
    CHECK_RC(cachee_l0_get(h, "a", 1, buf, sizeof buf, NULL), CACHEE_L0_NOTFOUND);
    CHECK_RC(cachee_l0_get(h, "a\0", 2, buf, sizeof buf, NULL), CACHEE_L0_NOTFOUND);

    /* One-byte key, longest key, longest metadata. */
    OK(cachee_l0_set(h, "x", 1, "1", 1, NULL, 0, 0, 0));
    expect_str(h, "x", "1");
    char *bigkey = malloc(CACHEE_L0_KEY_MAX);
    CHECK(bigkey != NULL);
    for (size_t i = 0; i < CACHEE_L0_KEY_MAX; i++) bigkey[i] = (char)(i * 7 + 1);
    char *bigmeta = malloc(CACHEE_L0_META_MAX);
    CHECK(bigmeta != NULL);
    for (size_t i = 0; i < CACHEE_L0_META_MAX; i++) bigmeta[i] = (char)(i * 3);
    OK(cachee_l0_set(h, bigkey, CACHEE_L0_KEY_MAX, "big", 3, bigmeta,
                     CACHEE_L0_META_MAX, 0, 0));
    char *mbuf = malloc(CACHEE_L0_META_MAX);
    CHECK(mbuf != NULL);
    memset(&it, 0, sizeof it);
    it.meta_buf = mbuf;
    it.meta_cap = CACHEE_L0_META_MAX;
    OK(cachee_l0_get(h, bigkey, CACHEE_L0_KEY_MAX, buf, sizeof buf, &it));
    CHECK(it.value_len == 3 && memcmp(buf, "big", 3) == 0);
    CHECK(it.meta_len == CACHEE_L0_META_MAX);
    CHECK(memcmp(mbuf, bigmeta, CACHEE_L0_META_MAX) == 0);
    /* A key that differs in its last byte is another key. */
    bigkey[CACHEE_L0_KEY_MAX - 1] ^= 1;
    CHECK_RC(cachee_l0_get(h, bigkey, CACHEE_L0_KEY_MAX, buf, sizeof buf, NULL),
             CACHEE_L0_NOTFOUND);
    /* The view reports the metadata too. */
    bigkey[CACHEE_L0_KEY_MAX - 1] ^= 1;
    OK(cachee_l0_get_pinned(h, bigkey, CACHEE_L0_KEY_MAX, &v));
    CHECK(v.meta_len == CACHEE_L0_META_MAX);
    CHECK(memcmp(v.meta, bigmeta, CACHEE_L0_META_MAX) == 0);
    CHECK(v.len == 3 && memcmp(v.data, "big", 3) == 0);
    OK(cachee_l0_release(h, &v));
    free(bigkey);
    free(bigmeta);
    free(mbuf);

    CHECK_RC(cachee_l0_get(h, "missing", 7, buf, sizeof buf, NULL), CACHEE_L0_NOTFOUND);
    U_FINISH(h, name);
}

TEST(version_increases_with_every_write) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "ver", 2 * MiB, 16 * KiB);
    uint64_t last = 0;
    for (int i = 0; i < 50; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        OK(set_str(h, "k", v, NULL));
        cachee_l0_item it;
        memset(&it, 0, sizeof it);
        char buf[16];
        OK(cachee_l0_get(h, "k", 1, buf, sizeof buf, &it));
        CHECK(it.version > last);
        CHECK(it.value_len == strlen(v) && memcmp(buf, v, it.value_len) == 0);
        last = it.version;
        cachee_l0_view view;
        OK(cachee_l0_read_begin(h, "k", 1, &view));
        CHECK(view.version == it.version);
    }
    U_FINISH(h, name);
}

TEST(get_buffer_too_small_reports_lengths) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "small", 2 * MiB, 16 * KiB);
    char val[100], meta[50];
    for (int i = 0; i < 100; i++) val[i] = (char)i;
    for (int i = 0; i < 50; i++) meta[i] = (char)(200 - i);
    OK(cachee_l0_set(h, "k", 1, val, sizeof val, meta, sizeof meta, 0, 0));

    char buf[128], mbuf[64];
    cachee_l0_item it;
    memset(&it, 0, sizeof it);
    CHECK_RC(cachee_l0_get(h, "k", 1, buf, 10, &it), CACHEE_L0_E_BUFFER_TOO_SMALL);
    CHECK(it.value_len == 100);
    CHECK(it.meta_len == 50);
    CHECK_RC(cachee_l0_get(h, "k", 1, buf, 99, NULL), CACHEE_L0_E_BUFFER_TOO_SMALL);
    CHECK_RC(cachee_l0_get(h, "k", 1, NULL, 0, &it), CACHEE_L0_E_BUFFER_TOO_SMALL);
    CHECK(it.value_len == 100);

    /* Metadata buffer too small. */
    memset(&it, 0, sizeof it);
    it.meta_buf = mbuf;
    it.meta_cap = 49;
    CHECK_RC(cachee_l0_get(h, "k", 1, buf, sizeof buf, &it),
             CACHEE_L0_E_BUFFER_TOO_SMALL);
    CHECK(it.value_len == 100 && it.meta_len == 50);

    /* Exact sizes fit. */
    memset(&it, 0, sizeof it);
    it.meta_buf = mbuf;
    it.meta_cap = 50;
    OK(cachee_l0_get(h, "k", 1, buf, 100, &it));
    CHECK(memcmp(buf, val, 100) == 0 && memcmp(mbuf, meta, 50) == 0);
    /* No metadata buffer: metadata is not wanted, the value still comes. */
    memset(&it, 0, sizeof it);
    OK(cachee_l0_get(h, "k", 1, buf, 100, &it));
    CHECK(it.meta_len == 50);
    U_FINISH(h, name);
}

TEST(read_begin_validate) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "rb", 2 * MiB, 16 * KiB);
    cachee_l0_info info = u_info(h);
    OK(u_set_val_ex(h, 1, 1, 500, 0, 0));
    cachee_l0_view v;
    char k[32];
    size_t kl = u_key(k, sizeof k, 1);
    OK(cachee_l0_read_begin(h, k, kl, &v));
    CHECK(v.len == 500);
    uint8_t copy[500];
    memcpy(copy, v.data, v.len);
    OK(cachee_l0_read_validate(h, &v));
    CHECK(u_value_equals(copy, 500, 1, 1) == 0);
    /* An optimistic view is not pinned. */
    CHECK_RC(cachee_l0_release(h, &v), CACHEE_L0_E_BAD_PIN);
    CHECK(u_stats(h).pins == 0);

    /* After an overwrite the old bytes are not reused yet: if validate
     * says 0, the copy is the old value. */
    OK(u_set_val_ex(h, 1, 2, 500, 0, 0));
    memcpy(copy, v.data, v.len);
    int rc = cachee_l0_read_validate(h, &v);
    CHECK(rc == 0 || rc == CACHEE_L0_E_RETRY);
    if (rc == 0) CHECK(u_value_equals(copy, 500, 1, 1) == 0);

    /* Write 3x the arena from this process: the segment of the old view is
     * reclaimed, so validation must fail now. */
    uint64_t total = 0;
    for (uint32_t id = 100; total < 3 * info.arena_size; id++) {
        OK(u_set_val_ex(h, id, 0, 1000, 0, 0));
        total += 1000;
    }
    CHECK_RC(cachee_l0_read_validate(h, &v), CACHEE_L0_E_RETRY);

    /* A fresh optimistic read of the current value validates. */
    OK(u_set_val_ex(h, 1, 3, 500, 0, 0));
    OK(cachee_l0_read_begin(h, k, kl, &v));
    memcpy(copy, v.data, v.len);
    OK(cachee_l0_read_validate(h, &v));
    CHECK(u_value_equals(copy, 500, 1, 3) == 0);
    CHECK_RC(cachee_l0_read_begin(h, "nope", 4, &v), CACHEE_L0_NOTFOUND);
    U_FINISH(h, name);
}

static sigjmp_buf segv_jmp;
static void on_segv(int sig) {
    (void)sig;
    siglongjmp(segv_jmp, 1);
}

TEST(get_pinned_and_release) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "pin", 2 * MiB, 16 * KiB);
    OK(u_set_val_ex(h, 7, 1, 1000, 0, 0));
    char k[32];
    size_t kl = u_key(k, sizeof k, 7);
    cachee_l0_view v;
    OK(cachee_l0_get_pinned(h, k, kl, &v));
    CHECK(v.len == 1000);
    CHECK(u_value_equals(v.data, v.len, 7, 1) == 0);
    cachee_l0_stats s = u_stats(h);
    CHECK(s.pins == 1);
    CHECK(s.pinned_bytes == 1000);

    /* Two pins of the same value are two pins. */
    cachee_l0_view v2;
    OK(cachee_l0_get_pinned(h, k, kl, &v2));
    CHECK(v2.data == v.data);
    s = u_stats(h);
    CHECK(s.pins == 2 && s.pinned_bytes == 2000);

    /* The view is read-only: a write faults and changes nothing. */
    pid_t pid = u_fork();
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_segv;
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        if (sigsetjmp(segv_jmp, 1) == 0) {
            ((volatile uint8_t *)v.data)[0] ^= 0xff;
            _exit(3); /* the write went through */
        }
        _exit(0); /* faulted, as it must */
    }
    CHECK_CHILD(pid, 10);
    CHECK(u_value_equals(v.data, v.len, 7, 1) == 0);

    OK(cachee_l0_release(h, &v));
    CHECK(v.pin_ == 0);
    CHECK_RC(cachee_l0_release(h, &v), CACHEE_L0_E_BAD_PIN);
    s = u_stats(h);
    CHECK(s.pins == 1 && s.pinned_bytes == 1000);
    OK(cachee_l0_release(h, &v2));
    CHECK_RC(cachee_l0_release(h, &v2), CACHEE_L0_E_BAD_PIN);
    s = u_stats(h);
    CHECK(s.pins == 0 && s.pinned_bytes == 0);

    /* A zeroed view was never pinned. */
    cachee_l0_view z;
    memset(&z, 0, sizeof z);
    CHECK_RC(cachee_l0_release(h, &z), CACHEE_L0_E_BAD_PIN);
    CHECK_RC(cachee_l0_get_pinned(h, "nope", 4, &z), CACHEE_L0_NOTFOUND);
    U_FINISH(h, name);
}

TEST(pin_view_after_read_begin) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "pinview", 2 * MiB, 16 * KiB);
    cachee_l0_info info = u_info(h);
    OK(u_set_val_ex(h, 1, 1, 800, 0, 0));
    cachee_l0_view v;
    OK(cachee_l0_read_begin(h, "k:1", 3, &v));
    OK(cachee_l0_pin_view(h, &v));
    CHECK(v.pin_ != 0);
    cachee_l0_stats s = u_stats(h);
    CHECK(s.pins == 1 && s.pinned_bytes == 800);
    CHECK_RC(cachee_l0_pin_view(h, &v), CACHEE_L0_E_INVAL); /* already pinned */
    /* pinned: survives an overwrite and 3x the arena of writes */
    OK(u_set_val_ex(h, 1, 2, 800, 0, 0));
    for (uint32_t id = 100; (uint64_t)(id - 100) * 1000 < 3 * info.arena_size; id++)
        OK(u_set_val_ex(h, id, 1, 1000, 0, 0));
    CHECK(u_value_equals(v.data, v.len, 1, 1) == 0);
    OK(cachee_l0_release(h, &v));
    CHECK_RC(cachee_l0_release(h, &v), CACHEE_L0_E_BAD_PIN);
    /* a view whose version was reclaimed since read_begin cannot be pinned */
    OK(u_set_val_ex(h, 2, 1, 800, 0, 0));
    OK(cachee_l0_read_begin(h, "k:2", 3, &v));
    for (uint32_t id = 10000; (uint64_t)(id - 10000) * 1000 < 3 * info.arena_size; id++)
        OK(u_set_val_ex(h, id, 1, 1000, 0, 0));
    CHECK_RC(cachee_l0_pin_view(h, &v), CACHEE_L0_E_RETRY);
    CHECK(v.pin_ == 0);
    CHECK(u_stats(h).pins == 0);
    /* argument errors */
    cachee_l0_view z;
    memset(&z, 0, sizeof z);
    CHECK_RC(cachee_l0_pin_view(NULL, &v), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_pin_view(h, NULL), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_pin_view(h, &z), CACHEE_L0_E_INVAL);
    z.data = &z;
    z.loc = UINT64_MAX / 64;
    CHECK_RC(cachee_l0_pin_view(h, &z), CACHEE_L0_E_INVAL);
    CHECK(u_stats(h).pins == 0);
    U_FINISH(h, name);
}

/* An expired entry counts as absent for IF_ABSENT, in a region of its own.
 * Returns 0 if the machine was too slow to see the entry before its TTL of
 * ttl_ms ran out (the caller tries a longer one), 1 once it checked all. */
static int expired_counts_as_absent(uint64_t ttl_ms) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "ifabsttl", 2 * MiB, 16 * KiB);
    double t0 = l0test_now();
    OK(cachee_l0_set(h, "t", 1, "old", 3, NULL, 0, ttl_ms * 1000000ull, 0));
    int rc = cachee_l0_set(h, "t", 1, "x", 1, NULL, 0, 0, CACHEE_L0_IF_ABSENT);
    int judged = l0test_now() - t0 < (double)ttl_ms / 1000.0;
    if (judged) {
        CHECK_RC(rc, CACHEE_L0_EXISTS);
        u_sleep_ms(2.0 * (double)ttl_ms);
        OK(cachee_l0_set(h, "t", 1, "new", 3, NULL, 0, 0, CACHEE_L0_IF_ABSENT));
        expect_str(h, "t", "new");
        cachee_l0_stats s = u_stats(h);
        CHECK(s.sets == 2);
        CHECK(s.expirations == 1);
        CHECK(cachee_l0_count(h) == 1);
        CHECK_REGION(h);
    }
    U_CLOSE_UNLINK(h, name);
    return judged;
}

TEST(if_absent) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "ifabs", 2 * MiB, 16 * KiB);
    OK(cachee_l0_set(h, "k", 1, "one", 3, NULL, 0, 0, CACHEE_L0_IF_ABSENT));
    CHECK_RC(cachee_l0_set(h, "k", 1, "two", 3, NULL, 0, 0, CACHEE_L0_IF_ABSENT),
             CACHEE_L0_EXISTS);
    expect_str(h, "k", "one");
    cachee_l0_stats s = u_stats(h);
    CHECK(s.sets == 1);
    CHECK(cachee_l0_count(h) == 1);

    OK(cachee_l0_delete(h, "k", 1));
    OK(cachee_l0_set(h, "k", 1, "three", 5, NULL, 0, 0, CACHEE_L0_IF_ABSENT));
    expect_str(h, "k", "three");
    s = u_stats(h);
    CHECK(s.sets == 2);
    CHECK(cachee_l0_count(h) == 1);
    U_FINISH(h, name);

    /* A 30 ms TTL first; a machine too slow for it tries 120 ms, ... */
    uint64_t ttl = 30;
    while (!expired_counts_as_absent(ttl)) {
        CHECK(ttl < 60000);
        ttl *= 4;
    }
}

TEST(delete_contains_count) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "del", 4 * MiB, 16 * KiB);
    CHECK(cachee_l0_count(h) == 0);
    for (uint32_t i = 0; i < 100; i++) OK(u_set_val_ex(h, i, 0, 64 + i, 0, 0));
    CHECK(cachee_l0_count(h) == 100);
    cachee_l0_stats s0 = u_stats(h);
    for (uint32_t i = 0; i < 100; i++) {
        char k[32];
        size_t kl = u_key(k, sizeof k, i);
        CHECK_RC(cachee_l0_contains(h, k, kl), 1);
    }
    CHECK_RC(cachee_l0_contains(h, "k:100", 5), 0);
    /* contains counts neither a hit nor a miss. */
    cachee_l0_stats s1 = u_stats(h);
    CHECK(s1.hits == s0.hits && s1.misses == s0.misses);

    cachee_l0_view pinned;
    OK(cachee_l0_get_pinned(h, "k:5", 3, &pinned));
    for (uint32_t i = 0; i < 30; i++) {
        char k[32];
        size_t kl = u_key(k, sizeof k, i);
        OK(cachee_l0_delete(h, k, kl));
        CHECK_RC(cachee_l0_delete(h, k, kl), CACHEE_L0_NOTFOUND);
        CHECK_RC(cachee_l0_contains(h, k, kl), 0);
        uint8_t buf[256];
        CHECK_RC(cachee_l0_get(h, k, kl, buf, sizeof buf, NULL), CACHEE_L0_NOTFOUND);
    }
    /* A view of a deleted value stays valid. */
    CHECK(u_value_equals(pinned.data, pinned.len, 5, 0) == 0);
    OK(cachee_l0_release(h, &pinned));
    CHECK(cachee_l0_count(h) == 70);
    for (uint32_t i = 30; i < 100; i++) {
        char k[32];
        size_t kl = u_key(k, sizeof k, i);
        uint8_t buf[256];
        cachee_l0_item it;
        memset(&it, 0, sizeof it);
        OK(cachee_l0_get(h, k, kl, buf, sizeof buf, &it));
        CHECK(u_value_equals(buf, it.value_len, i, 0) == 0);
    }
    cachee_l0_stats s2 = u_stats(h);
    CHECK(s2.deletes == 30);
    CHECK(s2.entries == 70);
    CHECK_RC(cachee_l0_delete(h, "never", 5), CACHEE_L0_NOTFOUND);
    CHECK(u_stats(h).deletes == 30);
    /* Deleted keys can be stored again. */
    OK(u_set_val_ex(h, 3, 9, 100, 0, 0));
    CHECK(cachee_l0_count(h) == 71);
    U_FINISH(h, name);
}

static int64_t realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* TTL semantics with a TTL of ttl_ms.  Returns 0 if the machine was too
 * slow to make the reads that must come before the expiry in time (the
 * caller tries a longer TTL), 1 once every check ran. */
static int ttl_expiry_with(uint64_t ttl_ms) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "ttl", 2 * MiB, 16 * KiB);
    const int64_t ttl = (int64_t)ttl_ms * 1000000ll;
    int64_t before = realtime_ns();
    OK(cachee_l0_set(h, "t", 1, "short", 5, NULL, 0, (uint64_t)ttl, 0));
    int64_t after = realtime_ns();
    OK(cachee_l0_set(h, "forever", 7, "long", 4, NULL, 0, 0, 0));
    OK(cachee_l0_set(h, "year", 4, "y", 1, NULL, 0, 365ull * 86400 * 1000000000ull, 0));
    cachee_l0_item it;
    memset(&it, 0, sizeof it);
    char buf[16];
    int rc_get = cachee_l0_get(h, "t", 1, buf, sizeof buf, &it);
    int rc_contains = cachee_l0_contains(h, "t", 1);
    cachee_l0_view pinned;
    int rc_pinned = cachee_l0_get_pinned(h, "t", 1, &pinned);
    if (realtime_ns() >= before + ttl) { /* expired under the reads: too slow */
        if (rc_pinned == 0) OK(cachee_l0_release(h, &pinned));
        U_CLOSE_UNLINK(h, name);
        return 0;
    }
    OK(rc_get);
    CHECK(it.expires_ns >= before + ttl && it.expires_ns <= after + ttl);
    CHECK_RC(rc_contains, 1);
    OK(rc_pinned);

    u_sleep_ms(1.6 * (double)ttl_ms);
    CHECK_RC(cachee_l0_get(h, "t", 1, buf, sizeof buf, NULL), CACHEE_L0_NOTFOUND);
    CHECK_RC(cachee_l0_contains(h, "t", 1), 0);
    cachee_l0_view v;
    CHECK_RC(cachee_l0_get_pinned(h, "t", 1, &v), CACHEE_L0_NOTFOUND);
    CHECK_RC(cachee_l0_read_begin(h, "t", 1, &v), CACHEE_L0_NOTFOUND);
    /* A view taken before expiry keeps its bytes. */
    CHECK(pinned.len == 5 && memcmp(pinned.data, "short", 5) == 0);
    OK(cachee_l0_release(h, &pinned));
    expect_str(h, "forever", "long");
    expect_str(h, "year", "y");
    /* Expired but not purged: still counted as an entry. */
    CHECK(cachee_l0_count(h) == 3);
    CHECK(u_stats(h).expirations == 0);

    /* Writing the key purges the expired entry: one expiration. */
    OK(cachee_l0_set(h, "t", 1, "again", 5, NULL, 0, 0, 0));
    expect_str(h, "t", "again");
    cachee_l0_stats s = u_stats(h);
    CHECK(s.expirations == 1);
    CHECK(cachee_l0_count(h) == 3);

    /* Deleting an expired key: not found, one more expiration. */
    OK(cachee_l0_set(h, "t2", 2, "x", 1, NULL, 0, 20 * 1000000ull, 0));
    u_sleep_ms(40);
    CHECK_RC(cachee_l0_delete(h, "t2", 2), CACHEE_L0_NOTFOUND);
    s = u_stats(h);
    CHECK(s.expirations == 2);
    CHECK(s.deletes == 0);
    CHECK(cachee_l0_count(h) == 3);
    U_FINISH(h, name);
    return 1;
}

TEST(ttl_expiry) {
    uint64_t ttl = 50; /* ms; a machine too slow for it tries 200, 800, ... */
    while (!ttl_expiry_with(ttl)) {
        CHECK(ttl < 60000);
        ttl *= 4;
    }
}

TEST(large_values_extents) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "large", 8 * MiB, 64 * KiB);
    cachee_l0_info info = u_info(h);
    uint64_t seg = info.segment_size;
    CHECK(info.value_max > seg);
    printf("  segments=%u segment_size=%u value_max=%llu\n", info.segments,
           info.segment_size, (unsigned long long)info.value_max);
    size_t sizes[] = {seg - 200,     seg + 1,  2 * seg + 17, 3 * seg,
                      info.value_max / 2, info.value_max - 1, info.value_max};
    size_t n = sizeof sizes / sizeof sizes[0];
    uint8_t *buf = malloc(info.value_max + 64);
    CHECK(buf != NULL);
    for (size_t i = 0; i < n; i++) {
        uint32_t id = 1000 + (uint32_t)i;
        OK(u_set_val_ex(h, id, 1, sizes[i], 0, 0));
        char k[32];
        size_t kl = u_key(k, sizeof k, id);
        cachee_l0_item it;
        memset(&it, 0, sizeof it);
        OK(cachee_l0_get(h, k, kl, buf, info.value_max + 64, &it));
        CHECK(it.value_len == sizes[i]);
        CHECK(u_value_equals(buf, sizes[i], id, 1) == 0);
        cachee_l0_view v;
        OK(cachee_l0_get_pinned(h, k, kl, &v));
        CHECK(v.len == sizes[i] && u_value_equals(v.data, v.len, id, 1) == 0);
        CHECK(u_stats(h).pinned_bytes == sizes[i]);
        OK(cachee_l0_release(h, &v));
        OK(cachee_l0_read_begin(h, k, kl, &v));
        memcpy(buf, v.data, v.len);
        OK(cachee_l0_read_validate(h, &v));
        CHECK(u_value_equals(buf, sizes[i], id, 1) == 0);
        CHECK_REGION(h);
    }
    /* One byte more than value_max is refused and changes nothing. */
    cachee_l0_stats s0 = u_stats(h);
    int64_t c0 = cachee_l0_count(h);
    uint8_t *big = calloc(1, info.value_max + 1);
    CHECK(big != NULL);
    CHECK_RC(cachee_l0_set(h, "toolarge", 8, big, info.value_max + 1, NULL, 0, 0, 0),
             CACHEE_L0_E_VALUE_TOO_LARGE);
    CHECK_RC(cachee_l0_set(h, "k:1006", 6, big, info.value_max + 1, NULL, 0, 0, 0),
             CACHEE_L0_E_VALUE_TOO_LARGE);
    free(big);
    cachee_l0_stats s1 = u_stats(h);
    CHECK(s1.sets == s0.sets && cachee_l0_count(h) == c0);
    {
        cachee_l0_item it;
        int rc = u_get_val(h, 1006, buf, info.value_max + 64, &it);
        CHECK(rc == 0 || rc == CACHEE_L0_NOTFOUND); /* value_max may be evicted */
        if (rc == 0) CHECK(u_value_equals(buf, it.value_len, 1006, 1) == 0);
    }

    /* Churn of extents and small values: extents get evicted and reused;
     * whatever is found is exact. */
    u_rng r = u_rng_seed(42);
    for (int round = 0; round < 60; round++) {
        uint32_t id = (uint32_t)u_below(&r, 20);
        size_t len = u_below(&r, 4) == 0 ? 64 + u_below(&r, 2000)
                                         : seg + u_below(&r, info.value_max / 3);
        int rc = u_set_val_ex(h, id, (uint64_t)round, len, 0, 0);
        if (rc != 0) {
            /* E_FULL is only allowed when space is pinned or being written */
            cachee_l0_stats s = u_stats(h);
            fprintf(stderr, "  round %d: set of %zu bytes = %d (%s) with pins=%llu "
                    "open=%llu free=%llu small=%llu main=%llu limbo=%llu segments\n",
                    round, len, rc, cachee_l0_strerror(rc), (unsigned long long)s.pins,
                    (unsigned long long)s.segments_open,
                    (unsigned long long)s.segments_free,
                    (unsigned long long)s.segments_small,
                    (unsigned long long)s.segments_main,
                    (unsigned long long)s.segments_limbo);
        }
        OK(rc);
    }
    uint64_t hits = 0;
    for (uint32_t id = 0; id < 20; id++) {
        cachee_l0_item it;
        int rc = u_get_val(h, id, buf, info.value_max + 64, &it);
        CHECK(rc == 0 || rc == CACHEE_L0_NOTFOUND);
        if (rc == 0) {
            CHECK(u_verify_value(buf, it.value_len, id, NULL) == 0);
            hits++;
        }
    }
    CHECK(hits > 0);
    cachee_l0_stats s = u_stats(h);
    CHECK(s.evictions > 0);
    CHECK(s.pins == 0);
    free(buf);
    U_FINISH(h, name);
}

TEST(eviction_many_keys_exact_values) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "evict", 4 * MiB, 16 * KiB, 65536, 0);
    cachee_l0_info info = u_info(h);
    uint32_t n = 0;
    uint64_t total = 0;
    u_rng r = u_rng_seed(7);
    uint16_t *lens = malloc(40000 * sizeof *lens);
    CHECK(lens != NULL);
    while (total < 4 * info.arena_size && n < 40000) {
        size_t len = 64 + u_below(&r, 1200);
        lens[n] = (uint16_t)len;
        OK(u_set_val_ex(h, n, 5, len, 0, 0));
        total += len;
        n++;
    }
    cachee_l0_stats s0 = u_stats(h);
    uint64_t hits = 0, misses = 0;
    uint8_t buf[2048];
    for (uint32_t i = 0; i < n; i++) {
        cachee_l0_item it;
        int rc = u_get_val(h, i, buf, sizeof buf, &it);
        if (rc == CACHEE_L0_NOTFOUND) {
            misses++;
            continue;
        }
        OK(rc);
        CHECK(it.value_len == lens[i]);
        CHECK(u_value_equals(buf, it.value_len, i, 5) == 0);
        hits++;
    }
    cachee_l0_stats s1 = u_stats(h);
    printf("  %u keys written (%llu bytes, arena %llu): %llu hits, %llu misses, "
           "%llu evictions\n",
           n, (unsigned long long)total, (unsigned long long)info.arena_size,
           (unsigned long long)hits, (unsigned long long)misses,
           (unsigned long long)s1.evictions);
    CHECK(hits > 0 && misses > 0);
    CHECK(s1.evictions > 0);
    CHECK(s1.hits - s0.hits == hits);
    CHECK(s1.misses - s0.misses == misses);
    /* The most recent writes are still there. */
    for (uint32_t i = n - 20; i < n; i++) {
        char k[32];
        size_t kl = u_key(k, sizeof k, i);
        CHECK_RC(cachee_l0_contains(h, k, kl), 1);
    }
    free(lens);
    U_FINISH(h, name);
}

TEST(eviction_keeps_hot_keys) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "hot", 4 * MiB, 16 * KiB, 65536, 0);
    cachee_l0_info info = u_info(h);
    const uint32_t nhot = 200;
    for (uint32_t i = 0; i < nhot; i++) OK(u_set_val_ex(h, i, 1, 500, 0, 0));
    uint8_t buf[1024];
    uint64_t hot_hits = 0, hot_reads = 0, cold_hits = 0, cold_reads = 0;
    uint32_t next = 100000;
    uint64_t written = 0;
    u_rng r = u_rng_seed(3);
    while (written < 4 * info.arena_size) {
        /* a burst of one-time writes, then a pass over the hot set */
        for (int j = 0; j < 500; j++) {
            OK(u_set_val_ex(h, next++, 1, 500, 0, 0));
            written += 500;
        }
        for (uint32_t i = 0; i < nhot; i++) {
            char k[32];
            size_t kl = u_key(k, sizeof k, i);
            int rc = cachee_l0_get(h, k, kl, buf, sizeof buf, NULL);
            hot_reads++;
            if (rc == 0) {
                hot_hits++;
                CHECK(u_value_equals(buf, 500, i, 1) == 0);
            } else {
                CHECK_RC(rc, CACHEE_L0_NOTFOUND);
                OK(u_set_val_ex(h, i, 1, 500, 0, 0)); /* a miss reloads it */
            }
        }
        for (int j = 0; j < 200; j++) {
            uint32_t id = 100000 + (uint32_t)u_below(&r, next - 100000);
            char k[32];
            size_t kl = u_key(k, sizeof k, id);
            int rc = cachee_l0_get(h, k, kl, buf, sizeof buf, NULL);
            cold_reads++;
            if (rc == 0) cold_hits++;
            else CHECK_RC(rc, CACHEE_L0_NOTFOUND);
        }
    }
    double hot = (double)hot_hits / (double)hot_reads;
    double cold = (double)cold_hits / (double)cold_reads;
    cachee_l0_stats s = u_stats(h);
    printf("  hot hit ratio %.3f, cold hit ratio %.3f, evictions %llu, "
           "reinsertions %llu\n",
           hot, cold, (unsigned long long)s.evictions,
           (unsigned long long)s.reinsertions);
    CHECK(s.evictions > 0);
    CHECK(s.reinsertions > 0);
    CHECK(hot >= 0.9);
    CHECK(hot > cold);
    U_FINISH(h, name);
}

TEST(get_many) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "many", 4 * MiB, 16 * KiB);
    for (uint32_t i = 0; i < 50; i++) OK(u_set_val_ex(h, i, 2, 100 + i * 10, 0, 0));
    enum { N = 64 };
    char kb[N][32];
    const void *keys[N];
    size_t lens[N];
    cachee_l0_view views[N];
    int results[N];
    for (uint32_t i = 0; i < N; i++) {
        uint32_t id = i < 50 ? i : 1000 + i; /* 50 present, then absent */
        lens[i] = u_key(kb[i], sizeof kb[i], id);
        keys[i] = kb[i];
    }
    lens[60] = 0;        /* empty key */
    keys[61] = NULL;     /* NULL key */
    lens[61] = 4;
    lens[62] = CACHEE_L0_KEY_MAX + 1; /* too long (never read) */
    keys[63] = kb[7];    /* a duplicate of a present key */
    lens[63] = strlen(kb[7]);
    cachee_l0_stats s0 = u_stats(h);
    OK(cachee_l0_get_many(h, N, keys, lens, views, results));
    uint64_t pinned = 0, npins = 0;
    for (uint32_t i = 0; i < 50; i++) {
        CHECK_RC(results[i], 0);
        CHECK(u_value_equals(views[i].data, views[i].len, i, 2) == 0);
        pinned += views[i].len;
        npins++;
    }
    for (uint32_t i = 50; i < 60; i++) CHECK_RC(results[i], CACHEE_L0_NOTFOUND);
    CHECK_RC(results[60], CACHEE_L0_E_INVAL);
    CHECK_RC(results[61], CACHEE_L0_E_INVAL);
    CHECK_RC(results[62], CACHEE_L0_E_KEY_TOO_LARGE);
    CHECK_RC(results[63], 0);
    CHECK(u_value_equals(views[63].data, views[63].len, 7, 2) == 0);
    pinned += views[63].len;
    npins++;
    cachee_l0_stats s1 = u_stats(h);
    CHECK(s1.pins == npins);
    CHECK(s1.pinned_bytes == pinned);
    CHECK(s1.hits - s0.hits == 51);
    CHECK(s1.misses - s0.misses == 10);
    for (uint32_t i = 0; i < N; i++) {
        if (results[i] == 0) OK(cachee_l0_release(h, &views[i]));
        else CHECK_RC(cachee_l0_release(h, &views[i]), CACHEE_L0_E_BAD_PIN);
    }
    CHECK(u_stats(h).pins == 0);
    CHECK(u_stats(h).pinned_bytes == 0);

    /* Argument errors. */
    OK(cachee_l0_get_many(h, 0, NULL, NULL, NULL, NULL));
    CHECK_RC(cachee_l0_get_many(h, 1, NULL, lens, views, results), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_get_many(h, 1, keys, NULL, views, results), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_get_many(h, 1, keys, lens, NULL, results), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_get_many(h, 1, keys, lens, views, NULL), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_get_many(NULL, 1, keys, lens, views, results), CACHEE_L0_E_INVAL);
    CHECK(u_stats(h).pins == 0);
    U_FINISH(h, name);
}

/* Batch optimistic reads: every key of a batch that spans several groups
 * (present, absent, expired, bad, duplicated) gets what a single read would
 * give; views are unpinned and validate; statistics count each key once. */
TEST(read_many) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "rmany", 8 * MiB, 16 * KiB);
    enum { PRESENT = 500, N = 3 * CACHEE_L0_BATCH_GROUP * 7 + 5 };
    for (uint32_t i = 0; i < PRESENT; i++) OK(u_set_val_ex(h, i, 3, 40 + (i * 37) % 900, 0, 0));
    OK(u_set_val_ex(h, 9000, 1, 64, 1, 0)); /* expires 1 ns after it was written */
    static char kb[N][32];
    const void *keys[N];
    size_t lens[N];
    cachee_l0_view views[N];
    int results[N], want[N];
    u_rng rng = u_rng_seed(11);
    for (uint32_t i = 0; i < N; i++) {
        uint32_t id = (uint32_t)u_below(&rng, 2 * PRESENT); /* half absent */
        if (i % 41 == 5) id = 9000;                          /* expired */
        lens[i] = u_key(kb[i], sizeof kb[i], id);
        keys[i] = kb[i];
        want[i] = id < PRESENT ? 0 : CACHEE_L0_NOTFOUND;
    }
    lens[16] = 0;
    want[16] = CACHEE_L0_E_INVAL;
    keys[33] = NULL;
    want[33] = CACHEE_L0_E_INVAL;
    lens[47] = CACHEE_L0_KEY_MAX + 1;
    want[47] = CACHEE_L0_E_KEY_TOO_LARGE;
    keys[N - 1] = kb[0]; /* a duplicate */
    lens[N - 1] = lens[0];
    want[N - 1] = want[0];
    cachee_l0_stats s0 = u_stats(h);
    OK(cachee_l0_read_many(h, N, keys, lens, views, results));
    uint64_t hits = 0, misses = 0;
    static uint8_t buf[1024];
    for (uint32_t i = 0; i < N; i++) {
        CHECK_RC(results[i], want[i]);
        if (results[i] == 0) {
            hits++;
            CHECK(views[i].pin_ == 0 && views[i].len <= sizeof buf);
            memcpy(buf, views[i].data, views[i].len);
            OK(cachee_l0_read_validate(h, &views[i]));
            uint32_t id = (uint32_t)strtoul(kb[i] + 2, NULL, 10);
            CHECK(u_value_equals(buf, views[i].len, id, 3) == 0);
            cachee_l0_item it;
            memset(&it, 0, sizeof it);
            OK(cachee_l0_get(h, keys[i], lens[i], buf, sizeof buf, &it));
            CHECK(it.value_len == views[i].len && it.version == views[i].version);
        } else if (results[i] == CACHEE_L0_NOTFOUND) {
            misses++;
            CHECK(views[i].data == NULL);
        }
    }
    cachee_l0_stats s1 = u_stats(h);
    CHECK(s1.pins == 0);
    CHECK(s1.hits - s0.hits == 2 * hits); /* the batch, then the checking gets */
    CHECK(s1.misses - s0.misses == misses);

    /* Argument errors. */
    OK(cachee_l0_read_many(h, 0, NULL, NULL, NULL, NULL));
    CHECK_RC(cachee_l0_read_many(h, 1, NULL, lens, views, results), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_read_many(h, 1, keys, NULL, views, results), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_read_many(h, 1, keys, lens, NULL, results), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_read_many(h, 1, keys, lens, views, NULL), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_read_many(NULL, 1, keys, lens, views, results), CACHEE_L0_E_INVAL);
    U_FINISH(h, name);
}

TEST(stats_exact_single_process) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "stats", 4 * MiB, 16 * KiB);
    cachee_l0_info info = u_info(h);
    cachee_l0_stats s = u_stats(h);
    CHECK(s.hits == 0 && s.misses == 0 && s.sets == 0 && s.deletes == 0);
    CHECK(s.evictions == 0 && s.expirations == 0 && s.set_failures == 0);
    CHECK(s.live_procs == 1);
    CHECK(s.capacity_bytes == info.arena_size);
    CHECK(s.used_bytes + s.free_bytes + s.limbo_bytes == s.capacity_bytes);

    uint8_t buf[512];
    for (uint32_t i = 0; i < 10; i++) OK(u_set_val_ex(h, i, 0, 100, 0, 0));
    for (uint32_t i = 0; i < 3; i++) OK(u_set_val_ex(h, i, 1, 120, 0, 0)); /* 13 sets */
    CHECK_RC(u_set_val_ex(h, 4, 9, 100, 0, CACHEE_L0_IF_ABSENT), CACHEE_L0_EXISTS);
    for (uint32_t i = 0; i < 5; i++) { /* 5 hits */
        char k[32];
        size_t kl = u_key(k, sizeof k, i);
        OK(cachee_l0_get(h, k, kl, buf, sizeof buf, NULL));
    }
    CHECK_RC(cachee_l0_get(h, "x1", 2, buf, sizeof buf, NULL), CACHEE_L0_NOTFOUND);
    CHECK_RC(cachee_l0_get(h, "x2", 2, buf, sizeof buf, NULL), CACHEE_L0_NOTFOUND);
    cachee_l0_view v;
    OK(cachee_l0_get_pinned(h, "k:6", 3, &v)); /* hit */
    OK(cachee_l0_release(h, &v));
    CHECK_RC(cachee_l0_get_pinned(h, "x3", 2, &v), CACHEE_L0_NOTFOUND); /* miss */
    OK(cachee_l0_read_begin(h, "k:7", 3, &v)); /* hit */
    CHECK_RC(cachee_l0_contains(h, "k:8", 3), 1);  /* not counted */
    CHECK_RC(cachee_l0_contains(h, "x4", 2), 0);   /* not counted */
    OK(cachee_l0_delete(h, "k:8", 3));
    OK(cachee_l0_delete(h, "k:9", 3));
    CHECK_RC(cachee_l0_delete(h, "k:9", 3), CACHEE_L0_NOTFOUND);
    s = u_stats(h);
    u_print_stats("after script", &s);
    CHECK(s.hits == 7);
    CHECK(s.misses == 3);
    CHECK(s.sets == 13);
    CHECK(s.deletes == 2);
    CHECK(s.entries == 8);
    CHECK(s.evictions == 0 && s.expirations == 0 && s.set_failures == 0);
    CHECK(s.pins == 0 && s.pinned_bytes == 0 && s.limbo_bytes == 0);
    CHECK(s.live_procs == 1);
    CHECK(s.segments_open >= 1);
    CHECK(s.used_bytes + s.free_bytes + s.limbo_bytes == s.capacity_bytes);
    CHECK(s.used_bytes > 0);

    /* Counters survive the process closing its handle. */
    OK(cachee_l0_close(h));
    h = u_attach(name);
    s = u_stats(h);
    CHECK(s.hits == 7 && s.misses == 3 && s.sets == 13 && s.deletes == 2);
    CHECK(s.live_procs == 1);
    U_FINISH(h, name);
}

TEST(reopen_and_two_handles) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "reopen", 4 * MiB, 16 * KiB);
    for (uint32_t i = 0; i < 300; i++) OK(u_set_val_ex(h, i, 3, 64 + i, 0, 0));
    cachee_l0_info a = u_info(h);
    OK(cachee_l0_close(h));

    h = u_attach(name);
    cachee_l0_info b = u_info(h);
    CHECK(a.region_size == b.region_size && a.arena_size == b.arena_size);
    CHECK(a.segments == b.segments && a.segment_size == b.segment_size);
    CHECK(a.value_max == b.value_max && a.shards == b.shards);
    CHECK(strcmp(a.path, b.path) == 0);
    uint8_t buf[512];
    for (uint32_t i = 0; i < 300; i++) {
        char k[32];
        size_t kl = u_key(k, sizeof k, i);
        cachee_l0_item it;
        memset(&it, 0, sizeof it);
        OK(cachee_l0_get(h, k, kl, buf, sizeof buf, &it));
        CHECK(it.value_len == 64 + i && u_value_equals(buf, it.value_len, i, 3) == 0);
    }
    /* Same size given explicitly, and CREATE on an existing region, open it. */
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    o.size = a.region_size;
    cachee_l0 *h2 = NULL;
    OK(cachee_l0_open(name, &o, &h2));
    o.flags = CACHEE_L0_CREATE;
    cachee_l0 *h3 = NULL;
    OK(cachee_l0_open(name, &o, &h3));

    /* Handles of one process see each other's writes and count as two
     * attached users. */
    OK(u_set_val_ex(h2, 5000, 1, 200, 0, 0));
    OK(cachee_l0_get(h, "k:5000", 6, buf, sizeof buf, NULL));
    CHECK(u_value_equals(buf, 200, 5000, 1) == 0);
    OK(cachee_l0_get(h3, "k:5000", 6, buf, sizeof buf, NULL));
    CHECK(u_stats(h).live_procs == 3);
    cachee_l0_view v;
    OK(cachee_l0_get_pinned(h2, "k:1", 3, &v));
    OK(cachee_l0_release(h2, &v));
    OK(cachee_l0_close(h2));
    OK(cachee_l0_close(h3));
    CHECK(u_stats(h).live_procs == 1);
    OK(cachee_l0_get(h, "k:5000", 6, buf, sizeof buf, NULL));
    U_FINISH(h, name);
    cachee_l0 *none = (cachee_l0 *)&o;
    CHECK_RC(cachee_l0_open(name, NULL, &none), CACHEE_L0_E_NO_REGION);
    CHECK(none == NULL);
}

/* A second handle opened with the first one's registration token is the
 * same process: one slot, shared pins and writes; closing it leaves the slot
 * to the first handle; a fork child of the sharer gets a slot of its own. */
TEST(second_handle_shares_the_slot) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "share", 4 * MiB, 16 * KiB);
    uint64_t token = 0;
    OK(cachee_l0_registration(h, &token));
    CHECK(token != 0);
    uint64_t again = 0;
    OK(cachee_l0_registration(h, &again));
    CHECK(again == token);
    CHECK(u_stats(h).live_procs == 1);

    cachee_l0_options o;
    cachee_l0_options_init(&o);
    o.share_slot = token;
    cachee_l0 *h2 = NULL;
    OK(cachee_l0_open(name, &o, &h2));
    uint64_t token2 = 0;
    OK(cachee_l0_registration(h2, &token2));
    CHECK(token2 == token);
    OK(u_set_val_ex(h2, 7, 1, 300, 0, 0));           /* writes through the slot */
    cachee_l0_view v;
    OK(cachee_l0_get_pinned(h2, "k:7", 3, &v));  /* pins in the slot */
    CHECK(u_stats(h).pins == 1 && u_stats(h).live_procs == 1);
    OK(cachee_l0_release(h2, &v));
    CHECK(u_stats(h).pins == 0);

    /* A fork child of a sharing handle registers a slot of its own. */
    volatile uint64_t *sync = u_shm(4096);
    pid_t pid = u_fork();
    if (pid == 0) {
        OK(u_set_val_ex(h2, 8, 1, 100, 0, 0));
        CHECK(u_stats(h2).live_procs == 2);
        u_inc(&sync[0]);
        _exit(0);
    }
    CHECK_CHILD(pid, 30);
    CHECK(sync[0] == 1);

    OK(cachee_l0_close(h2)); /* the slot stays: h owns it */
    CHECK(u_stats(h).live_procs == 1);
    uint8_t buf[512];
    OK(cachee_l0_get(h, "k:7", 3, buf, sizeof buf, NULL));
    OK(cachee_l0_get(h, "k:8", 3, buf, sizeof buf, NULL));
    OK(u_set_val_ex(h, 9, 1, 100, 0, 0));

    /* Tokens that name no live slot of this process are refused, and the
     * refused open leaves nothing behind. */
    uint64_t bad[] = {
        1,                                       /* slot index 0 - 1 */
        (uint64_t)0xffffffffu << 32,             /* beyond max_procs */
        token ^ 1,                               /* another generation */
        token + (1ull << 32),                    /* a free slot */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.share_slot = bad[i];
        cachee_l0 *x = (cachee_l0 *)&o;
        CHECK_RC(cachee_l0_open(name, &o, &x), CACHEE_L0_E_INVAL);
        CHECK(x == NULL);
    }
    /* Another process's slot (the token travels, the process does not). */
    pid = u_fork();
    if (pid == 0) {
        cachee_l0 *hc = u_attach(name);
        uint64_t t = 0;
        OK(cachee_l0_registration(hc, &t));
        sync[1] = t;
        u_inc(&sync[2]);
        u_wait_counter(&sync[3], 1, 30);
        OK(cachee_l0_close(hc));
        _exit(0);
    }
    u_wait_counter(&sync[2], 1, 30);
    o.share_slot = sync[1];
    cachee_l0 *x = NULL;
    CHECK_RC(cachee_l0_open(name, &o, &x), CACHEE_L0_E_INVAL);
    u_inc(&sync[3]);
    CHECK_CHILD(pid, 30);
    CHECK(u_stats(h).live_procs == 1);
    CHECK_RC(cachee_l0_registration(NULL, &token), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_registration(h, NULL), CACHEE_L0_E_INVAL);
    U_FINISH(h, name);
}

TEST(info_fields) {
    char name[128], path[256];
    u_name(name, sizeof name, "info");
    u_shm_path(path, sizeof path, name);
    mode_t old = umask(077);
    cachee_l0 *h = u_create(name, 32 * MiB, 0);
    umask(old);
    cachee_l0_info i = u_info(h);
    printf("  32 MiB: segment %u x %u, arena %llu, value_max %llu, shards %u x %u, "
           "max_entries %llu\n",
           i.segment_size, i.segments, (unsigned long long)i.arena_size,
           (unsigned long long)i.value_max, i.shards, i.shard_slots,
           (unsigned long long)i.max_entries);
    CHECK(i.region_size == 32 * MiB);
    CHECK(i.segment_size == 32 * KiB); /* size/1024 */
    CHECK((uint64_t)i.segments * i.segment_size == i.arena_size);
    CHECK(i.arena_size < i.region_size && i.arena_size > i.region_size / 2);
    CHECK(i.value_max == (uint64_t)(i.segments / 4) * i.segment_size - 128);
    CHECK(i.max_procs == CACHEE_L0_PROCS_DEFAULT);
    CHECK(i.max_entries == 32 * MiB / 512);
    CHECK(i.shards >= 1 && i.shards <= 256 && (i.shards & (i.shards - 1)) == 0);
    CHECK((uint64_t)i.shards * i.shard_slots >= i.max_entries);
    CHECK(strcmp(i.path, path) == 0);
    CHECK(i.flags == 0 && i.hugetlbfs == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    CHECK((uint64_t)st.st_size == i.region_size);
    CHECK(st.st_uid == geteuid());
    U_CLOSE_UNLINK(h, name);
    CHECK(!u_exists(path));

    /* Explicit parameters, an odd size, a requested mode without umask. */
    cachee_l0_options o;
    cachee_l0_options_init(&o);
    CHECK(o.size == 0 && o.flags == 0 && o.mode == 0 && o.segment_size == 0);
    cachee_l0_options_init(NULL); /* no-op */
    o.size = 3 * MiB + 12345;
    o.flags = CACHEE_L0_CREATE;
    o.mode = 0640;
    o.segment_size = 32 * KiB;
    o.max_procs = 16;
    o.max_entries = 1000;
    old = umask(077);
    OK(cachee_l0_open(name, &o, &h));
    umask(old);
    i = u_info(h);
    CHECK(i.region_size == 3 * MiB + 12345);
    CHECK(i.segment_size == 32 * KiB && i.max_procs == 16 && i.max_entries == 1000);
    CHECK((uint64_t)i.shards * i.shard_slots >= 1000 * 4 / 3);
    CHECK(stat(path, &st) == 0);
    CHECK((st.st_mode & 07777) == 0640);
    CHECK((uint64_t)st.st_size == 3 * MiB + 12345);
    OK(u_set_val_ex(h, 1, 1, 1000, 0, 0));
    uint8_t buf[1024];
    OK(cachee_l0_get(h, "k:1", 3, buf, sizeof buf, NULL));
    CHECK(u_value_equals(buf, 1000, 1, 1) == 0);
    U_FINISH(h, name);

    /* Default segment size for a small region is the 16 KiB floor. */
    h = u_create(name, 4 * MiB, 0);
    CHECK(u_info(h).segment_size == 16 * KiB);
    U_CLOSE_UNLINK(h, name);
    h = u_create(name, 24 * MiB, 0);
    CHECK(u_info(h).segment_size == 16 * KiB); /* 24 KiB rounded down */
    U_FINISH(h, name);
}

/* Index pressure: a tiny index (one shard) under random sets and deletes
 * exercises CLOCK eviction of entries, tombstones and in-place rebuilds.
 * A model checks that a deleted key never comes back and that a found value
 * is always the latest one written. */
TEST(model_small_index_churn) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "churn", 2 * MiB, 16 * KiB, 200, 0);
    cachee_l0_info info = u_info(h);
    printf("  shards %u x %u slots\n", info.shards, info.shard_slots);
    enum { NK = 400 };
    int64_t model[NK]; /* -1 absent for sure, else the latest seq */
    for (int i = 0; i < NK; i++) model[i] = -1;
    u_rng r = u_rng_seed(11);
    uint8_t buf[1024];
    int ops = u_long_mode() ? 100000 : 12000;
    uint64_t hits = 0, evicted = 0;
    for (int op = 1; op <= ops; op++) {
        uint32_t id = (uint32_t)u_below(&r, NK);
        char k[32];
        size_t kl = u_key(k, sizeof k, id);
        uint64_t dice = u_below(&r, 10);
        if (dice < 4) {
            uint64_t seq = (uint64_t)op;
            OK(u_set_val_ex(h, id, seq, 40 + u_below(&r, 300), 0, 0));
            model[id] = (int64_t)seq;
        } else if (dice < 6) {
            int rc = cachee_l0_delete(h, k, kl);
            if (model[id] < 0) CHECK_RC(rc, CACHEE_L0_NOTFOUND);
            else CHECK(rc == 0 || rc == CACHEE_L0_NOTFOUND);
            model[id] = -1;
        } else {
            cachee_l0_item it;
            memset(&it, 0, sizeof it);
            int rc = cachee_l0_get(h, k, kl, buf, sizeof buf, &it);
            if (model[id] < 0) {
                if (rc != CACHEE_L0_NOTFOUND)
                    fprintf(stderr, "  op %d: key %u absent but get = %d\n", op, id, rc);
                CHECK_RC(rc, CACHEE_L0_NOTFOUND);
            } else if (rc == CACHEE_L0_NOTFOUND) {
                model[id] = -1; /* evicted: must stay absent */
                evicted++;
            } else {
                OK(rc);
                uint64_t seq = 0;
                CHECK(u_verify_value(buf, it.value_len, id, &seq) == 0);
                if (seq != (uint64_t)model[id])
                    fprintf(stderr, "  op %d: key %u has seq %llu, want %lld\n", op,
                            id, (unsigned long long)seq, (long long)model[id]);
                CHECK(seq == (uint64_t)model[id]);
                hits++;
            }
        }
        if (op % 1000 == 0) CHECK_REGION(h);
    }
    cachee_l0_stats s = u_stats(h);
    printf("  %d ops: %llu hits, %llu found evicted, index evictions %llu, "
           "entries %llu\n",
           ops, (unsigned long long)hits, (unsigned long long)evicted,
           (unsigned long long)s.evictions, (unsigned long long)s.entries);
    CHECK(s.entries <= info.shard_slots * info.shards);
    U_FINISH(h, name);
}

/* Same model, arena-bound: a small arena with large-ish values. */
TEST(model_small_arena_churn) {
    char name[128];
    cachee_l0 *h = u_new_opts(name, sizeof name, "achurn", 2 * MiB, 16 * KiB, 4096, 0);
    enum { NK = 600 };
    int64_t model[NK];
    for (int i = 0; i < NK; i++) model[i] = -1;
    u_rng r = u_rng_seed(12);
    uint8_t *buf = malloc(64 * KiB);
    CHECK(buf != NULL);
    int ops = u_long_mode() ? 60000 : 8000;
    for (int op = 1; op <= ops; op++) {
        uint32_t id = (uint32_t)u_below(&r, NK);
        char k[32];
        size_t kl = u_key(k, sizeof k, id);
        uint64_t dice = u_below(&r, 10);
        if (dice < 5) {
            size_t len = u_below(&r, 50) == 0 ? 17 * KiB + u_below(&r, 30 * KiB)
                                              : 100 + u_below(&r, 4000);
            OK(u_set_val_ex(h, id, (uint64_t)op, len, 0, 0));
            model[id] = op;
        } else if (dice < 6) {
            int rc = cachee_l0_delete(h, k, kl);
            if (model[id] < 0) CHECK_RC(rc, CACHEE_L0_NOTFOUND);
            model[id] = -1;
        } else {
            cachee_l0_view v;
            int rc = dice < 8 ? cachee_l0_get_pinned(h, k, kl, &v)
                              : cachee_l0_read_begin(h, k, kl, &v);
            if (model[id] < 0) {
                CHECK_RC(rc, CACHEE_L0_NOTFOUND);
            } else if (rc == CACHEE_L0_NOTFOUND) {
                model[id] = -1;
            } else {
                OK(rc);
                uint64_t seq = 0;
                memcpy(buf, v.data, v.len);
                if (v.pin_ == 0) OK(cachee_l0_read_validate(h, &v));
                CHECK(u_verify_value(buf, v.len, id, &seq) == 0);
                CHECK(seq == (uint64_t)model[id]);
                if (v.pin_) OK(cachee_l0_release(h, &v));
            }
        }
        if (op % 1000 == 0) CHECK_REGION(h);
    }
    cachee_l0_stats s = u_stats(h);
    printf("  %d ops: evictions %llu reinsertions %llu entries %llu\n", ops,
           (unsigned long long)s.evictions, (unsigned long long)s.reinsertions,
           (unsigned long long)s.entries);
    CHECK(s.evictions > 0);
    CHECK(s.pins == 0);
    free(buf);
    U_FINISH(h, name);
}

/* ------------------------------------------------------------ hash */

/* XXH3-64, seed 0, of the first n bytes of the buffer b[i] = (i+1) % 251.
 * These come from the upstream C implementation (the test vectors that
 * github.com/zeebo/xxh3 checks against, generated by its _compat.c). */
static const struct {
    size_t n;
    uint64_t h;
} xxh3_vectors[] = {
    {0, 0x2d06800538d394c2ull},    {1, 0xe12ef9d2eb86ceebull},
    {2, 0x08130b77ddef5807ull},    {3, 0xebce9b7632ae733bull},
    {4, 0x988b7b9033ac4622ull},    {7, 0x23dad96362ed7fbeull},
    {8, 0x16f217ea16232297ull},    {9, 0x17d143e7f447850aull},
    {15, 0xdfe323395ece706full},   {16, 0xeb5aeb9a32450f6aull},
    {17, 0x6d458e1fff494078ull},   {63, 0x879274ae2653cbccull},
    {64, 0xc82013245d8f2587ull},   {65, 0x8810a33c748c6017ull},
    {127, 0x3a639c24d99c0b10ull},  {128, 0xce22cae9106851dfull},
    {129, 0x7d4fc663f5958d40ull},  {239, 0xe81761357e2a0081ull},
    {240, 0xa5a910b2d7e065b0ull},  {241, 0xb6515f490cdd4ce5ull},
    {255, 0xfce9bbd7cb663ed8ull},  {256, 0x6c602b93da37d220ull},
    {511, 0x8c0ce37992b2bc9bull},  {1023, 0xe53c987a6f064659ull},
    {1024, 0x546f61a5b0b850c1ull}, {1025, 0xa58696e72de6df58ull},
    {2047, 0x45dc3a1c53c9ef46ull}, {2048, 0x97ca16b9cb0322d1ull},
    {4095, 0x268198759d7bdf74ull},
};

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/*
 * core/l0/testdata/xxh3_vectors.txt (written by the Go side from
 * github.com/zeebo/xxh3): one vector per line, "LENGTH HASH INPUT", '#'
 * starts a comment; LENGTH decimal, HASH 16 hex digits, INPUT the bytes in
 * hex or "-" when empty.  Returns the number of vectors checked, -1 if the
 * file is absent; lines not in that format are counted in *bad_lines.
 */
static int check_vector_file(const char *path, int *bad_lines) {
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    char *line = NULL;
    size_t cap = 0;
    int checked = 0;
    *bad_lines = 0;
    while (getline(&line, &cap, f) > 0) {
        char *comment = strchr(line, '#');
        if (comment) *comment = '\0';
        char *save = NULL;
        char *f1 = strtok_r(line, " \t\r\n", &save);
        if (f1 == NULL) continue; /* blank or comment */
        char *f2 = strtok_r(NULL, " \t\r\n", &save);
        char *f3 = strtok_r(NULL, " \t\r\n", &save);
        char *end = NULL;
        unsigned long long n = strtoull(f1, &end, 10);
        bool ok = f2 != NULL && f3 != NULL && *end == '\0' && n <= (1u << 24);
        uint64_t want = 0;
        if (ok) {
            char *hb = f2;
            if (hb[0] == '0' && (hb[1] == 'x' || hb[1] == 'X')) hb += 2;
            ok = strlen(hb) >= 1 && strlen(hb) <= 16;
            for (char *p = hb; ok && *p; p++) {
                int d = hexval(*p);
                if (d < 0) ok = false;
                else want = want << 4 | (uint64_t)d;
            }
        }
        uint8_t *in = ok ? malloc(n + 1) : NULL;
        if (ok && in == NULL) ok = false;
        if (ok && strcmp(f3, "-") == 0) {
            ok = n == 0;
        } else if (ok) {
            ok = strlen(f3) == 2 * n;
            for (size_t i = 0; ok && i < n; i++) {
                int hi = hexval(f3[2 * i]), lo = hexval(f3[2 * i + 1]);
                if (hi < 0 || lo < 0) ok = false;
                else in[i] = (uint8_t)(hi << 4 | lo);
            }
        }
        if (!ok) {
            free(in);
            (*bad_lines)++;
            continue;
        }
        uint64_t got = cachee_l0_hash(in, (size_t)n);
        free(in);
        if (got != want) {
            fprintf(stderr, "  %s: input of %llu bytes: hash %016llx, file says %016llx\n",
                    path, n, (unsigned long long)got, (unsigned long long)want);
            exit(1);
        }
        checked++;
    }
    free(line);
    fclose(f);
    return checked;
}

TEST(hash_xxh3_vectors) {
    uint8_t buf[4096];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)((i + 1) % 251);
    for (size_t i = 0; i < sizeof xxh3_vectors / sizeof xxh3_vectors[0]; i++) {
        uint64_t got = cachee_l0_hash(buf, xxh3_vectors[i].n);
        if (got != xxh3_vectors[i].h)
            fprintf(stderr, "  len %zu: %016llx want %016llx\n", xxh3_vectors[i].n,
                    (unsigned long long)got, (unsigned long long)xxh3_vectors[i].h);
        CHECK(got == xxh3_vectors[i].h);
    }
    CHECK(cachee_l0_hash("", 0) == 0x2D06800538D394C2ull);
    CHECK(cachee_l0_hash(NULL, 0) == 0x2D06800538D394C2ull);

    int bad = 0;
    int n = check_vector_file("core/l0/testdata/xxh3_vectors.txt", &bad);
    if (n < 0) n = check_vector_file("../../core/l0/testdata/xxh3_vectors.txt", &bad);
    if (n < 0) {
        printf("  note: core/l0/testdata/xxh3_vectors.txt not found; embedded "
               "vectors only\n");
    } else {
        printf("  core/l0/testdata/xxh3_vectors.txt: %d vectors agree\n", n);
        if (n == 0 || bad > 0)
            fprintf(stderr, "  xxh3_vectors.txt: %d vectors, %d lines not in the "
                            "format 'LENGTH HASH INPUT'\n", n, bad);
        CHECK(n > 0 && bad == 0);
    }
}

TEST(strerror_every_code) {
    for (int code = CACHEE_L0_E_BUSY; code <= CACHEE_L0_NOTFOUND; code++) {
        const char *s = cachee_l0_strerror(code);
        CHECK(s != NULL && s[0] != '\0');
        if (strstr(s, "unknown") != NULL)
            fprintf(stderr, "  code %d has no description\n", code);
        CHECK(strstr(s, "unknown") == NULL);
        for (int other = code + 1; other <= CACHEE_L0_NOTFOUND; other++)
            CHECK(strcmp(s, cachee_l0_strerror(other)) != 0);
    }
    CHECK(strcmp(cachee_l0_strerror(0), "success") == 0);
    CHECK(cachee_l0_strerror(ENOENT) != NULL &&
          strcmp(cachee_l0_strerror(ENOENT), strerror(ENOENT)) == 0);
    CHECK(cachee_l0_strerror(-1) != NULL);
    CHECK(cachee_l0_strerror(-99999) != NULL);
}

int main(int argc, char **argv) { return l0test_main(argc, argv); }
