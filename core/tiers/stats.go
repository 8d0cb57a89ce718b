package tiers

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// LatencyBounds are the upper bounds (inclusive, in nanoseconds) of the
// latency histogram buckets: powers of two from 128 ns to about 134 ms; a
// last bucket counts everything slower.
var LatencyBounds = func() []int64 {
	b := make([]int64, 21)
	for i := range b {
		b[i] = 128 << i
	}
	return b
}()

const nBuckets = 22 // len(LatencyBounds) + 1

// tierStats are the counters of one tier, updated atomically.
type tierStats struct {
	hits, misses, promotions, demotions, errors atomic.Uint64
	lat                                         [nBuckets]atomic.Uint64
}

func (s *tierStats) observe(d time.Duration) {
	ns := uint64(d)
	i := 0
	if ns > 128 {
		i = bits.Len64((ns - 1) >> 7)
		if i >= nBuckets {
			i = nBuckets - 1
		}
	}
	s.lat[i].Add(1)
}

// TierStats are the counters of one tier (Cache.Stats).
type TierStats struct {
	// Name is "l0", "l1", "nvme" or "redis".
	Name string `json:"name"`
	// Hits and Misses count reads this tier served or could not serve
	// through this Cache (L0 reads that the Python extension makes itself
	// are not counted here; see the L0 stats for those).
	Hits   uint64 `json:"hits"`
	Misses uint64 `json:"misses"`
	// Promotions counts values this tier served that were then admitted
	// into L0 (for "l0": every value admitted into L0).
	Promotions uint64 `json:"promotions"`
	// Demotions counts values this tier received from the tier above when
	// that tier evicted them (for "l1": values evicted from L0 by this
	// process).
	Demotions uint64 `json:"demotions"`
	// Errors counts failed calls of the tier.
	Errors uint64 `json:"errors"`
	// Entries, Bytes and CapacityBytes describe what the tier holds (0 when
	// unknown).
	Entries       uint64 `json:"entries"`
	Bytes         uint64 `json:"bytes"`
	CapacityBytes uint64 `json:"capacity_bytes"`
	// Latency is the histogram of the tier's read latency (L0 and L1:
	// one read in eight is timed; the other tiers: every call).
	Latency Histogram `json:"latency_ns"`
}

// Histogram is a latency histogram: Counts[i] counts observations at most
// Bounds[i] ns (and above Bounds[i-1]); the last count has no bound.
type Histogram struct {
	Bounds []int64  `json:"bounds"`
	Counts []uint64 `json:"counts"`
}

// AdmissionStats describe the admission policy into L0 (Cache.Stats).
type AdmissionStats struct {
	// Policy is "tinylfu", "always" or "never".
	Policy string `json:"policy"`
	// Admitted and Rejected count the decisions taken for values found
	// below L0.
	Admitted uint64 `json:"admitted"`
	Rejected uint64 `json:"rejected"`
	// VictimFrequency is the running estimate of the access frequency of
	// what L0 evicts (see admission.go).
	VictimFrequency float64 `json:"victim_frequency"`
	// EvictionsDropped counts L0 evictions that could not be demoted
	// because too many were waiting.
	EvictionsDropped uint64 `json:"evictions_dropped"`
}

// Stats is what Cache.Stats returns; its JSON form is the one of
// cachee_stats in include/cachee.h.
type Stats struct {
	Tiers     []TierStats    `json:"tiers"`
	Admission AdmissionStats `json:"admission"`
}

func (s *tierStats) snapshot(name string) TierStats {
	t := TierStats{
		Name:       name,
		Hits:       s.hits.Load(),
		Misses:     s.misses.Load(),
		Promotions: s.promotions.Load(),
		Demotions:  s.demotions.Load(),
		Errors:     s.errors.Load(),
		Latency:    Histogram{Bounds: LatencyBounds, Counts: make([]uint64, nBuckets)},
	}
	for i := range s.lat {
		t.Latency.Counts[i] = s.lat[i].Load()
	}
	return t
}
