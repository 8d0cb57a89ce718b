/*
 * evictq.c -- the eviction queue: an eviction hook that keeps copies of the
 * records a process's writes evict, in a bounded queue the process drains
 * after the call (see EVICTION QUEUE in cachee_l0.h).  The Go binding and
 * the Python extension both demote through it.
 *
 * The hook runs on the evicting thread with a shard lock held: it copies
 * under no lock of ours except the queue's own mutex, taken twice for a few
 * instructions (reserve the bytes, then append), never while copying.
 */
#include "l0_internal.h"

#include <pthread.h>
#include <stdlib.h>

struct cachee_l0_evq {
    pthread_mutex_t mu;
    cachee_l0_evrec *head, *tail;
    uint64_t bytes, cap;
    int active;              /* atomic: queue records */
    int pending;             /* atomic: head != NULL */
    uint64_t queued, dropped; /* atomic */
};

static uint64_t rec_size(uint64_t key_len, uint64_t meta_len, uint64_t value_len) {
    return sizeof(cachee_l0_evrec) + key_len + meta_len + value_len;
}

cachee_l0_evq *cachee_l0_evq_new(uint64_t cap_bytes) {
    if (cap_bytes == 0) return NULL;
    cachee_l0_evq *q = calloc(1, sizeof *q);
    if (q == NULL) return NULL;
    if (pthread_mutex_init(&q->mu, NULL) != 0) {
        free(q);
        return NULL;
    }
    q->cap = cap_bytes;
    q->active = 1;
    return q;
}

void cachee_l0_evq_hook(void *arg, const cachee_l0_evicted *e) {
    cachee_l0_evq *q = arg;
    if (q == NULL || !__atomic_load_n(&q->active, __ATOMIC_ACQUIRE)) return;
    uint64_t n = rec_size(e->key_len, e->meta_len, e->value_len);
    pthread_mutex_lock(&q->mu);
    bool fits = q->bytes + n <= q->cap;
    if (fits) q->bytes += n;
    pthread_mutex_unlock(&q->mu);
    cachee_l0_evrec *r = fits ? malloc(n) : NULL;
    if (r == NULL) {
        if (fits) {
            pthread_mutex_lock(&q->mu);
            q->bytes -= n;
            pthread_mutex_unlock(&q->mu);
        }
        __atomic_add_fetch(&q->dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    r->next = NULL;
    r->key_hash = e->key_hash;
    r->expires_ns = e->expires_ns;
    r->generation = e->generation;
    r->key_len = (uint32_t)e->key_len;
    r->meta_len = (uint32_t)e->meta_len;
    r->reserved_ = 0;
    r->value_len = e->value_len;
    memcpy(r->data, e->key, e->key_len);
    if (e->meta_len) memcpy(r->data + e->key_len, e->meta, e->meta_len);
    if (e->value_len) memcpy(r->data + e->key_len + e->meta_len, e->value, e->value_len);
    pthread_mutex_lock(&q->mu);
    if (q->tail) q->tail->next = r;
    else q->head = r;
    q->tail = r;
    __atomic_store_n(&q->pending, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&q->mu);
    __atomic_add_fetch(&q->queued, 1, __ATOMIC_RELAXED);
}

void cachee_l0_evq_set_active(cachee_l0_evq *q, int active) {
    if (q) __atomic_store_n(&q->active, active ? 1 : 0, __ATOMIC_RELEASE);
}

int cachee_l0_evq_pending(const cachee_l0_evq *q) {
    return q != NULL && __atomic_load_n(&q->pending, __ATOMIC_ACQUIRE) != 0;
}

cachee_l0_evrec *cachee_l0_evq_take(cachee_l0_evq *q, size_t *count) {
    if (count) *count = 0;
    if (q == NULL) return NULL;
    pthread_mutex_lock(&q->mu);
    cachee_l0_evrec *head = q->head;
    q->head = q->tail = NULL;
    __atomic_store_n(&q->pending, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&q->mu);
    if (count)
        for (cachee_l0_evrec *r = head; r; r = r->next) (*count)++;
    return head;
}

void cachee_l0_evq_release(cachee_l0_evq *q, cachee_l0_evrec *list) {
    uint64_t bytes = 0;
    while (list) {
        cachee_l0_evrec *next = list->next;
        bytes += rec_size(list->key_len, list->meta_len, list->value_len);
        free(list);
        list = next;
    }
    if (q && bytes) {
        pthread_mutex_lock(&q->mu);
        q->bytes -= bytes;
        pthread_mutex_unlock(&q->mu);
    }
}

void cachee_l0_evq_stats_get(cachee_l0_evq *q, cachee_l0_evq_stats *out) {
    memset(out, 0, sizeof *out);
    if (q == NULL) return;
    pthread_mutex_lock(&q->mu);
    out->bytes = q->bytes;
    out->cap = q->cap;
    pthread_mutex_unlock(&q->mu);
    out->queued = __atomic_load_n(&q->queued, __ATOMIC_RELAXED);
    out->dropped = __atomic_load_n(&q->dropped, __ATOMIC_RELAXED);
}

void cachee_l0_evq_free(cachee_l0_evq *q) {
    if (q == NULL) return;
    cachee_l0_evq_release(NULL, cachee_l0_evq_take(q, NULL));
    pthread_mutex_destroy(&q->mu);
    free(q);
}
