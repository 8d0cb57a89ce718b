// Key generations (KEY GENERATIONS in include/cachee_l0.h): the counters
// that tell a copy kept outside L0 whether its key was written since, and
// Promote, which puts such a copy back.

package l0

/*
#include "cachee_l0.h"

#cgo noescape bind_promote
#cgo nocallback bind_promote

static int bind_promote(cachee_l0 *h, _GoString_ key, _GoString_ value,
                        _GoString_ meta, int64_t expires_ns, uint32_t gen) {
	return cachee_l0_promote(h, _GoStringLen(key) ? _GoStringPtr(key) : NULL,
	                         _GoStringLen(key),
	                         _GoStringLen(value) ? _GoStringPtr(value) : NULL,
	                         _GoStringLen(value),
	                         _GoStringLen(meta) ? _GoStringPtr(meta) : NULL,
	                         _GoStringLen(meta), expires_ns, gen);
}

static uint32_t bind_keygen_index(uint64_t hash, uint32_t n) {
	return CACHEE_L0_KEYGEN_INDEX(hash, n);
}
*/
import "C"

import (
	"sync/atomic"
	"unsafe"
)

// keyGens is the key generation table of a region (see KEY GENERATIONS in
// include/cachee_l0.h), read directly from the read-only mapping.
type keyGens struct {
	base unsafe.Pointer
	mask uint64
}

func (r *Region) initKeyGens() {
	var n C.uint32_t
	p := C.cachee_l0_generation_table(r.h, &n)
	r.gens = keyGens{base: unsafe.Pointer(p), mask: uint64(n) - 1}
	if uint32(C.bind_keygen_index(C.uint64_t(1<<24), n)) != 1 {
		panic("l0: CACHEE_L0_KEYGEN_INDEX changed; update Region.Generation")
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
	rc := C.bind_promote(r.h, str(key), str(value), str(meta), C.int64_t(expiresNs), C.uint32_t(gen))
	if rc == 0 {
		return nil
	}
	return codeErr(rc)
}
