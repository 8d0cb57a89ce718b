package l0_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachee-dev/cachee/core/l0"
)

// hangLimit is how long one fuzz input may take before it counts as a hang
// (the watchdog panics, which makes the fuzzer record the input as a
// crasher).
const hangLimit = 10 * time.Second

func watchdog(what string) (stop func() bool) {
	t := time.AfterFunc(hangLimit, func() {
		panic(fmt.Sprintf("hang: %s took longer than %v", what, hangLimit))
	})
	return t.Stop
}

// ---------------------------------------------------------------------
// FuzzCorruptRegion: damage a region file, then use it.
// ---------------------------------------------------------------------

// corruptTemplate is a small region, filled and closed, kept as bytes.
type corruptTemplate struct {
	image   []byte
	keys    [][]byte
	areas   [][2]int64 // [start, end) of each table: see patchAreas
	records []int64    // file offsets of the records of live entries
	entries []int64    // file offsets of live index entries
	locks   []int64    // file offsets of the pthread mutexes
	err     error
}

var (
	templateOnce sync.Once
	template     corruptTemplate
	fuzzSeq      atomic.Int64
)

func corruptTemplateImage() *corruptTemplate {
	templateOnce.Do(func() { template.err = buildTemplate(&template) })
	return &template
}

func buildTemplate(tp *corruptTemplate) error {
	path := fmt.Sprintf("/dev/shm/cachee-gofuzz-template-%d", os.Getpid())
	defer removeRegion(path)
	r, err := l0.Open(path, l0.Options{Create: true, Size: 1 << 20, SegmentSize: 4096, MaxProcs: 4, MaxEntries: 512})
	if err != nil {
		return err
	}
	for i := uint64(0); i < 48; i++ {
		k := keyOf(i)
		tp.keys = append(tp.keys, k)
		n := 24 + int(i*37%900)
		if i == 5 {
			n = 3*4096 + 100 // an extent of several segments
		}
		o := l0.SetOptions{}
		if i%3 == 0 {
			o.Meta = []byte(fmt.Sprintf("meta%d", i))
		}
		if i%7 == 0 {
			o.TTL = time.Hour
		}
		if err := r.SetWith(k, makeValue(nil, i, 1, n), o); err != nil {
			return err
		}
	}
	for i := uint64(40); i < 44; i++ { // tombstones
		if err := r.Delete(keyOf(i)); err != nil {
			return err
		}
	}
	for i := uint64(0); i < 8; i++ { // overwritten versions (garbage)
		if err := r.Set(keyOf(i), makeValue(nil, i, 2, 100)); err != nil {
			return err
		}
	}
	if err := r.Close(); err != nil {
		return err
	}
	tp.image, err = os.ReadFile(path)
	if err != nil {
		return err
	}
	img := tp.image
	u64 := func(off int64) int64 { return int64(binary.LittleEndian.Uint64(img[off:])) }
	bounds := []int64{0}
	for _, f := range []string{"slots_off", "pins_off", "segs_off", "gens_off", "rings_off",
		"free_off", "ghost_off", "shards_off", "index_off", "arena_off"} {
		bounds = append(bounds, u64(hdr(f)))
	}
	bounds = append(bounds, int64(len(img)))
	for i := 0; i+1 < len(bounds); i++ {
		tp.areas = append(tp.areas, [2]int64{bounds[i], bounds[i+1]})
	}
	indexOff, arenaOff := u64(hdr("index_off")), u64(hdr("arena_off"))
	esz := lay["sizeof.entry"]
	for off := indexOff; off+esz <= arenaOff; off += esz {
		w1 := binary.LittleEndian.Uint64(img[off+8:])
		if (w1>>46)&3 == 1 {
			tp.entries = append(tp.entries, off)
			tp.records = append(tp.records, arenaOff+int64(w1&(1<<46-1))*64)
		}
	}
	tp.locks = append(tp.locks, hdr("global_lock"))
	shardsOff, nshards := u64(hdr("shards_off")), u64(hdr("nshards"))
	for s := int64(0); s < nshards; s++ {
		tp.locks = append(tp.locks, shardsOff+s*lay["sizeof.shard"]+lay["shard.lock"])
	}
	if len(tp.entries) == 0 {
		return fmt.Errorf("template has no live entries")
	}
	return nil
}

// The areas a patch may target (the first byte of a patch, modulo
// numAreas): the tables of the layout in file order, then a live index
// entry or a live record of the template.
const (
	areaHeader = iota // header page(s), up to slots_off
	areaSlots         // process slots
	areaPins          // pin table
	areaSegs          // segment table
	areaGens          // segment generations
	areaRings         // small and main FIFO rings
	areaFree          // free stack
	areaGhost         // ghost filter
	areaShards        // shards (locks, counters, intents)
	areaIndex         // index entries
	areaArena         // arena (records)
	areaEntry         // one live index entry (offset picks which)
	areaRecord        // one live record: header, key, start of value
	numAreas
)

