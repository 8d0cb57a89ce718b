/*
 * cachee_l0.h -- the L0 engine of cachee: one hash table in shared memory
 * that every process on a machine reads without a system call, a lock or a
 * copy.
 *
 * (The tiers beyond L0 -- per-process L1, and the machine's and the
 * fleet's shared tiers -- have an ABI of their own, include/cachee.h, the
 * Go core in libcachee.so.  ARCHITECTURE.md says how the two fit together.)
 *
 * This header is two things at once:
 *
 *   1. the public C API of the engine (functions, options, error codes), and
 *   2. the SPECIFICATION of the shared layout: every byte of a region, who
 *      may write it, under which lock, and in which order, so that readers,
 *      writers, a process killed at any instruction and a hostile file are
 *      all accounted for.
 *
 * The engine has no runtime and no global state: everything it needs lives
 * in the region or in the handle the caller holds.  It is compiled into the
 * CPython extension and, through cgo, into the Go core; build it with
 * -fvisibility=hidden so that the two copies never clash.
 *
 * ======================================================================
 * OVERVIEW
 * ======================================================================
 *
 * A region is a file on a memory filesystem (tmpfs or hugetlbfs; a bare name
 * means /dev/shm/NAME) mapped MAP_SHARED by every process that uses it.  It
 * holds, in this order (all offsets are recorded in the header and are a pure
 * function of the creation parameters, so every opener recomputes and
 * compares them):
 *
 *   +---------------------------+  0
 *   | header (4 KiB)            |  identity, geometry, global lock, queues
 *   +---------------------------+  slots_off
 *   | process slots             |  max_procs x 128 B: one per live process
 *   +---------------------------+  pins_off
 *   | pin table                 |  max_procs x nsegs x uint16
 *   +---------------------------+  segs_off
 *   | segment table             |  nsegs x 64 B: state of each segment
 *   | segment generations       |  nsegs x uint32 (read by every reader)
 *   | small / main FIFO rings   |  2 x ring_cap x uint64
 *   | free stack                |  nsegs x uint32
 *   | ghost filter              |  ghost_n x uint32
 *   | key generations           |  keygen_n x uint32 (see KEY GENERATIONS)
 *   +---------------------------+  shards_off
 *   | shards                    |  nshards x 256 B: lock, intent, counters
 *   +---------------------------+  index_off
 *   | index                     |  nshards x shard_slots x 16 B
 *   +---------------------------+  arena_off (seg_size aligned)
 *   | arena                     |  nsegs x seg_size: the records
 *   +---------------------------+  region_size
 *
 * Keys are hashed with XXH3-64 (seed 0).  The top bits of the hash choose a
 * shard, the low 32 bits a home slot in the shard's open-addressing table
 * (linear probing), and 16 further bits form a tag kept in the index entry so
 * that most probes never touch key bytes.
 *
 * Values live in RECORDS appended to SEGMENTS of the arena (a log-structured
 * allocator).  A record is never modified after it is published, except for
 * its frequency byte; a write builds a complete new record elsewhere and then
 * publishes it by rewriting one index entry (MVCC).  Space comes back a
 * whole segment at a time, by eviction.
 *
 * ======================================================================
 * THE HEADER (struct cachee_l0_shm_header)
 * ======================================================================
 *
 * The first cache line identifies the file: the magic "cacheeL0", the format
 * word, the region size and the ready mark.  The FORMAT WORD packs the layout
 * version with the sizes this build depends on (pthread_mutex_t, an index
 * entry, a process slot, a record header, a shard) and the byte order, the
 * way LMDB's lock file does: two builds that disagree on any of them refuse
 * each other's regions (CACHEE_L0_E_FORMAT) instead of misreading them.
 *
 * The geometry that follows is immutable after creation.  An opener copies it
 * into private memory, recomputes the layout from the creation parameters and
 * requires equality with every recorded offset and with the file size; from
 * then on it uses only its private copy, so a process that scribbles on the
 * header later cannot make another process use wild offsets.
 *
 * The READY mark is written last, with release ordering, when the creator has
 * initialised everything.  The creator builds the region in an unnamed file
 * (O_TMPFILE) and links it into place only after the header is written and
 * while holding the init lock (an OFD lock on byte CACHEE_L0_LOCK_INIT), so a
 * name never refers to a half-built region that nobody is building: an opener
 * that finds the ready mark missing waits (bounded) while the init lock is
 * held, and treats a region whose init lock is free and whose ready mark is
 * missing as ABANDONED (its creator died); with CACHEE_L0_CREATE it replaces
 * it, otherwise it fails with CACHEE_L0_E_NOT_READY.
 *
 * The global mutable state (segment queues, counters of segments per state,
 * the sequence used to order sealed segments, the totals inherited from dead
 * processes) is protected by the GLOBAL LOCK, a robust process-shared mutex
 * in its own cache line.
 *
 * ======================================================================
 * PROCESS SLOTS (struct cachee_l0_shm_slot) AND LIVENESS
 * ======================================================================
 *
 * Every process that uses a region claims one slot on its first operation.
 * The first cache line of a slot is written only by its owner (and by a
 * survivor reclaiming it after the owner died): the open segments the process
 * appends to, its pin totals and its statistics.
 * Statistics are counted per process and summed on request, so a hit writes
 * no cache line that another process reads.
 *
 * Liveness uses the kernel, never a pid: slot s is alive while an OFD lock
 * (fcntl F_OFD_SETLK) is held on byte CACHEE_L0_LOCK_SLOTS + 2*s or
 * CACHEE_L0_LOCK_SLOTS + 2*s + 1 of the region file.  The kernel drops the
 * lock when the last descriptor of the owning open file description closes,
 * i.e. when the process dies, whatever kills it, so a survivor that finds
 * neither byte locked knows the owner is gone; pid reuse and pid namespaces
 * cannot fool it.  The pid and process start time stored in the slot are for
 * diagnostics only.  To claim a slot a process first takes the lock on its
 * byte, then moves the state from FREE to ACTIVE with a compare-and-swap, so
 * a slot being claimed is never mistaken for a dead one.
 *
 * A child created by fork() without exec shares its parent's open file
 * description, so it cannot prove its own liveness with it.  The handle keeps
 * its registration in a MADV_WIPEONFORK page: in a child that page reads as
 * zeroes, and the child's first operation re-opens the file (a new open file
 * description replaces the inherited one at the same descriptor number),
 * claims a slot of its own and goes on.  This works at any depth.
 * cachee_l0_fork_prepare/parent/child (for languages with fork hooks, such as
 * Python's os.register_at_fork) go further: the parent claims the child's
 * slot before fork and copies its own pins into it, so views inherited by a
 * child stay valid in the child for as long as the child keeps them (see
 * PINS).  The child's slot is claimed through byte 0, locked on an open file
 * description made for the hand-off alone, which fork() shares between the
 * two; the child then locks byte 1 through a description of its own, and
 * both close their copy of the hand-off description.  The parent's own
 * liveness is never moved, so however parent, child and grandchildren are
 * scheduled (a child may fork again before its parent has returned from
 * fork()), no live process is ever without a locked byte.
 *
 * SHARED SLOTS.  A process that opens a region twice (two handles, or two
 * copies of this engine: a language extension and a library it loads) is
 * still one process: the second handle can be opened with the first one's
 * registration token (cachee_l0_options.share_slot), and then uses the same
 * slot, as another thread would.  Its pins, open segments and statistics are
 * the slot's; it holds no liveness lock of its own (the first handle's lock
 * keeps the slot alive, which is why that handle must be closed last), and
 * closing it leaves the slot to the first handle.
 *
 * REAPING.  A survivor that finds an ACTIVE slot with neither byte locked
 * reclaims it under the global lock: the dead process's pins are cleared,
 * its open segments are sealed, segments it was reclaiming are finished, its
 * statistics are added to the header's retired totals, and the slot becomes
 * FREE with its generation incremented.  Reaping runs when a slot is needed,
 * when space cannot be found, when statistics are asked for, at most once a
 * second during segment refills, and on cachee_l0_reap().
 *
 * ======================================================================
 * SEGMENTS (struct cachee_l0_shm_seg) AND EVICTION
 * ======================================================================
 *
 * The arena is cut into nsegs segments of seg_size bytes (a power of two).
 * A segment is in one of these states (transitions under the global lock):
 *
 *   FREE        on the free stack, holds nothing.
 *   OPEN        a process appends records to it: its slot's open word
 *               (segment+1)<<32 | fill is advanced by compare-and-swap, so
 *               the threads of a process share it without a lock.
 *   SEALED      full (or its owner died); queued on the SMALL or MAIN FIFO.
 *   RECLAIMING  taken off a queue by an evictor, which owns it.
 *   LIMBO       evicted, but bytes may still be read through pins: returns
 *               to FREE when no pin (reader's or writer's) refers to it.
 *   BODY        2nd..kth segment of a large extent (a record larger than a
 *               segment takes k contiguous segments; the first one carries
 *               the state, the others point to it).
 *
 * LOCK ORDER.  A process may take the global lock while it holds a shard
 * lock (an evictor reinserting a record needs a fresh segment), never a shard
 * lock while it holds the global lock.
 * GENERATIONS.  Each segment has a 32-bit generation, kept in a dense array
 * that readers read and only an evictor writes.  It is incremented when the
 * segment is reclaimed, before any of its bytes can be reused.  An index
 * entry records the generation of the segment its record was written in; an
 * entry whose generation differs from the segment's is STALE and is treated
 * as a tombstone by everyone.  Generation 0 is never used.
 *
 * GARBAGE AND PRESSURE.  Overwritten and deleted records stay in their
 * segments as garbage until the segment is reclaimed.  Each segment counts the
 * bytes of its records that index entries still point to (live_bytes), so an
 * evictor knows how full the cache really is.  While live bytes are below 85%
 * of the arena, reclaiming a segment is garbage collection: every live record
 * is copied forward and nothing is evicted.  Only above that mark does the
 * frequency policy below decide which records leave.
 *
 * EVICTION (S3-FIFO over segments).  New records go to the writer's open
 * SMALL segment; sealed small segments form the small FIFO (about 10% of the
 * arena), everything else the main FIFO.  Each record carries a 2-bit access
 * frequency that a reader increments only while it is below 3, so hot keys
 * stop writing their cache line after three hits and stay read-only on shared
 * lines.  When a process needs a segment and none is free it evicts: it takes
 * the oldest sealed segment of the small FIFO if that FIFO is over its share,
 * else of the main FIFO, marks it RECLAIMING and releases the global lock.
 * It then walks the records: a record that is still the live version of its
 * key and was read since it was written (small) or has frequency > 0 (main)
 * is copied into the evictor's open MAIN segment with its frequency decreased
 * (reinsertion, under the key's shard lock); every other live record is
 * copied forward unchanged while the cache is below the pressure mark, and
 * otherwise evicted (its entry becomes a tombstone) and, from the small FIFO,
 * its hash
 * is remembered in the GHOST filter, so that a key that comes back soon
 * starts with frequency 1 and goes to the main FIFO at its next eviction.
 * Finally the generation is incremented and the pins are checked: no pin
 * -> FREE; otherwise LIMBO.  Several processes evict
 * different segments in parallel.  An evictor never waits for space while it
 * evicts: a reinsertion that finds no room evicts the record instead.
 *
 * A record larger than a segment (up to value_max) takes an extent of k
 * contiguous segments; space for it is made by evicting the cheapest window
 * of k unpinned, unopened segments.  An extent is queued as one unit; when it
 * is due for eviction and hot, it is requeued in place without a copy.
 *
 * When everything evictable is pinned or open, a writer first seals the open
 * segments of other processes (stealing; their threads notice with their next
 * compare-and-swap), then fails with CACHEE_L0_E_FULL.  Writers never block
 * on pins.
 *
 * A second trigger protects the index: a shard whose live entries reach 80%
 * of its slots evicts entries by a CLOCK sweep over its slots (frequency
 * decremented as the hand passes; entries found at 0 are evicted) until 70%
 * are left, then rebuilds once (see REBUILD), so that when the index rather
 * than the arena is full, one rebuild serves the next 10% of inserts instead
 * of every few dozen.  The shard holds 75% of its slots (max_entries) on
 * average.  The hand visits slot (hand * stride) mod shard_slots, stride a
 * fixed number near shard_slots / 1.618 and coprime to it, not the slots in
 * order: evicting neighbours in a row would leave part of the table nearly
 * empty and the rest nearly full, where linear probing costs a probe per
 * entry of ever longer clusters.
 *
 * ======================================================================
 * RECORDS (struct cachee_l0_shm_record)
 * ======================================================================
 *
 * A record starts on a 16-byte boundary: a 32-byte header, the key, the
 * caller's metadata (Python keeps dtype and shape there), padding, the value
 * (16-byte aligned, 64-byte aligned from 4 KiB on), padding to 16 bytes.  So
 * a 512-byte vector with an 8-byte key and 6 bytes of metadata takes 560
 * bytes.  The header carries the generation of the segment at write time and
 * a magic, so a reader can tell a record from garbage, the low 32 bits of the
 * key's hash (the index entry's tag holds 16 more; code that needs the whole
 * hash, such as an evictor, hashes the key that follows the header), the
 * value length (below 4 GiB), expiry (CLOCK_REALTIME ns, 0 = never), a
 * version (per-shard sequence, 32 bits: it increases with every write to the
 * shard and wraps after 2^32 of them), the frequency byte, and flags: the head
 * of a large extent, and DEAD, which a writer sets once the record's entry
 * was replaced or removed, so that an evictor skips garbage without probing
 * the index.
 *
 * ======================================================================
 * THE INDEX AND THE PUBLISH PROTOCOL
 * ======================================================================
 *
 * Each shard owns shard_slots consecutive index entries of 16 bytes:
 *
 *   w0 = ver:16 | tag:16 | gen:32
 *   w1 = ver:16 | kind:2 | lines:6 | loc:40
 *        kind:  EMPTY, LIVE, TOMB
 *        lines: the cache lines (64 bytes) the record spans, 63 = 63 or more
 *        loc:   arena offset / 16
 *
 * `lines` lets a reader ask for every line of a record the moment it knows
 * where the record is: the value's lines then arrive together with the
 * header instead of one after the other as the copy walks them (a 512-byte
 * value is 9 lines; asking for them at once took a random read of one from
 * 730 to 520 ns on the 2-vCPU test machine, bench/l0/floor.c).
 *
 * Both words carry the same 16-bit version; a writer stores w0 then w1 (both
 * with release ordering) with the version incremented, and a reader that
 * loads w1 then w0 (acquire) and finds different versions has seen a torn
 * entry and re-reads it.  So a reader sees the old entry or the new one,
 * never a mix.
 *
 * WRITES.  A writer (1) reserves space in its open segment, (2) writes the
 * whole record there, (3) takes the shard lock, (4) finds the key's entry (or
 * the first tombstone/empty slot on its probe path), (5) writes an INTENT in
 * the shard (slot index and the new w0/w1) and marks it active, (6) stores w0
 * and w1, (7) clears the intent, updates the shard's counters, (8) releases
 * the lock.  The only store that makes the value visible is the store of w1:
 * readers see the old value or the new one, never a torn one.
 *
 * READERS never take a lock and never write shared memory on a hit except
 * the frequency byte while it is below 3.  A reader loads the shard's layout
 * sequence (odd while the shard is being rebuilt), probes from the home slot,
 * skips entries whose tag differs, checks the entry's generation against the
 * segment's, bounds-checks the record (it must lie inside its segment, or
 * inside the arena for an extent), checks the record's magic, hash,
 * generation and key, copies what it wants, and then re-reads the segment
 * generation (a seqlock on the segment): if it changed, the segment was
 * reclaimed meanwhile and the read starts again.  A miss is confirmed by the
 * layout sequence being unchanged.  Every offset read from shared memory is
 * checked before use, and every loop is bounded by the table size, so a
 * corrupt or hostile region yields CACHEE_L0_E_CORRUPT or a miss, never a
 * crash or a read outside the mapping.
 *
 * REBUILD.  Deletes leave tombstones.  When a shard's live entries plus
 * tombstones pass 85% of its slots (or after an index eviction batch, see
 * EVICTION), the writer rebuilds it in place under
 * its lock with the layout sequence odd: tombstones and stale entries become
 * EMPTY, then every live entry is moved to the first empty slot of its probe
 * path (a copy is written before the original is cleared, so a crash leaves
 * a duplicate, never a loss).  Rebuilding is idempotent.  A writer does both
 * in one sweep that starts after a slot that was EMPTY (no probe path
 * crosses it, so every slot between an entry's home and the entry is
 * cleaned before the sweep reaches the entry); repair, which cannot assume
 * that every entry was reachable, cleans everything first and then moves
 * entries in passes until nothing moves.
 *
 * ======================================================================
 * KEY GENERATIONS
 * ======================================================================
 *
 * A process may keep copies of L0 values outside L0 (the Go engine's
 * per-process L1 holds values L0 evicted, and values read from slower tiers
 * that were not admitted into L0).  Another process may rewrite or delete
 * such a key meanwhile, and a later eviction may remove the new value from
 * L0: the copy outside must then not come back.  The key generation table
 * tells it: keygen_n (a power of two: 4 x ghost_n, 4 counters per entry the
 * index is sized for, but at most CACHEE_L0_KEYGEN_MAX and at most
 * max(1024, pow2_floor(region size / 128)), 1/32 of the region) 32-bit
 * counters at
 * keygen_off, the counter of a key being
 * CACHEE_L0_KEYGEN_INDEX(hash, keygen_n).  Every cachee_l0_set and every
 * cachee_l0_delete (even of an absent key) increments the key's counter
 * (atomically, sequentially consistent, under the shard lock, before the new
 * entry is published); eviction, expiry, copy-forward and cachee_l0_promote
 * do not.  A holder of a copy records the counter read BEFORE it fetched the
 * value (cachee_l0_generation, or the table itself through
 * cachee_l0_generation_table) and treats the copy as current only while the
 * counter still has that value.  Keys sharing a counter invalidate each
 * other's copies (a spurious miss, never a stale hit): a copy outside L0
 * lives, on average, until keygen_n writes of other keys have happened
 * (1/e of copies survive that many), so its lifetime is bounded by the
 * write rate of the whole region.  A copy is wrongly kept only if exactly
 * a multiple of 2^32 writes of its counter's keys happen between two of its
 * checks.
 * A writer killed between the increment and the publication leaves one
 * spurious increment.  Nothing to repair.
 *
 * ======================================================================
 * CRASH RECOVERY
 * ======================================================================
 *
 * All locks are robust process-shared mutexes.  The next process to lock a
 * mutex whose owner died gets EOWNERDEAD and repairs before it calls
 * pthread_mutex_consistent:
 *
 *   shard lock  - replay an active intent (the record it points to was fully
 *                 written before the intent existed), rebuild the shard
 *                 (which also finishes a rebuild the dead writer started and
 *                 removes its duplicates), recount live entries and
 *                 tombstones, leave the layout sequence even.
 *   global lock - rebuild the free stack and both FIFOs from the segment
 *                 table (states and seal sequence numbers are the truth),
 *                 recount segments per state.
 *
 * A waiter sleeps at most 20 ms at a time and then tries the lock again
 * (pthread_mutex_timedlock in slices): when processes are SIGKILLed while
 * contending, the kernel's wake-up meant for a waiter can be lost, and an
 * untimed wait would sleep on a free mutex until someone else locked it
 * (tests/torture/repro/robust_lost_wakeup.c shows it with glibc alone).
 *
 * Whatever instruction a writer dies at, every key keeps its old value or
 * gets its new one.  Space the dead process held (open segments, segments it
 * was reclaiming, pins) is recovered by reaping.  A reader that finds an
 * entry torn for too long, or a layout sequence odd for too long, takes the
 * shard lock itself, which repairs the shard if its owner died.
 *
 * ======================================================================
 * PINS
 * ======================================================================
 *
 * cachee_l0_get_pinned returns a pointer to the value in shared memory that
 * stays valid until cachee_l0_release, whatever writers do meanwhile
 * (overwrite, delete, expiry, eviction, a full region).  A pin is a count in
 * the pin table at [slot][segment], written only by the pinning process:
 * a reader increments its slot's pin total and the [slot][segment] count
 * (sequentially consistent), then re-checks the segment generation; an
 * evictor increments the generation, then reads the counts of the live slots
 * (Dekker's protocol: at least one of them sees the other).  A pinned
 * segment is never reused: it goes to LIMBO and back to FREE when its pins
 * are released or their processes die.  Pinned bytes never block a writer:
 * when only pinned space is left, writes fail with CACHEE_L0_E_FULL.
 * A writer pins the segment it appends to in the same way, from before its
 * reservation until its record is published, so a segment sealed and
 * evicted under a slow writer is never reused while that writer writes.
 *
 * Pinned memory comes from a second, PROT_READ mapping of the region, so a
 * caller cannot scribble on shared data through a view.
 *
 * ======================================================================
 * THREADS, FORK, SIGNALS
 * ======================================================================
 *
 * Every function may be called concurrently from any number of threads of a
 * process on the same handle, except cachee_l0_close, which must be the last
 * call on a handle.  A handle inherited through fork() works in the child (see
 * PROCESS SLOTS).  Functions are not async-signal-safe.
 */
