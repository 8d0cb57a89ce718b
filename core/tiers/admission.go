package tiers

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachee-dev/cachee/core/l0"
)

// Admission into L0 (W-TinyLFU style).
//
// The engine counts every access it sees (reads of any tier, through this
// Cache) in a count-min sketch of 4-bit counters keyed by the key's XXH3
// hash, halved ("aged") after 10 x L0's entry capacity increments, so that
// frequencies follow the recent past. A value found below L0 enters L0 only
// if its estimated frequency is higher than that of what it would displace.
//
// What L0 would displace: L0 evicts by S3-FIFO over whole segments, inside
// whichever process needs room, so it has no single "victim" to compare
// with. The engine learns a threshold instead, from two cheap sources:
//
//  1. The records its own L0 handle evicts (the eviction hook, which it
//     uses anyway for demotion): the sketch estimate of each is folded into
//     an exponentially weighted moving average, the victim frequency. These
//     are L0's real victims, weighed by this process's view of their
//     popularity.
//  2. L0's stats, read at most every 100 ms: while L0 has free room (more
//     than 10% of its arena in free segments) nothing is displaced and
//     every candidate is admitted; and when L0 stops evicting for a while
//     the average decays toward 0.
//
// A candidate is admitted when its estimate exceeds the victim frequency.
// Evictions made by other processes (the Python workers writing L0
// themselves) are not seen by the hook; they still make L0 full, so the
// threshold is then what this process last learned, decaying slowly. This
// is an estimate, not W-TinyLFU's exact comparison with one victim; the
// promotion benchmark (bench/tiers) measures what it buys.
type admission struct {
	policy   Promote
	rows     [4][]uint64 // 16 four-bit counters per word
	mask     uint64      // counters per row - 1
	adds     atomic.Int64
	resetAt  int64
	resetMu  sync.Mutex
	victim   atomic.Uint64 // float64 bits: EWMA of victims' frequencies
	admitted atomic.Uint64
	rejected atomic.Uint64

	region    *l0.Region
	roomy     atomic.Bool  // L0 had free room at the last look
	lastLook  atomic.Int64 // unix ns of the last stats read
	lastEvict atomic.Uint64
}

// Promote is the admission policy into L0 for values found below it.
type Promote int

const (
	// PromoteTinyLFU admits a value when its estimated access frequency is
	// higher than that of what L0 evicts (the default).
	PromoteTinyLFU Promote = iota
	// PromoteAlways admits every value found below L0.
	PromoteAlways
	// PromoteNever admits none: values found below L0 stay in L1.
	PromoteNever
)

// String returns "tinylfu", "always" or "never".
func (p Promote) String() string {
	switch p {
	case PromoteAlways:
		return "always"
	case PromoteNever:
		return "never"
	}
	return "tinylfu"
}

func newAdmission(p Promote, r *l0.Region) *admission {
	entries := r.Info().MaxEntries
	if entries < 1024 {
		entries = 1024
	}
	width := uint64(1) << bits.Len64(entries-1) // counters per row >= entries
	a := &admission{policy: p, mask: width - 1, region: r}
	for i := range a.rows {
		a.rows[i] = make([]uint64, width/16)
	}
	a.resetAt = int64(10 * entries)
	a.roomy.Store(true)
	return a
}

var seeds = [4]uint64{0x9e3779b97f4a7c15, 0xc2b2ae3d27d4eb4f, 0x165667b19e3779f9, 0x27d4eb2f165667c5}

func (a *admission) index(h uint64, i int) (word, shift uint64) {
	x := (h ^ seeds[i]) * seeds[(i+1)&3]
	x ^= x >> 31
	c := x & a.mask
	return c >> 4, (c & 15) * 4
}

// record counts one access of the key with hash h.
func (a *admission) record(h uint64) {
	if a.policy != PromoteTinyLFU {
		return
	}
	for i := range a.rows {
		w, sh := a.index(h, i)
		p := &a.rows[i][w]
		for {
			old := atomic.LoadUint64(p)
			if (old>>sh)&15 == 15 {
				break
			}
			if atomic.CompareAndSwapUint64(p, old, old+(1<<sh)) {
				break
			}
		}
	}
	if a.adds.Add(1) >= a.resetAt && a.resetMu.TryLock() {
		a.age()
		a.resetMu.Unlock()
	}
}

// age halves every counter (racing increments may be lost: harmless).
func (a *admission) age() {
	a.adds.Store(0)
	const keep = 0x7777777777777777 // clears each nibble's high bit after >>1
	for i := range a.rows {
		for j := range a.rows[i] {
			p := &a.rows[i][j]
			for {
				old := atomic.LoadUint64(p)
				if atomic.CompareAndSwapUint64(p, old, (old>>1)&keep) {
					break
				}
			}
		}
	}
}

// estimate returns the sketch's frequency estimate of h (0..15).
func (a *admission) estimate(h uint64) uint64 {
	m := uint64(15)
	for i := range a.rows {
		w, sh := a.index(h, i)
		if v := (atomic.LoadUint64(&a.rows[i][w]) >> sh) & 15; v < m {
			m = v
		}
	}
	return m
}

// evicted folds the frequency of a record L0 evicted into the victim
// estimate.
func (a *admission) evicted(h uint64) {
	if a.policy != PromoteTinyLFU {
		return
	}
	f := float64(a.estimate(h))
	for {
		old := a.victim.Load()
		v := math.Float64frombits(old)
		nv := v + (f-v)/16
		if a.victim.CompareAndSwap(old, math.Float64bits(nv)) {
			return
		}
	}
}

// look refreshes what L0's stats say, at most every 100 ms.
func (a *admission) look() {
	now := time.Now().UnixNano()
	last := a.lastLook.Load()
	if now-last < int64(100*time.Millisecond) || !a.lastLook.CompareAndSwap(last, now) {
		return
	}
	st, err := a.region.Stats()
	if err != nil {
		return
	}
	a.roomy.Store(st.FreeBytes > st.Capacity/10)
	if st.Evictions == a.lastEvict.Load() {
		// No eviction since the last look: let the threshold decay.
		for {
			old := a.victim.Load()
			if a.victim.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)*0.75)) {
				break
			}
		}
	}
	a.lastEvict.Store(st.Evictions)
}

// admit decides whether a value of hash h found below L0 enters L0.
func (a *admission) admit(h uint64) bool {
	ok := false
	switch a.policy {
	case PromoteAlways:
		ok = true
	case PromoteNever:
		ok = false
	default:
		a.look()
		ok = a.roomy.Load() || float64(a.estimate(h)) > math.Float64frombits(a.victim.Load())
	}
	if ok {
		a.admitted.Add(1)
	} else {
		a.rejected.Add(1)
	}
	return ok
}

func (a *admission) victimFreq() float64 { return math.Float64frombits(a.victim.Load()) }
