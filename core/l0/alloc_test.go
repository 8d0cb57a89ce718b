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

// GetItem with buffers of every size class: smaller and larger than its
// own, smaller and larger than the value and metadata (then it reads again
// into new arrays); on a miss it hands the caller's buffers back.
func TestGetItemBuffers(t *testing.T) {
	r, _ := newRegion(t, "getitem", l0.Options{Size: 8 << 20})
	val, meta := bytes.Repeat([]byte("0123456789"), 1000), bytes.Repeat([]byte("m"), 1000)
	if err := r.SetWith([]byte("k"), val, l0.SetOptions{Meta: meta}); err != nil {
		t.Fatal(err)
	}
	for _, vc := range []int{0, 100, 512, 4096, 20000} {
		for _, mc := range []int{0, 100, 256, 2000} {
			dst, mdst := make([]byte, 0, vc), make([]byte, 0, mc)
			it, err := r.GetItem([]byte("k"), dst, mdst)
			if err != nil || !bytes.Equal(it.Value, val) || !bytes.Equal(it.Meta, meta) {
				t.Fatalf("caps %d/%d: %v, %d/%d bytes", vc, mc, err, len(it.Value), len(it.Meta))
			}
			if vc >= len(val) && &it.Value[0] != &dst[:1][0] {
				t.Fatalf("caps %d/%d: value not read into dst", vc, mc)
			}
			it, err = r.GetItem([]byte("absent"), dst, mdst)
			if err != l0.ErrNotFound || len(it.Value) != 0 || cap(it.Value) != vc || cap(it.Meta) != mc {
				t.Fatalf("caps %d/%d: miss gave %v, caps %d/%d", vc, mc, err, cap(it.Value), cap(it.Meta))
			}
		}
	}
}
