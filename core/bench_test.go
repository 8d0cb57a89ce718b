package core_test

import (
	"fmt"
	"testing"

	"github.com/cachee-dev/cachee/core"
)

// BenchmarkGetL0Hit: a read through the engine that L0 serves (64 B).
func BenchmarkGetL0Hit(b *testing.B) {
	p := region(b, 64<<20)
	c := open(b, core.Config{Path: p, L1Bytes: 64 << 20})
	keys := make([][]byte, 10000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprint("bench-", i))
		c.Set(ctx, keys[i], make([]byte, 64), core.SetOptions{})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Get(ctx, keys[i%len(keys)], core.GetOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetL1Hit: a read that L1 serves (SkipL0, as the Python extension
// asks after its own L0 miss).
func BenchmarkGetL1Hit(b *testing.B) {
	p := region(b, 4<<20)
	c := open(b, core.Config{Path: p, L1Bytes: 256 << 20, Promote: core.PromoteNever})
	fill(b, c, "b", 12000)
	var keys [][]byte
	for i := 0; i < 12000; i++ {
		k := []byte(fmt.Sprint("b-", i))
		if v, err := c.Get(ctx, k, core.GetOptions{SkipL0: true}); err == nil && v.Tier == core.TierL1 {
			keys = append(keys, k)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Get(ctx, keys[i%len(keys)], core.GetOptions{SkipL0: true, NoPromote: true})
	}
}
