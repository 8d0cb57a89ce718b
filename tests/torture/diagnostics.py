"""diagnostics.py -- what the harness reports when something goes wrong.

The only code of the harness that reads the region layout of
include/cachee_l0.h instead of the public API: the process slots (pid, pins,
pinned bytes, pinned segments) for pin mismatches and --diag-pins, and where
a stalled worker waits (kernel wait channel, the futex word of the region it
waits on and its owner, a gdb backtrace when gdb is installed).
"""
import json
import mmap
import os
import shutil
import struct
import subprocess
import sys
import time

# the region layout (include/cachee_l0.h), as far as these diagnostics read it
HDR_NSEGS = 72        # header: u64 nsegs
HDR_MAX_PROCS = 104   # header: u64 max_procs
HDR_SLOTS_OFF = 128   # header: u64 slots_off
HDR_PINS_OFF = 136    # header: u64 pins_off (a u16 per process slot and segment)
SLOT_SIZE = 128       # one process slot
SLOT_PINS = 16        # in a slot: u64 npins, u64 pinned_bytes
SLOT_OWNER = 64       # in a slot: u32 state, u32 gen, u32 pid
SLOT_FREE = 0         # slot states: CACHEE_L0_SLOT_FREE,
SLOT_ACTIVE = 1       # CACHEE_L0_SLOT_ACTIVE (owned by a live process)


def map_region(path):
    """The region at path, mapped read-only."""
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)


def process_slots(mm):
    """(index, offset, state, gen, pid) of every process slot of a region."""
    max_procs, = struct.unpack_from("<Q", mm, HDR_MAX_PROCS)
    slots_off, = struct.unpack_from("<Q", mm, HDR_SLOTS_OFF)
    for i in range(max_procs):
        o = slots_off + i * SLOT_SIZE
        state, gen, pid = struct.unpack_from("<III", mm, o + SLOT_OWNER)
        yield i, o, state, gen, pid


def slot_pins(mm, offset):
    """(pins, pinned bytes) of the process slot at offset."""
    return struct.unpack_from("<QQ", mm, offset + SLOT_PINS)


def dump_slots(path):
    """Diagnostics only (used when pin accounting does not match): the
    process slots of a region as the layout in include/cachee_l0.h places
    them -- pid, state, pins and pinned bytes of each slot in use, and the
    segments its pins are on."""
    out = []
    try:
        mm = map_region(path)
        try:
            nsegs, = struct.unpack_from("<Q", mm, HDR_NSEGS)
            pins_off, = struct.unpack_from("<Q", mm, HDR_PINS_OFF)
            for i, o, state, gen, pid in process_slots(mm):
                if state == SLOT_FREE:
                    continue
                npins, pinned = slot_pins(mm, o)
                row = memoryview(mm)[pins_off + i * nsegs * 2:pins_off + (i + 1) * nsegs * 2].cast("H")
                segs = {j: row[j] for j in range(nsegs) if row[j]}
                row.release()
                out.append({"slot": i, "state": state, "gen": gen, "pid": pid, "npins": npins,
                            "pinned_bytes": pinned, "pin_cells": sum(segs.values()),
                            "segments": dict(list(segs.items())[:40])})
        finally:
            mm.close()
    except Exception as e:  # diagnostics must never fail the run
        out.append({"error": repr(e)})
    return out


def stall_dump(pid, slot, role, region_path=None, owner_info=None):
    """Where a stalled worker is: its state, kernel wait channel and, when gdb
    is installed, its C stack (the process is paused for a moment)."""
    d = {"slot": slot, "role": role, "pid": pid, "t": time.strftime("%H:%M:%S")}
    for name in ("wchan", "stat", "syscall"):
        try:
            with open("/proc/%d/%s" % (pid, name)) as f:
                d[name] = f.read().strip()[:300]
        except OSError:
            pass
    # blocked on a futex in the region (a lock)?  which word, its value now,
    # and who owns it
    try:
        sc = d.get("syscall", "").split()
        if sc and sc[0] == "202":
            uaddr = int(sc[1], 16)
            d["futex_expected"] = "%s (owner tid %d when the wait began)" % (
                sc[3], int(sc[3], 16) & 0x3FFFFFFF)
            if owner_info:
                d["owner_when_wait_began"] = owner_info(int(sc[3], 16) & 0x3FFFFFFF)
            with open("/proc/%d/maps" % pid) as f:
                for line in f:
                    parts = line.split(None, 5)
                    a, b = (int(x, 16) for x in parts[0].split("-"))
                    if a <= uaddr < b:
                        d["futex_mapping"] = line.strip()
                        # the region (matched by inode: a mapping inherited through
                        # fork shows the name the file had when it was created)
                        if region_path and int(parts[4]) == os.stat(region_path).st_ino:
                            off = uaddr - a + int(parts[2], 16)
                            d["futex_file_offset"] = off
                            with open(region_path, "rb") as rf:
                                rf.seek(off)
                                word, = struct.unpack("<I", rf.read(4))
                            owner = word & 0x3FFFFFFF
                            d["futex_now"] = "%#x (owner tid %d%s%s)" % (
                                word, owner, ", OWNER_DIED" if word & 0x40000000 else "",
                                ", WAITERS" if word & 0x80000000 else "")
                            d["owner_alive"] = os.path.exists("/proc/%d" % owner) if owner else None
                            if owner and owner_info:
                                d["owner"] = owner_info(owner)
                        break
    except (OSError, ValueError, IndexError) as e:
        d["futex_error"] = repr(e)
    gdb = shutil.which("gdb")
    if gdb:
        try:
            r = subprocess.run([gdb, "-p", str(pid), "-batch", "-nx", "-ex", "bt 12"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=30)
            d["gdb_bt"] = [l for l in r.stdout.splitlines() if l.startswith("#")][:12]
        except (OSError, subprocess.SubprocessError) as e:
            d["gdb_bt"] = repr(e)
    sys.stderr.write("torture: stalled worker: %s\n" % json.dumps(d, indent=1))
    return d
