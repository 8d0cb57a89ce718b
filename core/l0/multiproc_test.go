package l0_test

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cachee-dev/cachee/core/l0"
)

// Helper processes: the test binary re-executes itself with CACHEE_L0_HELPER
// set, and TestMain runs the helper instead of the tests.
const helperEnv = "CACHEE_L0_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func runHelper(mode string) int {
	path := os.Getenv("CACHEE_L0_REGION")
	r, err := l0.Open(path, l0.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper open:", err)
		return 3
	}
	defer r.Close()
	id := envInt("CACHEE_L0_ID", 0)
	keys := uint64(envInt("CACHEE_L0_KEYS", 256))
	deadline := time.Now().Add(time.Duration(envInt("CACHEE_L0_MS", 500)) * time.Millisecond)
	rng := rand.New(rand.NewPCG(uint64(id), uint64(os.Getpid())))
	switch mode {
	case "writer":
		return helperWriter(r, rng, keys, deadline)
	case "reader":
		return helperReader(r, rng, keys, deadline)
	case "holder":
		// Pin a value and own open segments, then wait to be killed.
		if err := r.Set([]byte("holder-own"), make([]byte, 100)); err != nil {
			fmt.Fprintln(os.Stderr, "holder set:", err)
			return 3
		}
		p, err := r.GetPinned([]byte("held"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "holder pin:", err)
			return 3
		}
		fmt.Printf("ready %d\n", len(p.Bytes()))
		time.Sleep(time.Minute)
		return 0
	}
	if op, ok := strings.CutPrefix(mode, "bug-"); ok {
		return runBugOp(r, op)
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 3
}

// helperCap is how long past its deadline a helper may go on for the work
// TestMultiProcess checks for (a hang guard: a slow machine needs longer,
// never this long).
const helperCap = 2 * time.Minute

// helperWriter writes until its deadline has passed and the region has
// evicted (the pressure TestMultiProcess checks for), or helperCap after.
func helperWriter(r *l0.Region, rng *rand.Rand, keys uint64, deadline time.Time) int {
	var buf []byte
	sets, fulls, dels := 0, 0, 0
	evicted := func() bool {
		st, err := r.Stats()
		return err == nil && st.Evictions > 0
	}
	for seq := uint64(1); time.Now().Before(deadline) || (!evicted() && time.Now().Before(deadline.Add(helperCap))); seq++ {
		for i := 0; i < 64; i++ {
			k := rng.Uint64N(keys)
			buf = makeValue(buf, k, seq, valHeader+rng.IntN(4000))
			var err error
			switch rng.IntN(50) {
			case 0:
				err = r.Delete(keyOf(k))
				if err == nil {
					dels++
				} else if err == l0.ErrNotFound {
					err = nil
				}
			case 1:
				err = r.SetWith(keyOf(k), buf, l0.SetOptions{Meta: buf[:16], TTL: time.Hour})
				sets++
			default:
				err = r.Set(keyOf(k), buf)
				sets++
			}
			if err == l0.ErrFull {
				fulls++
				sets--
				err = nil
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "writer:", err)
				return 1
			}
		}
	}
	fmt.Printf("writer sets=%d deletes=%d full=%d\n", sets, dels, fulls)
	return 0
}

