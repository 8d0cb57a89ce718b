// Package l0 is the Go binding of cachee's L0 engine: one hash table in
// shared memory (a file on tmpfs or hugetlbfs, mapped MAP_SHARED) that every
// process on a machine reads without a system call, a lock or a copy.
//
// The engine itself is the runtime-free C code of this directory, specified
// in include/cachee_l0.h; cgo compiles it into this package, so Go programs
// share regions with the Python extension and with each other.
//
// A Region is safe for concurrent use by any number of goroutines, except
// Close, which must be the last call on it: Close must not race any other
// method of the Region or of its Pinned views. After Close every method
// returns ErrClosed (Count returns 0) instead of touching the unmapped
// region.
//
// Reads come in three forms:
//
//   - Get and GetItem copy the value (and metadata) into a buffer of the
//     caller's, growing it when needed: the result is a consistent snapshot,
//     never a torn value, even while other processes overwrite the key.
//   - GetPinned and GetMany return Pinned views: the bytes stay in shared
//     memory (a read-only mapping, no copy) and stay valid and unchanged
//     until Pinned.Release, whatever writers do meanwhile (overwrite, delete,
//     expiry, eviction).
//   - Contains tests presence without counting a hit or a miss.
//
// Errors are the sentinels of errors.go (ErrNotFound for a miss); system
// call failures are syscall.Errno values.
package l0

/*
#cgo CFLAGS: -I${SRCDIR}/../../include -std=gnu11 -O2 -fvisibility=hidden -Wall -Wextra -Werror
#cgo LDFLAGS: -lpthread
#cgo noescape cachee_l0_open
#cgo nocallback cachee_l0_open
#cgo noescape cachee_l0_unlink
#cgo nocallback cachee_l0_unlink
#cgo nocallback cachee_l0_close
#cgo nocallback cachee_l0_count
#cgo noescape cachee_l0_stats_get
#cgo nocallback cachee_l0_stats_get
#cgo noescape cachee_l0_info_get
#cgo nocallback cachee_l0_info_get
#cgo noescape cachee_l0_check
#cgo nocallback cachee_l0_check
#cgo nocallback cachee_l0_reap
#cgo noescape bind_get
#cgo nocallback bind_get
#cgo noescape bind_set
#cgo nocallback bind_set
#cgo noescape bind_delete
#cgo nocallback bind_delete
#cgo noescape bind_contains
#cgo nocallback bind_contains
#cgo noescape bind_hash
#cgo nocallback bind_hash

#include <stdint.h>
#include <stdlib.h>
#include "cachee_l0.h"

// The wrappers below (bind_*: the C half of this binding) take keys,
// values and metadata as Go strings
// (_GoString_, built without a copy over the caller's byte slices): cgo does
// not check a string argument for Go pointers (a string holds none), which
// saves its pointer check (several ns) per argument on the hot paths.
// Results come back by value for the same reason.  None of them keeps a
// pointer after it returns.

static inline const void *bind_ptr(_GoString_ s) {
	return _GoStringLen(s) ? (const void *)_GoStringPtr(s) : NULL;
}

// What a copying read reports.
typedef struct bind_res {
	int rc;
	uint32_t meta_len;
	uint64_t value_len;
	uint64_t version;
	int64_t expires_ns;
} bind_res;

static bind_res bind_get(cachee_l0 *h, _GoString_ key, void *buf, size_t cap,
                         void *meta, size_t meta_cap) {
	cachee_l0_item it;
	it.value_len = 0;
	it.version = 0;
	it.expires_ns = 0;
	it.meta_buf = meta;
	it.meta_cap = (uint32_t)meta_cap;
	it.meta_len = 0;
	bind_res r;
	r.rc = cachee_l0_get(h, bind_ptr(key), _GoStringLen(key), buf, cap, &it);
	r.meta_len = it.meta_len;
	r.value_len = it.value_len;
	r.version = it.version;
	r.expires_ns = it.expires_ns;
	return r;
}

static int bind_set(cachee_l0 *h, _GoString_ key, _GoString_ value,
                    _GoString_ meta, uint64_t ttl_ns, uint32_t flags) {
	return cachee_l0_set(h, bind_ptr(key), _GoStringLen(key), bind_ptr(value),
	                     _GoStringLen(value), bind_ptr(meta),
	                     _GoStringLen(meta), ttl_ns, flags);
}

static int bind_delete(cachee_l0 *h, _GoString_ key) {
	return cachee_l0_delete(h, bind_ptr(key), _GoStringLen(key));
}

static int bind_contains(cachee_l0 *h, _GoString_ key) {
	return cachee_l0_contains(h, bind_ptr(key), _GoStringLen(key));
}

static uint64_t bind_hash(_GoString_ b) {
	return cachee_l0_hash(bind_ptr(b), _GoStringLen(b));
}
*/
import "C"

