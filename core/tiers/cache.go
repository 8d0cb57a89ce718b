// Package tiers is cachee's tier engine: it reads through the tiers in order
// (L0, the machine's shared-memory table; L1, this process's W-TinyLFU
// cache; then slower tiers such as the machine's NVMe file and the fleet's
// Redis), writes through to the shared tiers, promotes into L0 the values
// whose access frequency earns it, and demotes into L1 what L0 evicts.
//
// It is also the Go API for Go programs that share a region with Python
// workers: Open(Config) returns a *Cache whose Get, Set, Delete and
// GetOrLoad have the semantics of the C ABI of libcachee.so
// (include/cachee.h), which capi/ builds on this package.
//
// Cross-process coherence of L1. L1 is private to a process, while any
// process may rewrite or delete a key in L0. Every L1 entry records the L0
// generation of its key (core/l0 Region.Generation: a counter that every L0
// set and delete of the key increments, in whichever process) read before
// the value was fetched; an L1 entry whose key's generation has moved is a
// miss and is dropped. So a value evicted from L0, demoted into this
// process's L1, then rewritten by another process is never served again from
// here. This process's own Set and Delete drop its L1 copy as well.
package tiers

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
	"unsafe"

	"github.com/cachee-dev/cachee/core/l0"
	"github.com/cachee-dev/cachee/core/l1"
)

// Config configures Open.
type Config struct {
	// Path is the L0 region (a path, or a bare name meaning /dev/shm/NAME).
	// The region must exist unless Create is set.
	Path string
	// Create creates the region with CreateSize bytes if it does not exist.
	Create bool
	// CreateSize is the size of a region created by Create.
	CreateSize uint64
	// AllowForeignOwner accepts a region owned by another user.
	AllowForeignOwner bool
	// L1Bytes is the capacity of L1 in bytes (key, value, metadata and
	// l1.Overhead per entry); 0 means no L1.
	L1Bytes int64
	// Promote is the admission policy into L0 (default PromoteTinyLFU).
	Promote Promote
	// NoDemote disables demotion: values L0 evicts are not copied into L1.
	NoDemote bool
	// Tiers are the tiers below L1, fastest first. The Cache owns them from
	// Open on and closes them in Close (also when Open fails).
	Tiers []Tier
	// LoadWait bounds how long GetOrLoad waits for another process (or
	// goroutine) that is loading the same key before it loads it itself;
	// 0 means 10 s.
	LoadWait time.Duration
	// DemoteQueueBytes bounds the evicted records waiting to be demoted;
	// 0 means 64 MiB.
	DemoteQueueBytes int64
	// ShareSlot is l0.Options.ShareSlot: the registration token of another
	// L0 handle of this process, whose process slot the Cache's handle then
	// uses (one process, one slot). The Python extension passes its own.
	ShareSlot uint64
}

// Cache is an open tier engine. All methods are safe for concurrent use;
// Close waits for the calls in flight.
type Cache struct {
	mu     sync.RWMutex // read-held by every call; Close takes it
	closed bool

	region  *l0.Region
	l1      *l1.Cache // nil without L1
	tiers   []Tier
	adm     *admission
	demote  bool
	wait    time.Duration
	l0s     tierStats
	l1s     tierStats
	lowerSt []tierStats
}

