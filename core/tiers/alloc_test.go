package tiers_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cachee-dev/cachee/core/tiers"
)

// A hit in L0 or L1 read with GetInto into large enough buffers allocates
// nothing (the ABI's read path depends on it); Get's copies are its only
// allocations.
func TestGetIntoDoesNotAllocate(t *testing.T) {
	for _, promote := range []tiers.Promote{tiers.PromoteTinyLFU, tiers.PromoteNever} {
		t.Run(promote.String(), func(t *testing.T) {
			p := region(t, 4<<20)
			c := open(t, tiers.Config{Path: p, L1Bytes: 64 << 20, Promote: promote})
			fill(t, c, "a", 12000)
			var inL0, inL1 []byte
			for i := 0; i < 12000 && (inL0 == nil || inL1 == nil); i++ {
				k := []byte(fmt.Sprintf("a-%d", i))
				if v, err := c.Get(ctx, k, tiers.GetOptions{NoPromote: true}); err == nil {
					switch {
					case v.Tier == tiers.TierL0 && inL0 == nil:
						inL0 = k
					case v.Tier == tiers.TierL1 && inL1 == nil:
						inL1 = k
					}
				}
			}
			if inL0 == nil || inL1 == nil {
				t.Fatalf("no key in L0 (%q) or L1 (%q)", inL0, inL1)
			}
			data, meta := make([]byte, 0, 4096), make([]byte, 0, 512)
			for _, k := range []struct {
				key  []byte
				tier tiers.TierKind
				o    tiers.GetOptions
			}{
				{inL0, tiers.TierL0, tiers.GetOptions{}},
				{inL1, tiers.TierL1, tiers.GetOptions{SkipL0: true, NoPromote: true}},
				{inL1, tiers.TierL1, tiers.GetOptions{NoPromote: true}},
			} {
				check := func() {
					v, err := c.GetInto(ctx, k.key, k.o, data, meta)
					if err != nil || v.Tier != k.tier || len(v.Data) != 1000 || &v.Data[0] != &data[:1][0] {
						t.Fatalf("%s: %v tier %v len %d", k.key, err, v.Tier, len(v.Data))
					}
				}
				if n := testing.AllocsPerRun(200, check); n != 0 {
					t.Errorf("GetInto %s (%v, %+v): %v allocations per call", k.key, k.tier, k.o, n)
				}
			}
			// Get copies: exactly one allocation for the value here.
			if n := testing.AllocsPerRun(200, func() {
				v, err := c.Get(ctx, inL1, tiers.GetOptions{SkipL0: true, NoPromote: true})
				if err != nil || len(v.Data) != 1000 || bytes.Count(v.Data, v.Data[:1]) != 1000 {
					t.Fatal(err)
				}
			}); n != 1 {
				t.Errorf("Get of an L1 hit: %v allocations, want 1 (the copy)", n)
			}
		})
	}
}
