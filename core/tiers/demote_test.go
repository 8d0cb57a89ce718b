package tiers_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cachee-dev/cachee/core/l0"
	"github.com/cachee-dev/cachee/core/tiers"
)

// Records evicted by another L0 handle of the process (the Python
// extension's) reach L1 through Demote, guarded by the generation captured
// at eviction.
func TestDemoteFromAnotherHandle(t *testing.T) {
	p := region(t, 4<<20)
	c := open(t, tiers.Config{Path: p, L1Bytes: 1 << 20, Promote: tiers.PromoteNever})
	other, err := l0.Open(p, l0.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	gen := func(k string) uint32 { return other.Generation(l0.Hash([]byte(k))) }

	// "a": current at demotion; "b": rewritten after its eviction;
	// "c": expired; "d": deleted after its eviction.
	for _, k := range []string{"a", "b", "c", "d"} {
		if err := other.Set([]byte(k), []byte("old-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	recs := []tiers.Demoted{
		{Key: []byte("a"), Value: []byte("val-a"), Meta: []byte("m"), Generation: gen("a")},
		{Key: []byte("b"), Value: []byte("old-b"), Generation: gen("b")},
		{Key: []byte("c"), Value: []byte("old-c"), Generation: gen("c"), ExpiresNs: time.Now().Add(-time.Second).UnixNano()},
		{Key: []byte("d"), Value: []byte("old-d"), Generation: gen("d")},
	}
	// The records stand for evictions; the keys stay in L0 here, so the
	// reads below start at L1 (SkipL0).
	if err := other.Set([]byte("b"), []byte("new-b")); err != nil {
		t.Fatal(err)
	}
	if err := other.Delete([]byte("d")); err != nil {
		t.Fatal(err)
	}
	n, err := c.Demote(recs)
	if err != nil || n != 1 {
		t.Fatalf("Demote = %d, %v; want 1 stored", n, err)
	}
	v, err := c.Get(ctx, []byte("a"), tiers.GetOptions{SkipL0: true})
	if err != nil || v.Tier != tiers.TierL1 || !bytes.Equal(v.Data, []byte("val-a")) || !bytes.Equal(v.Meta, []byte("m")) {
		t.Fatalf("a: %+v, %v", v, err)
	}
	for _, k := range []string{"b", "c", "d"} {
		if _, err := c.Get(ctx, []byte(k), tiers.GetOptions{SkipL0: true}); !errors.Is(err, tiers.ErrNotFound) {
			t.Fatalf("%s served from L1 after it was rewritten/expired/deleted: %v", k, err)
		}
	}
	// A write by another handle after the demotion invalidates the copy.
	if err := other.Set([]byte("a"), []byte("newer")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, []byte("a"), tiers.GetOptions{SkipL0: true}); !errors.Is(err, tiers.ErrNotFound) {
		t.Fatalf("a served from L1 after a rewrite: %v", err)
	}
	st, _ := c.Stats()
	if st.Tiers[1].Name != "l1" || st.Tiers[1].Demotions != 1 {
		t.Fatalf("l1 stats %+v", st.Tiers[1])
	}
}

func TestDemoteInvalidStoresNothing(t *testing.T) {
	p := region(t, 4<<20)
	c := open(t, tiers.Config{Path: p, L1Bytes: 1 << 20})
	good := tiers.Demoted{Key: []byte("k"), Value: []byte("v")}
	for _, bad := range []tiers.Demoted{
		{Key: nil, Value: []byte("v")},
		{Key: make([]byte, l0.KeyMax+1)},
		{Key: []byte("x"), Meta: make([]byte, l0.MetaMax+1)},
		{Key: []byte("x"), ExpiresNs: -1},
	} {
		if n, err := c.Demote([]tiers.Demoted{good, bad}); !errors.Is(err, tiers.ErrInvalid) || n != 0 {
			t.Fatalf("Demote(%v) = %d, %v", bad, n, err)
		}
	}
	st, _ := c.Stats()
	if st.Tiers[1].Entries != 0 || st.Tiers[1].Demotions != 0 {
		t.Fatalf("an invalid batch stored something: %+v", st.Tiers[1])
	}
	// Without L1 nothing is stored and nothing fails.
	c2 := open(t, tiers.Config{Path: p})
	if n, err := c2.Demote([]tiers.Demoted{good}); err != nil || n != 0 {
		t.Fatalf("without L1: %d, %v", n, err)
	}
	c2.Close()
	if _, err := c2.Demote([]tiers.Demoted{good}); !errors.Is(err, tiers.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
