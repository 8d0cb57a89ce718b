package l0_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/cachee-dev/cachee/core/l0"
)

// Every read benchmark replays the same random stream of indices over the
// same 1M keys ("key:%08d"), so the map and the region see identical work.
const (
	benchKeys   = 1 << 20
	benchStream = 1 << 22
)

var (
	benchOnce    sync.Once
	benchKeyList [][]byte
	benchIdx     []int32
)

func benchSetup() {
	benchOnce.Do(func() {
		benchKeyList = make([][]byte, benchKeys)
		for i := range benchKeyList {
			benchKeyList[i] = []byte(fmt.Sprintf("key:%08d", i))
		}
		rng := rand.New(rand.NewPCG(42, 42))
		benchIdx = make([]int32, benchStream)
		for i := range benchIdx {
			benchIdx[i] = int32(rng.IntN(benchKeys))
		}
	})
}

func benchValue(i, n int) []byte {
	v := make([]byte, n)
	for j := range v {
		v[j] = byte(i + j)
	}
	return v
}

// Fixtures shared by the benchmarks of one value size: built once.
type readFixture struct {
	once sync.Once
	m    map[string][]byte
	r    *l0.Region
	path string
	err  error
}

var fixtures = map[int]*readFixture{64: {}, 512: {}}

func benchMap(b *testing.B, n int) map[string][]byte {
	benchSetup()
	f := fixtures[n]
	if f.m == nil {
		f.m = make(map[string][]byte, benchKeys)
		for i, k := range benchKeyList {
			f.m[string(k)] = benchValue(i, n)
		}
	}
	return f.m
}

// benchRegion returns a region holding all benchKeys values of n bytes,
// sized to hold them without eviction (live bytes well below the pressure
// mark).
func benchRegion(b *testing.B, n int) *l0.Region {
	benchSetup()
	f := fixtures[n]
	f.once.Do(func() {
		rec := uint64(64 + 64 + (n+63)/64*64) // header, key, value
		size := rec * benchKeys * 2
		f.path = fmt.Sprintf("/dev/shm/cachee-gobench-%d-%d", os.Getpid(), n)
		f.r, f.err = l0.Open(f.path, l0.Options{Create: true, Size: size, MaxEntries: benchKeys * 3 / 2})
		if f.err != nil {
			return
		}
		// Unlinked at once: the mapping keeps it alive until the process
		// exits (fixtures are shared by benchmarks, so nobody closes it).
		l0.Unlink(f.path)
		for i, k := range benchKeyList {
			if f.err = f.r.Set(k, benchValue(i, n)); f.err != nil {
				return
			}
		}
		if c := f.r.Count(); c != benchKeys {
			f.err = fmt.Errorf("region holds %d of %d keys", c, benchKeys)
		}
	})
	if f.err != nil {
		b.Fatal(f.err)
	}
	return f.r
}

func reportOps(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func benchMapGet(b *testing.B, n int) {
	m := benchMap(b, n)
	buf := make([]byte, 0, n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := benchKeyList[benchIdx[i&(benchStream-1)]]
		v, ok := m[string(k)]
		if !ok {
			b.Fatal("miss")
		}
		buf = append(buf[:0], v...)
	}
	reportOps(b)
	if len(buf) != n {
		b.Fatal(len(buf))
	}
}

func benchL0Get(b *testing.B, n int) {
	r := benchRegion(b, n)
	buf := make([]byte, 0, n)
	var err error
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := benchKeyList[benchIdx[i&(benchStream-1)]]
		if buf, err = r.Get(k, buf); err != nil {
			b.Fatal(err)
		}
	}
	reportOps(b)
	if len(buf) != n {
		b.Fatal(len(buf))
	}
}

func BenchmarkMapGet64(b *testing.B)  { benchMapGet(b, 64) }
func BenchmarkMapGet512(b *testing.B) { benchMapGet(b, 512) }
func BenchmarkL0Get64(b *testing.B)   { benchL0Get(b, 64) }
func BenchmarkL0Get512(b *testing.B)  { benchL0Get(b, 512) }

func BenchmarkL0GetPinned512(b *testing.B) {
	r := benchRegion(b, 512)
	var sum byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := benchKeyList[benchIdx[i&(benchStream-1)]]
		p, err := r.GetPinned(k)
		if err != nil {
			b.Fatal(err)
		}
		sum += p.Bytes()[0]
		p.Release()
	}
	reportOps(b)
	_ = sum
}

func BenchmarkL0GetMany512(b *testing.B) {
	r := benchRegion(b, 512)
	const batch = 32
	keys := make([][]byte, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		for j := range keys {
			keys[j] = benchKeyList[benchIdx[(i+j)&(benchStream-1)]]
		}
		ps, errs := r.GetMany(keys)
		for j, p := range ps {
			if errs[j] != nil {
				b.Fatal(errs[j])
			}
			p.Release()
		}
	}
	reportOps(b)
}

