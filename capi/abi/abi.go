// Package abi implements the C ABI of libcachee.so (include/cachee.h) over
// the tier engine of package tiers (core/tiers). The C entry points (cachee_*) are in
// abi.c: they check for a fork() child in C, then call the Go functions of
// this file (cacheeGo_*). capi/ links this package into the library; the
// Go tests of capi/internal/capitest call the same C entry points.
//
// Handles are integers (never reused) naming slots of a table that a call
// reads without a lock (handles.go); no Go pointer crosses the boundary; memory handed out is malloc'ed
// and released by cachee_value_free; every panic is recovered at the
// boundary and reported as CACHEE_E_INTERNAL.
package abi

/*
#cgo CFLAGS: -I${SRCDIR}/../../include -I${SRCDIR} -std=gnu11 -Wall -Wextra -Werror
#include <stdlib.h>
#include "cachee.h"
#include "abi_internal.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/cachee-dev/cachee/core/l0"
	"github.com/cachee-dev/cachee/core/tiers"
)

var (
	openErrMu sync.Mutex
	openErr   string // last error of cachee_open (handle 0)
)

// lookup returns the open handle h, or nil (see handles.go).
func lookup(h C.cachee_t) *handle { return lookupID(uint64(h)) }

// fail records msg as the last error of hd (nil: of cachee_open) and
// returns code.
func fail(hd *handle, code C.int, msg string) C.int {
	if hd == nil {
		openErrMu.Lock()
		openErr = msg
		openErrMu.Unlock()
	} else {
		hd.mu.Lock()
		hd.msg = msg
		hd.mu.Unlock()
	}
	return code
}

// guard turns a panic into CACHEE_E_INTERNAL; use as
// defer guard(hd, "op", &rc).
func guard(hd *handle, op string, rc *C.int) {
	if r := recover(); r != nil {
		*rc = fail(hd, C.CACHEE_E_INTERNAL, fmt.Sprintf("%s: internal error (recovered panic): %v", op, r))
	}
}

// code maps an engine error to an ABI code and records its message.
func code(hd *handle, op string, err error) C.int {
	switch {
	case err == nil:
		return C.CACHEE_OK
	case errors.Is(err, tiers.ErrNotFound):
		return C.CACHEE_NOTFOUND
	case errors.Is(err, tiers.ErrExists):
		return C.CACHEE_EXISTS
	case errors.Is(err, tiers.ErrInvalid):
		return fail(hd, C.CACHEE_E_INVALID, op+": "+err.Error())
	case errors.Is(err, tiers.ErrClosed):
		return fail(hd, C.CACHEE_E_HANDLE, op+": handle is closed")
	}
	var te *tiers.TierError
	if errors.As(err, &te) {
		if te.Tier == tiers.TierL0 {
			var le *l0.Error
			if errors.As(err, &le) {
				return fail(hd, C.CACHEE_E_L0, fmt.Sprintf("%s: %s (L0 code %d)", op, err, le.Code))
			}
			return fail(hd, C.CACHEE_E_L0, op+": "+err.Error())
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fail(hd, C.CACHEE_E_TIMEOUT, op+": "+err.Error())
		}
		return fail(hd, C.CACHEE_E_TIER, op+": "+err.Error())
	}
	return fail(hd, C.CACHEE_E_INTERNAL, op+": unexpected error: "+err.Error())
}

// bytesOf views C memory as a byte slice for the duration of a call.
func bytesOf(p unsafe.Pointer, n C.size_t) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(p), int(n))
}

//export cacheeGo_open
func cacheeGo_open(config *C.char, n C.size_t, out *C.cachee_t) (rc C.int) {
	defer guard(nil, "cachee_open", &rc)
	if config == nil || out == nil {
		return fail(nil, C.CACHEE_E_INVALID, "cachee_open: config or out is NULL")
	}
	*out = 0
	cfg, err := ParseConfig(C.GoBytes(unsafe.Pointer(config), C.int(n)))
	if err != nil {
		return fail(nil, C.CACHEE_E_CONFIG, "cachee_open: "+err.Error())
	}
	c, err := tiers.Open(cfg)
	if err != nil {
		return code(nil, "cachee_open", err)
	}
	id := register(c)
	if id == 0 {
		c.Close()
		return fail(nil, C.CACHEE_E_NOMEM, fmt.Sprintf("cachee_open: %d handles are open already", maxOpen))
	}
	*out = C.cachee_t(id)
	return C.CACHEE_OK
}

//export cacheeGo_close
func cacheeGo_close(h C.cachee_t) (rc C.int) {
	defer guard(nil, "cachee_close", &rc)
	hd := unregister(uint64(h))
	if hd == nil {
		return C.CACHEE_E_HANDLE
	}
	if err := hd.c.Close(); err != nil {
		return code(nil, "cachee_close", err)
	}
	return C.CACHEE_OK
}

//export cacheeGo_get
func cacheeGo_get(h C.cachee_t, key unsafe.Pointer, keyLen C.size_t, flags C.uint32_t, out *C.cachee_value, scratch unsafe.Pointer) (rc C.int) {
	hd := lookup(h)
	defer guard(hd, "cachee_get", &rc)
	if hd == nil {
		return C.CACHEE_E_HANDLE
	}
	if out == nil {
		return fail(hd, C.CACHEE_E_INVALID, "cachee_get: out is NULL")
	}
	*out = C.cachee_value{}
	if key == nil || keyLen == 0 || keyLen > C.CACHEE_KEY_MAX {
		return fail(hd, C.CACHEE_E_INVALID, fmt.Sprintf("cachee_get: key NULL or of length %d (1..%d)", keyLen, C.CACHEE_KEY_MAX))
	}
	if flags&^(C.CACHEE_GET_SKIP_L0|C.CACHEE_GET_NO_PROMOTE) != 0 {
		return fail(hd, C.CACHEE_E_INVALID, fmt.Sprintf("cachee_get: unknown flags %#x", uint32(flags)))
	}
	// The value and metadata go into abi.c's scratch (C memory) when they
	// fit; abi.c then makes the block handed out (abi_internal.h).
	var data, meta []byte
	if scratch != nil {
		data = unsafe.Slice((*byte)(scratch), C.CACHEE_ABI_SCRATCH_DATA)[:0]
		meta = unsafe.Slice((*byte)(unsafe.Add(scratch, C.CACHEE_ABI_SCRATCH_DATA)), C.CACHEE_ABI_SCRATCH_META)[:0]
	}
	v, err := hd.c.GetInto(context.Background(), bytesOf(key, keyLen), tiers.GetOptions{
		SkipL0:    flags&C.CACHEE_GET_SKIP_L0 != 0,
		NoPromote: flags&C.CACHEE_GET_NO_PROMOTE != 0,
	}, data, meta)
	if err != nil {
		return code(hd, "cachee_get", err)
	}
	out.len = C.size_t(len(v.Data))
	out.meta_len = C.size_t(len(v.Meta))
	out.expires_ns = C.int64_t(v.ExpiresNs)
	out.tier = C.int32_t(v.Tier)
	if v.Promoted {
		out.flags = C.CACHEE_VALUE_PROMOTED
	}
	if scratch != nil && within(v.Data, data) && within(v.Meta, meta) {
		return C.CACHEE_ABI_IN_SCRATCH
	}
	if !block(v.Data, v.Meta, out) {
		*out = C.cachee_value{}
		return fail(hd, C.CACHEE_E_NOMEM, fmt.Sprintf("cachee_get: malloc(%d) failed", len(v.Data)+len(v.Meta)))
	}
	return C.CACHEE_OK
}

// within reports whether b is empty or lies at the start of buf's array.
func within(b, buf []byte) bool {
	return len(b) == 0 || (cap(buf) > 0 && unsafe.SliceData(b) == unsafe.SliceData(buf[:1]))
}

// cacheeGo_nomem records the failure of abi.c's malloc for a value read
// into the scratch (the handle may have been closed meanwhile: then there
// is no message to record, and fail(nil) would record one for cachee_open).
//
//export cacheeGo_nomem
func cacheeGo_nomem(h C.cachee_t, n C.size_t) C.int {
	if hd := lookup(h); hd != nil {
		return fail(hd, C.CACHEE_E_NOMEM, fmt.Sprintf("cachee_get: malloc(%d) failed", n))
	}
	return C.CACHEE_E_NOMEM
}

//export cacheeGo_set
func cacheeGo_set(h C.cachee_t, key unsafe.Pointer, keyLen C.size_t, value unsafe.Pointer, valueLen C.size_t,
	meta unsafe.Pointer, metaLen C.size_t, ttl C.int64_t, flags C.uint32_t) (rc C.int) {
	hd := lookup(h)
	defer guard(hd, "cachee_set", &rc)
	if hd == nil {
		return C.CACHEE_E_HANDLE
	}
	switch {
	case key == nil || keyLen == 0 || keyLen > C.CACHEE_KEY_MAX:
		return fail(hd, C.CACHEE_E_INVALID, fmt.Sprintf("cachee_set: key NULL or of length %d (1..%d)", keyLen, C.CACHEE_KEY_MAX))
	case value == nil && valueLen > 0:
		return fail(hd, C.CACHEE_E_INVALID, "cachee_set: value is NULL with a non-zero length")
	case meta == nil && metaLen > 0:
		return fail(hd, C.CACHEE_E_INVALID, "cachee_set: meta is NULL with a non-zero length")
	case ttl < 0:
		return fail(hd, C.CACHEE_E_INVALID, "cachee_set: negative ttl_ns")
	case flags&^(C.CACHEE_SET_IF_ABSENT|C.CACHEE_SET_SKIP_L0) != 0:
		return fail(hd, C.CACHEE_E_INVALID, fmt.Sprintf("cachee_set: unknown flags %#x", uint32(flags)))
	case flags == C.CACHEE_SET_IF_ABSENT|C.CACHEE_SET_SKIP_L0:
		return fail(hd, C.CACHEE_E_INVALID, "cachee_set: CACHEE_SET_IF_ABSENT with CACHEE_SET_SKIP_L0")
	}
	err := hd.c.Set(context.Background(), bytesOf(key, keyLen), bytesOf(value, valueLen), tiers.SetOptions{
		Meta:     bytesOf(meta, metaLen),
		TTL:      time.Duration(ttl),
		IfAbsent: flags&C.CACHEE_SET_IF_ABSENT != 0,
		SkipL0:   flags&C.CACHEE_SET_SKIP_L0 != 0,
	})
	return code(hd, "cachee_set", err)
}

//export cacheeGo_delete
func cacheeGo_delete(h C.cachee_t, key unsafe.Pointer, keyLen C.size_t) (rc C.int) {
	hd := lookup(h)
	defer guard(hd, "cachee_delete", &rc)
	if hd == nil {
		return C.CACHEE_E_HANDLE
	}
	if key == nil || keyLen == 0 || keyLen > C.CACHEE_KEY_MAX {
		return fail(hd, C.CACHEE_E_INVALID, fmt.Sprintf("cachee_delete: key NULL or of length %d (1..%d)", keyLen, C.CACHEE_KEY_MAX))
	}
	return code(hd, "cachee_delete", hd.c.Delete(context.Background(), bytesOf(key, keyLen)))
}

//export cacheeGo_stats
func cacheeGo_stats(h C.cachee_t, buf *C.char, capacity C.size_t, n *C.size_t) (rc C.int) {
	hd := lookup(h)
	defer guard(hd, "cachee_stats", &rc)
	if hd == nil {
		return C.CACHEE_E_HANDLE
	}
	if n == nil || (buf == nil && capacity > 0) {
		return fail(hd, C.CACHEE_E_INVALID, "cachee_stats: len is NULL, or buf is NULL with cap > 0")
	}
	st, err := hd.c.Stats()
	if err != nil {
		return code(hd, "cachee_stats", err)
	}
	js, err := statsJSON(st)
	if err != nil {
		return code(hd, "cachee_stats", err)
	}
	*n = C.size_t(len(js))
	if C.size_t(len(js)) > capacity {
		return fail(hd, C.CACHEE_E_TOO_SMALL, fmt.Sprintf("cachee_stats: %d bytes needed, cap is %d", len(js), capacity))
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(buf)), len(js)), js)
	return C.CACHEE_OK
}

//export cacheeGo_last_error
func cacheeGo_last_error(h C.cachee_t, buf *C.char, capacity C.size_t, n *C.size_t) (rc C.int) {
	defer guard(nil, "cachee_last_error", &rc)
	var msg string
	if h == 0 {
		openErrMu.Lock()
		msg = openErr
		openErrMu.Unlock()
	} else {
		hd := lookup(h)
		if hd == nil {
			return C.CACHEE_E_HANDLE
		}
		hd.mu.Lock()
		msg = hd.msg
		hd.mu.Unlock()
	}
	if buf == nil && capacity > 0 {
		return C.CACHEE_E_INVALID
	}
	if n != nil {
		*n = C.size_t(len(msg))
	}
	if capacity > 0 {
		b := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(capacity))
		k := copy(b[:len(b)-1], msg)
		b[k] = 0
	}
	return C.CACHEE_OK
}

//export cacheeGo_open_handles
func cacheeGo_open_handles() C.int64_t { return C.int64_t(nOpen.Load()) }

//export cacheeGo_goroutines
func cacheeGo_goroutines() C.int64_t { return C.int64_t(runtime.NumGoroutine()) }