// Open opens the L0 region of cfg.Path and builds the tiers above and
// below it. Errors: ErrInvalid (bad Config), or a *TierError for L0 whose
// Err is the l0 package's error (wrapped in an *fs.PathError: l0.ErrNoRegion,
// l0.ErrOwner, ...).
func Open(cfg Config) (*Cache, error) {
	closeTiers := func() {
		for _, t := range cfg.Tiers {
			if t != nil {
				t.Close()
			}
		}
	}
	if cfg.Path == "" || cfg.L1Bytes < 0 || cfg.LoadWait < 0 || cfg.DemoteQueueBytes < 0 ||
		cfg.Promote < PromoteTinyLFU || cfg.Promote > PromoteNever {
		closeTiers()
		return nil, ErrInvalid
	}
	for _, t := range cfg.Tiers {
		if t == nil {
			closeTiers()
			return nil, ErrInvalid
		}
	}
	r, err := l0.Open(cfg.Path, l0.Options{
		Create:            cfg.Create,
		Size:              cfg.CreateSize,
		AllowForeignOwner: cfg.AllowForeignOwner,
		ShareSlot:         cfg.ShareSlot,
	})
	if err != nil {
		closeTiers()
		return nil, &TierError{Tier: TierL0, Op: "open", Err: err}
	}
	c := &Cache{
		region:  r,
		tiers:   cfg.Tiers,
		adm:     newAdmission(cfg.Promote, r),
		wait:    cfg.LoadWait,
		lowerSt: make([]tierStats, len(cfg.Tiers)),
	}
	if c.wait == 0 {
		c.wait = 10 * time.Second
	}
	if cfg.L1Bytes > 0 {
		if c.l1, err = l1.New(uint64(cfg.L1Bytes)); err != nil {
			r.Close()
			closeTiers()
			return nil, &TierError{Tier: TierL1, Op: "open", Err: err}
		}
	}
	c.demote = !cfg.NoDemote && c.l1 != nil
	if c.demote || cfg.Promote == PromoteTinyLFU {
		q := cfg.DemoteQueueBytes
		if q == 0 {
			q = 64 << 20
		}
		if err := r.EnableEvictions(q); err != nil {
			c.closeAll()
			return nil, &TierError{Tier: TierL0, Op: "open", Err: err}
		}
	}
	return c, nil
}

func (c *Cache) closeAll() error {
	var first error
	if c.l1 != nil {
		c.l1.Close()
	}
	for i, t := range c.tiers {
		if err := t.Close(); err != nil && first == nil {
			first = &TierError{Tier: c.tiers[i].Kind(), Op: "close", Err: err}
		}
	}
	if err := c.region.Close(); err != nil && first == nil {
		first = &TierError{Tier: TierL0, Op: "close", Err: err}
	}
	return first
}

// Close waits for the calls in flight, then closes every tier and L0 and
// stops every goroutine the Cache started. A second Close returns
// ErrClosed; otherwise the first error of a tier's Close, if any.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.closed = true
	return c.closeAll()
}

// enter marks a call in flight; false if the Cache is closed.
func (c *Cache) enter() bool {
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return false
	}
	return true
}

func (c *Cache) leave() { c.mu.RUnlock() }

// Region returns the Cache's own L0 handle (for L0 calls the engine does
// not wrap, such as pinned reads). It is closed by Close.
func (c *Cache) Region() *l0.Region { return c.region }

func checkKey(key []byte) error {
	if len(key) == 0 || len(key) > l0.KeyMax {
		return ErrInvalid
	}
	return nil
}

// GetOptions modify Get.
type GetOptions struct {
	// SkipL0: the caller has just missed L0 itself; start at L1.
	SkipL0 bool
	// NoPromote: never promote into L0 on this read.
	NoPromote bool
}

// Value is what Get returns.
type Value struct {
	// Data and Meta are copies owned by the caller.
	Data, Meta []byte
	// ExpiresNs is the absolute expiry (Unix ns), 0 for none.
	ExpiresNs int64
	// Tier is the tier that served the value.
	Tier TierKind
	// Promoted is true when this read admitted the value into L0.
	Promoted bool
}

// sampled says whether to time this fast-tier operation (one in eight).
func sampled() bool { return rand.Uint32()&7 == 0 }

// Get reads key through the tiers in order: L0 (unless o.SkipL0), L1, then
// the lower tiers. A value found below L0 is offered to L0 (see Promote and
// admission.go) and, when L0 does not take it, kept in L1; a value found in a
// lower tier is also written back into the shared tiers above it. The
// Value's Data and Meta are copies owned by the caller.
//
// Errors: ErrNotFound (no tier holds the key), ErrInvalid, ErrClosed, or a
// *TierError: L0's error when L0 failed, else the last lower tier's error,
// when no tier served the key (a failure of a tier is never returned when
// another tier serves the key; it is counted in Stats instead).
func (c *Cache) Get(ctx context.Context, key []byte, o GetOptions) (Value, error) {
	return c.GetInto(ctx, key, o, nil, nil)
}