// BenchmarkL0Get512Parallel: one region, GOMAXPROCS goroutines.
func BenchmarkL0Get512Parallel(b *testing.B) {
	r := benchRegion(b, 512)
	var seed sync.Mutex
	next := 0
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		seed.Lock()
		i := next * 7919
		next++
		seed.Unlock()
		buf := make([]byte, 0, 512)
		var err error
		for pb.Next() {
			i++
			if buf, err = r.Get(benchKeyList[benchIdx[i&(benchStream-1)]], buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportOps(b)
}

// benchSet writes b.N values of 512 bytes over the 1M keys of the stream
// into a fresh region of the given size (0: large enough for every record
// written, so nothing is reclaimed or evicted during the loop).
func benchSet(b *testing.B, size uint64) {
	benchSetup()
	const n = 512
	rec := uint64(64 + 64 + n)
	evictFree := size == 0
	if evictFree {
		size = uint64(b.N)*rec*5/4 + 64<<20
	}
	path := fmt.Sprintf("/dev/shm/cachee-gobench-set-%d", os.Getpid())
	r, err := l0.Open(path, l0.Options{Create: true, Size: size, MaxEntries: benchKeys * 3 / 2})
	if err != nil {
		b.Fatal(err)
	}
	l0.Unlink(path) // the mapping keeps it alive until Close
	defer r.Close()
	val := benchValue(1, n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := benchKeyList[benchIdx[i&(benchStream-1)]]
		if err := r.Set(k, val); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportOps(b)
	st, err := r.Stats()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(st.Evictions)/float64(b.N), "evictions/op")
	if evictFree && st.Evictions != 0 {
		b.Fatalf("%d evictions in a region sized to need none", st.Evictions)
	}
}

// BenchmarkL0Set512: a region sized for everything the loop writes.
func BenchmarkL0Set512(b *testing.B) { benchSet(b, 0) }

// BenchmarkL0Set512Evict: 64 MiB for 1M keys of 512 bytes (about 10 times
// more than fits): most writes evict.
func BenchmarkL0Set512Evict(b *testing.B) { benchSet(b, 64<<20) }

// BenchmarkHash64: XXH3 of a 64-byte key, as l0.Hash computes it (Go).
func BenchmarkHash64(b *testing.B) {
	k := benchValue(3, 64)
	var h uint64
	for i := 0; i < b.N; i++ {
		h += l0.Hash(k)
	}
	_ = h
}

// BenchmarkHash64C: the same hash by the engine's libxxhash through cgo
// (what l0.Hash cost before it was computed in Go).
func BenchmarkHash64C(b *testing.B) {
	k := benchValue(3, 64)
	var h uint64
	for i := 0; i < b.N; i++ {
		h += l0.HashC(k)
	}
	_ = h
}

// The Hot benchmarks use 1024 keys that stay in the CPU caches: they measure
// the cost of the call itself (cgo transition, hashing, probing, copying)
// rather than memory latency.
const hotKeys = 1024

func hotRegion(b *testing.B, n int) (*l0.Region, [][]byte) {
	r, _ := newRegion(b, "hot", l0.Options{Size: 16 << 20})
	benchSetup()
	keys := benchKeyList[:hotKeys]
	for i, k := range keys {
		if err := r.Set(k, benchValue(i, n)); err != nil {
			b.Fatal(err)
		}
	}
	return r, keys
}

func BenchmarkMapGetHot64(b *testing.B) {
	benchSetup()
	m := make(map[string][]byte, hotKeys)
	for i, k := range benchKeyList[:hotKeys] {
		m[string(k)] = benchValue(i, 64)
	}
	buf := make([]byte, 0, 64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = append(buf[:0], m[string(benchKeyList[benchIdx[i&(benchStream-1)]&(hotKeys-1)])]...)
	}
	reportOps(b)
}

func BenchmarkL0GetHot64(b *testing.B) {
	r, keys := hotRegion(b, 64)
	buf := make([]byte, 0, 64)
	var err error
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if buf, err = r.Get(keys[benchIdx[i&(benchStream-1)]&(hotKeys-1)], buf); err != nil {
			b.Fatal(err)
		}
	}
	reportOps(b)
}

func BenchmarkL0GetPinnedHot64(b *testing.B) {
	r, keys := hotRegion(b, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := r.GetPinned(keys[benchIdx[i&(benchStream-1)]&(hotKeys-1)])
		if err != nil {
			b.Fatal(err)
		}
		p.Release()
	}
	reportOps(b)
}

func BenchmarkL0ContainsHot(b *testing.B) {
	r, keys := hotRegion(b, 64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ok, err := r.Contains(keys[benchIdx[i&(benchStream-1)]&(hotKeys-1)]); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
	reportOps(b)
}

// BenchmarkL0SetHot512: overwrites of 1024 keys in a 16 MiB region: the
// steady state of a cache whose writes reuse reclaimed segments.
func BenchmarkL0SetHot512(b *testing.B) {
	r, keys := hotRegion(b, 512)
	val := benchValue(2, 512)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := r.Set(keys[benchIdx[i&(benchStream-1)]&(hotKeys-1)], val); err != nil {
			b.Fatal(err)
		}
	}
	reportOps(b)
}