#ifndef CACHEE_L0_H
#define CACHEE_L0_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================
 * Limits
 * ====================================================================== */

/** Longest key, in bytes.  Keys are arbitrary bytes, at least one. */
#define CACHEE_L0_KEY_MAX 65535u
/** Longest caller metadata stored beside a value, in bytes. */
#define CACHEE_L0_META_MAX 4096u
/** Smallest region accepted by cachee_l0_open, in bytes (1 MiB). */
#define CACHEE_L0_SIZE_MIN (1ull << 20)
/** Largest region accepted by cachee_l0_open, in bytes (16 TiB). */
#define CACHEE_L0_SIZE_MAX (1ull << 44)
/** Default number of process slots. */
#define CACHEE_L0_PROCS_DEFAULT 512u
/** Largest number of process slots. */
#define CACHEE_L0_PROCS_MAX 65536u
/** Smallest and largest segment size (powers of two). */
#define CACHEE_L0_SEG_MIN (4u << 10)
#define CACHEE_L0_SEG_MAX (64u << 20)
/** Pins one process may hold on one segment (the pin table is uint16). */
#define CACHEE_L0_PINS_PER_SEGMENT_MAX 65535u
/*
 * The largest value depends on the region: cachee_l0_info reports it as
 * value_max (a quarter of the arena, at least what fits in one segment, and
 * below 4 GiB: a record stores its value length in 32 bits).
 */

