// Evictions this process's Region performs, kept for a slower tier
// (demotion): the engine's eviction queue (EVICTION QUEUE in
// include/cachee_l0.h), drained from Go.

package l0

/*
#include "cachee_l0.h"

// The eviction queue is the engine's (evictq.c, EVICTION QUEUE in
// cachee_l0.h); Go only drains it.
static cachee_l0_evq *bind_evq_new(cachee_l0 *h, uint64_t cap) {
	cachee_l0_evq *q = cachee_l0_evq_new(cap);
	if (q != NULL) cachee_l0_set_evict_hook(h, cachee_l0_evq_hook, q);
	return q;
}

static void bind_evq_free(cachee_l0 *h, cachee_l0_evq *q) {
	cachee_l0_set_evict_hook(h, NULL, NULL);
	cachee_l0_evq_free(q);
}
*/
import "C"

import "unsafe"

// evictQueue holds the C queue the eviction hook fills.
type evictQueue struct{ q *C.cachee_l0_evq }

func (r *Region) closeEvictions() {
	if r.evq != nil {
		C.bind_evq_free(r.h, r.evq.q)
		r.evq = nil
	}
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
	q := C.bind_evq_new(r.h, C.uint64_t(maxBytes))
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
	if C.cachee_l0_evq_pending(q) == 0 {
		return 0
	}
	list := C.cachee_l0_evq_take(q, nil)
	defer C.cachee_l0_evq_release(q, list)
	n := 0
	for nd := list; nd != nil; nd = nd.next {
		data := unsafe.Pointer(uintptr(unsafe.Pointer(nd)) + unsafe.Sizeof(*nd))
		kl, ml, vl := int(nd.key_len), int(nd.meta_len), int(nd.value_len)
		e := &Evicted{
			Key:        C.GoBytes(data, C.int(kl)),
			KeyHash:    uint64(nd.key_hash),
			ExpiresNs:  int64(nd.expires_ns),
			Generation: uint32(nd.generation),
		}
		// Metadata and value in one block, as they lie in the record: one
		// allocation, and one cache line or a few for a reader of both.
		mv := C.GoBytes(unsafe.Add(data, kl), C.int(ml+vl))
		if ml > 0 {
			e.Meta = mv[:ml:ml]
		}
		e.Value = mv[ml:]
		fn(e)
		n++
	}
	return n
}

// EvictionsDropped returns how many evicted records were not kept because
// maxBytes of copies were already waiting (see EnableEvictions).
func (r *Region) EvictionsDropped() uint64 {
	if r.evq == nil || r.closed.Load() {
		return 0
	}
	var st C.cachee_l0_evq_stats
	C.cachee_l0_evq_stats_get(r.evq.q, &st)
	return uint64(st.dropped)
}
