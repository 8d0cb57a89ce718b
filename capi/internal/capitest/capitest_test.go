package capitest_test

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachee-dev/cachee/capi/internal/capitest"
	"github.com/cachee-dev/cachee/core/l0"
)

var seq atomic.Int64

func region(t *testing.T) string {
	t.Helper()
	p := fmt.Sprintf("/dev/shm/cachee-capitest-%d-%d", os.Getpid(), seq.Add(1))
	r, err := l0.Open(p, l0.Options{Size: 8 << 20, Create: true, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Cleanup(func() { l0.Unlink(p) })
	return p
}

func cfg(p string, extra string) string {
	return fmt.Sprintf(`{"path": %q, "l1_bytes": 1048576%s}`, p, extra)
}

func TestRoundTripThroughC(t *testing.T) {
	p := region(t)
	h, rc := capitest.Open(cfg(p, `, "promote": "always", "demote": true`))
	if rc != capitest.OK || h == 0 {
		t.Fatalf("open: %d", rc)
	}
	if rc := capitest.Set(h, []byte("k"), []byte("v"), []byte("meta"), int64(time.Hour), 0); rc != capitest.OK {
		t.Fatal(rc)
	}
	v, rc := capitest.Get(h, []byte("k"), 0)
	if rc != capitest.OK || string(v.Data) != "v" || string(v.Meta) != "meta" || v.Tier != 0 || v.ExpiresNs == 0 {
		t.Fatalf("get: %d %+v", rc, v)
	}
	if _, rc := capitest.Get(h, []byte("k"), capitest.SkipL0); rc != capitest.NotFound {
		t.Fatalf("SKIP_L0 of an L0-only key: %d", rc)
	}
	if rc := capitest.Set(h, []byte("k"), []byte("w"), nil, 0, 1); rc != capitest.Exists {
		t.Fatal(rc)
	}
	js, rc := capitest.Stats(h)
	if rc != capitest.OK || !strings.Contains(js, `"name":"l1"`) || !strings.Contains(js, `"latency_ns"`) {
		t.Fatalf("stats %d %s", rc, js)
	}
	if rc := capitest.Delete(h, []byte("k")); rc != capitest.OK {
		t.Fatal(rc)
	}
	if rc := capitest.Delete(h, []byte("k")); rc != capitest.NotFound {
		t.Fatal(rc)
	}
	if rc := capitest.Close(h); rc != capitest.OK {
		t.Fatal(rc)
	}
}

func TestErrorsThroughC(t *testing.T) {
	p := region(t)
	for _, c := range []struct {
		cfg string
		rc  int
	}{
		{`{`, capitest.EConfig},
		{`[]`, capitest.EConfig},
		{`{"path": 1}`, capitest.EConfig},
		{`{"path": "x", "bogus": 1}`, capitest.EConfig},
		{`{"path": "x", "demote": "yes"}`, capitest.EConfig},
		{`{"path": "x"} {}`, capitest.EConfig},
		{`{"path": "/dev/shm/cachee-capitest-absent"}`, capitest.EL0},
	} {
		if h, rc := capitest.Open(c.cfg); rc != c.rc || h != 0 {
			t.Errorf("open(%s) = %d, %d; want %d", c.cfg, h, rc, c.rc)
		}
		if msg, _ := capitest.LastError(0); msg == "" {
			t.Errorf("open(%s): no message", c.cfg)
		}
	}
	h, rc := capitest.Open(cfg(p, ""))
	if rc != capitest.OK {
		t.Fatal(rc)
	}
	if _, rc := capitest.Get(h, nil, 0); rc != capitest.EInvalid {
		t.Fatal(rc)
	}
	if msg, rc := capitest.LastError(h); rc != capitest.OK || !strings.Contains(msg, "cachee_get") {
		t.Fatalf("%d %q", rc, msg)
	}
	if rc := capitest.Set(h, []byte("k"), nil, make([]byte, 5000), 0, 0); rc != capitest.EL0 {
		t.Fatal(rc)
	}
	if msg, _ := capitest.LastError(h); !strings.Contains(msg, "-31005") {
		t.Fatalf("%q", msg)
	}
	capitest.Close(h)
	if _, rc := capitest.Get(h, []byte("k"), 0); rc != capitest.EHandle {
		t.Fatal(rc)
	}
	if _, rc := capitest.LastError(h); rc != capitest.EHandle {
		t.Fatal(rc)
	}
	if rc := capitest.Close(h); rc != capitest.EHandle {
		t.Fatal(rc)
	}
}

// C threads and goroutines on the same handles, then everything closed:
// no handle and no goroutine is left.
func TestConcurrentThenNoLeaks(t *testing.T) {
	g0 := capitest.Goroutines()
	h0 := capitest.OpenHandles()
	p := region(t)
	var hs []uint64
	for i := 0; i < 3; i++ {
		h, rc := capitest.Open(cfg(p, ""))
		if rc != capitest.OK {
			t.Fatal(rc)
		}
		hs = append(hs, h)
	}
	if capitest.OpenHandles() != h0+3 {
		t.Fatalf("open handles %d", capitest.OpenHandles())
	}
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Add(2)
		go func(h uint64) {
			defer wg.Done()
			if f := capitest.Threads(h, 4, 2000); f != 0 {
				t.Errorf("%d failures in C threads", f)
			}
		}(h)
		go func(h uint64) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				k := []byte(fmt.Sprint("ct-", i%100))
				if v, rc := capitest.Get(h, k, 0); rc == capitest.OK && string(v.Data) != fmt.Sprint("value-", i%100) {
					t.Errorf("%s = %q", k, v.Data)
					return
				}
			}
		}(h)
	}
	wg.Wait()
	for _, h := range hs {
		if rc := capitest.Close(h); rc != capitest.OK {
			t.Fatal(rc)
		}
	}
	if capitest.OpenHandles() != h0 {
		t.Fatalf("open handles %d after close", capitest.OpenHandles())
	}
	deadline := time.Now().Add(30 * time.Second) // a hang guard, for a loaded machine
	for capitest.Goroutines() > g0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := capitest.Goroutines(); g > g0 {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines, %d before:\n%s", g, g0, buf[:runtime.Stack(buf, true)])
	}
}

