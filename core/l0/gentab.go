package l0

/*
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "cachee_l0.h"

#cgo noescape l0go_promote
#cgo nocallback l0go_promote

// A queue of evicted records, filled by the eviction hook (C, on the
// evicting thread, under a shard lock) and drained by Go after the call that
// evicted.  Bounded by bytes: past cap, records are dropped and counted.
typedef struct l0go_evnode {
	struct l0go_evnode *next;
	uint64_t hash;
	int64_t expires_ns;
	uint32_t gen;
	uint32_t key_len, meta_len;
	uint64_t value_len;
	unsigned char data[]; // key, meta, value
} l0go_evnode;

typedef struct l0go_evq {
	pthread_mutex_t mu;
	l0go_evnode *head, *tail;
	uint64_t bytes, cap, dropped, pending;
} l0go_evq;

static void l0go_evq_hook(void *arg, const cachee_l0_evicted *e) {
	l0go_evq *q = arg;
	uint64_t n = sizeof(l0go_evnode) + e->key_len + e->meta_len + e->value_len;
	pthread_mutex_lock(&q->mu);
	if (q->bytes + n > q->cap) {
		q->dropped++;
		pthread_mutex_unlock(&q->mu);
		return;
	}
	q->bytes += n;
	pthread_mutex_unlock(&q->mu);
	l0go_evnode *nd = malloc(n);
	if (nd == NULL) {
		pthread_mutex_lock(&q->mu);
		q->bytes -= n;
		q->dropped++;
		pthread_mutex_unlock(&q->mu);
		return;
	}
	nd->next = NULL;
	nd->hash = e->key_hash;
	nd->expires_ns = e->expires_ns;
	nd->gen = e->generation;
	nd->key_len = (uint32_t)e->key_len;
	nd->meta_len = (uint32_t)e->meta_len;
	nd->value_len = e->value_len;
	memcpy(nd->data, e->key, e->key_len);
	if (e->meta_len) memcpy(nd->data + e->key_len, e->meta, e->meta_len);
	if (e->value_len) memcpy(nd->data + e->key_len + e->meta_len, e->value, e->value_len);
	pthread_mutex_lock(&q->mu);
	if (q->tail) q->tail->next = nd; else q->head = nd;
	q->tail = nd;
	__atomic_store_n(&q->pending, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&q->mu);
}

static l0go_evq *l0go_evq_new(cachee_l0 *h, uint64_t cap) {
	l0go_evq *q = calloc(1, sizeof *q);
	if (q == NULL) return NULL;
	pthread_mutex_init(&q->mu, NULL);
	q->cap = cap;
	cachee_l0_set_evict_hook(h, l0go_evq_hook, q);
	return q;
}

// Take the whole list; the caller frees each node (l0go_evq_release).
static l0go_evnode *l0go_evq_take(l0go_evq *q) {
	pthread_mutex_lock(&q->mu);
	l0go_evnode *n = q->head;
	q->head = q->tail = NULL;
	__atomic_store_n(&q->pending, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&q->mu);
	return n;
}

static void l0go_evq_release(l0go_evq *q, l0go_evnode *n) {
	uint64_t sz = sizeof(l0go_evnode) + n->key_len + n->meta_len + n->value_len;
	free(n);
	pthread_mutex_lock(&q->mu);
	q->bytes -= sz;
	pthread_mutex_unlock(&q->mu);
}

static uint64_t l0go_evq_dropped(l0go_evq *q) {
	pthread_mutex_lock(&q->mu);
	uint64_t d = q->dropped;
	pthread_mutex_unlock(&q->mu);
	return d;
}

static void l0go_evq_free(cachee_l0 *h, l0go_evq *q) {
	cachee_l0_set_evict_hook(h, NULL, NULL);
	l0go_evnode *n = l0go_evq_take(q);
	while (n) {
		l0go_evnode *next = n->next;
		free(n);
		n = next;
	}
	pthread_mutex_destroy(&q->mu);
	free(q);
}

static int l0go_promote(cachee_l0 *h, _GoString_ key, _GoString_ value,
                        _GoString_ meta, int64_t expires_ns, uint32_t gen) {
	return cachee_l0_promote(h, _GoStringLen(key) ? _GoStringPtr(key) : NULL,
	                         _GoStringLen(key),
	                         _GoStringLen(value) ? _GoStringPtr(value) : NULL,
	                         _GoStringLen(value),
	                         _GoStringLen(meta) ? _GoStringPtr(meta) : NULL,
	                         _GoStringLen(meta), expires_ns, gen);
}

static uint32_t l0go_gentab_index(uint64_t hash, uint32_t n) {
	return CACHEE_L0_GENTAB_INDEX(hash, n);
}
*/
import "C"

import (
	"sync/atomic"
	"unsafe"
)

// evictQueue holds the C queue the eviction hook fills.
type evictQueue struct{ q *C.l0go_evq }

func (r *Region) closeEvictions() {
	if r.evq != nil {
		C.l0go_evq_free(r.h, r.evq.q)
		r.evq = nil
	}
}

