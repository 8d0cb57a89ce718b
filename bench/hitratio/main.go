// Command hitratio replays synthetic traces against an L0 region, against an
// exact LRU cache and against otter v2 (W-TinyLFU, github.com/maypok86/otter/v2),
// the two bounded by the number of entries the region actually holds, and
// prints their hit ratios side by side.
//
//	go run ./bench/hitratio [-requests 10000000] [-keys 1000000]
//	                        [-caps 1,2.5,5,10,20] [-json FILE] [-quick]
//
// -quick (also implied by BENCH_QUICK=1 in the environment, as set by
// bench/run.sh --quick) replays 1M requests over 100k keys at 1 and 10%.
//
// Traces (fixed seeds, so every run replays the same requests):
//
//	zipf-0.8, zipf-0.99  Zipf-distributed keys over -keys distinct keys
//	                     (rank r has weight 1/r^alpha), sampled by inverse
//	                     CDF over precomputed cumulative weights
//	zipf-0.99+scan       zipf-0.99 with a one-time sequential scan over
//	                     every key inserted at the middle of the trace
//
// Each trace runs at every capacity of -caps (percent of the key space).
// Every request is a Get; a miss is followed by a Set of a fixed-size value
// (a read-through cache). The region's capacity in entries is measured, not
// assumed: a fresh region is filled with distinct keys until its entry count
// is steady, its size is adjusted until that count matches the target, and
// the LRU and otter get exactly the count measured (otter: MaximumSize, so
// every entry weighs 1, as every L0 record of this benchmark has the same
// size). The L0 count also moves during a replay (it drops each time a
// segment is reclaimed); its mean over the replay is printed beside the
// calibrated count, and otter's mean EstimatedSize likewise. Otter runs its
// maintenance on the calling goroutine (Executor runs fn at once), so a
// replay is deterministic. A capacity below the smallest region (1 MiB) is
// raised to it; capacities that end up equal are run once.
package main

import (
	"container/list"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cachee-dev/cachee/bench/internal/keystream"
	"github.com/cachee-dev/cachee/core/l0"
	"github.com/maypok86/otter/v2"
)

const valueSize = 64

// row is one (trace, capacity) result, as written to -json.
type row struct {
	Trace         string  `json:"trace"`
	CapacityPct   float64 `json:"capacity_pct"`
	TargetEntries int     `json:"target_entries"`
	Entries       int     `json:"entries"`
	RegionBytes   uint64  `json:"region_bytes"`
	L0MeanEntries float64 `json:"l0_mean_entries"`
	OtterMeanSize float64 `json:"otter_mean_size"`
	L0            float64 `json:"l0"`
	LRU           float64 `json:"lru"`
	Otter         float64 `json:"otter"`
	Seconds       float64 `json:"seconds"`
}

