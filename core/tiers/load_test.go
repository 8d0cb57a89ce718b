package tiers_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachee-dev/cachee/core/tiers"
)

func TestGetOrLoadComputesOnce(t *testing.T) {
	p := region(t, 8<<20)
	// Several Caches over one region stand for several processes.
	var cs []*tiers.Cache
	for i := 0; i < 3; i++ {
		// Waiters compute the value themselves after LoadWait: far longer
		// than the 50 ms load, also on a slow, loaded machine.
		cs = append(cs, open(t, tiers.Config{Path: p, L1Bytes: 1 << 20, LoadWait: time.Minute}))
	}
	var calls atomic.Int64
	load := func(ctx context.Context, k []byte) ([]byte, tiers.SetOptions, error) {
		calls.Add(1)
		time.Sleep(50 * time.Millisecond)
		return append([]byte("computed-"), k...), tiers.SetOptions{TTL: time.Hour}, nil
	}
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			v, err := cs[i%3].GetOrLoad(ctx, []byte("key"), load)
			if err != nil || string(v.Data) != "computed-key" {
				t.Errorf("%q %v", v.Data, err)
			}
		}(i)
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("load called %d times", n)
	}
	// Present now: no load at all.
	if _, err := cs[0].GetOrLoad(ctx, []byte("key"), load); err != nil || calls.Load() != 1 {
		t.Fatal(err, calls.Load())
	}
}

func TestGetOrLoadErrorsAndTakeover(t *testing.T) {
	p := region(t, 8<<20)
	c := open(t, tiers.Config{Path: p, LoadWait: 300 * time.Millisecond})
	boom := errors.New("boom")
	if _, err := c.GetOrLoad(ctx, []byte("e"), func(context.Context, []byte) ([]byte, tiers.SetOptions, error) {
		return nil, tiers.SetOptions{}, boom
	}); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := c.GetOrLoad(ctx, []byte("e"), nil); !errors.Is(err, tiers.ErrInvalid) {
		t.Fatal(err)
	}
	// A loader that never finishes: the waiter gives up after LoadWait and
	// computes itself; a waiter whose ctx ends returns ctx.Err().
	hold := make(chan struct{})
	started := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		c.GetOrLoad(ctx, []byte("slow"), func(context.Context, []byte) ([]byte, tiers.SetOptions, error) {
			close(started)
			<-hold
			return []byte("late"), tiers.SetOptions{}, nil
		})
	}()
	<-started
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := c.GetOrLoad(short, []byte("slow"), func(context.Context, []byte) ([]byte, tiers.SetOptions, error) {
		return []byte("mine"), tiers.SetOptions{}, nil
	}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	t0 := time.Now()
	v, err := c.GetOrLoad(ctx, []byte("slow"), func(context.Context, []byte) ([]byte, tiers.SetOptions, error) {
		return []byte("mine"), tiers.SetOptions{}, nil
	})
	if err != nil || string(v.Data) != "mine" || time.Since(t0) < 250*time.Millisecond {
		t.Fatalf("%q %v after %v", v.Data, err, time.Since(t0))
	}
	close(hold)
	<-finished // the slow loader is done before the Cache is closed
}
