package l0

/*
#include "cachee_l0.h"
*/
import "C"

import (
	"sync/atomic"
	"syscall"
)

// LoadLock is a held loader lock: the right to compute the value of one key
// while other processes (and goroutines) that miss the same key wait for it
// to appear in the region instead of computing it too. See "Loader locks" in
// include/cachee_l0.h.
//
// The lock is an OFD byte-range lock on the region file, taken through an
// open file description of its own, so goroutines of one process exclude
// each other like processes do, and the kernel drops the lock when the
// holding process dies, whatever kills it: a waiter then takes over.
//
// A LoadLock holds one file descriptor until Unlock.
type LoadLock struct {
	r    *Region
	fd   C.int
	done atomic.Bool
}

// LoadTryLock takes the loader lock of the key whose hash is keyHash (Hash
// of the key) without waiting. Keys whose hashes agree in their low 40 bits
// share a lock (their loads are serialised, never wrong).
//
// Typical use (GetOrLoad): read the key; on a miss, LoadTryLock; with the
// lock, read the key again (another process may have stored it between the
// miss and the lock), compute and Set it, then Unlock; on ErrBusy, sleep
// (1 ms growing to 10 ms), read again, and retry the lock until a deadline.
//
// Errors: ErrBusy (held by another process or goroutine: not a failure),
// ErrNoRegion (the file could not be reopened), ErrClosed, or a
// syscall.Errno from open or fcntl (EMFILE when out of descriptors).
func (r *Region) LoadTryLock(keyHash uint64) (*LoadLock, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	var fd C.int
	if rc := C.cachee_l0_load_trylock(r.h, C.uint64_t(keyHash), &fd); rc != 0 {
		return nil, codeErr(rc)
	}
	return &LoadLock{r: r, fd: fd}, nil
}

// LoadLocked reports whether the loader lock of keyHash is held by anyone,
// this process included. The answer may be stale by the time it returns.
// Errors: ErrClosed, or a syscall.Errno from fcntl.
func (r *Region) LoadLocked(keyHash uint64) (bool, error) {
	if r.closed.Load() {
		return false, ErrClosed
	}
	var held C.int
	if rc := C.cachee_l0_load_held(r.h, C.uint64_t(keyHash), &held); rc != 0 {
		return false, codeErr(rc)
	}
	return held != 0, nil
}

// Unlock releases the lock and closes its descriptor. A second Unlock
// returns ErrInvalid. After the Region was closed, Unlock still releases the
// lock (by closing the descriptor). Other errors are a syscall.Errno from
// fcntl or close; the descriptor is closed anyway.
func (l *LoadLock) Unlock() error {
	if l == nil || !l.done.CompareAndSwap(false, true) {
		return ErrInvalid
	}
	if l.r.closed.Load() {
		return syscall.Close(int(l.fd))
	}
	if rc := C.cachee_l0_load_unlock(l.r.h, l.fd); rc != 0 {
		return codeErr(rc)
	}
	return nil
}
