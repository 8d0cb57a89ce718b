package tiers_test

import (
	"fmt"
	"testing"

	"github.com/cachee-dev/cachee/core/tiers"
)

// BenchmarkGetL0Hit: a read through the engine that L0 serves (64 B).
func BenchmarkGetL0Hit(b *testing.B) {
	p := region(b, 64<<20)
	c := open(b, tiers.Config{Path: p, L1Bytes: 64 << 20})
	keys := make([][]byte, 10000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprint("bench-", i))
		c.Set(ctx, keys[i], make([]byte, 64), tiers.SetOptions{})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Get(ctx, keys[i%len(keys)], tiers.GetOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetL1Hit: a read that L1 serves (SkipL0, as the Python extension
// asks after its own L0 miss).
func BenchmarkGetL1Hit(b *testing.B) {
	p := region(b, 4<<20)
	c := open(b, tiers.Config{Path: p, L1Bytes: 256 << 20, Promote: tiers.PromoteNever})
	fill(b, c, "b", 12000)
	var keys [][]byte
	for i := 0; i < 12000; i++ {
		k := []byte(fmt.Sprint("b-", i))
		if v, err := c.Get(ctx, k, tiers.GetOptions{SkipL0: true}); err == nil && v.Tier == tiers.TierL1 {
			keys = append(keys, k)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Get(ctx, keys[i%len(keys)], tiers.GetOptions{SkipL0: true, NoPromote: true})
	}
}

// BenchmarkGetIntoHit: GetInto (the ABI's read: into buffers of the
// caller's, no allocation) of an L0 or L1 hit, with the admission policy's
// bookkeeping (tinylfu counts every read in its sketch) or without (never).
func BenchmarkGetIntoHit(b *testing.B) {
	for _, promote := range []tiers.Promote{tiers.PromoteTinyLFU, tiers.PromoteNever} {
		p := region(b, 4<<20)
		c := open(b, tiers.Config{Path: p, L1Bytes: 256 << 20, Promote: promote})
		fill(b, c, "b", 12000)
		var inL0, inL1 [][]byte
		for i := 0; i < 12000; i++ {
			k := []byte(fmt.Sprint("b-", i))
			if v, err := c.Get(ctx, k, tiers.GetOptions{NoPromote: true}); err == nil {
				if v.Tier == tiers.TierL0 {
					inL0 = append(inL0, k)
				} else {
					inL1 = append(inL1, k)
				}
			}
		}
		data, meta := make([]byte, 0, 4096), make([]byte, 0, 512)
		for _, t := range []struct {
			name string
			keys [][]byte
			o    tiers.GetOptions
		}{
			{"L0", inL0, tiers.GetOptions{}},
			{"L1", inL1, tiers.GetOptions{SkipL0: true, NoPromote: true}},
		} {
			b.Run(t.name+"/"+promote.String(), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					c.GetInto(ctx, t.keys[i%len(t.keys)], t.o, data, meta)
				}
			})
		}
	}
}
