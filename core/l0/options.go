package l0

import "time"

// Limits of the engine (see include/cachee_l0.h).
const (
	// KeyMax is the longest key, in bytes. Keys are arbitrary bytes, at least
	// one; a longer key is ErrKeyTooLarge, an empty one ErrInvalid.
	KeyMax = 65535
	// MetaMax is the longest metadata stored beside a value, in bytes; longer
	// metadata is ErrMetaTooLarge.
	MetaMax = 4096
	// SizeMin is the smallest region (1 MiB); a smaller Options.Size is
	// ErrSize.
	SizeMin = 1 << 20
	// SizeMax is the largest region (16 TiB); a larger Options.Size is
	// ErrSize.
	SizeMax = 1 << 44
	// SegmentMin and SegmentMax bound Options.SegmentSize (a power of two).
	SegmentMin = 4 << 10
	// SegmentMax is the largest segment size.
	SegmentMax = 64 << 20
	// ProcsDefault is the number of process slots when Options.MaxProcs is 0.
	ProcsDefault = 512
	// ProcsMax is the largest Options.MaxProcs.
	ProcsMax = 65536
)

// Options control Open. The zero value opens an existing region of any size
// with the default checks (owned by this user, mode no wider than 0600, on
// tmpfs or hugetlbfs).
type Options struct {
	// Size is the total region size in bytes when creating. When opening an
	// existing region, 0 accepts its size and anything else must equal it
	// (else ErrSizeMismatch). With Create, a size below SizeMin or above
	// SizeMax, or one too small for the other parameters, is ErrSize.
	Size uint64
	// Create creates the region if it does not exist (without it, a missing
	// region is ErrNoRegion). Exactly one of several concurrent creators
	// initialises it; the others wait for it (see OpenTimeout).
	Create bool
	// Exclusive, with Create, fails with ErrRegionExists if the region exists.
	Exclusive bool
	// Mode is the permission bits of a new region (0 means 0600); the file
	// gets exactly these bits, the umask is not applied. An existing region
	// may not grant more (ErrMode) unless AllowLooseMode. Bits outside 0777
	// are ErrInvalid.
	Mode uint32
	// SegmentSize is the segment size, a power of two in
	// [SegmentMin, SegmentMax]; 0 chooses Size/1024 clamped to
	// [16 KiB, 1 MiB]. Creation only; a bad value is ErrSize.
	SegmentSize uint32
	// MaxProcs is the number of process slots, at most ProcsMax; 0 means
	// ProcsDefault. Creation only; a bad value is ErrSize.
	MaxProcs uint32
	// MaxEntries is the number of entries the index is sized for (at 75%
	// load); 0 means Size/512. Creation only; more than Size/16 is ErrSize.
	MaxEntries uint64
	// HugePages asks for huge pages (MADV_HUGEPAGE on tmpfs; a region on
	// hugetlbfs always uses them). Recorded at creation.
	HugePages bool
	// AllowForeignOwner accepts a region owned by another user (else
	// ErrOwner).
	AllowForeignOwner bool
	// AllowLooseMode accepts a region whose permissions are wider than Mode
	// (else ErrMode).
	AllowLooseMode bool
	// AllowAnyFS accepts a path on a filesystem other than tmpfs or hugetlbfs
	// (else ErrNotSHM).
	AllowAnyFS bool
	// OpenTimeout is how long to wait for another process to finish creating
	// the region (else ErrNotReady); 0 means 5 s. It is rounded up to whole
	// milliseconds; a negative value is ErrInvalid.
	OpenTimeout time.Duration
	// ShareSlot, when not 0, is the Registration token of another open
	// handle of this process on the same region: the new Region then uses
	// that handle's process slot instead of claiming one of its own, so the
	// process counts once however many handles (or copies of the engine,
	// such as a Python extension and the libcachee.so it loads) it opens.
	// That handle must stay open until this Region is closed. A token that
	// names no live slot of this process is ErrInvalid.
	ShareSlot uint64
}

// SetOptions are the optional parts of a write (Region.SetWith).
type SetOptions struct {
	// Meta is stored beside the value (at most MetaMax bytes, else
	// ErrMetaTooLarge) and returned by GetItem and Pinned.Meta.
	Meta []byte
	// TTL > 0 makes the entry expire that long from now; 0 means never. A
	// negative TTL, or one whose expiry overflows int64 nanoseconds since
	// 1970, is ErrInvalid.
	TTL time.Duration
	// IfAbsent stores the value only if the key is absent or expired; if it
	// is present, SetWith returns ErrExists and stores nothing.
	IfAbsent bool
}

// Item is what GetItem returns: a copy of the value and of its metadata, and
// the identity and expiry of the stored version.
type Item struct {
	// Value is a copy of the value (appended to the dst passed to GetItem).
	Value []byte
	// Meta is a copy of the metadata (appended to the metaDst passed).
	Meta []byte
	// Version is the record's version: a per-shard sequence that increases
	// with every write to the shard, so a rewrite of a key has a larger one.
	Version uint64
	// Expires is the expiry time; the zero Time means never.
	Expires time.Time
}

// Stats are the counters of a region summed over all processes, live and
// reaped (cachee_l0_stats). Counters of one process are updated without
// atomic read-modify-write, so goroutines of one process racing on the same
// counter may lose increments; single-goroutine counts are exact.
type Stats struct {
	Hits         uint64 // reads that found the key
	Misses       uint64 // reads that did not
	Sets         uint64 // successful writes
	Deletes      uint64 // successful deletes
	Evictions    uint64 // live entries evicted to make room
	Expirations  uint64 // expired entries purged
	Reinsertions uint64 // hot records copied forward by eviction
	SetFailures  uint64 // writes refused with ErrFull
	Entries      uint64 // entries in the index (Region.Count)
	Capacity     uint64 // arena bytes
	UsedBytes    uint64 // bytes of segments holding records
	FreeBytes    uint64 // bytes of free segments
	PinnedBytes  uint64 // value bytes pinned by live views
	Pins         uint64 // live pins
	LimboBytes   uint64 // evicted segments kept only for pins
	LiveProcs    uint64 // processes attached now
	ReapedProcs  uint64 // dead processes reclaimed so far

	SegmentsFree, SegmentsOpen, SegmentsSmall, SegmentsMain uint64 // segments per state
	SegmentsLimbo, SegmentsReclaiming                       uint64 // segments per state
}

// Info describes the sizes and limits of an open region (cachee_l0_info).
type Info struct {
	RegionSize  uint64 // bytes of the whole file
	ArenaSize   uint64 // bytes available for records
	ValueMax    uint64 // longest value accepted by Set
	MaxEntries  uint64 // entries the index is sized for
	SegmentSize uint32 // bytes per segment
	Segments    uint32 // number of segments
	MaxProcs    uint32 // process slots
	Shards      uint32 // index shards (writer locks)
	ShardSlots  uint32 // index slots per shard
	HugePages   bool   // created with Options.HugePages
	HugeTLBFS   bool   // the file is on hugetlbfs
	Path        string // resolved path
}