/* ======================================================================
 * Return codes
 *
 * Every function that returns int returns 0 on success, a positive errno
 * value when a system call failed (for example ENOENT, EACCES, ENOMEM), or
 * one of the negative codes below.  cachee_l0_strerror describes any of them.
 * ====================================================================== */

#define CACHEE_L0_OK 0
/** The key is absent (or expired). Not an error: a miss. */
#define CACHEE_L0_NOTFOUND (-31000)
/** CACHEE_L0_IF_ABSENT was given and the key is present. */
#define CACHEE_L0_EXISTS (-31001)
/** cachee_l0_promote: the key's generation moved since the caller read it
 *  (the value it holds is outdated), or the value has expired.  Not an
 *  error: nothing was stored.  (Numbered after CACHEE_L0_E_BUSY.) */
#define CACHEE_L0_STALE (-31028)
/** An argument is invalid: NULL pointer, empty key, unknown flag, bad TTL. */
#define CACHEE_L0_E_INVAL (-31002)
/** The key is longer than CACHEE_L0_KEY_MAX. */
#define CACHEE_L0_E_KEY_TOO_LARGE (-31003)
/** The value is longer than the region's value_max. */
#define CACHEE_L0_E_VALUE_TOO_LARGE (-31004)
/** The metadata is longer than CACHEE_L0_META_MAX. */
#define CACHEE_L0_E_META_TOO_LARGE (-31005)
/** No space can be made: everything evictable is pinned by live views or
 *  being written. Nothing was stored. */
#define CACHEE_L0_E_FULL (-31006)
/** This process holds CACHEE_L0_PINS_PER_SEGMENT_MAX pins on one segment. */
#define CACHEE_L0_E_TOO_MANY_PINS (-31007)
/** Every process slot belongs to a live process (see max_procs). */
#define CACHEE_L0_E_TOO_MANY_PROCS (-31008)
/** The file is not a cachee region (wrong magic, or too short). */
#define CACHEE_L0_E_NOT_REGION (-31009)
/** The region was made by an incompatible build (format word differs). */
#define CACHEE_L0_E_FORMAT (-31010)
/** The region's contents are inconsistent (detected corruption). */
#define CACHEE_L0_E_CORRUPT (-31011)
/** The size is zero, below CACHEE_L0_SIZE_MIN, above CACHEE_L0_SIZE_MAX,
 *  or leaves too little room for the arena with these parameters. */
#define CACHEE_L0_E_SIZE (-31012)
/** An existing region has a different size than the one asked for. */
#define CACHEE_L0_E_SIZE_MISMATCH (-31013)
/** The file belongs to another user (see CACHEE_L0_ALLOW_FOREIGN_OWNER). */
#define CACHEE_L0_E_OWNER (-31014)
/** The file grants more access than the mode asked for
 *  (see CACHEE_L0_ALLOW_LOOSE_MODE). */
#define CACHEE_L0_E_MODE (-31015)
/** The path is a symbolic link, not a regular file, or has hard links. */
#define CACHEE_L0_E_UNSAFE_PATH (-31016)
/** The path is not on tmpfs or hugetlbfs (see CACHEE_L0_ALLOW_ANY_FS). */
#define CACHEE_L0_E_NOT_SHM (-31017)
/** The filesystem cannot hold the region (posix_fallocate: ENOSPC).
 *  In Docker, /dev/shm is 64 MiB unless --shm-size says otherwise. */
#define CACHEE_L0_E_NO_SPACE (-31018)
/** The region's creator has not finished it within open_timeout_ms, or
 *  died before finishing it and CACHEE_L0_CREATE was not given. */
#define CACHEE_L0_E_NOT_READY (-31019)
/** The caller's buffer is smaller than the value; the length is reported. */
#define CACHEE_L0_E_BUFFER_TOO_SMALL (-31020)
/** An optimistic read was overtaken by a writer; read again. */
#define CACHEE_L0_E_RETRY (-31021)
/** Release of a pin that is not held (double release, or a foreign view). */
#define CACHEE_L0_E_BAD_PIN (-31022)
/** The region does not exist and CACHEE_L0_CREATE was not given. */
#define CACHEE_L0_E_NO_REGION (-31023)
/** The region exists and CACHEE_L0_EXCLUSIVE was given. */
#define CACHEE_L0_E_REGION_EXISTS (-31024)
/** The path is empty, too long, or names "." or "..". */
#define CACHEE_L0_E_BAD_PATH (-31025)
/** A lock could not be repaired (the robust mutex is unrecoverable). */
#define CACHEE_L0_E_LOCK (-31026)
/** cachee_l0_load_trylock: the loader lock of the key is held by another
 *  open file description (another process, or another thread of this one).
 *  Not a failure: wait for the value, or try again later. */
#define CACHEE_L0_E_BUSY (-31027)

/** Describe a return code (ours or an errno value). Never NULL. */
const char *cachee_l0_strerror(int code);

/* ======================================================================
 * Opening and closing
 * ====================================================================== */

