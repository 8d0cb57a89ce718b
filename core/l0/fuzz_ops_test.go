package l0_test

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/cachee-dev/cachee/core/l0"
)

// (In its own file, which sorts before fuzz_test.go, so that go test runs
// its seed corpus before FuzzCorruptRegion's, whose regression seeds of
// open engine bugs may crash the test binary.)

// ---------------------------------------------------------------------
// FuzzOps: operations against a region and a model.
// ---------------------------------------------------------------------

type modelEntry struct {
	value []byte
	meta  []byte
}

type heldPin struct {
	p    *l0.Pinned
	want []byte
	key  int
}

func FuzzOps(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 10, 3, 1, 0, 4, 1, 0, 3, 1, 0})
	f.Add([]byte{0, 2, 200, 5, 2, 0, 0, 2, 250, 6, 0, 0, 3, 2, 0})
	f.Add([]byte{2, 3, 4, 2, 3, 5, 4, 3, 0, 2, 3, 6, 7, 3, 0})
	f.Add([]byte{1, 4, 30, 1, 5, 255, 5, 4, 0, 5, 5, 0, 0, 4, 1, 0, 5, 1, 6, 0, 0, 6, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 3*400 {
			data = data[:3*400]
		}
		path := fmt.Sprintf("/dev/shm/cachee-gofuzz-ops-%d-%d", os.Getpid(), fuzzSeq.Add(1))
		r, err := l0.Open(path, l0.Options{Create: true, Exclusive: true, Size: 1 << 20, SegmentSize: 4096, MaxProcs: 4})
		if err != nil {
			t.Fatal(err)
		}
		l0.Unlink(path) // the mapping keeps it alive; nothing left on a crash
		defer r.Close()
		stop := watchdog("FuzzOps")
		defer stop()
		runOps(t, r, data)
	})
}

const opsKeys = 16

func opsKey(k int) []byte { return []byte(fmt.Sprintf("fuzz-key-%d", k)) }

