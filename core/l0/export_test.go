package l0

// ShmLayout exposes shmLayout to the external tests.
var ShmLayout = shmLayout