// Handles: ids never repeat though slots are reused, a closed or forged id
// is refused, and many handles open at once each find their own cache.
func TestHandleTable(t *testing.T) {
	p := region(t)
	seen := map[uint64]bool{}
	var open []uint64
	for i := 0; i < 300; i++ { // more than one chunk of the table
		h, rc := capitest.Open(cfg(p, ""))
		if rc != capitest.OK || h == 0 || seen[h] {
			t.Fatalf("open %d: rc %d h %#x (seen %v)", i, rc, h, seen[h])
		}
		seen[h] = true
		open = append(open, h)
		if rc := capitest.Set(h, []byte(fmt.Sprint("h", i)), []byte(fmt.Sprint(h)), nil, 0, 0); rc != capitest.OK {
			t.Fatal(rc)
		}
	}
	if n := capitest.OpenHandles(); n != 300 {
		t.Fatalf("open handles %d", n)
	}
	for i, h := range open {
		v, rc := capitest.Get(h, []byte(fmt.Sprint("h", i)), 0)
		if rc != capitest.OK || string(v.Data) != fmt.Sprint(h) {
			t.Fatalf("get through %#x: %d %q", h, rc, v.Data)
		}
		if i%2 == 0 {
			if rc := capitest.Close(h); rc != capitest.OK {
				t.Fatal(rc)
			}
		}
	}
	// Reopen: the freed slots are reused under new ids; old ids stay dead.
	for i := 0; i < 150; i++ {
		h, rc := capitest.Open(cfg(p, ""))
		if rc != capitest.OK || seen[h] {
			t.Fatalf("reopen: rc %d h %#x reused", rc, h)
		}
		seen[h] = true
		open = append(open, h)
	}
	for i, h := range open[:300] {
		_, rc := capitest.Get(h, []byte("h0"), 0)
		if want := capitest.OK; i%2 == 0 {
			want = capitest.EHandle
			if rc != want {
				t.Fatalf("closed handle %#x: get %d", h, rc)
			}
		} else if rc != want {
			t.Fatalf("open handle %#x: get %d", h, rc)
		}
	}
	for _, forged := range []uint64{0, 1, 1 << 16, open[1] + 1<<16, ^uint64(0)} {
		if _, rc := capitest.Get(forged, []byte("k"), 0); rc != capitest.EHandle {
			t.Fatalf("forged handle %#x: %d", forged, rc)
		}
	}
	for i, h := range open {
		if i < 300 && i%2 == 0 {
			continue
		}
		if rc := capitest.Close(h); rc != capitest.OK {
			t.Fatal(rc)
		}
	}
	if n := capitest.OpenHandles(); n != 0 {
		t.Fatalf("open handles %d after closing all", n)
	}
}

