package l0

/*
#cgo noescape bind_get_pinned
#cgo nocallback bind_get_pinned
#cgo noescape bind_release
#cgo nocallback bind_release
#cgo noescape bind_get_many
#cgo nocallback bind_get_many

#include <stddef.h>
#include <string.h>
#include "cachee_l0.h"

// A pinned read with the view returned by value, and a release taking it by
// value (see the wrappers of l0.go: no cgo pointer checks on the hot path).
typedef struct bind_pin {
	int rc;
	cachee_l0_view v;
} bind_pin;

static bind_pin bind_get_pinned(cachee_l0 *h, _GoString_ key) {
	bind_pin p;
	const void *k = _GoStringLen(key) ? (const void *)_GoStringPtr(key) : NULL;
	p.rc = cachee_l0_get_pinned(h, k, _GoStringLen(key), &p.v);
	return p;
}

// The view arrives as the bytes of the Go copy (a string: no pointer check).
static int bind_release(cachee_l0 *h, _GoString_ view) {
	cachee_l0_view v;
	if (_GoStringLen(view) != sizeof v) return CACHEE_L0_E_INVAL;
	memcpy(&v, _GoStringPtr(view), sizeof v);
	return cachee_l0_release(h, &v);
}

// cachee_l0_get_many over keys laid end to end in one buffer (Go may not
// hand C an array of Go pointers without pinning each of them).  Never
// fails as a whole: an error of a chunk is reported for each of its keys.
static void bind_get_many(cachee_l0 *h, size_t n, const unsigned char *keybuf,
                          const size_t *key_lens, cachee_l0_view *views,
                          int *results) {
	enum { CHUNK = 64 };
	const void *ptrs[CHUNK];
	size_t off = 0;
	for (size_t i = 0; i < n; i += CHUNK) {
		size_t m = n - i < CHUNK ? n - i : CHUNK;
		for (size_t j = 0; j < m; j++) {
			ptrs[j] = keybuf ? (const void *)(keybuf + off) : NULL;
			off += key_lens[i + j];
		}
		int rc = cachee_l0_get_many(h, m, ptrs, key_lens + i, views + i,
		                            results + i);
		if (rc != 0)
			for (size_t j = 0; j < m; j++) results[i + j] = rc;
	}
}
*/
import "C"

import (
	"sync/atomic"
	"time"
	"unsafe"
)

// Pinned is a zero-copy view of a stored value: its bytes stay in the
// region's shared memory (a read-only mapping) and stay valid and unchanged
// until Release, even if the key is overwritten, deleted, expired or evicted
// meanwhile. A pinned version is never reused, but it never blocks a writer
// either: if pins hold all the space, writes fail with ErrFull. Release every
// Pinned (a pin that is never released holds its segment until Close).
//
// The methods of a Pinned may be called from any goroutine. Bytes and Meta
// return slices over shared memory: they must not be written to (the mapping
// is PROT_READ, a write faults) and must not be used after Release or after
// the Region's Close.
type Pinned struct {
	r        *Region
	view     C.cachee_l0_view
	released atomic.Bool
}

// Bytes returns the value: a slice over the read-only shared mapping (no
// copy). It returns nil after Release or Close.
func (p *Pinned) Bytes() []byte {
	if p.released.Load() || p.r.closed.Load() {
		return nil
	}
	return unsafe.Slice((*byte)(p.view.data), int(p.view.len))
}

// Meta returns the metadata stored with the value, a slice over the read-only
// shared mapping like Bytes. It returns nil after Release or Close.
func (p *Pinned) Meta() []byte {
	if p.released.Load() || p.r.closed.Load() {
		return nil
	}
	return unsafe.Slice((*byte)(p.view.meta), int(p.view.meta_len))
}

// Len returns the length of the value (also after Release).
func (p *Pinned) Len() int { return int(p.view.len) }

// Version returns the record's version (see Item.Version).
func (p *Pinned) Version() uint64 { return uint64(p.view.version) }

// Expires returns the expiry time of the stored version; the zero Time means
// never.
func (p *Pinned) Expires() time.Time {
	if p.view.expires_ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(p.view.expires_ns))
}

// Release drops the pin: the bytes may be reused afterwards and Bytes returns
// nil. It is safe to call more than once, from any goroutine: exactly one
// call releases the pin, and every later call (or a concurrent loser)
// returns ErrBadPin without touching the region. After the Region's Close it
// returns ErrClosed (Close already dropped the pin). A nil *Pinned returns
// ErrBadPin.
func (p *Pinned) Release() error {
	if p == nil || !p.released.CompareAndSwap(false, true) {
		return ErrBadPin
	}
	if p.r.closed.Load() {
		return ErrClosed
	}
	view := unsafe.String((*byte)(unsafe.Pointer(&p.view)), unsafe.Sizeof(p.view))
	rc := C.bind_release(p.r.h, view)
	if rc == 0 {
		return nil
	}
	return codeErr(rc)
}

// GetPinned finds key and pins the stored version (see Pinned). Errors:
// ErrNotFound (absent or expired), ErrInvalid (empty key), ErrKeyTooLarge,
// ErrTooManyPins (65535 pins of this process on one segment),
// ErrTooManyProcs, ErrCorrupt, ErrClosed. On error the *Pinned is nil.
func (r *Region) GetPinned(key []byte) (*Pinned, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	res := C.bind_get_pinned(r.h, str(key))
	if res.rc != 0 {
		return nil, codeErr(res.rc)
	}
	return &Pinned{r: r, view: res.v}, nil
}

// GetMany looks up every key in one call to the engine (the lookups are
// interleaved with prefetches, so a batch costs less than separate
// GetPinned calls). For each i, either pinned[i] is a pinned view (release
// it) and errs[i] is nil, or pinned[i] is nil and errs[i] is an error as for
// GetPinned (ErrNotFound for a miss). Both slices have len(keys) elements.
// The keys are copied once into a single buffer (cgo may not receive an
// array of Go pointers without pinning each of them).
func (r *Region) GetMany(keys [][]byte) (pinned []*Pinned, errs []error) {
	n := len(keys)
	pinned = make([]*Pinned, n)
	errs = make([]error, n)
	if n == 0 {
		return pinned, errs
	}
	if r.closed.Load() {
		for i := range errs {
			errs[i] = ErrClosed
		}
		return pinned, errs
	}
	total := 0
	for _, k := range keys {
		total += len(k)
	}
	keybuf := make([]byte, 0, total)
	lens := make([]C.size_t, n)
	for i, k := range keys {
		keybuf = append(keybuf, k...)
		lens[i] = C.size_t(len(k))
	}
	views := make([]C.cachee_l0_view, n)
	results := make([]C.int, n)
	C.bind_get_many(r.h, C.size_t(n), (*C.uchar)(bptr(keybuf)), &lens[0],
		&views[0], &results[0])
	hits := 0
	for i := range results {
		if results[i] == 0 {
			hits++
		}
	}
	store := make([]Pinned, hits)
	j := 0
	for i := range results {
		if results[i] != 0 {
			errs[i] = codeErr(results[i])
			continue
		}
		p := &store[j]
		j++
		p.r, p.view = r, views[i]
		pinned[i] = p
	}
	return pinned, errs
}
