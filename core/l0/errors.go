package l0

/*
#include "cachee_l0.h"
*/
import "C"

import (
	"strconv"
	"syscall"
)

// Error is a negative return code of the C engine (a CACHEE_L0_* constant of
// include/cachee_l0.h) together with its description from
// cachee_l0_strerror.
//
// Every code the engine documents has an exported sentinel below (ErrNotFound,
// ErrFull, ...), and the functions of this package return those very values,
// so both errors.Is(err, ErrFull) and err == ErrFull work for errors that are
// returned unwrapped (Open and Unlink wrap theirs in an *fs.PathError; use
// errors.Is). Positive codes of the engine, which are errno values of a failed
// system call, are returned as syscall.Errno instead.
type Error struct {
	// Code is the engine's return code, e.g. -31006 for CACHEE_L0_E_FULL.
	Code int
	msg  string
}

// Error returns "cachee: " followed by cachee_l0_strerror's description.
func (e *Error) Error() string {
	if e.msg == "" {
		return "cachee: " + codeText(e.Code)
	}
	return "cachee: " + e.msg
}

// Is reports whether target is an *Error with the same Code, so that
// errors.Is matches an error against the sentinels even if it is a distinct
// value (for example one built by hand in a test).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && t.Code == e.Code
}

func newErr(code C.int) *Error {
	return &Error{Code: int(code), msg: codeText(int(code))}
}

func codeText(code int) string {
	s := C.GoString(C.cachee_l0_strerror(C.int(code)))
	if s == "unknown cachee error code" {
		s += " " + strconv.Itoa(code)
	}
	return s
}

// The sentinels: one per negative code of include/cachee_l0.h, plus
// ErrClosed, which this package returns for any call on a closed Region.
var (
	// ErrNotFound (CACHEE_L0_NOTFOUND): the key is absent or expired (a miss).
	ErrNotFound = newErr(C.CACHEE_L0_NOTFOUND)
	// ErrExists (CACHEE_L0_EXISTS): SetOptions.IfAbsent was given and the key
	// is present; nothing was stored.
	ErrExists = newErr(C.CACHEE_L0_EXISTS)
	// ErrStale (CACHEE_L0_STALE): Region.Promote found the key's generation
	// moved since the copy was read (or the copy expired); nothing was
	// stored: drop the copy.
	ErrStale = newErr(C.CACHEE_L0_STALE)
	// ErrInvalid (CACHEE_L0_E_INVAL): an invalid argument, such as an empty
	// key, a negative or overflowing TTL, a negative OpenTimeout or a mode
	// with bits outside 0777.
	ErrInvalid = newErr(C.CACHEE_L0_E_INVAL)
	// ErrKeyTooLarge (CACHEE_L0_E_KEY_TOO_LARGE): the key is longer than
	// KeyMax bytes.
	ErrKeyTooLarge = newErr(C.CACHEE_L0_E_KEY_TOO_LARGE)
	// ErrValueTooLarge (CACHEE_L0_E_VALUE_TOO_LARGE): the value is longer than
	// the region's Info().ValueMax.
	ErrValueTooLarge = newErr(C.CACHEE_L0_E_VALUE_TOO_LARGE)
	// ErrMetaTooLarge (CACHEE_L0_E_META_TOO_LARGE): the metadata is longer
	// than MetaMax bytes.
	ErrMetaTooLarge = newErr(C.CACHEE_L0_E_META_TOO_LARGE)
	// ErrFull (CACHEE_L0_E_FULL): no space could be made because everything
	// evictable is pinned by live views or being written; nothing was stored.
	// Release views or use a larger region.
	ErrFull = newErr(C.CACHEE_L0_E_FULL)
	// ErrTooManyPins (CACHEE_L0_E_TOO_MANY_PINS): this process already holds
	// 65535 pinned views on one segment.
	ErrTooManyPins = newErr(C.CACHEE_L0_E_TOO_MANY_PINS)
	// ErrTooManyProcs (CACHEE_L0_E_TOO_MANY_PROCS): every process slot of the
	// region belongs to a live process (see Options.MaxProcs).
	ErrTooManyProcs = newErr(C.CACHEE_L0_E_TOO_MANY_PROCS)
	// ErrNotRegion (CACHEE_L0_E_NOT_REGION): the file is not a cachee region
	// (wrong magic, or too short).
	ErrNotRegion = newErr(C.CACHEE_L0_E_NOT_REGION)
	// ErrFormat (CACHEE_L0_E_FORMAT): the region was made by an incompatible
	// build (its format word differs from this build's).
	ErrFormat = newErr(C.CACHEE_L0_E_FORMAT)
	// ErrCorrupt (CACHEE_L0_E_CORRUPT): the region's contents are
	// inconsistent. Check wraps it with a description of the violation.
	ErrCorrupt = newErr(C.CACHEE_L0_E_CORRUPT)
	// ErrSize (CACHEE_L0_E_SIZE): the size is zero, below SizeMin, above
	// SizeMax, or leaves too little room for the arena with these parameters
	// (segment size, process slots, entries).
	ErrSize = newErr(C.CACHEE_L0_E_SIZE)
	// ErrSizeMismatch (CACHEE_L0_E_SIZE_MISMATCH): an existing region has
	// another size than Options.Size (use 0 to accept any).
	ErrSizeMismatch = newErr(C.CACHEE_L0_E_SIZE_MISMATCH)
	// ErrOwner (CACHEE_L0_E_OWNER): the file belongs to another user (see
	// Options.AllowForeignOwner).
	ErrOwner = newErr(C.CACHEE_L0_E_OWNER)
	// ErrMode (CACHEE_L0_E_MODE): the file grants more access than
	// Options.Mode (see Options.AllowLooseMode).
	ErrMode = newErr(C.CACHEE_L0_E_MODE)
	// ErrUnsafePath (CACHEE_L0_E_UNSAFE_PATH): the path is a symbolic link,
	// not a regular file (a directory, say), or has hard links.
	ErrUnsafePath = newErr(C.CACHEE_L0_E_UNSAFE_PATH)
	// ErrNotSHM (CACHEE_L0_E_NOT_SHM): the path is not on tmpfs or hugetlbfs
	// (see Options.AllowAnyFS).
	ErrNotSHM = newErr(C.CACHEE_L0_E_NOT_SHM)
	// ErrNoSpace (CACHEE_L0_E_NO_SPACE): the filesystem cannot hold the region
	// (in Docker, /dev/shm is 64 MiB unless --shm-size says otherwise).
	ErrNoSpace = newErr(C.CACHEE_L0_E_NO_SPACE)
	// ErrNotReady (CACHEE_L0_E_NOT_READY): the region's creator did not finish
	// it within Options.OpenTimeout, or died before finishing it and
	// Options.Create was not given.
	ErrNotReady = newErr(C.CACHEE_L0_E_NOT_READY)
	// ErrBufferTooSmall (CACHEE_L0_E_BUFFER_TOO_SMALL): a buffer is smaller
	// than the value. The Go API grows its buffers and retries, so it never
	// returns this code; it exists for completeness.
	ErrBufferTooSmall = newErr(C.CACHEE_L0_E_BUFFER_TOO_SMALL)
	// ErrRetry (CACHEE_L0_E_RETRY): an optimistic read was overtaken by a
	// writer. The Go API retries internally and does not return it.
	ErrRetry = newErr(C.CACHEE_L0_E_RETRY)
	// ErrBadPin (CACHEE_L0_E_BAD_PIN): a view is not pinned, for example
	// because Pinned.Release was already called.
	ErrBadPin = newErr(C.CACHEE_L0_E_BAD_PIN)
	// ErrNoRegion (CACHEE_L0_E_NO_REGION): the region does not exist and
	// Options.Create was not given (or Unlink found nothing).
	ErrNoRegion = newErr(C.CACHEE_L0_E_NO_REGION)
	// ErrRegionExists (CACHEE_L0_E_REGION_EXISTS): the region exists and
	// Options.Exclusive was given.
	ErrRegionExists = newErr(C.CACHEE_L0_E_REGION_EXISTS)
	// ErrBadPath (CACHEE_L0_E_BAD_PATH): the path is empty, too long, or names
	// "." or "..".
	ErrBadPath = newErr(C.CACHEE_L0_E_BAD_PATH)
	// ErrLock (CACHEE_L0_E_LOCK): a region lock could not be repaired (the
	// robust mutex is unrecoverable).
	ErrLock = newErr(C.CACHEE_L0_E_LOCK)
	// ErrBusy (CACHEE_L0_E_BUSY): Region.LoadTryLock found the loader lock
	// of the key held by another process or goroutine (it is computing the
	// value). Not a failure: wait for the value, or try again later.
	ErrBusy = newErr(C.CACHEE_L0_E_BUSY)
	// ErrClosed: the Region was closed (Region.Close), or, for a Pinned, the
	// Region it came from was. It is this package's own error, not an engine
	// code: its Code (-31999) lies outside the engine's range.
	ErrClosed = &Error{Code: codeClosed, msg: "region is closed"}
)

