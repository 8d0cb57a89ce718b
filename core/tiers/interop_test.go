package tiers_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cachee-dev/cachee/core/tiers"
)

// python returns the repository's .venv interpreter with the extension
// built in place, or skips the test (saying why) when there is none.
func python(t *testing.T) (string, string) {
	t.Helper()
	root, err := filepath.Abs("../..") // the repository
	if err != nil {
		t.Fatal(err)
	}
	py := filepath.Join(root, ".venv", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		t.Skipf("Go/Python interop: %s is absent (run `make venv`); skipping", py)
	}
	var once = buildOnce(root, py)
	if once != nil {
		t.Fatalf("building the extension: %v", once)
	}
	return py, root
}

var (
	buildMu  sync.Mutex
	buildErr error
	built    bool
)

func buildOnce(root, py string) error {
	buildMu.Lock()
	defer buildMu.Unlock()
	if !built {
		cmd := exec.Command(py, "setup.py", "-q", "build_ext", "--inplace")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%v\n%s", err, out)
		}
		built = true
	}
	return buildErr
}

func runPy(t *testing.T, py, root, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(root, "python"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	return string(out)
}

const pyReadWrite = `
import os, sys
from cachee import SharedCache
c = SharedCache(sys.argv[1], create=False)
for i in range(50):
    v = c.get("go:%d" % i)
    assert v == b"from go %d" % i, (i, v)
me = sys.argv[2]
for i in range(50):
    c.set("py:%s:%d" % (me, i), b"from python %s %d" % (me.encode(), i))
print("ok", me)
`

// A Go process and Python processes read each other's writes.
func TestInteropWithPython(t *testing.T) {
	py, root := python(t)
	p := region(t, 8<<20)
	c := open(t, tiers.Config{Path: p, L1Bytes: 1 << 20})
	for i := 0; i < 50; i++ {
		if err := c.Set(ctx, []byte(fmt.Sprint("go:", i)), []byte(fmt.Sprint("from go ", i)), tiers.SetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, me := range []string{"a", "b"} {
		wg.Add(1)
		go func(me string) {
			defer wg.Done()
			if out := runPy(t, py, root, pyReadWrite, p, me); !strings.Contains(out, "ok "+me) {
				t.Errorf("python %s: %s", me, out)
			}
		}(me)
	}
	wg.Wait()
	for _, me := range []string{"a", "b"} {
		for i := 0; i < 50; i++ {
			v := mustGet(t, c, fmt.Sprintf("py:%s:%d", me, i), tiers.GetOptions{})
			if string(v.Data) != fmt.Sprintf("from python %s %d", me, i) {
				t.Fatalf("py:%s:%d = %q", me, i, v.Data)
			}
		}
	}
}

const pyOverwriteAndEvict = `
import sys
from cachee import SharedCache
c = SharedCache(sys.argv[1], create=False)
keys = sys.argv[2].split(",")
for i, k in enumerate(keys):
    if i % 2 == 0:
        c.set(k, b"new")
    else:
        c.delete(k)
big = b"x" * 1000
for i in range(12000):
    c.set("pyfill:%d" % i, big)
print("ok")
`

// The cross-process guarantee of L1 with a real Python writer: values this
// Go process holds in L1, then rewritten or deleted by Python and evicted
// from L0, never come back.
func TestPythonWritesInvalidateGoL1(t *testing.T) {
	py, root := python(t)
	p := region(t, 4<<20)
	c := open(t, tiers.Config{Path: p, L1Bytes: 64 << 20, Promote: tiers.PromoteNever})
	fill(t, c, "gl1", 12000)
	var inL1 []string
	for i := 0; i < 12000 && len(inL1) < 100; i++ {
		k := fmt.Sprintf("gl1-%d", i)
		if v, err := c.Get(ctx, []byte(k), tiers.GetOptions{SkipL0: true}); err == nil && v.Tier == tiers.TierL1 {
			inL1 = append(inL1, k)
		}
	}
	if len(inL1) < 100 {
		t.Fatalf("only %d keys in L1", len(inL1))
	}
	runPy(t, py, root, pyOverwriteAndEvict, p, strings.Join(inL1, ","))
	stale := 0
	for i, k := range inL1 {
		v, err := c.Get(ctx, []byte(k), tiers.GetOptions{})
		if errors.Is(err, tiers.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 || !bytes.Equal(v.Data, []byte("new")) {
			stale++
		}
	}
	if stale > 0 {
		t.Fatalf("%d of %d old values served after Python replaced them", stale, len(inL1))
	}
}
