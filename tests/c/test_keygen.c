/*
 * test_keygen.c -- key generations, cachee_l0_promote and the eviction hook
 * (KEY GENERATIONS and EVICTION HOOK in cachee_l0.h): what the Go engine's
 * per-process L1 relies on to never serve a value another process replaced.
 */
#define _GNU_SOURCE
#include "l0test.h"
#include "l0util.h"

#define MiB (1ull << 20)

static uint32_t gen_of(cachee_l0 *h, const char *k) {
    return cachee_l0_generation(h, cachee_l0_hash(k, strlen(k)));
}

TEST(set_and_delete_bump_the_generation) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "gen", 8 * MiB, 0);
    uint32_t count = 0;
    const uint32_t *tab = cachee_l0_generation_table(h, &count);
    CHECK(tab != NULL && count >= 1024 && (count & (count - 1)) == 0);
    CHECK(count <= CACHEE_L0_KEYGEN_MAX);
    uint64_t hk = cachee_l0_hash("k", 1);
    uint32_t g0 = gen_of(h, "k");
    CHECK(tab[CACHEE_L0_KEYGEN_INDEX(hk, count)] == g0);
    OK(cachee_l0_set(h, "k", 1, "v", 1, NULL, 0, 0, 0));
    uint32_t g1 = gen_of(h, "k");
    CHECK(g1 == g0 + 1);
    CHECK(tab[CACHEE_L0_KEYGEN_INDEX(hk, count)] == g1);
    /* IF_ABSENT that finds the key changes nothing */
    CHECK_RC(cachee_l0_set(h, "k", 1, "w", 1, NULL, 0, 0, CACHEE_L0_IF_ABSENT),
             CACHEE_L0_EXISTS);
    CHECK(gen_of(h, "k") == g1);
    /* reads do not bump */
    char buf[8];
    OK(cachee_l0_get(h, "k", 1, buf, sizeof buf, NULL));
    CHECK(gen_of(h, "k") == g1);
    OK(cachee_l0_delete(h, "k", 1));
    CHECK(gen_of(h, "k") == g1 + 1);
    /* a delete of an absent key bumps too (copies elsewhere must go) */
    CHECK_RC(cachee_l0_delete(h, "k", 1), CACHEE_L0_NOTFOUND);
    CHECK(gen_of(h, "k") == g1 + 2);
    /* another handle (another process would do the same) sees the bumps */
    cachee_l0 *h2 = u_attach(name);
    CHECK(gen_of(h2, "k") == g1 + 2);
    OK(cachee_l0_set(h2, "k", 1, "v", 1, NULL, 0, 0, 0));
    CHECK(gen_of(h, "k") == g1 + 3);
    CHECK(cachee_l0_generation(NULL, hk) == 0);
    CHECK(cachee_l0_generation_table(NULL, &count) == NULL);
    CHECK_REGION(h);
    OK(cachee_l0_close(h2));
    OK(cachee_l0_close(h));
    cachee_l0_unlink(name);
}

TEST(generation_survives_in_a_forked_writer) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "genfork", 8 * MiB, 0);
    uint32_t g0 = gen_of(h, "key");
    pid_t pid = fork();
    if (pid == 0) {
        cachee_l0 *c = u_attach(name);
        for (int i = 0; i < 10; i++)
            if (cachee_l0_set(c, "key", 3, "x", 1, NULL, 0, 0, 0) != 0) _exit(1);
        cachee_l0_close(c);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(gen_of(h, "key") == g0 + 10);
    OK(cachee_l0_close(h));
    cachee_l0_unlink(name);
}

TEST(promote_only_if_unchanged) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "promote", 8 * MiB, 0);
    uint32_t g = gen_of(h, "p");
    /* absent and unchanged: stored, generation not bumped */
    OK(cachee_l0_promote(h, "p", 1, "val", 3, "m", 1, 0, g));
    CHECK(gen_of(h, "p") == g);
    char buf[8];
    char meta[8];
    cachee_l0_item it;
    memset(&it, 0, sizeof it);
    it.meta_buf = meta;
    it.meta_cap = sizeof meta;
    OK(cachee_l0_get(h, "p", 1, buf, sizeof buf, &it));
    CHECK(it.value_len == 3 && memcmp(buf, "val", 3) == 0);
    CHECK(it.meta_len == 1 && meta[0] == 'm');
    /* present: EXISTS */
    CHECK_RC(cachee_l0_promote(h, "p", 1, "new", 3, NULL, 0, 0, g), CACHEE_L0_EXISTS);
    /* deleted since: the generation moved, the copy is stale */
    OK(cachee_l0_delete(h, "p", 1));
    CHECK_RC(cachee_l0_promote(h, "p", 1, "val", 3, NULL, 0, 0, g), CACHEE_L0_STALE);
    CHECK_RC(cachee_l0_get(h, "p", 1, buf, sizeof buf, NULL), CACHEE_L0_NOTFOUND);
    /* the current generation works; an absolute expiry is kept */
    int64_t exp = (int64_t)time(NULL) * 1000000000ll + 3600ll * 1000000000ll;
    OK(cachee_l0_promote(h, "p", 1, "val", 3, NULL, 0, exp, gen_of(h, "p")));
    memset(&it, 0, sizeof it);
    OK(cachee_l0_get(h, "p", 1, buf, sizeof buf, &it));
    CHECK(it.expires_ns == exp);
    /* expired copies are stale; bad arguments */
    CHECK_RC(cachee_l0_promote(h, "q", 1, "v", 1, NULL, 0, 1, gen_of(h, "q")), CACHEE_L0_STALE);
    CHECK_RC(cachee_l0_promote(h, "q", 1, "v", 1, NULL, 0, -1, 0), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_promote(NULL, "q", 1, "v", 1, NULL, 0, 0, 0), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_promote(h, NULL, 1, "v", 1, NULL, 0, 0, 0), CACHEE_L0_E_INVAL);
    CHECK_RC(cachee_l0_promote(h, "q", 1, NULL, 1, NULL, 0, 0, 0), CACHEE_L0_E_INVAL);
    CHECK(strcmp(cachee_l0_strerror(CACHEE_L0_STALE), "unknown cachee error code") != 0);
    CHECK_REGION(h);
    OK(cachee_l0_close(h));
    cachee_l0_unlink(name);
}