// Values served by L1 come back whole through C at every size: in the
// scratch of cachee_get or in a block made by Go.
func TestL1ValueSizesThroughC(t *testing.T) {
	p := region(t)
	h, rc := capitest.Open(fmt.Sprintf(`{"path": %q, "l1_bytes": 16777216, "promote": "never"}`, p))
	if rc != capitest.OK {
		t.Fatal(rc)
	}
	defer capitest.Close(h)
	r, err := l0.Open(p, l0.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fill := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)*7 + seed
		}
		return b
	}
	var recs []capitest.Record
	for _, dn := range []int{0, 1, 4096, 4097, 100000} {
		for _, mn := range []int{0, 512, 513, 4096} {
			k := fmt.Sprintf("l1-%d-%d", dn, mn)
			recs = append(recs, capitest.Record{Key: []byte(k), Value: fill(dn, 1), Meta: fill(mn, 2),
				Generation: r.Generation(l0.Hash([]byte(k)))})
		}
	}
	if n, rc := capitest.Demote(h, recs, 0); rc != capitest.OK || n != len(recs) {
		t.Fatalf("demote = %d, %d", n, rc)
	}
	for _, rec := range recs {
		v, rc := capitest.Get(h, rec.Key, capitest.SkipL0)
		if rc != capitest.OK || v.Tier != 1 || !bytes.Equal(v.Data, rec.Value) || !bytes.Equal(v.Meta, rec.Meta) {
			t.Fatalf("%s: rc %d tier %d, %d/%d bytes of value, %d/%d of meta", rec.Key, rc, v.Tier,
				len(v.Data), len(rec.Value), len(v.Meta), len(rec.Meta))
		}
	}
}

// Closing a handle while other threads read through it, then reopening
// (its slot is reused): a reader of the old id gets its value or
// CACHEE_E_HANDLE, never another handle's value nor a crash.
func TestCloseUnderReaders(t *testing.T) {
	pa, pb := region(t), region(t)
	for round := 0; round < 20; round++ {
		a, rc := capitest.Open(cfg(pa, ""))
		if rc != capitest.OK {
			t.Fatal(rc)
		}
		capitest.Set(a, []byte("k"), []byte("from-a"), nil, 0, 0)
		var wg sync.WaitGroup
		var bad, reads atomic.Int64
		stop := make(chan struct{})
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					v, rc := capitest.Get(a, []byte("k"), 0)
					if !(rc == capitest.OK && string(v.Data) == "from-a") && rc != capitest.EHandle {
						bad.Add(1)
					}
					reads.Add(1)
				}
			}()
		}
		// the readers are at work (counted, not slept for: a loaded
		// machine may not have started them after 2 ms)
		waitReads := func(n int64) {
			deadline := time.Now().Add(30 * time.Second) // a hang guard
			for reads.Load() < n && time.Now().Before(deadline) {
				time.Sleep(100 * time.Microsecond)
			}
		}
		waitReads(3)
		time.Sleep(2 * time.Millisecond)
		if rc := capitest.Close(a); rc != capitest.OK {
			t.Fatal(rc)
		}
		b, rc := capitest.Open(cfg(pb, "")) // takes a's slot
		if rc != capitest.OK {
			t.Fatal(rc)
		}
		capitest.Set(b, []byte("k"), []byte("from-b"), nil, 0, 0)
		// readers of the old id meet the reused slot
		waitReads(reads.Load() + 3)
		time.Sleep(2 * time.Millisecond)
		close(stop)
		wg.Wait()
		if n := bad.Load(); n != 0 {
			t.Fatalf("round %d: %d reads of a closed handle gave something else", round, n)
		}
		if v, rc := capitest.Get(b, []byte("k"), 0); rc != capitest.OK || string(v.Data) != "from-b" {
			t.Fatalf("b: %d %q", rc, v.Data)
		}
		capitest.Close(b)
	}
}