func main() {
	requests := flag.Int("requests", 10_000_000, "requests per trace")
	keys := flag.Int("keys", 1_000_000, "distinct keys")
	capsFlag := flag.String("caps", "1,2.5,5,10,20", "capacities, percent of the key space")
	jsonOut := flag.String("json", "", "write the results to this file as JSON")
	quick := flag.Bool("quick", false, "small run: 1M requests over 100k keys at 1 and 10%")
	flag.Parse()
	if *quick || os.Getenv("BENCH_QUICK") == "1" {
		*requests, *keys = 1_000_000, 100_000
		if !isSet("caps") {
			*capsFlag = "1,10"
		}
	}
	if *keys < 1000 || *requests < 1 {
		fmt.Fprintln(os.Stderr, "hitratio: need -keys >= 1000 and -requests >= 1")
		os.Exit(2)
	}
	var caps []float64
	for _, f := range strings.Split(*capsFlag, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 || v >= 100 {
			fmt.Fprintf(os.Stderr, "hitratio: bad capacity %q in -caps\n", f)
			os.Exit(2)
		}
		caps = append(caps, v)
	}

	keyBytes := make([][]byte, *keys)
	for i := range keyBytes {
		keyBytes[i] = []byte(fmt.Sprintf("key:%08d", i))
	}
	type trace struct {
		name string
		reqs []int32
	}
	t0 := time.Now()
	traces := []trace{
		{"zipf-0.8", keystream.Zipf(*keys, *requests, 0.8, 1, false)},
		{"zipf-0.99", keystream.Zipf(*keys, *requests, 0.99, 2, false)},
	}
	withScan := keystream.Zipf(*keys, *requests, 0.99, 3, false)
	traces = append(traces, trace{"zipf-0.99+scan", insertScan(withScan, *keys)})
	fmt.Fprintf(os.Stderr, "traces generated in %v\n", time.Since(t0).Round(time.Millisecond))

	fmt.Printf("hit ratio: %d distinct keys, %d-byte values, %d requests per trace (scan trace: +%d)\n",
		*keys, valueSize, *requests, *keys)
	fmt.Printf("LRU and otter (W-TinyLFU) hold exactly the entries the L0 region holds at steady state\n\n")
	fmt.Printf("%-15s %8s %8s %8s %8s %8s %8s %8s %9s %9s %7s\n",
		"trace", "capacity", "entries", "L0 mean", "L0 hit", "LRU hit", "otter", "L0-LRU", "L0-otter", "otter n", "seconds")
	var rows []row
	done := map[uint64]bool{}
	for _, pct := range caps {
		target := int(float64(*keys) * pct / 100)
		size, entries, err := calibrate(target)
		if err != nil {
			fmt.Fprintln(os.Stderr, "hitratio:", err)
			os.Exit(1)
		}
		if done[size] {
			fmt.Printf("# capacity %g%%: target %d entries needs the same region as a capacity above; skipped\n", pct, target)
			continue
		}
		done[size] = true
		fmt.Printf("# capacity %g%% of the keys: target %d entries; a region of %d bytes holds %d at steady state\n",
			pct, target, size, entries)
		for _, tr := range traces {
			start := time.Now()
			l0Hit, l0Mean, err := replayL0(size, tr.reqs, keyBytes)
			if err != nil {
				fmt.Fprintln(os.Stderr, "hitratio:", err)
				os.Exit(1)
			}
			lruHit := replayLRU(entries, tr.reqs)
			otterHit, otterMean := replayOtter(entries, tr.reqs)
			r := row{Trace: tr.name, CapacityPct: 100 * float64(entries) / float64(*keys),
				TargetEntries: target, Entries: entries, RegionBytes: size,
				L0MeanEntries: l0Mean, OtterMeanSize: otterMean,
				L0: l0Hit, LRU: lruHit, Otter: otterHit, Seconds: time.Since(start).Seconds()}
			rows = append(rows, r)
			fmt.Printf("%-15s %7.2f%% %8d %8.0f %7.2f%% %7.2f%% %7.2f%% %+7.2f%% %+8.2f%% %9.0f %7.1f\n",
				tr.name, r.CapacityPct, entries, l0Mean, 100*l0Hit, 100*lruHit, 100*otterHit,
				100*(l0Hit-lruHit), 100*(l0Hit-otterHit), otterMean, r.Seconds)
		}
	}
	// Goals: L0 above LRU everywhere, and within 2 points of W-TinyLFU.
	aboveLRU, nearOtter := 0, 0
	worstLRU, worstOtter := math.Inf(1), math.Inf(1)
	for _, r := range rows {
		if r.L0 > r.LRU {
			aboveLRU++
		}
		if r.L0 >= r.Otter-0.02 {
			nearOtter++
		}
		worstLRU = math.Min(worstLRU, r.L0-r.LRU)
		worstOtter = math.Min(worstOtter, r.L0-r.Otter)
	}
	fmt.Printf("\ngoal: L0 above exact LRU at every capacity and trace: %d/%d (smallest margin %+.2f points) %s\n",
		aboveLRU, len(rows), 100*worstLRU, metStr(aboveLRU == len(rows)))
	fmt.Printf("goal: L0 within 2 points of otter's W-TinyLFU: %d/%d (worst L0 - otter %+.2f points) %s\n",
		nearOtter, len(rows), 100*worstOtter, metStr(nearOtter == len(rows)))
	if *jsonOut != "" {
		out := map[string]any{"keys": *keys, "requests": *requests, "value_size": valueSize,
			"quick": *quick, "rows": rows}
		b, _ := json.MarshalIndent(out, "", " ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "hitratio:", err)
			os.Exit(1)
		}
	}
}