func runOps(t *testing.T, r *l0.Region, data []byte) {
	info := r.Info()
	model := map[int]modelEntry{}
	var pins []*heldPin
	var seq uint64
	// Live data stays far below the pressure mark (85% of the arena), where
	// reclaiming only collects garbage and evicts nothing: at most 16 keys
	// of at most 5 segments each, about a third of the arena. So the region
	// must agree with the model exactly: no miss of a key the model has.
	var buf []byte
	for i := 0; i+3 <= len(data); i += 3 {
		op, k, arg := data[i]%8, int(data[i+1])%opsKeys, int(data[i+2])
		key := opsKey(k)
		seq++
		switch op {
		case 0, 1: // Set / SetWith metadata
			n := arg * 64 // up to ~16 KiB: values spanning several segments
			if arg == 255 {
				n = int(info.SegmentSize) * 5
			}
			val := makeValue(nil, uint64(k), seq, n)
			var meta []byte
			var err error
			if op == 1 {
				meta = val[8 : 8+arg%17]
				err = r.SetWith(key, val, l0.SetOptions{Meta: meta})
			} else {
				err = r.Set(key, val)
			}
			if err != nil {
				t.Fatalf("op %d: Set(%d, %d bytes): %v", i/3, k, n, err)
			}
			model[k] = modelEntry{val, bytes.Clone(meta)}
		case 2: // SetWith IfAbsent
			val := makeValue(nil, uint64(k), seq, arg)
			err := r.SetWith(key, val, l0.SetOptions{IfAbsent: true})
			_, present := model[k]
			switch {
			case err == nil && !present:
				model[k] = modelEntry{val, nil}
			case err == l0.ErrExists && present:
			default:
				t.Fatalf("op %d: IfAbsent Set(%d) = %v with the key present=%v", i/3, k, err, present)
			}
		case 3: // GetItem / Get
			e, present := model[k]
			if arg%2 == 0 {
				it, err := r.GetItem(key, buf, nil)
				if err := agree(err, present, it.Value, e.value, "GetItem"); err != nil {
					t.Fatalf("op %d: key %d: %v", i/3, k, err)
				}
				if err == nil && !bytes.Equal(it.Meta, e.meta) {
					t.Fatalf("op %d: key %d: meta %q, want %q", i/3, k, it.Meta, e.meta)
				}
				buf = it.Value
			} else {
				v, err := r.Get(key, buf)
				if err := agree(err, present, v, e.value, "Get"); err != nil {
					t.Fatalf("op %d: key %d: %v", i/3, k, err)
				}
				buf = v
			}
		case 4: // Delete
			err := r.Delete(key)
			_, present := model[k]
			if (err == nil) != present || (err != nil && err != l0.ErrNotFound) {
				t.Fatalf("op %d: Delete(%d) = %v with the key present=%v", i/3, k, err, present)
			}
			delete(model, k)
		case 5: // Pin
			e, present := model[k]
			p, err := r.GetPinned(key)
			var got []byte
			if err == nil {
				got = p.Bytes()
			}
			if err := agree(err, present, got, e.value, "GetPinned"); err != nil {
				t.Fatalf("op %d: key %d: %v", i/3, k, err)
			}
			if err == nil {
				if !bytes.Equal(p.Meta(), e.meta) {
					t.Fatalf("op %d: pinned meta %q, want %q", i/3, p.Meta(), e.meta)
				}
				pins = append(pins, &heldPin{p, e.value, k})
				if len(pins) > 8 {
					releaseHeld(t, pins[0])
					pins = pins[1:]
				}
			}
		case 6: // Release
			if len(pins) > 0 {
				j := arg % len(pins)
				releaseHeld(t, pins[j])
				if err := pins[j].p.Release(); err != l0.ErrBadPin {
					t.Fatalf("second Release = %v", err)
				}
				pins = append(pins[:j], pins[j+1:]...)
			}
		case 7: // Contains, Count
			_, present := model[k]
			ok, err := r.Contains(key)
			if err != nil || ok != present {
				t.Fatalf("op %d: Contains(%d) = %v, %v, model %v", i/3, k, ok, err, present)
			}
			if n := r.Count(); n != int64(len(model)) {
				t.Fatalf("op %d: Count = %d, model has %d", i/3, n, len(model))
			}
		}
		for _, h := range pins {
			if !bytes.Equal(h.p.Bytes(), h.want) {
				t.Fatalf("op %d: pinned view of key %d changed", i/3, h.key)
			}
		}
	}
	for _, h := range pins {
		releaseHeld(t, h)
	}
	for k, e := range model {
		v, err := r.Get(opsKey(k), nil)
		if err != nil || !bytes.Equal(v, e.value) {
			t.Fatalf("final: key %d: %d bytes, %v; want %d bytes", k, len(v), err, len(e.value))
		}
	}
	if n := r.Count(); n != int64(len(model)) {
		t.Fatalf("final Count = %d, model has %d", n, len(model))
	}
	st, err := r.Stats()
	if err != nil || st.Pins != 0 || st.Evictions != 0 {
		t.Fatalf("final Stats = %+v, %v", st, err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
}

// agree checks a read against the model: a hit must return exactly the
// last value written and a miss is allowed only for an absent key.
func agree(err error, present bool, got, want []byte, what string) error {
	switch {
	case err == nil && !present:
		return fmt.Errorf("%s hit a key the model does not have (%d bytes)", what, len(got))
	case err == nil && !bytes.Equal(got, want):
		return fmt.Errorf("%s returned %d bytes, not the last value written (%d bytes)", what, len(got), len(want))
	case err == l0.ErrNotFound && present:
		return fmt.Errorf("%s missed a key the model has (nothing may be evicted)", what)
	case err != nil && err != l0.ErrNotFound:
		return fmt.Errorf("%s: %v", what, err)
	}
	return nil
}

func releaseHeld(t *testing.T, h *heldPin) {
	t.Helper()
	if !bytes.Equal(h.p.Bytes(), h.want) {
		t.Fatalf("pinned view of key %d changed before release", h.key)
	}
	if err := h.p.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
}
