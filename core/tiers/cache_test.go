package tiers_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachee-dev/cachee/core/l0"
	"github.com/cachee-dev/cachee/core/tiers"
)

var seq atomic.Int64

// region creates a fresh L0 region and registers its removal.
func region(t testing.TB, size uint64) string {
	t.Helper()
	p := fmt.Sprintf("/dev/shm/cachee-coretest-%d-%d", os.Getpid(), seq.Add(1))
	r, err := l0.Open(p, l0.Options{Size: size, Create: true, Exclusive: true, SegmentSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Cleanup(func() { l0.Unlink(p) })
	return p
}

func open(t testing.TB, cfg tiers.Config) *tiers.Cache {
	t.Helper()
	c, err := tiers.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// memTier is a lower tier in memory: shared, optionally failing.
type memTier struct {
	mu     sync.Mutex
	m      map[string]tiers.Entry
	fail   atomic.Bool
	gets   atomic.Int64
	closed atomic.Bool
}

func newMemTier() *memTier { return &memTier{m: map[string]tiers.Entry{}} }

var errDown = errors.New("tier down")

func (m *memTier) Kind() tiers.TierKind { return tiers.TierRedis }
func (m *memTier) Shared() bool         { return true }
func (m *memTier) Get(_ context.Context, k []byte) (tiers.Entry, error) {
	m.gets.Add(1)
	if m.fail.Load() {
		return tiers.Entry{}, errDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.m[string(k)]
	if !ok || (e.ExpiresNs != 0 && time.Now().UnixNano() >= e.ExpiresNs) {
		return tiers.Entry{}, tiers.ErrNotFound
	}
	return tiers.Entry{Value: bytes.Clone(e.Value), Meta: bytes.Clone(e.Meta), ExpiresNs: e.ExpiresNs}, nil
}
func (m *memTier) Set(_ context.Context, k []byte, e tiers.Entry) error {
	if m.fail.Load() {
		return errDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[string(k)] = tiers.Entry{Value: bytes.Clone(e.Value), Meta: bytes.Clone(e.Meta), ExpiresNs: e.ExpiresNs}
	return nil
}
func (m *memTier) Delete(_ context.Context, k []byte) error {
	if m.fail.Load() {
		return errDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, string(k))
	return nil
}
func (m *memTier) Close() error { m.closed.Store(true); return nil }
func (m *memTier) Size() (int64, int64, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.m)), 0, 0
}

var ctx = context.Background()

func mustGet(t *testing.T, c *tiers.Cache, k string, o tiers.GetOptions) tiers.Value {
	t.Helper()
	v, err := c.Get(ctx, []byte(k), o)
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	return v
}

func TestRoundTripAndErrors(t *testing.T) {
	p := region(t, 8<<20)
	c := open(t, tiers.Config{Path: p, L1Bytes: 1 << 20})
	if err := c.Set(ctx, []byte("k"), []byte("v"), tiers.SetOptions{Meta: []byte("m"), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	v := mustGet(t, c, "k", tiers.GetOptions{})
	if string(v.Data) != "v" || string(v.Meta) != "m" || v.Tier != tiers.TierL0 || v.ExpiresNs == 0 {
		t.Fatalf("got %+v", v)
	}
	if err := c.Set(ctx, []byte("k"), []byte("x"), tiers.SetOptions{IfAbsent: true}); !errors.Is(err, tiers.ErrExists) {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"empty key", func() error { return c.Set(ctx, nil, nil, tiers.SetOptions{}) }},
		{"key too long", func() error { return c.Set(ctx, make([]byte, l0.KeyMax+1), nil, tiers.SetOptions{}) }},
		{"negative TTL", func() error { return c.Set(ctx, []byte("k"), nil, tiers.SetOptions{TTL: -1}) }},
		{"IfAbsent with SkipL0", func() error {
			return c.Set(ctx, []byte("k"), nil, tiers.SetOptions{IfAbsent: true, SkipL0: true})
		}},
		{"Delete of an empty key", func() error { return c.Delete(ctx, nil) }},
		{"Get of an empty key", func() error { _, err := c.Get(ctx, nil, tiers.GetOptions{}); return err }},
		{"Open without a path", func() error { _, err := tiers.Open(tiers.Config{}); return err }},
	} {
		if err := tc.call(); !errors.Is(err, tiers.ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", tc.name, err)
		}
	}
	if v := mustGet(t, c, "k", tiers.GetOptions{}); string(v.Data) != "v" {
		t.Fatalf("the refused calls changed k: %+v", v)
	}
	err := c.Set(ctx, []byte("k"), nil, tiers.SetOptions{Meta: make([]byte, l0.MetaMax+1)})
	var te *tiers.TierError
	if !errors.As(err, &te) || te.Tier != tiers.TierL0 || !errors.Is(err, l0.ErrMetaTooLarge) {
		t.Fatalf("meta too large: %v", err)
	}
	if err := c.Delete(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, []byte("k")); !errors.Is(err, tiers.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, []byte("k"), tiers.GetOptions{}); !errors.Is(err, tiers.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := tiers.Open(tiers.Config{Path: "/dev/shm/cachee-coretest-none"}); !errors.Is(err, l0.ErrNoRegion) {
		t.Fatal(err)
	}
}

// fill writes n keys of 1000 bytes through c, so that L0 (4 MiB) evicts.
func fill(t testing.TB, c *tiers.Cache, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if err := c.Set(ctx, []byte(k), bytes.Repeat([]byte{byte(i)}, 1000), tiers.SetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDemotionIntoL1(t *testing.T) {
	p := region(t, 4<<20)
	c := open(t, tiers.Config{Path: p, L1Bytes: 64 << 20, Promote: tiers.PromoteNever})
	fill(t, c, "d", 12000)
	st, _ := c.Stats()
	if st.Tiers[1].Demotions == 0 {
		t.Fatalf("no demotions: %+v", st.Tiers[1])
	}
	// Keys share generation counters (4 per L0 entry), so later writes of
	// other keys invalidate some L1 copies: those reads miss.
	fromL1 := 0
	for i := 0; i < 12000; i++ {
		v, err := c.Get(ctx, []byte(fmt.Sprintf("d-%d", i)), tiers.GetOptions{})
		if errors.Is(err, tiers.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v.Data, bytes.Repeat([]byte{byte(i)}, 1000)) {
			t.Fatalf("d-%d: wrong value from %v", i, v.Tier)
		}
		if v.Tier == tiers.TierL1 {
			fromL1++
		}
	}
	if fromL1 < 5000 {
		t.Fatalf("only %d of 12000 values served by L1", fromL1)
	}
}

// The requirement of the issue: another process (here another handle, which
// has no eviction hook, as a Python worker) rewrites or deletes a key that
// this process holds in L1, then L0 evicts the new value: L1 must not bring
// the old value back.
func TestL1NeverResurrects(t *testing.T) {
	p := region(t, 4<<20)
	c := open(t, tiers.Config{Path: p, L1Bytes: 64 << 20, Promote: tiers.PromoteNever})
	other, err := l0.Open(p, l0.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	fill(t, c, "r", 12000)
	var inL1 []string
	for i := 0; i < 12000 && len(inL1) < 200; i++ {
		k := fmt.Sprintf("r-%d", i)
		if v, err := c.Get(ctx, []byte(k), tiers.GetOptions{SkipL0: true}); err == nil && v.Tier == tiers.TierL1 {
			inL1 = append(inL1, k)
		}
	}
	if len(inL1) < 200 {
		t.Fatalf("only %d keys in L1", len(inL1))
	}
	for i, k := range inL1 {
		if i%2 == 0 {
			err = other.Set([]byte(k), []byte("new"))
		} else {
			err = other.Delete([]byte(k))
		}
		if err != nil && !errors.Is(err, l0.ErrNotFound) {
			t.Fatal(err)
		}
	}
	// The other process fills L0 until the new values are evicted too.
	big := make([]byte, 1000)
	for i := 0; i < 12000; i++ {
		if err := other.Set([]byte(fmt.Sprintf("o-%d", i)), big); err != nil {
			t.Fatal(err)
		}
	}
	for i, k := range inL1 {
		for _, o := range []tiers.GetOptions{{}, {SkipL0: true}} {
			v, err := c.Get(ctx, []byte(k), o)
			switch {
			case errors.Is(err, tiers.ErrNotFound):
			case err != nil:
				t.Fatal(err)
			case i%2 == 1 || string(v.Data) != "new":
				t.Fatalf("%s: old value resurrected from %v", k, v.Tier)
			}
		}
	}
	// Our own writes drop our L1 copy too.
	k := fmt.Sprintf("r-%d", 11999)
	if err := c.Set(ctx, []byte(k), []byte("mine"), tiers.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if v := mustGet(t, c, k, tiers.GetOptions{}); string(v.Data) != "mine" {
		t.Fatalf("%q", v.Data)
	}
}

func TestReadThroughPromotionAndWriteThrough(t *testing.T) {
	for _, pol := range []tiers.Promote{tiers.PromoteAlways, tiers.PromoteNever, tiers.PromoteTinyLFU} {
		t.Run(pol.String(), func(t *testing.T) {
			p := region(t, 8<<20)
			low := newMemTier()
			c := open(t, tiers.Config{Path: p, L1Bytes: 8 << 20, Promote: pol, Tiers: []tiers.Tier{low}})
			low.Set(ctx, []byte("lk"), tiers.Entry{Value: []byte("low"), Meta: []byte("mm")})
			v := mustGet(t, c, "lk", tiers.GetOptions{})
			if string(v.Data) != "low" || string(v.Meta) != "mm" || v.Tier != tiers.TierRedis {
				t.Fatalf("%+v", v)
			}
			// PromoteAlways: into L0; TinyLFU with an L0 that has room: too.
			wantPromoted := pol != tiers.PromoteNever
			if v.Promoted != wantPromoted {
				t.Fatalf("promoted %v", v.Promoted)
			}
			v = mustGet(t, c, "lk", tiers.GetOptions{})
			want := tiers.TierL1
			if wantPromoted {
				want = tiers.TierL0
			}
			if v.Tier != want || string(v.Data) != "low" {
				t.Fatalf("second read from %v", v.Tier)
			}
			if low.gets.Load() != 1 {
				t.Fatalf("lower tier read %d times", low.gets.Load())
			}
			// NoPromote keeps it out of L0.
			low.Set(ctx, []byte("np"), tiers.Entry{Value: []byte("x")})
			if v := mustGet(t, c, "np", tiers.GetOptions{NoPromote: true}); v.Promoted {
				t.Fatal("promoted with NoPromote")
			}
			// Write-through and delete everywhere.
			if err := c.Set(ctx, []byte("w"), []byte("through"), tiers.SetOptions{TTL: time.Hour}); err != nil {
				t.Fatal(err)
			}
			if e, err := low.Get(ctx, []byte("w")); err != nil || string(e.Value) != "through" || e.ExpiresNs == 0 {
				t.Fatalf("write-through: %+v %v", e, err)
			}
			if err := c.Delete(ctx, []byte("w")); err != nil {
				t.Fatal(err)
			}
			if _, err := low.Get(ctx, []byte("w")); !errors.Is(err, tiers.ErrNotFound) {
				t.Fatal("delete did not reach the lower tier")
			}
			// SkipL0 writes below only.
			if err := c.Set(ctx, []byte("s"), []byte("below"), tiers.SetOptions{SkipL0: true}); err != nil {
				t.Fatal(err)
			}
			if ok, _ := c.Region().Contains([]byte("s")); ok {
				t.Fatal("SkipL0 wrote L0")
			}
			if _, err := low.Get(ctx, []byte("s")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTierFailures(t *testing.T) {
	p := region(t, 8<<20)
	low := newMemTier()
	c := open(t, tiers.Config{Path: p, L1Bytes: 1 << 20, Tiers: []tiers.Tier{low}})
	if err := c.Set(ctx, []byte("a"), []byte("1"), tiers.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	low.fail.Store(true)
	// Served by L0: the lower tier's failure does not matter.
	if v := mustGet(t, c, "a", tiers.GetOptions{}); string(v.Data) != "1" {
		t.Fatal(v)
	}
	// Not served: the failure is the answer.
	_, err := c.Get(ctx, []byte("zz"), tiers.GetOptions{})
	var te *tiers.TierError
	if !errors.As(err, &te) || te.Tier != tiers.TierRedis || !errors.Is(err, errDown) {
		t.Fatalf("got %v", err)
	}
	// A write-through failure is reported, L0 holds the value.
	err = c.Set(ctx, []byte("b"), []byte("2"), tiers.SetOptions{})
	if !errors.Is(err, errDown) {
		t.Fatalf("got %v", err)
	}
	if v := mustGet(t, c, "b", tiers.GetOptions{}); string(v.Data) != "2" {
		t.Fatal(v)
	}
	st, _ := c.Stats()
	if last := st.Tiers[len(st.Tiers)-1]; last.Name != "redis" || last.Errors < 2 {
		t.Fatalf("stats %+v", last)
	}
}

func TestTTLHonouredInL1(t *testing.T) {
	p := region(t, 8<<20)
	low := newMemTier()
	c := open(t, tiers.Config{Path: p, L1Bytes: 1 << 20, Promote: tiers.PromoteNever, Tiers: []tiers.Tier{low}})
	// The value must come from the lower tier, then from L1, while it lives;
	// that is only seen if both Gets return before its expiry, so a machine
	// too slow for a 150 ms TTL tries again (a new key) with a longer one.
	var key []byte
	var exp time.Time
	for ttl := 150 * time.Millisecond; ; ttl *= 4 {
		key = []byte(fmt.Sprintf("t-%v", ttl))
		exp = time.Now().Add(ttl)
		low.Set(ctx, key, tiers.Entry{Value: []byte("soon"), ExpiresNs: exp.UnixNano()})
		v1, err1 := c.Get(ctx, key, tiers.GetOptions{})
		v2, err2 := c.Get(ctx, key, tiers.GetOptions{})
		if time.Now().Before(exp) {
			if err1 != nil || v1.Tier != tiers.TierRedis || string(v1.Data) != "soon" {
				t.Fatalf("first Get: %+v, %v", v1, err1)
			}
			if err2 != nil || v2.Tier != tiers.TierL1 || string(v2.Data) != "soon" {
				t.Fatalf("second Get: %+v, %v", v2, err2)
			}
			break
		}
		if ttl > time.Minute {
			t.Fatal("every Get came after the value's expiry")
		}
	}
	time.Sleep(time.Until(exp) + 50*time.Millisecond)
	if _, err := c.Get(ctx, key, tiers.GetOptions{}); !errors.Is(err, tiers.ErrNotFound) {
		t.Fatalf("expired value served: %v", err)
	}
}

func TestAdmissionPrefersFrequentKeys(t *testing.T) {
	p := region(t, 4<<20)
	low := newMemTier()
	c := open(t, tiers.Config{Path: p, L1Bytes: 1 << 20, Tiers: []tiers.Tier{low}})
	v := make([]byte, 1000)
	for i := 0; i < 20000; i++ {
		low.Set(ctx, []byte(fmt.Sprint("k", i)), tiers.Entry{Value: v})
	}
	// One pass over everything fills L0 (admitted while it has room), then
	// a hot set read often, mixed with a scan of cold keys.
	for i := 0; i < 20000; i++ {
		c.Get(ctx, []byte(fmt.Sprint("k", i)), tiers.GetOptions{})
	}
	hot := 0
	for round := 0; round < 20; round++ {
		for i := 0; i < 500; i++ {
			c.Get(ctx, []byte(fmt.Sprint("k", i)), tiers.GetOptions{})
			c.Get(ctx, []byte(fmt.Sprint("k", 5000+round*500+i)), tiers.GetOptions{})
		}
	}
	for i := 0; i < 500; i++ {
		if v, _ := c.Get(ctx, []byte(fmt.Sprint("k", i)), tiers.GetOptions{NoPromote: true}); v.Tier == tiers.TierL0 {
			hot++
		}
	}
	st, _ := c.Stats()
	t.Logf("hot keys in L0: %d/500; admission %+v", hot, st.Admission)
	if st.Admission.Rejected == 0 || hot < 400 {
		t.Fatalf("admission did not protect the hot set: %d/500 in L0, %+v", hot, st.Admission)
	}
}

func TestConcurrentAndCloseLeavesNothing(t *testing.T) {
	g0 := runtime.NumGoroutine()
	p := region(t, 8<<20)
	low := newMemTier()
	c, err := tiers.Open(tiers.Config{Path: p, L1Bytes: 1 << 20, Tiers: []tiers.Tier{low}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 3000; i++ {
				k := []byte(fmt.Sprint("c", (i*13+w)%300))
				switch i % 5 {
				case 0:
					if err := c.Set(ctx, k, append([]byte("v-"), k...), tiers.SetOptions{TTL: time.Minute}); err != nil {
						t.Error(err)
						return
					}
				case 1:
					if err := c.Delete(ctx, k); err != nil && !errors.Is(err, tiers.ErrNotFound) {
						t.Error(err)
						return
					}
				default:
					v, err := c.Get(ctx, k, tiers.GetOptions{})
					if err == nil && !bytes.Equal(v.Data, append([]byte("v-"), k...)) {
						t.Errorf("%s: %q", k, v.Data)
						return
					}
					if err != nil && !errors.Is(err, tiers.ErrNotFound) {
						t.Error(err)
						return
					}
				}
			}
		}(w)
	}
	wg.Wait()
	if _, err := c.Stats(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); !errors.Is(err, tiers.ErrClosed) {
		t.Fatal(err)
	}
	if !low.closed.Load() {
		t.Fatal("lower tier not closed")
	}
	if _, err := c.Get(ctx, []byte("k"), tiers.GetOptions{}); !errors.Is(err, tiers.ErrClosed) {
		t.Fatal(err)
	}
	if err := c.Set(ctx, []byte("k"), nil, tiers.SetOptions{}); !errors.Is(err, tiers.ErrClosed) {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second) // a hang guard, for a loaded machine
	for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > g0 {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, g0, buf[:runtime.Stack(buf, true)])
	}
}
