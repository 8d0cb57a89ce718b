package l0_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachee-dev/cachee/core/l0"
)

// The takeover test re-executes the test binary as a process that takes a
// loader lock and waits to be killed. init runs before TestMain, so this
// file needs no hook in the shared helper of multiproc_test.go.
const loadHolderEnv = "CACHEE_L0_LOADLOCK_HOLDER"

func init() {
	path := os.Getenv(loadHolderEnv)
	if path == "" {
		return
	}
	r, err := l0.Open(path, l0.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "holder open:", err)
		os.Exit(3)
	}
	if _, err := r.LoadTryLock(l0.Hash([]byte("slow-key"))); err != nil {
		fmt.Fprintln(os.Stderr, "holder lock:", err)
		os.Exit(3)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	os.Exit(0)
}

func TestLoadLockBasic(t *testing.T) {
	r, _ := newRegion(t, "loadlock", l0.Options{Size: 8 << 20})
	h := l0.Hash([]byte("k"))
	lk, err := r.LoadTryLock(h)
	if err != nil {
		t.Fatalf("LoadTryLock: %v", err)
	}
	if held, err := r.LoadLocked(h); err != nil || !held {
		t.Fatalf("LoadLocked = %v, %v; want true", held, err)
	}
	if _, err := r.LoadTryLock(h); !errors.Is(err, l0.ErrBusy) {
		t.Fatalf("second LoadTryLock: %v, want ErrBusy", err)
	}
	other, err := r.LoadTryLock(l0.Hash([]byte("other")))
	if err != nil {
		t.Fatalf("LoadTryLock(other): %v", err)
	}
	if err := lk.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := lk.Unlock(); !errors.Is(err, l0.ErrInvalid) {
		t.Fatalf("second Unlock: %v, want ErrInvalid", err)
	}
	if held, err := r.LoadLocked(h); err != nil || held {
		t.Fatalf("LoadLocked after Unlock = %v, %v", held, err)
	}
	if err := other.Unlock(); err != nil {
		t.Fatal(err)
	}
	if l0.ErrBusy.Code != -31027 || !strings.Contains(l0.ErrBusy.Error(), "loader lock") {
		t.Errorf("ErrBusy = %d %q", l0.ErrBusy.Code, l0.ErrBusy.Error())
	}
}

func TestLoadLockAfterClose(t *testing.T) {
	r, _ := newRegion(t, "loadlock-close", l0.Options{Size: 8 << 20})
	lk, err := r.LoadTryLock(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadTryLock(1); !errors.Is(err, l0.ErrClosed) {
		t.Errorf("LoadTryLock after Close: %v", err)
	}
	if _, err := r.LoadLocked(1); !errors.Is(err, l0.ErrClosed) {
		t.Errorf("LoadLocked after Close: %v", err)
	}
	if err := lk.Unlock(); err != nil {
		t.Errorf("Unlock after Close: %v", err)
	}
}

// Goroutines exclude each other: at most one is inside at any moment, and
// concurrent loaders of one key compute it once.
func TestLoadLockGoroutines(t *testing.T) {
	r, _ := newRegion(t, "loadlock-g", l0.Options{Size: 8 << 20})
	key := []byte("shared")
	h := l0.Hash(key)
	var inside, loads atomic.Int32
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(time.Minute) // a hang guard, for a loaded machine
			for {
				if ok, _ := r.Contains(key); ok {
					return
				}
				lk, err := r.LoadTryLock(h)
				if errors.Is(err, l0.ErrBusy) {
					if time.Now().After(deadline) {
						t.Error("waited too long")
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d goroutines inside", n)
				}
				if ok, _ := r.Contains(key); !ok {
					loads.Add(1)
					time.Sleep(20 * time.Millisecond)
					if err := r.Set(key, []byte("v")); err != nil {
						t.Error(err)
					}
				}
				inside.Add(-1)
				if err := lk.Unlock(); err != nil {
					t.Error(err)
				}
				return
			}
		}()
	}
	wg.Wait()
	if loads.Load() != 1 {
		t.Errorf("value computed %d times, want 1", loads.Load())
	}
}

// A holder killed with SIGKILL loses its lock at once: a waiter takes over.
func TestLoadLockTakeoverAfterKill(t *testing.T) {
	r, path := newRegion(t, "loadlock-kill", l0.Options{Size: 8 << 20})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), loadHolderEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("holder said %q", line)
	}
	h := l0.Hash([]byte("slow-key"))
	if _, err := r.LoadTryLock(h); !errors.Is(err, l0.ErrBusy) {
		t.Fatalf("LoadTryLock while held elsewhere: %v, want ErrBusy", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	lk, err := r.LoadTryLock(h)
	if err != nil {
		t.Fatalf("LoadTryLock after the holder died: %v", err)
	}
	if err := lk.Unlock(); err != nil {
		t.Fatal(err)
	}
}