import (
	"fmt"
	"io/fs"
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/zeebo/xxh3"
)

// Region is an open L0 region. Create one with Open or Create and release it
// with Close. All methods may be called concurrently from any number of
// goroutines, except Close (see the package documentation).
type Region struct {
	h      *C.cachee_l0
	closed atomic.Bool
	info   Info
	gens   keyGens     // key generation table (keygen.go)
	evq    *evictQueue // nil until EnableEvictions (keygen.go)
}

// bptr returns a pointer to the first byte of b for C, or nil when b is
// empty (never the address of a zero-length slice, which may point past the
// end of another Go object).
func bptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

// str views b as a string without copying, to hand read-only bytes to the
// C wrappers (see the preamble); the C side never writes through it nor
// keeps it.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Open opens the region at path, creating it when opts.Create is set.
//
// path is a file path, or a bare name (no '/') meaning /dev/shm/NAME. The
// file is opened with O_NOFOLLOW, must be a regular file with one link, owned
// by the effective uid and no more permissive than opts.Mode (unless allowed
// by opts), on tmpfs or hugetlbfs, and must pass validation before anything
// in it is used. Creation reserves all of its memory, so a filesystem that is
// too small is reported now (ErrNoSpace), never as a SIGBUS later.
//
// Errors are wrapped in an *fs.PathError (Op "open"); match them with
// errors.Is: ErrInvalid (negative OpenTimeout, mode bits outside 0777),
// ErrBadPath, ErrNoRegion (absent and no Create), ErrRegionExists (Create
// and Exclusive, present), ErrSize (bad size or parameters for a new region),
// ErrSizeMismatch, ErrUnsafePath (symlink, directory, hard-linked), ErrOwner,
// ErrMode, ErrNotSHM, ErrNotRegion (not a cachee region), ErrFormat
// (incompatible build), ErrCorrupt (geometry inconsistent), ErrNotReady
// (creator unfinished after OpenTimeout), ErrNoSpace, or a syscall.Errno
// from open, fstat, mmap or posix_fallocate.
func Open(path string, opts Options) (*Region, error) {
	var o C.cachee_l0_options
	C.cachee_l0_options_init(&o)
	o.size = C.uint64_t(opts.Size)
	var flags uint32
	if opts.Create {
		flags |= C.CACHEE_L0_CREATE
	}
	if opts.Exclusive {
		flags |= C.CACHEE_L0_EXCLUSIVE
	}
	if opts.AllowForeignOwner {
		flags |= C.CACHEE_L0_ALLOW_FOREIGN_OWNER
	}
	if opts.AllowLooseMode {
		flags |= C.CACHEE_L0_ALLOW_LOOSE_MODE
	}
	if opts.AllowAnyFS {
		flags |= C.CACHEE_L0_ALLOW_ANY_FS
	}
	if opts.HugePages {
		flags |= C.CACHEE_L0_HUGEPAGES
	}
	o.flags = C.uint32_t(flags)
	o.mode = C.uint32_t(opts.Mode)
	o.segment_size = C.uint32_t(opts.SegmentSize)
	o.max_procs = C.uint32_t(opts.MaxProcs)
	o.max_entries = C.uint64_t(opts.MaxEntries)
	o.share_slot = C.uint64_t(opts.ShareSlot)
	switch t := opts.OpenTimeout; {
	case t < 0:
		return nil, &fs.PathError{Op: "open", Path: path, Err: ErrInvalid}
	case t > 0:
		ms := (t + time.Millisecond - 1) / time.Millisecond
		if ms > math.MaxUint32 {
			ms = math.MaxUint32
		}
		o.open_timeout_ms = C.uint32_t(ms)
	}
	if len(path) == 0 || len(path) >= 4096 || containsNUL(path) {
		return nil, &fs.PathError{Op: "open", Path: path, Err: ErrBadPath}
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var h *C.cachee_l0
	if rc := C.cachee_l0_open(cpath, &o, &h); rc != 0 {
		return nil, &fs.PathError{Op: "open", Path: path, Err: codeErr(rc)}
	}
	r := &Region{h: h}
	var ci C.cachee_l0_info
	if rc := C.cachee_l0_info_get(h, &ci); rc != 0 {
		C.cachee_l0_close(h)
		return nil, &fs.PathError{Op: "open", Path: path, Err: codeErr(rc)}
	}
	r.info = Info{
		RegionSize:  uint64(ci.region_size),
		ArenaSize:   uint64(ci.arena_size),
		ValueMax:    uint64(ci.value_max),
		MaxEntries:  uint64(ci.max_entries),
		SegmentSize: uint32(ci.segment_size),
		Segments:    uint32(ci.segments),
		MaxProcs:    uint32(ci.max_procs),
		Shards:      uint32(ci.shards),
		ShardSlots:  uint32(ci.shard_slots),
		HugePages:   ci.flags&C.CACHEE_L0_HUGEPAGES != 0,
		HugeTLBFS:   ci.hugetlbfs != 0,
		Path:        C.GoString(&ci.path[0]),
	}
	r.initKeyGens()
	return r, nil
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// Create opens the region at path, creating it with the given size if it does
// not exist (Open with Options{Size: size, Create: true}). An existing region
// of another size is ErrSizeMismatch; see Open for the other errors.
func Create(path string, size uint64) (*Region, error) {
	return Open(path, Options{Size: size, Create: true})
}

// Unlink removes the region's name from its filesystem. Processes that have
// it open keep using it; its memory is freed when the last one closes it.
// path is as for Open. Errors, wrapped in an *fs.PathError (Op "unlink"):
// ErrBadPath, ErrNoRegion (nothing there), ErrUnsafePath (a symlink or not a
// regular file), ErrNotRegion (the file is not a cachee region; nothing is
// removed), or a syscall.Errno.
func Unlink(path string) error {
	if len(path) == 0 || len(path) >= 4096 || containsNUL(path) {
		return &fs.PathError{Op: "unlink", Path: path, Err: ErrBadPath}
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if rc := C.cachee_l0_unlink(cpath); rc != 0 {
		return &fs.PathError{Op: "unlink", Path: path, Err: codeErr(rc)}
	}
	return nil
}

// Hash returns XXH3-64 (seed 0) of b, the hash the engine uses for keys.
// It is computed in Go (github.com/zeebo/xxh3, pinned to the same test
// vectors as the engine's libxxhash in hash_test.go): a cgo call costs more
// than hashing a key.
func Hash(b []byte) uint64 { return xxh3.Hash(b) }

// hashC is Hash computed by the engine's libxxhash (for the tests that pin
// the two to each other).
func hashC(b []byte) uint64 {
	return uint64(C.bind_hash(str(b)))
}

// Info returns the sizes and limits of the region (recorded at Open; still
// available after Close).
func (r *Region) Info() Info { return r.info }

// Registration returns this process's registration through r, as a token
// for Options.ShareSlot (registering the process first if r has not been
// used yet). The token is never 0 and is valid in this process while r is
// open. Errors: ErrClosed, ErrTooManyProcs.
func (r *Region) Registration() (uint64, error) {
	if r.closed.Load() {
		return 0, ErrClosed
	}
	var t C.uint64_t
	if rc := C.cachee_l0_registration(r.h, &t); rc != 0 {
		return 0, codeErr(rc)
	}
	return uint64(t), nil
}

// Close releases this process's use of the region: its pins and open
// segments go back to the region, and the mappings are removed. Release
// Pinned views first: their Bytes become invalid (a slice obtained before
// Close must not be read after it). Close must not race any other call on
// the Region. A second Close returns ErrClosed; otherwise the error, if any,
// is a syscall.Errno from munmap or close (the region is closed anyway).
func (r *Region) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	r.closeEvictions()
	if rc := C.cachee_l0_close(r.h); rc != 0 {
		return codeErr(rc)
	}
	return nil
}

// Buffers on the stack for reads into a small or missing destination, so
// that one call to the engine usually suffices (a retry with a larger buffer
// reads, and counts a hit, twice).
const (
	localValue = 512
	localMeta  = 256
)

// Get appends the value of key to dst[:0] and returns it: the value is
// copied into dst's array when it fits in cap(dst), else into a new array
// (so pass the previous result to reuse its memory). The copy is a
// consistent snapshot: never a mix of two writes.
//
// A value that does not fit cap(dst) (or, when cap(dst) is 0, a small
// buffer of Get's own, 512 bytes) is read twice, once to learn its length,
// and counts two hits in Stats.
//
// On error Get returns dst[:0] and ErrNotFound (absent or expired: a miss),
// ErrInvalid (empty key), ErrKeyTooLarge, ErrTooManyProcs (this process
// could not get a slot), ErrCorrupt, or ErrClosed.
func (r *Region) Get(key, dst []byte) ([]byte, error) {
	if r.closed.Load() {
		return dst[:0], ErrClosed
	}
	buf := dst[:cap(dst)]
	if len(buf) == 0 {
		var local [localValue]byte
		res := C.bind_get(r.h, str(key), unsafe.Pointer(&local[0]), localValue, nil, 0)
		if res.rc == 0 {
			return append(dst[:0], local[:res.value_len]...), nil
		}
		if res.rc != C.CACHEE_L0_E_BUFFER_TOO_SMALL {
			return dst[:0], codeErr(res.rc)
		}
		buf = make([]byte, res.value_len)
	}
	for {
		res := C.bind_get(r.h, str(key), unsafe.Pointer(&buf[0]), C.size_t(len(buf)), nil, 0)
		if res.rc == 0 {
			return buf[:res.value_len], nil
		}
		if res.rc != C.CACHEE_L0_E_BUFFER_TOO_SMALL {
			return dst[:0], codeErr(res.rc)
		}
		// The value outgrew the buffer (rewritten meanwhile): grow to
		// its size and read again. Buffers only grow, so this ends.
		buf = make([]byte, res.value_len)
	}
}

// GetItem is Get that also returns the metadata (appended to metaDst[:0],
// like the value to dst[:0]), the version and the expiry of the stored
// version, all from the same snapshot. Errors are those of Get; on error the
// Item holds dst[:0] and metaDst[:0]. Like Get, it reads twice when the
// value or the metadata fits neither the buffer passed nor GetItem's own
// small buffers (512 bytes of value, 256 of metadata).
func (r *Region) GetItem(key, dst, metaDst []byte) (Item, error) {
	if r.closed.Load() {
		return Item{Value: dst[:0], Meta: metaDst[:0]}, ErrClosed
	}
	if cap(dst) >= localValue && cap(metaDst) >= localMeta {
		return r.getItem(key, dst, metaDst)
	}
	return r.getItemLocal(key, dst, metaDst)
}

// getItem is GetItem into buffers large enough for GetItem's own: no local
// arrays, which Go would zero on every call (768 bytes).
func (r *Region) getItem(key, dst, metaDst []byte) (Item, error) {
	buf, mbuf := dst[:cap(dst)], metaDst[:cap(metaDst)]
	for {
		res := C.bind_get(r.h, str(key), bptr(buf), C.size_t(len(buf)), bptr(mbuf), C.size_t(len(mbuf)))
		if res.rc == 0 {
			it := Item{Value: buf[:res.value_len], Meta: mbuf[:res.meta_len], Version: uint64(res.version)}
			if res.expires_ns != 0 {
				it.Expires = time.Unix(0, int64(res.expires_ns))
			}
			return it, nil
		}
		if res.rc != C.CACHEE_L0_E_BUFFER_TOO_SMALL {
			return Item{Value: dst[:0], Meta: metaDst[:0]}, codeErr(res.rc)
		}
		if uint64(res.value_len) > uint64(len(buf)) {
			buf = make([]byte, res.value_len)
		}
		if uint64(res.meta_len) > uint64(len(mbuf)) {
			mbuf = make([]byte, res.meta_len)
		}
	}
}

// getItemLocal is GetItem when a buffer of the caller's is smaller than
// GetItem's own. The local arrays are only handed to C and copied from,
// never sliced into a variable that reaches the result: so they stay on the
// stack, and the read allocates nothing when the value fits dst.
func (r *Region) getItemLocal(key, dst, metaDst []byte) (Item, error) {
	var lv [localValue]byte
	var lm [localMeta]byte
	buf := dst[:cap(dst)]
	mbuf := metaDst[:cap(metaDst)]
	localV, localM := len(buf) < localValue, len(mbuf) < localMeta
	for {
		vp, vn := bptr(buf), len(buf)
		if localV {
			vp, vn = unsafe.Pointer(&lv[0]), localValue
		}
		mp, mn := bptr(mbuf), len(mbuf)
		if localM {
			mp, mn = unsafe.Pointer(&lm[0]), localMeta
		}
		res := C.bind_get(r.h, str(key), vp, C.size_t(vn), mp, C.size_t(mn))
		if rc := res.rc; rc == 0 {
			it := Item{Version: uint64(res.version)}
			if localV {
				it.Value = append(dst[:0], lv[:res.value_len]...)
			} else {
				it.Value = buf[:res.value_len]
			}
			if localM {
				it.Meta = append(metaDst[:0], lm[:res.meta_len]...)
			} else {
				it.Meta = mbuf[:res.meta_len]
			}
			if res.expires_ns != 0 {
				it.Expires = time.Unix(0, int64(res.expires_ns))
			}
			return it, nil
		}
		if res.rc != C.CACHEE_L0_E_BUFFER_TOO_SMALL {
			return Item{Value: dst[:0], Meta: metaDst[:0]}, codeErr(res.rc)
		}
		if uint64(res.value_len) > uint64(vn) {
			buf = make([]byte, res.value_len)
			localV = false
		}
		if uint64(res.meta_len) > uint64(mn) {
			mbuf = make([]byte, res.meta_len)
			localM = false
		}
	}
}

// Contains reports whether key is present and not expired. It counts
// neither a hit nor a miss and does not change the key's frequency. Errors:
// ErrInvalid (empty key), ErrKeyTooLarge, ErrTooManyProcs, ErrCorrupt,
// ErrClosed.
func (r *Region) Contains(key []byte) (bool, error) {
	if r.closed.Load() {
		return false, ErrClosed
	}
	rc := C.bind_contains(r.h, str(key))
	if rc >= 0 {
		return rc == 1, nil
	}
	return false, codeErr(rc)
}

// Count returns the number of entries in the index, including expired ones
// not yet purged; approximate while writers run. 0 after Close.
func (r *Region) Count() int64 {
	if r.closed.Load() {
		return 0
	}
	return int64(C.cachee_l0_count(r.h))
}

// Set stores value under key (no metadata, no expiry), replacing any previous
// value. Readers see the previous value or this one, never a mix; Pinned
// views of the previous value stay valid.
//
// Errors (on any error nothing changes): ErrInvalid (empty key),
// ErrKeyTooLarge, ErrValueTooLarge (longer than Info().ValueMax), ErrFull (no
// space could be made: the rest is pinned), ErrTooManyProcs, ErrCorrupt,
// ErrLock, ErrClosed.
func (r *Region) Set(key, value []byte) error {
	if r.closed.Load() {
		return ErrClosed
	}
	rc := C.bind_set(r.h, str(key), str(value), "", 0, 0)
	if rc == 0 {
		return nil
	}
	return codeErr(rc)
}

// SetWith is Set with metadata, a TTL and the IfAbsent condition (see
// SetOptions). Besides the errors of Set it returns ErrExists (IfAbsent and
// the key is present), ErrMetaTooLarge, and ErrInvalid for a negative or
// overflowing TTL.
func (r *Region) SetWith(key, value []byte, o SetOptions) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if o.TTL < 0 {
		return ErrInvalid
	}
	var flags C.uint32_t
	if o.IfAbsent {
		flags = C.CACHEE_L0_IF_ABSENT
	}
	rc := C.bind_set(r.h, str(key), str(value), str(o.Meta), C.uint64_t(o.TTL), flags)
	if rc == 0 {
		return nil
	}
	return codeErr(rc)
}

// Delete removes key. Pinned views of its value stay valid. Errors:
// ErrNotFound (the key was absent or expired), ErrInvalid (empty key),
// ErrKeyTooLarge, ErrTooManyProcs, ErrCorrupt, ErrLock, ErrClosed.
func (r *Region) Delete(key []byte) error {
	if r.closed.Load() {
		return ErrClosed
	}
	rc := C.bind_delete(r.h, str(key))
	if rc == 0 {
		return nil
	}
	return codeErr(rc)
}

// Stats returns the region's counters summed over all processes (dead
// processes are reaped first, so LiveProcs is exact). Errors: ErrLock,
// ErrTooManyProcs, ErrClosed.
func (r *Region) Stats() (Stats, error) {
	if r.closed.Load() {
		return Stats{}, ErrClosed
	}
	var s C.cachee_l0_stats
	if rc := C.cachee_l0_stats_get(r.h, &s); rc != 0 {
		return Stats{}, codeErr(rc)
	}
	return Stats{
		Hits:               uint64(s.hits),
		Misses:             uint64(s.misses),
		Sets:               uint64(s.sets),
		Deletes:            uint64(s.deletes),
		Evictions:          uint64(s.evictions),
		Expirations:        uint64(s.expirations),
		Reinsertions:       uint64(s.reinsertions),
		SetFailures:        uint64(s.set_failures),
		Entries:            uint64(s.entries),
		Capacity:           uint64(s.capacity_bytes),
		UsedBytes:          uint64(s.used_bytes),
		FreeBytes:          uint64(s.free_bytes),
		PinnedBytes:        uint64(s.pinned_bytes),
		Pins:               uint64(s.pins),
		LimboBytes:         uint64(s.limbo_bytes),
		LiveProcs:          uint64(s.live_procs),
		ReapedProcs:        uint64(s.reaped_procs),
		SegmentsFree:       uint64(s.segments_free),
		SegmentsOpen:       uint64(s.segments_open),
		SegmentsSmall:      uint64(s.segments_small),
		SegmentsMain:       uint64(s.segments_main),
		SegmentsLimbo:      uint64(s.segments_limbo),
		SegmentsReclaiming: uint64(s.segments_reclaiming),
	}, nil
}

// Check validates every invariant of the region (geometry, slot and segment
// tables, queues, every index entry, counters), taking the global lock and
// each shard lock in turn. It returns nil when the region is consistent, an
// error wrapping ErrCorrupt whose text describes the first violation found,
// ErrLock if a lock could not be taken, or ErrClosed.
func (r *Region) Check() error {
	if r.closed.Load() {
		return ErrClosed
	}
	var msg [1024]byte
	rc := C.cachee_l0_check(r.h, (*C.char)(unsafe.Pointer(&msg[0])), C.size_t(len(msg)))
	if rc == 0 {
		return nil
	}
	err := codeErr(rc)
	if rc == C.CACHEE_L0_E_CORRUPT {
		n := 0
		for n < len(msg) && msg[n] != 0 {
			n++
		}
		if n > 0 {
			return fmt.Errorf("%w: %s", err, msg[:n])
		}
	}
	return err
}

// Reap reclaims now the process slots of dead processes (their pins, open
// segments and segments being reclaimed) and returns how many it reclaimed.
// Errors: ErrLock, ErrTooManyProcs, ErrClosed.
func (r *Region) Reap() (int, error) {
	if r.closed.Load() {
		return 0, ErrClosed
	}
	rc := C.cachee_l0_reap(r.h)
	if rc < 0 {
		return 0, codeErr(rc)
	}
	return int(rc), nil
}