/** Create the region if it does not exist. */
#define CACHEE_L0_CREATE 0x01u
/** With CACHEE_L0_CREATE: fail with CACHEE_L0_E_REGION_EXISTS if it exists. */
#define CACHEE_L0_EXCLUSIVE 0x02u
/** Accept a region owned by another user. */
#define CACHEE_L0_ALLOW_FOREIGN_OWNER 0x04u
/** Accept a region whose permissions are wider than `mode`. */
#define CACHEE_L0_ALLOW_LOOSE_MODE 0x08u
/** Accept a path on a filesystem other than tmpfs or hugetlbfs. */
#define CACHEE_L0_ALLOW_ANY_FS 0x10u
/** Ask for huge pages.  On tmpfs the region is mapped with MADV_HUGEPAGE and
 *  its memory reserved by populating that mapping, which gives 2 MiB pages
 *  at once when the mount allows them (mount option huge=advise,
 *  within_size or always).  Where it does not (a default /dev/shm has no
 *  huge= option), the creator then collapses the region into 2 MiB pages
 *  with MADV_COLLAPSE (Linux 6.1+; shmem_enabled=deny forbids it): after
 *  cachee_l0_open has returned in the creating process, so other processes
 *  can open the region meanwhile.  That costs about 3 seconds per GiB once
 *  (a copy of every page), and is best effort: where the kernel refuses,
 *  the region works with 4 KiB pages.  A region on hugetlbfs always uses
 *  huge pages, flag or not.  Recorded at creation; every process maps the
 *  region at 2 MiB-aligned addresses, so each gets 2 MiB page-table
 *  entries, and advises its own mappings too. */
#define CACHEE_L0_HUGEPAGES 0x20u

/** Options for cachee_l0_open. Initialise with cachee_l0_options_init. */
typedef struct cachee_l0_options {
    /** Total region size in bytes when creating. When opening an existing
     *  region: 0 accepts its size, anything else must equal it. */
    uint64_t size;
    /** CACHEE_L0_CREATE, CACHEE_L0_EXCLUSIVE, CACHEE_L0_ALLOW_* ,
     *  CACHEE_L0_HUGEPAGES. */
    uint32_t flags;
    /** Permission bits for a new region (0 means 0600). The file gets
     *  exactly these bits (the umask is not applied). An existing region may
     *  not grant more (unless CACHEE_L0_ALLOW_LOOSE_MODE). */
    uint32_t mode;
    /** Segment size, a power of two in [CACHEE_L0_SEG_MIN, CACHEE_L0_SEG_MAX];
     *  0 chooses size/1024 clamped to [16 KiB, 1 MiB]. Creation only. */
    uint32_t segment_size;
    /** Process slots, at most CACHEE_L0_PROCS_MAX; 0 means
     *  CACHEE_L0_PROCS_DEFAULT. Creation only. */
    uint32_t max_procs;
    /** Entries the index is sized for (at 75% load); 0 means size/512.
     *  Creation only. */
    uint64_t max_entries;
    /** How long to wait for another process to finish creating the region,
     *  in milliseconds; 0 means 5000. */
    uint32_t open_timeout_ms;
    uint32_t reserved_;
    /** 0, or the token of another open handle of this process on the same
     *  region (cachee_l0_registration): the new handle then uses that
     *  handle's process slot instead of claiming its own, so one process is
     *  one slot however many handles (or copies of this engine) it opens.
     *  The other handle must stay open until this one is closed.  In a
     *  child forked later the sharing ends: the child claims a slot of its
     *  own on first use, as with any handle.  A token that names no live
     *  slot of this process is CACHEE_L0_E_INVAL. */
    uint64_t share_slot;
} cachee_l0_options;

/** Fill *opts with the defaults (no flags: open an existing region). */
void cachee_l0_options_init(cachee_l0_options *opts);

/** An open region. Opaque; one per cachee_l0_open. */
typedef struct cachee_l0 cachee_l0;

/**
 * Open (and with CACHEE_L0_CREATE, create) the region at `path`.
 *
 * `path` is a file path, or a bare name (no '/') meaning /dev/shm/NAME.
 * The file is opened with O_NOFOLLOW and O_CLOEXEC, must be a regular file
 * with one link, owned by the caller's effective uid and no more permissive
 * than `mode` (unless allowed by flags), on tmpfs or hugetlbfs, and must pass
 * validation (magic, format word, ready mark, size, geometry) before anything
 * in it is used.  Creation reserves all of its memory with posix_fallocate,
 * so a filesystem that is too small is reported now, never as a SIGBUS later.
 *
 * Many processes may open (and create) one path at the same moment: exactly
 * one creates the region, the others wait for it and use it.  A file found
 * unlinked, or replaced while being looked at, is looked up again by name.
 *
 * On success stores a new handle in *out and returns 0.  Errors:
 *   CACHEE_L0_E_INVAL        NULL argument, unknown flag, or a share_slot
 *                            token that names no live slot of this process
 *   CACHEE_L0_E_BAD_PATH     empty, too long, "." or ".." name
 *   CACHEE_L0_E_NO_REGION    absent and CACHEE_L0_CREATE not given
 *   CACHEE_L0_E_REGION_EXISTS present and CACHEE_L0_EXCLUSIVE given
 *   CACHEE_L0_E_SIZE         bad size or parameters for a new region
 *   CACHEE_L0_E_SIZE_MISMATCH existing region of another size
 *   CACHEE_L0_E_UNSAFE_PATH  symlink, not a regular file, hard-linked
 *   CACHEE_L0_E_OWNER, CACHEE_L0_E_MODE, CACHEE_L0_E_NOT_SHM
 *   CACHEE_L0_E_NOT_REGION   not a cachee region
 *   CACHEE_L0_E_FORMAT       made by an incompatible build
 *   CACHEE_L0_E_CORRUPT      geometry inconsistent with itself or the file
 *   CACHEE_L0_E_NOT_READY    creator unfinished after open_timeout_ms
 *   CACHEE_L0_E_NO_SPACE     the filesystem cannot hold the region
 *   errno values             from open, fstat, mmap, posix_fallocate
 */
int cachee_l0_open(const char *path, const cachee_l0_options *opts,
                   cachee_l0 **out);

/**
 * Close the handle: release this process's slot (its pins and open segments
 * are returned to the region) and unmap.  A handle opened with share_slot
 * leaves the slot to the handle it shares it with.  Pointers from views
 * become invalid; release views first.  Must be the last call on the handle;
 * NULL is a no-op.  Returns 0, or an errno value from munmap/close (the
 * handle is freed anyway).
 */
int cachee_l0_close(cachee_l0 *h);

/**
 * This process's registration through h, as a token for
 * cachee_l0_options.share_slot (registers the process first if it has not
 * used h yet).  The token is never 0, and is valid in this process while h
 * is open.  Returns 0, CACHEE_L0_E_INVAL (NULL argument),
 * CACHEE_L0_E_TOO_MANY_PROCS, or an errno value.
 */
int cachee_l0_registration(cachee_l0 *h, uint64_t *token);

/**
 * Remove the region's name from its filesystem (processes that have it open
 * keep using it; its memory is freed when the last one closes).  `path` as
 * for cachee_l0_open.  Returns 0, CACHEE_L0_E_BAD_PATH, CACHEE_L0_E_NO_REGION
 * if nothing is there, CACHEE_L0_E_UNSAFE_PATH if it is a symlink or not a
 * regular file, CACHEE_L0_E_NOT_REGION if the file is not a cachee region
 * (nothing is removed then), or an errno value.
 */
int cachee_l0_unlink(const char *path);

/** Sizes and limits of an open region. */
typedef struct cachee_l0_info {
    uint64_t region_size;   /**< bytes of the whole file */
    uint64_t arena_size;    /**< bytes available for records */
    uint64_t value_max;     /**< longest value accepted by set */
    uint64_t max_entries;   /**< entries the index is sized for */
    uint32_t segment_size;  /**< bytes per segment */
    uint32_t segments;      /**< number of segments */
    uint32_t max_procs;     /**< process slots */
    uint32_t shards;        /**< index shards (writer locks) */
    uint32_t shard_slots;   /**< index slots per shard */
    uint32_t flags;         /**< creation flags recorded in the region */
    uint32_t hugetlbfs;     /**< 1 when the file is on hugetlbfs */
    uint32_t reserved_;
    char path[4096];        /**< resolved path */
} cachee_l0_info;

/** Fill *out. Returns 0 or CACHEE_L0_E_INVAL. */
int cachee_l0_info_get(const cachee_l0 *h, cachee_l0_info *out);

/* ======================================================================
 * Reading
 * ====================================================================== */

/** What a copying read reports besides the value bytes. */
typedef struct cachee_l0_item {
    uint64_t value_len;   /**< out: stored length (also with E_BUFFER_TOO_SMALL) */
    uint64_t version;     /**< out: the record's version (32 bits, see RECORDS) */
    int64_t expires_ns;   /**< out: CLOCK_REALTIME expiry in ns, 0 = never */
    void *meta_buf;       /**< in: where to copy the metadata, or NULL */
    uint32_t meta_cap;    /**< in: capacity of meta_buf */
    uint32_t meta_len;    /**< out: stored metadata length */
} cachee_l0_item;

