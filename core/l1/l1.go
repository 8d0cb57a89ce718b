// Package l1 is cachee's per-process tier: an in-memory W-TinyLFU cache
// (github.com/maypok86/otter/v2) bounded by bytes, with a per-entry expiry.
//
// L1 is where values wait until they earn a place in L0, the shared-memory
// table: values demoted out of L0 by this process, and values read from a
// lower tier that the admission policy kept out of L0. It is private to one
// process, so the tier engine (package tiers, core/tiers) guards every entry with the L0
// generation of its key (see Entry.Gen): a value another process has since
// rewritten or deleted is never served from here.
//
// A Cache is safe for concurrent use. Close stops the goroutines it started
// and must be the last call.
package l1

import (
	"math"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"
)

// Overhead is the bytes counted for each entry beyond its key, value and
// metadata: otter's node, the Entry struct and the slice headers, roughly.
const Overhead = 128

// Entry is one value held in L1. Its byte slices belong to the cache once
// stored: callers must not modify them afterwards, and must not modify the
// slices of an Entry returned by Get.
type Entry struct {
	// Value is the value bytes.
	Value []byte
	// Meta is the metadata stored beside the value (opaque).
	Meta []byte
	// ExpiresNs is the absolute expiry (CLOCK_REALTIME nanoseconds since
	// 1970); 0 means never.
	ExpiresNs int64
	// Gen is the L0 generation of the key read before the value was
	// fetched (core/l0 Region.Generation); the engine drops an entry whose
	// key's generation has moved since.
	Gen uint32
}

// NewEntry returns an Entry holding copies of value and meta in one new
// block, value first: one allocation, and a reader of both touches one
// block (the metadata of a NumPy array sits right after its bytes).
func NewEntry(value, meta []byte, expiresNs int64, gen uint32) *Entry {
	e := &Entry{ExpiresNs: expiresNs, Gen: gen}
	if n := len(value) + len(meta); n > 0 {
		b := make([]byte, n)
		copy(b, value)
		copy(b[len(value):], meta)
		if len(value) > 0 {
			e.Value = b[:len(value):len(value)]
		}
		if len(meta) > 0 {
			e.Meta = b[len(value):]
		}
	}
	return e
}

// Weight returns the bytes an entry of this key counts against the capacity.
func Weight(key string, e *Entry) uint64 {
	return uint64(len(key)) + uint64(len(e.Value)) + uint64(len(e.Meta)) + Overhead
}

// Cache is a byte-bounded L1 cache.
type Cache struct {
	c        *otter.Cache[string, *Entry]
	capacity uint64
}

// left turns Entry.ExpiresNs into otter's per-entry duration.
func left(e *Entry) time.Duration {
	if e.ExpiresNs == 0 {
		return math.MaxInt64
	}
	d := time.Duration(e.ExpiresNs - time.Now().UnixNano())
	if d < 0 {
		return 0
	}
	return d
}

// New returns a cache holding at most capacity bytes (Weight of every entry
// summed).
func New(capacity uint64) (*Cache, error) {
	l := &Cache{capacity: capacity}
	c, err := otter.New(&otter.Options[string, *Entry]{
		MaximumWeight: capacity,
		Weigher: func(k string, e *Entry) uint32 {
			w := Weight(k, e)
			if w > math.MaxUint32 {
				return math.MaxUint32
			}
			return uint32(w)
		},
		// The expiry is set when an entry is written and never moved by a
		// read (a read-expiry calculator makes every read recompute it and
		// reschedule the node in the timer wheel).
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *Entry]) time.Duration {
			return left(e.Value)
		}),
		// Maintenance (replaying the read and write buffers into the
		// policy, evicting) runs on the goroutine that calls the cache, a
		// pass every 16 reads or so, instead of on a new goroutine each
		// time: starting a goroutine and waking a thread for it cost more
		// than the pass (measured through the ABI, bench/tiers). The cache
		// calls itself from no callback, so a synchronous executor cannot
		// deadlock it (see otter's Options.Executor).
		Executor: func(fn func()) { fn() },
	})
	if err != nil {
		return nil, err
	}
	l.c = c
	return l, nil
}

// Get returns the entry of key, or nil if it is absent or expired. key is
// not kept after Get returns, so it may view memory that the caller reuses
// (a string made with unsafe.String over a byte slice).
func (l *Cache) Get(key string) *Entry {
	e, ok := l.c.GetIfPresent(key)
	if !ok {
		return nil
	}
	if e.ExpiresNs != 0 && time.Now().UnixNano() >= e.ExpiresNs {
		l.c.Invalidate(strings.Clone(key)) // key may view the caller's memory
		return nil
	}
	return e
}

// Set stores e under key, replacing any previous entry. An entry heavier
// than the whole capacity, or already expired, is not stored.
func (l *Cache) Set(key string, e *Entry) {
	if Weight(key, e) > l.capacity {
		l.c.Invalidate(key)
		return
	}
	if e.ExpiresNs != 0 && time.Now().UnixNano() >= e.ExpiresNs {
		l.c.Invalidate(key)
		return
	}
	l.c.Set(key, e)
}

// Delete drops key; it reports whether an entry was there.
func (l *Cache) Delete(key string) bool {
	_, ok := l.c.Invalidate(key)
	return ok
}

// DeleteIf drops key if its entry is still e (compared by identity), so that
// a stale entry found by a reader does not remove a newer one.
func (l *Cache) DeleteIf(key string, e *Entry) {
	l.c.ComputeIfPresent(key, func(old *Entry) (*Entry, otter.ComputeOp) {
		if old == e {
			return nil, otter.InvalidateOp
		}
		return old, otter.CancelOp
	})
}

// Len returns the approximate number of entries.
func (l *Cache) Len() int { return l.c.EstimatedSize() }

// Bytes returns the weight of the entries held (approximate while writers
// run).
func (l *Cache) Bytes() uint64 { return l.c.WeightedSize() }

// Capacity returns the capacity in bytes.
func (l *Cache) Capacity() uint64 { return l.capacity }

// Close drops every entry and stops the goroutine of the cache (otter's
// periodic clean-up). Close must be the last call.
func (l *Cache) Close() {
	l.c.InvalidateAll()
	l.c.StopAllGoroutines()
}
