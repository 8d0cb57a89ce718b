package l0_test

import (
	"bufio"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cachee-dev/cachee/core/l0"
	"github.com/zeebo/xxh3"
)

// XXH3-64 (seed 0) of inputs whose byte i is i*31+7, computed once with
// github.com/zeebo/xxh3 v1.1.0 and pasted here. The lengths straddle every
// code path of XXH3 (0, 1-3, 4-8, 9-16, 17-128, 129-240, >240).
var xxh3Vectors = []struct {
	n    int
	want uint64
}{
	{0, 0x2d06800538d394c2},
	{1, 0x4c5cca45d0f4811f},
	{3, 0x15f7093b173d005c},
	{4, 0xdca012f95811b6b9},
	{8, 0xdec6a9a43575982e},
	{9, 0xcbe393399f17ffbd},
	{16, 0x7e484c18d74895d0},
	{17, 0x208bde5ee2bed407},
	{128, 0xf92b70eaa21a6288},
	{129, 0xf8f76713f2bb60fa},
	{240, 0xccc7375172c41f03},
	{241, 0x0b3b630948ce4a00},
	{1000, 0x989765d0ea7a5ecd},
}

func vectorInput(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + 7)
	}
	return b
}

func TestHashVectors(t *testing.T) {
	for _, v := range xxh3Vectors {
		in := vectorInput(v.n)
		if got := xxh3.Hash(in); got != v.want {
			t.Errorf("zeebo/xxh3.Hash(len %d) = %016x, want %016x", v.n, got, v.want)
		}
		if got := l0.Hash(in); got != v.want {
			t.Errorf("l0.Hash(len %d) = %016x, want %016x", v.n, got, v.want)
		}
		if got := l0.HashC(in); got != v.want {
			t.Errorf("libxxhash (len %d) = %016x, want %016x", v.n, got, v.want)
		}
	}
	if got := l0.Hash(nil); got != xxh3Vectors[0].want {
		t.Errorf("l0.Hash(nil) = %016x", got)
	}
	if got := l0.HashC(nil); got != xxh3Vectors[0].want {
		t.Errorf("libxxhash(nil) = %016x", got)
	}
}

// testdata/xxh3_vectors.txt (read by the C tests) holds the same vectors.
func TestHashVectorFile(t *testing.T) {
	f, err := os.Open("testdata/xxh3_vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	i := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			t.Fatalf("line %q: want 3 fields", line)
		}
		n, err1 := strconv.Atoi(fields[0])
		h, err2 := strconv.ParseUint(fields[1], 16, 64)
		in := []byte{}
		var err3 error
		if fields[2] != "-" {
			in, err3 = hex.DecodeString(fields[2])
		}
		if err1 != nil || err2 != nil || err3 != nil || len(in) != n {
			t.Fatalf("line %q: %v %v %v (len %d)", line[:min(len(line), 60)], err1, err2, err3, len(in))
		}
		if i >= len(xxh3Vectors) || xxh3Vectors[i].n != n || xxh3Vectors[i].want != h {
			t.Fatalf("vector %d of the file (len %d, %016x) differs from the table", i, n, h)
		}
		if string(in) != string(vectorInput(n)) {
			t.Fatalf("vector %d: input does not follow the fill rule", i)
		}
		if got := l0.Hash(in); got != h {
			t.Fatalf("l0.Hash(file vector %d) = %016x, want %016x", i, got, h)
		}
		if got := l0.HashC(in); got != h {
			t.Fatalf("libxxhash(file vector %d) = %016x, want %016x", i, got, h)
		}
		i++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(xxh3Vectors) {
		t.Fatalf("file has %d vectors, table %d", i, len(xxh3Vectors))
	}
}

// The C libxxhash and zeebo/xxh3 agree on random inputs of every length up
// to 2 KiB and on a few longer ones.
func TestHashRandomCrossCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<16)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for i := 0; i < 10000; i++ {
		n := rng.IntN(2048)
		if i%500 == 0 {
			n = rng.IntN(len(buf))
		}
		off := rng.IntN(len(buf) - n + 1)
		in := buf[off : off+n]
		if a, b := l0.Hash(in), l0.HashC(in); a != b {
			t.Fatalf("input %d (len %d, off %d): zeebo %016x, libxxhash %016x", i, n, off, a, b)
		}
	}
}