func metStr(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// insertScan returns reqs with one pass over every key (0..k-1, in order)
// inserted at its middle.
func insertScan(reqs []int32, k int) []int32 {
	mid := len(reqs) / 2
	out := make([]int32, 0, len(reqs)+k)
	out = append(out, reqs[:mid]...)
	for i := 0; i < k; i++ {
		out = append(out, int32(i))
	}
	return append(out, reqs[mid:]...)
}

var regionSeq int

func openRegion(size uint64) (*l0.Region, error) {
	regionSeq++
	path := fmt.Sprintf("/dev/shm/cachee-hitratio-%d-%d", os.Getpid(), regionSeq)
	// An index with room to spare, so that space, not the index, limits
	// the entries; few process slots, since only this process uses it.
	r, err := l0.Open(path, l0.Options{Create: true, Exclusive: true, Size: size,
		MaxEntries: size / 96, MaxProcs: 8})
	if err != nil {
		return nil, err
	}
	l0.Unlink(path) // the mapping keeps it alive until Close
	return r, nil
}

// steadyEntries fills a fresh region of the given size with distinct keys
// and returns its average entry count once it is full (over several
// samples, since the count drops each time a segment is reclaimed).
func steadyEntries(size uint64) (int, error) {
	r, err := openRegion(size)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	val := make([]byte, valueSize)
	key := make([]byte, 0, 32)
	fill := int(size / 100) // more than fits
	var sum, samples int64
	for i := 0; i < 3*fill; i++ {
		key = fmt.Appendf(key[:0], "fill:%010d", i)
		if err := r.Set(key, val); err != nil {
			return 0, err
		}
		if i >= fill && i%997 == 0 {
			sum += r.Count()
			samples++
		}
	}
	st, err := r.Stats()
	if err != nil {
		return 0, err
	}
	if st.Evictions == 0 {
		return 0, fmt.Errorf("region of %d bytes never filled", size)
	}
	return int(sum / samples), nil
}

// calibrate finds a region size whose steady-state entry count is within
// 1% of target (secant steps on size), and returns the size and the count.
func calibrate(target int) (uint64, int, error) {
	size := uint64(target) * 300 &^ 4095
	if size < l0.SizeMin {
		size = l0.SizeMin
	}
	var entries int
	var err error
	for step := 0; step < 8; step++ {
		if entries, err = steadyEntries(size); err != nil {
			return 0, 0, err
		}
		if math.Abs(float64(entries-target)) <= 0.01*float64(target) {
			return size, entries, nil
		}
		next := uint64(float64(size)*float64(target)/float64(entries)) &^ 4095
		if next < l0.SizeMin {
			next = l0.SizeMin
		}
		if next == size {
			break
		}
		size = next
	}
	return size, entries, nil
}

// replayL0 replays reqs against a fresh region of the given size (Get; on a
// miss, Set) and returns the hit ratio and the mean entry count over the
// second half of the replay (sampled every 4096 requests).
func replayL0(size uint64, reqs []int32, keys [][]byte) (float64, float64, error) {
	r, err := openRegion(size)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	val := make([]byte, valueSize)
	buf := make([]byte, 0, valueSize)
	hits := 0
	var sum, samples int64
	for i, k := range reqs {
		buf, err = r.Get(keys[k], buf)
		switch err {
		case nil:
			hits++
		case l0.ErrNotFound:
			if err := r.Set(keys[k], val); err != nil {
				return 0, 0, err
			}
		default:
			return 0, 0, err
		}
		if i >= len(reqs)/2 && i%4096 == 0 {
			sum += r.Count()
			samples++
		}
	}
	return float64(hits) / float64(len(reqs)), float64(sum) / float64(max(samples, 1)), nil
}

// replayOtter replays reqs against otter v2 bounded to capacity entries
// (GetIfPresent; on a miss, Set) and returns the hit ratio and the mean
// EstimatedSize over the second half of the replay.
func replayOtter(capacity int, reqs []int32) (float64, float64) {
	c := otter.Must(&otter.Options[int32, struct{}]{
		MaximumSize: capacity,
		Executor:    func(fn func()) { fn() },
	})
	hits := 0
	var sum, samples int64
	for i, k := range reqs {
		if _, ok := c.GetIfPresent(k); ok {
			hits++
		} else {
			c.Set(k, struct{}{})
		}
		if i >= len(reqs)/2 && i%4096 == 0 {
			sum += int64(c.EstimatedSize())
			samples++
		}
	}
	c.InvalidateAll()
	return float64(hits) / float64(len(reqs)), float64(sum) / float64(max(samples, 1))
}

// replayLRU replays reqs against an exact LRU of capacity entries.
func replayLRU(capacity int, reqs []int32) float64 {
	ll := list.New()
	m := make(map[int32]*list.Element, capacity)
	hits := 0
	for _, k := range reqs {
		if e, ok := m[k]; ok {
			hits++
			ll.MoveToFront(e)
			continue
		}
		m[k] = ll.PushFront(k)
		if ll.Len() > capacity {
			old := ll.Back()
			ll.Remove(old)
			delete(m, old.Value.(int32))
		}
	}
	return float64(hits) / float64(len(reqs))
}
