package capitest_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cachee-dev/cachee/capi/internal/capitest"
	"github.com/cachee-dev/cachee/core/l0"
)

// cachee_demote through C: current records go to L1, stale and expired ones
// do not, invalid batches store nothing.
func TestDemoteThroughC(t *testing.T) {
	p := region(t)
	h, rc := capitest.Open(cfg(p, `, "promote": "never"`))
	if rc != capitest.OK {
		t.Fatal(rc)
	}
	defer capitest.Close(h)
	r, err := l0.Open(p, l0.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	gen := func(k string) uint32 { return r.Generation(l0.Hash([]byte(k))) }
	r.Set([]byte("stale"), []byte("x"))
	staleGen := gen("stale")
	r.Set([]byte("stale"), []byte("y")) // written after its "eviction"
	recs := []capitest.Record{
		{Key: []byte("k1"), Value: []byte("v1"), Generation: gen("k1")},
		{Key: []byte("empty"), Value: nil, Generation: gen("empty")},
		{Key: []byte("stale"), Value: []byte("x"), Generation: staleGen},
		{Key: []byte("old"), Value: []byte("o"), Generation: gen("old"), ExpiresNs: time.Now().Add(-time.Second).UnixNano()},
	}
	if n, rc := capitest.Demote(h, recs, 0); rc != capitest.OK || n != 2 {
		t.Fatalf("demote = %d, %d", n, rc)
	}
	v, rc := capitest.Get(h, []byte("k1"), capitest.SkipL0)
	if rc != capitest.OK || v.Tier != 1 || !bytes.Equal(v.Data, []byte("v1")) || string(v.Meta) != "m" {
		t.Fatalf("k1: %+v %d", v, rc)
	}
	if v, rc := capitest.Get(h, []byte("empty"), capitest.SkipL0); rc != capitest.OK || len(v.Data) != 0 {
		t.Fatalf("empty: %+v %d", v, rc)
	}
	for _, k := range []string{"stale", "old"} {
		if _, rc := capitest.Get(h, []byte(k), capitest.SkipL0); rc != capitest.NotFound {
			t.Fatalf("%s: %d", k, rc)
		}
	}
	if n, rc := capitest.Demote(h, nil, 0); rc != capitest.OK || n != 0 {
		t.Fatalf("n=0: %d %d", n, rc)
	}
	good := capitest.Record{Key: []byte("g"), Value: []byte("v"), Generation: gen("g")}
	for _, bad := range [][]capitest.Record{
		{good, {Key: nil, Value: []byte("v")}},
		{good, {Key: []byte("x"), ExpiresNs: -1}},
	} {
		if n, rc := capitest.Demote(h, bad, 0); rc != capitest.EInvalid || n != 0 {
			t.Fatalf("bad batch: %d %d", n, rc)
		}
		if msg, _ := capitest.LastError(h); !strings.Contains(msg, "cachee_demote: record 1") {
			t.Fatalf("%q", msg)
		}
	}
	if _, rc := capitest.Demote(h, []capitest.Record{good}, 7); rc != capitest.EInvalid {
		t.Fatal(rc)
	}
	if _, rc := capitest.Get(h, []byte("g"), capitest.SkipL0); rc != capitest.NotFound {
		t.Fatal("an invalid batch stored its valid record", rc)
	}
	st, _ := capitest.Stats(h)
	if !strings.Contains(st, `"demotions":2`) {
		t.Fatalf("stats %s", st)
	}
	capitest.Close(h)
	if _, rc := capitest.Demote(h, []capitest.Record{good}, 0); rc != capitest.EHandle {
		t.Fatal(rc)
	}
}
