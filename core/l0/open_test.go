package l0_test

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cachee-dev/cachee/core/l0"
	"golang.org/x/sys/unix"
)

// The shared layout as the C compiler lays it out.
var lay = l0.ShmLayout()

// hdr returns the offset of a header field (struct cachee_l0_shm_header).
func hdr(field string) int64 {
	off, ok := lay["hdr."+field]
	if !ok {
		panic("no header field " + field)
	}
	return off
}

func readU64(t testing.TB, path string, off int64) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [8]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint64(b[:])
}

func writeAt(t testing.TB, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func writeU64(t testing.TB, path string, off int64, v uint64) {
	t.Helper()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	writeAt(t, path, off, b[:])
}

func writeU32(t testing.TB, path string, off int64, v uint32) {
	t.Helper()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	writeAt(t, path, off, b[:])
}

// makeRegion creates a closed region at a fresh path and returns the path.
func makeRegion(t testing.TB, tag string, o l0.Options) string {
	t.Helper()
	p := regionPath(t, tag)
	o.Create = true
	if o.Size == 0 {
		o.Size = 2 << 20
	}
	r, err := l0.Open(p, o)
	if err != nil {
		t.Fatalf("create %s: %v", p, err)
	}
	if err := r.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenErrors(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the path to open
		opts  l0.Options
		want  error
	}{
		{"empty path", func(t *testing.T) string { return "" }, l0.Options{}, l0.ErrBadPath},
		{"dot", func(t *testing.T) string { return "/dev/shm/." }, l0.Options{Create: true, Size: mib}, l0.ErrBadPath},
		{"dotdot", func(t *testing.T) string { return ".." }, l0.Options{Create: true, Size: mib}, l0.ErrBadPath},
		{"trailing slash", func(t *testing.T) string { return "/dev/shm/x/" }, l0.Options{}, l0.ErrBadPath},
		{"too long", func(t *testing.T) string { return "/dev/shm/" + strings.Repeat("a", 5000) }, l0.Options{}, l0.ErrBadPath},
		{"NUL in path", func(t *testing.T) string { return "/dev/shm/a\x00b" }, l0.Options{}, l0.ErrBadPath},
		{"absent without create", func(t *testing.T) string { return regionPath(t, "absent") }, l0.Options{}, l0.ErrNoRegion},
		{"exclusive on existing", func(t *testing.T) string { return makeRegion(t, "excl", l0.Options{}) },
			l0.Options{Create: true, Exclusive: true, Size: 2 * mib}, l0.ErrRegionExists},
		{"size 0", func(t *testing.T) string { return regionPath(t, "size0") }, l0.Options{Create: true}, l0.ErrSize},
		{"size below 1 MiB", func(t *testing.T) string { return regionPath(t, "small") }, l0.Options{Create: true, Size: mib - 1}, l0.ErrSize},
		{"size above 16 TiB", func(t *testing.T) string { return regionPath(t, "huge") }, l0.Options{Create: true, Size: l0.SizeMax + 1}, l0.ErrSize},
		{"absurd size", func(t *testing.T) string { return regionPath(t, "absurd") }, l0.Options{Create: true, Size: 1 << 63}, l0.ErrSize},
		{"segment not a power of two", func(t *testing.T) string { return regionPath(t, "seg3k") },
			l0.Options{Create: true, Size: 2 * mib, SegmentSize: 12288}, l0.ErrSize},
		{"segment too small", func(t *testing.T) string { return regionPath(t, "seg2k") },
			l0.Options{Create: true, Size: 2 * mib, SegmentSize: 2048}, l0.ErrSize},
		{"too few segments", func(t *testing.T) string { return regionPath(t, "seg1m") },
			l0.Options{Create: true, Size: 2 * mib, SegmentSize: 1 << 20}, l0.ErrSize},
		{"too many procs", func(t *testing.T) string { return regionPath(t, "procs") },
			l0.Options{Create: true, Size: 2 * mib, MaxProcs: l0.ProcsMax + 1}, l0.ErrSize},
		{"too many entries", func(t *testing.T) string { return regionPath(t, "entries") },
			l0.Options{Create: true, Size: 2 * mib, MaxEntries: 2 * mib}, l0.ErrSize},
		{"mode outside 0777", func(t *testing.T) string { return regionPath(t, "mode") },
			l0.Options{Create: true, Size: 2 * mib, Mode: 04600}, l0.ErrInvalid},
		{"negative open timeout", func(t *testing.T) string { return regionPath(t, "timeout") },
			l0.Options{Create: true, Size: 2 * mib, OpenTimeout: -time.Second}, l0.ErrInvalid},
		{"other size", func(t *testing.T) string { return makeRegion(t, "othersize", l0.Options{Size: 2 * mib}) },
			l0.Options{Size: 3 * mib}, l0.ErrSizeMismatch},
		{"other size with create", func(t *testing.T) string { return makeRegion(t, "othersize2", l0.Options{Size: 2 * mib}) },
			l0.Options{Size: 4 * mib, Create: true}, l0.ErrSizeMismatch},
		{"symlink", func(t *testing.T) string {
			target := makeRegion(t, "symtarget", l0.Options{})
			link := regionPath(t, "symlink")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, l0.Options{}, l0.ErrUnsafePath},
		{"symlink with create", func(t *testing.T) string {
			link := regionPath(t, "symlink2")
			if err := os.Symlink("/dev/shm/cachee-gotest-nowhere", link); err != nil {
				t.Fatal(err)
			}
			return link
		}, l0.Options{Create: true, Size: 2 * mib}, l0.ErrUnsafePath},
		{"directory", func(t *testing.T) string {
			d := regionPath(t, "dir")
			if err := os.Mkdir(d, 0700); err != nil {
				t.Fatal(err)
			}
			return d
		}, l0.Options{}, l0.ErrUnsafePath},
		{"hard link", func(t *testing.T) string {
			p := makeRegion(t, "hardlink", l0.Options{})
			if err := os.Link(p, regionPath(t, "hardlink2")); err != nil {
				t.Fatal(err)
			}
			return p
		}, l0.Options{}, l0.ErrUnsafePath},
		{"regular non-region file", func(t *testing.T) string {
			p := regionPath(t, "notregion")
			if err := os.WriteFile(p, make([]byte, 1<<20), 0600); err != nil {
				t.Fatal(err)
			}
			return p
		}, l0.Options{}, l0.ErrNotRegion},
		{"short file", func(t *testing.T) string {
			p := regionPath(t, "short")
			if err := os.WriteFile(p, []byte("cacheeL0"), 0600); err != nil {
				t.Fatal(err)
			}
			return p
		}, l0.Options{}, l0.ErrNotRegion},
		{"empty file", func(t *testing.T) string {
			p := regionPath(t, "emptyfile")
			if err := os.WriteFile(p, nil, 0600); err != nil {
				t.Fatal(err)
			}
			return p
		}, l0.Options{Create: true, Size: 2 * mib}, l0.ErrNotRegion},
		{"format word changed", func(t *testing.T) string {
			p := makeRegion(t, "format", l0.Options{})
			writeU64(t, p, hdr("format"), readU64(t, p, hdr("format"))^(1<<56))
			return p
		}, l0.Options{}, l0.ErrFormat},
		{"geometry changed", func(t *testing.T) string {
			p := makeRegion(t, "geom", l0.Options{})
			writeU64(t, p, hdr("nsegs"), readU64(t, p, hdr("nsegs"))+1)
			return p
		}, l0.Options{}, l0.ErrCorrupt},
		{"offset changed", func(t *testing.T) string {
			p := makeRegion(t, "offs", l0.Options{})
			writeU64(t, p, hdr("arena_off"), readU64(t, p, hdr("arena_off"))+4096)
			return p
		}, l0.Options{}, l0.ErrCorrupt},
		{"region size in header differs from file", func(t *testing.T) string {
			p := makeRegion(t, "rsize", l0.Options{})
			writeU64(t, p, hdr("region_size"), readU64(t, p, hdr("region_size"))+4096)
			return p
		}, l0.Options{}, l0.ErrCorrupt},
		{"truncated region", func(t *testing.T) string {
			p := makeRegion(t, "trunc", l0.Options{})
			if err := os.Truncate(p, 1<<20); err != nil {
				t.Fatal(err)
			}
			return p
		}, l0.Options{}, l0.ErrCorrupt},
		{"ready mark missing", func(t *testing.T) string {
			p := makeRegion(t, "notready", l0.Options{})
			writeU32(t, p, hdr("ready"), 0)
			return p
		}, l0.Options{}, l0.ErrNotReady},
		{"foreign owner", func(t *testing.T) string {
			if os.Geteuid() != 0 {
				t.Skip("needs root to chown a file to another user")
			}
			p := makeRegion(t, "owner", l0.Options{})
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return p
		}, l0.Options{}, l0.ErrOwner},
		{"loose mode", func(t *testing.T) string {
			return makeRegion(t, "loose", l0.Options{Mode: 0666})
		}, l0.Options{}, l0.ErrMode},
		{"loose mode after chmod", func(t *testing.T) string {
			p := makeRegion(t, "loose2", l0.Options{})
			if err := os.Chmod(p, 0640); err != nil {
				t.Fatal(err)
			}
			return p
		}, l0.Options{}, l0.ErrMode},
		{"not on tmpfs", func(t *testing.T) string {
			if isTmpfs(t, os.TempDir()) {
				t.Skip(os.TempDir(), "is tmpfs")
			}
			return filepath.Join(t.TempDir(), "region")
		}, l0.Options{Create: true, Size: 2 * mib}, l0.ErrNotSHM},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.setup(t)
			r, err := l0.Open(p, tc.opts)
			if err == nil {
				r.Close()
				t.Fatalf("Open(%q) succeeded, want %v", p, tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open(%q) = %v, want %v", p, err, tc.want)
			}
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe.Op != "open" || pe.Path != p {
				t.Fatalf("Open error %#v is not a PathError for %q", err, p)
			}
			var le *l0.Error
			if !errors.As(err, &le) || le.Code != tc.want.(*l0.Error).Code {
				t.Fatalf("Open error %v does not carry code %d", err, tc.want.(*l0.Error).Code)
			}
			if r != nil {
				t.Fatal("Open returned a region with an error")
			}
		})
	}
}

func isTmpfs(t testing.TB, dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Type == unix.TMPFS_MAGIC
}

// The checks that refuse a file have an opt-out each; with it the region
// opens and works.
func TestOpenAllowFlags(t *testing.T) {
	t.Run("foreign owner allowed", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to chown a file to another user")
		}
		p := makeRegion(t, "owner-ok", l0.Options{})
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		openAndUse(t, p, l0.Options{AllowForeignOwner: true})
	})
	t.Run("loose mode allowed", func(t *testing.T) {
		p := makeRegion(t, "loose-ok", l0.Options{Mode: 0666})
		openAndUse(t, p, l0.Options{AllowLooseMode: true})
		openAndUse(t, p, l0.Options{Mode: 0666})
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0666 {
			t.Fatalf("mode %v, want exactly 0666 (umask not applied)", st.Mode().Perm())
		}
	})
	t.Run("default mode 0600", func(t *testing.T) {
		p := makeRegion(t, "mode600", l0.Options{})
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0600 {
			t.Fatalf("mode %v, want 0600", st.Mode().Perm())
		}
		// A stricter file than the mode asked for is fine.
		openAndUse(t, p, l0.Options{Mode: 0660})
	})
	t.Run("any fs allowed", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "region")
		r, err := l0.Open(p, l0.Options{Create: true, Size: 2 << 20, AllowAnyFS: true})
		if err != nil {
			t.Fatal(err)
		}
		defer l0.Unlink(p)
		if err := r.Set([]byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		openAndUse(t, p, l0.Options{AllowAnyFS: true})
	})
	t.Run("abandoned region replaced with create", func(t *testing.T) {
		p := makeRegion(t, "abandoned", l0.Options{})
		writeU32(t, p, hdr("ready"), 0)
		r, err := l0.Open(p, l0.Options{Create: true, Size: 3 << 20})
		if err != nil {
			t.Fatalf("Open of an abandoned region with Create: %v", err)
		}
		defer r.Close()
		if got := r.Info().RegionSize; got != 3<<20 {
			t.Fatalf("region size %d, want the new region's %d", got, 3<<20)
		}
		if _, err := r.Get([]byte("k"), nil); !errors.Is(err, l0.ErrNotFound) {
			t.Fatalf("old key in the replacement region: %v", err)
		}
	})
	t.Run("size 0 accepts existing", func(t *testing.T) {
		p := makeRegion(t, "size0ok", l0.Options{Size: 3 << 20})
		r := openAndUse(t, p, l0.Options{})
		if r.RegionSize != 3<<20 {
			t.Fatalf("size %d", r.RegionSize)
		}
	})
	t.Run("bare name means /dev/shm", func(t *testing.T) {
		full := regionPath(t, "bare")
		name := filepath.Base(full)
		r, err := l0.Open(name, l0.Options{Create: true, Size: 2 << 20})
		if err != nil {
			t.Fatal(err)
		}
		info := r.Info()
		r.Close()
		if info.Path != full {
			t.Fatalf("Info().Path = %q, want %q", info.Path, full)
		}
		if _, err := os.Stat(full); err != nil {
			t.Fatal(err)
		}
		if err := l0.Unlink(name); err != nil {
			t.Fatal(err)
		}
	})
}

