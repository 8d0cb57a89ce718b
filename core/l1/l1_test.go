package l1_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/cachee-dev/cachee/core/l1"
)

func TestBoundedByBytes(t *testing.T) {
	c, err := l1.New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 10000; i++ {
		c.Set(fmt.Sprint("k", i), &l1.Entry{Value: make([]byte, 1000)})
	}
	time.Sleep(50 * time.Millisecond) // maintenance runs on its own goroutine
	c.Set("last", &l1.Entry{Value: []byte("v")})
	if b := c.Bytes(); b > 1<<20+2000 {
		t.Fatalf("holds %d bytes, capacity %d", b, c.Capacity())
	}
	if e := c.Get("last"); e == nil || string(e.Value) != "v" {
		t.Fatal("last entry missing")
	}
	// Heavier than the whole cache: not stored.
	c.Set("huge", &l1.Entry{Value: make([]byte, 2<<20)})
	if c.Get("huge") != nil {
		t.Fatal("stored an entry heavier than the capacity")
	}
}

func TestExpiryDeleteIf(t *testing.T) {
	c, err := l1.New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Set("gone", &l1.Entry{Value: []byte("v"), ExpiresNs: time.Now().Add(-time.Second).UnixNano()})
	if c.Get("gone") != nil {
		t.Fatal("expiry at Set")
	}
	// "t" must be served while it lives: that can only be seen if the Get
	// returned before its expiry, so a machine too slow for a 30 ms TTL
	// (preempted between Set and Get) tries again with a longer one.
	var exp time.Time
	for ttl := 30 * time.Millisecond; ; ttl *= 4 {
		exp = time.Now().Add(ttl)
		c.Set("t", &l1.Entry{Value: []byte("v"), ExpiresNs: exp.UnixNano()})
		got := c.Get("t")
		if time.Now().Before(exp) {
			if got == nil {
				t.Fatal("live entry not served")
			}
			break
		}
		if ttl > time.Minute {
			t.Fatal("every Get came after the entry's expiry")
		}
	}
	time.Sleep(time.Until(exp) + 20*time.Millisecond)
	if c.Get("t") != nil {
		t.Fatal("expired entry served")
	}
	a := &l1.Entry{Value: []byte("a")}
	b := &l1.Entry{Value: []byte("b")}
	c.Set("x", a)
	c.Set("x", b)
	c.DeleteIf("x", a) // a stale reader must not remove the newer entry
	if e := c.Get("x"); e != b {
		t.Fatal("DeleteIf removed a newer entry")
	}
	c.DeleteIf("x", b)
	if c.Get("x") != nil || c.Delete("x") {
		t.Fatal("DeleteIf kept the entry")
	}
	if l1.Weight("k", &l1.Entry{Value: make([]byte, 10), Meta: make([]byte, 5)}) != 1+10+5+l1.Overhead {
		t.Fatal("Weight")
	}
}

func TestCloseStopsGoroutines(t *testing.T) {
	g0 := runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		c, err := l1.New(1 << 16)
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 1000; j++ {
			c.Set(fmt.Sprint(j), &l1.Entry{Value: make([]byte, 100), ExpiresNs: time.Now().Add(time.Minute).UnixNano()})
			c.Get(fmt.Sprint(j / 2))
		}
		c.Close()
	}
	deadline := time.Now().Add(30 * time.Second) // a hang guard, for a loaded machine
	for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > g0 {
		t.Fatalf("%d goroutines after Close, %d before", n, g0)
	}
}

// NewEntry copies value and meta into one block, value first.
func TestNewEntryOneBlock(t *testing.T) {
	v, m := []byte("value"), []byte("meta")
	e := l1.NewEntry(v, m, 5, 9)
	v[0], m[0] = 'X', 'X' // copies, not views
	if string(e.Value) != "value" || string(e.Meta) != "meta" || e.ExpiresNs != 5 || e.Gen != 9 {
		t.Fatalf("%+v", e)
	}
	if cap(e.Value) != len(e.Value) { // appending to Value must not write Meta
		t.Fatalf("cap(Value) = %d", cap(e.Value))
	}
	if got := string(unsafe.Slice(&e.Value[0], 9)); got != "valuemeta" {
		t.Fatalf("one block holds %q", got)
	}
	if e := l1.NewEntry(nil, []byte("m"), 0, 0); e.Value != nil || string(e.Meta) != "m" {
		t.Fatalf("meta only: %+v", e)
	}
	if e := l1.NewEntry(nil, nil, 0, 0); e.Value != nil || e.Meta != nil {
		t.Fatalf("empty: %+v", e)
	}
}
