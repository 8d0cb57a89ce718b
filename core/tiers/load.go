package tiers

import (
	"context"
	"errors"
	"time"

	"github.com/cachee-dev/cachee/core/l0"
)

// Loader computes the value of a missing key; the SetOptions it returns
// (metadata, TTL) are used to store it. It is called with the ctx of
// GetOrLoad.
type Loader func(ctx context.Context, key []byte) (value []byte, o SetOptions, err error)

// GetOrLoad returns the value of key, computing it with load when no tier
// holds it, such that among all the processes of the machine (and the
// goroutines of this one) that miss the key at the same time one computes
// it and the others wait for it and read it from L0.
//
// The protocol is L0's loader lock (include/cachee_l0.h, "Loader locks"):
// after a miss, take the key's lock without waiting; the holder reads the
// key again (another process may have stored it meanwhile), computes it,
// stores it with Set (L0 and the shared tiers) and releases the lock. The
// others poll L0 every 1 ms growing to 10 ms; when the lock is free again
// and the key is still missing (the loader failed, or died: the kernel drops
// the lock of a dead process), one of them takes the lock and computes. A
// waiter that has waited Config.LoadWait computes the value itself.
//
// Errors: those of Get (but not ErrNotFound), ctx.Err() when ctx ends while
// waiting, or load's error (returned as is; nothing is stored). When load
// succeeds but storing the value fails, GetOrLoad returns the value with
// the error of Set.
func (c *Cache) GetOrLoad(ctx context.Context, key []byte, load Loader) (Value, error) {
	if load == nil {
		return Value{}, ErrInvalid
	}
	v, err := c.Get(ctx, key, GetOptions{})
	if !errors.Is(err, ErrNotFound) {
		return v, err
	}
	h := l0.Hash(key)
	deadline := time.Now().Add(c.wait)
	sleep := time.Millisecond
	for {
		lk, err := c.lockLoad(h)
		switch {
		case err == nil:
			defer lk.Unlock()
			v, err := c.Get(ctx, key, GetOptions{})
			if !errors.Is(err, ErrNotFound) {
				return v, err
			}
			return c.loadAndStore(ctx, key, load)
		case errors.Is(err, l0.ErrBusy):
		case errors.Is(err, ErrClosed):
			return Value{}, ErrClosed
		default:
			// No lock to be had (out of descriptors, ...): compute
			// without one rather than fail.
			return c.loadAndStore(ctx, key, load)
		}
		// Another process or goroutine is computing it: wait for L0.
		timer := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			timer.Stop()
			return Value{}, ctx.Err()
		case <-timer.C:
		}
		if sleep < 10*time.Millisecond {
			sleep += sleep / 2
		}
		if v, ok, err := c.getL0(key); ok || err != nil {
			return v, err
		}
		if time.Now().After(deadline) {
			return c.loadAndStore(ctx, key, load)
		}
	}
}

func (c *Cache) lockLoad(h uint64) (*l0.LoadLock, error) {
	if !c.enter() {
		return nil, ErrClosed
	}
	defer c.leave()
	return c.region.LoadTryLock(h)
}

// getL0 reads key from L0 only (polling for another loader's result).
func (c *Cache) getL0(key []byte) (Value, bool, error) {
	if !c.enter() {
		return Value{}, false, ErrClosed
	}
	defer c.leave()
	it, err := c.region.GetItem(key, nil, nil)
	if errors.Is(err, l0.ErrNotFound) {
		return Value{}, false, nil
	}
	if err != nil {
		c.l0s.errors.Add(1)
		return Value{}, false, &TierError{Tier: TierL0, Op: "get", Err: err}
	}
	c.l0s.hits.Add(1)
	v := Value{Data: it.Value, Meta: it.Meta, Tier: TierL0}
	if !it.Expires.IsZero() {
		v.ExpiresNs = it.Expires.UnixNano()
	}
	return v, true, nil
}

func (c *Cache) loadAndStore(ctx context.Context, key []byte, load Loader) (Value, error) {
	data, o, err := load(ctx, key)
	if err != nil {
		return Value{}, err
	}
	o.IfAbsent, o.SkipL0 = false, false
	v := Value{Data: data, Meta: o.Meta, Tier: TierL0}
	if o.TTL > 0 {
		v.ExpiresNs = time.Now().Add(o.TTL).UnixNano()
	}
	return v, c.Set(ctx, key, data, o)
}