// openAndUse opens p, checks that the old key "k" is there, closes, and
// returns the Info.
func openAndUse(t *testing.T, p string, o l0.Options) l0.Info {
	t.Helper()
	r, err := l0.Open(p, o)
	if err != nil {
		t.Fatalf("Open(%s, %+v): %v", p, o, err)
	}
	defer r.Close()
	v, err := r.Get([]byte("k"), nil)
	if err != nil || string(v) != "v" {
		t.Fatalf("Get(k) = %q, %v", v, err)
	}
	return r.Info()
}

// A creator that has not finished (its init lock held, no ready mark) makes
// openers wait for OpenTimeout, then fail with ErrNotReady.
func TestOpenTimeoutWhileCreatorBusy(t *testing.T) {
	p := makeRegion(t, "busy", l0.Options{})
	writeU32(t, p, hdr("ready"), 0)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	for _, o := range []l0.Options{{OpenTimeout: 100 * time.Millisecond}, {Create: true, Size: 2 << 20, OpenTimeout: 100 * time.Millisecond}} {
		start := time.Now()
		_, err = l0.Open(p, o)
		el := time.Since(start)
		if !errors.Is(err, l0.ErrNotReady) {
			t.Fatalf("Open(%+v) = %v, want ErrNotReady", o, err)
		}
		// At least the timeout; and it gave up then, not after the default
		// of 5 s (a loose bound: a loaded machine is slow to wake it).
		if el < 90*time.Millisecond || el > 4500*time.Millisecond {
			t.Fatalf("Open waited %v, want about 100ms", el)
		}
	}
	// The creator finishes: the region opens.
	writeU32(t, p, hdr("ready"), uint32(lay["ready_mark"]))
	lk.Type = unix.F_UNLCK
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	openAndUse(t, p, l0.Options{})
}