// GetInto is Get that appends the value to data[:0] and the metadata to
// meta[:0]: each is copied into its buffer's array when it fits the
// buffer's capacity, else into a new array (or handed over as a lower tier
// returned it). With buffers large enough, a hit in L0 or L1 allocates
// nothing. The errors are those of Get.
func (c *Cache) GetInto(ctx context.Context, key []byte, o GetOptions, data, meta []byte) (Value, error) {
	if err := checkKey(key); err != nil {
		return Value{}, err
	}
	if !c.enter() {
		return Value{}, ErrClosed
	}
	defer c.leave()
	h := l0.Hash(key)
	c.adm.record(h)
	var failure error
	if !o.SkipL0 {
		var t0 time.Time
		timed := sampled()
		if timed {
			t0 = time.Now()
		}
		it, err := c.region.GetItem(key, data[:0], meta[:0])
		if timed {
			c.l0s.observe(time.Since(t0))
		}
		switch {
		case err == nil:
			c.l0s.hits.Add(1)
			v := Value{Data: it.Value, Meta: it.Meta, Tier: TierL0}
			if !it.Expires.IsZero() {
				v.ExpiresNs = it.Expires.UnixNano()
			}
			return v, nil
		case errors.Is(err, l0.ErrNotFound):
			c.l0s.misses.Add(1)
		default:
			c.l0s.errors.Add(1)
			failure = &TierError{Tier: TierL0, Op: "get", Err: err}
		}
	}
	gen := c.region.Generation(h)
	if c.l1 != nil {
		var t0 time.Time
		timed := sampled()
		if timed {
			t0 = time.Now()
		}
		// The key viewed as a string without a copy: otter only compares
		// it on a lookup. Calls that may keep a key get a copy.
		e := c.l1.Get(unsafe.String(unsafe.SliceData(key), len(key)))
		if e != nil && e.Gen != gen {
			c.l1.DeleteIf(string(key), e) // rewritten or deleted elsewhere since
			e = nil
		}
		if timed {
			c.l1s.observe(time.Since(t0))
		}
		if e != nil {
			c.l1s.hits.Add(1)
			v := Value{Data: appendCopy(data, e.Value), Meta: appendCopy(meta, e.Meta),
				ExpiresNs: e.ExpiresNs, Tier: TierL1}
			if !o.NoPromote && c.adm.admit(h) {
				err := c.region.Promote(key, e.Value, e.Meta, e.ExpiresNs, e.Gen)
				switch {
				case err == nil:
					v.Promoted = true
					c.l1s.promotions.Add(1)
					c.l0s.promotions.Add(1)
					c.l1.DeleteIf(string(key), e)
				case errors.Is(err, l0.ErrExists), errors.Is(err, l0.ErrStale):
					c.l1.DeleteIf(string(key), e) // L0 has the key, or the copy is old
				default:
					c.l0s.errors.Add(1)
				}
				c.demoteEvicted()
			}
			return v, nil
		}
		c.l1s.misses.Add(1)
	}
	for i, t := range c.tiers {
		st := &c.lowerSt[i]
		t0 := time.Now()
		e, err := t.Get(ctx, key)
		st.observe(time.Since(t0))
		if errors.Is(err, ErrNotFound) {
			st.misses.Add(1)
			continue
		}
		if err != nil {
			st.errors.Add(1)
			if failure == nil || !isL0(failure) {
				failure = &TierError{Tier: t.Kind(), Op: "get", Err: err}
			}
			continue
		}
		if e.ExpiresNs != 0 && time.Now().UnixNano() >= e.ExpiresNs {
			st.misses.Add(1)
			continue
		}
		st.hits.Add(1)
		v := Value{Data: appendOwned(data, e.Value), Meta: appendOwned(meta, e.Meta),
			ExpiresNs: e.ExpiresNs, Tier: t.Kind()}
		for j := 0; j < i; j++ { // write back into the shared tiers above
			if c.tiers[j].Shared() {
				if err := c.tiers[j].Set(ctx, key, e); err != nil {
					c.lowerSt[j].errors.Add(1)
				}
			}
		}
		if !o.NoPromote && c.adm.admit(h) {
			err := c.region.Promote(key, e.Value, e.Meta, e.ExpiresNs, gen)
			if err == nil {
				v.Promoted = true
				st.promotions.Add(1)
				c.l0s.promotions.Add(1)
			} else if !errors.Is(err, l0.ErrExists) && !errors.Is(err, l0.ErrStale) {
				c.l0s.errors.Add(1)
			}
			c.demoteEvicted()
		}
		if !v.Promoted && c.l1 != nil {
			c.l1.Set(string(key), l1.NewEntry(e.Value, e.Meta, e.ExpiresNs, gen))
		}
		return v, nil
	}
	if failure != nil {
		return Value{}, failure
	}
	return Value{}, ErrNotFound
}

