// Package keystream generates the request streams the Go benchmarks replay.
package keystream

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Zipf draws n requests over k keys with P(rank r) proportional to
// 1/r^alpha (r = 1..k), by inverse CDF: a binary search of a uniform draw in
// the cumulative weights, so any alpha > 0 works (math/rand's Zipf needs
// s > 1). Rank r is key r-1, unless permute is set: then ranks map to keys
// through a random permutation drawn first, so that popularity is unrelated
// to key order. The same arguments give the same stream.
func Zipf(k, n int, alpha float64, seed uint64, permute bool) []int32 {
	cdf := make([]float64, k)
	sum := 0.0
	for r := 1; r <= k; r++ {
		sum += 1 / math.Pow(float64(r), alpha)
		cdf[r-1] = sum
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var perm []int
	if permute {
		perm = rng.Perm(k)
	}
	out := make([]int32, n)
	for i := range out {
		r := sort.SearchFloat64s(cdf, rng.Float64()*sum)
		if r >= k {
			r = k - 1
		}
		if perm != nil {
			r = perm[r]
		}
		out[i] = int32(r)
	}
	return out
}