func helperReader(r *l0.Region, rng *rand.Rand, keys uint64, deadline time.Time) int {
	type held struct {
		p    *l0.Pinned
		key  uint64
		copy []byte
	}
	var ring []held
	var buf []byte
	reads, hits, pinned, pinChecks, batch := 0, 0, 0, 0, 0
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "reader: "+format+"\n", a...)
		return 2
	}
	verifyHeld := func(h held) error {
		if !bytes.Equal(h.p.Bytes(), h.copy) {
			return fmt.Errorf("pinned bytes of key %d changed while held", h.key)
		}
		return checkValue(h.p.Bytes(), h.key)
	}
	// until the deadline, and until it has seen hits, pinned views and a
	// batch (a slow machine needs longer), or helperCap after
	for time.Now().Before(deadline) || ((hits == 0 || pinned == 0 || batch == 0) && time.Now().Before(deadline.Add(helperCap))) {
		for i := 0; i < 64; i++ {
			k := rng.Uint64N(keys)
			reads++
			switch rng.IntN(8) {
			case 0, 1, 2:
				var err error
				buf, err = r.Get(keyOf(k), buf)
				if err == l0.ErrNotFound {
					continue
				}
				if err != nil {
					return fail("Get: %v", err)
				}
				if err := checkValue(buf, k); err != nil {
					return fail("Get: %v", err)
				}
				hits++
			case 3:
				it, err := r.GetItem(keyOf(k), buf, nil)
				if err == l0.ErrNotFound {
					continue
				}
				if err != nil {
					return fail("GetItem: %v", err)
				}
				if err := checkValue(it.Value, k); err != nil {
					return fail("GetItem: %v", err)
				}
				if len(it.Meta) != 0 && !bytes.Equal(it.Meta, it.Value[:16]) {
					return fail("GetItem: metadata of another version")
				}
				buf = it.Value
				hits++
			case 4:
				ks := [][]byte{keyOf(k), keyOf((k + 1) % keys), keyOf((k + 2) % keys)}
				ps, errs := r.GetMany(ks)
				for j, p := range ps {
					if errs[j] == l0.ErrNotFound {
						continue
					}
					if errs[j] != nil {
						return fail("GetMany: %v", errs[j])
					}
					if err := checkValue(p.Bytes(), (k+uint64(j))%keys); err != nil {
						return fail("GetMany: %v", err)
					}
					p.Release()
					batch++
				}
			default:
				p, err := r.GetPinned(keyOf(k))
				if err == l0.ErrNotFound {
					continue
				}
				if err != nil {
					return fail("GetPinned: %v", err)
				}
				if err := checkValue(p.Bytes(), k); err != nil {
					return fail("GetPinned: %v", err)
				}
				hits++
				pinned++
				ring = append(ring, held{p, k, append([]byte(nil), p.Bytes()...)})
				if len(ring) > 32 { // hold each view across many writes
					if err := verifyHeld(ring[0]); err != nil {
						return fail("%v", err)
					}
					if err := ring[0].p.Release(); err != nil {
						return fail("Release: %v", err)
					}
					pinChecks++
					ring = ring[1:]
				}
			}
		}
	}
	for _, h := range ring {
		if err := verifyHeld(h); err != nil {
			return fail("%v", err)
		}
		h.p.Release()
		pinChecks++
	}
	fmt.Printf("reader reads=%d hits=%d pinned=%d pinchecks=%d batch=%d\n", reads, hits, pinned, pinChecks, batch)
	return 0
}

type helperProc struct {
	cmd    *exec.Cmd
	stdout *bytes.Buffer
	stderr *bytes.Buffer
	lines  *bufio.Reader // stdout, for a helper started with pipe
}

func startHelper(t *testing.T, mode, path string, id int, pipe bool, env ...string) *helperProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "CACHEE_L0_REGION="+path,
		"CACHEE_L0_ID="+strconv.Itoa(id))
	cmd.Env = append(cmd.Env, env...)
	h := &helperProc{cmd: cmd, stdout: new(bytes.Buffer), stderr: new(bytes.Buffer)}
	cmd.Stderr = h.stderr
	if pipe {
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		h.lines = bufio.NewReader(out)
	} else {
		cmd.Stdout = h.stdout
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return h
}

// parseCounts reads "name k=v k=v" from a helper's output.
func parseCounts(out string) map[string]int {
	m := map[string]int{}
	for _, f := range strings.Fields(out) {
		if k, v, ok := strings.Cut(f, "="); ok {
			n, _ := strconv.Atoi(v)
			m[k] += n
		}
	}
	return m
}

