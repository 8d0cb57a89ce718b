package tiers

import (
	"context"
	"errors"
)

// TierKind says what a tier is; the values are those of enum cachee_tier in
// include/cachee.h.
type TierKind int

// The tiers, fastest first.
const (
	// TierL0 is the shared-memory table of the machine (package core/l0).
	TierL0 TierKind = 0
	// TierL1 is this process's in-memory cache (package core/l1).
	TierL1 TierKind = 1
	// TierNVMe is the machine's NVMe file (a later issue).
	TierNVMe TierKind = 2
	// TierRedis is the fleet's Redis (a later issue).
	TierRedis TierKind = 3
)

// String returns the tier's name as the stats report it.
func (k TierKind) String() string {
	switch k {
	case TierL0:
		return "l0"
	case TierL1:
		return "l1"
	case TierNVMe:
		return "nvme"
	case TierRedis:
		return "redis"
	}
	return "tier"
}

// Entry is a value as tiers store it.
type Entry struct {
	// Value is the value bytes.
	Value []byte
	// Meta is the metadata stored beside the value (opaque; the Python
	// package keeps dtype and shape there).
	Meta []byte
	// ExpiresNs is the absolute expiry in Unix nanoseconds (CLOCK_REALTIME);
	// 0 means never. Every tier honours it: a tier never returns an entry
	// whose expiry has passed.
	ExpiresNs int64
}

// Tier is a tier below L1: slower than memory, possibly failing, possibly
// far larger than L0, and usually shared (the machine's NVMe file, the
// fleet's Redis). The engine calls it concurrently from many goroutines.
//
// Semantics the engine relies on:
//
//   - Get returns ErrNotFound for a miss (absent, deleted or expired), any
//     other error for a failure. A failure is counted and the read goes on
//     to the next tier; it is returned only when no tier serves the key.
//   - Set stores the entry, replacing any previous one, with its absolute
//     expiry; Delete removes the key (an absent key is not an error).
//   - Every call honours ctx (deadline, cancellation) and returns ctx.Err()
//     (possibly wrapped) when it gives up because of it.
//   - Shared reports whether the tier is seen by other processes (NVMe: the
//     machine's; Redis: every machine's). Shared tiers are write-through
//     targets: Cache.Set writes the value into each of them after L0, and a
//     value read from a lower shared tier is written back into the shared
//     tiers above it. A per-process tier (Shared false) only caches.
//   - Close releases the tier; the engine calls it once, after every other
//     call has returned.
type Tier interface {
	// Kind says which tier this is (for the stats and cachee_value.tier).
	Kind() TierKind
	// Shared reports whether other processes see what this tier holds.
	Shared() bool
	// Get reads key; ErrNotFound on a miss.
	Get(ctx context.Context, key []byte) (Entry, error)
	// Set stores key -> e (write-through).
	Set(ctx context.Context, key []byte, e Entry) error
	// Delete removes key; no error if it is absent.
	Delete(ctx context.Context, key []byte) error
	// Close releases the tier.
	Close() error
}

// BatchGetter is an optional interface of a Tier that reads many keys in
// one round trip (Redis MGET, io_uring batches). Results are in the order
// of keys; errs[i] is ErrNotFound for a miss.
type BatchGetter interface {
	GetMany(ctx context.Context, keys [][]byte) (entries []Entry, errs []error)
}

// Sizer is an optional interface of a Tier that reports its size for the
// stats.
type Sizer interface {
	// Size returns the entries held, their bytes, and the capacity in bytes
	// (0 when unbounded or unknown).
	Size() (entries, bytes, capacity int64)
}

// Errors of the engine. Errors of L0 and of the tiers are wrapped in a
// *TierError; match them with errors.Is / errors.As.
var (
	// ErrNotFound: no tier holds the key (a miss).
	ErrNotFound = errors.New("cachee: not found")
	// ErrExists: Set with IfAbsent found the key in L0; nothing was stored.
	ErrExists = errors.New("cachee: key exists")
	// ErrInvalid: an invalid argument (empty key, key longer than 65535
	// bytes, negative TTL, IfAbsent with SkipL0, a bad Config).
	ErrInvalid = errors.New("cachee: invalid argument")
	// ErrClosed: the Cache was closed.
	ErrClosed = errors.New("cachee: cache closed")
)

// TierError is a failure of one tier: which tier, which operation, and the
// tier's error (for L0, a *l0.Error such as l0.ErrFull).
type TierError struct {
	Tier TierKind
	Op   string
	Err  error
}

// Error returns "cachee: <tier> <op>: <err>".
func (e *TierError) Error() string {
	return "cachee: " + e.Tier.String() + " " + e.Op + ": " + e.Err.Error()
}

// Unwrap returns the tier's error.
func (e *TierError) Unwrap() error { return e.Err }