/**
 * Copy the value of `key` into `buf` (capacity `cap`) and its metadata into
 * item->meta_buf.  `item` may be NULL when neither length nor metadata is
 * wanted (then a value longer than cap is an error without its length).
 *
 * Returns 0 on a hit, CACHEE_L0_NOTFOUND on a miss (absent or expired), or:
 *   CACHEE_L0_E_INVAL            NULL key, key_len 0, NULL buf with cap > 0
 *   CACHEE_L0_E_KEY_TOO_LARGE
 *   CACHEE_L0_E_BUFFER_TOO_SMALL value or metadata longer than the buffer;
 *                                item->value_len and meta_len are set
 *   CACHEE_L0_E_CORRUPT          the region failed a consistency check
 *   CACHEE_L0_E_TOO_MANY_PROCS   this process could not get a slot
 */
int cachee_l0_get(cachee_l0 *h, const void *key, size_t key_len, void *buf,
                  size_t cap, cachee_l0_item *item);

/** A value in shared memory: returned by the optimistic and pinned reads. */
typedef struct cachee_l0_view {
    const void *data;     /**< the value (read-only mapping) */
    uint64_t len;         /**< its length */
    const void *meta;     /**< the metadata (read-only mapping) */
    uint32_t meta_len;    /**< its length */
    uint32_t gen;         /**< identity of this stored version: the pair */
    uint64_t loc;         /**<  (loc, gen) differs for every stored version */
    uint64_t version;     /**< the record's version (32 bits, see RECORDS) */
    int64_t expires_ns;   /**< CLOCK_REALTIME expiry in ns, 0 = never */
    uint64_t key_hash;    /**< XXH3-64 of the key */
    uint64_t pin_;        /**< private: the pin, 0 when not pinned */
    uint64_t pin_owner_;  /**< private */
} cachee_l0_view;

/**
 * Optimistic read, step 1: find `key` and fill *v with pointers into shared
 * memory WITHOUT pinning.  The bytes may be overwritten by a writer at any
 * moment: copy what you need (the pointers and lengths are guaranteed to lie
 * inside the mapping, so copying is safe), then call cachee_l0_read_validate;
 * only if it returns 0 is the copy a consistent snapshot of the value.  This
 * is the fastest way to copy a value into a destination of your choice (for
 * example a new Python bytes object).
 *
 * Returns 0, CACHEE_L0_NOTFOUND, or the errors of cachee_l0_get except
 * E_BUFFER_TOO_SMALL.
 */
int cachee_l0_read_begin(cachee_l0 *h, const void *key, size_t key_len,
                         cachee_l0_view *v);

/**
 * Optimistic read, step 2: returns 0 if the bytes of *v were not reused
 * since cachee_l0_read_begin, CACHEE_L0_E_RETRY if they may have been (read
 * again from step 1), CACHEE_L0_E_INVAL for a NULL argument.
 */
int cachee_l0_read_validate(const cachee_l0 *h, const cachee_l0_view *v);

/**
 * Zero-copy read: find `key`, pin the stored version and fill *v.  v->data
 * stays valid, and its bytes unchanged, until cachee_l0_release(h, v), even
 * if the key is overwritten, deleted, expired or evicted meanwhile.  The
 * memory is read-only (PROT_READ): writing to it raises SIGSEGV.
 *
 * Returns 0, CACHEE_L0_NOTFOUND, CACHEE_L0_E_TOO_MANY_PINS, or the errors of
 * cachee_l0_get except E_BUFFER_TOO_SMALL.
 */
int cachee_l0_get_pinned(cachee_l0 *h, const void *key, size_t key_len,
                         cachee_l0_view *v);

/**
 * Pin the version that cachee_l0_read_begin found (turning an optimistic
 * view into a pinned one without a second lookup).  On success v->data stays
 * valid until cachee_l0_release(h, v).  Returns 0, CACHEE_L0_E_RETRY if the
 * version was reclaimed since read_begin (read again), CACHEE_L0_E_TOO_MANY_PINS,
 * or CACHEE_L0_E_INVAL (NULL, not from read_begin, or already pinned).
 */
int cachee_l0_pin_view(cachee_l0 *h, cachee_l0_view *v);

/**
 * Release the pin of a view from cachee_l0_get_pinned or cachee_l0_get_many
 * and clear v->pin_.  Releasing in a forked child a view pinned by its parent
 * is correct (see cachee_l0_fork_prepare) and never disturbs the parent.
 * Returns 0, CACHEE_L0_E_INVAL (NULL), or CACHEE_L0_E_BAD_PIN (not pinned, or
 * already released).
 */
int cachee_l0_release(cachee_l0 *h, cachee_l0_view *v);

/**
 * Batch optimistic read of n keys: cachee_l0_read_begin for each key, with
 * the memory accesses of the keys overlapped.  Keys go in groups of
 * CACHEE_L0_BATCH_GROUP: the group's keys are hashed and their index entries
 * requested, then the records those entries point at are requested, and
 * only then is each key looked up (with every check of a single read), so
 * the cache misses of a group overlap instead of following one another.
 *
 * For each i, results[i] receives 0 (views[i] filled, NOT pinned),
 * CACHEE_L0_NOTFOUND, or an error for that key (CACHEE_L0_E_INVAL for a NULL
 * or empty key, CACHEE_L0_E_KEY_TOO_LARGE, CACHEE_L0_E_CORRUPT).  As with
 * cachee_l0_read_begin, copy what you need from views[i], then call
 * cachee_l0_read_validate on it: CACHEE_L0_E_RETRY means the key was
 * rewritten meanwhile (read it again).  Copy soon after the call: the values
 * were requested into the CPU caches, and a batch larger than a few hundred
 * keys is best read in pieces of that size.
 *
 * Returns 0 if the arguments were valid (per-key outcomes are in results),
 * CACHEE_L0_E_INVAL (NULL handle, or NULL arrays with n > 0), or
 * CACHEE_L0_E_TOO_MANY_PROCS.
 */
int cachee_l0_read_many(cachee_l0 *h, size_t n, const void *const *keys,
                        const size_t *key_lens, cachee_l0_view *views,
                        int *results);

/** Keys whose memory accesses cachee_l0_read_many and cachee_l0_get_many
 *  overlap. */
#define CACHEE_L0_BATCH_GROUP 16

/**
 * Batch zero-copy read of n keys: for each i, results[i] receives 0 (views[i]
 * is pinned), CACHEE_L0_NOTFOUND, or an error as for cachee_l0_get_pinned.
 * The keys are looked up in groups as by cachee_l0_read_many, so a batch
 * costs less than n separate calls.  Returns 0 if the arguments were valid
 * (per-key outcomes are in results), else CACHEE_L0_E_INVAL.  Release every
 * pinned view.
 */
int cachee_l0_get_many(cachee_l0 *h, size_t n, const void *const *keys,
                       const size_t *key_lens, cachee_l0_view *views,
                       int *results);

/**
 * Is a stored version still its key's current one?  `key_hash` is
 * cachee_l0_hash of the key, (loc, gen) the identity of a version the caller
 * read earlier (cachee_l0_view).  Returns 1 if the index still points the key
 * at exactly that version, 0 if not (overwritten, deleted, evicted, or the
 * shard is being rebuilt: look the key up again), CACHEE_L0_E_INVAL, or
 * CACHEE_L0_E_TOO_MANY_PROCS.  Reads the key's index entry only, no record:
 * the caller must know which key that version belongs to (a version is never
 * reused for another key).  Expiry is not checked (the caller kept
 * expires_ns).  A 1 counts as a hit in the statistics.
 */
int cachee_l0_is_current(cachee_l0 *h, uint64_t key_hash, uint64_t loc,
                         uint32_t gen);

/**
 * Returns 1 if `key` is present (and not expired), 0 if not, or a negative
 * error as for cachee_l0_get.  Does not count as a hit or a miss and does not
 * change the key's frequency.
 */
int cachee_l0_contains(cachee_l0 *h, const void *key, size_t key_len);

/** Entries currently in the index, including expired ones not yet purged.
 *  Approximate while writers run.  Returns a count >= 0. */
int64_t cachee_l0_count(cachee_l0 *h);

/* ======================================================================
 * Writing
 * ====================================================================== */

/** cachee_l0_set: store only if the key is absent (or expired). */
#define CACHEE_L0_IF_ABSENT 0x01u

/**
 * Store `value` (value_len bytes, NULL allowed when 0) with `meta`
 * (meta_len bytes) under `key`.  ttl_ns > 0 makes the entry expire that many
 * nanoseconds from now; 0 means never.  With CACHEE_L0_IF_ABSENT the value is
 * stored only if the key is absent.  Readers see the previous value or this
 * one, never a mix; views of the previous value stay valid.
 *
 * Returns 0, or:
 *   CACHEE_L0_EXISTS             IF_ABSENT and the key is present
 *   CACHEE_L0_E_INVAL            NULL key/value/meta with nonzero length,
 *                                empty key, unknown flag, TTL overflow
 *   CACHEE_L0_E_KEY_TOO_LARGE, CACHEE_L0_E_VALUE_TOO_LARGE,
 *   CACHEE_L0_E_META_TOO_LARGE
 *   CACHEE_L0_E_FULL             no space could be made (pins)
 *   CACHEE_L0_E_TOO_MANY_PROCS   this process could not get a slot
 *   CACHEE_L0_E_CORRUPT, CACHEE_L0_E_LOCK
 * On any error nothing changes.
 */
int cachee_l0_set(cachee_l0 *h, const void *key, size_t key_len,
                  const void *value, size_t value_len, const void *meta,
                  size_t meta_len, uint64_t ttl_ns, uint32_t flags);