func TestUnlink(t *testing.T) {
	t.Run("region", func(t *testing.T) {
		p := makeRegion(t, "unlink", l0.Options{})
		if err := l0.Unlink(p); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("region still there: %v", err)
		}
		err := l0.Unlink(p)
		if !errors.Is(err, l0.ErrNoRegion) {
			t.Fatalf("second Unlink = %v, want ErrNoRegion", err)
		}
	})
	t.Run("open region keeps working", func(t *testing.T) {
		r, p := newRegion(t, "unlinkopen", l0.Options{Size: 2 << 20})
		if err := r.Set([]byte("a"), []byte("1")); err != nil {
			t.Fatal(err)
		}
		if err := l0.Unlink(p); err != nil {
			t.Fatal(err)
		}
		if v, err := r.Get([]byte("a"), nil); err != nil || string(v) != "1" {
			t.Fatalf("Get after Unlink = %q, %v", v, err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		notRegion := regionPath(t, "unlink-notregion")
		if err := os.WriteFile(notRegion, make([]byte, 8192), 0600); err != nil {
			t.Fatal(err)
		}
		dir := regionPath(t, "unlink-dir")
		if err := os.Mkdir(dir, 0700); err != nil {
			t.Fatal(err)
		}
		link := regionPath(t, "unlink-link")
		if err := os.Symlink(makeRegion(t, "unlink-target", l0.Options{}), link); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			path string
			want error
		}{
			{"", l0.ErrBadPath},
			{"/dev/shm/..", l0.ErrBadPath},
			{regionPath(t, "unlink-absent"), l0.ErrNoRegion},
			{notRegion, l0.ErrNotRegion},
			{dir, l0.ErrUnsafePath},
			{link, l0.ErrUnsafePath},
		} {
			if err := l0.Unlink(tc.path); !errors.Is(err, tc.want) {
				t.Errorf("Unlink(%q) = %v, want %v", tc.path, err, tc.want)
			}
		}
		if _, err := os.Stat(notRegion); err != nil {
			t.Errorf("Unlink removed a file that is not a region: %v", err)
		}
		if _, err := os.Lstat(link); err != nil {
			t.Errorf("Unlink removed a symlink: %v", err)
		}
	})
}

