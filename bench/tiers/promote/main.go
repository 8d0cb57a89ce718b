// Command promote measures what L1 and the admission policy buy at equal
// memory: a Zipf(0.99) stream of reads over a key space 10x what L0 holds
// alone, served by
//
//	l0-only        one L0 region of M bytes, cache-aside (a miss loads the
//	               value from the origin and sets it into L0)
//	l0+l1 tinylfu  L0 of M/2 plus an L1 of M/2 in front of the origin,
//	               values promoted into L0 by the TinyLFU admission
//	l0+l1 always   the same, every value read below L0 promoted
//
// and prints the hit ratio (reads served by L0 or L1, not by the origin) of
// each, side by side. The origin is an in-memory tier holding every key.
//
//	go run ./bench/tiers/promote [-mem 64MiB] [-value 256] [-requests 3000000]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/cachee-dev/cachee/bench/internal/keystream"
	"github.com/cachee-dev/cachee/core/l0"
	"github.com/cachee-dev/cachee/core/tiers"
)

type origin struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (o *origin) Kind() tiers.TierKind { return tiers.TierRedis }
func (o *origin) Shared() bool         { return true }
func (o *origin) Get(_ context.Context, k []byte) (tiers.Entry, error) {
	o.mu.Lock()
	v, ok := o.m[string(k)]
	o.mu.Unlock()
	if !ok {
		return tiers.Entry{}, tiers.ErrNotFound
	}
	return tiers.Entry{Value: v}, nil
}
func (o *origin) Set(context.Context, []byte, tiers.Entry) error { return nil }
func (o *origin) Delete(context.Context, []byte) error           { return nil }
func (o *origin) Close() error                                   { return nil }

func newRegion(size uint64) (string, *l0.Region) {
	p := fmt.Sprintf("/dev/shm/cachee-bench-promote-%d-%d", os.Getpid(), size)
	r, err := l0.Open(p, l0.Options{Size: size, Create: true, Exclusive: true})
	if err != nil {
		log.Fatal(err)
	}
	return p, r
}

func main() {
	mem := flag.Uint64("mem", 64<<20, "total memory M in bytes")
	valueLen := flag.Int("value", 256, "value size in bytes")
	requests := flag.Int("requests", 3000000, "reads in the stream")
	alpha := flag.Float64("zipf", 0.99, "Zipf exponent")
	flag.Parse()
	ctx := context.Background()

	// How many entries L0 of M bytes holds: fill one and count.
	p, r := newRegion(*mem)
	val := make([]byte, *valueLen)
	for i := 0; ; i++ {
		if err := r.Set([]byte(fmt.Sprintf("key-%09d", i)), val); err != nil {
			log.Fatal(err)
		}
		if i%10000 == 0 {
			if st, _ := r.Stats(); st.Evictions > 0 {
				break
			}
		}
	}
	st, _ := r.Stats()
	capEntries := int(st.Entries)
	r.Close()
	l0.Unlink(p)
	keys := 10 * capEntries
	fmt.Printf("M = %d MiB, values %d B: L0 of M holds ~%d entries; key space %d (10x); %d Zipf(%.2f) reads\n",
		*mem>>20, *valueLen, capEntries, keys, *requests, *alpha)
	trace := keystream.Zipf(keys, *requests, *alpha, 42, true)
	key := func(i int32) []byte { return []byte(fmt.Sprintf("key-%09d", i)) }
	org := &origin{m: make(map[string][]byte, keys)}
	for i := 0; i < keys; i++ {
		org.m[string(key(int32(i)))] = val
	}
	warm := len(trace) / 3 // hit ratios count the last two thirds

	// l0-only, cache-aside.
	{
		p, r := newRegion(*mem)
		hits, n := 0, 0
		t0 := time.Now()
		buf := make([]byte, 0, *valueLen)
		for i, k := range trace {
			kb := key(k)
			_, err := r.Get(kb, buf)
			if i >= warm {
				n++
				if err == nil {
					hits++
				}
			}
			if err != nil {
				r.Set(kb, val)
			}
		}
		fmt.Printf("%-16s hit ratio %6.2f%%   (%.0f ns/read)\n", "l0-only", 100*float64(hits)/float64(n),
			float64(time.Since(t0).Nanoseconds())/float64(len(trace)))
		r.Close()
		l0.Unlink(p)
	}
	for _, pol := range []tiers.Promote{tiers.PromoteTinyLFU, tiers.PromoteAlways} {
		p, r := newRegion(*mem / 2)
		r.Close()
		c, err := tiers.Open(tiers.Config{Path: p, L1Bytes: int64(*mem / 2), Promote: pol, Tiers: []tiers.Tier{org}})
		if err != nil {
			log.Fatal(err)
		}
		var h0, h1, n int
		t0 := time.Now()
		for i, k := range trace {
			v, err := c.Get(ctx, key(k), tiers.GetOptions{})
			if err != nil {
				log.Fatal(err)
			}
			if i >= warm {
				n++
				switch v.Tier {
				case tiers.TierL0:
					h0++
				case tiers.TierL1:
					h1++
				}
			}
		}
		el := time.Since(t0)
		s, _ := c.Stats()
		fmt.Printf("%-16s hit ratio %6.2f%% (L0 %5.2f%% + L1 %5.2f%%)   (%.0f ns/read; admitted %d, rejected %d, demoted %d)\n",
			"l0+l1 "+pol.String(), 100*float64(h0+h1)/float64(n), 100*float64(h0)/float64(n), 100*float64(h1)/float64(n),
			float64(el.Nanoseconds())/float64(len(trace)), s.Admission.Admitted, s.Admission.Rejected, s.Tiers[1].Demotions)
		c.Close()
		l0.Unlink(p)
	}
}