// appendCopy returns src copied into dst's array (dst[:0]) when it fits,
// else into a new one; nil for an empty src.
func appendCopy(dst, src []byte) []byte {
	if len(src) == 0 {
		return nil
	}
	return append(dst[:0], src...)
}

// appendOwned is appendCopy for a src the caller may keep (what a lower
// tier returned): src itself when it does not fit dst.
func appendOwned(dst, src []byte) []byte {
	if len(src) == 0 {
		return nil
	}
	if len(src) > cap(dst) {
		return src
	}
	return append(dst[:0], src...)
}

func isL0(err error) bool {
	var te *TierError
	return errors.As(err, &te) && te.Tier == TierL0
}

// demoteEvicted moves what this process's L0 handle evicted into L1 (and
// teaches the admission policy what L0 evicts).
func (c *Cache) demoteEvicted() {
	c.region.TakeEvicted(func(ev *l0.Evicted) {
		c.adm.evicted(ev.KeyHash)
		if !c.demote {
			return
		}
		// The value is the key's current one as of the eviction; if the key
		// has been written since, the copy is already stale.
		if c.region.Generation(ev.KeyHash) != ev.Generation {
			return
		}
		c.l1.Set(string(ev.Key), &l1.Entry{Value: ev.Value, Meta: ev.Meta, ExpiresNs: ev.ExpiresNs, Gen: ev.Generation})
		c.l1s.demotions.Add(1)
	})
}

// SetOptions modify Set.
type SetOptions struct {
	// Meta is stored beside the value (at most l0.MetaMax bytes).
	Meta []byte
	// TTL > 0 makes the value expire that long from now, in every tier.
	TTL time.Duration
	// IfAbsent stores only if L0 holds no live value for the key; Set then
	// returns ErrExists and stores nothing.
	IfAbsent bool
	// SkipL0: the caller has already written the value into L0 itself;
	// write it to the tiers below only.
	SkipL0 bool
}

