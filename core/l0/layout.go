package l0

/*
#include <stddef.h>
#include "cachee_l0.h"

#define L0GO_OFF(t, f) ((long long)offsetof(struct t, f))

static void bind_layout(long long *o) {
	o[0] = L0GO_OFF(cachee_l0_shm_header, format);
	o[1] = L0GO_OFF(cachee_l0_shm_header, region_size);
	o[2] = L0GO_OFF(cachee_l0_shm_header, ready);
	o[3] = L0GO_OFF(cachee_l0_shm_header, seg_size);
	o[4] = L0GO_OFF(cachee_l0_shm_header, nsegs);
	o[5] = L0GO_OFF(cachee_l0_shm_header, nshards);
	o[6] = L0GO_OFF(cachee_l0_shm_header, shard_slots);
	o[7] = L0GO_OFF(cachee_l0_shm_header, max_procs);
	o[8] = L0GO_OFF(cachee_l0_shm_header, slots_off);
	o[9] = L0GO_OFF(cachee_l0_shm_header, pins_off);
	o[10] = L0GO_OFF(cachee_l0_shm_header, segs_off);
	o[11] = L0GO_OFF(cachee_l0_shm_header, gens_off);
	o[12] = L0GO_OFF(cachee_l0_shm_header, rings_off);
	o[13] = L0GO_OFF(cachee_l0_shm_header, free_off);
	o[14] = L0GO_OFF(cachee_l0_shm_header, ghost_off);
	o[15] = L0GO_OFF(cachee_l0_shm_header, shards_off);
	o[16] = L0GO_OFF(cachee_l0_shm_header, index_off);
	o[17] = L0GO_OFF(cachee_l0_shm_header, arena_off);
	o[18] = L0GO_OFF(cachee_l0_shm_header, global_lock);
	o[19] = (long long)sizeof(pthread_mutex_t);
	o[20] = L0GO_OFF(cachee_l0_shm_shard, lock);
	o[21] = (long long)sizeof(struct cachee_l0_shm_shard);
	o[22] = (long long)sizeof(struct cachee_l0_shm_entry);
	o[23] = (long long)sizeof(struct cachee_l0_shm_seg);
	o[24] = (long long)sizeof(struct cachee_l0_shm_slot);
	o[25] = (long long)sizeof(struct cachee_l0_shm_record);
	o[26] = (long long)sizeof(struct cachee_l0_shm_header);
	o[27] = CACHEE_L0_READY_MARK;
	o[28] = L0GO_OFF(cachee_l0_shm_header, ring_head);
	o[29] = L0GO_OFF(cachee_l0_shm_header, ring_tail);
	o[30] = L0GO_OFF(cachee_l0_shm_header, nfree);
	o[31] = L0GO_OFF(cachee_l0_shm_shard, layout_seq);
}
*/
import "C"

// shmLayout returns the offsets and sizes of the shared layout's structs, as
// the C compiler lays them out (see THE SHARED LAYOUT in cachee_l0.h). Only
// the tests and fuzz targets that damage regions on purpose use it.
func shmLayout() map[string]int64 {
	var o [32]C.longlong
	C.bind_layout(&o[0])
	names := []string{
		"hdr.format", "hdr.region_size", "hdr.ready", "hdr.seg_size",
		"hdr.nsegs", "hdr.nshards", "hdr.shard_slots", "hdr.max_procs",
		"hdr.slots_off", "hdr.pins_off", "hdr.segs_off", "hdr.gens_off",
		"hdr.rings_off", "hdr.free_off", "hdr.ghost_off", "hdr.shards_off",
		"hdr.index_off", "hdr.arena_off", "hdr.global_lock",
		"sizeof.mutex", "shard.lock", "sizeof.shard", "sizeof.entry",
		"sizeof.seg", "sizeof.slot", "sizeof.record", "sizeof.header",
		"ready_mark", "hdr.ring_head", "hdr.ring_tail", "hdr.nfree",
		"shard.layout_seq",
	}
	m := make(map[string]int64, len(names))
	for i, n := range names {
		m[n] = int64(o[i])
	}
	return m
}
