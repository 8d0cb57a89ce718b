package l0_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/cachee-dev/cachee/core/l0"
	"github.com/zeebo/xxh3"
)

var regionSeq atomic.Int64

// regionPath returns a fresh region path on /dev/shm, unique to this process
// and call, and registers its removal (whatever is there at the end).
func regionPath(t testing.TB, tag string) string {
	t.Helper()
	p := fmt.Sprintf("/dev/shm/cachee-gotest-%d-%d-%s", os.Getpid(), regionSeq.Add(1), tag)
	t.Cleanup(func() { removeRegion(p) })
	return p
}

// removeRegion unlinks a region (or whatever file a test left at p).
func removeRegion(p string) {
	if err := l0.Unlink(p); err != nil && !errors.Is(err, l0.ErrNoRegion) {
		os.Remove(p)
	}
}

// newRegion creates a region with the given options (Create is forced) and
// registers Close and Unlink.
func newRegion(t testing.TB, tag string, o l0.Options) (*l0.Region, string) {
	t.Helper()
	p := regionPath(t, tag)
	o.Create = true
	r, err := l0.Open(p, o)
	if err != nil {
		t.Fatalf("Open(%s, %+v): %v", p, o, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil && !errors.Is(err, l0.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return r, p
}

// Self-checking values: every value carries the key it was written under, a
// sequence number and an XXH3 (zeebo's, independent of the engine) of all of
// its other bytes, so a reader can tell a torn or misplaced value.
const valHeader = 24

func makeValue(dst []byte, key, seq uint64, n int) []byte {
	if n < valHeader {
		n = valHeader
	}
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	v := dst[:n]
	binary.LittleEndian.PutUint64(v[0:], key)
	binary.LittleEndian.PutUint64(v[8:], seq)
	for i := valHeader; i < n; i++ {
		v[i] = byte(uint64(i)*131 + seq*7 + key)
	}
	binary.LittleEndian.PutUint64(v[16:], valueSum(v))
	return v
}

func valueSum(v []byte) uint64 {
	var h xxh3.Hasher
	h.Write(v[:16])
	h.Write(v[valHeader:])
	return h.Sum64()
}

// checkValue returns nil if v is a complete value written for key.
func checkValue(v []byte, key uint64) error {
	if len(v) < valHeader {
		return fmt.Errorf("value of %d bytes is shorter than its header", len(v))
	}
	if got := binary.LittleEndian.Uint64(v[0:]); got != key {
		return fmt.Errorf("value of key %d found under key %d", got, key)
	}
	if want, got := binary.LittleEndian.Uint64(v[16:]), valueSum(v); want != got {
		seq := binary.LittleEndian.Uint64(v[8:])
		return fmt.Errorf("torn value: key %d seq %d len %d: checksum %x, computed %x; %s",
			key, seq, len(v), want, got, valueDiff(v, makeValue(nil, key, seq, len(v))))
	}
	return nil
}

// valueDiff describes where v differs from want (the value its header
// claims to be).
func valueDiff(v, want []byte) string {
	n, first := 0, ""
	for i := range v {
		if v[i] != want[i] {
			if n < 4 {
				first += fmt.Sprintf(" [%d]=%d want %d", i, v[i], want[i])
			}
			n++
		}
	}
	return fmt.Sprintf("%d bytes differ:%s", n, first)
}

func keyOf(i uint64) []byte { return []byte(fmt.Sprintf("key:%08d", i)) }
