package abi

/*
#cgo CFLAGS: -I${SRCDIR}/../../include -I${SRCDIR} -std=gnu11 -Wall -Wextra -Werror
#cgo noescape abigo_block
#cgo nocallback abigo_block
#include "abi_internal.h"

// The bytes come as Go strings: cgo does not check a string for Go
// pointers, which saves its pointer checks; C only reads them during the
// call.
static inline int abigo_block(_GoString_ d, _GoString_ m, cachee_value *out) {
	return cachee_abi_block(_GoStringPtr(d), _GoStringLen(d), _GoStringPtr(m), _GoStringLen(m), out);
}
*/
import "C"

import "unsafe"

// block copies data and meta into one malloc'ed block and points out's data
// and meta into it (abi_internal.h); false when malloc failed.
func block(data, meta []byte, out *C.cachee_value) bool {
	return C.abigo_block(str(data), str(meta), out) == 0
}

// str views b as a string without a copy (for the C call of block only).
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
