package l0

// ShmLayout exposes shmLayout to the external tests.
var ShmLayout = shmLayout

// HashC is XXH3-64 computed by the engine's libxxhash (Hash is Go's).
var HashC = hashC
