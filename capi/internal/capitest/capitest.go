// Package capitest calls the C ABI of libcachee.so (include/cachee.h)
// through C, the way a C program does, for the Go tests of this directory
// (a _test.go file cannot use cgo). The functions are the very cachee_*
// entry points of capi/abi, linked into the test binary.
package capitest

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include -std=gnu11 -Wall -Wextra -Werror
#cgo LDFLAGS: -lpthread
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cachee.h"

// Threads of C hammering one handle; returns the number of failures.
struct ct_arg { cachee_t h; int id; int iters; int failures; };

static void *ct_work(void *p) {
	struct ct_arg *a = p;
	char key[32], val[64];
	for (int i = 0; i < a->iters; i++) {
		int k = (i * 7 + a->id) % 100;
		int kn = snprintf(key, sizeof key, "ct-%d", k);
		int vn = snprintf(val, sizeof val, "value-%d", k);
		int rc;
		if (i % 4 == 0) {
			rc = cachee_set(a->h, key, (size_t)kn, val, (size_t)vn, "m", 1, 0, 0);
			if (rc != CACHEE_OK) a->failures++;
		} else if (i % 13 == 0) {
			rc = cachee_delete(a->h, key, (size_t)kn);
			if (rc != CACHEE_OK && rc != CACHEE_NOTFOUND) a->failures++;
		} else {
			cachee_value v;
			rc = cachee_get(a->h, key, (size_t)kn, 0, &v);
			if (rc == CACHEE_OK) {
				if (v.len != (size_t)vn || memcmp(v.data, val, (size_t)vn) != 0 ||
				    v.meta_len != 1)
					a->failures++;
				cachee_value_free(&v);
			} else if (rc != CACHEE_NOTFOUND) {
				a->failures++;
			}
		}
	}
	return NULL;
}

static int ct_threads(cachee_t h, int n, int iters) {
	pthread_t t[64];
	struct ct_arg a[64];
	if (n > 64) n = 64;
	for (int i = 0; i < n; i++) {
		a[i] = (struct ct_arg){h, i, iters, 0};
		pthread_create(&t[i], NULL, ct_work, &a[i]);
	}
	int f = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		f += a[i].failures;
	}
	return f;
}
*/
import "C"

import (
	"unsafe"

	_ "github.com/cachee-dev/cachee/capi/abi" // the cachee_* entry points
)

// Codes of include/cachee.h.
const (
	OK        = int(C.CACHEE_OK)
	NotFound  = int(C.CACHEE_NOTFOUND)
	Exists    = int(C.CACHEE_EXISTS)
	EInvalid  = int(C.CACHEE_E_INVALID)
	EHandle   = int(C.CACHEE_E_HANDLE)
	EConfig   = int(C.CACHEE_E_CONFIG)
	ETooSmall = int(C.CACHEE_E_TOO_SMALL)
	EL0       = int(C.CACHEE_E_L0)
	// SkipL0 is CACHEE_GET_SKIP_L0.
	SkipL0 = uint32(C.CACHEE_GET_SKIP_L0)
)

func cbytes(b []byte) (unsafe.Pointer, C.size_t, func()) {
	if b == nil {
		return nil, 0, func() {}
	}
	p := C.CBytes(b)
	return p, C.size_t(len(b)), func() { C.free(p) }
}

// Open calls cachee_open with a JSON config.
func Open(config string) (uint64, int) {
	p, n, free := cbytes([]byte(config))
	defer free()
	var h C.cachee_t
	rc := C.cachee_open((*C.char)(p), n, &h)
	return uint64(h), int(rc)
}

// Close calls cachee_close.
func Close(h uint64) int { return int(C.cachee_close(C.cachee_t(h))) }

// Value is what Get returns.
type Value struct {
	Data, Meta []byte
	ExpiresNs  int64
	Tier       int
	Flags      uint32
}

// Get calls cachee_get and frees the result with cachee_value_free.
func Get(h uint64, key []byte, flags uint32) (Value, int) {
	k, kn, free := cbytes(key)
	defer free()
	var v C.cachee_value
	rc := C.cachee_get(C.cachee_t(h), k, kn, C.uint32_t(flags), &v)
	if rc != C.CACHEE_OK {
		return Value{}, int(rc)
	}
	out := Value{
		Data:      C.GoBytes(v.data, C.int(v.len)),
		Meta:      C.GoBytes(v.meta, C.int(v.meta_len)),
		ExpiresNs: int64(v.expires_ns),
		Tier:      int(v.tier),
		Flags:     uint32(v.flags),
	}
	C.cachee_value_free(&v)
	if v.data != nil || v.len != 0 {
		panic("cachee_value_free did not zero the value")
	}
	return out, OK
}

// Set calls cachee_set.
func Set(h uint64, key, value, meta []byte, ttlNs int64, flags uint32) int {
	k, kn, f1 := cbytes(key)
	defer f1()
	v, vn, f2 := cbytes(value)
	defer f2()
	m, mn, f3 := cbytes(meta)
	defer f3()
	return int(C.cachee_set(C.cachee_t(h), k, kn, v, vn, m, mn, C.int64_t(ttlNs), C.uint32_t(flags)))
}

// Delete calls cachee_delete.
func Delete(h uint64, key []byte) int {
	k, kn, free := cbytes(key)
	defer free()
	return int(C.cachee_delete(C.cachee_t(h), k, kn))
}

// Stats calls cachee_stats twice: once for the size, once for the JSON.
func Stats(h uint64) (string, int) {
	var n C.size_t
	if rc := C.cachee_stats(C.cachee_t(h), nil, 0, &n); rc != C.CACHEE_E_TOO_SMALL {
		return "", int(rc)
	}
	buf := C.malloc(n)
	defer C.free(buf)
	if rc := C.cachee_stats(C.cachee_t(h), (*C.char)(buf), n, &n); rc != C.CACHEE_OK {
		return "", int(rc)
	}
	return C.GoStringN((*C.char)(buf), C.int(n)), OK
}

// LastError calls cachee_last_error.
func LastError(h uint64) (string, int) {
	var buf [1024]C.char
	rc := C.cachee_last_error(C.cachee_t(h), &buf[0], C.size_t(len(buf)), nil)
	return C.GoString(&buf[0]), int(rc)
}

// OpenHandles calls cachee_open_handles.
func OpenHandles() int64 { return int64(C.cachee_open_handles()) }

// Goroutines calls cachee_goroutines.
func Goroutines() int64 { return int64(C.cachee_goroutines()) }

// Threads runs n C threads (pthreads, outside the Go scheduler) doing
// gets, sets and deletes on h, and returns how many calls failed or
// returned a wrong value.
func Threads(h uint64, n, iters int) int {
	return int(C.ct_threads(C.cachee_t(h), C.int(n), C.int(iters)))
}