/**
 * Remove `key`.  Returns 0 if it was present, CACHEE_L0_NOTFOUND if not, or
 * CACHEE_L0_E_INVAL, CACHEE_L0_E_KEY_TOO_LARGE, CACHEE_L0_E_TOO_MANY_PROCS,
 * CACHEE_L0_E_CORRUPT, CACHEE_L0_E_LOCK.  Views of the value stay valid.
 */
int cachee_l0_delete(cachee_l0 *h, const void *key, size_t key_len);

/* ======================================================================
 * Key generations and promotion (see KEY GENERATIONS)
 * ====================================================================== */

/** The generation counter of a key (key_hash = cachee_l0_hash of the key).
 *  Never fails; 0 for a NULL handle.  Lock-free, writes nothing. */
uint32_t cachee_l0_generation(const cachee_l0 *h, uint64_t key_hash);

/** The key generation table, read-only (PROT_READ mapping): *count (if not
 *  NULL) gets its length, a power of two; the counter of a key is at
 *  CACHEE_L0_KEYGEN_INDEX(key_hash, *count).  Read it with atomic loads.
 *  Valid until cachee_l0_close.  NULL for a NULL handle. */
const uint32_t *cachee_l0_generation_table(const cachee_l0 *h,
                                           uint32_t *count);

/**
 * Store a copy of a value that was kept outside L0 back into L0 (promotion):
 * like cachee_l0_set with CACHEE_L0_IF_ABSENT, but only if the key's
 * generation is still `expect_gen` (read before the copy was fetched), and
 * without incrementing it: the value has not changed, only its place.
 * `expires_ns` is the absolute expiry (CLOCK_REALTIME ns) the copy carries,
 * 0 for none.
 *
 * Returns 0, CACHEE_L0_EXISTS (the key is present), CACHEE_L0_STALE (the
 * generation moved, or expires_ns has passed: the copy is outdated, drop
 * it), or the errors of cachee_l0_set (CACHEE_L0_E_INVAL also for a negative
 * expires_ns).  On anything but 0 nothing changes.
 */
int cachee_l0_promote(cachee_l0 *h, const void *key, size_t key_len,
                      const void *value, size_t value_len, const void *meta,
                      size_t meta_len, int64_t expires_ns,
                      uint32_t expect_gen);

/* ======================================================================
 * Eviction hook: hand evicted values to the process that evicts them
 *
 * L0 evicts inside whichever process needs space (a writer, or a reader
 * reinserting).  A handle may register a hook that this process's evictions
 * call for every LIVE, unexpired record they drop for lack of room (segment
 * eviction and the index's CLOCK eviction), before its bytes can be reused:
 * a tier engine copies the value into a slower tier (demotion).  Records
 * that are deleted, overwritten, expired or copied forward are not reported,
 * and evictions performed by other processes, or by other handles of this
 * process, call other hooks (or none): a demotion covers only what this
 * handle evicts.
 *
 * The hook runs on the evicting thread with the key's shard lock held: it
 * must be quick, must not call any cachee_l0 function on any handle of the
 * region, and must copy what it keeps (the pointers are valid only during
 * the call).  e->generation is the key's generation at eviction (the value
 * is its current one), for a copy kept as described in KEY GENERATIONS.
 * ====================================================================== */

/** One evicted record, valid during the hook call. */
typedef struct cachee_l0_evicted {
    uint64_t key_hash;    /**< cachee_l0_hash of the key */
    const void *key;      /**< key bytes */
    size_t key_len;
    const void *value;    /**< value bytes */
    size_t value_len;
    const void *meta;     /**< metadata bytes */
    size_t meta_len;
    int64_t expires_ns;   /**< absolute expiry, 0 = never */
    uint32_t generation;  /**< the key's generation counter */
    uint32_t reserved_;
} cachee_l0_evicted;

/** The eviction hook's type; arg is what was registered with it. */
typedef void (*cachee_l0_evict_fn)(void *arg, const cachee_l0_evicted *e);

/** Register fn (NULL: none) as the eviction hook of this handle.  Not
 *  synchronised with calls in flight: set it before other threads use the
 *  handle, or while none does.  Returns 0 or CACHEE_L0_E_INVAL (NULL h). */
int cachee_l0_set_evict_hook(cachee_l0 *h, cachee_l0_evict_fn fn, void *arg);

/* ======================================================================
 * EVICTION QUEUE: a ready-made hook
 *
 * What a tier engine does with the hook (demotion): copy every record its
 * process's writes evict into a bounded queue, and move the copies into a
 * slower tier after the write returns, outside the shard lock.  A queue is
 * process-private memory; cachee_l0_evq_hook is its hook:
 *
 *     q = cachee_l0_evq_new(64 << 20);
 *     cachee_l0_set_evict_hook(h, cachee_l0_evq_hook, q);
 *     ... writes ...
 *     if (cachee_l0_evq_pending(q)) {
 *         cachee_l0_evrec *list = cachee_l0_evq_take(q, &n);
 *         ... use the records ...
 *         cachee_l0_evq_release(q, list);
 *     }
 *
 * Past cap_bytes of records waiting (each counts its key, metadata, value
 * and ~48 bytes), or when memory cannot be had, a record is dropped and
 * counted.  The hook takes the queue's mutex for a few instructions; a
 * process forked while another thread held it must not call the hook in the
 * child (deactivate the queue there, or do not call it, as the Python
 * extension does).  Every function is safe to call from any thread, except
 * cachee_l0_evq_free, which must come after the hook is unset.
 * ====================================================================== */

/** One record in an eviction queue: data holds the key, then the metadata,
 *  then the value. */
typedef struct cachee_l0_evrec {
    struct cachee_l0_evrec *next; /**< the next (newer) record, or NULL */
    uint64_t key_hash;            /**< cachee_l0_hash of the key */
    int64_t expires_ns;           /**< absolute expiry, 0 = never */
    uint32_t generation;          /**< the key's generation at eviction */
    uint32_t key_len;
    uint32_t meta_len;
    uint32_t reserved_;
    uint64_t value_len;
    unsigned char data[];
} cachee_l0_evrec;

/** A bounded queue of evicted records. Opaque. */
typedef struct cachee_l0_evq cachee_l0_evq;

/** Counters of an eviction queue. */
typedef struct cachee_l0_evq_stats {
    uint64_t queued;  /**< records copied in so far */
    uint64_t dropped; /**< records not kept: the queue was full, or no memory */
    uint64_t bytes;   /**< bytes of the records waiting */
    uint64_t cap;     /**< the bound given to cachee_l0_evq_new */
} cachee_l0_evq_stats;

/** A new, empty, active queue bounded by cap_bytes; NULL if cap_bytes is 0
 *  or memory is short. */
cachee_l0_evq *cachee_l0_evq_new(uint64_t cap_bytes);
/** The hook (a cachee_l0_evict_fn whose arg is the queue): copies e into
 *  the queue, or counts a drop.  Does nothing while the queue is inactive. */
void cachee_l0_evq_hook(void *q, const cachee_l0_evicted *e);
/** Start (1) or stop (0) queueing; lock-free. */
void cachee_l0_evq_set_active(cachee_l0_evq *q, int active);
/** 1 if records are waiting; lock-free, cheap enough for every write. */
int cachee_l0_evq_pending(const cachee_l0_evq *q);
/** Detach every waiting record, oldest first (follow next); *count (if not
 *  NULL) gets their number.  NULL when none wait. */
cachee_l0_evrec *cachee_l0_evq_take(cachee_l0_evq *q, size_t *count);
/** Free a list from cachee_l0_evq_take and give its bytes back to q. */
void cachee_l0_evq_release(cachee_l0_evq *q, cachee_l0_evrec *list);
/** Fill *out. */
void cachee_l0_evq_stats_get(cachee_l0_evq *q, cachee_l0_evq_stats *out);
/** Free the queue and any record still waiting (unset the hook first). */
void cachee_l0_evq_free(cachee_l0_evq *q);

/* ======================================================================
 * Statistics and checking
 * ====================================================================== */

/** Counters summed over all processes (live ones and reaped ones). */
typedef struct cachee_l0_stats {
    uint64_t hits;          /**< reads that found the key */
    uint64_t misses;        /**< reads that did not */
    uint64_t sets;          /**< successful writes */
    uint64_t deletes;       /**< successful deletes */
    uint64_t evictions;     /**< live entries evicted to make room */
    uint64_t expirations;   /**< expired entries purged */
    uint64_t reinsertions;  /**< hot records copied forward by eviction */
    uint64_t set_failures;  /**< writes refused with CACHEE_L0_E_FULL */
    uint64_t entries;       /**< entries in the index (cachee_l0_count) */
    uint64_t capacity_bytes;/**< arena bytes */
    uint64_t used_bytes;    /**< bytes of segments holding records */
    uint64_t free_bytes;    /**< bytes of free segments */
    uint64_t pinned_bytes;  /**< value bytes pinned by live views */
    uint64_t pins;          /**< live pins */
    uint64_t limbo_bytes;   /**< evicted segments kept only for pins */
    uint64_t live_procs;    /**< processes attached now */
    uint64_t reaped_procs;  /**< dead processes reclaimed so far */
    uint64_t segments_free, segments_open, segments_small, segments_main,
        segments_limbo, segments_reclaiming;
} cachee_l0_stats;