// applyPatches interprets data as patches of the image. A patch is
// [area][off0][off1][off2][len][len%32+1 bytes]: area%numAreas picks an area
// (see areaHeader...) and the 24-bit offset is taken modulo its size; for
// areaEntry and areaRecord the low 16 bits of the offset pick the entry or
// record and the high 8 bits the byte within it. It returns the number of
// patches applied.
func applyPatches(tp *corruptTemplate, img, data []byte) int {
	n := 0
	for len(data) >= 6 && n < 64 {
		area := int(data[0])
		off := int64(data[1]) | int64(data[2])<<8 | int64(data[3])<<16
		ln := int(data[4])%32 + 1
		data = data[5:]
		if ln > len(data) {
			ln = len(data)
		}
		patch := data[:ln]
		data = data[ln:]
		var start int64
		switch a := area % numAreas; a {
		case areaEntry:
			start = tp.entries[int(off&0xffff)%len(tp.entries)] + (off>>16)%16
		case areaRecord:
			start = tp.records[int(off&0xffff)%len(tp.records)] + (off>>16)%128
		default:
			b := tp.areas[a]
			if b[1] <= b[0] {
				continue
			}
			start = b[0] + off%(b[1]-b[0])
		}
		if start >= int64(len(img)) {
			continue
		}
		copy(img[start:], patch)
		n++
	}
	// A damaged pthread mutex can leave a lock word that looks held by a
	// thread that does not exist (or by us): pthread_mutex_lock then waits
	// forever, which no engine can avoid (any writer of the file can hold a
	// lock). So a mutex keeps its kind, and a nonzero lock word becomes "owner
	// died" (FUTEX_OWNER_DIED), which makes the next locker repair the data.
	for _, m := range tp.locks {
		copy(img[m+16:m+20], tp.image[m+16:m+20]) // __kind
		if binary.LittleEndian.Uint32(img[m:]) != 0 {
			binary.LittleEndian.PutUint32(img[m:], 0x40000000)
		}
	}
	return n
}

func FuzzCorruptRegion(f *testing.F) {
	f.Add([]byte{})
	// More seeds, one per kind of damage, are in testdata/fuzz/FuzzCorruptRegion.
	f.Add([]byte{areaHeader, 8, 0, 0, 7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // format word
	f.Add([]byte{areaEntry, 3, 0, 8, 5, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f})              // entry loc
	f.Add([]byte{areaRecord, 1, 0, 16, 7, 0, 0, 0, 0, 0, 0, 0, 0x40})                     // value_len
	f.Add([]byte{areaArena, 0, 0x10, 0, 3, 'R', '0', '0', 'L'})
	tp := corruptTemplateImage()
	if tp.err != nil {
		f.Fatal(tp.err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img := bytes.Clone(tp.image)
		applyPatches(tp, img, data)
		path := fmt.Sprintf("/dev/shm/cachee-gofuzz-%d-%d", os.Getpid(), fuzzSeq.Add(1))
		if err := os.WriteFile(path, img, 0600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path) // useCorruptRegion removes it as soon as it is open
		// Run in a goroutine so that a hang fails this input (and the test
		// goroutine can report it) instead of stalling the fuzzer; the
		// goroutine is abandoned with its region (never closed under it).
		done := make(chan error, 1)
		go func() { done <- useCorruptRegion(path, tp.keys) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(hangLimit):
			t.Fatalf("hang: operations on the damaged region took longer than %v", hangLimit)
		}
	})
}

// useCorruptRegion runs every operation on a possibly damaged region: any
// error of the engine is acceptable; a crash, a hang, or a value read beyond
// its limits is not (the last is returned as an error).
func useCorruptRegion(path string, keys [][]byte) error {
	r, err := l0.Open(path, l0.Options{OpenTimeout: 50 * time.Millisecond})
	// The mapping keeps the region alive: remove the file at once, so that
	// an input that crashes the process leaves nothing in /dev/shm.
	os.Remove(path)
	if err != nil {
		return nil
	}
	defer r.Close()
	info := r.Info()
	var pins []*l0.Pinned
	defer func() {
		for _, p := range pins {
			p.Release()
		}
	}()
	var buf, mbuf []byte
	sum := byte(0)
	for _, k := range keys {
		buf, err = r.Get(k, buf)
		if err == nil && uint64(len(buf)) > info.ValueMax {
			return fmt.Errorf("Get returned %d bytes, over ValueMax %d", len(buf), info.ValueMax)
		}
		it, err := r.GetItem(k, buf, mbuf)
		if err == nil {
			buf, mbuf = it.Value, it.Meta
			if len(mbuf) > l0.MetaMax {
				return fmt.Errorf("GetItem returned %d bytes of metadata", len(mbuf))
			}
		}
		r.Contains(k)
		p, err := r.GetPinned(k)
		if err == nil {
			for _, b := range p.Bytes() { // touch every byte of the view
				sum += b
			}
			for _, b := range p.Meta() {
				sum += b
			}
			pins = append(pins, p)
		}
	}
	ps, _ := r.GetMany(keys)
	for _, p := range ps {
		if p != nil {
			pins = append(pins, p)
		}
	}
	for i := uint64(0); i < 6; i++ {
		n := 100
		if i == 3 {
			n = 5000
		}
		r.SetWith(keyOf(1000+i), makeValue(nil, i, 9, n), l0.SetOptions{Meta: []byte("m")})
		r.Set(keys[int(i)%len(keys)], makeValue(nil, i, 9, 50))
	}
	r.Delete(keys[2])
	r.Delete(keyOf(1001))
	r.Count()
	r.Stats()
	r.Check()
	r.Reap()
	_ = sum
	return nil
}
