package capitest

/*
#include <stdlib.h>
#include <string.h>
#include "cachee.h"

// One record per key, pointing into one buffer of keys, one of values and
// one of metadata.
static int ct_demote(cachee_t h, int n, const char *keys, const size_t *klen,
                     const char *vals, const size_t *vlen, const char *metas,
                     const size_t *mlen, const uint32_t *gen,
                     const int64_t *exp, uint32_t reserved, size_t *stored) {
	cachee_record *r = calloc((size_t)(n ? n : 1), sizeof *r);
	if (r == NULL) return CACHEE_E_NOMEM;
	size_t ko = 0, vo = 0, mo = 0;
	for (int i = 0; i < n; i++) {
		r[i].key = klen[i] ? keys + ko : NULL;
		r[i].key_len = klen[i];
		r[i].value = vlen[i] ? vals + vo : NULL;
		r[i].value_len = vlen[i];
		r[i].meta = mlen[i] ? metas + mo : NULL;
		r[i].meta_len = mlen[i];
		r[i].expires_ns = exp[i];
		r[i].generation = gen[i];
		r[i].reserved_ = reserved;
		ko += klen[i];
		vo += vlen[i];
		mo += mlen[i];
	}
	int rc = cachee_demote(h, n ? r : NULL, (size_t)n, stored);
	free(r);
	return rc;
}
*/
import "C"

// Record is one record for Demote.
type Record struct {
	Key, Value []byte
	// Meta is the record's metadata; nil means "m".
	Meta       []byte
	ExpiresNs  int64
	Generation uint32
}

// Demote calls cachee_demote with recs; reserved is
// written into every record's reserved_ field. It returns the count stored
// and the code.
func Demote(h uint64, recs []Record, reserved uint32) (int, int) {
	var keys, vals, metas []byte
	n := len(recs)
	klen := make([]C.size_t, n+1)
	vlen := make([]C.size_t, n+1)
	mlen := make([]C.size_t, n+1)
	gen := make([]C.uint32_t, n+1)
	exp := make([]C.int64_t, n+1)
	for i, r := range recs {
		keys = append(keys, r.Key...)
		vals = append(vals, r.Value...)
		m := r.Meta
		if m == nil {
			m = []byte("m")
		}
		metas = append(metas, m...)
		mlen[i] = C.size_t(len(m))
		klen[i], vlen[i] = C.size_t(len(r.Key)), C.size_t(len(r.Value))
		gen[i], exp[i] = C.uint32_t(r.Generation), C.int64_t(r.ExpiresNs)
	}
	kp, _, f1 := cbytes(append(keys, 0))
	defer f1()
	vp, _, f2 := cbytes(append(vals, 0))
	defer f2()
	mp, _, f3 := cbytes(append(metas, 0))
	defer f3()
	var stored C.size_t
	rc := C.ct_demote(C.cachee_t(h), C.int(n), (*C.char)(kp), &klen[0], (*C.char)(vp), &vlen[0],
		(*C.char)(mp), &mlen[0], &gen[0], &exp[0], C.uint32_t(reserved), &stored)

	return int(stored), int(rc)
}