/**
 * Fill *out (reaps dead processes first, so live_procs is exact).
 * Per-process counters are updated without atomic read-modify-write, so
 * threads of one process racing on the same counter may lose increments;
 * single-threaded counts are exact.  Returns 0, CACHEE_L0_E_INVAL,
 * CACHEE_L0_E_LOCK.
 */
int cachee_l0_stats_get(cachee_l0 *h, cachee_l0_stats *out);

/**
 * Validate every invariant of the region: geometry, slot table, segment
 * table and queues, every index entry (bounds, record magic/hash/generation/
 * key, reachable from its home slot, no duplicate keys), counters.  Takes the
 * global lock and each shard lock in turn, so it is consistent while other
 * processes work (they wait briefly).  On a violation writes a description to
 * msg (NUL-terminated, at most msg_cap bytes; msg may be NULL) and returns
 * CACHEE_L0_E_CORRUPT; otherwise returns 0.  CACHEE_L0_E_LOCK if a lock
 * could not be taken.
 */
int cachee_l0_check(cachee_l0 *h, char *msg, size_t msg_cap);

/**
 * Reclaim the slots of dead processes now (their pins, open segments and
 * segments being reclaimed).  Returns the number of slots reclaimed (>= 0),
 * or CACHEE_L0_E_LOCK.
 */
int cachee_l0_reap(cachee_l0 *h);

/** XXH3-64 (seed 0) of `len` bytes: the hash of keys. */
uint64_t cachee_l0_hash(const void *data, size_t len);

/* ======================================================================
 * fork() hand-off (optional; for runtimes with fork hooks)
 *
 * Without these calls a forked child works (it claims its own slot on first
 * use) but views it inherited are protected only by its parent's pins.  With
 * them, call prepare immediately before fork() (with no other thread of the
 * process using the handle), parent in the parent after fork() (whether or
 * not it succeeded), and child in the child: the child then owns a copy of
 * every pin the parent held, and releasing an inherited view in the child
 * releases the child's copy.  Each returns 0 or an error (then the child
 * simply registers on first use, as without the calls).
 * ====================================================================== */

/** Before fork(): claim the child's slot and copy this process's pins into
 *  it.  Errors: CACHEE_L0_E_TOO_MANY_PROCS, CACHEE_L0_E_LOCK, errno. */
int cachee_l0_fork_prepare(cachee_l0 *h);
/** After fork() in the parent: hand the prepared slot to the child. */
int cachee_l0_fork_parent(cachee_l0 *h);
/** After fork() in the child: adopt the prepared slot. */
int cachee_l0_fork_child(cachee_l0 *h);

/* ======================================================================
 * Loader locks: one process computes a missing value, the others wait
 *
 * When many processes miss the same key at the same moment (a cold start,
 * an expiry), a loader lock lets one of them compute the value while the
 * others wait for it to appear in L0 instead of computing it too.
 *
 * A loader lock is an OFD write lock (fcntl F_OFD_SETLK) on one byte of the
 * region file, at CACHEE_L0_LOCK_LOAD_BASE + (key_hash & CACHEE_L0_LOCK_LOAD_MASK),
 * far above the init and liveness bytes (CACHEE_L0_LOCK_INIT,
 * CACHEE_L0_LOCK_SLOTS), so the ranges never overlap.  Nothing is written in
 * the region: the lock exists only in the kernel.  Each successful
 * cachee_l0_load_trylock opens a NEW open file description of the region file
 * and locks the byte through it, so:
 *
 *   - threads of one process exclude each other as processes do (OFD locks
 *     conflict between descriptions, not between processes);
 *   - when the holder dies, whatever kills it, the kernel closes its
 *     descriptor and drops the lock: the next trylock succeeds (takeover);
 *   - nothing in the region needs repair after a crash.
 *
 * Keys whose hashes agree in their low 40 bits share a lock (their loads are
 * serialised, never wrong).  The lock says nothing about the value: a waiter
 * polls L0 for the key (cachee_l0_contains / a read) and retries the lock,
 * with a backoff of its choosing; the holder stores the value with
 * cachee_l0_set and then unlocks.  Typical use:
 *
 *     for (;;) {
 *         if (value in L0) return it;
 *         rc = cachee_l0_load_trylock(h, hash, &tok);
 *         if (rc == 0) {
 *             if (value in L0) { cachee_l0_load_unlock(h, tok); return it; }
 *             compute; cachee_l0_set(...); cachee_l0_load_unlock(h, tok);
 *             return it;
 *         }
 *         if (rc != CACHEE_L0_E_BUSY) error;
 *         sleep (1 ms growing to 10 ms); give up after a deadline;
 *     }
 *
 * FORK.  The token is a file descriptor (O_CLOEXEC).  A child forked while a
 * lock is held inherits the descriptor and so shares the lock: it stays held
 * until the holder unlocks or until every process holding the descriptor has
 * closed it or exited.  A child must not call cachee_l0_load_unlock on an
 * inherited token (that would release the parent's lock); close(token) drops
 * the child's reference only.
 * ====================================================================== */

/**
 * Take the loader lock of the key whose hash is key_hash (cachee_l0_hash of
 * the key) without waiting.  On success stores in *token a descriptor that
 * holds the lock (>= 0) and returns 0; release it with cachee_l0_load_unlock.
 * Each call opens one descriptor: a process holds as many as it holds locks.
 *
 * Returns 0, or:
 *   CACHEE_L0_E_BUSY       the lock is held elsewhere (nothing is held by
 *                          this call; *token is set to -1)
 *   CACHEE_L0_E_INVAL      h or token is NULL
 *   CACHEE_L0_E_NO_REGION  the region file could not be reopened (no /proc
 *                          and its path names another file now)
 *   errno values           from open (EMFILE, ENFILE, ...) and fcntl
 * On any error *token is -1 (when token is not NULL) and nothing is held.
 */
int cachee_l0_load_trylock(cachee_l0 *h, uint64_t key_hash, int *token);

/**
 * Release a loader lock taken with cachee_l0_load_trylock on the same region
 * and close its descriptor (the token is invalid afterwards, like a closed
 * descriptor: never release a token twice).
 *
 * Returns 0, or:
 *   CACHEE_L0_E_INVAL   h is NULL, token < 0, or token is not a descriptor of
 *                       this region's file (nothing is closed then)
 *   errno values        EBADF (token is not an open descriptor), or from
 *                       fcntl/close (the descriptor is closed anyway)
 */
int cachee_l0_load_unlock(cachee_l0 *h, int token);

/**
 * Is the loader lock of key_hash held, by any process (this one included)?
 * Stores 1 (held) or 0 in *held and returns 0, or returns CACHEE_L0_E_INVAL
 * (h or held NULL) or an errno value from fcntl.  A snapshot: the answer may
 * be stale by the time it returns.
 */
int cachee_l0_load_held(cachee_l0 *h, uint64_t key_hash, int *held);

/* ======================================================================
 * THE SHARED LAYOUT
 *
 * Everything below describes bytes in the region.  Integers are native
 * endian (recorded in the format word); every struct has a fixed size checked
 * at compile time.  "Owner" means the process whose slot it is.
 * ====================================================================== */

/** First 8 bytes of every region. */
#define CACHEE_L0_MAGIC "cacheeL0"
/** Layout version; part of the format word.  2: the key generation table.
 *  3: 32-byte record headers on 16-byte boundaries. */
#define CACHEE_L0_LAYOUT_VERSION 3u

/** Largest number of key generation counters (see KEY GENERATIONS):
 *  4 Mi counters, 16 MiB. */
#define CACHEE_L0_KEYGEN_MAX (1u << 22)
/** The counter of a key hash in a table of n (a power of two) counters. */
#define CACHEE_L0_KEYGEN_INDEX(hash, n) \
    ((uint32_t)(((uint64_t)(hash) >> 24) & ((uint64_t)(n) - 1)))
/** Value of the ready mark once a region is fully initialised. */
#define CACHEE_L0_READY_MARK 0x52454459u /* "REDY" */

/** OFD lock byte held by the creator while it initialises. */
#define CACHEE_L0_LOCK_INIT 0
/** First OFD lock byte of the slot liveness locks (2 bytes per slot). */
#define CACHEE_L0_LOCK_SLOTS 64
/** First OFD lock byte of the loader locks (see Loader locks): byte
 *  CACHEE_L0_LOCK_LOAD_BASE + (key_hash & CACHEE_L0_LOCK_LOAD_MASK).  2^62:
 *  far above the liveness bytes of CACHEE_L0_PROCS_MAX slots. */
#define CACHEE_L0_LOCK_LOAD_BASE (1ull << 62)
/** Bits of the key hash that choose a loader lock byte (40). */
#define CACHEE_L0_LOCK_LOAD_MASK ((1ull << 40) - 1)

/** Record alignment and index `loc` unit. */
#define CACHEE_L0_RECORD_ALIGN 16u
/** Magic of a record header. */
#define CACHEE_L0_RECORD_MAGIC 0x5230u /* "0R" */
/** Record flags. */
#define CACHEE_L0_RECORD_EXTENT 1u /* head of a large extent */
#define CACHEE_L0_RECORD_DEAD 2u   /* no entry points here any more */