// Set stores key -> value in L0 (unless o.SkipL0) and writes it through to
// the shared tiers below; this process's L1 drops any copy it holds.
//
// Errors: ErrInvalid, ErrExists (IfAbsent), ErrClosed, a *TierError for L0
// (l0.ErrValueTooLarge, l0.ErrFull, ...: nothing was stored anywhere), or a
// *TierError for the first shared tier that failed (L0 holds the value; the
// other tiers were still written).
func (c *Cache) Set(ctx context.Context, key, value []byte, o SetOptions) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if o.TTL < 0 || (o.IfAbsent && o.SkipL0) {
		return ErrInvalid
	}
	if !c.enter() {
		return ErrClosed
	}
	defer c.leave()
	var expires int64
	if o.TTL > 0 {
		expires = time.Now().Add(o.TTL).UnixNano()
	}
	if !o.SkipL0 {
		err := c.region.SetWith(key, value, l0.SetOptions{Meta: o.Meta, TTL: o.TTL, IfAbsent: o.IfAbsent})
		c.demoteEvicted()
		if errors.Is(err, l0.ErrExists) {
			return ErrExists
		}
		if err != nil {
			if errors.Is(err, l0.ErrInvalid) {
				return ErrInvalid
			}
			c.l0s.errors.Add(1)
			return &TierError{Tier: TierL0, Op: "set", Err: err}
		}
	}
	if c.l1 != nil {
		c.l1.Delete(string(key))
	}
	var first error
	for i, t := range c.tiers {
		if !t.Shared() {
			continue
		}
		if err := t.Set(ctx, key, Entry{Value: value, Meta: o.Meta, ExpiresNs: expires}); err != nil {
			c.lowerSt[i].errors.Add(1)
			if first == nil {
				first = &TierError{Tier: t.Kind(), Op: "set", Err: err}
			}
		}
	}
	return first
}

// Delete removes key from every tier: L0 (which also invalidates the copies
// other processes keep in their L1), this process's L1, and the tiers below.
// Errors: ErrNotFound (no tier held the key: not a failure), ErrInvalid,
// ErrClosed, a *TierError for L0 (nothing was deleted), or for the first
// lower tier that failed (L0 and L1 no longer hold the key).
func (c *Cache) Delete(ctx context.Context, key []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if !c.enter() {
		return ErrClosed
	}
	defer c.leave()
	found := false
	switch err := c.region.Delete(key); {
	case err == nil:
		found = true
	case errors.Is(err, l0.ErrNotFound):
	default:
		c.l0s.errors.Add(1)
		return &TierError{Tier: TierL0, Op: "delete", Err: err}
	}
	if c.l1 != nil && c.l1.Delete(string(key)) {
		found = true
	}
	var first error
	for i, t := range c.tiers {
		if err := t.Delete(ctx, key); err != nil {
			c.lowerSt[i].errors.Add(1)
			if first == nil {
				first = &TierError{Tier: t.Kind(), Op: "delete", Err: err}
			}
		}
	}
	if first != nil {
		return first
	}
	if !found && len(c.tiers) == 0 {
		return ErrNotFound
	}
	return nil
}

// Stats returns the counters of every tier ("l0", then "l1" when
// configured, then the lower tiers) and of the admission policy. Errors:
// ErrClosed.
func (c *Cache) Stats() (Stats, error) {
	if !c.enter() {
		return Stats{}, ErrClosed
	}
	defer c.leave()
	var s Stats
	t0 := c.l0s.snapshot("l0")
	if st, err := c.region.Stats(); err == nil {
		t0.Entries, t0.Bytes, t0.CapacityBytes = st.Entries, st.UsedBytes, st.Capacity
	}
	s.Tiers = append(s.Tiers, t0)
	if c.l1 != nil {
		t1 := c.l1s.snapshot("l1")
		t1.Entries, t1.Bytes, t1.CapacityBytes = uint64(c.l1.Len()), c.l1.Bytes(), c.l1.Capacity()
		s.Tiers = append(s.Tiers, t1)
	}
	for i, t := range c.tiers {
		ts := c.lowerSt[i].snapshot(t.Kind().String())
		if sz, ok := t.(Sizer); ok {
			e, b, cp := sz.Size()
			ts.Entries, ts.Bytes, ts.CapacityBytes = uint64(e), uint64(b), uint64(cp)
		}
		s.Tiers = append(s.Tiers, ts)
	}
	s.Admission = AdmissionStats{
		Policy:           c.adm.policy.String(),
		Admitted:         c.adm.admitted.Load(),
		Rejected:         c.adm.rejected.Load(),
		VictimFrequency:  c.adm.victimFreq(),
		EvictionsDropped: c.region.EvictionsDropped(),
	}
	return s, nil
}
