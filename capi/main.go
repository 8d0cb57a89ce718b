// Command capi is libcachee.so, the C ABI of cachee's Go core
// (include/cachee.h). Build it with
//
//	go build -buildmode=c-shared -o build/libcachee.so ./capi
//
// The exported functions live in package capi/abi (so that Go tests can
// call them through cgo); this package only links them into the library.
package main

import _ "github.com/cachee-dev/cachee/capi/abi"

func main() {}
