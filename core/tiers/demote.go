package tiers

import (
	"time"

	"github.com/cachee-dev/cachee/core/l0"
	"github.com/cachee-dev/cachee/core/l1"
)

// Demoted is a record that L0 evicted through a handle other than the
// Cache's own (the Python extension's, which writes L0 itself), handed to
// Demote. Its slices are borrowed: Demote copies what it keeps.
type Demoted struct {
	Key, Value, Meta []byte
	// ExpiresNs is the absolute expiry (Unix ns), 0 for none.
	ExpiresNs int64
	// Generation is the key's L0 generation captured when the record was
	// evicted (cachee_l0_evicted.generation, read under the shard lock).
	Generation uint32
}

// Demote puts records that another L0 handle of this process evicted into
// L1, as the Cache does for its own evictions: a record whose key's
// generation has moved since its eviction (rewritten or deleted, by any
// process) is skipped, as is an expired one or one heavier than L1; each one
// stored counts as an L1 demotion. Every record also teaches the admission
// policy what L0 evicts. It returns how many records L1 took.
//
// All records are checked before any is stored: ErrInvalid (an empty key or
// one longer than l0.KeyMax, metadata longer than l0.MetaMax, a negative
// expiry) stores nothing. Without L1 (or with NoDemote) nothing is stored
// and the result is 0. Errors: ErrInvalid, ErrClosed.
func (c *Cache) Demote(recs []Demoted) (int, error) {
	for i := range recs {
		r := &recs[i]
		if checkKey(r.Key) != nil || len(r.Meta) > l0.MetaMax || r.ExpiresNs < 0 {
			return 0, ErrInvalid
		}
	}
	if !c.enter() {
		return 0, ErrClosed
	}
	defer c.leave()
	now := time.Now().UnixNano()
	stored := 0
	for i := range recs {
		r := &recs[i]
		h := l0.Hash(r.Key)
		c.adm.evicted(h)
		if !c.demote {
			continue
		}
		if r.ExpiresNs != 0 && now >= r.ExpiresNs {
			continue
		}
		// Rewritten or deleted since the eviction: the copy is stale.
		if c.region.Generation(h) != r.Generation {
			continue
		}
		key := string(r.Key)
		if l1.Weight(key, &l1.Entry{Value: r.Value, Meta: r.Meta}) > c.l1.Capacity() {
			continue
		}
		e := l1.NewEntry(r.Value, r.Meta, r.ExpiresNs, r.Generation)
		c.l1.Set(key, e)
		c.l1s.demotions.Add(1)
		stored++
	}
	return stored, nil
}
