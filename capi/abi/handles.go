package abi

import (
	"sync"
	"sync/atomic"

	"github.com/cachee-dev/cachee/core/tiers"
)

// The handle table. Every ABI call looks its handle up, so a lookup takes
// no lock and allocates nothing: two atomic loads in a two-level table of
// atomic pointers, then a comparison of the id. Opening and closing take
// tableMu.
//
// A handle's id is seq<<slotBits | slot: slot is its place in the table,
// seq a counter that never repeats (from 1, so no id is 0), so an id is never
// reused even when its slot is. A lookup of a closed handle, or of an id
// whose slot now holds another handle, finds an id that differs and fails.
//
// Calls in flight on a handle that cachee_close removes still hold its
// *handle; tiers.Cache.Close waits for them (every Cache method takes its
// read lock), and once it is closed they return tiers.ErrClosed, reported
// as CACHEE_E_HANDLE.
const (
	slotBits  = 16
	maxOpen   = 1 << slotBits // handles open at once
	chunkBits = 8
	chunkLen  = 1 << chunkBits
)

type handleChunk [chunkLen]atomic.Pointer[handle]

// handle is one open cache.
type handle struct {
	id  uint64
	c   *tiers.Cache
	mu  sync.Mutex
	msg string
}

var (
	table   [maxOpen / chunkLen]atomic.Pointer[handleChunk]
	tableMu sync.Mutex
	seq     uint64   // guarded by tableMu
	used    int      // slots ever used; guarded by tableMu
	free    []uint32 // slots free below used; guarded by tableMu
	nOpen   atomic.Int64
)

// lookupID returns the open handle of id, or nil.
func lookupID(id uint64) *handle {
	slot := id & (maxOpen - 1)
	ch := table[slot>>chunkBits].Load()
	if ch == nil {
		return nil
	}
	hd := ch[slot&(chunkLen-1)].Load()
	if hd == nil || hd.id != id {
		return nil
	}
	return hd
}

// register gives c a handle; 0 when maxOpen handles are open.
func register(c *tiers.Cache) uint64 {
	tableMu.Lock()
	defer tableMu.Unlock()
	var slot uint32
	switch {
	case len(free) > 0:
		slot = free[len(free)-1]
		free = free[:len(free)-1]
	case used < maxOpen:
		slot = uint32(used)
		used++
	default:
		return 0
	}
	ch := table[slot>>chunkBits].Load()
	if ch == nil {
		ch = new(handleChunk)
		table[slot>>chunkBits].Store(ch)
	}
	seq++
	hd := &handle{id: seq<<slotBits | uint64(slot), c: c}
	ch[slot&(chunkLen-1)].Store(hd)
	nOpen.Add(1)
	return hd.id
}

// unregister removes the handle of id from the table and returns it (nil
// if there is none: unknown, or closed already).
func unregister(id uint64) *handle {
	tableMu.Lock()
	defer tableMu.Unlock()
	slot := id & (maxOpen - 1)
	ch := table[slot>>chunkBits].Load()
	if ch == nil {
		return nil
	}
	p := &ch[slot&(chunkLen-1)]
	hd := p.Load()
	if hd == nil || hd.id != id {
		return nil
	}
	p.Store(nil)
	free = append(free, uint32(slot))
	nOpen.Add(-1)
	return hd
}