/* The hook copies what it is given: key -> value, generation. */
struct seen {
    int n, bad;
    uint64_t bytes;
    char key[64];
    uint32_t gen;
};

static void hook(void *arg, const cachee_l0_evicted *e) {
    struct seen *s = arg;
    s->n++;
    s->bytes += e->value_len;
    if (e->key_len >= sizeof s->key || e->key_hash != cachee_l0_hash(e->key, e->key_len) ||
        e->value_len != 1000 || e->meta_len != 2 || memcmp(e->meta, "mm", 2) != 0) {
        s->bad++;
        return;
    }
    /* the value is the key repeated: self-checking */
    const unsigned char *v = e->value;
    for (size_t i = 0; i < e->value_len; i++)
        if (v[i] != ((const unsigned char *)e->key)[i % e->key_len]) {
            s->bad++;
            return;
        }
    memcpy(s->key, e->key, e->key_len);
    s->key[e->key_len] = 0;
    s->gen = e->generation;
}

TEST(eviction_hook_sees_live_victims) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "hook", 4 * MiB, 16 << 10);
    struct seen s;
    memset(&s, 0, sizeof s);
    OK(cachee_l0_set_evict_hook(h, hook, &s));
    CHECK_RC(cachee_l0_set_evict_hook(NULL, hook, &s), CACHEE_L0_E_INVAL);
    char key[32], val[1000];
    int n = 20000; /* ~20 MB into 4 MiB: most are evicted */
    for (int i = 0; i < n; i++) {
        int kl = snprintf(key, sizeof key, "key-%d", i);
        for (size_t j = 0; j < sizeof val; j++) val[j] = key[j % (size_t)kl];
        OK(cachee_l0_set(h, key, (size_t)kl, val, sizeof val, "mm", 2, 0, 0));
    }
    cachee_l0_stats st = u_stats(h);
    CHECK(s.bad == 0);
    CHECK(s.n > n / 2);
    CHECK((uint64_t)s.n <= st.evictions);
    /* the last one reported is absent from L0 now, and its generation is
     * the key's current one */
    char buf[1000];
    CHECK_RC(cachee_l0_get(h, s.key, strlen(s.key), buf, sizeof buf, NULL), CACHEE_L0_NOTFOUND);
    CHECK(s.gen == gen_of(h, s.key));
    /* with the hook removed, nothing is reported */
    int before = s.n;
    OK(cachee_l0_set_evict_hook(h, NULL, NULL));
    OK(cachee_l0_set(h, "x", 1, "y", 1, NULL, 0, 0, 0));
    CHECK(s.n == before); /* no hook any more */
    CHECK_REGION(h);
    OK(cachee_l0_close(h));
    cachee_l0_unlink(name);
}

TEST(eviction_hook_skips_deleted_and_other_handles) {
    char name[128];
    cachee_l0 *h = u_new(name, sizeof name, "hook2", 4 * MiB, 16 << 10);
    cachee_l0 *other = u_attach(name);
    struct seen s;
    memset(&s, 0, sizeof s);
    OK(cachee_l0_set_evict_hook(h, hook, &s));
    char key[32], val[1000];
    /* the other handle fills the region: its evictions are not ours */
    for (int i = 0; i < 20000; i++) {
        int kl = snprintf(key, sizeof key, "o-%d", i);
        for (size_t j = 0; j < sizeof val; j++) val[j] = key[j % (size_t)kl];
        OK(cachee_l0_set(other, key, (size_t)kl, val, sizeof val, "mm", 2, 0, 0));
    }
    CHECK(s.n == 0);
    /* keys we write and delete at once are garbage, never reported */
    for (int i = 0; i < 20000; i++) {
        int kl = snprintf(key, sizeof key, "d-%d", i);
        for (size_t j = 0; j < sizeof val; j++) val[j] = key[j % (size_t)kl];
        OK(cachee_l0_set(h, key, (size_t)kl, val, sizeof val, "mm", 2, 0, 0));
        OK(cachee_l0_delete(h, key, (size_t)kl));
    }
    CHECK(s.bad == 0);
    /* only live "o-" records the writer evicted, never a deleted "d-" one */
    CHECK(s.n == 0 || strncmp(s.key, "o-", 2) == 0);
    OK(cachee_l0_close(other));
    OK(cachee_l0_close(h));
    cachee_l0_unlink(name);
}

int main(int argc, char **argv) { return l0test_main(argc, argv); }