func TestErrorValues(t *testing.T) {
	all := []*l0.Error{
		l0.ErrNotFound, l0.ErrExists, l0.ErrInvalid, l0.ErrKeyTooLarge,
		l0.ErrValueTooLarge, l0.ErrMetaTooLarge, l0.ErrFull, l0.ErrTooManyPins,
		l0.ErrTooManyProcs, l0.ErrNotRegion, l0.ErrFormat, l0.ErrCorrupt,
		l0.ErrSize, l0.ErrSizeMismatch, l0.ErrOwner, l0.ErrMode,
		l0.ErrUnsafePath, l0.ErrNotSHM, l0.ErrNoSpace, l0.ErrNotReady,
		l0.ErrBufferTooSmall, l0.ErrRetry, l0.ErrBadPin, l0.ErrNoRegion,
		l0.ErrRegionExists, l0.ErrBadPath, l0.ErrLock, l0.ErrClosed,
	}
	codes := map[int]bool{}
	for i, e := range all {
		if e.Code >= 0 {
			t.Errorf("%v has code %d", e, e.Code)
		}
		if codes[e.Code] {
			t.Errorf("code %d used twice", e.Code)
		}
		codes[e.Code] = true
		if i < len(all)-1 && e.Code != -31000-i {
			t.Errorf("%v: code %d, want %d (header order)", e, e.Code, -31000-i)
		}
		msg := e.Error()
		if !strings.HasPrefix(msg, "cachee: ") || len(msg) < 15 || strings.Contains(msg, "unknown") {
			t.Errorf("code %d: message %q", e.Code, msg)
		}
		// errors.Is matches by code, also through wrapping and for a copy.
		copyErr := &l0.Error{Code: e.Code}
		wrapped := &fs.PathError{Op: "x", Path: "y", Err: copyErr}
		if !errors.Is(wrapped, e) {
			t.Errorf("errors.Is(wrapped %v, %v) = false", copyErr, e)
		}
		for _, o := range all {
			if o != e && errors.Is(e, o) {
				t.Errorf("errors.Is(%v, %v) = true", e, o)
			}
		}
		if errors.Is(e, syscall.ENOENT) {
			t.Errorf("%v matches an errno", e)
		}
	}
	if got := l0.ErrFull.Error(); !strings.Contains(got, "pinned") {
		t.Errorf("ErrFull text %q lacks the engine's description", got)
	}
	if got := (&l0.Error{Code: -1}).Error(); !strings.Contains(got, "unknown") {
		t.Errorf("unknown code text %q", got)
	}
}

