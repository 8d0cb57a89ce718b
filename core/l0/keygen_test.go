package l0_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cachee-dev/cachee/core/l0"
)

func TestGenerationBumpsOnSetAndDelete(t *testing.T) {
	r, p := newRegion(t, "gen", l0.Options{Size: 8 << 20})
	h := l0.Hash([]byte("k"))
	g0 := r.Generation(h)
	if err := r.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if g := r.Generation(h); g != g0+1 {
		t.Fatalf("after Set: generation %d, want %d", g, g0+1)
	}
	if _, err := r.Get([]byte("k"), nil); err != nil {
		t.Fatal(err)
	}
	if err := r.SetWith([]byte("k"), []byte("w"), l0.SetOptions{IfAbsent: true}); !errors.Is(err, l0.ErrExists) {
		t.Fatalf("IfAbsent: %v", err)
	}
	if g := r.Generation(h); g != g0+1 {
		t.Fatalf("reads and refused writes bumped the generation to %d", g)
	}
	if err := r.Delete([]byte("k")); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete([]byte("k")); !errors.Is(err, l0.ErrNotFound) {
		t.Fatal(err)
	}
	if g := r.Generation(h); g != g0+3 {
		t.Fatalf("after two deletes: generation %d, want %d", g, g0+3)
	}
	// A second handle (as another process) sees and makes the same bumps.
	r2, err := l0.Open(p, l0.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := r2.Set([]byte("k"), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if g, g2 := r.Generation(h), r2.Generation(h); g != g0+4 || g2 != g {
		t.Fatalf("generations %d and %d, want %d", g, g2, g0+4)
	}
}

func TestPromote(t *testing.T) {
	r, _ := newRegion(t, "promote", l0.Options{Size: 8 << 20})
	k := []byte("p")
	g := r.Generation(l0.Hash(k))
	if err := r.Promote(k, []byte("val"), []byte("m"), 0, g); err != nil {
		t.Fatal(err)
	}
	if r.Generation(l0.Hash(k)) != g {
		t.Fatal("Promote bumped the generation")
	}
	it, err := r.GetItem(k, nil, nil)
	if err != nil || string(it.Value) != "val" || string(it.Meta) != "m" {
		t.Fatalf("GetItem: %q %q %v", it.Value, it.Meta, err)
	}
	if err := r.Promote(k, []byte("x"), nil, 0, g); !errors.Is(err, l0.ErrExists) {
		t.Fatalf("present: %v", err)
	}
	if err := r.Delete(k); err != nil {
		t.Fatal(err)
	}
	if err := r.Promote(k, []byte("val"), nil, 0, g); !errors.Is(err, l0.ErrStale) {
		t.Fatalf("after a delete: %v", err)
	}
	exp := time.Now().Add(time.Hour).UnixNano()
	if err := r.Promote(k, []byte("val"), nil, exp, r.Generation(l0.Hash(k))); err != nil {
		t.Fatal(err)
	}
	if it, err := r.GetItem(k, nil, nil); err != nil || it.Expires.UnixNano() != exp {
		t.Fatalf("expiry %v, want %d (%v)", it.Expires, exp, err)
	}
	if err := r.Promote([]byte("q"), nil, nil, 1, r.Generation(l0.Hash([]byte("q")))); !errors.Is(err, l0.ErrStale) {
		t.Fatalf("expired copy: %v", err)
	}
}

func TestEvictionsAreHandedOver(t *testing.T) {
	r, p := newRegion(t, "evict", l0.Options{Size: 4 << 20, SegmentSize: 16 << 10})
	if err := r.EnableEvictions(0); !errors.Is(err, l0.ErrInvalid) {
		t.Fatalf("EnableEvictions(0): %v", err)
	}
	if err := r.EnableEvictions(64 << 20); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string][]byte{}
	take := func(e *l0.Evicted) {
		mu.Lock()
		defer mu.Unlock()
		if e.KeyHash != l0.Hash(e.Key) {
			t.Errorf("hash of %q", e.Key)
		}
		// Keys share counters, so other keys' writes may have moved it
		// since; it never goes back.
		if int32(r.Generation(e.KeyHash)-e.Generation) < 0 {
			t.Errorf("generation of %q: %d, now %d", e.Key, e.Generation, r.Generation(e.KeyHash))
		}
		got[string(e.Key)] = e.Value
	}
	val := func(k string) []byte { return bytes.Repeat([]byte(k), 1000/len(k)) }
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 4000; i++ {
				k := fmt.Sprintf("w%d-%d", w, i)
				if err := r.SetWith([]byte(k), val(k), l0.SetOptions{Meta: []byte("mm")}); err != nil {
					t.Error(err)
					return
				}
				r.TakeEvicted(take)
			}
		}(w)
	}
	wg.Wait()
	r.TakeEvicted(take)
	if len(got) < 4000 {
		t.Fatalf("%d evicted records handed over, want most of 16000", len(got))
	}
	for k, v := range got {
		if !bytes.Equal(v, val(k)) {
			t.Fatalf("value of %q damaged", k)
		}
	}
	// Another handle's evictions are not ours.
	r2, err := l0.Open(p, l0.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	for i := 0; i < 8000; i++ {
		k := fmt.Sprintf("o-%d", i)
		if err := r2.Set([]byte(k), val(k)); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.TakeEvicted(take); n != 0 {
		t.Fatalf("%d records of another handle's evictions", n)
	}
	if r.EvictionsDropped() != 0 {
		t.Fatalf("dropped %d", r.EvictionsDropped())
	}
}

func TestEvictionQueueBound(t *testing.T) {
	r, _ := newRegion(t, "evbound", l0.Options{Size: 4 << 20, SegmentSize: 16 << 10})
	if err := r.EnableEvictions(10 << 10); err != nil {
		t.Fatal(err)
	}
	v := make([]byte, 1000)
	for i := 0; i < 10000; i++ {
		if err := r.Set([]byte(fmt.Sprint(i)), v); err != nil {
			t.Fatal(err)
		}
	}
	n := r.TakeEvicted(func(*l0.Evicted) {})
	if n == 0 || n > 10 || r.EvictionsDropped() == 0 {
		t.Fatalf("took %d, dropped %d: want a few and many", n, r.EvictionsDropped())
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if r.Generation(1) != 0 || r.TakeEvicted(nil) != 0 || r.EvictionsDropped() != 0 {
		t.Fatal("closed region answered")
	}
	if err := r.Promote([]byte("k"), nil, nil, 0, 0); !errors.Is(err, l0.ErrClosed) {
		t.Fatal(err)
	}
	if err := r.EnableEvictions(1); !errors.Is(err, l0.ErrClosed) {
		t.Fatal(err)
	}
}
