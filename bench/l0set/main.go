// Command l0set measures the write throughput of an L0 region from one
// process and from several processes at once (started as subprocesses of
// this program), and prints a table.
//
//	go run ./bench/l0set [-n 2000000] [-value 512] [-keys 4096] [-procs 1,2] [-size 64]
//
// With BENCH_QUICK=1 in the environment (bench/run.sh --quick) -n defaults
// to 200000.
//
// Each process writes -n values of -value bytes over its own -keys keys
// (random order, fixed seed), after an untimed warm-up pass over the same
// keys, into one shared region of -size MiB. The region is far larger than
// the live data, so the writes reuse reclaimed segments without evicting:
// this is the steady state of a cache under overwrite traffic. Throughput
// is the sets of all processes divided by the longest of their loops.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/cachee-dev/cachee/core/l0"
)

func main() {
	n := flag.Int("n", 2_000_000, "sets per process")
	value := flag.Int("value", 512, "value size in bytes")
	keys := flag.Int("keys", 4096, "distinct keys per process")
	procsFlag := flag.String("procs", "1,2", "process counts to measure, comma separated")
	sizeMiB := flag.Uint64("size", 64, "region size in MiB")
	child := flag.Int("child", -1, "internal: run as writer number N")
	region := flag.String("region", "", "internal: region path")
	flag.Parse()
	if os.Getenv("BENCH_QUICK") == "1" && !flagSet("n") {
		*n = 200_000 // bench/run.sh --quick
	}

	if *child >= 0 {
		if err := runChild(*region, *child, *n, *value, *keys); err != nil {
			fmt.Fprintln(os.Stderr, "l0set child:", err)
			os.Exit(1)
		}
		return
	}

	var counts []int
	for _, f := range strings.Split(*procsFlag, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			fmt.Fprintln(os.Stderr, "l0set: bad -procs:", *procsFlag)
			os.Exit(2)
		}
		counts = append(counts, c)
	}
	fmt.Printf("L0 set throughput: %d-byte values, %d sets and %d keys per process, region %d MiB\n\n",
		*value, *n, *keys, *sizeMiB)
	fmt.Printf("%-6s %12s %10s %14s %10s %10s\n", "procs", "sets", "seconds", "sets/s", "ns/set", "speedup")
	var base float64
	for _, c := range counts {
		total, secs, err := measure(c, *n, *value, *keys, *sizeMiB<<20)
		if err != nil {
			fmt.Fprintln(os.Stderr, "l0set:", err)
			os.Exit(1)
		}
		rate := float64(total) / secs
		if base == 0 {
			base = rate
		}
		// ns/set: the time of one set as seen by one process.
		fmt.Printf("%-6d %12d %10.3f %14.0f %10.1f %9.2fx\n", c, total, secs, rate, secs*1e9/float64(*n), rate/base)
	}
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// measure runs c writer processes at once and returns the sets done and the
// longest loop time.
func measure(c, n, value, keys int, size uint64) (int, float64, error) {
	path := fmt.Sprintf("/dev/shm/cachee-l0set-%d-%d", os.Getpid(), c)
	r, err := l0.Open(path, l0.Options{Create: true, Exclusive: true, Size: size})
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	defer l0.Unlink(path)

	type proc struct {
		cmd *exec.Cmd
		in  *os.File
		out *bufio.Reader
	}
	var ps []proc
	defer func() {
		for _, p := range ps {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	}()
	for i := 0; i < c; i++ {
		cmd := exec.Command(os.Args[0], "-child", strconv.Itoa(i), "-region", path,
			"-n", strconv.Itoa(n), "-value", strconv.Itoa(value), "-keys", strconv.Itoa(keys))
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return 0, 0, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return 0, 0, err
		}
		if err := cmd.Start(); err != nil {
			return 0, 0, err
		}
		ps = append(ps, proc{cmd, stdin.(*os.File), bufio.NewReader(stdout)})
	}
	for _, p := range ps { // every writer has warmed up
		if line, err := p.out.ReadString('\n'); err != nil || !strings.HasPrefix(line, "ready") {
			return 0, 0, fmt.Errorf("writer not ready: %q %v", line, err)
		}
	}
	for _, p := range ps {
		fmt.Fprintln(p.in, "go")
	}
	var longest float64
	total := 0
	for _, p := range ps {
		line, err := p.out.ReadString('\n')
		if err != nil {
			return 0, 0, fmt.Errorf("writer: %v", err)
		}
		var sets int
		var ns int64
		if _, err := fmt.Sscanf(line, "done %d %d", &sets, &ns); err != nil {
			return 0, 0, fmt.Errorf("writer said %q", line)
		}
		total += sets
		if s := float64(ns) / 1e9; s > longest {
			longest = s
		}
	}
	for _, p := range ps {
		p.cmd.Wait()
	}
	ps = nil
	st, err := r.Stats()
	if err != nil {
		return 0, 0, err
	}
	if st.Evictions != 0 || st.SetFailures != 0 {
		fmt.Fprintf(os.Stderr, "l0set: note: %d evictions, %d failed sets (region too small for -keys?)\n",
			st.Evictions, st.SetFailures)
	}
	return total, longest, nil
}

func runChild(path string, id, n, value, keys int) error {
	r, err := l0.Open(path, l0.Options{})
	if err != nil {
		return err
	}
	defer r.Close()
	ks := make([][]byte, keys)
	for i := range ks {
		ks[i] = []byte(fmt.Sprintf("p%02d:key:%08d", id, i))
	}
	rng := rand.New(rand.NewPCG(uint64(id), 7))
	order := make([]int32, 1<<20)
	for i := range order {
		order[i] = int32(rng.IntN(keys))
	}
	val := make([]byte, value)
	for i := range val {
		val[i] = byte(i)
	}
	// Warm-up: every key once, and the segments this process will touch.
	for i := 0; i < keys+n/10; i++ {
		if err := r.Set(ks[order[i&(len(order)-1)]], val); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := r.Set(ks[order[i&(len(order)-1)]], val); err != nil {
			return err
		}
	}
	el := time.Since(start)
	fmt.Printf("done %d %d\n", n, el.Nanoseconds())
	return nil
}
