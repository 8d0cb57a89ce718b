package abi

/*
#include "cachee.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/cachee-dev/cachee/core/tiers"
)

// demoteBatch is how many records cacheeGo_demote converts at a time (the
// engine copies what it keeps, so the slices may view C memory).
const demoteBatch = 256

//export cacheeGo_demote
func cacheeGo_demote(h C.cachee_t, recs *C.cachee_record, n C.size_t, stored *C.size_t) (rc C.int) {
	hd := lookup(h)
	defer guard(hd, "cachee_demote", &rc)
	if hd == nil {
		return C.CACHEE_E_HANDLE
	}
	if stored != nil {
		*stored = 0
	}
	if n == 0 {
		return C.CACHEE_OK
	}
	if recs == nil {
		return fail(hd, C.CACHEE_E_INVALID, "cachee_demote: recs is NULL with n > 0")
	}
	if uint64(n) > uint64(1)<<40 {
		return fail(hd, C.CACHEE_E_INVALID, fmt.Sprintf("cachee_demote: n = %d is not a count", uint64(n)))
	}
	rs := unsafe.Slice(recs, int(n))
	// Check every record first: an invalid one stores nothing.
	for i := range rs {
		r := &rs[i]
		switch {
		case r.key == nil || r.key_len == 0 || r.key_len > C.CACHEE_KEY_MAX:
			return fail(hd, C.CACHEE_E_INVALID, fmt.Sprintf("cachee_demote: record %d: key NULL or of length %d (1..%d)", i, r.key_len, C.CACHEE_KEY_MAX))
		case r.value == nil && r.value_len > 0:
			return fail(hd, C.CACHEE_E_INVALID, fmt.Sprintf("cachee_demote: record %d: value is NULL with a non-zero length", i))
		case r.meta == nil && r.meta_len > 0:
			return fail(hd, C.CACHEE_E_INVALID, fmt.Sprintf("cachee_demote: record %d: meta is NULL with a non-zero length", i))
		case r.meta_len > 4096:
			return fail(hd, C.CACHEE_E_INVALID, fmt.Sprintf("cachee_demote: record %d: meta of %d bytes (at most 4096)", i, r.meta_len))
		case r.expires_ns < 0:
			return fail(hd, C.CACHEE_E_INVALID, fmt.Sprintf("cachee_demote: record %d: negative expires_ns", i))
		case r.reserved_ != 0:
			return fail(hd, C.CACHEE_E_INVALID, fmt.Sprintf("cachee_demote: record %d: reserved_ is not 0", i))
		}
	}
	total := 0
	batch := make([]tiers.Demoted, 0, min(len(rs), demoteBatch))
	for start := 0; start < len(rs); start += demoteBatch {
		batch = batch[:0]
		for i := start; i < len(rs) && i < start+demoteBatch; i++ {
			r := &rs[i]
			batch = append(batch, tiers.Demoted{
				Key:        bytesOf(r.key, r.key_len),
				Value:      bytesOf(r.value, r.value_len),
				Meta:       bytesOf(r.meta, r.meta_len),
				ExpiresNs:  int64(r.expires_ns),
				Generation: uint32(r.generation),
			})
		}
		k, err := hd.c.Demote(batch)
		total += k
		if err != nil {
			if stored != nil {
				*stored = C.size_t(total)
			}
			return code(hd, "cachee_demote", err)
		}
	}
	if stored != nil {
		*stored = C.size_t(total)
	}
	return C.CACHEE_OK
}