// An errno from the engine comes back as a syscall.Errno.
func TestOpenErrno(t *testing.T) {
	_, err := l0.Open("/nonexistent-dir-cachee/region", l0.Options{Create: true, Size: 2 << 20})
	if !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Open in a missing directory = %v, want ENOENT", err)
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		t.Fatalf("error %v is not a syscall.Errno", err)
	}
}

// A second Region opened with the first one's Registration token shares its
// process slot: the process counts once, and closing the second leaves the
// slot to the first. Tokens that name no live slot of this process are
// ErrInvalid.
func TestShareSlot(t *testing.T) {
	r, p := newRegion(t, "share", l0.Options{Size: 4 << 20})
	tok, err := r.Registration()
	if err != nil || tok == 0 {
		t.Fatalf("Registration = %#x, %v", tok, err)
	}
	r2, err := l0.Open(p, l0.Options{ShareSlot: tok})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	live := func() uint64 {
		st, err := r.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st.LiveProcs
	}
	if n := live(); n != 1 {
		t.Fatalf("live processes with two handles sharing a slot = %d, want 1", n)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if n := live(); n != 1 {
		t.Fatalf("live processes after closing the sharer = %d, want 1", n)
	}
	if v, err := r.Get([]byte("k"), nil); err != nil || string(v) != "v" {
		t.Fatalf("Get after the sharer closed = %q, %v", v, err)
	}
	for _, bad := range []uint64{1, tok ^ 1, tok + 1<<32, 0xffffffff << 32} {
		if x, err := l0.Open(p, l0.Options{ShareSlot: bad}); !errors.Is(err, l0.ErrInvalid) {
			if x != nil {
				x.Close()
			}
			t.Errorf("Open with ShareSlot %#x: %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := r2.Registration(); !errors.Is(err, l0.ErrClosed) {
		t.Errorf("Registration on a closed Region: %v, want ErrClosed", err)
	}
}