/** Segment states (struct cachee_l0_shm_seg.state). */
enum cachee_l0_seg_state {
    CACHEE_L0_SEG_FREE = 0,
    CACHEE_L0_SEG_OPEN = 1,
    CACHEE_L0_SEG_SEALED = 2,
    CACHEE_L0_SEG_RECLAIMING = 3,
    CACHEE_L0_SEG_LIMBO = 4,
    CACHEE_L0_SEG_BODY = 5
};

/** Segment classes: which FIFO a sealed segment belongs to. */
enum cachee_l0_seg_class { CACHEE_L0_SMALL = 0, CACHEE_L0_MAIN = 1 };

/** Process slot states. */
enum cachee_l0_slot_state {
    CACHEE_L0_SLOT_FREE = 0,
    CACHEE_L0_SLOT_ACTIVE = 1,
    /** claimed by a parent for the child it is about to fork */
    CACHEE_L0_SLOT_PREPARED = 2
};

/** Index entry kinds (bits 46-47 of w1). */
enum cachee_l0_entry_kind {
    CACHEE_L0_ENTRY_EMPTY = 0,
    CACHEE_L0_ENTRY_LIVE = 1,
    CACHEE_L0_ENTRY_TOMB = 2
};

/** Per-process statistics counters (struct cachee_l0_shm_slot.stat). */
enum cachee_l0_stat_id {
    CACHEE_L0_STAT_HITS = 0,
    CACHEE_L0_STAT_MISSES,
    CACHEE_L0_STAT_SETS,
    CACHEE_L0_STAT_DELETES,
    CACHEE_L0_STAT_EVICTIONS,
    CACHEE_L0_STAT_EXPIRATIONS,
    CACHEE_L0_STAT_REINSERTIONS,
    CACHEE_L0_STAT_SET_FAILURES,
    CACHEE_L0_NSTATS
};

/**
 * The header, at offset 0, 4096 bytes.
 *
 * Line 0 and the geometry are written once by the creator before the region
 * gets its name and never again.  The global state (from global_lock on) is
 * written only under global_lock.
 */
struct cachee_l0_shm_header {
    /* -- identity (cache line 0) -- */
    char magic[8];            /**< CACHEE_L0_MAGIC */
    uint64_t format;          /**< format word, see cachee_l0_format_word() */
    uint64_t region_size;     /**< size of the file */
    uint32_t ready;           /**< CACHEE_L0_READY_MARK, written last */
    uint32_t flags;           /**< creation flags kept (CACHEE_L0_HUGEPAGES) */
    int64_t created_ns;       /**< CLOCK_REALTIME at creation */
    uint32_t creator_pid;     /**< diagnostics */
    uint32_t pad0_;
    uint64_t pad1_[2];
    /* -- geometry (cache lines 1-2), immutable -- */
    uint64_t seg_size;        /**< bytes per segment, power of two */
    uint64_t nsegs;           /**< segments in the arena */
    uint64_t max_entries;     /**< entries the index is sized for */
    uint64_t nshards;         /**< power of two, <= 256 */
    uint64_t shard_slots;     /**< index entries per shard */
    uint64_t max_procs;       /**< process slots */
    uint64_t ring_cap;        /**< entries per FIFO ring */
    uint64_t ghost_n;         /**< ghost filter entries */
    uint64_t slots_off, pins_off, segs_off, gens_off;
    uint64_t rings_off, free_off, ghost_off, shards_off;
    uint64_t index_off, arena_off;
    uint64_t keygen_n;        /**< key generation counters (power of two) */
    uint64_t keygen_off;      /**< their offset */
    /* -- global state, under global_lock (cache lines 4+) -- */
    pthread_mutex_t global_lock __attribute__((aligned(64)));
    uint64_t seal_seq __attribute__((aligned(64))); /**< next seal number */
    uint64_t ring_head[2];    /**< SMALL, MAIN: next entry to pop */
    uint64_t ring_tail[2];    /**< SMALL, MAIN: next entry to push */
    uint64_t nfree;           /**< entries on the free stack */
    uint64_t nsealed[2];      /**< sealed segments per class (extents: k) */
    uint64_t nopen, nlimbo, nreclaiming;
    int64_t last_reap_ns;     /**< rate limit for reaping during refills */
    uint64_t slots_hwm;       /**< 1 + highest slot ever claimed (atomic) */
    uint64_t reaped;          /**< slots reclaimed so far */
    uint64_t large_cursor;    /**< where the next extent search starts */
    int64_t live_total;       /**< sum of live_bytes, refreshed every few
                                   victims (a hint for the pressure mark) */
    uint64_t live_total_age;  /**< victims since live_total was summed */
    uint64_t retired[CACHEE_L0_NSTATS]; /**< counters of reaped processes */
};

/**
 * A process slot, 128 bytes.  Line 0 is written by its owner (atomically,
 * because the owner's threads share it), by a stealer (compare-and-swap on
 * open[]) and by a reaper after the owner died.  Line 1 is written when the
 * slot is claimed or reaped.
 */
struct cachee_l0_shm_slot {
    /** Open segments for SMALL and MAIN: ((segment + 1) << 32) | fill, or 0. */
    uint64_t open[2];
    uint64_t npins;           /**< pins held (sum of this slot's pin row) */
    uint64_t pinned_bytes;    /**< value bytes under reader pins */
    uint64_t stat_hot[4];     /**< HITS, MISSES, SETS, DELETES */
    /* line 1 */
    uint32_t state;           /**< enum cachee_l0_slot_state */
    uint32_t gen;             /**< incremented every time the slot is claimed */
    uint32_t pid;             /**< diagnostics */
    uint32_t prepared_by;     /**< PREPARED: slot index + 1 of the parent */
    uint64_t start_time;      /**< /proc/self/stat starttime, diagnostics */
    uint64_t stat_cold[CACHEE_L0_NSTATS - 4]; /**< the other counters */
    uint64_t pad_;
};

/**
 * A segment's state, 64 bytes (one cache line).  Everything but live_bytes is
 * written under the global lock; live_bytes is updated atomically by writers
 * under the shard lock of the key whose record they publish or remove.
 */
struct cachee_l0_shm_seg {
    uint32_t state;           /**< enum cachee_l0_seg_state */
    uint32_t cls;             /**< enum cachee_l0_seg_class */
    uint32_t owner;           /**< slot+1 for OPEN/RECLAIMING (last opener
                                   when SEALED); head segment for BODY */
    uint32_t owner_gen;       /**< that slot's generation */
    uint64_t seal_seq;        /**< order in its FIFO */
    uint32_t fill;            /**< bytes of records (set when sealed) */
    uint32_t extent;          /**< segments in this extent (1 if normal) */
    int64_t live_bytes;       /**< bytes of records that index entries point
                                   to; reset when the segment is opened */
    uint64_t pad_[3];
};

/** An index entry; see THE INDEX AND THE PUBLISH PROTOCOL. */
struct cachee_l0_shm_entry {
    uint64_t w0;              /**< ver:16 | tag:16 | gen:32 */
    uint64_t w1;              /**< ver:16 | kind:2 | loc:46 */
};

/**
 * A shard, 256 bytes.  Line A (layout_seq) is read by readers and written
 * only by rebuilds; line B belongs to writers, under `lock`.
 */
struct cachee_l0_shm_shard {
    uint32_t layout_seq;      /**< odd while rebuilding */
    uint32_t pad_a_[31];
    pthread_mutex_t lock __attribute__((aligned(128)));
    uint32_t live;            /**< entries of kind LIVE (stale ones too) */
    uint32_t tombs;           /**< entries of kind TOMB */
    uint32_t hand;            /**< CLOCK step (slot hand*stride mod n) */
    uint32_t intent_active;   /**< 1 while w0/w1 of intent_slot are written */
    uint32_t intent_slot;
    uint32_t rebuilds;        /**< rebuilds so far (wraps; diagnostics) */
    uint64_t intent_w0, intent_w1;
    uint64_t version;         /**< last record version issued */
};

/**
 * A record header, 48 bytes, at a 64-byte aligned arena offset.  Followed by
 * key_len key bytes, meta_len metadata bytes, padding, value_len value bytes.
 * The value starts at the record offset
 *     value_off = align(48 + key_len + meta_len, value_len >= 256 ? 64 : 16)
 * (16 covers every numpy item size; 64 puts larger values on cache lines)
 * and the record takes align(value_off + value_len, 64) bytes, so a short
 * key with a 64-byte value fits in two cache lines.  Neither is stored: both
 * follow from the lengths.  Only `freq` and `dead` change after publication.
 */
struct cachee_l0_shm_record {
    uint32_t gen;             /**< segment generation when written */
    uint16_t magic;           /**< CACHEE_L0_RECORD_MAGIC */
    uint8_t freq;             /**< 0..3, saturating; see EVICTION */
    uint8_t flags;            /**< CACHEE_L0_RECORD_EXTENT; CACHEE_L0_RECORD_DEAD
                                   (a hint for evictors, set under the shard
                                   lock after the entry changed) */
    uint32_t hash_lo;         /**< low 32 bits of the key's XXH3-64 */
    uint32_t value_len;
    int64_t expires_ns;       /**< 0 = never */
    uint32_t version;         /**< per-shard sequence (wraps) */
    uint16_t key_len;
    uint16_t meta_len;
};

#ifdef __cplusplus
}
#endif
#endif /* CACHEE_L0_H */
