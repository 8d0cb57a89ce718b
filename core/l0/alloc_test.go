package l0_test

import (
	"bytes"
	"testing"

	"github.com/cachee-dev/cachee/core/l0"
)

// Reads into buffers of the caller's, and Hash, allocate nothing: the
// engine's read path through the ABI depends on it.
func TestReadsDoNotAllocate(t *testing.T) {
	r, _ := newRegion(t, "alloc", l0.Options{Size: 8 << 20})
	key, val, meta := []byte("alloc-key"), bytes.Repeat([]byte("v"), 100), []byte("meta")
	if err := r.SetWith(key, val, l0.SetOptions{Meta: meta}); err != nil {
		t.Fatal(err)
	}
	dst, mdst := make([]byte, 0, 4096), make([]byte, 0, 512)
	small, msmall := make([]byte, 0, 128), make([]byte, 0, 16)
	for _, c := range []struct {
		name string
		fn   func()
	}{
		{"GetItem into large buffers", func() {
			it, err := r.GetItem(key, dst, mdst)
			if err != nil || !bytes.Equal(it.Value, val) || !bytes.Equal(it.Meta, meta) {
				t.Fatalf("GetItem: %v", err)
			}
		}},
		{"GetItem into small buffers", func() {
			it, err := r.GetItem(key, small, msmall)
			if err != nil || !bytes.Equal(it.Value, val) || !bytes.Equal(it.Meta, meta) {
				t.Fatalf("GetItem: %v", err)
			}
		}},
		{"Get", func() {
			if v, err := r.Get(key, dst); err != nil || !bytes.Equal(v, val) {
				t.Fatalf("Get: %v", err)
			}
		}},
		{"Hash", func() { _ = l0.Hash(key) }},
	} {
		if n := testing.AllocsPerRun(100, c.fn); n != 0 {
			t.Errorf("%s: %v allocations per call", c.name, n)
		}
	}
}