// codeClosed is the Code of ErrClosed: outside the engine's codes
// (-31000..-31027), so that it never collides with one.
const codeClosed = -31999

var sentinels = map[int]*Error{}

func init() {
	for _, e := range []*Error{
		ErrNotFound, ErrExists, ErrInvalid, ErrKeyTooLarge, ErrValueTooLarge,
		ErrMetaTooLarge, ErrFull, ErrTooManyPins, ErrTooManyProcs,
		ErrNotRegion, ErrFormat, ErrCorrupt, ErrSize, ErrSizeMismatch,
		ErrOwner, ErrMode, ErrUnsafePath, ErrNotSHM, ErrNoSpace, ErrNotReady,
		ErrBufferTooSmall, ErrRetry, ErrBadPin, ErrNoRegion, ErrRegionExists,
		ErrBadPath, ErrLock, ErrBusy, ErrClosed,
		ErrStale,
	} {
		sentinels[e.Code] = e
	}
}

// codeErr turns a return code of the engine into an error: nil for 0, the
// sentinel for a known negative code, a fresh *Error for an unknown negative
// one, and syscall.Errno for a positive (errno) code.
func codeErr(rc C.int) error {
	switch {
	case rc == 0:
		return nil
	case rc > 0:
		return syscall.Errno(rc)
	}
	// The hot misses first, without a map lookup.
	switch rc {
	case C.CACHEE_L0_NOTFOUND:
		return ErrNotFound
	case C.CACHEE_L0_EXISTS:
		return ErrExists
	}
	if e, ok := sentinels[int(rc)]; ok {
		return e
	}
	return newErr(rc)
}