// gentab is the key generation table of a region (see KEY GENERATIONS in
// include/cachee_l0.h), read directly from the read-only mapping.
type gentab struct {
	base unsafe.Pointer
	mask uint64
}

func (r *Region) initGentab() {
	var n C.uint32_t
	p := C.cachee_l0_generation_table(r.h, &n)
	r.gens = gentab{base: unsafe.Pointer(p), mask: uint64(n) - 1}
	if uint32(C.l0go_gentab_index(C.uint64_t(1<<24), n)) != 1 {
		panic("l0: CACHEE_L0_GENTAB_INDEX changed; update Region.Generation")
	}
}

// Generation returns the generation counter of the key whose hash is
// keyHash (Hash of the key): every Set and Delete of the key, by any
// process, increments it; eviction, expiry and Promote do not. A copy of a
// value kept outside the region is current while the generation read before
// the copy was fetched is unchanged (see KEY GENERATIONS in
// include/cachee_l0.h). Keys may share a counter. Returns 0 after Close.
// It costs one atomic load of shared memory, no cgo call.
func (r *Region) Generation(keyHash uint64) uint32 {
	if r.closed.Load() {
		return 0
	}
	i := (keyHash >> 24) & r.gens.mask
	return atomic.LoadUint32((*uint32)(unsafe.Add(r.gens.base, i*4)))
}

// Promote stores a copy of a value kept outside the region back into it,
// only if the key is absent and its generation is still gen (read before
// the copy was fetched); it does not increment the generation. expiresNs is
// the absolute expiry (Unix nanoseconds), 0 for none.
//
// Errors: ErrExists (the key is present), ErrStale (the generation moved or
// the value expired: drop the copy), and those of SetWith.
func (r *Region) Promote(key, value, meta []byte, expiresNs int64, gen uint32) error {
	if r.closed.Load() {
		return ErrClosed
	}
	rc := C.l0go_promote(r.h, str(key), str(value), str(meta), C.int64_t(expiresNs), C.uint32_t(gen))
	if rc == 0 {
		return nil
	}
	return codeErr(rc)
}

// Evicted is a record that this Region's own evictions dropped from the
// region for lack of room (see EnableEvictions). Its slices are copies owned
// by the receiver.
type Evicted struct {
	Key, Value, Meta []byte
	// KeyHash is Hash(Key).
	KeyHash uint64
	// ExpiresNs is the absolute expiry (Unix nanoseconds), 0 for none.
	ExpiresNs int64
	// Generation is the key's generation at eviction (see Generation).
	Generation uint32
}

// EnableEvictions makes the evictions that this Region performs (inside its
// own Set, SetWith and Promote calls) keep a copy of every live, unexpired
// record they drop, to be collected with TakeEvicted. At most maxBytes of
// copies wait at a time; past that, records are dropped and counted
// (EvictionsDropped). Records evicted by other processes or other Regions
// are not reported. Call it before the Region is shared between goroutines;
// a second call is a no-op. Errors: ErrClosed, ErrInvalid (maxBytes <= 0).
func (r *Region) EnableEvictions(maxBytes int64) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if maxBytes <= 0 {
		return ErrInvalid
	}
	if r.evq != nil {
		return nil
	}
	q := C.l0go_evq_new(r.h, C.uint64_t(maxBytes))
	if q == nil {
		return ErrInvalid
	}
	r.evq = &evictQueue{q: q}
	return nil
}

// TakeEvicted calls fn for every record collected since the last call (see
// EnableEvictions), oldest first, and returns how many there were. It is
// cheap when there are none.
func (r *Region) TakeEvicted(fn func(*Evicted)) int {
	if r.evq == nil || r.closed.Load() {
		return 0
	}
	q := r.evq.q
	if atomic.LoadUint64((*uint64)(unsafe.Pointer(&q.pending))) == 0 {
		return 0
	}
	n := 0
	for nd := C.l0go_evq_take(q); nd != nil; {
		next := nd.next
		data := unsafe.Pointer(uintptr(unsafe.Pointer(nd)) + unsafe.Sizeof(*nd))
		kl, ml, vl := int(nd.key_len), int(nd.meta_len), int(nd.value_len)
		e := &Evicted{
			Key:        C.GoBytes(data, C.int(kl)),
			KeyHash:    uint64(nd.hash),
			ExpiresNs:  int64(nd.expires_ns),
			Generation: uint32(nd.gen),
		}
		// Metadata and value in one block, as they lie in the node: one
		// allocation, and one cache line or a few for a reader of both.
		mv := C.GoBytes(unsafe.Add(data, kl), C.int(ml+vl))
		if ml > 0 {
			e.Meta = mv[:ml:ml]
		}
		e.Value = mv[ml:]
		C.l0go_evq_release(q, nd)
		fn(e)
		n++
		nd = next
	}
	return n
}

// EvictionsDropped returns how many evicted records were not kept because
// maxBytes of copies were already waiting (see EnableEvictions).
func (r *Region) EvictionsDropped() uint64 {
	if r.evq == nil || r.closed.Load() {
		return 0
	}
	return uint64(C.l0go_evq_dropped(r.evq.q))
}
