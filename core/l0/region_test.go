package l0_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/cachee-dev/cachee/core/l0"
)

func TestBadInput(t *testing.T) {
	r, _ := newRegion(t, "badinput", l0.Options{Size: 4 << 20, SegmentSize: 64 << 10})
	info := r.Info()
	ok := []byte("key")
	big := make([]byte, l0.KeyMax+1)
	type call struct {
		name string
		fn   func() error
		want error
	}
	calls := []call{}
	for _, k := range []struct {
		name string
		key  []byte
		want error
	}{
		{"nil key", nil, l0.ErrInvalid},
		{"empty key", []byte{}, l0.ErrInvalid},
		{"key of 65536 bytes", big, l0.ErrKeyTooLarge},
	} {
		key := k.key
		calls = append(calls,
			call{"Set " + k.name, func() error { return r.Set(key, []byte("v")) }, k.want},
			call{"SetWith " + k.name, func() error { return r.SetWith(key, []byte("v"), l0.SetOptions{IfAbsent: true}) }, k.want},
			call{"Get " + k.name, func() error { _, err := r.Get(key, nil); return err }, k.want},
			call{"GetItem " + k.name, func() error { _, err := r.GetItem(key, nil, nil); return err }, k.want},
			call{"GetPinned " + k.name, func() error {
				p, err := r.GetPinned(key)
				if p != nil {
					t.Error("GetPinned returned a view with an error")
				}
				return err
			}, k.want},
			call{"Delete " + k.name, func() error { return r.Delete(key) }, k.want},
			call{"Contains " + k.name, func() error { _, err := r.Contains(key); return err }, k.want},
			call{"GetMany " + k.name, func() error { _, errs := r.GetMany([][]byte{key}); return errs[0] }, k.want},
		)
	}
	calls = append(calls,
		call{"value over ValueMax", func() error { return r.Set(ok, make([]byte, info.ValueMax+1)) }, l0.ErrValueTooLarge},
		call{"meta of 4097 bytes", func() error {
			return r.SetWith(ok, []byte("v"), l0.SetOptions{Meta: make([]byte, l0.MetaMax+1)})
		}, l0.ErrMetaTooLarge},
		call{"negative TTL", func() error { return r.SetWith(ok, []byte("v"), l0.SetOptions{TTL: -time.Nanosecond}) }, l0.ErrInvalid},
		call{"overflowing TTL", func() error { return r.SetWith(ok, []byte("v"), l0.SetOptions{TTL: math.MaxInt64}) }, l0.ErrInvalid},
		call{"TTL overflowing by a year", func() error {
			ttl := time.Duration(math.MaxInt64 - time.Now().UnixNano() + int64(365*24*time.Hour))
			if ttl < 0 {
				ttl = math.MaxInt64
			}
			return r.SetWith(ok, []byte("v"), l0.SetOptions{TTL: ttl})
		}, l0.ErrInvalid},
		call{"delete absent", func() error { return r.Delete([]byte("absent")) }, l0.ErrNotFound},
		call{"get absent", func() error { _, err := r.Get([]byte("absent"), nil); return err }, l0.ErrNotFound},
		call{"release nil", func() error { var p *l0.Pinned; return p.Release() }, l0.ErrBadPin},
	)
	for _, c := range calls {
		if err := c.fn(); !errors.Is(err, c.want) || err != c.want {
			t.Errorf("%s = %v, want %v", c.name, err, c.want)
		}
	}
	// Nothing was stored by any of them.
	if n := r.Count(); n != 0 {
		t.Fatalf("Count = %d after rejected writes", n)
	}
	// The limits themselves are accepted.
	maxKey := bytes.Repeat([]byte{'k'}, l0.KeyMax)
	if err := r.Set(maxKey, []byte("v")); err != nil {
		t.Fatalf("key of KeyMax bytes: %v", err)
	}
	if v, err := r.Get(maxKey, nil); err != nil || string(v) != "v" {
		t.Fatalf("Get(key of KeyMax bytes) = %q, %v", v, err)
	}
	meta := bytes.Repeat([]byte{'m'}, l0.MetaMax)
	if err := r.SetWith(ok, []byte("v"), l0.SetOptions{Meta: meta}); err != nil {
		t.Fatalf("meta of MetaMax bytes: %v", err)
	}
	it, err := r.GetItem(ok, nil, nil)
	if err != nil || !bytes.Equal(it.Meta, meta) {
		t.Fatalf("GetItem meta len %d, %v", len(it.Meta), err)
	}
	val := make([]byte, info.ValueMax)
	for i := range val {
		val[i] = byte(i * 7)
	}
	if err := r.Set([]byte("max"), val); err != nil {
		t.Fatalf("value of ValueMax (%d) bytes: %v", info.ValueMax, err)
	}
	got, err := r.Get([]byte("max"), nil)
	if err != nil || !bytes.Equal(got, val) {
		t.Fatalf("Get(max) len %d, %v", len(got), err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	r, _ := newRegion(t, "roundtrip", l0.Options{Size: 4 << 20})
	key := []byte("hello")
	if ok, err := r.Contains(key); ok || err != nil {
		t.Fatalf("Contains on empty region = %v, %v", ok, err)
	}
	if err := r.Set(key, []byte("world")); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.Contains(key); !ok || err != nil {
		t.Fatalf("Contains = %v, %v", ok, err)
	}
	v, err := r.Get(key, nil)
	if err != nil || string(v) != "world" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	it1, err := r.GetItem(key, nil, nil)
	if err != nil || string(it1.Value) != "world" || len(it1.Meta) != 0 || !it1.Expires.IsZero() {
		t.Fatalf("GetItem = %+v, %v", it1, err)
	}
	// Overwrite with metadata: a newer version.
	meta := []byte{1, 2, 3, 0, 255}
	if err := r.SetWith(key, []byte("again"), l0.SetOptions{Meta: meta}); err != nil {
		t.Fatal(err)
	}
	it2, err := r.GetItem(key, nil, nil)
	if err != nil || string(it2.Value) != "again" || !bytes.Equal(it2.Meta, meta) {
		t.Fatalf("GetItem = %+v, %v", it2, err)
	}
	if it2.Version <= it1.Version {
		t.Fatalf("version did not grow: %d then %d", it1.Version, it2.Version)
	}
	// Empty value and value-only overwrite drops the metadata.
	if err := r.Set(key, nil); err != nil {
		t.Fatal(err)
	}
	it3, err := r.GetItem(key, make([]byte, 0, 10), make([]byte, 0, 10))
	if err != nil || len(it3.Value) != 0 || len(it3.Meta) != 0 {
		t.Fatalf("GetItem of empty value = %+v, %v", it3, err)
	}
	if n := r.Count(); n != 1 {
		t.Fatalf("Count = %d, want 1", n)
	}
	if err := r.Delete(key); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(key); err != l0.ErrNotFound {
		t.Fatalf("second Delete = %v", err)
	}
	if _, err := r.Get(key, nil); err != l0.ErrNotFound {
		t.Fatalf("Get after Delete = %v", err)
	}
	if n := r.Count(); n != 0 {
		t.Fatalf("Count = %d, want 0", n)
	}
	st, err := r.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// Single goroutine: exact counts. Hits: Get, 3 GetItem; miss: 1 Get.
	want := l0.Stats{Hits: 4, Misses: 1, Sets: 3, Deletes: 1, LiveProcs: 1}
	if st.Hits != want.Hits || st.Misses != want.Misses || st.Sets != want.Sets ||
		st.Deletes != want.Deletes || st.LiveProcs != want.LiveProcs || st.Entries != 0 {
		t.Fatalf("Stats = %+v, want %+v", st, want)
	}
	info := r.Info()
	if st.Capacity != info.ArenaSize || info.ArenaSize == 0 || info.RegionSize != 4<<20 ||
		info.Segments == 0 || uint64(info.Segments)*uint64(info.SegmentSize) != info.ArenaSize ||
		info.ValueMax == 0 || info.MaxProcs != l0.ProcsDefault || info.Shards == 0 || info.ShardSlots == 0 {
		t.Fatalf("Info = %+v, Stats = %+v", info, st)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Reap(); n != 0 || err != nil {
		t.Fatalf("Reap = %d, %v", n, err)
	}
}

// Get appends into dst[:0]: in place when it fits, in a new array when not.
func TestGetBuffer(t *testing.T) {
	r, _ := newRegion(t, "getbuf", l0.Options{Size: 4 << 20})
	val := bytes.Repeat([]byte("0123456789"), 100)
	if err := r.Set([]byte("k"), val); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 5, 2000)
	got, err := r.Get([]byte("k"), dst)
	if err != nil || !bytes.Equal(got, val) {
		t.Fatalf("Get = %d bytes, %v", len(got), err)
	}
	if unsafe.SliceData(got) != unsafe.SliceData(dst) {
		t.Fatal("Get did not reuse a large enough buffer")
	}
	small := make([]byte, 0, 10)
	got, err = r.Get([]byte("k"), small)
	if err != nil || !bytes.Equal(got, val) {
		t.Fatalf("Get into small buffer = %d bytes, %v", len(got), err)
	}
	if unsafe.SliceData(got) == unsafe.SliceData(small) {
		t.Fatal("Get wrote past a small buffer's capacity")
	}
	// A miss returns dst[:0].
	got, err = r.Get([]byte("nope"), dst)
	if err != l0.ErrNotFound || len(got) != 0 || cap(got) != cap(dst) {
		t.Fatalf("miss = len %d cap %d, %v", len(got), cap(got), err)
	}
	// GetItem grows both buffers.
	meta := bytes.Repeat([]byte{9}, 300)
	if err := r.SetWith([]byte("m"), val, l0.SetOptions{Meta: meta}); err != nil {
		t.Fatal(err)
	}
	for _, caps := range [][2]int{{0, 0}, {1, 1}, {2000, 1}, {1, 400}, {2000, 400}} {
		it, err := r.GetItem([]byte("m"), make([]byte, 0, caps[0]), make([]byte, 0, caps[1]))
		if err != nil || !bytes.Equal(it.Value, val) || !bytes.Equal(it.Meta, meta) {
			t.Fatalf("GetItem caps %v = %d/%d bytes, %v", caps, len(it.Value), len(it.Meta), err)
		}
	}
}

func TestTTL(t *testing.T) {
	r, _ := newRegion(t, "ttl", l0.Options{Size: 4 << 20})
	key := []byte("ephemeral")
	if err := r.Set([]byte("forever"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	// What a live key with a TTL does can only be checked before it
	// expires: a machine too slow to get through the checks within 150 ms
	// (preempted between the calls) tries again with a longer TTL.
	var it l0.Item
	var p *l0.Pinned
	for ttl := 150 * time.Millisecond; ; ttl *= 4 {
		before := time.Now()
		if err := r.SetWith(key, []byte("soon gone"), l0.SetOptions{TTL: ttl}); err != nil {
			t.Fatal(err)
		}
		var err error
		it, err = r.GetItem(key, nil, nil)
		if err == nil && (it.Expires.Before(before.Add(ttl)) || it.Expires.After(time.Now().Add(ttl))) {
			t.Fatalf("Expires %v not in [%v, %v]", it.Expires, before.Add(ttl), time.Now().Add(ttl))
		}
		var perr, ierr error
		if err == nil {
			p, perr = r.GetPinned(key)
			// IfAbsent respects a live entry with a TTL.
			ierr = r.SetWith(key, []byte("x"), l0.SetOptions{IfAbsent: true})
		}
		if time.Now().Before(before.Add(ttl)) { // all of it while the key lived
			if err != nil {
				t.Fatal(err)
			}
			if perr != nil {
				t.Fatal(perr)
			}
			if !p.Expires().Equal(it.Expires) {
				t.Fatalf("pinned expiry %v, item %v", p.Expires(), it.Expires)
			}
			if ierr != l0.ErrExists {
				t.Fatalf("IfAbsent on live key = %v", ierr)
			}
			break
		}
		if p != nil {
			p.Release()
			p = nil
		}
		if ttl > time.Minute {
			t.Fatal("every attempt outlived its TTL")
		}
	}
	time.Sleep(time.Until(it.Expires) + 20*time.Millisecond)
	if _, err := r.Get(key, nil); err != l0.ErrNotFound {
		t.Fatalf("Get after expiry = %v", err)
	}
	if ok, err := r.Contains(key); ok || err != nil {
		t.Fatalf("Contains after expiry = %v, %v", ok, err)
	}
	if _, err := r.GetPinned(key); err != l0.ErrNotFound {
		t.Fatalf("GetPinned after expiry = %v", err)
	}
	if string(p.Bytes()) != "soon gone" {
		t.Fatalf("pinned bytes changed at expiry: %q", p.Bytes())
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if v, err := r.Get([]byte("forever"), nil); err != nil || string(v) != "x" {
		t.Fatalf("key without TTL: %q, %v", v, err)
	}
	// An expired key counts as absent for IfAbsent and Delete.
	if err := r.Delete(key); err != l0.ErrNotFound {
		t.Fatalf("Delete of expired key = %v", err)
	}
	if err := r.SetWith(key, []byte("back"), l0.SetOptions{IfAbsent: true}); err != nil {
		t.Fatalf("IfAbsent on expired key = %v", err)
	}
	if v, err := r.Get(key, nil); err != nil || string(v) != "back" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	// TTL 0 is "never"; the new value has no expiry.
	if it, err := r.GetItem(key, nil, nil); err != nil || !it.Expires.IsZero() {
		t.Fatalf("GetItem = %+v, %v", it, err)
	}
}

func TestIfAbsent(t *testing.T) {
	r, _ := newRegion(t, "ifabsent", l0.Options{Size: 4 << 20})
	key := []byte("once")
	if err := r.SetWith(key, []byte("first"), l0.SetOptions{IfAbsent: true, Meta: []byte("m1")}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetWith(key, []byte("second"), l0.SetOptions{IfAbsent: true, Meta: []byte("m2")}); err != l0.ErrExists {
		t.Fatalf("second IfAbsent = %v, want ErrExists", err)
	}
	it, err := r.GetItem(key, nil, nil)
	if err != nil || string(it.Value) != "first" || string(it.Meta) != "m1" {
		t.Fatalf("GetItem = %q %q, %v", it.Value, it.Meta, err)
	}
	if err := r.Delete(key); err != nil {
		t.Fatal(err)
	}
	if err := r.SetWith(key, []byte("third"), l0.SetOptions{IfAbsent: true}); err != nil {
		t.Fatalf("IfAbsent after Delete = %v", err)
	}
	// Racing IfAbsent writers: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			err := r.SetWith([]byte("race"), []byte{byte(g)}, l0.SetOptions{IfAbsent: true})
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if err != l0.ErrExists {
				t.Errorf("IfAbsent = %v", err)
			}
		}(g)
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d IfAbsent writers won", wins)
	}
}

func TestLargeValues(t *testing.T) {
	r, _ := newRegion(t, "large", l0.Options{Size: 8 << 20, SegmentSize: 16 << 10})
	info := r.Info()
	sizes := []int{int(info.SegmentSize) - 200, int(info.SegmentSize), int(info.SegmentSize) + 1,
		3 * int(info.SegmentSize), 100 << 10, int(info.ValueMax)}
	var pins []*l0.Pinned
	var wants [][]byte
	for i, n := range sizes {
		key := []byte(fmt.Sprintf("big%d", i))
		v := makeValue(nil, uint64(i), 1, n)
		if err := r.SetWith(key, v, l0.SetOptions{Meta: []byte("meta")}); err != nil {
			t.Fatalf("Set %d bytes: %v", n, err)
		}
		got, err := r.Get(key, nil)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("Get %d bytes: %d bytes, %v", n, len(got), err)
		}
		p, err := r.GetPinned(key)
		if err != nil || !bytes.Equal(p.Bytes(), v) || string(p.Meta()) != "meta" {
			t.Fatalf("GetPinned %d bytes: %v", n, err)
		}
		if i < 3 { // keep a few pinned across what follows
			pins = append(pins, p)
			wants = append(wants, v)
		} else if err := p.Release(); err != nil {
			t.Fatal(err)
		}
		if err := r.Check(); err != nil {
			t.Fatalf("after %d bytes: %v", n, err)
		}
	}
	// Churn through large values (forcing extent evictions) while pinned.
	for i := 0; i < 250; i++ {
		n := int(info.SegmentSize)*(1+i%5) + i
		if err := r.Set([]byte(fmt.Sprintf("churn%d", i)), makeValue(nil, uint64(i), 2, n)); err != nil {
			t.Fatalf("churn %d: %v", i, err)
		}
	}
	for i, p := range pins {
		if !bytes.Equal(p.Bytes(), wants[i]) {
			t.Fatalf("pinned large value %d changed", i)
		}
		if err := checkValue(p.Bytes(), uint64(i)); err != nil {
			t.Fatal(err)
		}
		if err := p.Release(); err != nil {
			t.Fatal(err)
		}
	}
	st, err := r.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Evictions == 0 {
		t.Fatalf("no evictions: %+v", st)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
}

// A pinned view keeps its bytes across overwrite, delete, expiry and
// eviction, and releases exactly once.
func TestPinnedStable(t *testing.T) {
	r, _ := newRegion(t, "pinned", l0.Options{Size: 2 << 20, SegmentSize: 16 << 10})
	key := []byte("pinned-key")
	orig := makeValue(nil, 7, 1, 1000)
	// Pinned before it expires (a machine too slow for 200 ms between the
	// two calls tries again with a longer TTL).
	var p *l0.Pinned
	for ttl := 200 * time.Millisecond; ; ttl *= 4 {
		t0 := time.Now()
		if err := r.SetWith(key, orig, l0.SetOptions{Meta: []byte("m"), TTL: ttl}); err != nil {
			t.Fatal(err)
		}
		var err error
		if p, err = r.GetPinned(key); err == nil {
			break
		}
		if err != l0.ErrNotFound || time.Since(t0) < ttl || ttl > time.Minute {
			t.Fatal(err)
		}
	}
	view := p.Bytes()
	if !bytes.Equal(view, orig) || string(p.Meta()) != "m" || p.Len() != len(orig) {
		t.Fatal("pinned view differs from the value")
	}
	st, _ := r.Stats()
	if st.Pins != 1 || st.PinnedBytes != uint64(len(orig)) {
		t.Fatalf("Stats pins %d bytes %d", st.Pins, st.PinnedBytes)
	}
	check := func(stage string) {
		t.Helper()
		if !bytes.Equal(view, orig) || !bytes.Equal(p.Bytes(), orig) {
			t.Fatalf("pinned bytes changed after %s", stage)
		}
	}
	// Overwrite.
	if err := r.Set(key, makeValue(nil, 7, 2, 1000)); err != nil {
		t.Fatal(err)
	}
	check("overwrite")
	// A second pin of the new version.
	p2, err := r.GetPinned(key)
	if err != nil || p2.Version() <= p.Version() {
		t.Fatalf("second pin: %v (versions %d, %d)", err, p.Version(), p2.Version())
	}
	// Delete.
	if err := r.Delete(key); err != nil {
		t.Fatal(err)
	}
	check("delete")
	// Eviction pressure: write far more than the region holds.
	info := r.Info()
	total := 0
	for i := uint64(0); total < 4*int(info.ArenaSize); i++ {
		v := makeValue(nil, i, 3, 900)
		if err := r.Set(keyOf(i), v); err != nil {
			t.Fatalf("Set under pressure: %v", err)
		}
		total += len(v)
	}
	check("eviction pressure")
	if err := checkValue(p2.Bytes(), 7); err != nil {
		t.Fatal(err)
	}
	st, _ = r.Stats()
	if st.Evictions == 0 || st.SegmentsLimbo == 0 {
		t.Fatalf("no eviction of pinned segments: %+v", st)
	}
	if st.Pins != 2 {
		t.Fatalf("pins %d, want 2", st.Pins)
	}
	// Release: once, then ErrBadPin.
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if p.Bytes() != nil || p.Meta() != nil {
		t.Fatal("Bytes after Release is not nil")
	}
	if err := p.Release(); err != l0.ErrBadPin {
		t.Fatalf("second Release = %v, want ErrBadPin", err)
	}
	if err := p2.Release(); err != nil {
		t.Fatal(err)
	}
	st, _ = r.Stats()
	if st.Pins != 0 || st.PinnedBytes != 0 {
		t.Fatalf("after release: %+v", st)
	}
	// Segments kept in limbo for the pins go back to use at the next refill.
	for i := uint64(0); i < uint64(2*info.SegmentSize/900)+2; i++ {
		if err := r.Set(keyOf(i), makeValue(nil, i, 4, 900)); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = r.Stats()
	if st.SegmentsLimbo != 0 || st.LimboBytes != 0 {
		t.Fatalf("limbo segments after release and refill: %+v", st)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
}

// Concurrent releases of one view: exactly one succeeds.
func TestReleaseRace(t *testing.T) {
	r, _ := newRegion(t, "relrace", l0.Options{Size: 2 << 20})
	if err := r.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 50; round++ {
		p, err := r.GetPinned([]byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for g := range errs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[g] = p.Release() }()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if err != l0.ErrBadPin {
				t.Fatal(err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d releases succeeded", ok)
		}
	}
	if st, _ := r.Stats(); st.Pins != 0 {
		t.Fatalf("pins left: %d", st.Pins)
	}
}

// When live views pin everything, writes fail with ErrFull and change
// nothing; releasing the views makes room again.
func TestFullWhenPinned(t *testing.T) {
	r, _ := newRegion(t, "full", l0.Options{Size: 1 << 20, SegmentSize: 16 << 10, MaxProcs: 4})
	info := r.Info()
	var pins []*l0.Pinned
	var fullErr error
	vsize := int(info.SegmentSize) / 4
	for i := uint64(0); i < uint64(4*info.ArenaSize)/uint64(vsize); i++ {
		err := r.Set(keyOf(i), makeValue(nil, i, 1, vsize))
		if err != nil {
			fullErr = err
			break
		}
		p, err := r.GetPinned(keyOf(i))
		if err != nil {
			t.Fatalf("GetPinned right after Set: %v", err)
		}
		pins = append(pins, p)
	}
	if fullErr != l0.ErrFull {
		t.Fatalf("writes with everything pinned: %v, want ErrFull (%d pins)", fullErr, len(pins))
	}
	st, _ := r.Stats()
	if st.SetFailures == 0 {
		t.Fatalf("SetFailures not counted: %+v", st)
	}
	for i, p := range pins {
		if err := checkValue(p.Bytes(), uint64(i)); err != nil {
			t.Fatal(err)
		}
		if err := p.Release(); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Set([]byte("after"), make([]byte, vsize)); err != nil {
		t.Fatalf("Set after releasing: %v", err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestClosed(t *testing.T) {
	r, _ := newRegion(t, "closed", l0.Options{Size: 2 << 20})
	if err := r.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	p, err := r.GetPinned([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	k := []byte("k")
	checks := map[string]error{
		"Close":    r.Close(),
		"Set":      r.Set(k, k),
		"SetWith":  r.SetWith(k, k, l0.SetOptions{}),
		"Delete":   r.Delete(k),
		"Check":    r.Check(),
		"Release":  p.Release(),
		"Release2": p.Release(),
	}
	_, checks["Get"] = r.Get(k, nil)
	_, checks["GetItem"] = r.GetItem(k, nil, nil)
	_, checks["GetPinned"] = r.GetPinned(k)
	_, checks["Contains"] = r.Contains(k)
	_, checks["Stats"] = r.Stats()
	_, checks["Reap"] = r.Reap()
	_, errs := r.GetMany([][]byte{k})
	checks["GetMany"] = errs[0]
	for name, err := range checks {
		want := l0.ErrClosed
		if name == "Release2" {
			want = l0.ErrBadPin
		}
		if err != want {
			t.Errorf("%s after Close = %v, want %v", name, err, want)
		}
	}
	if r.Count() != 0 {
		t.Error("Count after Close")
	}
	if p.Bytes() != nil {
		t.Error("Bytes after Close")
	}
	if r.Info().RegionSize != 2<<20 {
		t.Error("Info after Close")
	}
}

func TestGetMany(t *testing.T) {
	r, _ := newRegion(t, "getmany", l0.Options{Size: 8 << 20})
	const n = 300 // several chunks of the C wrapper
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = keyOf(uint64(i))
		if i%3 != 0 {
			if err := r.SetWith(keys[i], makeValue(nil, uint64(i), 1, 30+i), l0.SetOptions{Meta: []byte{byte(i)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	keys[10] = nil
	keys[11] = make([]byte, l0.KeyMax+1)
	keys = append(keys, keyOf(5)) // the same key twice
	ps, errs := r.GetMany(keys)
	if len(ps) != len(keys) || len(errs) != len(keys) {
		t.Fatalf("lengths %d %d", len(ps), len(errs))
	}
	for i := range keys {
		var want error
		switch {
		case i == 10:
			want = l0.ErrInvalid
		case i == 11:
			want = l0.ErrKeyTooLarge
		case i%3 == 0 && i < n:
			want = l0.ErrNotFound
		}
		if errs[i] != want {
			t.Fatalf("key %d: %v, want %v", i, errs[i], want)
		}
		if (ps[i] == nil) != (want != nil) {
			t.Fatalf("key %d: view %v with error %v", i, ps[i], errs[i])
		}
		if ps[i] == nil {
			continue
		}
		id := uint64(i)
		if i == n {
			id = 5
		}
		if err := checkValue(ps[i].Bytes(), id); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		if len(ps[i].Meta()) != 1 || ps[i].Meta()[0] != byte(id) {
			t.Fatalf("key %d: meta %v", i, ps[i].Meta())
		}
	}
	hits := 0
	for _, p := range ps {
		if p != nil {
			hits++
		}
	}
	if st, _ := r.Stats(); hits != n-n/3-2+1 || st.Pins != uint64(hits) {
		t.Fatalf("%d hits, %d pins", hits, st.Pins)
	}
	for i, p := range ps {
		if p != nil {
			if err := p.Release(); err != nil {
				t.Fatalf("release %d: %v", i, err)
			}
		}
	}
	if st, _ := r.Stats(); st.Pins != 0 {
		t.Fatalf("pins left: %d", st.Pins)
	}
	ps, errs = r.GetMany(nil)
	if len(ps) != 0 || len(errs) != 0 {
		t.Fatal("GetMany(nil)")
	}
}

// Check reports a damaged index entry with a description.
func TestCheckCorrupt(t *testing.T) {
	r, p := newRegion(t, "check", l0.Options{Size: 2 << 20})
	if err := r.Set([]byte("victim"), []byte("value")); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	indexOff := int64(readU64(t, p, hdr("index_off")))
	arenaOff := int64(readU64(t, p, hdr("arena_off")))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	idx := make([]byte, arenaOff-indexOff)
	if _, err := f.ReadAt(idx, indexOff); err != nil {
		t.Fatal(err)
	}
	found := false
	esz := int(lay["sizeof.entry"])
	for off := 0; off+esz <= len(idx); off += esz {
		w1 := leU64(idx[off+8:])
		if (w1>>46)&3 == 1 { // LIVE: point it at another arena unit
			w1 ^= 1
			var b [8]byte
			putLeU64(b[:], w1)
			if _, err := f.WriteAt(b[:], indexOff+int64(off)+8); err != nil {
				t.Fatal(err)
			}
			found = true
			break
		}
	}
	if !found {
		t.Fatal("no live entry in the index")
	}
	err = r.Check()
	if !errors.Is(err, l0.ErrCorrupt) || err == l0.ErrCorrupt || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Check = %v, want a described ErrCorrupt", err)
	}
	t.Logf("Check: %v", err)
	// Reads of the damaged key miss or fail, never crash.
	if _, err := r.Get([]byte("victim"), nil); err == nil {
		t.Fatal("Get of a damaged entry succeeded")
	}
}

func leU64(b []byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func putLeU64(b []byte, v uint64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
}

// Two handles in one process share the data.
func TestTwoHandles(t *testing.T) {
	a, p := newRegion(t, "two", l0.Options{Size: 2 << 20})
	b, err := l0.Open(p, l0.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Set([]byte("x"), []byte("from a")); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get([]byte("x"), nil); err != nil || string(v) != "from a" {
		t.Fatalf("b.Get = %q, %v", v, err)
	}
	st, err := b.Stats()
	if err != nil || st.LiveProcs != 2 {
		t.Fatalf("LiveProcs = %d, %v", st.LiveProcs, err)
	}
}

// Goroutines writing and reading the same keys: every read is a complete
// value of its key (run with -race).
func TestConcurrentGoroutines(t *testing.T) {
	r, _ := newRegion(t, "goroutines", l0.Options{Size: 4 << 20, SegmentSize: 16 << 10})
	const keys = 64
	dur := 600 * time.Millisecond
	if testing.Short() {
		dur = 200 * time.Millisecond
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var reads, hits, pinChecks int
	var liveHits, livePinChecks atomic.Int64 // progress, read while they run
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var buf []byte
			for seq := uint64(1); ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (seq*7 + uint64(w)*13) % keys
				buf = makeValue(buf, k, seq, 24+int((seq*131)%3000))
				var err error
				if seq%10 == 0 {
					err = r.SetWith(keyOf(k), buf, l0.SetOptions{Meta: buf[:8], TTL: time.Hour})
				} else if seq%97 == 0 {
					err = r.Delete(keyOf(k))
					if err == l0.ErrNotFound {
						err = nil
					}
				} else {
					err = r.Set(keyOf(k), buf)
				}
				if err != nil {
					t.Errorf("writer: %v", err)
					return
				}
			}
		}(w)
	}
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var buf []byte
			var held []*l0.Pinned
			var copies [][]byte
			n, h, pc := 0, 0, 0
			defer func() {
				mu.Lock()
				reads += n
				hits += h
				pinChecks += pc
				mu.Unlock()
			}()
			for i := uint64(g); ; i++ {
				select {
				case <-stop:
					for j, p := range held {
						if !bytes.Equal(p.Bytes(), copies[j]) {
							t.Error("pinned bytes changed")
						}
						p.Release()
					}
					return
				default:
				}
				k := (i * 11) % keys
				var err error
				n++
				switch i % 4 {
				case 0, 1:
					buf, err = r.Get(keyOf(k), buf)
					if err == nil {
						h++
						liveHits.Add(1)
						if e := checkValue(buf, k); e != nil {
							t.Error(e)
							return
						}
					}
				case 2:
					var it l0.Item
					it, err = r.GetItem(keyOf(k), buf, nil)
					if err == nil {
						h++
						if e := checkValue(it.Value, k); e != nil {
							t.Error(e)
							return
						}
						if len(it.Meta) != 0 && !bytes.Equal(it.Meta, it.Value[:8]) {
							t.Error("metadata of another version")
							return
						}
					}
				case 3:
					var p *l0.Pinned
					p, err = r.GetPinned(keyOf(k))
					if err == nil {
						h++
						if e := checkValue(p.Bytes(), k); e != nil {
							t.Error(e)
							return
						}
						held = append(held, p)
						copies = append(copies, append([]byte(nil), p.Bytes()...))
						if len(held) > 16 {
							if !bytes.Equal(held[0].Bytes(), copies[0]) {
								t.Error("pinned bytes changed while held")
								return
							}
							pc++
							livePinChecks.Add(1)
							if e := held[0].Release(); e != nil {
								t.Error(e)
							}
							held, copies = held[1:], copies[1:]
						}
					}
				}
				if err != nil && err != l0.ErrNotFound {
					t.Errorf("reader: %v", err)
					return
				}
			}
		}(g)
	}
	// At least dur, and until reads hit and pinned views were checked (a
	// slow machine needs longer), within a hang guard.
	start := time.Now()
	time.Sleep(dur)
	for (liveHits.Load() == 0 || livePinChecks.Load() == 0) && time.Since(start) < 2*time.Minute {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if hits == 0 || pinChecks == 0 {
		t.Fatalf("reads %d hits %d pin checks %d", reads, hits, pinChecks)
	}
	t.Logf("reads %d hits %d pinned views checked %d", reads, hits, pinChecks)
	st, err := r.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pins != 0 {
		t.Fatalf("pins left: %d", st.Pins)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
}