// N writer and M reader processes share a region under eviction pressure:
// every copy-out read and every pinned view (held across overwrites and
// evictions) must be a complete value of its key.
func TestMultiProcess(t *testing.T) {
	ms := 1500
	if testing.Short() {
		ms = 600
	}
	r, path := newRegion(t, "multiproc", l0.Options{Size: 4 << 20, SegmentSize: 32 << 10, MaxProcs: 16})
	env := []string{"CACHEE_L0_KEYS=3000", "CACHEE_L0_MS=" + strconv.Itoa(ms)}
	var procs []*helperProc
	for i := 0; i < 2; i++ {
		procs = append(procs, startHelper(t, "writer", path, i, false, env...))
	}
	for i := 0; i < 2; i++ {
		procs = append(procs, startHelper(t, "reader", path, 100+i, false, env...))
	}
	total := map[string]int{}
	for _, p := range procs {
		err := p.cmd.Wait()
		if err != nil {
			t.Errorf("helper %v: %v\nstdout: %s\nstderr: %s", p.cmd.Env[len(p.cmd.Env)-5:], err, p.stdout, p.stderr)
			continue
		}
		for k, v := range parseCounts(p.stdout.String()) {
			total[k] += v
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("totals: %v", total)
	if total["sets"] == 0 || total["hits"] == 0 || total["pinchecks"] == 0 || total["batch"] == 0 {
		t.Fatalf("not enough work done: %v", total)
	}
	st, err := r.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats: %+v", st)
	if st.LiveProcs != 1 || st.Pins != 0 {
		t.Fatalf("after the helpers closed: live procs %d, pins %d", st.LiveProcs, st.Pins)
	}
	if st.Evictions == 0 {
		t.Errorf("no eviction pressure: %+v", st)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
}

// A process killed while it holds pins and open segments is reaped by the
// survivors: its slot, pins and segments come back.
func TestReapDeadProcess(t *testing.T) {
	r, path := newRegion(t, "reap", l0.Options{Size: 2 << 20, MaxProcs: 4})
	if err := r.Set([]byte("held"), make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	h := startHelper(t, "holder", path, 1, true)
	line, err := h.lines.ReadString('\n')
	if !strings.HasPrefix(line, "ready 1000") {
		h.cmd.Wait()
		t.Fatalf("holder not ready: %q %v %q", line, err, h.stderr)
	}
	st, err := r.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.LiveProcs != 2 || st.Pins != 1 || st.PinnedBytes != 1000 {
		t.Fatalf("with the holder alive: %+v", st)
	}
	if n, err := r.Reap(); n != 0 || err != nil {
		t.Fatalf("Reap with everyone alive = %d, %v", n, err)
	}
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	h.cmd.Wait()
	if n, err := r.Reap(); n != 1 || err != nil {
		t.Fatalf("Reap after the kill = %d, %v", n, err)
	}
	st, err = r.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.LiveProcs != 1 || st.Pins != 0 || st.PinnedBytes != 0 || st.ReapedProcs != 1 || st.SegmentsOpen > 1 {
		t.Fatalf("after reaping: %+v", st)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
}

// Every handle claims a process slot; when all are taken by live handles,
// the next one gets ErrTooManyProcs, and a slot freed by Close is reused.
func TestTooManyProcs(t *testing.T) {
	a, path := newRegion(t, "procs", l0.Options{Size: 2 << 20, MaxProcs: 1})
	if err := a.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	b, err := l0.Open(path, l0.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Get([]byte("k"), nil); err != l0.ErrTooManyProcs {
		t.Fatalf("second handle Get = %v, want ErrTooManyProcs", err)
	}
	if err := b.Set([]byte("k"), []byte("w")); err != l0.ErrTooManyProcs {
		t.Fatalf("second handle Set = %v, want ErrTooManyProcs", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get([]byte("k"), nil); err != nil || string(v) != "v" {
		t.Fatalf("after the first handle closed: %q, %v", v, err)
	}
}
